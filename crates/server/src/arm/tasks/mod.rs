//! ACR Tasks on the management plane: task resources (`…/registries/{r}/tasks/{t}`), runs
//! (`…/runs/{id}`), `scheduleRun`, cancellation and log links. The endpoints and their one
//! permission table are in [`endpoint`]; dispatch authorizes them on the registry before any
//! store read, like every management endpoint.
//!
//! A task is stored as an identity-carrying resource (its system-assigned identity is a real
//! managed identity of the directory, gone with the task). Answers follow what the real `az`
//! needs: `PUT` answers 200 (az mishandles 201), `scheduleRun` and `cancel` answer 200.
//!
//! Must never: return a task's secrets outside `listDetails`, or queue a run that names an
//! identity the task does not carry.

pub mod endpoint;
pub mod runs;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use wharf_arm::ArmError;
use wharf_arm::identity::{HostingResource, IdentityRequest};
use wharf_arm::task::{self, Credentials, SourceAuth, TASKS, TaskSpec};
use wharf_storage::ResourceRecord;

pub use endpoint::TaskEndpoint;

use crate::arm::resources::hosts;
use crate::arm::{ArmCtx, json_response, storage_error};
use crate::model::identities::{Host, HostInternal};
use crate::model::registries::StoredRegistry;

pub async fn handle(ctx: &ArmCtx, group: &str, name: &str, endpoint: TaskEndpoint) -> Result<Response, ArmError> {
    use TaskEndpoint as E;
    if let E::MethodNotAllowed { method } = &endpoint {
        return Err(ArmError::method_not_allowed(method.as_str()));
    }
    let registry = crate::arm::registries::require(&ctx.state, group, name).await?;
    match endpoint {
        E::ListTasks => list(ctx, &registry).await,
        E::GetTask { task } => Ok(json_response(StatusCode::OK, &view(&require(ctx, &registry, &task).await?, false))),
        E::TaskDetails { task } => {
            let host = require(ctx, &registry, &task).await?;
            Ok(json_response(StatusCode::OK, &details(ctx, &registry, &host)))
        }
        E::PutTask { task } => put(ctx, &registry, &task).await,
        E::PatchTask { task } => patch(ctx, &registry, &task).await,
        E::DeleteTask { task } => delete(ctx, &registry, &task).await,
        E::ScheduleRun => runs::schedule(ctx, &registry).await,
        E::SourceUploadUrl => runs::upload_url(ctx, &registry),
        E::ListRuns => runs::list(ctx, &registry).await,
        E::GetRun { run } => runs::get(ctx, &registry, &run).await,
        E::PatchRun { run } => runs::patch(ctx, &registry, &run).await,
        E::CancelRun { run } => runs::cancel(ctx, &registry, &run).await,
        E::RunLogLink { run } => runs::log_link(ctx, &registry, &run).await,
        E::MethodNotAllowed { .. } => unreachable!("answered above"),
    }
}

pub fn task_id(registry: &StoredRegistry, name: &str) -> String {
    format!("{}/tasks/{name}", registry.record.id)
}

/// The task `name` of `registry` (case-insensitive), or `None`.
pub async fn find(ctx: &ArmCtx, registry: &StoredRegistry, name: &str) -> Result<Option<Host>, ArmError> {
    match ctx.state.meta.resource_get(&task_id(registry, name)).await {
        Ok(Some(r)) if r.resource_type.eq_ignore_ascii_case(TASKS) => {
            Host::from_record(r).map(Some).map_err(|e| storage_error("reading a task", e))
        }
        Ok(_) => Ok(None),
        Err(e) => Err(storage_error("reading a task", e)),
    }
}

async fn require(ctx: &ArmCtx, registry: &StoredRegistry, name: &str) -> Result<Host, ArmError> {
    find(ctx, registry, name).await?.ok_or_else(|| {
        ArmError::new(
            404,
            "ResourceNotFound",
            format!("The task '{name}' of registry '{}' could not be found.", registry.record.name),
        )
    })
}

/// A task as ARM shows it: `secrets` only for `listDetails`.
fn view(host: &Host, secrets: bool) -> Value {
    let mut body = host.public_body();
    if !secrets {
        body["properties"] = task::public_properties(&body["properties"]);
    }
    body
}

