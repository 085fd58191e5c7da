//! The run executor: takes queued runs from the metadata store (`run_claim`), stages each one's
//! context (an uploaded source, a git repository) through the engine, turns it into a
//! plan (`wharf-tasks`) with the credentials its identity is entitled to, executes it on the
//! engine (`wharf-agent`: buildah and podman), writes its log, and records how it ended.
//!
//! A run's record keeps its ARM `properties` (what clients see) and, until it finishes, the
//! request it was queued with (task file, values, credentials — secrets included); finishing
//! removes the request, so secrets live no longer than the run. Credentials are minted when the
//! run starts, never stored: a registry refresh token for the run's identity (its task's system-
//! or user-assigned identity, the caller of a quick run, or — `loginMode: Default` in the
//! legacy mode — a run token for its own registry), bound to each login server, handed to the
//! engine as an auth file. Each registry then decides what the token may do, through its
//! network rules and role assignments, as for any other caller.
//!
//! Must never: mint a credential for an identity the run's task does not carry, leave a run
//! `Running` after its process is gone (start-up marks such runs `Error`), or write a secret
//! into a log or a run record that outlives the run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use wharf_arm::task::{CustomCredential, RUNS, TASKS};
use wharf_identity::{DirectoryPrincipal, HostResource, ManagedIdentityRef, RegistrySubject};
use wharf_storage::{NewRun, RunRecord, StorageError};
use wharf_tasks::RunStatus;
use wharf_vocab::PrincipalType;

use crate::model::registries::StoredRegistry;
use crate::run_queue::EngineState;
use crate::state::{AppState, RegistryInfo};

/// A name and value of a run request (`values`, `arguments`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Value {
    pub name: String,
    pub value: String,
    pub secret: bool,
}

/// What a run executes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Source {
    /// A task file (an encoded task's content) and its values file.
    Yaml { content: String, values: String },
    /// A task file inside the run's context (`FileTask`, `FileTaskRunRequest`), and optionally
    /// a values file beside it, both read when the run starts.
    File { path: String, values: Option<String> },
    /// A Dockerfile build of the run's context (`Docker`, `DockerBuildRequest`).
    #[serde(rename_all = "camelCase")]
    Docker {
        images: Vec<String>,
        dockerfile: String,
        push: bool,
        no_cache: bool,
        target: Option<String>,
        /// `os/architecture[/variant]`.
        platform: Option<String>,
    },
}

/// A file of the context (a relative path that stays inside it), read.
fn context_file(context: &std::path::Path, relative: &str) -> Result<String, String> {
    let rel = std::path::Path::new(relative.trim_start_matches("./"));
    if rel.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
        return Err(format!("the task file path '{relative}' must be relative to the context, without '..'"));
    }
    let path = context.join(rel);
    let canonical = path.canonicalize().map_err(|_| format!("the context has no file '{relative}'"))?;
    let root = context.canonicalize().map_err(|e| format!("reading the context: {e}"))?;
    if !canonical.starts_with(&root) {
        return Err(format!("the file '{relative}' leads outside the context"));
    }
    std::fs::read_to_string(&canonical).map_err(|e| format!("reading '{relative}' from the context: {e}"))
}

impl Source {
    /// The source as `wharf-tasks` plans it, and its values (the values file's, then `set`).
    /// A task file inside the context is read from `context` (the staged context, when the run
    /// starts).
    pub fn planned(
        &self,
        set: &[Value],
        arguments: &[Value],
        context: Option<&std::path::Path>,
    ) -> Result<(wharf_tasks::TaskSource, wharf_tasks::Values), String> {
        let set: Vec<wharf_tasks::SetValue> = set
            .iter()
            .map(|v| wharf_tasks::SetValue { name: v.name.clone(), value: v.value.clone(), is_secret: v.secret })
            .collect();
        let values = |file: Option<&str>| {
            wharf_tasks::Values::from_request(file.filter(|f| !f.trim().is_empty()), &set)
                .map_err(|e| format!("the values are invalid: {e}"))
        };
        match self {
            Source::Yaml { content, values: file } => {
                Ok((wharf_tasks::TaskSource::Yaml(content.clone()), values(Some(file.as_str()))?))
            }
            Source::File { path, values: values_file } => {
                let context = context.ok_or("a task file in the context needs a context")?;
                let content = context_file(context, path)?;
                let file = values_file.as_deref().map(|v| context_file(context, v)).transpose()?;
                Ok((wharf_tasks::TaskSource::Yaml(content), values(file.as_deref())?))
            }
            Source::Docker { images, dockerfile, push, no_cache, target, platform } => Ok((
                wharf_tasks::TaskSource::Docker {
                    image_names: images.clone(),
                    dockerfile: dockerfile.clone(),
                    context: String::new(),
                    arguments: arguments
                        .iter()
                        .map(|a| wharf_tasks::Argument {
                            name: a.name.clone(),
                            value: a.value.clone(),
                            is_secret: a.secret,
                        })
                        .collect(),
                    target: target.clone(),
                    push: *push,
                    no_cache: *no_cache,
                    platform: platform.clone(),
                },
                values(None)?,
            )),
        }
    }

