//! `wharf acr task …`, `wharf acr run` and `wharf acr build`: ACR Tasks with az's flags,
//! requests and output. Owns the calls each command makes (the registry lookup, `tasks/*`,
//! `runs/*`, `scheduleRun`, `listLogSasUrl`) and what it prints on stderr; the bodies are
//! built in [`body`], the output shapes in [`view`], the log streaming in
//! [`crate::logstream`], `acr build` in [`build`]. A local context of `acr run` and
//! `acr build` is packed and uploaded by [`source`] (with [`crate::context`] and
//! [`crate::blob_upload`]), as is one given to `task run -c`.

pub mod args;
pub mod body;
mod build;
mod source;
mod timer;
pub mod view;

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

pub use args::{AcrBuildArgs, AcrRunArgs, TaskCmd};
use args::{CreateArgs, CredentialCmd, RegistryRef, TaskIdentityCmd, TaskRef, TaskRunArgs, UpdateArgs};
use body::SourceIdentity;
pub use build::acr_build;

use super::acr::{registry_path, resolve_group};
use super::confirm;
use crate::client::{Client, REGISTRY_API};
use crate::context::Source;
use crate::error::CliError;
use crate::logstream::{self, StreamOptions};
use crate::output::{Table, warning};

/// The api-version az 2.91's tasks SDK sends for every tasks and runs call.
pub const TASKS_API: &str = "2025-03-01-preview";
/// The api-version az sends to read a user-assigned identity's client id.
pub const MANAGED_IDENTITY_API: &str = "2024-11-30";

/// How often `--no-logs` asks for the run's status. az sleeps a fixed 30 s between GETs, so a
/// five-second run takes half a minute to report; Wharf asks every second, which costs the
/// server one cheap GET per second per waiting client.
pub const RUN_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Run states after which a run does not change any more.
const FINISHED: [&str; 5] = ["Succeeded", "Failed", "Canceled", "Error", "Timeout"];

/// `-o table` for each task command, as az's `acr task` command group registers them: the
/// group's task columns for every command that does not name its own (the credential commands
/// too, whose map then shows as one row of blanks, as in az), the run columns for the run
/// commands, the identity columns for `identity show`.
pub fn table(cmd: &TaskCmd) -> Table {
    match cmd {
        TaskCmd::Identity { cmd: TaskIdentityCmd::Show { .. } } => Table::Columns(view::identity_columns),
        TaskCmd::ListRuns { .. } | TaskCmd::ShowRun(_) | TaskCmd::UpdateRun { .. } | TaskCmd::Run(_) => {
            Table::Columns(view::run_columns)
        }
        TaskCmd::Logs { .. } | TaskCmd::CancelRun(_) => Table::Generic,
        TaskCmd::ShowWebhook { .. } => Table::Columns(view::webhook_columns),
        TaskCmd::Create(_)
        | TaskCmd::Update(_)
        | TaskCmd::Show { .. }
        | TaskCmd::List { .. }
        | TaskCmd::Delete { .. }
        | TaskCmd::Identity { .. }
        | TaskCmd::Credential { .. }
        | TaskCmd::Timer { .. } => Table::Columns(view::task_columns),
    }
}

/// The registry a command works on, as az's lookup finds it.
struct Registry {
    name: String,
    /// `/subscriptions/…/registries/{name}` (az's `REG`).
    path: String,
    location: String,
    /// `properties.loginServer` (`--image` is resolved on its data plane).
    login_server: String,
    /// `roleAssignmentMode` is `AbacRepositoryPermissions`.
    abac: bool,
}

impl Registry {
    fn task(&self, name: &str) -> String {
        format!("{}/tasks/{name}", self.path)
    }
    fn run(&self, id: &str) -> String {
        format!("{}/runs/{id}", self.path)
    }
}

/// az's `validate_managed_registry`: find the registry (its group when `-g` is not given),
/// read it, and refuse registries without a managed SKU.
async fn registry(client: &Client, r: &RegistryRef) -> Result<Registry, CliError> {
    registry_for(client, r, "Task is only supported for managed registries.").await
}

