//! The JSON bodies of the task commands, built from the flags exactly as az 2.91 builds them
//! (`/work/shared/research/az-tasks-probe.md` §1–§3, §6). Owns the shapes; must never do I/O:
//! file contents, the registry's location and a user-assigned identity's client id come in
//! as values.

use base64::Engine;
use serde_json::{Map, Value, json};

use super::args::{
    AcrBuildArgs, AcrRunArgs, AuthMode, CreateArgs, CredentialArgs, StepValues, TaskRunArgs, UpdateArgs,
};
use crate::error::CliError;

pub use crate::context::NULL_CONTEXT;
/// The task file az reads when neither --cmd nor -f is given with /dev/null.
pub const DEFAULT_TASK_FILE: &str = "acb.yaml";
pub const SYSTEM_IDENTITY: &str = "[system]";
pub const ALL_IDENTITIES: &str = "[all]";
/// Names ending so are task files; anything else is a Dockerfile (az's `ALLOWED_TASK_FILE_TYPES`).
pub const TASK_FILE_EXTENSIONS: [&str; 17] = [
    ".yaml", ".yml", ".toml", ".json", ".sh", ".bash", ".zsh", ".ps1", ".ps", ".cmd", ".bat", ".ts", ".js", ".php",
    ".py", ".rb", ".lua",
];
/// The Key Vault DNS suffix of Azure's public cloud: a credential value holding it is a secret URI.
const KEYVAULT_SUFFIX: &str = ".vault.azure.net";

pub fn is_null_context(context: &str) -> bool {
    context.eq_ignore_ascii_case(NULL_CONTEXT)
}

pub fn is_task_file(file: &str) -> bool {
    TASK_FILE_EXTENSIONS.iter().any(|e| file.ends_with(e))
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// az's one-step task for `--cmd` (note the space after `steps:`); the `timeout:` line only
/// when a timeout is given (always for `task create`, only with `--timeout` elsewhere).
pub fn cmd_template(cmd: &str, timeout: Option<u64>) -> String {
    let mut yaml = format!("version: v1.1.0\nsteps: \n  - cmd: {cmd}\n    disableWorkingDirectoryOverride: true\n");
    if let Some(t) = timeout {
        yaml += &format!("    timeout: {t}\n");
    }
    yaml
}

/// `--platform os/arch/variant` as az validates it (lower-cased; default linux/amd64).
pub fn platform(p: Option<&str>) -> Result<Value, CliError> {
    let mut parts = p.unwrap_or("").split('/');
    let os = parts.next().filter(|s| !s.is_empty()).unwrap_or("linux").to_ascii_lowercase();
    let arch = parts.next().filter(|s| !s.is_empty()).unwrap_or("amd64").to_ascii_lowercase();
    let variant = parts.next().filter(|s| !s.is_empty()).map(str::to_ascii_lowercase);
    let check = |what: &str, v: &str, valid: &[&str]| {
        if valid.contains(&v) {
            Ok(())
        } else {
            Err(CliError::Other(format!(
                "'{v}' is not a valid value for {what} specified in --platform. Valid options are {}.",
                valid.join(",")
            )))
        }
    };
    check("OS", &os, &["windows", "linux"])?;
    check("Architecture", &arch, &["amd64", "x86", "386", "arm", "arm64"])?;
    let mut out = json!({"os": os, "architecture": arch});
    if let Some(v) = variant {
        check("Variant", &v, &["v6", "v7", "v8"])?;
        out["variant"] = json!(v);
    }
    Ok(out)
}

/// `NAME[=VALUE]` items as `{"type": kind, "name", "value", "isSecret"}`; without `=VALUE`
/// the value of the environment variable NAME, as az reads it.
fn named(items: &[String], kind: &str, secret: bool) -> Result<Vec<Value>, CliError> {
    items
        .iter()
        .map(|item| {
            let (name, value) = match item.split_once('=') {
                Some((n, v)) => (n.to_string(), v.to_string()),
                None => {
                    let v = std::env::var(item).map_err(|_| {
                        CliError::Usage(format!(
                            "'{item}' has no value: use NAME=VALUE or set the environment variable '{item}'."
                        ))
                    })?;
                    (item.clone(), v)
                }
            };
            if name.is_empty() {
                return Err(CliError::Usage(format!("'{item}' has no name: use NAME=VALUE.")));
            }
            Ok(json!({"type": kind, "name": name, "value": value, "isSecret": secret}))
        })
        .collect()
}

/// `--arg` then `--secret-arg`.
pub fn arguments(v: &StepValues) -> Result<Vec<Value>, CliError> {
    let mut out = named(&v.arg, "Argument", false)?;
    out.extend(named(&v.secret_arg, "Argument", true)?);
    Ok(out)
}

/// `--set` then `--set-secret`.
pub fn set_values(set: &[String], secret: &[String]) -> Result<Vec<Value>, CliError> {
    let mut out = named(set, "SetValue", false)?;
    out.extend(named(secret, "SetValue", true)?);
    Ok(out)
}

/// az's `_build_identities_info`: `[system]` (or nothing) → SystemAssigned, resource ids →
/// UserAssigned, both → "SystemAssigned, UserAssigned"; `[all]` → None. With `remove`, the
/// user-assigned identities map to null (remove them).
pub fn identity(ids: &[String], remove: bool) -> Value {
    if ids.iter().any(|i| i == ALL_IDENTITIES) {
        return json!({"type": "None"});
    }
    let system = ids.is_empty() || ids.iter().any(|i| i == SYSTEM_IDENTITY);
    let users: Vec<&String> = ids.iter().filter(|i| *i != SYSTEM_IDENTITY).collect();
    let mut types = vec![];
    if system {
        types.push("SystemAssigned");
    }
    if !users.is_empty() {
        types.push("UserAssigned");
    }
    let mut out = json!({"type": types.join(", ")});
    if !users.is_empty() {
        let map: Map<String, Value> =
            users.into_iter().map(|u| (u.clone(), if remove { Value::Null } else { json!({}) })).collect();
        out["userAssignedIdentities"] = Value::Object(map);
    }
    out
}

/// What `--source-acr-auth-id` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceIdentity {
    /// `[system]`.
    System,
    /// A user-assigned identity's resource id (its client id goes into the credentials).
    User(String),
    /// `none`: no identity for the source registry.
    None,
}