    /// The create- and schedule-time check: the task file reads, with placeholder run
    /// variables (values missing now may come at run time). A task file inside the context is
    /// checked when the run starts.
    pub fn validate(&self, set: &[Value], arguments: &[Value]) -> Result<(), String> {
        if matches!(self, Source::File { .. }) {
            return Ok(());
        }
        let (source, values) = self.planned(set, arguments, None)?;
        wharf_tasks::validate(&source, &values).map(|_| ()).map_err(|e| format!("The task file is invalid: {e}"))
    }
}

/// What a run's working directory starts with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum RunContext {
    /// Nothing (`/dev/null`).
    #[default]
    Empty,
    /// An uploaded build source, claimed for this run (`sources::claim`).
    Uploaded { upload: String },
    /// A git repository, with the task's access token.
    Git { url: String, reference: Option<String>, folder: Option<String>, token: Option<String> },
}

/// Whom a run acts as on its own registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Identity {
    /// The run's own token (legacy mode, `loginMode: Default`).
    RunToken,
    /// No credentials.
    Nothing,
    /// An identity of the run's task: `[system]` or a user-assigned identity's client id.
    Task { selector: String },
    /// The directory principal that scheduled the quick run (checked again when it starts).
    Caller { object_id: String },
}

/// A run as it was queued.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRequest {
    pub task: Option<String>,
    pub task_id: Option<String>,
    pub source: Source,
    #[serde(default)]
    pub context: RunContext,
    pub values: Vec<Value>,
    pub arguments: Vec<Value>,
    pub identity: Identity,
    #[serde(with = "custom_serde")]
    pub custom: BTreeMap<String, CustomCredential>,
    pub timeout: u64,
    pub platform: serde_json::Value,
    pub agent: serde_json::Value,
    pub archive: bool,
    /// The branch a git context's pinned commit came from (a source trigger's run), for
    /// `{{.Run.Branch}}`; `None`: the context's reference is the branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
}

mod custom_serde {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use wharf_arm::task::CustomCredential;

    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Stored {
        identity: Option<String>,
        username: Option<String>,
        password: Option<String>,
    }

