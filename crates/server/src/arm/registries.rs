//! `Microsoft.ContainerRegistry/registries`: create, read, update, delete and list, the
//! registry's actions (admin credentials, usages, and Wharf's explanation endpoints, which
//! live in `explain`), and the ACR features whose endpoints are recognised but not served yet.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use wharf_arm::registry::{RegistryProperties, Sku};
use wharf_arm::{ArmError, ResourceId, types, validate_registry_name};
use wharf_storage::{RegistryKey, ResourceFilter, ResourceRecord, StorageError};

use super::endpoint::RegistryAction;
use super::{ArmCtx, groups, json_response, storage_error};
use crate::model::registries::{self as stored, RegistryInternal, StoredRegistry};
use crate::state::{AppState, RegistryInfo};

fn registry_id(state: &AppState, group: &str, name: &str) -> String {
    ResourceId::registry(&state.subscription_id, group, name).to_string()
}

pub async fn list(ctx: &ArmCtx, group: Option<&str>) -> Result<Response, ArmError> {
    if let Some(g) = group {
        groups::require(&ctx.state, g).await?;
    }
    let filter =
        ResourceFilter { resource_type: Some(types::REGISTRY.into()), resource_group: group.map(str::to_string) };
    let all = ctx.state.meta.resource_list(&filter).await.map_err(|e| storage_error("listing registries", e))?;
    let value: Vec<Value> =
        all.iter().filter(|r| ctx.shows(&r.id, types::REGISTRY)).map(|r| stored::public_body(&r.body)).collect();
    Ok(json_response(StatusCode::OK, &json!({"value": value})))
}

pub async fn get(ctx: &ArmCtx, group: &str, name: &str) -> Result<Response, ArmError> {
    Ok(json_response(StatusCode::OK, &require(&ctx.state, group, name).await?.public_body()))
}

/// Loads a registry of a resource group, or ARM's not-found errors.
pub async fn require(state: &AppState, group: &str, name: &str) -> Result<StoredRegistry, ArmError> {
    groups::require(state, group).await?;
    stored::by_id(&*state.meta, &registry_id(state, group, name))
        .await
        .map_err(|e| storage_error("reading a registry", e))?
        .ok_or_else(|| ArmError::resource_not_found(types::REGISTRY, name, group))
}

fn sku_of(body: &Value) -> Result<Option<Sku>, ArmError> {
    match body.get("sku") {
        None | Some(Value::Null) => Ok(None),
        Some(s) => {
            let name = s
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| ArmError::invalid_request("'sku.name' is required."))?;
            Sku::parse(name).map(Some)
        }
    }
}

/// The ARM JSON of a registry, with Wharf's private part.
fn registry_body(
    id: &str,
    name: &str,
    location: &str,
    sku: Sku,
    tags: Value,
    props: &RegistryProperties,
    internal: &RegistryInternal,
) -> Value {
    let mut body = json!({
        "id": id,
        "name": name,
        "type": types::REGISTRY,
        "location": location,
        "tags": tags,
        "sku": {"name": sku.as_str(), "tier": sku.as_str()},
        "systemData": {"createdAt": props.creation_date, "createdByType": "User", "lastModifiedAt": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true), "lastModifiedByType": "User"},
        "properties": props,
    });
    stored::set_internal(&mut body, internal);
    body
}

/// The token epoch after a write: unchanged, unless the role-assignment mode changed (every
/// token issued before must stop working, and stay refused if the mode is switched back).
fn next_internal(before: Option<&StoredRegistry>, props: &RegistryProperties) -> RegistryInternal {
    match before {
        None => RegistryInternal::new_epoch(),
        Some(r) if r.properties.role_assignment_mode != props.role_assignment_mode => RegistryInternal::new_epoch(),
        Some(r) => RegistryInternal { token_epoch: Some(r.token_epoch()) },
    }
}

