//! Hosting resources: `Microsoft.ContainerInstance/containerGroups`,
//! `Microsoft.MachineLearningServices/workspaces` and `Microsoft.Web/sites`, registered so that
//! their workloads can carry managed identities.
//!
//! A hosting resource has at most one system-assigned identity (created with it or by a later
//! `identity.type` change, deleted with it, its tokens revoked then) and any number of attached
//! user-assigned identities. `POST {id}/workloadEnvironment` hands out the App-Service-style
//! `IDENTITY_ENDPOINT` and a fresh `IDENTITY_HEADER` secret; every call rotates the secret
//! (the previous one stops working at once). Only a keyed fingerprint of the secret is stored
//! (see `model::identities`).

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use wharf_arm::identity::{HostingResource, IdentityRequest, ResourceIdentity, UserAssignedRef};
use wharf_arm::{ArmError, ResourceId};
use wharf_storage::{ResourceFilter, ResourceRecord};

use super::{location_of, tags_of, validate_name};
use crate::arm::endpoint::Named;
use crate::arm::{ArmCtx, json_response, storage_error};
use crate::model::identities::{self, Host, HostInternal, SystemIdentity};
use crate::state::AppState;

pub fn host_id(state: &AppState, resource_type: &str, at: &Named) -> String {
    let (namespace, type_name) = resource_type.split_once('/').expect("resource types have a namespace");
    ResourceId::resource(&state.subscription_id, &at.group, namespace, type_name, &at.name).to_string()
}

async fn find(state: &AppState, id: &str) -> Result<Option<Host>, ArmError> {
    identities::host(&*state.meta, id).await.map_err(|e| storage_error("reading a resource", e))
}

async fn require(ctx: &ArmCtx, resource_type: &str, at: &Named) -> Result<Host, ArmError> {
    crate::arm::groups::require(&ctx.state, &at.group).await?;
    find(&ctx.state, &host_id(&ctx.state, resource_type, at))
        .await?
        .ok_or_else(|| ArmError::resource_not_found(resource_type, &at.name, &at.group))
}

pub async fn list(ctx: &ArmCtx, group: &str, resource_type: &str) -> Result<Response, ArmError> {
    crate::arm::groups::require(&ctx.state, group).await?;
    let filter = ResourceFilter { resource_type: Some(resource_type.into()), resource_group: Some(group.to_string()) };
    let all = ctx.state.meta.resource_list(&filter).await.map_err(|e| storage_error("listing resources", e))?;
    let mut value = vec![];
    for r in all {
        value.push(Host::from_record(r).map_err(|e| storage_error("listing resources", e))?.public_body());
    }
    Ok(json_response(StatusCode::OK, &json!({"value": value})))
}

pub async fn get(ctx: &ArmCtx, resource_type: &str, at: &Named) -> Result<Response, ArmError> {
    Ok(json_response(StatusCode::OK, &require(ctx, resource_type, at).await?.public_body()))
}