/// [`registry`] with the command's own refusal (`Builds are only supported…`).
async fn registry_for(client: &Client, r: &RegistryRef, not_supported: &str) -> Result<Registry, CliError> {
    let sub = client.subscription()?.to_string();
    let rg = resolve_group(client, &r.registry, r.resource_group.clone()).await?;
    let path = registry_path(&sub, &rg, &r.registry);
    let v = client.get(&path, REGISTRY_API).await?;
    if !matches!(v["sku"]["name"].as_str(), Some("Basic" | "Standard" | "Premium")) {
        return Err(CliError::Other(not_supported.into()));
    }
    Ok(Registry {
        name: r.registry.clone(),
        location: v["location"].as_str().unwrap_or_default().to_string(),
        login_server: v["properties"]["loginServer"].as_str().unwrap_or_default().to_string(),
        abac: v["properties"]["roleAssignmentMode"].as_str() == Some("AbacRepositoryPermissions"),
        path,
    })
}

fn registry_of(t: &TaskRef) -> RegistryRef {
    RegistryRef { registry: t.registry.clone(), resource_group: t.resource_group.clone() }
}

async fn call(client: &Client, method: Method, path: &str, body: Option<&Value>) -> Result<Value, CliError> {
    client.arm(method, path, TASKS_API, body).await
}

async fn details(client: &Client, reg: &Registry, task: &str) -> Result<Value, CliError> {
    call(client, Method::POST, &format!("{}/listDetails", reg.task(task)), None).await
}

/// Reads a local file (or stdin for `-`), with az's message when it is missing.
fn read_local(path: &str) -> Result<Vec<u8>, CliError> {
    if path == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .map_err(|e| CliError::Other(format!("cannot read stdin: {e}")))?;
        return Ok(buf);
    }
    match std::fs::read(path) {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(CliError::Other(format!("{path} does not exist."))),
        Err(e) => Err(CliError::Other(format!("cannot read {path}: {e}"))),
    }
}

/// A user-assigned identity's client id (az reads only `properties.clientId`).
async fn client_id(client: &Client, identity_id: &str) -> Result<String, CliError> {
    let v = client.get(identity_id, MANAGED_IDENTITY_API).await?;
    v["properties"]["clientId"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| CliError::Other(format!("the user-assigned identity '{identity_id}' has no clientId")))
}

/// The source-registry warnings az prints for create and update. `had_identity`: the task
/// already names an identity for its registry (an update need not repeat it).
fn source_warnings(
    reg: &Registry,
    task: &str,
    source: Option<&SourceIdentity>,
    auth_warnings: Vec<String>,
    had_identity: bool,
) {
    for w in auth_warnings {
        warning(&w);
    }
    match source {
        Some(SourceIdentity::System) => warning(&format!(
            "The task '{task}' is configured to authenticate with the source registry '{}' using the identity '[system]'. Make sure the identity has the roles it needs on the registry.",
            reg.name
        )),
        Some(SourceIdentity::User(id)) => warning(&format!(
            "The task '{task}' is configured to authenticate with the source registry '{}' using the identity '{id}'. Make sure the identity has the roles it needs on the registry.",
            reg.name
        )),
        Some(SourceIdentity::None) | None if reg.abac && !had_identity => warning(&format!(
            "The registry '{}' uses ABAC repository permissions: the Task does not have data plane permissions to the source registry unless --source-acr-auth-id names an identity ('[system]' or a user-assigned identity) that holds a Container Registry Repository role.",
            reg.name
        )),
        _ => {}
    }
}

pub async fn run(cmd: TaskCmd) -> Result<Option<Value>, CliError> {
    let client = Client::from_profile().await?;
    dispatch(&client, cmd).await
}