pub async fn put(ctx: &ArmCtx, group: &str, name: &str) -> Result<Response, ArmError> {
    validate_registry_name(name)?;
    let state = &ctx.state;
    let rg = groups::require(state, group).await?;
    let body = ctx.json()?;
    let sku = sku_of(&body)?
        .ok_or_else(|| ArmError::invalid_request("The 'sku' property is required to create a registry."))?;
    let location = body
        .get("location")
        .and_then(Value::as_str)
        .filter(|l| !l.is_empty())
        .map(|l| l.to_ascii_lowercase().replace(' ', ""))
        .unwrap_or_else(|| rg.body["location"].as_str().unwrap_or("local").to_string());
    let existing = stored::by_id(&*state.meta, &registry_id(state, &rg.name, name))
        .await
        .map_err(|e| storage_error("reading a registry", e))?;
    let now = chrono::Utc::now();
    let (record_name, key, created_at) = match &existing {
        Some(r) => (r.record.name.clone(), r.record.key.clone(), r.record.created_at),
        None => (name.to_string(), uuid::Uuid::new_v4().to_string(), now),
    };
    // PUT replaces the writable properties; the login server and creation date stay.
    let mut base = RegistryProperties::defaults(&state.login_server(&record_name), created_at);
    if let Some(old) = &existing {
        base.creation_date = old.properties.creation_date.clone();
        base.private_endpoint_connections = old.properties.private_endpoint_connections.clone();
    }
    let props = base.apply(body.get("properties").unwrap_or(&Value::Null))?;
    props.validate(sku)?;
    check_vnet_rules(state, &props).await?;
    let id = registry_id(state, &rg.name, &record_name);
    let tags = super::resources::tags_of(&body, json!({}))?;
    let internal = next_internal(existing.as_ref(), &props);
    let body = registry_body(&id, &record_name, &location, sku, tags, &props, &internal);
    let record = ResourceRecord {
        id,
        resource_type: types::REGISTRY.into(),
        name: record_name.clone(),
        resource_group: Some(rg.name.clone()),
        key,
        body: body.clone(),
        created_at,
        updated_at: now,
    };
    let status = if existing.is_some() {
        state.meta.resource_put(&record).await.map_err(|e| storage_error("storing a registry", e))?;
        StatusCode::OK
    } else {
        match state.meta.resource_insert_unique_name(&record).await {
            Ok(()) => StatusCode::CREATED,
            Err(StorageError::Conflict(_)) => {
                return Err(ArmError::new(
                    409,
                    "AlreadyInUse",
                    format!(
                        "The registry DNS name {} is already in use. Registry names are unique in a Wharf deployment; choose another name.",
                        state.login_server(name)
                    ),
                ));
            }
            Err(e) => return Err(storage_error("storing a registry", e)),
        }
    };
    state.registries.invalidate(&record_name);
    Ok(json_response(status, &stored::public_body(&body)))
}

pub async fn patch(ctx: &ArmCtx, group: &str, name: &str) -> Result<Response, ArmError> {
    let state = &ctx.state;
    let current = require(state, group, name).await?;
    let body = ctx.json()?;
    let sku = sku_of(&body)?.unwrap_or(current.sku);
    let props = current.properties.apply(body.get("properties").unwrap_or(&Value::Null))?;
    props.validate(sku)?;
    check_vnet_rules(state, &props).await?;
    let tags = super::resources::tags_of(&body, current.record.body["tags"].clone())?;
    let location = current.record.body["location"].as_str().unwrap_or("local").to_string();
    let internal = next_internal(Some(&current), &props);
    let mut record = current.record.clone();
    record.body = registry_body(&record.id, &record.name, &location, sku, tags, &props, &internal);
    record.updated_at = chrono::Utc::now();
    state.meta.resource_put(&record).await.map_err(|e| storage_error("storing a registry", e))?;
    state.registries.invalidate(&record.name);
    Ok(json_response(StatusCode::OK, &stored::public_body(&record.body)))
}