    pub fn serialize<S: Serializer>(m: &BTreeMap<String, CustomCredential>, s: S) -> Result<S::Ok, S::Error> {
        let out: BTreeMap<&String, Stored> = m
            .iter()
            .map(|(k, c)| {
                let v = match c {
                    CustomCredential::Identity(i) => {
                        Stored { identity: Some(i.clone()), username: None, password: None }
                    }
                    CustomCredential::UserPassword { username, password } => {
                        Stored { identity: None, username: Some(username.clone()), password: Some(password.clone()) }
                    }
                };
                (k, v)
            })
            .collect();
        out.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, CustomCredential>, D::Error> {
        let m: BTreeMap<String, Stored> = BTreeMap::deserialize(d)?;
        Ok(m.into_iter()
            .filter_map(|(k, s)| {
                let c = match (s.identity, s.username, s.password) {
                    (Some(i), _, _) => CustomCredential::Identity(i),
                    (None, Some(username), Some(password)) => CustomCredential::UserPassword { username, password },
                    _ => return None,
                };
                Some((k, c))
            })
            .collect())
    }
}

/// Path prefix of the run-log plane (`logs.rs`) and the blob name of a log.
pub const LOG_PREFIX: &str = "/wharf-logs/";
pub const LOG_BLOB_NAME: &str = "rawtext.log";

/// What a log link's signature covers: `{registry key}/{run id}`.
pub fn log_resource(registry: &str, run: &str) -> String {
    format!("{registry}/{}", run.to_ascii_lowercase())
}

/// The signature of a read link to `resource` valid until `expiry` (Unix seconds): an HMAC with
/// the deployment key.
pub fn log_signature(state: &AppState, resource: &str, expiry: i64) -> String {
    wharf_identity::fingerprint(&state.secret_key, &format!("wharf run log\nr\n{resource}\n{expiry}"))
}

/// The link to a run's log, valid until `expiry`, for a client that reached this server at
/// `base` (`scheme://host`): what `listLogSasUrl` answers.
pub fn log_link(state: &AppState, base: &str, registry: &str, run: &str, expiry: i64) -> String {
    let sig = log_signature(state, &log_resource(registry, run), expiry);
    format!("{base}{LOG_PREFIX}{registry}/{}/{LOG_BLOB_NAME}?se={expiry}&sp=r&sig={sig}", run.to_ascii_lowercase())
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Why a run was queued: by hand (`scheduleRun`: a task's run or a quick run, ACR's `QuickRun`)
/// or by one of a task's triggers (an `AutoRun`, with the trigger's descriptor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOrigin {
    Manual,
    /// A timer trigger's tick (`timerTrigger: {timerTriggerName, scheduleOccurrence}`).
    Timer {
        trigger: String,
        occurrence: DateTime<Utc>,
    },
    /// A base image's tag was pushed with new content (`imageUpdateTrigger`); `registry` is
    /// its login server.
    ImageUpdate {
        registry: String,
        repository: String,
        tag: String,
        digest: String,
    },
    /// A source trigger's webhook (`sourceTrigger: {id, eventType, commitId, pullRequestId,
    /// repositoryUrl, branchName, providerType}`).
    Source(SourceEvent),
}

/// What a source trigger's webhook reported, as a run's `sourceTrigger` says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceEvent {
    /// The delivery's id (GitHub's `X-GitHub-Delivery`, Azure DevOps' event id).
    pub id: String,
    /// `commit` or `pullrequest`.
    pub event_type: &'static str,
    pub commit: String,
    pub pull_request: Option<String>,
    pub repository_url: String,
    pub branch: String,
    /// `Github` or `VisualStudioTeamService`.
    pub provider: &'static str,
}

/// Queues a run of `registry`, scheduled by hand.
pub async fn enqueue(
    state: &AppState,
    registry: &StoredRegistry,
    request: RunRequest,
) -> Result<RunRecord, StorageError> {
    let now = Utc::now();
    let run = state.meta.run_create(&new_run(registry, &request, &RunOrigin::Manual, now), now).await?;
    if let RunContext::Uploaded { upload } = &request.context {
        crate::sources::note_run(state, &registry.key().0, upload, &run.run_id).await;
    }
    queued(state, registry, &run);
    Ok(run)
}

/// The queued run's record for `request`, before the store numbers it.
pub fn new_run(registry: &StoredRegistry, request: &RunRequest, origin: &RunOrigin, now: DateTime<Utc>) -> NewRun {
    let key = registry.key();
    let mut properties = json!({
        "status": "Queued",
        // A run scheduled by hand (a task's or a quick run) is a QuickRun; a trigger's is an
        // AutoRun.
        "runType": match origin {
            RunOrigin::Manual => "QuickRun",
            RunOrigin::Timer { .. } | RunOrigin::ImageUpdate { .. } | RunOrigin::Source(_) => "AutoRun",
        },
        "createTime": time(now),
        "lastUpdatedTime": time(now),
        "task": request.task,
        "platform": request.platform,
        "agentConfiguration": request.agent,
        "timeout": request.timeout,
        "isArchiveEnabled": request.archive,
        "outputImages": [],
        "provisioningState": "Succeeded",
        "sourceRegistryAuth": match &request.identity {
            Identity::RunToken => "Default",
            Identity::Nothing => "None",
            Identity::Task { .. } | Identity::Caller { .. } => "Identity",
        },
    });
    if let RunOrigin::Timer { trigger, occurrence } = origin {
        properties["timerTrigger"] = json!({
            "timerTriggerName": trigger,
            "scheduleOccurrence": occurrence.to_rfc3339_opts(SecondsFormat::Secs, true),
        });
    }
    if let RunOrigin::ImageUpdate { registry, repository, tag, digest } = origin {
        properties["imageUpdateTrigger"] = json!({
            "id": uuid::Uuid::new_v4().to_string(),
            "timestamp": time(now),
            "images": [{"registry": registry, "repository": repository, "tag": tag, "digest": digest}],
        });
    }
    if let RunOrigin::Source(e) = origin {
        properties["sourceTrigger"] = json!({
            "id": e.id,
            "eventType": e.event_type,
            "commitId": e.commit,
            "pullRequestId": e.pull_request,
            "repositoryUrl": e.repository_url,
            "branchName": e.branch,
            "providerType": e.provider,
        });
    }
    NewRun {
        registry: key.clone(),
        id_prefix: wharf_tasks::run_id_prefix(&key.0),
        task: request.task.clone(),
        status: RunStatus::Queued.as_str().to_string(),
        body: json!({"properties": properties, "request": request}),
    }
}