/// `listDetails`: the task with its secrets, and each source trigger's webhook — the address
/// and secret its provider must be given (`trigger.sourceTriggers[i].webhook {url, secret}`;
/// derived, never stored).
fn details(ctx: &ArmCtx, registry: &StoredRegistry, host: &Host) -> Value {
    let mut body = view(host, true);
    let base = ctx.state.base_url(&ctx.headers);
    if let Some(Value::Array(triggers)) = body.pointer_mut("/properties/trigger/sourceTriggers") {
        for t in triggers {
            let Some(name) = t["name"].as_str().map(str::to_string) else { continue };
            t["webhook"] = json!({
                "url": crate::triggers::webhooks::url(&base, &registry.record.name, &host.record.name, &name),
                "secret": crate::triggers::webhooks::secret(&ctx.state, host, &name),
            });
        }
    }
    body
}

async fn list(ctx: &ArmCtx, registry: &StoredRegistry) -> Result<Response, ArmError> {
    let prefix = format!("{}/tasks/", registry.record.id.to_ascii_lowercase());
    let all =
        crate::model::records_of_type(&*ctx.state.meta, TASKS).await.map_err(|e| storage_error("listing tasks", e))?;
    let mut value = vec![];
    for r in all.into_iter().filter(|r| r.id.to_ascii_lowercase().starts_with(&prefix)) {
        value.push(view(&Host::from_record(r).map_err(|e| storage_error("listing tasks", e))?, false));
    }
    Ok(json_response(StatusCode::OK, &json!({"value": value})))
}

/// The checks a task's properties get beyond their shape, against the registry and the
/// identities the task carries: ABAC mode refuses `loginMode`; a source or custom-registry
/// identity must be one the task has; the task file must read.
fn check(registry: &StoredRegistry, host: &Host, spec: &TaskSpec) -> Result<(), ArmError> {
    let abac = registry.properties.role_assignment_mode.is_abac();
    if abac && spec.credentials.login_mode.is_some() {
        return Err(ArmError::bad_request(
            "AuthModeNotSupported",
            format!(
                "The registry '{}' uses the role assignment mode 'AbacRepositoryPermissions', where tasks have no default access to it and '--auth-mode' (credentials.sourceRegistry.loginMode) is not supported. Give the task an identity with '--source-acr-auth-id [system]' or a user-assigned identity's resource id (and a Container Registry Repository role for it), or 'none'.",
                registry.record.name
            ),
        ));
    }
    if spec.credentials.login_mode.as_deref() == Some("None") && spec.credentials.identity.is_some() {
        return Err(ArmError::bad_request(
            "ConflictingAuthenticationParameters",
            "The source registry login mode is 'None' but an identity is given for the source registry: use one of the two.",
        ));
    }
    let mut wanted: Vec<String> = vec![];
    match spec.credentials.source_auth(abac) {
        SourceAuth::SystemIdentity => wanted.push("[system]".into()),
        SourceAuth::ClientId(c) => wanted.push(c),
        SourceAuth::Caller => {
            return Err(ArmError::bad_request(
                "InvalidTaskCredentials",
                "'[caller]' is for quick runs ('acr run', 'acr build'); a task needs '[system]', a user-assigned identity or none.",
            ));
        }
        SourceAuth::RunToken | SourceAuth::Nothing => {}
    }
    let custom_ids: Vec<String> = spec
        .credentials
        .custom
        .values()
        .filter_map(|c| match c {
            task::CustomCredential::Identity(i) => Some(i.clone()),
            task::CustomCredential::UserPassword { .. } => None,
        })
        .collect();
    wanted.extend(custom_ids);
    for id in &wanted {
        host.carried_identity(id).map_err(|m| ArmError::bad_request("InvalidTaskIdentity", m))?;
    }
    if !spec.sources.is_empty() {
        let context = task::Step::context(&spec.properties["step"]).unwrap_or_default();
        if wharf_tasks::GitLocation::parse(&context).is_none() {
            return Err(ArmError::bad_request(
                "InvalidSourceTrigger",
                "A source trigger runs the task for a commit of its git repository: give the task a git context ('--context https://host/repo.git#branch'), or no source trigger.",
            ));
        }
    }
    if let task::Step::Encoded { content, values } = &spec.step {
        crate::runs::Source::Yaml { content: content.clone(), values: values.clone() }
            .validate(&[], &[])
            .map_err(|e| ArmError::bad_request("InvalidTaskFile", e))?;
    }
    Ok(())
}

