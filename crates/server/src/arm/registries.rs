//! `Microsoft.ContainerRegistry/registries`: create, read, update, delete and list.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use wharf_arm::registry::{RegistryProperties, Sku};
use wharf_arm::{ArmError, ResourceId, types, validate_registry_name};
use wharf_storage::{RegistryKey, ResourceFilter, ResourceRecord, StorageError};

use super::{ArmCtx, groups, json_response, storage_error};
use crate::state::AppState;

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
    let value: Vec<Value> = all
        .into_iter()
        .filter(|r| ctx.allowed("Microsoft.ContainerRegistry/registries/read", &r.id))
        .map(|r| r.body)
        .collect();
    Ok(json_response(StatusCode::OK, &json!({"value": value})))
}

pub async fn handle(ctx: &ArmCtx, group: &str, name: &str) -> Result<Response, ArmError> {
    match ctx.method {
        Method::GET => Ok(json_response(StatusCode::OK, &require(&ctx.state, group, name).await?.body)),
        Method::PUT => put(ctx, group, name).await,
        Method::PATCH => patch(ctx, group, name).await,
        Method::DELETE => delete(ctx, group, name).await,
        ref m => Err(ArmError::method_not_allowed(m.as_str())),
    }
}

pub async fn require(state: &AppState, group: &str, name: &str) -> Result<ResourceRecord, ArmError> {
    groups::require(state, group).await?;
    state
        .meta
        .resource_get(&registry_id(state, group, name))
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

fn tags_of(body: &Value, default: Value) -> Result<Value, ArmError> {
    match body.get("tags") {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Object(m)) if m.values().all(Value::is_string) => Ok(Value::Object(m.clone())),
        Some(_) => Err(ArmError::invalid_request("'tags' must be an object of string values.")),
    }
}

/// The ARM JSON of a registry.
fn registry_body(
    id: &str,
    name: &str,
    location: &str,
    sku: Sku,
    tags: Value,
    props: &RegistryProperties,
    created: &str,
) -> Value {
    json!({
        "id": id,
        "name": name,
        "type": types::REGISTRY,
        "location": location,
        "tags": tags,
        "sku": {"name": sku.as_str(), "tier": sku.as_str()},
        "systemData": {"createdAt": created, "createdByType": "User", "lastModifiedAt": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true), "lastModifiedByType": "User"},
        "properties": props,
    })
}

async fn put(ctx: &ArmCtx, group: &str, name: &str) -> Result<Response, ArmError> {
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
    let id = registry_id(state, &rg.name, name);
    let existing = state.meta.resource_get(&id).await.map_err(|e| storage_error("reading a registry", e))?;
    let now = chrono::Utc::now();
    let (record_name, key, created_at) = match &existing {
        Some(r) => (r.name.clone(), r.key.clone(), r.created_at),
        None => (name.to_string(), uuid::Uuid::new_v4().to_string(), now),
    };
    // PUT replaces the writable properties; the login server and creation date stay.
    let mut base = RegistryProperties::defaults(&state.login_server(&record_name), created_at);
    if let Some(old) =
        existing.as_ref().and_then(|r| serde_json::from_value::<RegistryProperties>(r.body["properties"].clone()).ok())
    {
        base.creation_date = old.creation_date;
        base.private_endpoint_connections = old.private_endpoint_connections;
    }
    let props = base.apply(body.get("properties").unwrap_or(&Value::Null))?;
    props.validate(sku)?;
    check_vnet_rules(state, &props).await?;
    let id = registry_id(state, &rg.name, &record_name);
    let body =
        registry_body(&id, &record_name, &location, sku, tags_of(&body, json!({}))?, &props, &props.creation_date);
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
    Ok(json_response(status, &body))
}

async fn patch(ctx: &ArmCtx, group: &str, name: &str) -> Result<Response, ArmError> {
    let state = &ctx.state;
    let mut record = require(state, group, name).await?;
    let body = ctx.json()?;
    let current: RegistryProperties = serde_json::from_value(record.body["properties"].clone())
        .map_err(|e| storage_error("reading a registry", StorageError::Corrupt(e.to_string())))?;
    let current_sku = Sku::parse(record.body["sku"]["name"].as_str().unwrap_or("Basic"))?;
    let sku = sku_of(&body)?.unwrap_or(current_sku);
    let props = current.apply(body.get("properties").unwrap_or(&Value::Null))?;
    props.validate(sku)?;
    check_vnet_rules(state, &props).await?;
    let tags = tags_of(&body, record.body["tags"].clone())?;
    let location = record.body["location"].as_str().unwrap_or("local").to_string();
    record.body = registry_body(&record.id, &record.name, &location, sku, tags, &props, &props.creation_date);
    record.updated_at = chrono::Utc::now();
    state.meta.resource_put(&record).await.map_err(|e| storage_error("storing a registry", e))?;
    state.registries.invalidate(&record.name);
    Ok(json_response(StatusCode::OK, &record.body))
}

async fn delete(ctx: &ArmCtx, group: &str, name: &str) -> Result<Response, ArmError> {
    let state = &ctx.state;
    groups::require(state, group).await?;
    let id = registry_id(state, group, name);
    let deleted = state.meta.resource_delete_tree(&id).await.map_err(|e| storage_error("deleting a registry", e))?;
    if deleted.is_empty() {
        return Ok(json_response(StatusCode::NO_CONTENT, &Value::Null));
    }
    for r in &deleted {
        if r.resource_type.eq_ignore_ascii_case(types::REGISTRY) {
            purge(state, r).await?;
        }
    }
    Ok(json_response(StatusCode::OK, &Value::Null))
}

