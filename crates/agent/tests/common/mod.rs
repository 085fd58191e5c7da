//! The harness of the engine's tests: real tools, a real `docker-registry` on 127.0.0.1, a
//! busybox base image built once per test binary, and helpers to build plans and run them.
//!
//! Everything a test process makes lives in `/tmp/wharf-agent-tests/<pid>/`: its private
//! container store (`StorageDirs`: `store/root`, `store/runroot` — tests never touch the system
//! store, and two test processes never share one), its registries' data and each test's
//! `work_root`. The directories of processes that are gone are removed (their leftover mounts
//! unmounted first) when the next test process starts. Run IDs are unique to the process.
//! Registries run as `sh -c 'docker-registry serve … & read; kill'` children, so that they end
//! with the test binary even though statics are never dropped.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use wharf_agent::{Engine, EngineConfig, Job, Network, Outcome, StorageDirs};
use wharf_tasks::{BuildStep, CmdStep, Plan, PlannedStep, StepAction};

pub const TESTS_ROOT: &str = "/tmp/wharf-agent-tests";

/// `/tmp/wharf-agent-tests/<pid>`, made once per process after removing those of dead ones.
pub fn process_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Ok(entries) = std::fs::read_dir(TESTS_ROOT) {
            for e in entries.flatten() {
                let pid = e.file_name().to_string_lossy().into_owned();
                if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(&pid).exists() {
                    remove_stale(&e.path());
                }
            }
        }
        let dir = Path::new(TESTS_ROOT).join(std::process::id().to_string());
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// Unmounts whatever is still mounted below `dir` (deepest first), then removes it.
fn remove_stale(dir: &Path) {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut mounts: Vec<&str> =
        mountinfo.lines().filter_map(|l| l.split(' ').nth(4)).filter(|m| Path::new(m).starts_with(dir)).collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in mounts {
        let _ = Command::new("umount").arg("-l").arg(m).status();
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A temporary directory inside [`process_dir`].
pub fn scratch() -> tempfile::TempDir {
    tempfile::tempdir_in(process_dir()).unwrap()
}

/// Whether the tools are here. Missing tools fail the test when `CI=true`; elsewhere the test
/// is skipped with a message.
pub fn tools_present() -> bool {
    let needed = [
        ("/usr/bin/buildah", "buildah"),
        ("/usr/bin/podman", "podman"),
        ("/usr/bin/docker-registry", "docker-registry"),
        ("/bin/busybox", "busybox-static"),
        ("/usr/bin/htpasswd", "apache2-utils"),
    ];
    let missing: Vec<&str> = needed.iter().filter(|(p, _)| !Path::new(p).exists()).map(|(_, pkg)| *pkg).collect();
    let runc = ["/usr/sbin/runc", "/usr/bin/runc"].iter().any(|p| Path::new(p).exists());
    let missing: Vec<&str> = missing.into_iter().chain((!runc).then_some("runc")).collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!("missing {}: apt-get install -y {}", missing.join(", "), missing.join(" "));
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true and {msg}");
    }
    eprintln!("SKIPPED (CI is not true): {msg}");
    false
}

/// A `docker-registry` on 127.0.0.1, gone with its value or with the test binary.
pub struct Registry {
    pub host: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    /// Closing the shell's stdin makes it kill the registry (killing the shell would not).
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

impl Registry {
    /// With `htpasswd`, the registry asks for basic auth with that user and password.
    pub fn start(htpasswd: Option<(&str, &str)>) -> Registry {
        Registry::start_with(htpasswd, None)
    }

    /// Over https, with a certificate for 127.0.0.1 signed by a CA of its own, whose
    /// certificate is written to `ca_dir/ca.crt` (a `--cert-dir`).
    pub fn start_tls(ca_dir: &Path) -> Registry {
        Registry::start_with(None, Some(ca_dir))
    }

    fn start_with(htpasswd: Option<(&str, &str)>, ca_dir: Option<&Path>) -> Registry {
        let dir = scratch();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if let Some((user, pass)) = htpasswd {
            let out = Command::new("htpasswd").args(["-Bbn", user, pass]).output().unwrap();
            assert!(out.status.success());
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, out.stdout).unwrap();
            config.push_str(&format!("auth:\n  htpasswd:\n    realm: wharf-test\n    path: {}\n", file.display()));
        }
        if let Some(ca_dir) = ca_dir {
            let d = dir.path();
            let openssl = |args: &[&str]| {
                let out = Command::new("openssl").current_dir(d).args(args).output().unwrap();
                assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            };
            let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
            openssl(
                &[
                    &["req", "-x509"][..],
                    &ec,
                    &["-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=wharf-test-ca"],
                ]
                .concat(),
            );
            openssl(
                &[&["req"][..], &ec, &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]]
                    .concat(),
            );
            std::fs::write(d.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
            openssl(&[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "1",
                "-extfile",
                "san.ext",
            ]);
            std::fs::create_dir_all(ca_dir).unwrap();
            std::fs::copy(d.join("ca.crt"), ca_dir.join("ca.crt")).unwrap();
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                d.join("server.crt").display(),
                d.join("server.key").display()
            ));
        }
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config).unwrap();
        let child = Command::new("sh")
            .arg("-c")
            .arg("docker-registry serve \"$1\" >\"$2\" 2>&1 & pid=$!; read _; kill $pid; wait $pid")
            .args(["sh".as_ref(), cfg.as_os_str(), dir.path().join("log").as_os_str()])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let registry = Registry { host: format!("127.0.0.1:{port}"), child, _dir: dir };
        for _ in 0..100 {
            if ca_dir.is_some() {
                if TcpStream::connect(&registry.host).is_ok() {
                    return registry;
                }
            } else if let Ok((status, _, _)) = http_get(&registry.host, "/v2/", &[]) {
                assert!(status == 200 || status == 401, "GET /v2/ → {status}");
                return registry;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("docker-registry on {} did not come up", registry.host);
    }
}

