//! `Microsoft.ManagedIdentity/userAssignedIdentities`: a managed identity that exists on its own
//! and can be attached to several hosting resources. Its object (principal) id and client id are
//! fixed at creation; deleting it revokes the tokens issued to it.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use wharf_arm::identity::{USER_ASSIGNED_IDENTITY, UserAssignedIdentity, UserAssignedIdentityProperties};
use wharf_arm::{ArmError, ResourceId};
use wharf_storage::{ResourceFilter, ResourceRecord};

use super::{location_of, tags_of, validate_name};
use crate::arm::endpoint::Named;
use crate::arm::{ArmCtx, json_response, storage_error};
use crate::model::identities::{self, UserAssigned};
use crate::state::AppState;

pub fn identity_id(state: &AppState, at: &Named) -> String {
    ResourceId::resource(
        &state.subscription_id,
        &at.group,
        "Microsoft.ManagedIdentity",
        "userAssignedIdentities",
        &at.name,
    )
    .to_string()
}

async fn find(state: &AppState, id: &str) -> Result<Option<UserAssigned>, ArmError> {
    identities::user_assigned(&*state.meta, id).await.map_err(|e| storage_error("reading a managed identity", e))
}

pub async fn list(ctx: &ArmCtx, group: &str) -> Result<Response, ArmError> {
    crate::arm::groups::require(&ctx.state, group).await?;
    let filter =
        ResourceFilter { resource_type: Some(USER_ASSIGNED_IDENTITY.into()), resource_group: Some(group.to_string()) };
    let all =
        ctx.state.meta.resource_list(&filter).await.map_err(|e| storage_error("listing managed identities", e))?;
    let value: Vec<Value> = all.into_iter().map(|r| r.body).collect();
    Ok(json_response(StatusCode::OK, &json!({"value": value})))
}

pub async fn get(ctx: &ArmCtx, at: &Named) -> Result<Response, ArmError> {
    crate::arm::groups::require(&ctx.state, &at.group).await?;
    let found = find(&ctx.state, &identity_id(&ctx.state, at)).await?;
    let ua = found.ok_or_else(|| ArmError::resource_not_found(USER_ASSIGNED_IDENTITY, &at.name, &at.group))?;
    Ok(json_response(StatusCode::OK, &ua.record.body))
}

pub async fn put(ctx: &ArmCtx, at: &Named) -> Result<Response, ArmError> {
    let rg = crate::arm::groups::require(&ctx.state, &at.group).await?;
    validate_name(&at.name, USER_ASSIGNED_IDENTITY)?;
    let state = &ctx.state;
    let body = ctx.json()?;
    let existing = find(state, &identity_id(state, at)).await?;
    let now = chrono::Utc::now();
    let (record_name, key, created_at, principal_id, client_id) = match &existing {
        Some(ua) => (
            ua.record.name.clone(),
            ua.record.key.clone(),
            ua.record.created_at,
            ua.identity.properties.principal_id.clone(),
            ua.identity.properties.client_id.clone(),
        ),
        None => (
            at.name.clone(),
            uuid::Uuid::new_v4().to_string(),
            now,
            uuid::Uuid::new_v4().to_string(),
            uuid::Uuid::new_v4().to_string(),
        ),
    };
    let id = identity_id(state, &Named { group: rg.name.clone(), name: record_name.clone() });
    let identity = UserAssignedIdentity {
        id: id.clone(),
        name: record_name.clone(),
        resource_type: USER_ASSIGNED_IDENTITY.into(),
        location: location_of(&body, &rg),
        tags: tags_of(&body, json!({}))?,
        properties: UserAssignedIdentityProperties {
            tenant_id: state.tenant_id.clone(),
            principal_id,
            client_id,
            isolation_scope: "None".into(),
        },
    };
    let out = serde_json::to_value(&identity).expect("an identity serializes");
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

pub async fn patch(ctx: &ArmCtx, at: &Named) -> Result<Response, ArmError> {
    crate::arm::groups::require(&ctx.state, &at.group).await?;
    let found = find(&ctx.state, &identity_id(&ctx.state, at)).await?;
    let mut ua = found.ok_or_else(|| ArmError::resource_not_found(USER_ASSIGNED_IDENTITY, &at.name, &at.group))?;
    let body = ctx.json()?;
    ua.identity.tags = tags_of(&body, ua.identity.tags.clone())?;
    ua.record.body = serde_json::to_value(&ua.identity).expect("an identity serializes");
    ua.record.updated_at = chrono::Utc::now();
    ctx.state.meta.resource_put(&ua.record).await.map_err(|e| storage_error("storing a managed identity", e))?;
    Ok(json_response(StatusCode::OK, &ua.record.body))
}

pub async fn delete(ctx: &ArmCtx, at: &Named) -> Result<Response, ArmError> {
    crate::arm::groups::require(&ctx.state, &at.group).await?;
    let state = &ctx.state;
    let Some(ua) = find(state, &identity_id(state, at)).await? else {
        return Ok(json_response(StatusCode::NO_CONTENT, &Value::Null));
    };
    let deleted =
        state.delete_tree(&ua.record.id).await.map_err(|e| storage_error("deleting a managed identity", e))?;
    super::after_delete(state, &deleted).await?;
    Ok(json_response(StatusCode::OK, &Value::Null))
}

/// Tokens already issued to a deleted identity stop working with it.
pub async fn revoke(state: &AppState, principal_id: &str) -> Result<(), ArmError> {
    state.identity.revoke_before_now(&*state.meta, principal_id).await.map_err(|e| {
        tracing::error!(error = %e, "revoking a deleted identity's tokens failed");
        ArmError::internal("Internal error while revoking the identity's tokens.")
    })
}