pub async fn delete(ctx: &ArmCtx, group: &str, name: &str) -> Result<Response, ArmError> {
    let state = &ctx.state;
    groups::require(state, group).await?;
    let deleted = state
        .delete_tree(&registry_id(state, group, name))
        .await
        .map_err(|e| storage_error("deleting a registry", e))?;
    if deleted.is_empty() {
        return Ok(json_response(StatusCode::NO_CONTENT, &Value::Null));
    }
    super::resources::after_delete(state, &deleted).await?;
    Ok(json_response(StatusCode::OK, &Value::Null))
}

/// Removes a deleted registry's content: its metadata, its runs (stopped if executing, their
/// logs removed) and its upload sessions (records and bytes) at once, its blob bytes through the garbage collector (blobs still linked from other
/// registries stay).
pub async fn purge(state: &AppState, record: &ResourceRecord) -> Result<(), ArmError> {
    state.registries.invalidate(&record.name);
    let uploads = state
        .meta
        .registry_purge(&RegistryKey(record.key.clone()))
        .await
        .map_err(|e| storage_error("deleting a registry's content", e))?;
    crate::uploads_sweep::discard(state, &uploads).await;
    // Its runs' records went with its content; runs still executing stop, and the logs go.
    state.run_queue.cancel_registry(&record.key);
    let logs = state.run_queue.registry_logs(&record.key);
    if let Err(e) = tokio::fs::remove_dir_all(&logs).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(error = %e, path = %logs.display(), "removing a deleted registry's run logs failed");
    }
    let sources = crate::sources::registry_dir(state, &record.key);
    if let Err(e) = tokio::fs::remove_dir_all(&sources).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(error = %e, path = %sources.display(), "removing a deleted registry's build sources failed");
    }
    if let Err(e) = crate::gc::collect(state).await {
        tracing::warn!(error = %e, "garbage collection after registry deletion failed; the next periodic run retries");
    }
    Ok(())
}

/// The registry as the data plane and the explanation endpoints see it.
async fn info(state: &AppState, group: &str, name: &str) -> Result<RegistryInfo, ArmError> {
    let registry = require(state, group, name).await?;
    let network = crate::network::policy(&*state.meta, &registry.record.name, &registry.properties).await;
    RegistryInfo::new(&registry, network).map_err(|e| storage_error("reading a registry", e))
}

/// A registry's actions.
pub async fn action(ctx: &ArmCtx, group: &str, name: &str, action: RegistryAction) -> Result<Response, ArmError> {
    let info = info(&ctx.state, group, name).await?;
    match action {
        RegistryAction::ListCredentials => credentials(ctx, &info).await,
        RegistryAction::CheckAccess => super::explain::access::check_access(ctx, &info).await,
        RegistryAction::RoleAssignmentModeImpact => super::explain::mode_impact(ctx, &info).await,
        RegistryAction::NetworkRuleImpact => super::explain::impact::network_impact(ctx, &info).await,
        RegistryAction::RegenerateCredential => {
            let body = ctx.json()?;
            let which = body["name"].as_str().unwrap_or("");
            if !crate::admin_user::PASSWORD_NAMES.contains(&which) {
                return Err(ArmError::invalid_request("'name' must be 'password' or 'password2'."));
            }
            crate::admin_user::regenerate(&*ctx.state.meta, &info.key.0, which)
                .await
                .map_err(|e| storage_error("regenerating a credential", e))?;
            ctx.state.identity.clear_cache();
            credentials(ctx, &info).await
        }
        RegistryAction::ListUsages => usages(ctx, &info).await,
        RegistryAction::ImportImage => import(ctx, group, name, info).await,
    }
}