/// After a run was created: log it and wake the executor.
pub fn queued(state: &AppState, registry: &StoredRegistry, run: &RunRecord) {
    tracing::info!(registry = %registry.record.name, run = %run.run_id, task = ?run.task, "run queued");
    state.run_queue.wake();
}

/// A run as ARM shows it.
pub fn run_json(registry_id: &str, run: &RunRecord) -> serde_json::Value {
    let mut p = run.body["properties"].clone();
    p["runId"] = json!(run.run_id);
    p["status"] = json!(run.status);
    json!({"id": format!("{registry_id}/runs/{}", run.run_id), "name": run.run_id, "type": RUNS, "properties": p})
}

/// The log's `Complete` metadata value once the run is over (`None` while it is not).
pub async fn log_completion(state: &AppState, registry: &str, run: &str) -> Result<Option<&'static str>, StorageError> {
    let key = wharf_storage::RegistryKey(registry.to_string());
    let Some(r) = state.meta.run_get(&key, run).await? else { return Ok(None) };
    Ok(RunStatus::parse(&r.status).filter(|s| s.is_finished()).map(completion))
}

/// The blob metadata value az reads a run's outcome from.
fn completion(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Succeeded => "successful",
        RunStatus::Failed => "failed",
        RunStatus::Canceled => "canceled",
        RunStatus::Timeout => "timedout",
        _ => "internalerror",
    }
}

/// Cancels a run: a queued one at once (its log says so), a running one through its executor.
pub async fn cancel(state: &AppState, run: RunRecord) -> Result<(), StorageError> {
    if run.status == RunStatus::Queued.as_str() {
        let mut done = run.clone();
        let now = Utc::now();
        finish_record(&mut done, RunStatus::Canceled, Some("The run was canceled before it started.".into()), &[], now);
        if state.meta.run_update(&done, RunStatus::Queued.as_str(), now).await? {
            write_log_line(state, &done, "The run was canceled before it started.").await;
            release_context(state, &run).await;
            return Ok(());
        }
    }
    if !state.run_queue.cancel(&run.registry.0, &run.run_id) {
        // Executing elsewhere (another replica) or about to start here: the executor checks
        // for cancellation once more before it starts.
        let mut flagged = state.meta.run_get(&run.registry, &run.run_id).await?.unwrap_or(run);
        let expected = flagged.status.clone();
        flagged.body["cancelRequested"] = json!(true);
        state.meta.run_update(&flagged, &expected, Utc::now()).await?;
    }
    Ok(())
}

fn finish_record(
    run: &mut RunRecord,
    status: RunStatus,
    error: Option<String>,
    images: &[serde_json::Value],
    now: DateTime<Utc>,
) {
    run.status = status.as_str().to_string();
    let p = &mut run.body["properties"];
    p["status"] = json!(status.as_str());
    p["finishTime"] = json!(time(now));
    p["lastUpdatedTime"] = json!(time(now));
    if !images.is_empty() {
        p["outputImages"] = json!(images);
    }
    if let Some(e) = error {
        p["runErrorMessage"] = json!(e);
    }
    if let Some(o) = run.body.as_object_mut() {
        o.remove("request");
    }
}

async fn write_log_line(state: &AppState, run: &RunRecord, line: &str) {
    let path = state.run_queue.log_path(&run.registry.0, &run.run_id);
    if let Some(dir) = path.parent() {
        let _ = tokio::fs::create_dir_all(dir).await;
    }
    if let Ok(mut f) = tokio::fs::OpenOptions::new().create(true).append(true).open(&path).await {
        let _ = f.write_all(format!("{line}\r\n").as_bytes()).await;
        let _ = f.sync_data().await;
    }
}

