//! `Microsoft.ManagedIdentity/userAssignedIdentities`: a managed identity that exists on its own
//! and can be attached to several hosting resources. Its object (principal) id and client id are
//! fixed at creation; deleting it revokes the tokens issued to it.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use wharf_arm::{ArmError, ResourceId};
use wharf_identity::ManagedIdentityKind;
use wharf_storage::{ResourceFilter, ResourceRecord};

use super::{ManagedIdentityObject, USER_ASSIGNED_IDENTITY, location_of, tags_of, validate_name};
use crate::arm::{ArmCtx, json_response, storage_error};
use crate::state::AppState;

pub fn identity_id(state: &AppState, group: &str, name: &str) -> String {
    ResourceId::resource(&state.subscription_id, group, "Microsoft.ManagedIdentity", "userAssignedIdentities", name)
        .to_string()
}

/// The directory view of a stored identity.
pub fn object_of(r: &ResourceRecord) -> Option<ManagedIdentityObject> {
    let p = &r.body["properties"];
    Some(ManagedIdentityObject {
        object_id: p["principalId"].as_str()?.to_string(),
        client_id: p["clientId"].as_str()?.to_string(),
        kind: ManagedIdentityKind::UserAssigned,
        resource_id: r.id.clone(),
        display_name: r.name.clone(),
    })
}

/// Loads a user-assigned identity by resource id (any case), or `None`.
pub async fn get(state: &AppState, id: &str) -> Result<Option<ResourceRecord>, ArmError> {
    let r = state.meta.resource_get(id).await.map_err(|e| storage_error("reading a managed identity", e))?;
    Ok(r.filter(|r| r.resource_type.eq_ignore_ascii_case(USER_ASSIGNED_IDENTITY)))
}

pub async fn handle(
    ctx: &ArmCtx,
    rg: &ResourceRecord,
    name: Option<&str>,
    tail: &[&str],
) -> Result<Response, ArmError> {
    let Some(name) = name else {
        return match ctx.method {
            Method::GET => list(ctx, &rg.name).await,
            ref m => Err(ArmError::method_not_allowed(m.as_str())),
        };
    };
    if !tail.is_empty() {
        return Err(ArmError::not_found_path(&format!(
            "{}/{}",
            identity_id(&ctx.state, &rg.name, name),
            tail.join("/")
        )));
    }
    let id = identity_id(&ctx.state, &rg.name, name);
    match ctx.method {
        Method::GET => {
            let r = get(&ctx.state, &id)
                .await?
                .ok_or_else(|| ArmError::resource_not_found(USER_ASSIGNED_IDENTITY, name, &rg.name))?;
            Ok(json_response(StatusCode::OK, &r.body))
        }
        Method::PUT => put(ctx, rg, name).await,
        Method::PATCH => patch(ctx, rg, name).await,
        Method::DELETE => delete(ctx, &id).await,
        ref m => Err(ArmError::method_not_allowed(m.as_str())),
    }
}

async fn list(ctx: &ArmCtx, group: &str) -> Result<Response, ArmError> {
    let filter =
        ResourceFilter { resource_type: Some(USER_ASSIGNED_IDENTITY.into()), resource_group: Some(group.to_string()) };
    let all =
        ctx.state.meta.resource_list(&filter).await.map_err(|e| storage_error("listing managed identities", e))?;
    let value: Vec<Value> = all.into_iter().map(|r| r.body).collect();
    Ok(json_response(StatusCode::OK, &json!({"value": value})))
}

async fn put(ctx: &ArmCtx, rg: &ResourceRecord, name: &str) -> Result<Response, ArmError> {
    validate_name(name, USER_ASSIGNED_IDENTITY)?;
    let state = &ctx.state;
    let body = ctx.json()?;
    let id = identity_id(state, &rg.name, name);
    let existing = get(state, &id).await?;
    let now = chrono::Utc::now();
    let location = location_of(&body, rg);
    let tags = tags_of(&body, json!({}))?;
    let (record_name, key, created_at, principal_id, client_id) = match &existing {
        Some(r) => (
            r.name.clone(),
            r.key.clone(),
            r.created_at,
            r.body["properties"]["principalId"].as_str().unwrap_or_default().to_string(),
            r.body["properties"]["clientId"].as_str().unwrap_or_default().to_string(),
        ),
        None => (
            name.to_string(),
            uuid::Uuid::new_v4().to_string(),
            now,
            uuid::Uuid::new_v4().to_string(),
            uuid::Uuid::new_v4().to_string(),
        ),
    };
    let id = identity_id(state, &rg.name, &record_name);
    let out = json!({
        "id": id,
        "name": record_name,
        "type": USER_ASSIGNED_IDENTITY,
        "location": location,
        "tags": tags,
        "properties": {
            "tenantId": state.tenant_id,
            "principalId": principal_id,
            "clientId": client_id,
            "isolationScope": "None",
        },
    });
    let record = ResourceRecord {
        id,
        resource_type: USER_ASSIGNED_IDENTITY.into(),
        name: record_name,
        resource_group: Some(rg.name.clone()),
        key,
        body: out.clone(),
        created_at,
        updated_at: now,
    };
    state.meta.resource_put(&record).await.map_err(|e| storage_error("storing a managed identity", e))?;
    Ok(json_response(if existing.is_some() { StatusCode::OK } else { StatusCode::CREATED }, &out))
}

async fn patch(ctx: &ArmCtx, rg: &ResourceRecord, name: &str) -> Result<Response, ArmError> {
    let id = identity_id(&ctx.state, &rg.name, name);
    let mut record = get(&ctx.state, &id)
        .await?
        .ok_or_else(|| ArmError::resource_not_found(USER_ASSIGNED_IDENTITY, name, &rg.name))?;
    let body = ctx.json()?;
    record.body["tags"] = tags_of(&body, record.body["tags"].clone())?;
    record.updated_at = chrono::Utc::now();
    ctx.state.meta.resource_put(&record).await.map_err(|e| storage_error("storing a managed identity", e))?;
    Ok(json_response(StatusCode::OK, &record.body))
}

async fn delete(ctx: &ArmCtx, id: &str) -> Result<Response, ArmError> {
    let state = &ctx.state;
    let Some(record) = get(state, id).await? else {
        return Ok(json_response(StatusCode::NO_CONTENT, &Value::Null));
    };
    state.meta.resource_delete_tree(&record.id).await.map_err(|e| storage_error("deleting a managed identity", e))?;
    if let Some(mi) = object_of(&record) {
        revoke(state, &mi.object_id).await?;
    }
    Ok(json_response(StatusCode::OK, &Value::Null))
}

/// Tokens already issued to a deleted identity stop working with it.
pub async fn revoke(state: &AppState, principal_id: &str) -> Result<(), ArmError> {
    state.identity.revoke_before_now(&*state.meta, principal_id).await.map_err(|e| {
        tracing::error!(error = %e, "revoking a deleted identity's tokens failed");
        ArmError::internal("Internal error while revoking the identity's tokens.")
    })
}
