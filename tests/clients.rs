//! Clients nobody here wrote, against a spawned `wharf serve`: skopeo, podman and buildah from
//! Debian, oras-py from PyPI, and the Rust `oci-client` crate.
//!
//! A test whose client is missing fails when `CI=true` and is skipped (with the reason printed)
//! otherwise. External clients get private storage, auth and configuration files; nothing reads
//! or writes `~/.docker/config.json` or the system's container storage.
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// A scratch directory whose path is all lowercase (podman names `oci:` images after their
/// path, and refuses upper case), removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(label: &str) -> Scratch {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "wharf-{label}-{}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos()
        ));
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // vfs layers may be read-only; make sure removal works.
        let _ = Command::new("chmod").args(["-R", "u+w"]).arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Content unique to this run, so that skopeo's blob-info cache (which outlives test runs)
/// never knows our layers.
fn nonce() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    )
}

/// skopeo with a private auth file and registries configuration.
fn skopeo(s: &TestServer, scratch: &Scratch) -> Command {
    let auth = scratch.path("auth.json");
    if !auth.exists() {
        std::fs::write(&auth, "{}").unwrap();
    }
    let mut c = Command::new("skopeo");
    c.env("REGISTRY_AUTH_FILE", &auth).env_remove("DOCKER_CONFIG");
    let _ = s;
    c
}

