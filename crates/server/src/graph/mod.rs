//! The Microsoft Graph subset that az and Wharf's CLI use to manage the directory: users,
//! applications, service principals and security groups under `/v1.0/`.
//!
//! One path for every request: parse method and path into a [`GraphEndpoint`] → authenticate
//! the bearer token (Graph audience) → authorize the endpoint's [`GraphRequirement`] (its one
//! permission table) → route to the endpoint's handler.
//!
//! Owns: Graph's JSON shapes and errors, and the `$filter` forms az sends.
//! Must never: store a secret in plaintext (the directory keeps argon2id hashes; `secretText`
//! appears once, in the `addPassword` response), or answer a caller without a Graph-audience
//! bearer token.
//!
//! Applications and service principals share one directory record (see `model::directory`):
//! `POST /applications` registers the application, `POST /servicePrincipals {appId}` creates
//! its service principal, `DELETE /servicePrincipals/{id}` removes only the service principal
//! (the application stays), `DELETE /applications/{id}` removes both. Managed identities appear
//! as service principals of type `ManagedIdentity`, read-only (they live and die with their
//! ARM resources). Built-in service principals (trusted services) cannot get secrets or be
//! deleted. Groups are security groups (`securityEnabled`, not mail-enabled). Members may be
//! users, service principals (managed identities included) and other groups;
//! `checkMemberGroups` and `getMemberGroups` answer with the same transitive expansion that
//! authorization uses (`authz::Authz::transitive_groups`), and every membership change reloads
//! it before the response, so the next token request sees it.

mod applications;
pub mod endpoint;
pub mod error;
mod filter;
mod groups;
mod users;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use wharf_identity::Audience;

pub use endpoint::{DIRECTORY_WRITE_ACTION, GraphEndpoint, GraphRequirement};
use error::{GraphCode, GraphError, GraphResult};
use filter::Filter;

use crate::auth::management::ManagementCaller;
use crate::http::Query;
use crate::model::directory::{self, GroupRelation, ServicePrincipal};
use crate::state::AppState;
use applications::*;
use groups::*;
use users::*;

pub(super) fn respond(status: StatusCode, v: &Value) -> Response {
    (status, [(http::header::CONTENT_TYPE, "application/json; charset=utf-8")], v.to_string()).into_response()
}

/// What a handler gets.
pub struct GraphCtx {
    pub state: Arc<AppState>,
    pub caller: ManagementCaller,
    pub base: String,
    pub query: Query,
    pub body: bytes::Bytes,
}

impl GraphCtx {
    pub fn json(&self) -> GraphResult<Value> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(json!({}));
        }
        match serde_json::from_slice::<Value>(&self.body) {
            Ok(v) if v.is_object() => Ok(v),
            Ok(_) => Err(GraphError::bad_request("The request body must be a JSON object.")),
            Err(e) => Err(GraphError::bad_request(format!("Unable to read JSON request payload: {e}"))),
        }
    }

    pub fn context(&self, what: &str) -> String {
        format!("{}/v1.0/$metadata#{what}", self.base)
    }

    pub fn list(&self, what: &str, mut items: Vec<Value>) -> GraphResult<Response> {
        let filter = Filter::parse(self.query.text("$filter"))?;
        items.retain(|v| filter.iter().all(|c| c.matches(v)));
        if let Some(top) = self.query.get("$top") {
            let n: usize = top.parse().map_err(|_| GraphError::bad_request(format!("Invalid $top value '{top}'.")))?;
            items.truncate(n);
        }
        Ok(respond(StatusCode::OK, &json!({"@odata.context": self.context(what), "value": items})))
    }
}