async fn dispatch(client: &Client, cmd: TaskCmd) -> Result<Option<Value>, CliError> {
    match cmd {
        TaskCmd::Create(a) => create(client, *a).await,
        TaskCmd::Update(a) => update(client, *a).await,
        TaskCmd::Show { task, with_secure_properties } => {
            let reg = registry(client, &registry_of(&task)).await?;
            let v = if with_secure_properties {
                details(client, &reg, &task.name).await?
            } else {
                call(client, Method::GET, &reg.task(&task.name), None).await?
            };
            Ok(Some(view::flatten(&v)))
        }
        TaskCmd::ShowWebhook { task, source_trigger_name } => {
            let reg = registry(client, &registry_of(&task)).await?;
            let d = details(client, &reg, &task.name).await?;
            view::webhooks(&d, &task.name, source_trigger_name.as_deref()).map(Some)
        }
        TaskCmd::List { registry: r } => {
            let reg = registry(client, &r).await?;
            let v = call(client, Method::GET, &format!("{}/tasks", reg.path), None).await?;
            Ok(Some(view::flatten_list(&v)))
        }
        TaskCmd::Delete { task, yes } => {
            // az asks before the command runs, so a refusal sends nothing.
            confirm("Are you sure you want to perform this operation?", yes)?;
            let reg = registry(client, &registry_of(&task)).await?;
            call(client, Method::DELETE, &reg.task(&task.name), None).await?;
            Ok(None)
        }
        TaskCmd::Run(a) => task_run(client, *a).await,
        TaskCmd::Logs { name, run_id, registry: r } => {
            let reg = registry(client, &r).await?;
            let run_id = match run_id {
                Some(id) => id,
                None => last_run(client, &reg, name.as_deref()).await?,
            };
            stream_run_logs(client, &reg, &run_id, logstream::DEFAULT_TIMEOUT_SECS, false).await?;
            Ok(None)
        }
        TaskCmd::ListRuns { name, run_status, top, image, registry: r } => {
            let reg = registry(client, &r).await?;
            // az resolves the image to `repo@digest` on the registry's data plane first.
            let image = match image {
                Some(i) => {
                    let (repo, digest) = super::acr_data::image_digest(client, &reg.login_server, &i).await?;
                    Some(format!("{repo}@{digest}"))
                }
                None => None,
            };
            let path = format!(
                "{}/runs{}",
                reg.path,
                runs_query(name.as_deref(), run_status.map(|s| s.as_str()), image.as_deref(), top)
            );
            Ok(Some(view::flatten_list(&call(client, Method::GET, &path, None).await?)))
        }
        TaskCmd::ShowRun(r) => {
            let reg = registry(client, &r.registry).await?;
            Ok(Some(view::flatten(&call(client, Method::GET, &reg.run(&r.run_id), None).await?)))
        }
        TaskCmd::CancelRun(r) => {
            let reg = registry(client, &r.registry).await?;
            call(client, Method::POST, &format!("{}/cancel", reg.run(&r.run_id)), None).await?;
            Ok(None)
        }
        TaskCmd::UpdateRun { run, no_archive } => {
            let reg = registry(client, &run.registry).await?;
            let body = json!({"isArchiveEnabled": !no_archive});
            Ok(Some(view::flatten(&call(client, Method::PATCH, &reg.run(&run.run_id), Some(&body)).await?)))
        }
        TaskCmd::Credential { cmd } => credential(client, cmd).await,
        TaskCmd::Identity { cmd } => task_identity(client, cmd).await,
        TaskCmd::Timer { cmd } => timer::run(client, cmd).await,
    }
}

async fn create(client: &Client, a: CreateArgs) -> Result<Option<Value>, CliError> {
    let reg = registry(client, &registry_of(&a.task)).await?;
    let source = a.source_acr_auth_id.as_deref().map(SourceIdentity::parse).transpose()?;
    let warnings = body::check_auth(a.auth_mode.map(|m| m.as_str()), source.as_ref(), reg.abac)?;
    // Flag errors come before any file is read or further request sent.
    body::check_create(&a)?;
    let mut inputs = body::CreateInputs { location: reg.location.clone(), ..Default::default() };
    if body::is_null_context(&a.context) {
        // The task travels in the request: az's --cmd template, else the local file.
        inputs.task_content = Some(match &a.cmd {
            Some(c) => body::cmd_template(c, Some(a.timeout)).into_bytes(),
            None => read_local(a.file.as_deref().unwrap_or(body::DEFAULT_TASK_FILE))?,
        });
        if let Some(v) = &a.values_file {
            inputs.values_content = Some(read_local(v)?);
        }
    }
    if let Some(SourceIdentity::User(id)) = &source {
        inputs.source_client_id = Some(client_id(client, id).await?);
    }
    let b = body::create_body(&a, &inputs)?;
    source_warnings(&reg, &a.task.name, source.as_ref(), warnings, false);
    let v = call(client, Method::PUT, &reg.task(&a.task.name), Some(&b)).await?;
    Ok(Some(view::flatten(&v)))
}