impl SourceIdentity {
    pub fn parse(v: &str) -> Result<SourceIdentity, CliError> {
        if v.eq_ignore_ascii_case(SYSTEM_IDENTITY) {
            Ok(SourceIdentity::System)
        } else if v.eq_ignore_ascii_case("none") {
            Ok(SourceIdentity::None)
        } else if v.starts_with('/') && v.to_ascii_lowercase().contains("/providers/microsoft.managedidentity/") {
            Ok(SourceIdentity::User(v.to_string()))
        } else {
            Err(CliError::Usage(format!(
                "--source-acr-auth-id '{v}': use '[system]', the resource id of a user-assigned identity, or 'none'."
            )))
        }
    }
}

/// The client-side refusal az makes after the registry lookup.
pub const CONFLICTING_AUTH: &str = "Error: Conflicting Authentication Parameters for Task Access to Source Registry. Task authentication mode for source registry access is set to \"None\", but an identity was provided for the task to access the source registry. Remove --auth-mode None, or --source-acr-auth-id.";

/// The checks az makes before sending a task create or update; `abac` is whether the registry
/// uses ABAC repository permissions (there `--auth-mode None` with an identity is allowed,
/// with a deprecation warning).
pub fn check_auth(
    auth_mode: Option<&str>,
    source: Option<&SourceIdentity>,
    abac: bool,
) -> Result<Vec<String>, CliError> {
    let mut warnings = vec![];
    let identity_given = matches!(source, Some(SourceIdentity::System | SourceIdentity::User(_)));
    if abac {
        if auth_mode.is_some() && identity_given {
            warnings.push("The --auth-mode flag is deprecated for specifying access to an ABAC-enabled source registry. Use --source-acr-auth-id to choose the identity the task uses, and grant it a Container Registry Repository role on the registry.".to_string());
        }
    } else if auth_mode == Some("None") && identity_given {
        return Err(CliError::Other(CONFLICTING_AUTH.into()));
    }
    Ok(warnings)
}