async fn put(ctx: &ArmCtx, registry: &StoredRegistry, name: &str) -> Result<Response, ArmError> {
    task::validate_task_name(name)?;
    let state = &ctx.state;
    let body = ctx.json()?;
    let identity = IdentityRequest::parse(body.get("identity").unwrap_or(&Value::Null))?;
    let spec = TaskSpec::parse(body.get("properties").unwrap_or(&Value::Null))?;
    let existing = find(ctx, registry, name).await?;
    let now = chrono::Utc::now();
    let (record, internal, previous_identity, created_on) = match existing {
        Some(h) => {
            let created = h.resource.properties["creationDate"].clone();
            (h.record, h.internal, h.resource.identity, created)
        }
        None => (
            ResourceRecord {
                id: task_id(registry, name),
                resource_type: TASKS.to_string(),
                name: name.to_string(),
                resource_group: registry.record.resource_group.clone(),
                key: uuid::Uuid::new_v4().to_string(),
                body: json!({}),
                created_at: now,
                updated_at: now,
            },
            HostInternal::default(),
            None,
            json!(now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        ),
    };
    let mut properties = spec.properties.clone();
    properties["provisioningState"] = json!("Succeeded");
    properties["creationDate"] = created_on;
    let resource = HostingResource {
        id: record.id.clone(),
        name: record.name.clone(),
        resource_type: TASKS.to_string(),
        location: body["location"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| registry.record.body["location"].as_str().unwrap_or("local").to_string()),
        tags: crate::arm::resources::tags_of(&body, json!({}))?,
        identity: previous_identity,
        properties,
    };
    let mut host = Host { record, resource, internal };
    let dropped = hosts::apply_identity(state, &mut host, identity, true).await?;
    check(registry, &host, &spec)?;
    host.record.updated_at = now;
    state.meta.resource_put(&host.to_record()).await.map_err(|e| storage_error("storing a task", e))?;
    hosts::revoke(state, &dropped).await?;
    Ok(json_response(StatusCode::OK, &view(&host, false)))
}

async fn patch(ctx: &ArmCtx, registry: &StoredRegistry, name: &str) -> Result<Response, ArmError> {
    let mut host = require(ctx, registry, name).await?;
    let state = &ctx.state;
    let body = ctx.json()?;
    let identity = IdentityRequest::parse(body.get("identity").unwrap_or(&Value::Null))?;
    let mut properties = host.resource.properties.clone();
    if let Some(p) = body.get("properties") {
        if !p.is_object() && !p.is_null() {
            return Err(ArmError::invalid_request("'properties' must be an object."));
        }
        wharf_arm::timer::merge_task_patch(&mut properties, p);
    }
    let spec = TaskSpec::parse(&properties)?;
    let mut merged = spec.properties.clone();
    merged["provisioningState"] = json!("Succeeded");
    merged["creationDate"] = host.resource.properties["creationDate"].clone();
    host.resource.properties = merged;
    host.resource.tags = crate::arm::resources::tags_of(&body, host.resource.tags.clone())?;
    let dropped = hosts::apply_identity(state, &mut host, identity, false).await?;
    check(registry, &host, &spec)?;
    host.record.updated_at = chrono::Utc::now();
    state.meta.resource_put(&host.to_record()).await.map_err(|e| storage_error("storing a task", e))?;
    hosts::revoke(state, &dropped).await?;
    Ok(json_response(StatusCode::OK, &view(&host, false)))
}

async fn delete(ctx: &ArmCtx, registry: &StoredRegistry, name: &str) -> Result<Response, ArmError> {
    let state = &ctx.state;
    let Some(host) = find(ctx, registry, name).await? else {
        return Ok(json_response(StatusCode::NO_CONTENT, &Value::Null));
    };
    let deleted = state.delete_tree(&host.record.id).await.map_err(|e| storage_error("deleting a task", e))?;
    crate::arm::resources::after_delete(state, &deleted).await?;
    Ok(json_response(StatusCode::OK, &Value::Null))
}

/// The credentials a run of `host` reads (for `scheduleRun`).
pub fn task_credentials(host: &Host) -> Result<Credentials, ArmError> {
    Credentials::parse(&host.resource.properties["credentials"])
}