/// Applies an identity request to the current identities. `replace` (PUT) starts the
/// user-assigned set from empty; PATCH merges into it. Returns the principal ids whose
/// identities were dropped (their tokens are revoked by the caller).
pub(crate) async fn apply_identity(
    state: &AppState,
    host: &mut Host,
    req: Option<IdentityRequest>,
    replace: bool,
) -> Result<Vec<String>, ArmError> {
    let current_user: BTreeMap<String, UserAssignedRef> = if replace {
        BTreeMap::new()
    } else {
        host.resource.identity.as_ref().map(|i| i.user_assigned_identities.clone()).unwrap_or_default()
    };
    let req = match req {
        Some(r) => r,
        None if replace => IdentityRequest::none(),
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
    let mut user = if req.user { current_user } else { BTreeMap::new() };
    if req.user {
        for (id, add) in &req.entries {
            let existing_key = user.keys().find(|k| k.eq_ignore_ascii_case(id)).cloned();
            if *add {
                let Some(ua) = identities::user_assigned(&*state.meta, id)
                    .await
                    .map_err(|e| storage_error("reading a managed identity", e))?
                else {
                    return Err(ArmError::bad_request(
                        "InvalidUserAssignedIdentity",
                        format!(
                            "The user-assigned identity '{id}' was not found. Create it with 'wharf identity create' and pass its full resource id."
                        ),
                    ));
                };
                if let Some(k) = existing_key {
                    user.remove(&k);
                }
                let mi = ua.object();
                user.insert(
                    ua.record.id.clone(),
                    UserAssignedRef { principal_id: mi.object_id, client_id: mi.client_id },
                );
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
    let system_principal = host.internal.system_identity.as_ref().map(|s| s.principal_id.as_str());
    host.resource.identity = Some(ResourceIdentity::new(&state.tenant_id, system_principal, user));
    Ok(dropped)
}

pub(crate) async fn revoke(state: &AppState, principals: &[String]) -> Result<(), ArmError> {
    for p in principals {
        state.identity.revoke_before_now(&*state.meta, p).await.map_err(|e| {
            tracing::error!(error = %e, "revoking a removed identity's tokens failed");
            ArmError::internal("Internal error while revoking a removed identity's tokens.")
        })?;
    }
    Ok(())
}

fn properties_of(body: &Value, default: Value) -> Result<Value, ArmError> {
    let mut p = match body.get("properties") {
        None | Some(Value::Null) => default,
        Some(Value::Object(m)) => Value::Object(m.clone()),
        Some(_) => return Err(ArmError::invalid_request("'properties' must be an object.")),
    };
    p["provisioningState"] = json!("Succeeded");
    Ok(p)
}

pub async fn put(ctx: &ArmCtx, resource_type: &'static str, at: &Named) -> Result<Response, ArmError> {
    let rg = crate::arm::groups::require(&ctx.state, &at.group).await?;
    validate_name(&at.name, resource_type)?;
    let state = &ctx.state;
    let body = ctx.json()?;
    let identity = IdentityRequest::parse(body.get("identity").unwrap_or(&Value::Null))?;
    let existing = find(state, &host_id(state, resource_type, at)).await?;
    let now = chrono::Utc::now();
    let created = existing.is_none();
    let (record, internal, previous_identity) = match existing {
        Some(h) => (h.record, h.internal, h.resource.identity),
        None => (
            ResourceRecord {
                id: host_id(state, resource_type, at),
                resource_type: resource_type.to_string(),
                name: at.name.clone(),
                resource_group: Some(rg.name.clone()),
                key: uuid::Uuid::new_v4().to_string(),
                body: json!({}),
                created_at: now,
                updated_at: now,
            },
            HostInternal::default(),
            None,
        ),
    };
    let name = record.name.clone();
    let resource = HostingResource {
        id: host_id(state, resource_type, &Named { group: rg.name.clone(), name: name.clone() }),
        name,
        resource_type: resource_type.to_string(),
        location: location_of(&body, &rg),
        tags: tags_of(&body, json!({}))?,
        identity: previous_identity,
        properties: properties_of(&body, json!({}))?,
    };
    let mut host = Host { record, resource, internal };
    let dropped = apply_identity(state, &mut host, identity, true).await?;
    host.record.updated_at = now;
    state.meta.resource_put(&host.to_record()).await.map_err(|e| storage_error("storing a resource", e))?;
    revoke(state, &dropped).await?;
    Ok(json_response(if created { StatusCode::CREATED } else { StatusCode::OK }, &host.public_body()))
}

pub async fn patch(ctx: &ArmCtx, resource_type: &str, at: &Named) -> Result<Response, ArmError> {
    let mut host = require(ctx, resource_type, at).await?;
    let state = &ctx.state;
    let body = ctx.json()?;
    let identity = IdentityRequest::parse(body.get("identity").unwrap_or(&Value::Null))?;
    host.resource.tags = tags_of(&body, host.resource.tags.clone())?;
    if let Some(Value::Object(p)) = body.get("properties") {
        for (k, v) in p {
            host.resource.properties[k] = v.clone();
        }
        host.resource.properties["provisioningState"] = json!("Succeeded");
    }
    let dropped = apply_identity(state, &mut host, identity, false).await?;
    host.record.updated_at = chrono::Utc::now();
    state.meta.resource_put(&host.to_record()).await.map_err(|e| storage_error("storing a resource", e))?;
    revoke(state, &dropped).await?;
    Ok(json_response(StatusCode::OK, &host.public_body()))
}

pub async fn delete(ctx: &ArmCtx, resource_type: &str, at: &Named) -> Result<Response, ArmError> {
    crate::arm::groups::require(&ctx.state, &at.group).await?;
    let state = &ctx.state;
    let Some(host) = find(state, &host_id(state, resource_type, at)).await? else {
        return Ok(json_response(StatusCode::NO_CONTENT, &Value::Null));
    };
    let deleted = state.delete_tree(&host.record.id).await.map_err(|e| storage_error("deleting a resource", e))?;
    super::after_delete(state, &deleted).await?;
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
        .setting_put(&identities::header_index_key(fingerprint), "")
        .await
        .map_err(|e| storage_error("updating the identity-header index", e))
}

/// `POST {id}/workloadEnvironment`: a new identity header (the previous one stops working) and
/// the endpoint to present it to.
pub async fn workload_environment(ctx: &ArmCtx, resource_type: &str, at: &Named) -> Result<Response, ArmError> {
    let mut host = require(ctx, resource_type, at).await?;
    let state = &ctx.state;
    let secret = wharf_identity::secret::generate_identity_header();
    let fp = wharf_identity::fingerprint(&state.secret_key, secret.expose());
    let previous = host.internal.identity_header_fingerprint.replace(fp.clone());
    host.record.updated_at = chrono::Utc::now();
    state
        .meta
        .setting_put(&identities::header_index_key(&fp), &host.record.id)
        .await
        .map_err(|e| storage_error("updating the identity-header index", e))?;
    state.meta.resource_put(&host.to_record()).await.map_err(|e| storage_error("storing a resource", e))?;
    if let Some(old) = previous {
        clear_header_index(state, &old).await?;
    }
    tracing::info!(resource = %host.record.id, "issued a new workload identity header");
    let endpoint = format!("{}/msi/token", state.base_url(&ctx.headers));
    Ok(json_response(StatusCode::OK, &json!({"IDENTITY_ENDPOINT": endpoint, "IDENTITY_HEADER": secret.expose()})))
}