/// Status, headers (lowercase names), body.
pub type Response = (u16, Vec<(String, String)>, Vec<u8>);

/// A minimal HTTP/1.1 GET.
pub fn http_get(host: &str, path: &str, headers: &[(&str, &str)]) -> std::io::Result<Response> {
    let mut s = TcpStream::connect(host)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or(std::io::ErrorKind::InvalidData)?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|c| c.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok((status, headers, raw[split + 4..].to_vec()))
}

/// The `Docker-Content-Digest` of a manifest as the registry serves it.
pub fn registry_digest(host: &str, repository: &str, tag: &str, basic: Option<&str>) -> String {
    let accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
    let auth = basic.map(|b| format!("Basic {b}"));
    let mut headers = vec![("Accept", accept)];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    let (status, headers, _) = http_get(host, &format!("/v2/{repository}/manifests/{tag}"), &headers).unwrap();
    assert_eq!(status, 200, "GET manifest {repository}:{tag}");
    headers.into_iter().find(|(k, _)| k == "docker-content-digest").map(|(_, v)| v).expect("Docker-Content-Digest")
}

/// What every test of the binary shares: the plain registry and the base image in it.
pub struct Shared {
    pub registry: Registry,
    /// `127.0.0.1:PORT/base/busybox:1`.
    pub base: String,
    _work: tempfile::TempDir,
}

pub fn storage() -> StorageDirs {
    let store = process_dir().join("store");
    StorageDirs { root: store.join("root"), run_root: store.join("runroot") }
}

/// The base image is built with the tools directly (`buildah from scratch`, `copy`, `config`,
/// `commit`, `push`), as the probe did, with the engine's own configuration files.
pub fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let registry = Registry::start(None);
        let work = scratch();
        let engine = Engine::new(config(work.path(), Network::None, std::slice::from_ref(&registry.host))).unwrap();
        let rootfs = work.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).unwrap();
        std::fs::create_dir_all(rootfs.join("etc")).unwrap();
        std::fs::create_dir_all(rootfs.join("tmp")).unwrap();
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
        for applet in String::from_utf8_lossy(&list.stdout).lines().filter(|a| *a != "busybox") {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        std::fs::write(rootfs.join("etc/group"), "root:x:0:\n").unwrap();
        let base = format!("{}/base/busybox:1", registry.host);
        let buildah = |args: &[&str]| -> String {
            let out = Command::new("buildah")
                .args(engine.storage_flags())
                .args(args)
                .envs(engine.tool_env().iter().map(|(k, v)| (k, v)))
                .output()
                .unwrap();
            assert!(out.status.success(), "buildah {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        let c = buildah(&["from", "scratch"]);
        buildah(&["copy", &c, rootfs.to_str().unwrap(), "/"]);
        buildah(&["config", "--cmd", "[\"/bin/sh\"]", "--env", "PATH=/bin", &c]);
        buildah(&["commit", "-q", &c, &base]);
        buildah(&["rm", &c]);
        buildah(&["push", "--tls-verify=false", &base]);
        Shared { registry, base, _work: work }
    })
}