async fn update(client: &Client, a: UpdateArgs) -> Result<Option<Value>, CliError> {
    let reg = registry(client, &registry_of(&a.task)).await?;
    let source = a.source_acr_auth_id.as_deref().map(SourceIdentity::parse).transpose()?;
    let warnings = body::check_auth(a.auth_mode.map(|m| m.as_str()), source.as_ref(), reg.abac)?;
    let d = details(client, &reg, &a.task.name).await?;
    let mut inputs = body::UpdateInputs::default();
    if d["properties"]["step"]["type"].as_str() == Some("EncodedTask") {
        if a.cmd.is_some() && a.file.is_some() {
            return Err(CliError::Other(
                "Task can be updated with either --cmd myCommand or -f myFile, but not both.".into(),
            ));
        }
        inputs.task_content = match (&a.cmd, &a.file) {
            (Some(c), _) => Some(body::cmd_template(c, a.timeout).into_bytes()),
            (None, Some(f)) => Some(read_local(f)?),
            (None, None) => None,
        };
        if let Some(v) = &a.values_file {
            inputs.values_content = Some(read_local(v)?);
        }
    }
    body::update_body(&a, &d, &inputs)?;
    if let Some(SourceIdentity::User(id)) = &source {
        inputs.source_client_id = Some(client_id(client, id).await?);
    }
    // az adds an identity the task does not have yet in a PATCH of its own, first.
    if let Some(s) = &source
        && let Some(p) = body::identity_patch(&d, s)
    {
        call(client, Method::PATCH, &reg.task(&a.task.name), Some(&p)).await?;
    }
    let b = body::update_body(&a, &d, &inputs)?;
    let had_identity = d["properties"]["credentials"]["sourceRegistry"]["identity"].is_string()
        && !matches!(source, Some(SourceIdentity::None));
    source_warnings(&reg, &a.task.name, source.as_ref(), warnings, had_identity);
    let v = call(client, Method::PATCH, &reg.task(&a.task.name), Some(&b)).await?;
    Ok(Some(view::flatten(&v)))
}

/// `task run [-c <context>]`: a local directory or archive given as `-c` is packed and
/// uploaded first (az's `upload_source_code`), and the run's `contextPath` names the upload.
async fn task_run(client: &Client, mut a: TaskRunArgs) -> Result<Option<Value>, CliError> {
    let reg = registry(client, &registry_of(&a.task)).await?;
    let d = details(client, &reg, &a.task.name).await?;
    let timeout = d["properties"]["timeout"].as_u64().unwrap_or(logstream::DEFAULT_TIMEOUT_SECS);
    // Flag errors before anything is packed or uploaded.
    body::task_run_request(&reg.task(&a.task.name), &a)?;
    if let Some(context) = a.context.clone() {
        let location = match Source::parse(&context, true)? {
            Source::Directory(dir) => {
                let archive = source::pack_directory(&dir, None, "run_archive").await?;
                Some(source::upload(client, &reg, archive.path()).await?)
            }
            Source::Tarball(path) => Some(source::upload(client, &reg, &path).await?),
            Source::Remote(url) => {
                source::remote(client, &reg, &url).await?;
                None
            }
            Source::Null => None,
        };
        if let Some(l) = location {
            a.context = Some(l);
        }
    }
    let b = body::task_run_request(&reg.task(&a.task.name), &a)?;
    let queued = call(client, Method::POST, &format!("{}/scheduleRun", reg.path), Some(&b)).await?;
    follow(client, &reg, &queued, a.no_logs, a.no_wait, timeout, "run").await
}

/// `acr run -r R (--cmd '<image args>' | -f task.yaml) /dev/null`, or `-f task.yaml <context>`.
pub async fn acr_run(a: AcrRunArgs) -> Result<Option<Value>, CliError> {
    check_acr_run(&a)?;
    let client = Client::from_profile().await?;
    acr_run_with(&client, a).await
}

/// The flag checks of `acr run`, before anything is sent.
fn check_acr_run(a: &AcrRunArgs) -> Result<(), CliError> {
    if a.cmd.is_some() && a.file.is_some() {
        return Err(CliError::Other("Azure Container Registry can run with either --cmd myCommand /dev/null or -f myFile mySourceLocation, but not both.".into()));
    }
    if a.cmd.is_some() && !body::is_null_context(&a.source_location) {
        // az sends acb.yaml of the context then, silently dropping --cmd; Wharf refuses.
        return Err(CliError::Other(format!(
            "--cmd runs with the context /dev/null, not '{}'. To run a task file of a context, use -f myFile mySourceLocation.",
            a.source_location
        )));
    }
    Ok(())
}

