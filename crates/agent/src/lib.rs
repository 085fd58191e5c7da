//! ACR Tasks' run engine: executes a [`wharf_tasks::Plan`] on this host with real tools —
//! `buildah bud` for build steps, `buildah push` for push steps, `podman run` for cmd steps —
//! and reports a masked, ACR-style log and an [`Outcome`]. Owns the runs' working directories,
//! their auth files, the containers they start and the private `containers.conf`. Must never
//! parse task files (that is `wharf-tasks`), talk HTTP, or leave a container or a credential
//! behind after a run.
//!
//! # A run
//!
//! `work_root/runs/<run_id>/` holds `workspace/` (the context: copied, extracted or cloned; mounted at
//! `/workspace` in every cmd step), `auth.json` (0600, outside the mount), the steps' env files
//! (0600) and digest files. It is created new (an existing one means the run ID is in use: the
//! run fails with `Error` and leaves it alone) and removed when the run ends.
//!
//! Steps start when every step in their `depends_on` has finished, at most
//! `max_parallel_steps` at once. A step that does not succeed (non-zero exit, timeout, an error
//! of the engine) ends the run — the steps still running are stopped and reported `Canceled` —
//! unless it has `ignore_errors`. `retries` re-run a step `retry_delay` apart; each attempt has
//! the step's full `timeout` (zero: none). The whole run's `Job::timeout` and cancellation stop
//! every running step. Stopping a step removes its container first (`podman rm -f -t 0
//! wharf-<run_id>-<step_id>`), then sends SIGTERM to the tool's process group, SIGKILL 5 s
//! later. A build's `RUN` containers are in the cgroup `/wharf-agent/<run_id>/<step index>`,
//! whose processes are killed too; the working containers a killed buildah leaves are removed.
//! Detached steps (`podman run -d`, their output followed with `podman logs -f`) count as done
//! once started; at the end of the run every container of the run is removed, except `keep`
//! ones, which are killed if still running and left in the store.
//!
//! # The commands
//!
//! Every command runs with `CONTAINERS_CONF` and `CONTAINERS_REGISTRIES_CONF` (the private
//! files below `work_root`), `REGISTRY_AUTH_FILE` (the run's auth file) and, for a private
//! store, `--root R --runroot RR` first:
//!
//! - build: `buildah bud --isolation oci --network N --layers --force-rm --retry 0
//!   --cgroup-parent /wharf-agent/<run>/<i> --authfile F [--cert-dir D] -f <context>/<file>
//!   -t T… --build-arg K=V… [--target T] [--no-cache] [--pull-always] [--platform P]
//!   <context>`. Plain-http registries are reached through `insecure = true` in the private
//!   `registries.conf` rather than `--tls-verify=false`, which would switch verification off
//!   for every registry of the build. A bare `--build-arg K` takes K from the step's
//!   environment, or is left out.
//! - push, per image: `buildah push --retry 0 --digestfile <run>/digest-<i>-<j> --authfile F
//!   [--tls-verify=false] [--cert-dir D] <ref>`; the digest file gives [`PushedImage::digest`].
//! - cmd: `podman run [--rm] [-d] --name wharf-<run>-<step> --network N --authfile F
//!   [--tls-verify=false] --env-file <run>/env-<i>-<attempt> [-e K=V for values with a line
//!   break] [--entrypoint E] [-w DIR] -v <run>/workspace:/workspace <image> <args>…`; `-w` is
//!   the step's working directory, else the plan's, else `/workspace` (relative ones are below
//!   `/workspace`), and is left out with `disable_working_directory_override`. The environment
//!   goes through a file so that its values stay out of the process table. With `cert_dir`, a
//!   missing image is pulled first (`podman pull --cert-dir D`).
//! - cleanup: `podman rm -f -t 0 --ignore <names>…`, `podman kill <kept names>…`,
//!   `buildah rm <id>` (working containers of killed builds), `podman logs -f <name>`.
//!
//! # The log
//!
//! Each line is masked (every secret of the plan becomes `***`) before it is sent. The
//! engine's own lines carry ACR's timestamp: `2026/12/04 18:30:00 Executing step ID: b.
//! Timeout(sec): 600, Working directory: '', Network: 'host'`, `Launching container with name:
//! …`, `Successfully executed container: …`, `Step ID: b marked as successful (elapsed time in
//! seconds: 0.52)` or `… marked as failed (…), exit status 5`, and, per pushed image, `- image:
//! registry: r, repository: p, tag: t, digest: sha256:…`. The tools' output lines (stdout and
//! stderr, as they come) go through unchanged. The last line is `Run ID: cf1 was successful
//! after 3s`, `Run ID: cf1 failed after 2s. Error: failed during run, err: exit status 5`, or
//! `Run ID: cf1 was canceled after 2s`.
//!
//! ```no_run
//! # async fn f(plan: wharf_tasks::Plan) -> std::io::Result<()> {
//! use wharf_agent::*;
//! let engine = Engine::new(EngineConfig::new("/var/lib/wharf/agent"))?;
//! let (log, mut lines) = tokio::sync::mpsc::unbounded_channel();
//! let job = Job {
//!     run_id: "cf1".into(),
//!     display_id: None,
//!     insecure_registries: vec![],
//!     plan,
//!     context: Context::Empty,
//!     auth: serde_json::json!({"auths": {}}),
//!     timeout: std::time::Duration::from_secs(3600),
//! };
//! let outcome = engine.execute(job, log, tokio_util::sync::CancellationToken::new()).await;
//! while let Ok(line) = lines.try_recv() { println!("{line}"); }
//! println!("{:?}", outcome.status);
//! # Ok(()) }
//! ```

