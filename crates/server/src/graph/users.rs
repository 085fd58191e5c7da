//! Graph's users: `/users`, `/users/{id or upn}` (create, read, update, delete) and `/me`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::error::{GraphError, GraphResult};
use super::{GraphCtx, display_name, respond, revoke_now, with_context};
use crate::model::directory::{self, User};

pub(super) fn user_json(u: &User) -> Value {
    let nickname = u.user_principal_name.split('@').next().unwrap_or_default();
    json!({
        "id": u.id,
        "displayName": u.display_name,
        "userPrincipalName": u.user_principal_name,
        "accountEnabled": u.account_enabled,
        "mailNickname": nickname,
        "mail": Value::Null,
        "givenName": Value::Null,
        "surname": Value::Null,
        "jobTitle": Value::Null,
        "mobilePhone": Value::Null,
        "officeLocation": Value::Null,
        "preferredLanguage": Value::Null,
        "businessPhones": [],
    })
}

pub(super) async fn find_user(ctx: &GraphCtx, id_or_upn: &str) -> GraphResult<User> {
    let meta = &*ctx.state.meta;
    let found = if id_or_upn.contains('@') {
        directory::find_user_by_upn(meta, id_or_upn).await
    } else {
        directory::get_user(meta, id_or_upn).await
    };
    found.map_err(|e| GraphError::storage("reading a user", e))?.ok_or_else(|| GraphError::not_found(id_or_upn))
}

/// The properties of a PATCH body, refusing any not in `supported` (Graph answers 400 for a
/// property it cannot update; Wharf's directory keeps only a few).
pub(super) fn patch_properties<'a>(
    body: &'a Value,
    what: &str,
    supported: &[&str],
) -> GraphResult<&'a serde_json::Map<String, Value>> {
    let props = body.as_object().ok_or_else(|| GraphError::bad_request("The request body must be a JSON object."))?;
    if let Some(other) = props.keys().find(|k| !supported.contains(&k.as_str())) {
        return Err(GraphError::bad_request(format!(
            "Property '{other}' of {what} cannot be updated in Wharf's directory; the properties that can are: {}.",
            supported.join(", ")
        )));
    }
    Ok(props)
}

pub(super) fn bool_property(props: &serde_json::Map<String, Value>, name: &str) -> GraphResult<Option<bool>> {
    match props.get(name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(GraphError::bad_request(format!("Property '{name}' must be true or false, not {v}."))),
    }
}

/// `PATCH /users/{id}` (`az ad user update`): display name, password, enabled. Disabling a
/// user or setting a new password revokes every token it holds.
pub(super) async fn update_user(ctx: &GraphCtx, id: &str) -> GraphResult<Response> {
    let mut user = find_user(ctx, id).await?;
    let body = ctx.json()?;
    let props =
        patch_properties(&body, "a user", &["displayName", "accountEnabled", "passwordProfile", "mailNickname"])?;
    if props.contains_key("displayName") {
        user.display_name = display_name(&body)?;
    }
    if let Some(nickname) =
        props.get("mailNickname").filter(|n| n.as_str() != user.user_principal_name.split('@').next())
    {
        return Err(GraphError::bad_request(format!(
            "Property 'mailNickname' is the part of the user principal name before '@' in Wharf and cannot be changed to {nickname}."
        )));
    }
    let mut revoke = false;
    if let Some(enabled) = bool_property(props, "accountEnabled")? {
        revoke |= user.account_enabled && !enabled;
        user.account_enabled = enabled;
    }
    if let Some(profile) = props.get("passwordProfile") {
        if profile["forceChangePasswordNextSignIn"] == json!(true) {
            return Err(GraphError::bad_request(
                "forceChangePasswordNextSignIn is not supported: Wharf has no interactive sign-in where the user could choose a new password.",
            ));
        }
        let password = profile["password"].as_str().unwrap_or_default();
        if password.chars().count() < MIN_PASSWORD_LEN {
            return Err(GraphError::bad_request(format!(
                "The specified password does not comply with password complexity requirements. Please provide a different password of at least {MIN_PASSWORD_LEN} characters."
            )));
        }
        user.password_hash = directory::hash(password).map_err(|e| GraphError::storage("hashing a password", e))?;
        revoke = true;
    }
    directory::save_user(&*ctx.state.meta, &user).await.map_err(|e| GraphError::storage("updating a user", e))?;
    if revoke {
        ctx.state.identity.clear_cache();
        revoke_now(&ctx.state, &user.id).await?;
    }
    tracing::info!(upn = %user.user_principal_name, changed = ?props.keys().collect::<Vec<_>>(), revoked = revoke, by = %ctx.caller.object_id(), "updated a user");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Minimum length of a user's password.
pub const MIN_PASSWORD_LEN: usize = 8;

pub(super) async fn create_user(ctx: &GraphCtx) -> GraphResult<Response> {
    let body = ctx.json()?;
    let name = display_name(&body)?;
    let upn = body["userPrincipalName"].as_str().map(str::trim).unwrap_or_default();
    let valid_upn = upn.split_once('@').is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@'))
        && upn.len() <= 113
        && !upn.chars().any(|c| c.is_whitespace() || c.is_control());
    if !valid_upn {
        return Err(GraphError::bad_request(format!(
            "Invalid value specified for property 'userPrincipalName' of resource 'User': '{upn}' must be of the form alias@domain."
        )));
    }
    let password = body["passwordProfile"]["password"].as_str().unwrap_or_default();
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(GraphError::bad_request(format!(
            "The specified password does not comply with password complexity requirements. Please provide a different password of at least {MIN_PASSWORD_LEN} characters."
        )));
    }
    let meta = &*ctx.state.meta;
    let mut user = match directory::create_user(meta, upn, &name, password).await {
        Ok(u) => u,
        Err(wharf_storage::StorageError::Conflict(_)) => {
            return Err(GraphError::bad_request(
                "Another object with the same value for property userPrincipalName already exists.",
            ));
        }
        Err(e) => return Err(GraphError::storage("creating a user", e)),
    };
    if body["accountEnabled"] == json!(false) {
        user.account_enabled = false;
        let record = meta
            .resource_get(&directory::user_id(&user.id))
            .await
            .map_err(|e| GraphError::storage("creating a user", e))?;
        if let Some(mut r) = record {
            r.body = serde_json::to_value(&user).expect("user serializes");
            meta.resource_put(&r).await.map_err(|e| GraphError::storage("creating a user", e))?;
        }
    }
    tracing::info!(upn = %user.user_principal_name, by = %ctx.caller.object_id(), "created a user");
    Ok(respond(StatusCode::CREATED, &with_context(ctx.context("users/$entity"), user_json(&user))))
}