/// Start-up: runs this deployment was executing when its server stopped are over (`Error`),
/// queued runs stay queued; then the executor loop.
pub fn spawn(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = recover(&state).await {
            tracing::error!(error = %e, "recovering interrupted runs failed");
        }
        executor_loop(state).await
    })
}

async fn recover(state: &AppState) -> Result<(), StorageError> {
    for run in state.meta.runs_in_progress().await? {
        let mut done = run.clone();
        let now = Utc::now();
        let reason = "The server stopped while the run was executing; run it again.";
        finish_record(&mut done, RunStatus::Error, Some(reason.into()), &[], now);
        if state.meta.run_update(&done, &run.status, now).await? {
            write_log_line(state, &done, &format!("Run ID: {} failed: {reason}", done.run_id)).await;
            release_context(state, &run).await;
            tracing::warn!(run = %run.run_id, "a run interrupted by a stop is marked Error");
        }
    }
    Ok(())
}

/// How long a claimed run's lease lasts before another agent may consider it lost.
const LEASE: Duration = Duration::from_secs(120);

async fn executor_loop(state: Arc<AppState>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(state.run_queue.max_parallel));
    loop {
        let permit = match slots.clone().acquire_owned().await {
            Ok(p) => p,
            Err(_) => return,
        };
        let now = Utc::now();
        let lease = now + chrono::Duration::from_std(LEASE).expect("a short lease");
        match state.meta.run_claim(&state.run_queue.agent_id, lease, now).await {
            Ok(Some(run)) => {
                let state = state.clone();
                tokio::spawn(async move {
                    let (registry, id) = (run.registry.0.clone(), run.run_id.clone());
                    execute(&state, run).await;
                    state.run_queue.finished(&registry, &id);
                    drop(permit);
                    state.run_queue.wake();
                });
            }
            Ok(None) => {
                drop(permit);
                tokio::select! {
                    _ = state.run_queue.woken() => {}
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
            }
            Err(e) => {
                drop(permit);
                tracing::error!(error = %e, "claiming a queued run failed");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}

/// The registry a run belongs to, by its key.
pub(crate) async fn registry_of(
    state: &AppState,
    key: &wharf_storage::RegistryKey,
) -> Result<Option<StoredRegistry>, StorageError> {
    for r in crate::model::records_of_type(&*state.meta, wharf_arm::types::REGISTRY).await? {
        let stored = StoredRegistry::from_record(r)?;
        if stored.key() == *key {
            return Ok(Some(stored));
        }
    }
    Ok(None)
}

async fn execute(state: &AppState, claimed: RunRecord) {
    let cancel = state.run_queue.cancel_switch(&claimed.registry.0, &claimed.run_id);
    let mut run = claimed;
    let now = Utc::now();
    run.status = RunStatus::Running.as_str().to_string();
    run.body["properties"]["status"] = json!("Running");
    run.body["properties"]["startTime"] = json!(time(now));
    run.body["properties"]["lastUpdatedTime"] = json!(time(now));
    match state.meta.run_update(&run, RunStatus::Started.as_str(), now).await {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            tracing::error!(error = %e, run = %run.run_id, "starting a run failed");
            return;
        }
    }
    let log_path = state.run_queue.log_path(&run.registry.0, &run.run_id);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let writer = tokio::spawn(write_log(log_path, rx));
    let started = std::time::Instant::now();
    let (status, error, images) = match prepare(state, &run, &tx, &cancel).await {
        Err(reason) => {
            let _ = tx.send(format!("{} Run ID: {} failed to start: {reason}", log_time(), run.run_id));
            (RunStatus::Error, Some(reason), vec![])
        }
        Ok(_) if run.body["cancelRequested"].as_bool() == Some(true) => {
            (RunStatus::Canceled, Some("The run was canceled.".to_string()), vec![])
        }
        Ok((job, engine)) => {
            let _ = tx.send(format!(
                "{} Run ID: {} is running on agent {}",
                log_time(),
                run.run_id,
                state.run_queue.agent_id
            ));
            let renew = lease_renewal(state, &run);
            let outcome = tokio::select! {
                o = engine.execute(job, tx.clone(), cancel.clone()) => o,
                _ = renew => unreachable!("the lease renewal runs until dropped"),
            };
            let images: Vec<serde_json::Value> = outcome
                .images
                .iter()
                .map(|i| json!({"registry": i.registry, "repository": i.repository, "tag": i.tag, "digest": i.digest}))
                .collect();
            (outcome.status, outcome.error, images)
        }
    };
    drop(tx);
    let _ = writer.await;
    release_context(state, &run).await;
    let now = Utc::now();
    let mut done = run.clone();
    finish_record(&mut done, status, error, &images, now);
    match state.meta.run_update(&done, RunStatus::Running.as_str(), now).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(run = %run.run_id, "the run changed while it executed; its outcome was not recorded")
        }
        Err(e) => tracing::error!(error = %e, run = %run.run_id, "recording a run's outcome failed"),
    }
    tracing::info!(run = %run.run_id, status = status.as_str(), seconds = started.elapsed().as_secs_f64(), "run finished");
}