fn creds_flags(s: &TestServer, flag: &str) -> Vec<String> {
    match s.creds_arg() {
        Some(c) => vec![flag.to_string(), c],
        None => vec![],
    }
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// The digest a layout's index.json gives for `tag`.
fn layout_digest(dir: &Path, tag: &str) -> String {
    let index = read_json(&dir.join("index.json"));
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no {tag} in {index}"))["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

fn layout_blob(dir: &Path, digest: &str) -> Vec<u8> {
    std::fs::read(dir.join("blobs/sha256").join(&digest[7..])).unwrap()
}

#[tokio::test]
async fn skopeo_round_trip_of_a_hand_built_layout() {
    if !require_tool("skopeo") {
        return;
    }
    let s = TestServer::start().await;
    let _reg = s.registry("skopeo").await;
    let scratch = Scratch::new("skopeo");
    let src = scratch.path("src");
    let img = TestImage::new(&format!("skopeo-{}", nonce()), "amd64");
    TestImage::write_layout(&src, &[("v1", &img.manifest[..], OCI_MANIFEST)], &[img.config.clone(), img.layer.clone()]);

    let dest = format!("docker://{}/skopeo/tools/img:v1", s.host());
    let mut c = skopeo(&s, &scratch);
    c.args(["copy", "--preserve-digests", "--dest-tls-verify=false"]).args(creds_flags(&s, "--dest-creds"));
    c.arg(format!("oci:{}:v1", src.display())).arg(&dest);
    let (ok, _, _) = run(&mut c);
    assert!(ok, "skopeo copy to wharf");

    // The registry holds the very manifest we built.
    let mut c = skopeo(&s, &scratch);
    c.args(["inspect", "--raw", "--tls-verify=false"]).args(creds_flags(&s, "--creds")).arg(&dest);
    let (ok, raw, _) = run(&mut c);
    assert!(ok);
    assert_eq!(sha256(raw.as_bytes()), img.digest, "skopeo inspect --raw: {raw}");
    let r = send(s.http(Method::HEAD, "/v2/skopeo/tools/img/manifests/v1").header("accept", OCI_MANIFEST)).await;
    assert_eq!(r.header("docker-content-digest"), Some(img.digest.as_str()));

    // And back.
    let back = scratch.path("back");
    let mut c = skopeo(&s, &scratch);
    c.args(["copy", "--preserve-digests", "--src-tls-verify=false"]).args(creds_flags(&s, "--src-creds"));
    c.arg(&dest).arg(format!("oci:{}:v1", back.display()));
    let (ok, _, _) = run(&mut c);
    assert!(ok, "skopeo copy from wharf");
    assert_eq!(layout_digest(&back, "v1"), img.digest);
    assert_eq!(layout_blob(&back, &img.digest), img.manifest);
    assert_eq!(layout_blob(&back, &sha256(&img.layer)), img.layer);
    assert_eq!(layout_blob(&back, &sha256(&img.config)), img.config);

    // Without --preserve-digests skopeo recompresses; whatever it pushes must read back intact.
    let dest2 = format!("docker://{}/skopeo/tools/gz:v1", s.host());
    let mut c = skopeo(&s, &scratch);
    c.args(["copy", "--dest-tls-verify=false"]).args(creds_flags(&s, "--dest-creds"));
    c.arg(format!("oci:{}:v1", src.display())).arg(&dest2);
    assert!(run(&mut c).0);
    let mut c = skopeo(&s, &scratch);
    c.args(["inspect", "--raw", "--tls-verify=false"]).args(creds_flags(&s, "--creds")).arg(&dest2);
    let (_, raw, _) = run(&mut c);
    let r = send(s.http(Method::GET, "/v2/skopeo/tools/gz/manifests/v1").header("accept", OCI_MANIFEST)).await;
    assert_eq!(r.body, raw.as_bytes(), "skopeo and the registry agree on the manifest");
    let m: Value = serde_json::from_str(&raw).unwrap();
    for l in m["layers"].as_array().unwrap() {
        let d = l["digest"].as_str().unwrap();
        let r = send(s.http(Method::GET, &format!("/v2/skopeo/tools/gz/blobs/{d}"))).await;
        assert_eq!(sha256(&r.body), d);
    }
}

#[tokio::test]
async fn skopeo_list_tags_and_delete() {
    if !require_tool("skopeo") {
        return;
    }
    let s = TestServer::start().await;
    let reg = s.registry("skotags").await;
    let (_, d1) = reg.push_image("app", "v1", &format!("a{}", nonce())).await;
    let (bytes2, d2) = reg.push_image("app", "v2", &format!("b{}", nonce())).await;
    assert_eq!(reg.put_manifest("app", "latest", OCI_MANIFEST, &bytes2).await.status, StatusCode::CREATED);
    let scratch = Scratch::new("skotags");

    let mut c = skopeo(&s, &scratch);
    c.args(["list-tags", "--tls-verify=false"]).args(creds_flags(&s, "--creds"));
    c.arg(format!("docker://{}/skotags/app", s.host()));
    let (ok, out, _) = run(&mut c);
    assert!(ok);
    let v: Value = serde_json::from_str(&out).unwrap();
    let mut tags: Vec<&str> = v["Tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    tags.sort();
    assert_eq!(tags, ["latest", "v1", "v2"]);

    // skopeo delete resolves the tag and deletes the manifest by digest: every tag on it goes.
    let mut c = skopeo(&s, &scratch);
    c.args(["delete", "--tls-verify=false"]).args(creds_flags(&s, "--creds"));
    c.arg(format!("docker://{}/skotags/app:latest", s.host()));
    assert!(run(&mut c).0, "skopeo delete");
    reg.get_manifest("app", &d2).await.expect_error(404, "MANIFEST_UNKNOWN");
    assert_eq!(reg.get_manifest("app", &d1).await.status, StatusCode::OK);
    let mut c = skopeo(&s, &scratch);
    c.args(["list-tags", "--tls-verify=false"]).args(creds_flags(&s, "--creds"));
    c.arg(format!("docker://{}/skotags/app", s.host()));
    let (_, out, _) = run(&mut c);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Tags"], serde_json::json!(["v1"]));
}

#[tokio::test]
async fn skopeo_copy_all_of_a_multi_arch_index() {
    if !require_tool("skopeo") {
        return;
    }
    let s = TestServer::start().await;
    let _reg = s.registry("skomulti").await;
    let scratch = Scratch::new("skomulti");
    let src = scratch.path("src");
    let n = nonce();
    let amd = TestImage::new(&n, "amd64");
    let arm = TestImage::new(&n, "arm64");
    let index = oci_index(&[(&amd.manifest[..], "amd64"), (&arm.manifest[..], "arm64")]);
    let blobs = vec![
        amd.config.clone(),
        amd.layer.clone(),
        arm.config.clone(),
        arm.layer.clone(),
        amd.manifest.clone(),
        arm.manifest.clone(),
    ];
    TestImage::write_layout(&src, &[("multi", &index[..], OCI_INDEX)], &blobs);

    let dest = format!("docker://{}/skomulti/app:multi", s.host());
    let mut c = skopeo(&s, &scratch);
    c.args(["copy", "--all", "--preserve-digests", "--dest-tls-verify=false"]).args(creds_flags(&s, "--dest-creds"));
    c.arg(format!("oci:{}:multi", src.display())).arg(&dest);
    assert!(run(&mut c).0, "skopeo copy --all");

    let r = send(s.http(Method::GET, "/v2/skomulti/app/manifests/multi").header("accept", OCI_INDEX)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, index);
    assert_eq!(r.header("content-type"), Some(OCI_INDEX));
    for m in [&amd, &arm] {
        let r = send(
            s.http(Method::GET, &format!("/v2/skomulti/app/manifests/{}", m.digest)).header("accept", OCI_MANIFEST),
        )
        .await;
        assert_eq!(r.body, m.manifest);
    }
    // skopeo picks the platform it is told from the index.
    let mut c = skopeo(&s, &scratch);
    c.args(["--override-arch", "arm64", "inspect", "--tls-verify=false"]).args(creds_flags(&s, "--creds")).arg(&dest);
    let (ok, out, _) = run(&mut c);
    assert!(ok);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Architecture"], "arm64");
    // skopeo reports the digest of what the tag names: the index.
    assert_eq!(v["Digest"], sha256(&index));
    assert_eq!(v["Layers"], serde_json::json!([sha256(&arm.layer)]));

    let back = scratch.path("back");
    let mut c = skopeo(&s, &scratch);
    c.args(["copy", "--all", "--preserve-digests", "--src-tls-verify=false"]).args(creds_flags(&s, "--src-creds"));
    c.arg(&dest).arg(format!("oci:{}:multi", back.display()));
    assert!(run(&mut c).0);
    assert_eq!(layout_digest(&back, "multi"), sha256(&index));
    for b in &blobs {
        assert_eq!(&layout_blob(&back, &sha256(b)), b);
    }
}

/// podman or buildah with private storage, auth file and containers.conf.
fn containers_tool(tool: &str, scratch: &Scratch, store: &str) -> Command {
    let conf = scratch.path("containers.conf");
    if !conf.exists() {
        std::fs::write(
            &conf,
            "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n[engine]\nruntime = \"runc\"\n",
        )
        .unwrap();
        std::fs::write(scratch.path("auth.json"), "{}").unwrap();
    }
    let mut c = Command::new(tool);
    c.env("CONTAINERS_CONF", &conf)
        .env("REGISTRY_AUTH_FILE", scratch.path("auth.json"))
        .env_remove("DOCKER_CONFIG")
        .arg("--root")
        .arg(scratch.path(&format!("{store}/root")))
        .arg("--runroot")
        .arg(scratch.path(&format!("{store}/runroot")))
        .arg("--storage-driver")
        .arg("vfs");
    c
}

fn inspect_field(tool: &str, scratch: &Scratch, store: &str, image: &str, field: &str) -> String {
    let mut c = containers_tool(tool, scratch, store);
    c.args(["inspect", "--type", "image", "--format", field, image]);
    let (ok, out, _) = run(&mut c);
    assert!(ok, "{tool} inspect {image}");
    out.trim().to_string()
}

#[tokio::test]
async fn podman_push_and_pull_round_trip() {
    if !require_tool("podman") {
        return;
    }
    let s = TestServer::start().await;
    let _reg = s.registry("podman").await;
    let scratch = Scratch::new("podman");
    let src = scratch.path("layout");
    let img = TestImage::new(&format!("podman-{}", nonce()), "amd64");
    TestImage::write_layout(&src, &[("v1", &img.manifest[..], OCI_MANIFEST)], &[img.config.clone(), img.layer.clone()]);

    let mut c = containers_tool("podman", &scratch, "a");
    c.arg("pull").arg(format!("oci:{}:v1", src.display()));
    assert!(run(&mut c).0, "podman pull oci:");
    let local = "localhost/wharf-test:v1";
    let mut c = containers_tool("podman", &scratch, "a");
    let id = sha256(&img.config)[7..].to_string();
    c.args(["tag", id.as_str(), local]);
    assert!(run(&mut c).0, "podman tag");
    let image_id = inspect_field("podman", &scratch, "a", local, "{{.Id}}");
    assert_eq!(format!("sha256:{image_id}"), sha256(&img.config), "podman's image id is the config digest");

    let remote = format!("{}/podman/team/app:v1", s.host());
    let digestfile = scratch.path("pushed.digest");
    let mut c = containers_tool("podman", &scratch, "a");
    c.args(["push", "--tls-verify=false", "--digestfile"]).arg(&digestfile).args(creds_flags(&s, "--creds"));
    c.arg(local).arg(format!("docker://{remote}"));
    assert!(run(&mut c).0, "podman push");
    let pushed = std::fs::read_to_string(&digestfile).unwrap().trim().to_string();
    let r = send(
        s.http(Method::GET, "/v2/podman/team/app/manifests/v1")
            .header("accept", format!("{OCI_MANIFEST}, {DOCKER_MANIFEST}")),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("docker-content-digest"), Some(pushed.as_str()), "the registry stored what podman pushed");
    assert_eq!(sha256(&r.body), pushed);

    // Pull into fresh storage: same manifest digest, same image id.
    let mut c = containers_tool("podman", &scratch, "b");
    c.args(["pull", "--tls-verify=false"]).args(creds_flags(&s, "--creds")).arg(&remote);
    assert!(run(&mut c).0, "podman pull from wharf");
    assert_eq!(inspect_field("podman", &scratch, "b", &remote, "{{.Id}}"), image_id);
    assert_eq!(inspect_field("podman", &scratch, "b", &remote, "{{.Digest}}"), pushed);
}

#[tokio::test]
async fn buildah_push_and_pull_round_trip() {
    if !require_tool("buildah") {
        return;
    }
    let s = TestServer::start().await;
    let _reg = s.registry("buildah").await;
    let scratch = Scratch::new("buildah");
    let file = scratch.path("hello.txt");
    std::fs::write(&file, format!("built by buildah {}\n", nonce())).unwrap();

    let mut c = containers_tool("buildah", &scratch, "a");
    c.args(["from", "scratch"]);
    let (ok, out, _) = run(&mut c);
    assert!(ok, "buildah from scratch");
    let ctr = out.trim().to_string();
    let mut c = containers_tool("buildah", &scratch, "a");
    c.args(["copy", ctr.as_str()]).arg(&file).arg("/hello.txt");
    assert!(run(&mut c).0, "buildah copy");
    let mut c = containers_tool("buildah", &scratch, "a");
    c.args(["config", "--cmd", "/hello.txt", ctr.as_str()]);
    assert!(run(&mut c).0, "buildah config");
    let local = "localhost/buildah-test:v1";
    let mut c = containers_tool("buildah", &scratch, "a");
    c.args(["commit", "--format", "oci", ctr.as_str(), local]);
    assert!(run(&mut c).0, "buildah commit");
    let image_id = inspect_field("buildah", &scratch, "a", local, "{{.FromImageID}}");

    for (format, repo) in [("oci", "buildah/oci"), ("v2s2", "buildah/docker")] {
        let remote = format!("{}/{repo}:v1", s.host());
        let digestfile = scratch.path(&format!("{format}.digest"));
        let mut c = containers_tool("buildah", &scratch, "a");
        c.args(["push", "--tls-verify=false", "--format", format, "--digestfile"]).arg(&digestfile);
        c.args(creds_flags(&s, "--creds")).arg(local).arg(format!("docker://{remote}"));
        assert!(run(&mut c).0, "buildah push --format {format}");
        let pushed = std::fs::read_to_string(&digestfile).unwrap().trim().to_string();
        let r = send(
            s.http(Method::GET, &format!("/v2/{repo}/manifests/v1"))
                .header("accept", format!("{OCI_MANIFEST}, {DOCKER_MANIFEST}")),
        )
        .await;
        assert_eq!(r.header("docker-content-digest"), Some(pushed.as_str()), "{format}");
        let want_type = if format == "oci" { OCI_MANIFEST } else { DOCKER_MANIFEST };
        assert_eq!(r.header("content-type"), Some(want_type));

        let store = format!("pull-{format}");
        let mut c = containers_tool("buildah", &scratch, &store);
        c.args(["pull", "--tls-verify=false"]).args(creds_flags(&s, "--creds")).arg(&remote);
        assert!(run(&mut c).0, "buildah pull {format}");
        let pulled_digest = inspect_field("buildah", &scratch, &store, &remote, "{{.FromImageDigest}}");
        assert_eq!(pulled_digest, pushed, "{format}");
        if format == "oci" {
            assert_eq!(inspect_field("buildah", &scratch, &store, &remote, "{{.FromImageID}}"), image_id);
        }
    }
}

#[tokio::test]
async fn oras_py_artifact_with_a_referrer() {
    let Some(python) = require_venv_python() else { return };
    let s = TestServer::start().await;
    let _reg = s.registry("orasreg").await;
    let scratch = Scratch::new("oras");
    let work = scratch.path("work");
    std::fs::create_dir_all(&work).unwrap();
    let artifact = format!("an artifact {}\n", nonce());
    std::fs::write(work.join("artifact.txt"), &artifact).unwrap();
    std::fs::write(work.join("signature.txt"), "signed\n").unwrap();
    std::fs::write(work.join("sigconfig.json"), "{\"signer\":\"tests\"}").unwrap();
    let docker_config = scratch.path("docker-config.json");
    std::fs::write(&docker_config, "{\"auths\":{}}").unwrap();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/oras_referrers.py");
    let mut c = Command::new(&python);
    c.arg(&script).arg(s.host()).arg("orasreg/files/art").arg(&work).arg(&docker_config);
    c.env("HOME", scratch.path("home")).env("DOCKER_CONFIG", scratch.path("home/.docker"));
    if let Some((u, p)) = s.creds() {
        c.env("WHARF_USERNAME", u).env("WHARF_PASSWORD", p);
    }
    let (ok, out, _) = run(&mut c);
    assert!(ok, "oras-py script");
    let v: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["artifact_status"], 201, "{v}");
    assert_eq!(v["referrer_status"], 201, "{v}");
    let subject = v["subject_digest"].as_str().unwrap();
    assert_eq!(v["referrer_oci_subject"], subject, "PUT answers OCI-Subject");
    assert_eq!(std::fs::read_to_string(work.join("pulled/artifact.txt")).unwrap(), artifact);
    assert!(!scratch.path("home/.docker/config.json").exists(), "oras-py wrote a docker config");

    let referrer = v["referrer_digest"].as_str().unwrap();
    let r = send(s.http(Method::GET, &format!("/v2/orasreg/files/art/referrers/{subject}"))).await;
    assert_eq!(r.status, StatusCode::OK);
    let list = r.json();
    let found = list["manifests"].as_array().unwrap().iter().find(|m| m["digest"] == referrer);
    let found = found.unwrap_or_else(|| panic!("referrer {referrer} not listed: {list}"));
    assert_eq!(found["artifactType"], "application/vnd.example.signature.config+json");
    assert_eq!(found["annotations"]["org.example.signed-by"], "wharf-tests");
    let r = send(s.http(
        Method::GET,
        &format!(
            "/v2/orasreg/files/art/referrers/{subject}?artifactType=application/vnd.example.signature.config%2Bjson"
        ),
    ))
    .await;
    assert_eq!(r.json()["manifests"].as_array().unwrap().len(), 1, "{}", r.json());
    assert_eq!(r.header("oci-filters-applied"), Some("artifactType"));
}

#[tokio::test]
async fn rust_oci_client_push_and_pull() {
    use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
    use oci_client::secrets::RegistryAuth;
    use oci_client::{Client, Reference};

    let s = TestServer::start().await;
    let _reg = s.registry("ociclient").await;
    let client = Client::new(ClientConfig { protocol: ClientProtocol::Http, ..Default::default() });
    let auth = match s.creds() {
        Some((u, p)) => RegistryAuth::Basic(u, p),
        None => RegistryAuth::Anonymous,
    };
    let reference: Reference = format!("{}/ociclient/rust/app:v1", s.host()).parse().unwrap();
    let img = TestImage::new("oci-client", "amd64");
    let big: Vec<u8> = (0..3 * 1024 * 1024 + 17).map(|i| (i % 253) as u8).collect();
    let layers = vec![
        ImageLayer::new(img.layer.clone(), OCI_LAYER_TAR.to_string(), None),
        ImageLayer::new(big.clone(), "application/octet-stream".to_string(), None),
    ];
    let config = Config::new(img.config.clone(), OCI_CONFIG.to_string(), None);
    let pushed = client.push(&reference, &layers, config, &auth, None).await.expect("oci-client push");
    assert!(pushed.manifest_url.contains("/v2/ociclient/rust/app/manifests/"), "{}", pushed.manifest_url);

    let r = send(s.http(Method::GET, "/v2/ociclient/rust/app/manifests/v1").header("accept", OCI_MANIFEST)).await;
    assert_eq!(r.status, StatusCode::OK);
    let registry_digest = r.header("docker-content-digest").unwrap().to_string();

    let pulled =
        client.pull(&reference, &auth, vec![OCI_LAYER_TAR, "application/octet-stream"]).await.expect("oci-client pull");
    assert_eq!(pulled.digest.as_deref(), Some(registry_digest.as_str()));
    assert_eq!(pulled.config.data, img.config);
    assert_eq!(pulled.layers.len(), 2);
    assert_eq!(pulled.layers[0].data, img.layer);
    assert_eq!(pulled.layers[1].data, big);
    let (manifest, digest) = client.pull_image_manifest(&reference, &auth).await.expect("pull manifest");
    assert_eq!(digest, registry_digest);
    assert_eq!(manifest.layers[1].digest, sha256(&big));
    let tags = client.list_tags(&reference, &auth, None, None).await.expect("list tags");
    assert_eq!(tags.tags, ["v1"]);
}

/// A copy between two repositories of one registry mounts every layer: skopeo asks for push on
/// the target and pull on the source with one `scope=` each, and the token carries both.
#[tokio::test]
async fn skopeo_copy_between_repositories_mounts_every_layer() {
    if !require_tool("skopeo") {
        return;
    }
    let s = TestServer::start().await;
    let _reg = s.registry("mountreg").await;
    let scratch = Scratch::new("skopeo-mount");
    let src = scratch.path("src");
    let img = TestImage::new(&format!("mount-{}", nonce()), "amd64");
    TestImage::write_layout(&src, &[("v1", &img.manifest[..], OCI_MANIFEST)], &[img.config.clone(), img.layer.clone()]);
    let from = format!("docker://{}/mountreg/team/src:v1", s.host());
    let mut c = skopeo(&s, &scratch);
    c.args(["copy", "--preserve-digests", "--dest-tls-verify=false"]).args(creds_flags(&s, "--dest-creds"));
    c.arg(format!("oci:{}:v1", src.display())).arg(&from);
    assert!(run(&mut c).0, "skopeo copy to wharf");

    let mut c = skopeo(&s, &scratch);
    c.args(["--debug", "copy", "--src-tls-verify=false", "--dest-tls-verify=false"])
        .args(creds_flags(&s, "--src-creds"))
        .args(creds_flags(&s, "--dest-creds"))
        .arg(&from)
        .arg(format!("docker://{}/mountreg/team/dst:v1", s.host()));
    let (ok, _, err) = run(&mut c);
    assert!(ok, "skopeo copy between repositories: {err}");
    let layers = 1;
    assert!(err.contains("scope=repository%3Amountreg%2Fteam%2Fsrc%3Apull"), "skopeo asked for the source too: {err}");
    assert_eq!(err.matches("mount OK").count(), layers, "every layer is mounted, none uploaded again:\n{err}");
    assert!(!err.contains("Error mounting"), "{err}");
    let r = send(s.http(Method::GET, &format!("/v2/mountreg/team/dst/blobs/{}", sha256(&img.layer)))).await;
    assert_eq!(r.body, img.layer, "the mounted layer reads back");
}