/// `importImage`: the body is checked, the import starts in the background, and the answer is
/// ARM's asynchronous 202 with the status URL in `Location` (polled each `Retry-After` second).
async fn import(ctx: &ArmCtx, group: &str, name: &str, info: RegistryInfo) -> Result<Response, ArmError> {
    let request = crate::import::ImportRequest::parse(&ctx.body).map_err(import_error)?;
    let importer =
        crate::import::Importer { object_id: ctx.caller.object_id().to_string(), display: ctx.caller.display() };
    let operation = crate::import::start(ctx.state.clone(), importer, std::sync::Arc::new(info), request);
    let location = format!(
        "{}{}/{}/{operation}?api-version={}",
        ctx.state.base_url(&ctx.headers),
        registry_id(&ctx.state, group, name),
        super::endpoint::IMPORT_OPERATIONS,
        ctx.query.get("api-version").unwrap_or("2026-09-01-preview"),
    );
    Ok(accepted(&location, &json!({"status": "InProgress"})))
}

/// A 202 naming where to poll, and when.
fn accepted(location: &str, body: &Value) -> Response {
    let mut resp = json_response(StatusCode::ACCEPTED, body);
    if let Ok(v) = http::HeaderValue::from_str(location) {
        resp.headers_mut().insert(http::header::LOCATION, v);
    }
    resp.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("1"));
    resp
}

/// An import's error in ARM's shape: a refused request is a 400; a failed import too (az
/// reads the body of a failed poll as the error).
fn import_error(e: crate::import::ImportError) -> ArmError {
    let message = match &e {
        crate::import::ImportError::InvalidParameters(m) => m.clone(),
        other => format!("Import failed: {other}"),
    };
    ArmError::new(400, e.code(), message)
}

/// The status of an import: 202 while it runs, 200 once it succeeded, its error when it failed.
pub async fn import_status(ctx: &ArmCtx, group: &str, name: &str, operation: &str) -> Result<Response, ArmError> {
    use crate::import_operations::OperationStatus;
    let registry = require(&ctx.state, group, name).await?;
    let not_found = || {
        ArmError::new(
            404,
            "OperationNotFound",
            format!(
                "No import operation '{operation}' of registry '{name}' is known (finished operations are kept for an hour)."
            ),
        )
    };
    match ctx.state.imports.status(&registry.record.id, operation).ok_or_else(not_found)? {
        OperationStatus::Running(p) => {
            let body = json!({"status": "InProgress", "progress": {"manifests": p.manifests, "bytes": p.bytes}});
            let mut resp = json_response(StatusCode::ACCEPTED, &body);
            resp.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("1"));
            Ok(resp)
        }
        OperationStatus::Succeeded => Ok(json_response(StatusCode::OK, &json!({"status": "Succeeded"}))),
        OperationStatus::Failed { code, message } => Err(ArmError::new(400, &code, message)),
    }
}

/// An ACR feature Wharf does not serve yet. A collection of it is empty, truthfully: listing
/// replications or tasks (`az acr show-endpoints`, `az acr task list`) works; anything else is
/// refused with the reason.
pub async fn feature(
    ctx: &ArmCtx,
    group: &str,
    name: &str,
    method: &Method,
    rest: &[String],
) -> Result<Response, ArmError> {
    let registry = require(&ctx.state, group, name).await?;
    let first = rest.first().map(String::as_str).unwrap_or("");
    match (method, rest) {
        (&Method::GET, [collection]) if super::not_yet_served(collection).is_some() => {
            Ok(json_response(StatusCode::OK, &json!({"value": []})))
        }
        _ => match super::not_yet_served(first) {
            Some(e) => Err(e),
            None => Err(ArmError::not_found_path(&format!("{}/{}", registry.record.id, rest.join("/")))),
        },
    }
}