/// Removes a deleted registry's content: its metadata and its upload sessions (records and
/// bytes) at once, its blob bytes through the garbage collector (blobs still linked from other
/// registries stay).
pub async fn purge(state: &AppState, record: &ResourceRecord) -> Result<(), ArmError> {
    state.registries.invalidate(&record.name);
    let uploads = state
        .meta
        .registry_purge(&RegistryKey(record.key.clone()))
        .await
        .map_err(|e| storage_error("deleting a registry's content", e))?;
    crate::uploads_sweep::discard(state, &uploads).await;
    if let Err(e) = crate::gc::collect(state).await {
        tracing::warn!(error = %e, "garbage collection after registry deletion failed; the next periodic run retries");
    }
    Ok(())
}

/// Actions and child resources of a registry.
pub async fn child(ctx: &ArmCtx, group: &str, name: &str, rest: &[String]) -> Result<Response, ArmError> {
    let record = require(&ctx.state, group, name).await?;
    let info = crate::state::RegistryInfo::from_record(&record).map_err(|e| storage_error("reading a registry", e))?;
    let parts: Vec<&str> = rest.iter().map(String::as_str).collect();
    match (&ctx.method, parts.as_slice()) {
        (&Method::POST, [action]) if action.eq_ignore_ascii_case("listCredentials") => credentials(ctx, &info).await,
        (&Method::POST, [action]) if action.eq_ignore_ascii_case("checkAccess") => {
            super::authorization::check_access(ctx, &info).await
        }
        (&Method::POST, [action]) if action.eq_ignore_ascii_case("roleAssignmentModeImpact") => {
            super::authorization::mode_impact(ctx, &info).await
        }
        (&Method::POST, [action]) if action.eq_ignore_ascii_case("networkRuleImpact") => {
            super::authorization::network_impact(ctx, &info).await
        }
        (&Method::POST, [action]) if action.eq_ignore_ascii_case("regenerateCredential") => {
            let body = ctx.json()?;
            let which = body["name"].as_str().unwrap_or("");
            if which != "password" && which != "password2" {
                return Err(ArmError::invalid_request("'name' must be 'password' or 'password2'."));
            }
            crate::auth::registry::regenerate_admin_password(&ctx.state, &info.key.0, which)
                .await
                .map_err(|e| storage_error("regenerating a credential", e))?;
            credentials(ctx, &info).await
        }
        (&Method::GET, [action]) if action.eq_ignore_ascii_case("listUsages") => usages(ctx, &info).await,
        // A collection of a feature Wharf does not have yet is empty, truthfully: listing
        // replications or tasks (`az acr show-endpoints`, `az acr task list`) works; creating
        // one is refused below.
        (&Method::GET, [collection])
            if super::not_yet_served(collection).is_some() && !collection.eq_ignore_ascii_case("importImage") =>
        {
            Ok(json_response(StatusCode::OK, &json!({"value": []})))
        }
        _ => match super::not_yet_served(parts.first().copied().unwrap_or("")) {
            Some(e) => Err(e),
            None => Err(ArmError::not_found_path(&format!("{}/{}", record.id, rest.join("/")))),
        },
    }
}

/// `listUsages` (`az acr show-usage`): what the registry holds and the limits Wharf applies,
/// in ACR's shape. A limit of -1 means none (Wharf has no storage quota); 0 marks features not
/// available yet.
async fn usages(ctx: &ArmCtx, info: &crate::state::RegistryInfo) -> Result<Response, ArmError> {
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
    } else if ctx
        .state
        .meta
        .resource_find_by_name(types::REGISTRY, name)
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
async fn credentials(ctx: &ArmCtx, info: &crate::state::RegistryInfo) -> Result<Response, ArmError> {
    if !info.properties.admin_user_enabled {
        return Err(ArmError::bad_request(
            "AdminUserDisabled",
            format!(
                "Admin user is disabled for registry '{}'. Enable it with 'wharf acr update -n {} --admin-enabled true'.",
                info.name, info.name
            ),
        ));
    }
    let pw = crate::auth::registry::admin_passwords(&ctx.state, &info.key.0)
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
    for rule in &props.network_rule_set.virtual_network_rules {
        match super::network::find_subnet(state, &rule.id).await.map_err(|e| storage_error("reading a subnet", e))? {
            None => {
                return Err(ArmError::bad_request(
                    "InvalidResourceReference",
                    format!("Subnet {} does not exist.", rule.id),
                ));
            }
            Some((_, endpoints))
                if !endpoints.iter().any(|e| e.eq_ignore_ascii_case(super::network::REGISTRY_SERVICE_ENDPOINT)) =>
            {
                return Err(ArmError::bad_request(
                    "SubnetMissingServiceEndpoint",
                    format!(
                        "Subnet {} has no '{}' service endpoint. Add it with 'wharf network vnet subnet update --service-endpoints {}'.",
                        rule.id,
                        super::network::REGISTRY_SERVICE_ENDPOINT,
                        super::network::REGISTRY_SERVICE_ENDPOINT
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}