mod argv;
mod cgroups;
mod conf;
mod context;
mod log;
mod orphans;
mod process;
mod run;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
pub use run::{BuildInputs, build_inputs};
use tokio_util::sync::CancellationToken;
pub use wharf_tasks::{Plan, RunStatus};

/// Where the agent runs things and with which tools.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The `buildah` binary (`/usr/bin/buildah`).
    pub buildah: PathBuf,
    /// The `podman` binary (`/usr/bin/podman`).
    pub podman: PathBuf,
    /// The agent's own directory: `containers.conf`, `registries.conf` and `runs/<run_id>/`
    /// (each run's working directory, removed when the run ends) live below it.
    pub work_root: PathBuf,
    /// A private container store; `None` uses the system one (`/var/lib/containers/storage`).
    /// Either way the store should be the agent's alone: after a killed build, the working
    /// containers that appeared during it are removed once no build of this process is in
    /// flight on the store, and another process's buildah containers would be taken for them.
    pub storage: Option<StorageDirs>,
    /// The network of builds' RUN instructions and of cmd steps' containers.
    pub network: Network,
    /// Registries (`host:port`) reached over plain http: `--tls-verify=false` on push and run,
    /// and `insecure = true` in the private `registries.conf` (for the base images of builds).
    pub insecure_registries: Vec<String>,
    /// A directory of CA certificates (`*.crt`, and `*.cert`/`*.key` client pairs) for TLS
    /// registries, as `--cert-dir` takes it: used for every registry the run talks to, in
    /// addition to the system's CAs. podman 4.3's `run` has no `--cert-dir`, so with this set
    /// a cmd step's image is pulled first (`podman pull --cert-dir`). `None`: the system's
    /// (`/etc/containers/certs.d`, the system CA bundle).
    pub cert_dir: Option<PathBuf>,
    /// How many steps of one run may run at once (0 counts as 1).
    pub max_parallel_steps: usize,
    /// Pull every image a run did not build itself, even when the store holds it (cmd steps'
    /// images: `--pull=always`; a run's first build: `--pull-always`), so that each run proves
    /// its own access with its own credentials and never uses another run's copy. `false`
    /// uses stored images as they are (images that exist only locally).
    pub pull_always: bool,
}