pub async fn handle(state: Arc<AppState>, req: Request<Body>) -> Response {
    match serve(state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn serve(state: Arc<AppState>, req: Request<Body>) -> GraphResult<Response> {
    let (parts, body) = req.into_parts();
    let endpoint = GraphEndpoint::parse(&parts.method, parts.uri.path()).ok_or_else(|| {
        GraphError::new(
            GraphCode::SegmentNotFound,
            format!("Resource not found for the segment '{}'.", parts.uri.path()),
        )
    })?;
    let caller = crate::auth::management::authenticate(&state, &parts.headers, Audience::Graph)
        .map_err(GraphError::unauthenticated)?;
    let Ok(body) = axum::body::to_bytes(body, 1024 * 1024).await else {
        return Err(GraphError::bad_request("The request body is too large."));
    };
    let ctx =
        GraphCtx { base: state.base_url(&parts.headers), query: Query::parse(parts.uri.query()), state, caller, body };
    authorize(&ctx, endpoint.requirement()).await?;
    dispatch(&ctx, endpoint).await
}

/// Decides the endpoint's requirement, once, before the handler runs.
async fn authorize(ctx: &GraphCtx, requirement: GraphRequirement) -> GraphResult<()> {
    let GraphRequirement::DirectoryWrite { owned_group } = requirement else { return Ok(()) };
    if caller_owns(ctx, owned_group.as_deref()).await? {
        return Ok(());
    }
    let scope = wharf_authz::Scope::subscription(&ctx.state.subscription_id).map_err(|e| {
        GraphError::new(GraphCode::Internal, format!("the deployment's subscription is not a scope: {e}"))
    })?;
    let decision = ctx.state.authz.authorize_action(ctx.caller.object_id(), &scope, DIRECTORY_WRITE_ACTION);
    if decision.is_allowed() {
        return Ok(());
    }
    let not_owner = owned_group.map(|g| format!("not an owner of group {g}")).unwrap_or_default();
    tracing::warn!(caller = %ctx.caller.object_id(), action = DIRECTORY_WRITE_ACTION, scope = %scope.as_str(), explanation = %decision.explain(), not_owner, "directory change denied");
    Err(GraphError::denied("Insufficient privileges to complete the operation."))
}

async fn dispatch(ctx: &GraphCtx, endpoint: GraphEndpoint) -> GraphResult<Response> {
    use GraphEndpoint as E;
    match endpoint {
        E::GetMe => {
            let user = directory::get_user(&*ctx.state.meta, ctx.caller.object_id())
                .await
                .map_err(|e| GraphError::storage("reading a user", e))?;
            let user = user.ok_or_else(|| {
                GraphError::bad_request("/me is only valid with a user's token: the caller is not a user.")
            })?;
            Ok(respond(StatusCode::OK, &with_context(ctx.context("users/$entity"), user_json(&user))))
        }
        E::ListUsers => {
            let users =
                directory::list_users(&*ctx.state.meta).await.map_err(|e| GraphError::storage("listing users", e))?;
            ctx.list("users", users.iter().map(user_json).collect())
        }
        E::CreateUser => create_user(ctx).await,
        E::GetUser(id) => {
            let u = find_user(ctx, &id).await?;
            Ok(respond(StatusCode::OK, &with_context(ctx.context("users/$entity"), user_json(&u))))
        }
        E::UpdateUser(id) => update_user(ctx, &id).await,
        E::DeleteUser(id) => {
            let u = find_user(ctx, &id).await?;
            directory::delete_user(&*ctx.state.meta, &u.id)
                .await
                .map_err(|e| GraphError::storage("deleting a user", e))?;
            leave_all_groups(ctx, &u.id).await?;
            revoke_now(&ctx.state, &u.id).await?;
            tracing::info!(user = %u.user_principal_name, by = %ctx.caller.object_id(), "deleted a user");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        E::ListApplications => {
            let apps = directory::list_apps(&*ctx.state.meta)
                .await
                .map_err(|e| GraphError::storage("listing applications", e))?;
            ctx.list("applications", apps.iter().filter(|a| a.builtin.is_none()).map(app_json).collect())
        }
        E::CreateApplication => {
            let body = ctx.json()?;
            let name = display_name(&body)?;
            let app = directory::create_application(&*ctx.state.meta, &name)
                .await
                .map_err(|e| GraphError::storage("creating an application", e))?;
            tracing::info!(app_id = %app.app_id, by = %ctx.caller.object_id(), "registered an application");
            Ok(respond(StatusCode::CREATED, &with_context(ctx.context("applications/$entity"), app_json(&app))))
        }
        E::UpdateApplication(id) => update_application(ctx, &id).await,
        E::GetApplication(id) => {
            let app = find_app(ctx, &id).await?;
            Ok(respond(StatusCode::OK, &with_context(ctx.context("applications/$entity"), app_json(&app))))
        }
        E::DeleteApplication(id) => {
            let app = find_app(ctx, &id).await?;
            refuse_builtin(&app)?;
            directory::delete_sp(&*ctx.state.meta, &app.id)
                .await
                .map_err(|e| GraphError::storage("deleting an application", e))?;
            leave_all_groups(ctx, &app.id).await?;
            revoke_now(&ctx.state, &app.id).await?;
            tracing::info!(app_id = %app.app_id, by = %ctx.caller.object_id(), "deleted an application and its service principal");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        E::AddPassword(holder, id) => add_password(ctx, holder, &id).await,
        E::RemovePassword(holder, id) => remove_password(ctx, holder, &id).await,
        E::ListServicePrincipals => {
            let mut items: Vec<Value> = directory::list_sps(&*ctx.state.meta)
                .await
                .map_err(|e| GraphError::storage("listing service principals", e))?
                .iter()
                .map(|sp| sp_json(&ctx.state, sp))
                .collect();
            let mis = crate::model::identities::managed_identities(&*ctx.state.meta)
                .await
                .map_err(|e| GraphError::storage("listing managed identities", e))?;
            items.extend(mis.iter().map(|m| mi_json(&ctx.state, m)));
            ctx.list("servicePrincipals", items)
        }
        E::CreateServicePrincipal => create_sp(ctx).await,
        E::UpdateServicePrincipal(id) => update_service_principal(ctx, &id).await,
        E::GetServicePrincipal(id) => {
            let v = match find_sp(ctx, &id).await? {
                SpOrMi::Sp(sp) => sp_json(&ctx.state, &sp),
                SpOrMi::Mi(mi) => mi_json(&ctx.state, &mi),
            };
            Ok(respond(StatusCode::OK, &with_context(ctx.context("servicePrincipals/$entity"), v)))
        }
        E::DeleteServicePrincipal(id) => match find_sp(ctx, &id).await? {
            SpOrMi::Mi(mi) => Err(GraphError::bad_request(format!(
                "'{}' is a managed identity: delete its resource ({}) or detach it instead.",
                mi.object_id, mi.resource_id
            ))),
            SpOrMi::Sp(mut sp) => {
                refuse_builtin(&sp)?;
                sp.service_principal_created = false;
                directory::save_sp(&*ctx.state.meta, &sp, false)
                    .await
                    .map_err(|e| GraphError::storage("deleting a service principal", e))?;
                leave_all_groups(ctx, &sp.id).await?;
                revoke_now(&ctx.state, &sp.id).await?;
                tracing::info!(app_id = %sp.app_id, by = %ctx.caller.object_id(), "deleted a service principal");
                Ok(StatusCode::NO_CONTENT.into_response())
            }
        },
        E::GetByIds => get_by_ids(ctx).await,
        E::ListGroups => {
            let groups =
                directory::list_groups(&*ctx.state.meta).await.map_err(|e| GraphError::storage("listing groups", e))?;
            ctx.list("groups", groups.iter().map(group_json).collect())
        }
        E::CreateGroup => create_group(ctx).await,
        E::GetGroup(id) => {
            let g = find_group(ctx, &id).await?;
            Ok(respond(StatusCode::OK, &with_context(ctx.context("groups/$entity"), group_json(&g))))
        }
        E::DeleteGroup(id) => {
            let g = find_group(ctx, &id).await?;
            directory::delete_group(&*ctx.state.meta, &g.id)
                .await
                .map_err(|e| GraphError::storage("deleting a group", e))?;
            reload_authz(ctx).await?;
            tracing::info!(group = %g.id, name = %g.display_name, by = %ctx.caller.object_id(), "deleted a group");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        E::ListGroupMembers(id) => list_related(ctx, GroupRelation::Member, &id).await,
        E::AddGroupMember(id) => add_related(ctx, GroupRelation::Member, &id).await,
        E::RemoveGroupMember(id, member) => remove_related(ctx, GroupRelation::Member, &id, &member).await,
        E::ListGroupOwners(id) => list_related(ctx, GroupRelation::Owner, &id).await,
        E::AddGroupOwner(id) => add_related(ctx, GroupRelation::Owner, &id).await,
        E::RemoveGroupOwner(id, owner) => remove_related(ctx, GroupRelation::Owner, &id, &owner).await,
        E::CheckMemberGroups(collection, id) => check_member_groups(ctx, collection, &id).await,
        E::GetMemberGroups(collection, id) => get_member_groups(ctx, collection, &id).await,
        E::MethodNotAllowed(m) => Err(GraphError::method_not_allowed(&m)),
    }
}

pub(super) fn with_context(context: String, mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.insert("@odata.context".into(), json!(context));
    }
    v
}

pub(super) fn display_name(body: &Value) -> GraphResult<String> {
    body["displayName"]
        .as_str()
        .map(str::trim)
        .filter(|n| !n.is_empty() && n.len() <= 256)
        .map(str::to_string)
        .ok_or_else(|| GraphError::bad_request("Property 'displayName' is required and must be 1-256 characters."))
}

pub(super) fn refuse_builtin(sp: &ServicePrincipal) -> GraphResult<()> {
    match &sp.builtin {
        Some(b) => Err(GraphError::denied(format!(
            "'{}' is Wharf's built-in service principal '{b}': it cannot be changed or deleted.",
            sp.display_name
        ))),
        None => Ok(()),
    }
}

/// Revokes a principal's tokens, then waits for the next whole second: revocation cutoffs
/// compare with `iat` in whole seconds, so a token issued within the same second would be
/// refused too. After the wait, tokens issued to the principal's new credentials are valid.
pub(super) async fn revoke_now(state: &AppState, principal_id: &str) -> GraphResult<()> {
    state.identity.revoke_before_now(&*state.meta, principal_id).await.map_err(|e| {
        tracing::error!(error = %e, "revoking tokens failed");
        GraphError::new(GraphCode::Internal, "Internal error while revoking tokens.")
    })?;
    let nanos = chrono::Utc::now().timestamp_subsec_nanos() as u64;
    tokio::time::sleep(std::time::Duration::from_nanos(1_000_000_000 - nanos.min(999_999_999) + 1_000_000)).await;
    Ok(())
}
