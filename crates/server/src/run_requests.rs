//! A task's run request: what a run of a task resource executes, with which context, values
//! and identity, from the task's properties and a `TaskRunRequest`'s overrides. `scheduleRun`
//! (the management plane) and the triggers (timers, base-image updates, source webhooks) queue
//! the same request, so a task runs alike however it was started.
//!
//! Must never: accept a context another registry uploaded, a `file://` repository outside the
//! operator's allowed roots, or an identity the task does not carry.

use serde_json::Value;
use wharf_arm::ArmError;
use wharf_arm::task::{self, SourceAuth};

use crate::model::identities::Host;
use crate::model::registries::StoredRegistry;
use crate::runs::{Identity, RunContext, RunRequest, Source, Value as RunValue};
use crate::state::AppState;

fn bad(code: &str, message: impl Into<String>) -> ArmError {
    ArmError::bad_request(code, message)
}

/// A run's context from its `sourceLocation` / `contextPath`: nothing (`/dev/null`), a source
/// uploaded to this registry, or a git repository (`url#reference:folder`).
pub fn context_of(
    state: &AppState,
    registry: &StoredRegistry,
    location: &str,
    token: Option<String>,
) -> Result<RunContext, ArmError> {
    let location = location.trim();
    if location.is_empty() || location == "/dev/null" {
        return Ok(RunContext::Empty);
    }
    if let Some(upload) = crate::sources::upload_of(location) {
        if !crate::sources::committed(state, &registry.key().0, upload).is_file() {
            return Err(bad(
                "SourceNotFound",
                format!(
                    "The uploaded source '{location}' is not in registry '{}': it was never uploaded, expired, or is used by another run. Ask listBuildSourceUploadUrl for a new link and upload the context again.",
                    registry.record.name
                ),
            ));
        }
        return Ok(RunContext::Uploaded { upload: upload.to_string() });
    }
    let git = wharf_tasks::GitLocation::parse(location).ok_or_else(|| {
        bad(
            "InvalidSourceLocation",
            format!(
                "The source location '{location}' is not one Wharf can run from: give an uploaded source ('source/….tar.gz', from listBuildSourceUploadUrl), a git repository (https://host/repo.git#branch:folder or file:///path/repo.git) or /dev/null."
            ),
        )
    })?;
    if let Some(path) = git.url.strip_prefix("file://") {
        let allowed = std::path::Path::new(path).canonicalize().ok().is_some_and(|p| {
            state.config.tasks.git_file_roots.iter().any(|r| r.canonicalize().is_ok_and(|r| p.starts_with(r)))
        });
        if !allowed {
            return Err(bad(
                "InvalidSourceLocation",
                format!(
                    "The git repository '{}' is on the server's own disk, which runs may read only below a directory the operator allows ('wharf serve --task-git-file-root DIR').",
                    git.url
                ),
            ));
        }
    }
    Ok(RunContext::Git { url: git.url, reference: git.reference, folder: git.folder, token })
}

/// `[{name, value, isSecret}]` of a request.
pub fn values_of(v: &Value, what: &str) -> Result<Vec<RunValue>, ArmError> {
    match v {
        Value::Null => Ok(vec![]),
        Value::Array(items) => items
            .iter()
            .map(|i| match (i["name"].as_str(), i["value"].as_str()) {
                (Some(n), Some(val)) if !n.is_empty() => Ok(RunValue {
                    name: n.to_string(),
                    value: val.to_string(),
                    secret: i["isSecret"].as_bool().unwrap_or(false),
                }),
                _ => Err(bad("InvalidRunRequest", format!("each of '{what}' needs a 'name' and a string 'value'."))),
            })
            .collect(),
        _ => Err(bad("InvalidRunRequest", format!("'{what}' must be a list."))),
    }
}

