//! Graph's applications and service principals (one directory record per pair, see
//! `model::directory`), their secrets (`addPassword`, `removePassword`), managed identities shown
//! as service principals of type `ManagedIdentity`, and `directoryObjects/getByIds`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::endpoint::SecretHolder;
use super::error::{GraphCode, GraphError, GraphResult};
use super::groups::{find, lookup, typed_json};
use super::users::{bool_property, patch_properties};
use super::{GraphCtx, display_name, refuse_builtin, respond, revoke_now, with_context};
use crate::model::directory::{self, MemberKind, ServicePrincipal};
use crate::model::identities::{self, ManagedIdentityObject};
use crate::state::AppState;

/// `PATCH /applications/{id}` (`az ad app update`): the display name (shared with the service
/// principal).
pub(super) async fn update_application(ctx: &GraphCtx, id: &str) -> GraphResult<Response> {
    let mut app = find_app(ctx, id).await?;
    refuse_builtin(&app)?;
    let body = ctx.json()?;
    patch_properties(&body, "an application", &["displayName"])?;
    app.display_name = display_name(&body)?;
    directory::save_sp(&*ctx.state.meta, &app, false)
        .await
        .map_err(|e| GraphError::storage("updating an application", e))?;
    tracing::info!(app_id = %app.app_id, by = %ctx.caller.object_id(), "renamed an application");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PATCH /servicePrincipals/{id}` (`az ad sp update --set accountEnabled=false`): enabled or
/// not. Disabling revokes every token the service principal holds.
pub(super) async fn update_service_principal(ctx: &GraphCtx, id: &str) -> GraphResult<Response> {
    let mut sp = match find_sp(ctx, id).await? {
        SpOrMi::Sp(sp) => sp,
        SpOrMi::Mi(mi) => {
            return Err(GraphError::bad_request(format!(
                "'{}' is a managed identity: it is changed through its Azure resource, not Graph.",
                mi.display_name
            )));
        }
    };
    refuse_builtin(&sp)?;
    let body = ctx.json()?;
    let props = patch_properties(&body, "a service principal", &["accountEnabled"])?;
    let mut revoke = false;
    if let Some(enabled) = bool_property(props, "accountEnabled")? {
        revoke = sp.account_enabled && !enabled;
        sp.account_enabled = enabled;
    }
    directory::save_sp(&*ctx.state.meta, &sp, false)
        .await
        .map_err(|e| GraphError::storage("updating a service principal", e))?;
    if revoke {
        ctx.state.identity.clear_cache();
        revoke_now(&ctx.state, &sp.id).await?;
    }
    tracing::info!(app_id = %sp.app_id, enabled = sp.account_enabled, revoked = revoke, by = %ctx.caller.object_id(), "updated a service principal");
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) fn credentials_json(sp: &ServicePrincipal) -> Value {
    sp.password_credentials
        .iter()
        .map(|c| {
            json!({
                "keyId": c.key_id,
                "displayName": c.display_name,
                "hint": c.hint,
                "startDateTime": c.start_date_time,
                "endDateTime": c.end_date_time,
                "customKeyIdentifier": Value::Null,
                "secretText": Value::Null,
            })
        })
        .collect()
}

pub(super) fn app_json(app: &ServicePrincipal) -> Value {
    json!({
        "id": app.app_object_id,
        "appId": app.app_id,
        "displayName": app.display_name,
        "signInAudience": "AzureADMyOrg",
        "identifierUris": [],
        "passwordCredentials": credentials_json(app),
        "keyCredentials": [],
    })
}

pub(super) fn sp_json(state: &AppState, sp: &ServicePrincipal) -> Value {
    let mut v = json!({
        "id": sp.id,
        "appId": sp.app_id,
        "displayName": sp.display_name,
        "appDisplayName": sp.display_name,
        "accountEnabled": sp.account_enabled,
        "servicePrincipalNames": [sp.app_id],
        "servicePrincipalType": "Application",
        "appOwnerOrganizationId": state.tenant_id,
        "alternativeNames": [],
        "tags": [],
        "passwordCredentials": credentials_json(sp),
        "keyCredentials": [],
    });
    if let Some(b) = &sp.builtin {
        v["tags"] = json!([format!("WharfBuiltin:{b}")]);
    }
    v
}

pub(super) fn mi_json(state: &AppState, mi: &ManagedIdentityObject) -> Value {
    let explicit = mi.kind == wharf_identity::ManagedIdentityKind::UserAssigned;
    json!({
        "id": mi.object_id,
        "appId": mi.client_id,
        "displayName": mi.display_name,
        "accountEnabled": true,
        "servicePrincipalNames": [mi.client_id, mi.resource_id],
        "servicePrincipalType": "ManagedIdentity",
        "appOwnerOrganizationId": state.tenant_id,
        "alternativeNames": [format!("isExplicit={}", if explicit { "True" } else { "False" }), mi.resource_id],
        "tags": [],
        "passwordCredentials": [],
        "keyCredentials": [],
    })
}

/// `/applications/{id}`: the application object id (or, as a convenience, the app id).
pub(super) async fn find_app(ctx: &GraphCtx, id: &str) -> GraphResult<ServicePrincipal> {
    let meta = &*ctx.state.meta;
    let by_object = directory::find_app_by_object_id(meta, id)
        .await
        .map_err(|e| GraphError::storage("reading an application", e))?;
    let found = match by_object {
        Some(a) => Some(a),
        None => directory::find_app_by_app_id(meta, id)
            .await
            .map_err(|e| GraphError::storage("reading an application", e))?,
    };
    found.filter(|a| a.builtin.is_none()).ok_or_else(|| GraphError::not_found(id))
}

pub(super) enum SpOrMi {
    Sp(ServicePrincipal),
    Mi(ManagedIdentityObject),
}

pub(super) async fn find_sp(ctx: &GraphCtx, id: &str) -> GraphResult<SpOrMi> {
    let meta = &*ctx.state.meta;
    if let Some(sp) =
        directory::get_sp(meta, id).await.map_err(|e| GraphError::storage("reading a service principal", e))?
    {
        return Ok(SpOrMi::Sp(sp));
    }
    match identities::find_managed_identity(meta, id)
        .await
        .map_err(|e| GraphError::storage("reading a managed identity", e))?
    {
        Some(mi) => Ok(SpOrMi::Mi(mi)),
        None => Err(GraphError::not_found(id)),
    }
}

pub(super) async fn create_sp(ctx: &GraphCtx) -> GraphResult<Response> {
    let body = ctx.json()?;
    let app_id = body["appId"].as_str().unwrap_or_default();
    let meta = &*ctx.state.meta;
    let app = directory::find_app_by_app_id(meta, app_id)
        .await
        .map_err(|e| GraphError::storage("reading an application", e))?;
    let Some(mut app) = app.filter(|a| a.builtin.is_none()) else {
        return Err(GraphError::bad_request(format!(
            "The appId '{app_id}' of the service principal does not reference a valid application object."
        )));
    };
    if app.service_principal_created {
        return Err(GraphError::new(
            GraphCode::SameKeyExists,
            format!(
                "The service principal cannot be created, updated, or restored because the service principal name {app_id} is already in use."
            ),
        ));
    }
    app.service_principal_created = true;
    app.account_enabled = body["accountEnabled"] != json!(false);
    directory::save_sp(meta, &app, false).await.map_err(|e| GraphError::storage("creating a service principal", e))?;
    tracing::info!(app_id = %app.app_id, by = %ctx.caller.object_id(), "created a service principal");
    Ok(respond(StatusCode::CREATED, &with_context(ctx.context("servicePrincipals/$entity"), sp_json(&ctx.state, &app))))
}

/// The application/service-principal pair whose secrets `holder` `id` names.
pub(super) async fn find_secret_holder(
    ctx: &GraphCtx,
    holder: SecretHolder,
    id: &str,
) -> GraphResult<ServicePrincipal> {
    match holder {
        SecretHolder::Application => find_app(ctx, id).await,
        SecretHolder::ServicePrincipal => match find_sp(ctx, id).await? {
            SpOrMi::Sp(sp) => Ok(sp),
            SpOrMi::Mi(mi) => Err(GraphError::bad_request(format!(
                "'{}' is a managed identity: it has no client secrets; its workloads get tokens from the managed-identity endpoint.",
                mi.display_name
            ))),
        },
    }
}

pub(super) async fn add_password(ctx: &GraphCtx, holder: SecretHolder, id: &str) -> GraphResult<Response> {
    let mut app = find_secret_holder(ctx, holder, id).await?;
    refuse_builtin(&app)?;
    let body = ctx.json()?;
    let pc = &body["passwordCredential"];
    let display = pc["displayName"].as_str().map(str::to_string);
    let (secret, mut cred) =
        directory::new_password_credential(display, 1).map_err(|e| GraphError::storage("creating a secret", e))?;
    if let Some(end) = pc["endDateTime"].as_str() {
        let end = chrono::DateTime::parse_from_rfc3339(end).map_err(|_| {
            GraphError::bad_request(format!("Invalid endDateTime '{end}': use an ISO 8601 date and time."))
        })?;
        let end = end.with_timezone(&chrono::Utc);
        let now = chrono::Utc::now();
        if end <= now || end > now + chrono::Duration::days(365 * 100) {
            return Err(GraphError::bad_request("endDateTime must be in the future and within 100 years."));
        }
        cred.end_date_time = end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    }
    if let Some(start) = pc["startDateTime"].as_str().filter(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok()) {
        cred.start_date_time = start.to_string();
    }
    app.password_credentials.push(cred.clone());
    directory::save_sp(&*ctx.state.meta, &app, false).await.map_err(|e| GraphError::storage("storing a secret", e))?;
    ctx.state.identity.clear_cache();
    tracing::info!(app_id = %app.app_id, key_id = %cred.key_id, by = %ctx.caller.object_id(), "added a client secret");
    Ok(respond(
        StatusCode::OK,
        &json!({
            "@odata.context": ctx.context("microsoft.graph.passwordCredential"),
            "customKeyIdentifier": Value::Null,
            "displayName": cred.display_name,
            "endDateTime": cred.end_date_time,
            "hint": cred.hint,
            "keyId": cred.key_id,
            "secretText": secret.expose(),
            "startDateTime": cred.start_date_time,
        }),
    ))
}

/// Removes one secret and revokes every token issued to the principal before now (tokens
/// obtained with the removed secret included: a token does not record which secret got it).
pub(super) async fn remove_password(ctx: &GraphCtx, holder: SecretHolder, id: &str) -> GraphResult<Response> {
    let mut app = find_secret_holder(ctx, holder, id).await?;
    refuse_builtin(&app)?;
    let body = ctx.json()?;
    let key_id = body["keyId"].as_str().unwrap_or_default();
    let before = app.password_credentials.len();
    app.password_credentials.retain(|c| !c.key_id.eq_ignore_ascii_case(key_id));
    if app.password_credentials.len() == before {
        return Err(GraphError::bad_request(format!(
            "No password credential with keyId '{key_id}' exists on the application."
        )));
    }
    directory::save_sp(&*ctx.state.meta, &app, false).await.map_err(|e| GraphError::storage("removing a secret", e))?;
    revoke_now(&ctx.state, &app.id).await?;
    tracing::info!(app_id = %app.app_id, key_id, by = %ctx.caller.object_id(), "removed a client secret and revoked earlier tokens");
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn get_by_ids(ctx: &GraphCtx) -> GraphResult<Response> {
    let body = ctx.json()?;
    let ids: Vec<String> = body["ids"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    if ids.is_empty() || ids.len() > 1000 {
        return Err(GraphError::bad_request("'ids' must list 1 to 1000 object ids."));
    }
    let types: Vec<String> = body["types"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(|s| s.to_ascii_lowercase())).collect())
        .unwrap_or_default();
    let wants = |kind: MemberKind| {
        let name = match kind {
            MemberKind::User => "user",
            MemberKind::ServicePrincipal => "serviceprincipal",
            MemberKind::Group => "group",
        };
        types.is_empty() || types.iter().any(|x| x == name)
    };
    let lookup = lookup(ctx).await?;
    let mut out = vec![];
    for id in &ids {
        if let Some(o) = find(ctx, &lookup, id).await?
            && wants(o.member_kind())
        {
            out.push(typed_json(&o, &ctx.state));
        }
    }
    Ok(respond(StatusCode::OK, &json!({"@odata.context": ctx.context("directoryObjects"), "value": out})))
}