/// `credentials.sourceRegistry` from `--auth-mode` and the identity value (`[system]`, a
/// client id, or `Null` to clear it); `{}` when neither is given.
pub fn credentials(auth_mode: Option<&str>, identity: Option<Value>) -> Value {
    let mut source = Map::new();
    if let Some(m) = auth_mode {
        source.insert("loginMode".into(), json!(m));
    }
    if let Some(i) = identity {
        source.insert("identity".into(), i);
    }
    if source.is_empty() { json!({}) } else { json!({"sourceRegistry": source}) }
}

/// The identity value `credentials.sourceRegistry.identity` gets for `--source-acr-auth-id`.
fn source_identity_value(source: &SourceIdentity, client_id: Option<&str>) -> Result<Value, CliError> {
    Ok(match source {
        SourceIdentity::System => json!(SYSTEM_IDENTITY),
        SourceIdentity::User(id) => json!(
            client_id.ok_or_else(|| CliError::Other(format!("the user-assigned identity '{id}' has no clientId")))?
        ),
        SourceIdentity::None => Value::Null,
    })
}

/// `#branch` of a git context URL (`https://github.com/x/y.git#main:folder` → `main`).
fn branch_of(context: &str) -> Option<String> {
    let after = context.split_once('#')?.1;
    let branch: String = after.chars().take_while(|c| *c != ':' && !c.is_whitespace()).collect();
    (!branch.is_empty()).then_some(branch)
}

fn source_control_type(context: &str) -> &'static str {
    if context.to_ascii_uppercase().contains("GITHUB.COM") { "Github" } else { "VisualStudioTeamService" }
}

/// What `task create` needs besides its flags.
#[derive(Debug, Default)]
pub struct CreateInputs {
    /// The registry's location (the task's).
    pub location: String,
    /// The task file's bytes or az's `--cmd` template, for an EncodedTask (context /dev/null).
    pub task_content: Option<Vec<u8>>,
    /// The local values file's bytes (context /dev/null).
    pub values_content: Option<Vec<u8>>,
    /// The client id of the `--source-acr-auth-id` user-assigned identity.
    pub source_client_id: Option<String>,
}

/// Whether a git context's source trigger fires on commits and on pull requests (never with
/// /dev/null; commits by default otherwise).
fn source_events(a: &CreateArgs) -> (bool, bool) {
    if is_null_context(&a.context) {
        (false, false)
    } else {
        (a.commit_trigger_enabled.unwrap_or(true), a.pull_request_trigger_enabled.unwrap_or(false))
    }
}

/// The flag checks az makes for `task create` before sending anything.
pub fn check_create(a: &CreateArgs) -> Result<(), CliError> {
    if a.cmd.is_some() && a.file.is_some() {
        return Err(CliError::Other(
            "Task can be created with either --cmd myCommand -c /dev/null or -f myFile -c myContext, but not both."
                .into(),
        ));
    }
    let (commit, pull_request) = source_events(a);
    if (commit || pull_request) && a.git_access_token.is_none() {
        return Err(CliError::Other("If source control trigger is enabled [--commit-trigger-enabled] or [--pull-request-trigger-enabled] --git-access-token must be provided.".into()));
    }
    if !is_null_context(&a.context) && a.file.is_none() {
        return Err(CliError::Other("missing --file/-f argument".into()));
    }
    Ok(())
}