impl EngineConfig {
    /// The Debian defaults: `/usr/bin/buildah`, `/usr/bin/podman`, the system store, host
    /// network, no insecure registries, 4 parallel steps.
    pub fn new(work_root: impl Into<PathBuf>) -> EngineConfig {
        EngineConfig {
            buildah: PathBuf::from("/usr/bin/buildah"),
            podman: PathBuf::from("/usr/bin/podman"),
            work_root: work_root.into(),
            storage: None,
            network: Network::Host,
            insecure_registries: Vec::new(),
            cert_dir: None,
            max_parallel_steps: 4,
            pull_always: true,
        }
    }
}

/// A private container store (`--root`, `--runroot` on every buildah and podman command).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageDirs {
    /// Images and layers (`--root`).
    pub root: PathBuf,
    /// Transient state: locks, mounts, libpod's state (`--runroot`).
    pub run_root: PathBuf,
}

/// The network namespace of builds and containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// The host's own (`--network host`): steps reach the host's loopback.
    Host,
    /// Loopback only (`--network none`).
    None,
    /// A podman network name or `ns:/run/netns/NAME`, passed through.
    Named(String),
}

impl Network {
    /// The value of `--network`.
    pub fn as_arg(&self) -> &str {
        match self {
            Network::Host => "host",
            Network::None => "none",
            Network::Named(n) => n,
        }
    }
}

/// Whether the tools are there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    /// Their versions (`1.28.2`, `4.3.1`).
    Ready { buildah: String, podman: String },
    /// What is missing and the packages to install.
    Missing { message: String },
}

/// One run to execute.
#[derive(Debug, Clone)]
pub struct Job {
    /// `cf1`: names the run's directory, containers and cgroups (`[A-Za-z0-9_.-]`, at most
    /// 64, not starting with `.`). Unique among the runs of every engine on the same store.
    pub run_id: String,
    /// The id the log's `Run ID: …` lines name, when it differs from `run_id` (a server whose
    /// run ids are unique per registry only gives the engine a longer, unique `run_id`).
    pub display_id: Option<String>,
    /// Registries (`host:port`) this run reaches over plain HTTP, beside the engine's own
    /// `insecure_registries` (a server whose registries come and go names them per run).
    pub insecure_registries: Vec<String>,
    pub plan: Plan,
    /// What the run's working directory (mounted at `/workspace`) starts with.
    pub context: Context,
    /// The `auth.json` content (`{"auths":{"host":{"auth":…}|{"identitytoken":…}}}`), written
    /// 0600 beside (not inside) the working directory, passed as `REGISTRY_AUTH_FILE` and
    /// `--authfile`, and deleted with the run's directory. `null` counts as no credentials.
    pub auth: serde_json::Value,
    /// The whole run's limit.
    pub timeout: Duration,
}

/// What a run's working directory starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Context {
    /// Nothing (a task file that needs no source: `/dev/null`).
    Empty,
    /// A directory, copied (symbolic links as links, never followed).
    Dir(PathBuf),
    /// A gzip-compressed tar archive (an uploaded build source), extracted. Member names are
    /// taken relative to the working directory (a leading `/` is dropped); a member that would
    /// land outside it (`..`, through a symbolic link), a device or a FIFO fails the run, and so
    /// does more than `max_bytes` of content.
    Archive { path: PathBuf, max_bytes: u64 },
    /// A git repository, cloned (one branch or commit, shallow where git can).
    Git(GitContext),
    /// A directory made by [`Engine::stage`], moved (not copied) into the run's directory.
    Staged(PathBuf),
}

/// A git context: `url` (`https://…`, `http://…`, `file://…`), what to check out, and the folder
/// of the repository that becomes the working directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitContext {
    pub url: String,
    /// A branch, a tag or a full commit id; `None`: the remote's default branch.
    pub reference: Option<String>,
    /// A relative folder of the repository (checked: no `..`); `None`: its root.
    pub folder: Option<String>,
    /// A token sent as HTTP Basic credentials (`x-access-token:<token>`, as GitHub and Azure
    /// Repos accept personal access tokens) through git's environment, never in its argv or
    /// the URL.
    pub token: Option<String>,
}