/// `listUsages` (`az acr show-usage`): what the registry holds and the limits Wharf applies,
/// in ACR's shape. A limit of -1 means none (Wharf has no storage quota); 0 marks features not
/// available yet.
async fn usages(ctx: &ArmCtx, info: &RegistryInfo) -> Result<Response, ArmError> {
    let bytes = ctx.state.meta.registry_size(&info.key).await.map_err(|e| storage_error("measuring a registry", e))?;
    let rules = &info.properties.network_rule_set;
    let count = |name: &str, current: usize, limit: i64| json!({"name": name, "limit": limit, "currentValue": current, "unit": "Count"});
    let value = vec![
        json!({"name": "Size", "limit": -1, "currentValue": bytes, "unit": "Bytes"}),
        count("Webhooks", 0, 0),
        count("Geo-replications", 0, 0),
        count("IPRules", rules.ip_rules.len(), wharf_netrules::MAX_IP_RULES as i64),
        count("VNetRules", rules.virtual_network_rules.len(), wharf_netrules::MAX_VNET_RULES as i64),
        count("PrivateEndpointConnections", info.properties.private_endpoint_connections.len(), -1),
        count("ScopeMaps", 0, 0),
        count("Tokens", 0, 0),
    ];
    Ok(json_response(StatusCode::OK, &json!({"value": value})))
}

/// `checkNameAvailability`: whether `name` could name a new registry (well formed, and not
/// used by any registry of the deployment, whatever its resource group).
pub async fn check_name(ctx: &ArmCtx) -> Result<Response, ArmError> {
    let body = ctx.json()?;
    let name = body["name"].as_str().ok_or_else(|| ArmError::invalid_request("The 'name' property is required."))?;
    if let Some(t) = body["type"].as_str().filter(|t| !t.eq_ignore_ascii_case(types::REGISTRY)) {
        return Err(ArmError::invalid_request(format!(
            "The 'type' property must be '{}', not '{t}'.",
            types::REGISTRY
        )));
    }
    let answer = if let Err(e) = validate_registry_name(name) {
        json!({"nameAvailable": false, "reason": "Invalid", "message": e.message})
    } else if stored::by_name(&*ctx.state.meta, name)
        .await
        .map_err(|e| storage_error("reading registries", e))?
        .is_some()
    {
        json!({"nameAvailable": false, "reason": "AlreadyExists", "message": format!("The registry {name} is already in use.")})
    } else {
        json!({"nameAvailable": true})
    };
    Ok(json_response(StatusCode::OK, &answer))
}

/// `listCredentials`: the admin user's name and passwords (only while the admin user is enabled).
async fn credentials(ctx: &ArmCtx, info: &RegistryInfo) -> Result<Response, ArmError> {
    if !info.properties.admin_user_enabled {
        return Err(ArmError::bad_request(
            "AdminUserDisabled",
            format!(
                "Admin user is disabled for registry '{}'. Enable it with 'wharf acr update -n {} --admin-enabled true'.",
                info.name, info.name
            ),
        ));
    }
    let pw = crate::admin_user::passwords(&*ctx.state.meta, &ctx.state.secret_key, &info.key.0)
        .await
        .map_err(|e| storage_error("reading credentials", e))?;
    let body = json!({
        "username": info.name,
        "passwords": pw.iter().map(|(n, v)| json!({"name": n, "value": v})).collect::<Vec<_>>(),
    });
    Ok(json_response(StatusCode::OK, &body))
}

/// Every virtual-network rule must name an existing subnet with the
/// `Microsoft.ContainerRegistry` service endpoint, as Azure requires.
pub(crate) async fn check_vnet_rules(state: &AppState, props: &RegistryProperties) -> Result<(), ArmError> {
    use wharf_arm::network::REGISTRY_SERVICE_ENDPOINT;
    for rule in &props.network_rule_set.virtual_network_rules {
        match crate::model::network::subnet(&*state.meta, &rule.id)
            .await
            .map_err(|e| storage_error("reading a subnet", e))?
        {
            None => {
                return Err(ArmError::bad_request(
                    "InvalidResourceReference",
                    format!("Subnet {} does not exist.", rule.id),
                ));
            }
            Some(subnet) if !subnet.has_registry_service_endpoint() => {
                return Err(ArmError::bad_request(
                    "SubnetMissingServiceEndpoint",
                    format!(
                        "Subnet {} has no '{REGISTRY_SERVICE_ENDPOINT}' service endpoint. Add it with 'wharf network vnet subnet update --service-endpoints {REGISTRY_SERVICE_ENDPOINT}'.",
                        rule.id
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}