/// `PUT REG/tasks/{name}` for `task create`.
pub fn create_body(a: &CreateArgs, inp: &CreateInputs) -> Result<Value, CliError> {
    check_create(a)?;
    let null_context = is_null_context(&a.context);
    let (commit, pull_request) = source_events(a);
    let values = set_values(&a.values.set_value, &a.values.set_secret)?;
    let step = if null_context {
        let content = inp
            .task_content
            .as_ref()
            .ok_or_else(|| CliError::Other("internal: the task content was not read".into()))?;
        let mut s = json!({"type": "EncodedTask", "encodedTaskContent": b64(content)});
        if let Some(v) = &inp.values_content {
            s["encodedValuesContent"] = json!(b64(v));
        }
        s["values"] = json!(values);
        s
    } else {
        let file = a.file.as_deref().unwrap_or_default();
        if is_task_file(file) {
            let mut s = json!({"type": "FileTask", "taskFilePath": file});
            if let Some(v) = &a.values_file {
                s["valuesFilePath"] = json!(v);
            }
            s["contextPath"] = json!(a.context);
            if let Some(t) = &a.git_access_token {
                s["contextAccessToken"] = json!(t);
            }
            s["values"] = json!(values);
            s
        } else {
            let mut s = json!({"type": "Docker"});
            if !a.image.is_empty() {
                s["imageNames"] = json!(a.image);
            }
            s["isPushEnabled"] = json!(!a.no_push);
            s["noCache"] = json!(a.no_cache);
            s["dockerFilePath"] = json!(file);
            s["arguments"] = json!(arguments(&a.values)?);
            if let Some(t) = &a.target {
                s["target"] = json!(t);
            }
            s["contextPath"] = json!(a.context);
            if let Some(t) = &a.git_access_token {
                s["contextAccessToken"] = json!(t);
            }
            s
        }
    };
    let mut trigger = Map::new();
    if !a.schedule.is_empty() {
        let timers: Vec<Value> = a
            .schedule
            .iter()
            .enumerate()
            .map(|(i, s)| match s.split_once(':') {
                Some((name, cron)) => json!({"name": name, "status": "Enabled", "schedule": cron}),
                None => json!({"name": format!("t{}", i + 1), "status": "Enabled", "schedule": s}),
            })
            .collect();
        trigger.insert("timerTriggers".into(), json!(timers));
    }
    if commit || pull_request {
        let mut events = vec![];
        if commit {
            events.push("commit");
        }
        if pull_request {
            events.push("pullrequest");
        }
        let branch = a.branch.clone().or_else(|| branch_of(&a.context)).unwrap_or_else(|| "master".into());
        trigger.insert(
            "sourceTriggers".into(),
            json!([{
                "sourceRepository": {
                    "sourceControlType": source_control_type(&a.context),
                    "repositoryUrl": a.context,
                    "branch": branch,
                    "sourceControlAuthProperties": {"tokenType": "PAT", "token": a.git_access_token, "scope": "repo"},
                },
                "sourceTriggerEvents": events,
                "status": "Enabled",
                "name": a.source_trigger_name,
            }]),
        );
    }
    if a.base_image_trigger_enabled {
        let mut b = json!({
            "baseImageTriggerType": a.base_image_trigger_type.as_str(),
            "status": "Enabled",
            "name": a.base_image_trigger_name,
        });
        if let Some(e) = &a.update_trigger_endpoint {
            b["updateTriggerEndpoint"] = json!(e);
        }
        b["updateTriggerPayloadType"] = json!(a.update_trigger_payload_type.as_str());
        trigger.insert("baseImageTrigger".into(), b);
    }
    // Identities: --assign-identity, plus the one --source-acr-auth-id names.
    let source = a.source_acr_auth_id.as_deref().map(SourceIdentity::parse).transpose()?;
    let mut ids: Option<Vec<String>> =
        a.assign_identity.as_ref().map(|v| if v.is_empty() { vec![SYSTEM_IDENTITY.to_string()] } else { v.clone() });
    match &source {
        Some(SourceIdentity::System) => push_unique(ids.get_or_insert_with(Vec::new), SYSTEM_IDENTITY),
        Some(SourceIdentity::User(id)) => push_unique(ids.get_or_insert_with(Vec::new), id),
        _ => {}
    }
    let source_value = match &source {
        Some(s @ (SourceIdentity::System | SourceIdentity::User(_))) => {
            Some(source_identity_value(s, inp.source_client_id.as_deref())?)
        }
        // `none` at creation: the task simply gets no identity for its registry.
        _ => None,
    };
    let mut body = json!({"location": inp.location});
    if let Some(ids) = ids {
        body["identity"] = identity(&ids, false);
    }
    body["properties"] = json!({
        "status": a.status.as_str(),
        "platform": platform(a.platform.as_deref())?,
        "timeout": a.timeout,
        "agentConfiguration": {"cpu": a.cpu},
        "isSystemTask": false,
        "credentials": credentials(a.auth_mode.map(|m| m.as_str()), source_value),
        "trigger": trigger,
        "step": step,
    });
    Ok(body)
}