/// Extends the run's lease until dropped.
async fn lease_renewal(state: &AppState, run: &RunRecord) {
    loop {
        tokio::time::sleep(LEASE / 3).await;
        let until = Utc::now() + chrono::Duration::from_std(LEASE).expect("a short lease");
        if let Err(e) = state.meta.run_renew(&run.registry, &run.run_id, &state.run_queue.agent_id, until).await {
            tracing::warn!(error = %e, run = %run.run_id, "renewing a run's lease failed");
        }
    }
}

fn log_time() -> String {
    Utc::now().format("%Y/%m/%d %H:%M:%S").to_string()
}

/// Writes log lines as they come, each ending in CRLF (az streams complete CRLF lines).
async fn write_log(path: std::path::PathBuf, mut rx: tokio::sync::mpsc::UnboundedReceiver<String>) {
    if let Some(dir) = path.parent() {
        let _ = tokio::fs::create_dir_all(dir).await;
    }
    let Ok(mut f) = tokio::fs::OpenOptions::new().create(true).append(true).open(&path).await else {
        tracing::error!(path = %path.display(), "cannot open a run log");
        while rx.recv().await.is_some() {}
        return;
    };
    while let Some(line) = rx.recv().await {
        let mut text = line.replace('\r', "");
        text.push_str("\r\n");
        if f.write_all(text.as_bytes()).await.is_err() {
            break;
        }
        let _ = f.flush().await;
    }
    let _ = f.sync_data().await;
}