pub fn config(work_root: &Path, network: Network, insecure: &[String]) -> EngineConfig {
    EngineConfig {
        storage: Some(storage()),
        network,
        insecure_registries: insecure.to_vec(),
        max_parallel_steps: 4,
        // Most tests build from images that exist only in the test store; the one that proves
        // the default is `a_run_never_uses_an_image_only_another_run_could_pull`.
        pull_always: false,
        ..EngineConfig::new(work_root)
    }
}

/// An engine with its own work root, for the shared registry (plus `insecure`).
pub fn engine(network: Network, insecure: &[String]) -> (Engine, tempfile::TempDir) {
    let work = scratch();
    let mut all = vec![shared().registry.host.clone()];
    all.extend(insecure.iter().cloned());
    (Engine::new(config(work.path(), network, &all)).unwrap(), work)
}

/// A run ID unique to this process and test.
pub fn run_id(name: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("t{}{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed), name)
}

pub fn step(id: &str, action: StepAction) -> PlannedStep {
    PlannedStep {
        id: id.into(),
        action,
        depends_on: Vec::new(),
        detach: false,
        entry_point: None,
        env: Vec::new(),
        ignore_errors: false,
        retries: 0,
        retry_delay: Duration::ZERO,
        timeout: Duration::from_secs(120),
        working_directory: None,
        keep: false,
        start_delay: Duration::ZERO,
        disable_working_directory_override: false,
    }
}

/// `sh -c SCRIPT` in `image`.
pub fn sh(id: &str, image: &str, script: &str) -> PlannedStep {
    step(id, StepAction::Cmd(CmdStep { image: image.into(), args: vec!["sh".into(), "-c".into(), script.into()] }))
}

pub fn build(id: &str, b: BuildStep) -> PlannedStep {
    step(id, StepAction::Build(b))
}

pub fn plan(steps: Vec<PlannedStep>) -> Plan {
    Plan { steps, env: Vec::new(), working_directory: "/workspace".into(), secrets: Vec::new() }
}

pub fn job(run_id: &str, plan: Plan) -> Job {
    Job {
        run_id: run_id.into(),
        display_id: None,
        insecure_registries: vec![],
        plan,
        context: wharf_agent::Context::Empty,
        auth: serde_json::json!({"auths": {}}),
        timeout: Duration::from_secs(300),
    }
}

/// Executes `job` and returns its outcome and every log line.
pub async fn execute(engine: &Engine, job: Job) -> (Outcome, Vec<String>) {
    execute_with(engine, job, CancellationToken::new()).await
}

pub async fn execute_with(engine: &Engine, job: Job, cancel: CancellationToken) -> (Outcome, Vec<String>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let outcome = engine.execute(job, tx, cancel).await;
    let mut lines = Vec::new();
    while let Ok(l) = rx.try_recv() {
        lines.push(l);
    }
    (outcome, lines)
}

/// The names of the containers in the test store starting with `prefix`.
pub fn containers(engine: &Engine, prefix: &str) -> Vec<String> {
    let out = Command::new("podman")
        .args(engine.storage_flags())
        .args(["ps", "-a", "--external", "--format", "{{.Names}}"])
        .envs(engine.tool_env().iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(out.status.success(), "podman ps: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().filter(|n| n.starts_with(prefix)).map(String::from).collect()
}

/// Whether any process runs a command line with these words, in order (`sleep 617`).
pub fn process_running(words: &[&str]) -> bool {
    let want: Vec<u8> = words.join("\0").into_bytes();
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline")).is_ok_and(|c| {
            let c = c.strip_suffix(b"\0").unwrap_or(&c);
            c.ends_with(&want) && c.len() >= want.len()
        })
    })
}

pub fn dump(lines: &[String]) -> String {
    lines.join("\n")
}

/// Runs `program` (buildah, podman) against the engine's store and configuration.
pub fn tool(engine: &Engine, program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program)
        .args(engine.storage_flags())
        .args(args)
        .envs(engine.tool_env().iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap()
}