fn push_unique(ids: &mut Vec<String>, id: &str) {
    if !ids.iter().any(|i| i.eq_ignore_ascii_case(id)) {
        ids.push(id.to_string());
    }
}

/// What `task update` needs besides its flags and the task's `listDetails`.
#[derive(Debug, Default)]
pub struct UpdateInputs {
    /// New content for an EncodedTask (--cmd or a local -f).
    pub task_content: Option<Vec<u8>>,
    pub values_content: Option<Vec<u8>>,
    pub source_client_id: Option<String>,
}

/// `PATCH REG/tasks/{name}` for `task update`, from the flags and the task's details (az reads
/// the step type, the triggers' names and the source trigger's events from them).
pub fn update_body(a: &UpdateArgs, details: &Value, inp: &UpdateInputs) -> Result<Value, CliError> {
    let props = &details["properties"];
    let old_step = &props["step"];
    let old_type = old_step["type"].as_str().unwrap_or_default();
    let args =
        if a.values.arg.is_empty() && a.values.secret_arg.is_empty() { None } else { Some(arguments(&a.values)?) };
    let values = if a.values.set_value.is_empty() && a.values.set_secret.is_empty() {
        None
    } else {
        Some(set_values(&a.values.set_value, &a.values.set_secret)?)
    };
    let file_task = |file: Option<&String>| {
        let mut s = json!({"type": "FileTask"});
        put(&mut s, "taskFilePath", file);
        put(&mut s, "valuesFilePath", a.values_file.as_ref());
        put(&mut s, "contextPath", a.context.as_ref());
        put(&mut s, "contextAccessToken", a.git_access_token.as_ref());
        put(&mut s, "values", values.as_ref());
        s
    };
    let docker = |file: Option<&String>| {
        let mut s = json!({"type": "Docker"});
        if !a.image.is_empty() {
            s["imageNames"] = json!(a.image);
        }
        // az sends `not no_push`: true unless --no-push.
        s["isPushEnabled"] = json!(!a.no_push.unwrap_or(false));
        put(&mut s, "noCache", a.no_cache.as_ref());
        put(&mut s, "dockerFilePath", file);
        put(&mut s, "arguments", args.as_ref());
        put(&mut s, "contextPath", a.context.as_ref());
        put(&mut s, "contextAccessToken", a.git_access_token.as_ref());
        put(&mut s, "target", a.target.as_ref());
        s
    };
    let step = match old_type {
        "EncodedTask" => {
            let content = match &inp.task_content {
                Some(c) => json!(b64(c)),
                None => old_step["encodedTaskContent"].clone(),
            };
            let mut s = json!({"type": "EncodedTask", "encodedTaskContent": content});
            if let Some(v) = &inp.values_content {
                s["encodedValuesContent"] = json!(b64(v));
            }
            put(&mut s, "contextPath", a.context.as_ref());
            put(&mut s, "contextAccessToken", a.git_access_token.as_ref());
            put(&mut s, "values", values.as_ref());
            Some(s)
        }
        _ if a.file.as_deref().is_some_and(is_task_file) => Some(file_task(a.file.as_ref())),
        _ if a.file.is_some() => Some(docker(a.file.as_ref())),
        "Docker" => Some(docker(None)),
        "FileTask" => Some(file_task(None)),
        _ => None,
    };
    if a.cmd.is_some() && old_type != "EncodedTask" {
        return Err(CliError::Usage(format!(
            "--cmd replaces the content of a task created with -c /dev/null; task '{}' has a {old_type} step.",
            a.task.name
        )));
    }
    // Triggers: only what az sends back, with the names the task has.
    let mut trigger = Map::new();
    let old_trigger = &props["trigger"];
    if old_trigger.is_object() {
        let old_sources = old_trigger["sourceTriggers"].as_array().filter(|s| !s.is_empty());
        if a.commit_trigger_enabled == Some(true)
            || a.pull_request_trigger_enabled == Some(true)
            || old_sources.is_some()
        {
            let first = old_sources.and_then(|s| s.first());
            let mut events: Vec<String> = first
                .filter(|t| !t["status"].as_str().is_some_and(|s| s.eq_ignore_ascii_case("disabled")))
                .and_then(|t| t["sourceTriggerEvents"].as_array())
                .map(|e| e.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            for (flag, event) in [(a.commit_trigger_enabled, "commit"), (a.pull_request_trigger_enabled, "pullrequest")]
            {
                match flag {
                    Some(true) if !events.iter().any(|e| e == event) => events.push(event.into()),
                    Some(false) => events.retain(|e| e != event),
                    _ => {}
                }
            }
            let mut repo = Map::new();
            if let Some(c) = &a.context {
                repo.insert("sourceControlType".into(), json!(source_control_type(c)));
                repo.insert("repositoryUrl".into(), json!(c));
            }
            if let Some(b) = a.branch.clone().or_else(|| a.context.as_deref().and_then(branch_of)) {
                repo.insert("branch".into(), json!(b));
            }
            let mut auth = json!({"tokenType": "PAT"});
            put(&mut auth, "token", a.git_access_token.as_ref());
            repo.insert("sourceControlAuthProperties".into(), auth);
            let status = if events.is_empty() { "Disabled" } else { "Enabled" };
            let name = first.and_then(|t| t["name"].as_str()).unwrap_or("defaultSourceTriggerName");
            trigger.insert(
                "sourceTriggers".into(),
                json!([{"sourceRepository": repo, "sourceTriggerEvents": events, "status": status, "name": name}]),
            );
        }
        let old_base = &old_trigger["baseImageTrigger"];
        if a.base_image_trigger_enabled == Some(true) || old_base.is_object() {
            let mut b = Map::new();
            if let Some(t) = a.base_image_trigger_type {
                b.insert("baseImageTriggerType".into(), json!(t.as_str()));
            }
            if let Some(e) = a.base_image_trigger_enabled {
                b.insert("status".into(), json!(if e { "Enabled" } else { "Disabled" }));
            }
            b.insert("name".into(), json!(old_base["name"].as_str().unwrap_or("defaultBaseimageTriggerName")));
            if let Some(e) = &a.update_trigger_endpoint {
                b.insert("updateTriggerEndpoint".into(), json!(e));
            }
            if let Some(p) = a.update_trigger_payload_type {
                b.insert("updateTriggerPayloadType".into(), json!(p.as_str()));
            }
            trigger.insert("baseImageTrigger".into(), Value::Object(b));
        }
    }
    let source = a.source_acr_auth_id.as_deref().map(SourceIdentity::parse).transpose()?;
    let source_value =
        source.as_ref().map(|s| source_identity_value(s, inp.source_client_id.as_deref())).transpose()?;
    let mut p = Map::new();
    if let Some(s) = a.status {
        p.insert("status".into(), json!(s.as_str()));
    }
    p.insert("platform".into(), if a.platform.is_some() { platform(a.platform.as_deref())? } else { json!({}) });
    let mut agent = json!({});
    put(&mut agent, "cpu", a.cpu.as_ref());
    p.insert("agentConfiguration".into(), agent);
    if let Some(t) = a.timeout {
        p.insert("timeout".into(), json!(t));
    }
    if let Some(s) = step {
        p.insert("step".into(), s);
    }
    p.insert("credentials".into(), credentials(a.auth_mode.map(|m| m.as_str()), source_value));
    p.insert("trigger".into(), Value::Object(trigger));
    Ok(json!({"properties": p}))
}

/// The PATCH az sends before the update when `--source-acr-auth-id` names an identity the task
/// does not have yet: the task's identity type widened, with the new user-assigned identity.
pub fn identity_patch(details: &Value, source: &SourceIdentity) -> Option<Value> {
    let old = &details["identity"];
    let old_type = old["type"].as_str().unwrap_or("None");
    let has_system = old_type.contains("SystemAssigned");
    let has_user = old_type.contains("UserAssigned");
    let widened = |system: bool, user: bool| match (system, user) {
        (true, true) => "SystemAssigned, UserAssigned",
        (true, false) => "SystemAssigned",
        _ => "UserAssigned",
    };
    match source {
        SourceIdentity::System if !has_system => Some(json!({"identity": {"type": widened(true, has_user)}})),
        SourceIdentity::User(id) => {
            let present =
                old["userAssignedIdentities"].as_object().is_some_and(|m| m.keys().any(|k| k.eq_ignore_ascii_case(id)));
            (!present).then(
                || json!({"identity": {"type": widened(has_system, true), "userAssignedIdentities": {id.clone(): {}}}}),
            )
        }
        _ => None,
    }
}

fn put<T: serde::Serialize>(obj: &mut Value, key: &str, v: Option<&T>) {
    if let Some(v) = v {
        obj[key] = json!(v);
    }
}

/// `POST REG/scheduleRun` for `task run`.
pub fn task_run_request(task_id: &str, a: &TaskRunArgs) -> Result<Value, CliError> {
    let mut o = Map::new();
    if let Some(c) = &a.context {
        o.insert("contextPath".into(), json!(c));
    }
    if let Some(f) = &a.file {
        o.insert("file".into(), json!(f));
    }
    o.insert("arguments".into(), json!(arguments(&a.values)?));
    if let Some(t) = &a.target {
        o.insert("target".into(), json!(t));
    }
    o.insert("values".into(), json!(set_values(&a.values.set_value, &a.values.set_secret)?));
    if let Some(t) = &a.update_trigger_token {
        o.insert("updateTriggerToken".into(), json!(b64(t.as_bytes())));
    }
    Ok(json!({"type": "TaskRunRequest", "taskId": task_id, "overrideTaskStepProperties": o}))
}

/// `POST REG/scheduleRun` for `acr run` with context /dev/null: the task file (or the `--cmd`
/// template) travels base64-encoded.
pub fn encoded_run_request(
    a: &AcrRunArgs,
    task_content: &[u8],
    values_content: Option<&[u8]>,
) -> Result<Value, CliError> {
    let mut r = json!({"type": "EncodedTaskRunRequest", "encodedTaskContent": b64(task_content)});
    if let Some(v) = values_content {
        r["encodedValuesContent"] = json!(b64(v));
    }
    r["values"] = json!(set_values(&a.set_value, &a.set_secret)?);
    if let Some(t) = a.timeout {
        r["timeout"] = json!(t);
    }
    r["platform"] = platform(a.platform.as_deref())?;
    r["credentials"] = run_credentials(a.source_acr_auth_id.as_deref(), a.auth_mode);
    Ok(r)
}

/// `credentials` of a quick run or build: `--source-acr-auth-id [caller]` is the identity,
/// `--auth-mode` the login mode.
fn run_credentials(source_acr_auth_id: Option<&str>, auth_mode: Option<AuthMode>) -> Value {
    match source_acr_auth_id {
        // Not probed: a quick run with `none` gets no source-registry credentials, which
        // Wharf's server reads from loginMode None.
        Some(v) if v.eq_ignore_ascii_case("none") => json!({"sourceRegistry": {"loginMode": "None"}}),
        other => credentials(auth_mode.map(|m| m.as_str()), other.map(|v| json!(v))),
    }
}

/// `POST REG/scheduleRun` for `acr run` with a context (uploaded, or a URL): the task file is
/// named by its path in the context (az's `FileTaskRunRequest`, keys in az's order).
pub fn file_run_request(a: &AcrRunArgs, source_location: &str) -> Result<Value, CliError> {
    let mut r = json!({"type": "FileTaskRunRequest",
                       "taskFilePath": a.file.as_deref().unwrap_or(DEFAULT_TASK_FILE)});
    if let Some(v) = &a.values_file {
        r["valuesFilePath"] = json!(v);
    }
    r["values"] = json!(set_values(&a.set_value, &a.set_secret)?);
    r["sourceLocation"] = json!(source_location);
    if let Some(t) = a.timeout {
        r["timeout"] = json!(t);
    }
    r["platform"] = platform(a.platform.as_deref())?;
    r["credentials"] = run_credentials(a.source_acr_auth_id.as_deref(), a.auth_mode);
    Ok(r)
}

/// Whether `acr build` pushes (az's `_get_push_enabled_status`), and its warnings: none with
/// `--no-push`; without any `-t`, az's "not provided" warning.
pub fn push_enabled(a: &AcrBuildArgs) -> (bool, Vec<String>) {
    if a.no_push {
        return (false, vec![]);
    }
    if a.image.is_empty() {
        return (false, vec!["'--image or -t' is not provided. Skipping image push after build.".into()]);
    }
    let old = a.image.iter().any(|i| i.contains(".Build.ID"));
    let warnings = if old {
        vec![".Build.ID is no longer supported as a valid substitution, use .Run.ID instead.".into()]
    } else {
        vec![]
    };
    (true, warnings)
}

/// `POST REG/scheduleRun` for `acr build` (az's `DockerBuildRequest`, keys in the order az
/// sends them): `source_location` is the uploaded archive's `relativePath` or the remote URL,
/// `docker_file_path` the Dockerfile's name in it.
pub fn docker_build_request(
    a: &AcrBuildArgs,
    source_location: &str,
    docker_file_path: &str,
) -> Result<Value, CliError> {
    let mut r = json!({"type": "DockerBuildRequest"});
    if !a.image.is_empty() {
        r["imageNames"] = json!(a.image);
    }
    r["isPushEnabled"] = json!(push_enabled(a).0);
    r["sourceLocation"] = json!(source_location);
    r["platform"] = platform(a.platform.as_deref())?;
    r["dockerFilePath"] = json!(docker_file_path);
    if let Some(t) = a.timeout {
        r["timeout"] = json!(t);
    }
    let values = StepValues { arg: a.build_arg.clone(), secret_arg: a.secret_build_arg.clone(), ..Default::default() };
    r["arguments"] = json!(arguments(&values)?);
    if let Some(t) = &a.target {
        r["target"] = json!(t);
    }
    r["credentials"] = run_credentials(a.source_acr_auth_id.as_deref(), a.auth_mode);
    Ok(r)
}

/// A custom registry's credential entry (`task credential add|update`).
pub fn custom_registry(a: &CredentialArgs) -> Result<Value, CliError> {
    if a.use_identity.is_none() && (a.username.is_none() || a.password.is_none()) {
        return Err(CliError::Usage(
            "usage error: --use-identity [system]|CLIENT_ID | --username USERNAME --password PASSWORD".into(),
        ));
    }
    let secret = |v: &str| {
        let kind = if v.to_ascii_lowercase().contains(KEYVAULT_SUFFIX) { "Vaultsecret" } else { "Opaque" };
        json!({"type": kind, "value": v})
    };
    let mut entry = Map::new();
    if let Some(u) = &a.username {
        entry.insert("userName".into(), secret(u));
    }
    if let Some(p) = &a.password {
        entry.insert("password".into(), secret(p));
    }
    if let Some(i) = &a.use_identity {
        entry.insert("identity".into(), json!(i));
    }
    Ok(json!({"properties": {"credentials": {"customRegistries": {a.login_server.clone(): entry}}}}))
}

/// `task credential remove`: the login server mapped to null (remove the key).
pub fn remove_custom_registry(login_server: &str) -> Value {
    json!({"properties": {"credentials": {"customRegistries": {login_server: null}}}})
}

#[cfg(test)]
mod tests;