/// A context [`Engine::stage`] filled a directory with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staged {
    /// The directory, for a [`Context::Staged`].
    pub dir: PathBuf,
    /// The commit a git context checked out (`git rev-parse HEAD`), full length.
    pub commit: Option<String>,
}

/// The run's log: one line per message, no line ending, every secret of the plan already
/// replaced with `***`.
pub type LogSink = tokio::sync::mpsc::UnboundedSender<String>;

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `Succeeded`, `Failed`, `Canceled`, `Timeout` or `Error`.
    pub status: RunStatus,
    /// Why it did not succeed, masked (`failed during run, err: exit status 5`).
    pub error: Option<String>,
    /// The steps that started, in plan order.
    pub steps: Vec<StepOutcome>,
    /// Every image pushed, in push order.
    pub images: Vec<PushedImage>,
}

/// How one step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutcome {
    pub id: String,
    /// `Succeeded`, `Failed` (non-zero exit), `Timeout`, `Canceled` or `Error` (could not run).
    pub status: RunStatus,
    /// The last attempt's exit code, when it exited.
    pub exit_code: Option<i32>,
    pub started: DateTime<Utc>,
    pub duration: Duration,
}

/// An image a push step sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedImage {
    /// `127.0.0.1:5000`, `docker.io`.
    pub registry: String,
    /// `app/hello`.
    pub repository: String,
    pub tag: Option<String>,
    /// The manifest's digest as the registry stores it (`sha256:…`).
    pub digest: String,
}

/// The engine: one per agent, shared by all its runs.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub cfg: EngineConfig,
    /// `CONTAINERS_CONF`, `CONTAINERS_REGISTRIES_CONF`.
    pub env: Vec<(String, String)>,
    /// `--root R --runroot RR`, or nothing.
    pub global: Vec<String>,
}

/// What to install when a tool is missing.
pub const INSTALL_HINT: &str = "apt-get install buildah podman runc";

impl Engine {
    /// Creates `work_root/runs` and writes the private `containers.conf` (runc; ulimits capped
    /// at this process's hard limits) and `registries.conf` (the insecure registries).
    pub fn new(cfg: EngineConfig) -> std::io::Result<Engine> {
        std::fs::create_dir_all(cfg.work_root.join("runs"))?;
        let (nofile, nproc) = conf::ulimit_caps();
        let tmp_dir = cfg.storage.as_ref().map(|s| s.run_root.join("libpod"));
        let containers_conf = cfg.work_root.join("containers.conf");
        std::fs::write(&containers_conf, conf::containers_conf(nofile, nproc, tmp_dir.as_deref()))?;
        let registries_conf = cfg.work_root.join("registries.conf");
        std::fs::write(&registries_conf, conf::registries_conf(&cfg.insecure_registries))?;
        let mut global = Vec::new();
        if let Some(s) = &cfg.storage {
            std::fs::create_dir_all(&s.root)?;
            std::fs::create_dir_all(&s.run_root)?;
            global = vec!["--root".into(), argv::path(&s.root), "--runroot".into(), argv::path(&s.run_root)];
        }
        let env = vec![
            ("CONTAINERS_CONF".into(), argv::path(&containers_conf)),
            ("CONTAINERS_REGISTRIES_CONF".into(), argv::path(&registries_conf)),
        ];
        Ok(Engine { inner: Arc::new(Inner { cfg, env, global }) })
    }