/// The ABAC deprecation warning for `--auth-mode` (quick runs and builds).
fn auth_mode_warning(reg: &Registry, auth_mode: Option<args::AuthMode>) {
    if reg.abac && auth_mode.is_some() {
        warning(
            "The --auth-mode flag is deprecated for specifying access to an ABAC-enabled source registry. Use --source-acr-auth-id '[caller]' or 'none'.",
        );
    }
}

async fn acr_run_with(client: &Client, a: AcrRunArgs) -> Result<Option<Value>, CliError> {
    check_acr_run(&a)?;
    let reg = registry_for(client, &a.registry, "Run is only available for managed registries.").await?;
    auth_mode_warning(&reg, a.auth_mode);
    let b = match Source::parse(&a.source_location, true)? {
        Source::Null => {
            let content = match (&a.cmd, &a.file) {
                (Some(c), _) => body::cmd_template(c, a.timeout).into_bytes(),
                (None, f) => read_local(f.as_deref().unwrap_or(body::DEFAULT_TASK_FILE))?,
            };
            let values = a.values_file.as_deref().map(read_local).transpose()?;
            body::encoded_run_request(&a, &content, values.as_deref())?
        }
        other => {
            // Flag errors before anything is packed or uploaded.
            body::file_run_request(&a, "")?;
            let location = match other {
                Source::Directory(dir) => {
                    let archive = source::pack_directory(&dir, None, "run_archive").await?;
                    source::upload(client, &reg, archive.path()).await?
                }
                Source::Tarball(path) => source::upload(client, &reg, &path).await?,
                Source::Remote(url) => {
                    source::remote(client, &reg, &url).await?;
                    url
                }
                Source::Null => unreachable!("handled above"),
            };
            body::file_run_request(&a, &location)?
        }
    };
    let queued = client.arm(Method::POST, &format!("{}/scheduleRun", reg.path), TASKS_API, Some(&b)).await?;
    let timeout = a.timeout.unwrap_or(logstream::DEFAULT_TIMEOUT_SECS);
    follow(client, &reg, &queued, a.no_logs, a.no_wait, timeout, "run").await
}

/// After `scheduleRun`: az's messages (`Queued a <kind> with ID: …`, kind `run` or `build`),
/// then nothing (`--no-wait`), the finished run (`--no-logs`), or the streamed log whose
/// `Complete` metadata decides the exit status.
async fn follow(
    client: &Client,
    reg: &Registry,
    queued: &Value,
    no_logs: bool,
    no_wait: bool,
    timeout: u64,
    kind: &str,
) -> Result<Option<Value>, CliError> {
    let run_id = queued["properties"]["runId"]
        .as_str()
        .ok_or_else(|| CliError::Other("the server's scheduleRun answer has no properties.runId".into()))?
        .to_string();
    warning(&format!("Queued a {kind} with ID: {run_id}"));
    if no_wait {
        return Ok(None);
    }
    warning("Waiting for an agent...");
    if no_logs {
        return wait_for_run(client, reg, &run_id).await.map(Some);
    }
    stream_run_logs(client, reg, &run_id, timeout, true).await?;
    Ok(None)
}

/// `--no-logs`: GET the run until it is finished (every [`RUN_POLL_INTERVAL`]).
async fn wait_for_run(client: &Client, reg: &Registry, run_id: &str) -> Result<Value, CliError> {
    loop {
        let v = call(client, Method::GET, &reg.run(run_id), None).await?;
        let status = v["properties"]["status"].as_str().unwrap_or("Queued").to_string();
        if FINISHED.contains(&status.as_str()) {
            if status == "Succeeded" {
                return Ok(view::flatten(&v));
            }
            return Err(CliError::Other(format!(
                "The run with ID '{run_id}' finished with unsuccessful status 'RunStatus.{}'. Show run details by 'wharf acr task show-run -r {r} --run-id {run_id}'. Show run logs by 'wharf acr task logs -r {r} --run-id {run_id}'.",
                status.to_ascii_uppercase(),
                r = reg.name
            )));
        }
        tokio::time::sleep(RUN_POLL_INTERVAL).await;
    }
}

