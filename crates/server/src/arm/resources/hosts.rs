//! Hosting resources: `Microsoft.ContainerInstance/containerGroups`,
//! `Microsoft.MachineLearningServices/workspaces` and `Microsoft.Web/sites`, registered so that
//! their workloads can carry managed identities.
//!
//! A hosting resource has at most one system-assigned identity (created with it or by a later
//! `identity.type` change, deleted with it, its tokens revoked then) and any number of attached
//! user-assigned identities. `POST {id}/workloadEnvironment` hands out the App-Service-style
//! `IDENTITY_ENDPOINT` and a fresh `IDENTITY_HEADER` secret; every call rotates the secret
//! (the previous one stops working at once). Only a keyed fingerprint of the secret is stored,
//! in the record and in the settings index `msi.header.{fingerprint}` → resource id, which the
//! managed-identity endpoint uses to find the resource from the header value.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use wharf_arm::{ArmError, ResourceId};
use wharf_identity::ManagedIdentityKind;
use wharf_storage::{ResourceFilter, ResourceRecord, StorageError};

use super::{ManagedIdentityObject, location_of, tags_of, validate_name};
use crate::arm::{ArmCtx, json_response, storage_error};
use crate::state::AppState;

/// Key of Wharf's private data inside a stored body; never returned.
const INTERNAL: &str = "_wharf";
/// Settings key prefix of the identity-header index.
pub const HEADER_INDEX_PREFIX: &str = "msi.header.";
/// The Wharf-specific action that returns a workload's managed-identity environment.
pub const WORKLOAD_ENVIRONMENT_ACTION: &str = "workloadEnvironment";

/// The hosting resource's own identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemIdentity {
    pub principal_id: String,
    pub client_id: String,
}

/// What Wharf keeps about a hosting resource besides its ARM body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostInternal {
    #[serde(default)]
    pub system_identity: Option<SystemIdentity>,
    /// Keyed fingerprint (`wharf_identity::fingerprint`) of the current `IDENTITY_HEADER`.
    #[serde(default)]
    pub identity_header_fingerprint: Option<String>,
}

/// A stored hosting resource.
#[derive(Debug, Clone)]
pub struct Host {
    pub record: ResourceRecord,
    pub internal: HostInternal,
}