/// The job and engine for a run, or why it cannot start.
async fn prepare(
    state: &AppState,
    run: &RunRecord,
    log: &tokio::sync::mpsc::UnboundedSender<String>,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<(wharf_agent::Job, Arc<wharf_agent::Engine>), String> {
    let engine = match &state.run_queue.engine {
        EngineState::Ready(e) => e.clone(),
        EngineState::Unavailable(why) => return Err(why.clone()),
    };
    let request: RunRequest = serde_json::from_value(run.body["request"].clone())
        .map_err(|e| format!("the run's request could not be read back ({e})"))?;
    let registry = registry_of(state, &run.registry)
        .await
        .map_err(|e| format!("reading the run's registry failed: {e}"))?
        .ok_or("the run's registry no longer exists")?;
    let info = state
        .registry(&registry.record.name)
        .await
        .map_err(|e| format!("reading the run's registry failed: {e}"))?
        .ok_or("the run's registry no longer exists")?;
    let task = match &request.task_id {
        Some(id) => match crate::model::identities::host(&*state.meta, id).await {
            Ok(Some(h)) => Some(h),
            Ok(None) => return Err(format!("the task '{}' was deleted", request.task.clone().unwrap_or_default())),
            Err(e) => return Err(format!("reading the run's task failed: {e}")),
        },
        None => None,
    };
    let login_server = state.login_server(&registry.record.name);
    let mut vars = wharf_tasks::RunVars {
        id: run.run_id.clone(),
        registry: login_server.clone(),
        registry_name: registry.record.name.clone(),
        date: run.created_at.format("%Y%m%d-%H%M%Sz").to_string(),
        os: "linux".into(),
        architecture: request.platform["architecture"].as_str().unwrap_or("amd64").to_string(),
        task_name: request.task.clone().unwrap_or_default(),
        // Filled in once the context is staged (the commit its clone checked out).
        commit: String::new(),
        branch: match (&request.branch, &request.context) {
            (Some(b), _) => b.clone(),
            (None, RunContext::Git { reference: Some(r), .. }) => r.clone(),
            _ => String::new(),
        },
        shared_volume: "/workspace".into(),
    };
    // Run ids are unique per registry; the engine's names (directories, containers) must be
    // unique across the deployment.
    let engine_id = format!(
        "{}-{}",
        run.run_id,
        run.registry.0.chars().filter(char::is_ascii_alphanumeric).take(12).collect::<String>()
    );
    let staged = stage(state, &engine, &engine_id, run, &request, log, cancel).await?;
    let commit = staged.as_ref().and_then(|s| s.commit.clone());
    vars.commit = commit.unwrap_or_default();
    let staged = staged.map(|s| s.dir);
    let planned = plan_run(&request, &vars, staged.as_deref());
    let mut plan = match planned {
        Ok(p) => p,
        Err(e) => {
            if let Some(dir) = &staged {
                engine.discard(dir);
            }
            return Err(e);
        }
    };
    crate::triggers::base_images::record(state, run, &request, &plan, staged.as_deref(), log).await;
    plan.secrets.extend(request.arguments.iter().filter(|a| a.secret).map(|a| a.value.clone()));
    if let RunContext::Git { token: Some(t), .. } = &request.context {
        plan.secrets.push(t.clone());
    }
    let context = staged.map_or(wharf_agent::Context::Empty, wharf_agent::Context::Staged);

    let mut auths = serde_json::Map::new();
    // Without TLS, this deployment's registries are reached over plain HTTP.
    let mut insecure = vec![];
    if !state.tls {
        insecure.push(login_server.clone());
    }
    if let Some(token) = source_token(state, run, &request, task.as_ref(), &info).await? {
        auths.insert(login_server.clone(), identity_auth(&token));
    }
    for (server, cred) in &request.custom {
        let entry = match cred {
            CustomCredential::UserPassword { username, password } => {
                use base64::Engine as _;
                plan.secrets.push(password.clone());
                json!({"auth": base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))})
            }
            CustomCredential::Identity(selector) => {
                let task = task.as_ref().ok_or("a quick run has no identity for custom registries")?;
                let other = match state.registry_of_host(server).await {
                    Ok(crate::state::HostRegistry::Registry(r)) => r,
                    _ => {
                        return Err(format!(
                            "the custom registry '{server}' is not a registry of this deployment: an identity can sign in only to those; give it a user name and password"
                        ));
                    }
                };
                if !state.tls && !insecure.contains(server) {
                    insecure.push(server.clone());
                }
                let principal = task_principal(task, selector)?;
                identity_auth(&mint(state, &principal_subject(state, &principal), &other, server)?)
            }
        };
        auths.insert(server.clone(), entry);
    }
    let job = wharf_agent::Job {
        run_id: engine_id,
        display_id: Some(run.run_id.clone()),
        insecure_registries: insecure,
        plan,
        context,
        auth: json!({"auths": auths}),
        timeout: Duration::from_secs(request.timeout),
    };
    Ok((job, engine))
}

/// How long staging a context (extracting a source, cloning a repository) may take at most:
/// the run's own timeout bounds it too.
const STAGE_TIMEOUT: Duration = Duration::from_secs(1800);