/// `listLogSasUrl`, then the blob stream. `raise` is az's `raise_error_on_failure`: the
/// `Complete` metadata fails the command (run, build) or not (`task logs`).
async fn stream_run_logs(
    client: &Client,
    reg: &Registry,
    run_id: &str,
    timeout: u64,
    raise: bool,
) -> Result<(), CliError> {
    let could_not = || CliError::Other(format!("Could not get logs for ID: {run_id}"));
    let links = call(client, Method::POST, &format!("{}/listLogSasUrl", reg.run(run_id)), None).await?;
    let mut stdout = Stdout;
    // As az: a `logArtifactLink` wins over `logLink` (and carries no outcome).
    if let Some(url) = links["logArtifactLink"].as_str().filter(|u| !u.is_empty()) {
        return logstream::stream_artifact(client.http(), url, &mut stdout).await;
    }
    if let Some(url) = links["logLink"].as_str().filter(|u| !u.is_empty()) {
        let outcome =
            logstream::stream(client.http(), url, StreamOptions::with_timeout_secs(timeout), &mut stdout).await?;
        if raise {
            outcome.into_result()?;
        }
        return Ok(());
    }
    Err(could_not())
}

/// The log goes to stdout through `print!`, so that it lands where the rest of the output does
/// (and in the test harness's capture).
struct Stdout;

impl std::io::Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        print!("{}", String::from_utf8_lossy(buf));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().flush()
    }
}

/// `GET REG/runs` with az's `$filter` and `$top`.
async fn list_runs(
    client: &Client,
    reg: &Registry,
    task: Option<&str>,
    status: Option<&str>,
    top: u32,
) -> Result<Value, CliError> {
    let path = format!("{}/runs{}", reg.path, runs_query(task, status, None, top));
    call(client, Method::GET, &path, None).await
}