/// The run request of a run of the task `host` of `registry`, with a `TaskRunRequest`'s
/// overrides from `body` (`overrideTaskStepProperties`, `isArchiveEnabled`; `{}` for none):
/// what `scheduleRun` queues, and the task's triggers too (they have no request).
pub fn task_request(
    state: &AppState,
    registry: &StoredRegistry,
    host: &Host,
    body: &Value,
) -> Result<RunRequest, ArmError> {
    let name = &host.record.name;
    let spec = task::TaskSpec::parse(&host.resource.properties)?;
    if !spec.enabled {
        return Err(ArmError::new(
            409,
            "TaskDisabled",
            format!("The task '{name}' is disabled: enable it with 'wharf acr task update --status Enabled'."),
        ));
    }
    let step = &host.resource.properties["step"];
    let overrides = &body["overrideTaskStepProperties"];
    let location = overrides["contextPath"]
        .as_str()
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .or_else(|| task::Step::context(step))
        .unwrap_or_default();
    let token = step["contextAccessToken"].as_str().filter(|t| !t.is_empty()).map(str::to_string);
    let context = context_of(state, registry, &location, token)?;
    let file = overrides["file"].as_str().filter(|f| !f.is_empty()).map(str::to_string);
    let mut values = values_of(&host.resource.properties["step"]["values"], "step.values")?;
    let over = values_of(&overrides["values"], "overrideTaskStepProperties.values")?;
    for v in over {
        values.retain(|x| x.name != v.name);
        values.push(v);
    }
    let mut arguments = values_of(&host.resource.properties["step"]["arguments"], "step.arguments")?;
    arguments.extend(values_of(&overrides["arguments"], "overrideTaskStepProperties.arguments")?);
    let platform = &host.resource.properties["platform"];
    let source = match &spec.step {
        task::Step::Encoded { content, values: encoded } => {
            Source::Yaml { content: content.clone(), values: encoded.clone() }
        }
        task::Step::File { path } => Source::File {
            path: file.unwrap_or_else(|| path.clone()),
            values: step["valuesFilePath"].as_str().filter(|v| !v.is_empty()).map(str::to_string),
        },
        task::Step::Docker { dockerfile, images, push, no_cache, target } => Source::Docker {
            images: images.clone(),
            dockerfile: file.unwrap_or_else(|| dockerfile.clone()),
            push: *push,
            no_cache: *no_cache,
            target: overrides["target"].as_str().filter(|t| !t.is_empty()).map(str::to_string).or(target.clone()),
            platform: platform_of(platform),
        },
    };
    if !matches!(source, Source::Yaml { .. }) && context == RunContext::Empty {
        return Err(bad(
            "InvalidRunRequest",
            format!(
                "The task '{name}' builds from a context, and it has none: give it one ('--context') or pass one when you run it."
            ),
        ));
    }
    let abac = registry.properties.role_assignment_mode.is_abac();
    let identity = match spec.credentials.source_auth(abac) {
        SourceAuth::RunToken => Identity::RunToken,
        SourceAuth::Nothing => Identity::Nothing,
        SourceAuth::SystemIdentity => Identity::Task { selector: "[system]".into() },
        SourceAuth::ClientId(c) => Identity::Task { selector: c },
        SourceAuth::Caller => return Err(bad("InvalidTaskCredentials", "'[caller]' is for quick runs only.")),
    };
    if let Identity::Task { selector } = &identity {
        host.carried_identity(selector).map_err(|m| bad("InvalidTaskIdentity", m))?;
    }
    Ok(RunRequest {
        task: Some(host.record.name.clone()),
        task_id: Some(host.record.id.clone()),
        source,
        context,
        values,
        arguments,
        identity,
        custom: spec.credentials.custom.clone(),
        timeout: spec.timeout,
        platform: host.resource.properties["platform"].clone(),
        agent: host.resource.properties["agentConfiguration"].clone(),
        archive: body["isArchiveEnabled"].as_bool().unwrap_or(false),
        branch: None,
    })
}

/// `os/architecture[/variant]` of a `platform` object.
pub fn platform_of(p: &Value) -> Option<String> {
    let os = p["os"].as_str().filter(|s| !s.is_empty()).unwrap_or("linux");
    let arch = p["architecture"].as_str().filter(|s| !s.is_empty())?;
    Some(match p["variant"].as_str().filter(|s| !s.is_empty()) {
        Some(v) => format!("{}/{}/{v}", os.to_ascii_lowercase(), arch.to_ascii_lowercase()),
        None => format!("{}/{}", os.to_ascii_lowercase(), arch.to_ascii_lowercase()),
    })
}