/// The run's context, staged by the engine (`None`: the run starts with an empty workspace).
async fn stage(
    state: &AppState,
    engine: &wharf_agent::Engine,
    name: &str,
    run: &RunRecord,
    request: &RunRequest,
    log: &tokio::sync::mpsc::UnboundedSender<String>,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<Option<wharf_agent::Staged>, String> {
    let context = match &request.context {
        RunContext::Empty => return Ok(None),
        RunContext::Uploaded { upload } => {
            let path = crate::sources::claimed(state, &run.registry.0, upload);
            if !path.is_file() {
                return Err("the run's uploaded source is gone: upload it again and schedule a new run".into());
            }
            wharf_agent::Context::Archive { path, max_bytes: state.config.tasks.max_source_size.saturating_mul(8) }
        }
        RunContext::Git { url, reference, folder, token } => wharf_agent::Context::Git(wharf_agent::GitContext {
            url: url.clone(),
            reference: reference.clone(),
            folder: folder.clone(),
            token: token.clone(),
        }),
    };
    let secrets: Vec<String> = match &request.context {
        RunContext::Git { token: Some(t), .. } => vec![t.clone()],
        _ => vec![],
    };
    let timeout = STAGE_TIMEOUT.min(Duration::from_secs(request.timeout.max(1)));
    engine.stage(name, &context, log.clone(), &secrets, timeout, cancel).await.map(Some)
}

/// The run's plan, reading a task file inside the staged context.
fn plan_run(
    request: &RunRequest,
    vars: &wharf_tasks::RunVars,
    context: Option<&std::path::Path>,
) -> Result<wharf_tasks::Plan, String> {
    let (source, values) = request.source.planned(&request.values, &request.arguments, context)?;
    wharf_tasks::plan(&source, vars, &values).map_err(|e| format!("the task file is invalid: {e}"))
}

/// The run is over: its uploaded source goes.
async fn release_context(state: &AppState, run: &RunRecord) {
    if let Ok(request) = serde_json::from_value::<RunRequest>(run.body["request"].clone())
        && let RunContext::Uploaded { upload } = &request.context
    {
        crate::sources::release(state, &run.registry.0, upload).await;
    }
}

fn identity_auth(refresh_token: &str) -> serde_json::Value {
    use base64::Engine as _;
    json!({
        "auth": base64::engine::general_purpose::STANDARD.encode(format!("{}:", wharf_identity::NULL_GUID_USERNAME)),
        "identitytoken": refresh_token,
    })
}

/// The directory principal of a task's identity (`[system]` or a user-assigned client id).
fn task_principal(task: &crate::model::identities::Host, selector: &str) -> Result<DirectoryPrincipal, String> {
    let (object_id, client_id, system) = task.carried_identity(selector)?;
    let identity = if system {
        ManagedIdentityRef::SystemAssigned
    } else {
        let id = task
            .resource
            .identity
            .iter()
            .flat_map(|i| i.user_assigned_identities.iter())
            .find(|(_, u)| u.client_id.eq_ignore_ascii_case(&client_id))
            .map(|(id, _)| id.clone())
            .unwrap_or_default();
        ManagedIdentityRef::UserAssigned { resource_id: id }
    };
    Ok(DirectoryPrincipal::ManagedIdentity {
        object_id,
        client_id,
        identity,
        host: HostResource { id: task.record.id.clone(), resource_type: TASKS.to_string() },
    })
}

fn principal_subject(state: &AppState, p: &DirectoryPrincipal) -> RegistrySubject {
    crate::auth::credentials::subject_of(state, p)
}

/// A registry refresh token for `subject` at `registry`'s login server `server`.
fn mint(state: &AppState, subject: &RegistrySubject, registry: &RegistryInfo, server: &str) -> Result<String, String> {
    let ctx = crate::auth::credentials::context(server, Some(registry));
    let keys = state.identity.keys.read().expect("keys lock");
    state
        .identity
        .registry
        .issue_refresh(&keys, subject, &ctx, Utc::now())
        .map(|t| t.token)
        .map_err(|e| format!("issuing the run's registry token failed: {e}"))
}

/// The run's credential for its own registry, or `None` (`--source-acr-auth-id none`, or ABAC
/// mode without an identity).
async fn source_token(
    state: &AppState,
    run: &RunRecord,
    request: &RunRequest,
    task: Option<&crate::model::identities::Host>,
    registry: &RegistryInfo,
) -> Result<Option<String>, String> {
    let server = state.login_server(&registry.name);
    let subject = match &request.identity {
        Identity::Nothing => return Ok(None),
        Identity::RunToken if registry.properties.role_assignment_mode.is_abac() => return Ok(None),
        Identity::RunToken => RegistrySubject::local(
            PrincipalType::TaskRun,
            format!("{}{}", crate::auth::credentials::task_run_prefix(registry), run.run_id),
            format!("task run {}", run.run_id),
        ),
        Identity::Task { selector } => {
            let task = task.ok_or("the run's task is gone")?;
            principal_subject(state, &task_principal(task, selector)?)
        }
        Identity::Caller { object_id } => {
            let principal = crate::model::principals::directory_principal(&*state.meta, object_id)
                .await
                .map_err(|e| format!("reading the caller failed: {e}"))?
                .ok_or("the identity that scheduled the run no longer exists")?;
            principal_subject(state, &principal)
        }
    };
    mint(state, &subject, registry, &server).map(Some)
}