/// `?$filter=TaskName eq 't1' and Status eq 'Succeeded'&$top=15` (the filter percent-encoded),
/// with `contains(OutputImageManifests, 'repo@digest')` for `--image`, as az adds it.
fn runs_query(task: Option<&str>, status: Option<&str>, image: Option<&str>, top: u32) -> String {
    let mut filters = vec![];
    if let Some(t) = task {
        filters.push(format!("TaskName eq '{t}'"));
    }
    if let Some(s) = status {
        filters.push(format!("Status eq '{s}'"));
    }
    if let Some(i) = image {
        filters.push(format!("contains(OutputImageManifests, '{i}')"));
    }
    let mut q = String::from("?");
    if !filters.is_empty() {
        q += &format!("$filter={}&", percent(&filters.join(" and ")));
    }
    q + &format!("$top={top}")
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The last created run of a task (az's `task logs -n`), with az's messages.
async fn last_run(client: &Client, reg: &Registry, task: Option<&str>) -> Result<String, CliError> {
    let v = list_runs(client, reg, task, None, 1).await?;
    let what = task.map(|t| format!(" for task '{t}'")).unwrap_or_default();
    match v["value"][0]["properties"]["runId"].as_str() {
        Some(id) => {
            warning(&format!("Showing logs of the last created run{what}."));
            warning(&format!("Run ID: {id}"));
            Ok(id.to_string())
        }
        None => Err(CliError::Other(format!("Could not find the last created run{what}."))),
    }
}

async fn credential(client: &Client, cmd: CredentialCmd) -> Result<Option<Value>, CliError> {
    let custom = |v: &Value| {
        let m = &v["properties"]["credentials"]["customRegistries"];
        if m.is_object() { m.clone() } else { json!({}) }
    };
    match cmd {
        CredentialCmd::Add(a) => {
            let reg = registry(client, &registry_of(&a.task)).await?;
            let patch = body::custom_registry(&a)?;
            let d = details(client, &reg, &a.task.name).await?;
            if custom(&d).get(&a.login_server).is_some() {
                return Err(CliError::Other(format!(
                    "Login server '{}' already exists. You cannot add it again.",
                    a.login_server
                )));
            }
            Ok(Some(custom(&call(client, Method::PATCH, &reg.task(&a.task.name), Some(&patch)).await?)))
        }
        CredentialCmd::Update(a) => {
            let reg = registry(client, &registry_of(&a.task)).await?;
            let patch = body::custom_registry(&a)?;
            let d = details(client, &reg, &a.task.name).await?;
            if custom(&d).get(&a.login_server).is_none() {
                return Err(CliError::Other(format!("Login server '{}' not found.", a.login_server)));
            }
            Ok(Some(custom(&call(client, Method::PATCH, &reg.task(&a.task.name), Some(&patch)).await?)))
        }
        CredentialCmd::Remove { task, login_server } => {
            let reg = registry(client, &registry_of(&task)).await?;
            let patch = body::remove_custom_registry(&login_server);
            Ok(Some(custom(&call(client, Method::PATCH, &reg.task(&task.name), Some(&patch)).await?)))
        }
        CredentialCmd::List { task } => {
            let reg = registry(client, &registry_of(&task)).await?;
            Ok(Some(custom(&details(client, &reg, &task.name).await?)))
        }
    }
}

async fn task_identity(client: &Client, cmd: TaskIdentityCmd) -> Result<Option<Value>, CliError> {
    match cmd {
        TaskIdentityCmd::Assign { task, identities } => {
            let reg = registry(client, &registry_of(&task)).await?;
            let patch = json!({"identity": body::identity(&identities, false)});
            Ok(Some(view::flatten(&call(client, Method::PATCH, &reg.task(&task.name), Some(&patch)).await?)))
        }
        TaskIdentityCmd::Remove { task, identities } => {
            if identities.iter().any(|i| i == body::ALL_IDENTITIES) && identities.len() > 1 {
                return Err(CliError::Usage(
                    "Cannot specify additional identities when [all] is used in [--identities]".into(),
                ));
            }
            let reg = registry(client, &registry_of(&task)).await?;
            let identity = if identities.is_empty() || identities.iter().any(|i| i == body::SYSTEM_IDENTITY) {
                // Removing the system identity: keep the user-assigned ones, if any.
                let d = details(client, &reg, &task.name).await?;
                let users: Vec<String> = d["identity"]["userAssignedIdentities"]
                    .as_object()
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default();
                if users.is_empty() { json!({"type": "None"}) } else { body::identity(&users, false) }
            } else {
                body::identity(&identities, true)
            };
            let patch = json!({"identity": identity});
            Ok(Some(view::flatten(&call(client, Method::PATCH, &reg.task(&task.name), Some(&patch)).await?)))
        }
        TaskIdentityCmd::Show { task } => {
            let reg = registry(client, &registry_of(&task)).await?;
            let d = details(client, &reg, &task.name).await?;
            Ok(Some(if d["identity"].is_object() { d["identity"].clone() } else { json!({}) }))
        }
    }
}

#[cfg(test)]
mod build_flow_tests;
#[cfg(test)]
mod fake_acr;
#[cfg(test)]
mod flow_tests;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every flag of the whole tree, the global `-o` and `--query` included, is well formed
    /// (clap checks a subcommand only when it is used, so check them all here).
    #[test]
    fn the_command_tree_is_consistent() {
        #[derive(clap::Parser)]
        struct Wharf {
            #[command(subcommand)]
            cmd: crate::Commands,
            #[command(flatten)]
            output: crate::OutputArgs,
        }
        <Wharf as clap::CommandFactory>::command().debug_assert();
        let parsed = <Wharf as clap::Parser>::try_parse_from([
            "wharf",
            "acr",
            "task",
            "list-runs",
            "-r",
            "myregistry",
            "-o",
            "table",
            "--query",
            "[].runId",
        ])
        .unwrap();
        assert!(matches!(parsed.cmd, crate::Commands::Acr { cmd: crate::commands::acr::AcrCmd::Task { .. } }));
    }

    #[test]
    fn list_runs_filters_as_az_writes_them() {
        assert_eq!(runs_query(None, None, None, 15), "?$top=15");
        assert_eq!(
            runs_query(Some("t1"), Some("Succeeded"), None, 3),
            "?$filter=TaskName%20eq%20%27t1%27%20and%20Status%20eq%20%27Succeeded%27&$top=3"
        );
        assert_eq!(runs_query(Some("t1"), None, None, 1), "?$filter=TaskName%20eq%20%27t1%27&$top=1");
        assert_eq!(
            runs_query(None, None, Some("app@sha256:ab"), 15),
            "?$filter=contains%28OutputImageManifests%2C%20%27app%40sha256%3Aab%27%29&$top=15"
        );
    }
}