    /// The configuration it was made with.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.cfg
    }

    /// The `--root`/`--runroot` flags (empty for the system store), for callers that run
    /// their own buildah/podman commands against the engine's store.
    pub fn storage_flags(&self) -> &[String] {
        &self.inner.global
    }

    /// The environment (`CONTAINERS_CONF`, `CONTAINERS_REGISTRIES_CONF`) every tool runs with.
    pub fn tool_env(&self) -> &[(String, String)] {
        &self.inner.env
    }

    /// Asks `buildah --version`, `podman --version` and looks for `runc`, each bounded (10 s).
    pub async fn probe(&self) -> Availability {
        let cfg = &self.inner.cfg;
        let mut missing = Vec::new();
        let buildah = version(&cfg.buildah, &self.inner.env).await.map_err(|e| missing.push(e)).ok();
        let podman = version(&cfg.podman, &self.inner.env).await.map_err(|e| missing.push(e)).ok();
        if find_runc().is_none() {
            missing.push("runc: not found in PATH, /usr/sbin or /usr/bin".to_string());
        }
        match (buildah, podman) {
            (Some(buildah), Some(podman)) if missing.is_empty() => Availability::Ready { buildah, podman },
            _ => Availability::Missing {
                message: format!(
                    "the task engine needs buildah, podman and runc: {}; install them with `{INSTALL_HINT}`",
                    missing.join("; ")
                ),
            },
        }
    }

    /// Fills a new directory from `context` ahead of a run, for a caller that must read the
    /// context before it can plan the run (a task file inside an uploaded source or a git
    /// repository): the directory is `work_root/staged/<name>`, and a [`Context::Staged`] with
    /// it moves it into the run. Cloning logs to `log` (masked with `secrets`). On an error
    /// nothing is left behind; a staged directory that no run takes is the caller's to
    /// [`Engine::discard`]. A git context's checked-out commit comes back with it.
    pub async fn stage(
        &self,
        name: &str,
        context: &Context,
        log: LogSink,
        secrets: &[String],
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<Staged, String> {
        let log = log::RunLog::new(log, secrets);
        if name.is_empty()
            || name.starts_with('.')
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        {
            return Err(format!("invalid staging name '{name}'"));
        }
        let root = self.inner.cfg.work_root.join("staged");
        let dir = root.join(name);
        let scratch = root.join(format!("{name}.scratch"));
        std::fs::create_dir_all(&root).map_err(|e| format!("creating {}: {e}", root.display()))?;
        std::fs::create_dir(&scratch).map_err(|e| format!("creating {}: {e}", scratch.display()))?;
        let deadline = tokio::time::Instant::now() + timeout;
        let filled = context::fill(&scratch, &dir, context, &log, deadline, cancel).await;
        let _ = std::fs::remove_dir_all(&scratch);
        if filled.is_err() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        filled.map(|commit| Staged { dir, commit })
    }

    /// Removes a directory [`Engine::stage`] made that no run took.
    pub fn discard(&self, staged: &Path) {
        if staged.starts_with(self.inner.cfg.work_root.join("staged")) {
            let _ = std::fs::remove_dir_all(staged);
        }
    }

    /// Runs `job` to its end (or `cancel`, or its timeout) and reports how it went. Every log
    /// line goes to `log`, masked. The run's directory and containers (except `keep` ones) are
    /// gone when this returns.
    pub async fn execute(&self, job: Job, log: LogSink, cancel: CancellationToken) -> Outcome {
        run::execute(self.inner.clone(), self.probe().await, job, log, cancel).await
    }
}

async fn version(program: &Path, env: &[(String, String)]) -> Result<String, String> {
    match process::quiet(program, &["--version".into()], env, Duration::from_secs(10)).await {
        // `buildah version 1.28.2 (image-spec …)`, `podman version 4.3.1`.
        Ok((0, out)) => Ok(out.split_whitespace().nth(2).unwrap_or("").to_string()),
        Ok((rc, out)) => Err(format!("{} --version exited {rc}: {}", program.display(), out.trim())),
        Err(e) => Err(format!("{}: {e}", program.display())),
    }
}

fn find_runc() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"].map(PathBuf::from))
        .map(|d| d.join("runc"))
        .find(|p| p.is_file())
}