impl Host {
    pub fn from_record(record: ResourceRecord) -> Result<Host, StorageError> {
        let internal = match record.body.get(INTERNAL) {
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|e| StorageError::Corrupt(format!("hosting resource {}: {e}", record.id)))?,
            None => HostInternal::default(),
        };
        Ok(Host { record, internal })
    }

    /// The ARM body as clients see it.
    pub fn public_body(&self) -> Value {
        let mut b = self.record.body.clone();
        if let Value::Object(m) = &mut b {
            m.remove(INTERNAL);
        }
        b
    }

    /// Resource ids of the attached user-assigned identities, as stored.
    pub fn user_assigned_ids(&self) -> Vec<String> {
        self.record.body["identity"]["userAssignedIdentities"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    pub fn system_object(&self) -> Option<ManagedIdentityObject> {
        self.internal.system_identity.as_ref().map(|s| ManagedIdentityObject {
            object_id: s.principal_id.clone(),
            client_id: s.client_id.clone(),
            kind: ManagedIdentityKind::SystemAssigned,
            resource_id: self.record.id.clone(),
            display_name: self.record.name.clone(),
        })
    }

    fn store_internal(&mut self) {
        self.record.body[INTERNAL] = serde_json::to_value(&self.internal).expect("internal serializes");
    }
}

pub fn host_id(state: &AppState, group: &str, resource_type: &str, name: &str) -> String {
    let (namespace, type_name) = resource_type.split_once('/').expect("resource types have a namespace");
    ResourceId::resource(&state.subscription_id, group, namespace, type_name, name).to_string()
}

/// Loads a hosting resource by id (any case), or `None`.
pub async fn get(state: &AppState, id: &str) -> Result<Option<Host>, ArmError> {
    let r = state.meta.resource_get(id).await.map_err(|e| storage_error("reading a resource", e))?;
    match r {
        Some(r) if super::HOST_TYPES.iter().any(|t| t.eq_ignore_ascii_case(&r.resource_type)) => {
            Host::from_record(r).map(Some).map_err(|e| storage_error("reading a resource", e))
        }
        _ => Ok(None),
    }
}

pub async fn handle(
    ctx: &ArmCtx,
    rg: &ResourceRecord,
    resource_type: &'static str,
    name: Option<&str>,
    tail: &[&str],
) -> Result<Response, ArmError> {
    let Some(name) = name else {
        return match ctx.method {
            Method::GET => list(ctx, &rg.name, resource_type).await,
            ref m => Err(ArmError::method_not_allowed(m.as_str())),
        };
    };
    let id = host_id(&ctx.state, &rg.name, resource_type, name);
    let not_found = || ArmError::resource_not_found(resource_type, name, &rg.name);
    match (&ctx.method, tail) {
        (&Method::GET, []) => {
            Ok(json_response(StatusCode::OK, &get(&ctx.state, &id).await?.ok_or_else(not_found)?.public_body()))
        }
        (&Method::PUT, []) => put(ctx, rg, resource_type, name).await,
        (&Method::PATCH, []) => patch(ctx, &id).await.and_then(|r| r.ok_or_else(not_found)),
        (&Method::DELETE, []) => delete(ctx, &id).await,
        (&Method::POST, [action]) if action.eq_ignore_ascii_case(WORKLOAD_ENVIRONMENT_ACTION) => {
            let host = get(&ctx.state, &id).await?.ok_or_else(not_found)?;
            workload_environment(ctx, host).await
        }
        (m, []) => Err(ArmError::method_not_allowed(m.as_str())),
        _ => Err(ArmError::not_found_path(&format!("{id}/{}", tail.join("/")))),
    }
}

async fn list(ctx: &ArmCtx, group: &str, resource_type: &str) -> Result<Response, ArmError> {
    let filter = ResourceFilter { resource_type: Some(resource_type.into()), resource_group: Some(group.to_string()) };
    let all = ctx.state.meta.resource_list(&filter).await.map_err(|e| storage_error("listing resources", e))?;
    let mut value = vec![];
    for r in all {
        value.push(Host::from_record(r).map_err(|e| storage_error("listing resources", e))?.public_body());
    }
    Ok(json_response(StatusCode::OK, &json!({"value": value})))
}

// ---- identities ----

/// The `identity` object of a request.
#[derive(Debug, Clone, PartialEq)]
struct IdentityRequest {
    system: bool,
    user: bool,
    /// `userAssignedIdentities` entries: resource id and whether it is added (`{}`) or removed (`null`).
    entries: Vec<(String, bool)>,
}

fn parse_identity(v: &Value) -> Result<Option<IdentityRequest>, ArmError> {
    let bad = |m: &str| ArmError::bad_request("InvalidIdentityType", m.to_string());
    match v {
        Value::Null => return Ok(None),
        Value::Object(_) => {}
        _ => return Err(ArmError::invalid_request("'identity' must be an object.")),
    }
    let t = v["type"].as_str().ok_or_else(|| {
        bad("'identity.type' is required: SystemAssigned, UserAssigned, 'SystemAssigned, UserAssigned' or None.")
    })?;
    let (mut system, mut user, mut none) = (false, false, false);
    for part in t.split(',').map(str::trim) {
        match part.to_ascii_lowercase().as_str() {
            "systemassigned" => system = true,
            "userassigned" => user = true,
            "none" => none = true,
            _ => {
                return Err(bad(&format!(
                    "The identity type '{t}' is invalid. Use SystemAssigned, UserAssigned, 'SystemAssigned, UserAssigned' or None."
                )));
            }
        }
    }
    if none && (system || user) {
        return Err(bad(&format!("The identity type '{t}' is invalid: None cannot be combined with other types.")));
    }
    let mut entries = vec![];
    match &v["userAssignedIdentities"] {
        Value::Null => {}
        Value::Object(m) => {
            for (id, val) in m {
                match val {
                    Value::Null => entries.push((id.clone(), false)),
                    Value::Object(_) => entries.push((id.clone(), true)),
                    _ => {
                        return Err(ArmError::invalid_request(
                            "'identity.userAssignedIdentities' values must be {} (attach) or null (detach).",
                        ));
                    }
                }
            }
        }
        _ => {
            return Err(ArmError::invalid_request(
                "'identity.userAssignedIdentities' must be an object keyed by identity resource ids.",
            ));
        }
    }
    if !user && entries.iter().any(|(_, add)| *add) {
        return Err(bad(
            "'identity.userAssignedIdentities' is only allowed when the identity type includes UserAssigned.",
        ));
    }
    Ok(Some(IdentityRequest { system, user, entries }))
}

/// Applies an identity request to the current identities. `replace` (PUT) starts the
/// user-assigned set from empty; PATCH merges into it. Returns the principal ids whose
/// identities were dropped (their tokens are revoked by the caller).
async fn apply_identity(
    state: &AppState,
    host: &mut Host,
    req: Option<IdentityRequest>,
    replace: bool,
) -> Result<Vec<String>, ArmError> {
    let current_user: Map<String, Value> = if replace {
        Map::new()
    } else {
        host.record.body["identity"]["userAssignedIdentities"].as_object().cloned().unwrap_or_default()
    };
    let req = match req {
        Some(r) => r,
        None if replace => IdentityRequest { system: false, user: false, entries: vec![] },
        None => return Ok(vec![]),
    };
    let mut dropped = vec![];
    let system = if req.system {
        Some(host.internal.system_identity.clone().unwrap_or_else(|| SystemIdentity {
            principal_id: uuid::Uuid::new_v4().to_string(),
            client_id: uuid::Uuid::new_v4().to_string(),
        }))
    } else {
        if let Some(s) = &host.internal.system_identity {
            dropped.push(s.principal_id.clone());
        }
        None
    };
    let mut user = if req.user { current_user } else { Map::new() };
    if req.user {
        for (id, add) in &req.entries {
            let existing_key = user.keys().find(|k| k.eq_ignore_ascii_case(id)).cloned();
            if *add {
                let Some(record) = super::identities::get(state, id).await? else {
                    return Err(ArmError::bad_request(
                        "InvalidUserAssignedIdentity",
                        format!(
                            "The user-assigned identity '{id}' was not found. Create it with 'wharf identity create' and pass its full resource id."
                        ),
                    ));
                };
                let mi = super::identities::object_of(&record).ok_or_else(|| {
                    storage_error("reading a managed identity", StorageError::Corrupt(record.id.clone()))
                })?;
                if let Some(k) = existing_key {
                    user.remove(&k);
                }
                user.insert(record.id.clone(), json!({"principalId": mi.object_id, "clientId": mi.client_id}));
            } else if let Some(k) = existing_key {
                user.remove(&k);
            }
        }
        if user.is_empty() {
            return Err(ArmError::bad_request(
                "InvalidIdentityType",
                "The identity type includes UserAssigned but no user-assigned identity is attached: list them in 'identity.userAssignedIdentities'.",
            ));
        }
    }
    host.internal.system_identity = system;
    host.store_internal();
    host.record.body["identity"] = identity_json(&state.tenant_id, host.internal.system_identity.as_ref(), &user);
    Ok(dropped)
}

fn identity_json(tenant: &str, system: Option<&SystemIdentity>, user: &Map<String, Value>) -> Value {
    let t = match (system.is_some(), !user.is_empty()) {
        (true, true) => "SystemAssigned, UserAssigned",
        (true, false) => "SystemAssigned",
        (false, true) => "UserAssigned",
        (false, false) => "None",
    };
    let mut v = json!({"type": t});
    if let Some(s) = system {
        v["principalId"] = json!(s.principal_id);
        v["tenantId"] = json!(tenant);
    }
    if !user.is_empty() {
        v["userAssignedIdentities"] = Value::Object(user.clone());
    }
    v
}

async fn revoke(state: &AppState, principals: &[String]) -> Result<(), ArmError> {
    for p in principals {
        state.identity.revoke_before_now(&*state.meta, p).await.map_err(|e| {
            tracing::error!(error = %e, "revoking a removed identity's tokens failed");
            ArmError::internal("Internal error while revoking a removed identity's tokens.")
        })?;
    }
    Ok(())
}

// ---- create, update, delete ----

fn properties_of(body: &Value, default: Value) -> Result<Value, ArmError> {
    let mut p = match body.get("properties") {
        None | Some(Value::Null) => default,
        Some(Value::Object(m)) => Value::Object(m.clone()),
        Some(_) => return Err(ArmError::invalid_request("'properties' must be an object.")),
    };
    p["provisioningState"] = json!("Succeeded");
    Ok(p)
}

async fn put(ctx: &ArmCtx, rg: &ResourceRecord, resource_type: &'static str, name: &str) -> Result<Response, ArmError> {
    validate_name(name, resource_type)?;
    let state = &ctx.state;
    let body = ctx.json()?;
    let identity = parse_identity(body.get("identity").unwrap_or(&Value::Null))?;
    let id = host_id(state, &rg.name, resource_type, name);
    let existing = get(state, &id).await?;
    let now = chrono::Utc::now();
    let created = existing.is_none();
    let mut host = match existing {
        Some(h) => h,
        None => Host {
            record: ResourceRecord {
                id: id.clone(),
                resource_type: resource_type.to_string(),
                name: name.to_string(),
                resource_group: Some(rg.name.clone()),
                key: uuid::Uuid::new_v4().to_string(),
                body: json!({}),
                created_at: now,
                updated_at: now,
            },
            internal: HostInternal::default(),
        },
    };
    let previous_identity = host.record.body.get("identity").cloned();
    host.record.body = json!({
        "id": host_id(state, &rg.name, resource_type, &host.record.name),
        "name": host.record.name,
        "type": resource_type,
        "location": location_of(&body, rg),
        "tags": tags_of(&body, json!({}))?,
        "identity": previous_identity.unwrap_or(Value::Null),
        "properties": properties_of(&body, json!({}))?,
    });
    host.store_internal();
    let dropped = apply_identity(state, &mut host, identity, true).await?;
    host.record.updated_at = now;
    state.meta.resource_put(&host.record).await.map_err(|e| storage_error("storing a resource", e))?;
    revoke(state, &dropped).await?;
    Ok(json_response(if created { StatusCode::CREATED } else { StatusCode::OK }, &host.public_body()))
}

async fn patch(ctx: &ArmCtx, id: &str) -> Result<Option<Response>, ArmError> {
    let state = &ctx.state;
    let Some(mut host) = get(state, id).await? else {
        return Ok(None);
    };
    let body = ctx.json()?;
    let identity = parse_identity(body.get("identity").unwrap_or(&Value::Null))?;
    host.record.body["tags"] = tags_of(&body, host.record.body["tags"].clone())?;
    if let Some(Value::Object(p)) = body.get("properties") {
        for (k, v) in p {
            host.record.body["properties"][k] = v.clone();
        }
        host.record.body["properties"]["provisioningState"] = json!("Succeeded");
    }
    let dropped = apply_identity(state, &mut host, identity, false).await?;
    host.record.updated_at = chrono::Utc::now();
    state.meta.resource_put(&host.record).await.map_err(|e| storage_error("storing a resource", e))?;
    revoke(state, &dropped).await?;
    Ok(Some(json_response(StatusCode::OK, &host.public_body())))
}

async fn delete(ctx: &ArmCtx, id: &str) -> Result<Response, ArmError> {
    let state = &ctx.state;
    let Some(host) = get(state, id).await? else {
        return Ok(json_response(StatusCode::NO_CONTENT, &Value::Null));
    };
    state.meta.resource_delete_tree(&host.record.id).await.map_err(|e| storage_error("deleting a resource", e))?;
    forget(state, &host).await?;
    Ok(json_response(StatusCode::OK, &Value::Null))
}

/// After a hosting resource's deletion: its identity header stops working and its
/// system-assigned identity dies with it (its tokens are revoked).
pub async fn forget(state: &AppState, host: &Host) -> Result<(), ArmError> {
    if let Some(fp) = &host.internal.identity_header_fingerprint {
        clear_header_index(state, fp).await?;
    }
    let dropped: Vec<String> = host.internal.system_identity.iter().map(|s| s.principal_id.clone()).collect();
    revoke(state, &dropped).await
}

async fn clear_header_index(state: &AppState, fingerprint: &str) -> Result<(), ArmError> {
    state
        .meta
        .setting_put(&format!("{HEADER_INDEX_PREFIX}{fingerprint}"), "")
        .await
        .map_err(|e| storage_error("updating the identity-header index", e))
}

/// `POST {id}/workloadEnvironment`: a new identity header (the previous one stops working) and
/// the endpoint to present it to.
async fn workload_environment(ctx: &ArmCtx, mut host: Host) -> Result<Response, ArmError> {
    let state = &ctx.state;
    let secret = wharf_identity::secret::generate_identity_header();
    let fp = wharf_identity::fingerprint(&state.secret_key(), secret.expose());
    let previous = host.internal.identity_header_fingerprint.replace(fp.clone());
    host.store_internal();
    host.record.updated_at = chrono::Utc::now();
    state
        .meta
        .setting_put(&format!("{HEADER_INDEX_PREFIX}{fp}"), &host.record.id)
        .await
        .map_err(|e| storage_error("updating the identity-header index", e))?;
    state.meta.resource_put(&host.record).await.map_err(|e| storage_error("storing a resource", e))?;
    if let Some(old) = previous {
        clear_header_index(state, &old).await?;
    }
    tracing::info!(resource = %host.record.id, "issued a new workload identity header");
    let endpoint = format!("{}/msi/token", state.base_url(&ctx.headers));
    Ok(json_response(StatusCode::OK, &json!({"IDENTITY_ENDPOINT": endpoint, "IDENTITY_HEADER": secret.expose()})))
}

/// The hosting resource an identity header belongs to, or `None` (unknown, rotated, or its
/// resource deleted). The fingerprint comparison is constant-time.
pub async fn host_by_header(state: &AppState, header: &str) -> Result<Option<Host>, StorageError> {
    let fp = wharf_identity::fingerprint(&state.secret_key(), header);
    let Some(id) = state.meta.setting_get(&format!("{HEADER_INDEX_PREFIX}{fp}")).await?.filter(|id| !id.is_empty())
    else {
        return Ok(None);
    };
    let Some(record) = state.meta.resource_get(&id).await? else {
        return Ok(None);
    };
    let host = Host::from_record(record)?;
    let matches = host
        .internal
        .identity_header_fingerprint
        .as_deref()
        .is_some_and(|stored| wharf_identity::secret::constant_time_eq(stored.as_bytes(), fp.as_bytes()));
    Ok(matches.then_some(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_types_parse() {
        let r = parse_identity(
            &json!({"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {"/x": {}, "/y": null}}),
        )
        .unwrap()
        .unwrap();
        assert!(r.system && r.user);
        assert_eq!(r.entries, vec![("/x".to_string(), true), ("/y".to_string(), false)]);
        let r = parse_identity(&json!({"type": "systemassigned"})).unwrap().unwrap();
        assert!(r.system && !r.user);
        assert!(parse_identity(&json!({"type": "None, SystemAssigned"})).is_err());
        assert!(parse_identity(&json!({"type": "Bogus"})).is_err());
        assert!(parse_identity(&json!({"type": "SystemAssigned", "userAssignedIdentities": {"/x": {}}})).is_err());
        assert_eq!(parse_identity(&Value::Null).unwrap(), None);
    }

    #[test]
    fn identity_json_shapes() {
        let s = SystemIdentity { principal_id: "p".into(), client_id: "c".into() };
        let mut user = Map::new();
        assert_eq!(identity_json("t", None, &user), json!({"type": "None"}));
        assert_eq!(
            identity_json("t", Some(&s), &user),
            json!({"type": "SystemAssigned", "principalId": "p", "tenantId": "t"})
        );
        user.insert("/u".into(), json!({"principalId": "up", "clientId": "uc"}));
        let v = identity_json("t", Some(&s), &user);
        assert_eq!(v["type"], "SystemAssigned, UserAssigned");
        assert_eq!(v["userAssignedIdentities"]["/u"]["clientId"], "uc");
        assert!(v.get("clientId").is_none(), "the system identity's client id is not shown, as in Azure");
    }
}
