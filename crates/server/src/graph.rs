//! The Microsoft Graph subset that az and Wharf's CLI use to manage the directory:
//! users, applications, service principals and security groups under `/v1.0/`.
//!
//! Owns: parsing Graph requests into a [`GraphEndpoint`], Graph's JSON shapes and errors
//! (`{"error":{"code","message","innerError"}}`), and the `$filter` forms az sends.
//! Must never: store a secret in plaintext (the directory keeps argon2id hashes; `secretText`
//! appears once, in the `addPassword` response), or answer a caller without a Graph-audience
//! bearer token.
//!
//! Applications and service principals share one directory record (see `auth::directory`):
//! `POST /applications` registers the application, `POST /servicePrincipals {appId}` creates
//! its service principal, `DELETE /servicePrincipals/{id}` removes only the service principal
//! (the application stays), `DELETE /applications/{id}` removes both. Managed identities appear
//! as service principals of type `ManagedIdentity`, read-only (they live and die with their
//! ARM resources). Built-in service principals (trusted services) cannot get secrets or be
//! deleted. Any signed-in principal may read the directory; changing it needs the right to
//! assign roles at the subscription (see [`DIRECTORY_WRITE_ACTION`]).
//!
//! Groups are security groups (`securityEnabled`, not mail-enabled). Members may be users,
//! service principals (managed identities included) and other groups; `checkMemberGroups` and
//! `getMemberGroups` answer with the same transitive expansion that authorization uses
//! (`authz::Authz::transitive_groups`), and every membership change reloads it before the
//! response, so the next token request sees it.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use wharf_identity::Audience;

use crate::arm::resources::{self, ManagedIdentityObject};
use crate::auth::directory::{self, Group, GroupRelation, MemberKind, ServicePrincipal, User};
use crate::state::AppState;

/// A Graph request, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphEndpoint {
    Me,
    Users,
    User(String),
    Applications,
    Application(String),
    /// `POST /applications/{id}/addPassword` or `/servicePrincipals/{id}/addPassword`.
    AddPassword(SecretHolder, String),
    /// `POST /applications/{id}/removePassword` or `/servicePrincipals/{id}/removePassword`.
    RemovePassword(SecretHolder, String),
    ServicePrincipals,
    ServicePrincipal(String),
    GetByIds,
    Groups,
    Group(String),
    /// `GET /groups/{id}/members`.
    GroupMembers(String),
    /// `POST /groups/{id}/members/$ref`.
    AddGroupMember(String),
    /// `DELETE /groups/{id}/members/{memberId}/$ref`.
    RemoveGroupMember(String, String),
    /// `GET /groups/{id}/owners`.
    GroupOwners(String),
    /// `POST /groups/{id}/owners/$ref`.
    AddGroupOwner(String),
    /// `DELETE /groups/{id}/owners/{ownerId}/$ref`.
    RemoveGroupOwner(String, String),
    /// `POST /{collection}/{id}/checkMemberGroups`.
    CheckMemberGroups(ObjectCollection, String),
    /// `POST /{collection}/{id}/getMemberGroups`.
    GetMemberGroups(ObjectCollection, String),
}

/// Which object a secret is added to or removed from. Entra keeps one list of secrets on the
/// application and another on its service principal (`az ad app credential …` and `az ad sp
/// credential …`); Wharf keeps one per application/service-principal pair, reached through
/// either (docs/decisions.md, "One secret list per application").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretHolder {
    Application,
    ServicePrincipal,
}

/// The collection a directory object is addressed through; `directoryObjects` names any kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectCollection {
    DirectoryObjects,
    Users,
    ServicePrincipals,
    Groups,
}

impl ObjectCollection {
    fn parse(seg: &str) -> Option<ObjectCollection> {
        [
            ("directoryObjects", ObjectCollection::DirectoryObjects),
            ("users", ObjectCollection::Users),
            ("servicePrincipals", ObjectCollection::ServicePrincipals),
            ("groups", ObjectCollection::Groups),
        ]
        .into_iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(seg))
        .map(|(_, c)| c)
    }

    fn admits(self, kind: MemberKind) -> bool {
        match self {
            ObjectCollection::DirectoryObjects => true,
            ObjectCollection::Users => kind == MemberKind::User,
            ObjectCollection::ServicePrincipals => kind == MemberKind::ServicePrincipal,
            ObjectCollection::Groups => kind == MemberKind::Group,
        }
    }
}

impl GraphEndpoint {
    pub fn parse(path: &str) -> Option<GraphEndpoint> {
        let rest = path.strip_prefix("/v1.0/")?;
        let segs: Vec<String> = rest
            .trim_end_matches('/')
            .split('/')
            .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
            .collect();
        let is = |i: usize, kw: &str| segs.get(i).is_some_and(|s| s.eq_ignore_ascii_case(kw));
        let seg = |i: usize| segs[i].clone();
        Some(match segs.len() {
            1 if is(0, "me") => GraphEndpoint::Me,
            1 if is(0, "users") => GraphEndpoint::Users,
            2 if is(0, "users") => GraphEndpoint::User(seg(1)),
            1 if is(0, "applications") => GraphEndpoint::Applications,
            2 if is(0, "applications") => GraphEndpoint::Application(seg(1)),
            3 if is(0, "applications") && is(2, "addPassword") => {
                GraphEndpoint::AddPassword(SecretHolder::Application, seg(1))
            }
            3 if is(0, "applications") && is(2, "removePassword") => {
                GraphEndpoint::RemovePassword(SecretHolder::Application, seg(1))
            }
            3 if is(0, "servicePrincipals") && is(2, "addPassword") => {
                GraphEndpoint::AddPassword(SecretHolder::ServicePrincipal, seg(1))
            }
            3 if is(0, "servicePrincipals") && is(2, "removePassword") => {
                GraphEndpoint::RemovePassword(SecretHolder::ServicePrincipal, seg(1))
            }
            1 if is(0, "servicePrincipals") => GraphEndpoint::ServicePrincipals,
            2 if is(0, "servicePrincipals") => GraphEndpoint::ServicePrincipal(seg(1)),
            2 if is(0, "directoryObjects") && is(1, "getByIds") => GraphEndpoint::GetByIds,
            1 if is(0, "groups") => GraphEndpoint::Groups,
            2 if is(0, "groups") => GraphEndpoint::Group(seg(1)),
            3 if is(0, "groups") && is(2, "members") => GraphEndpoint::GroupMembers(seg(1)),
            4 if is(0, "groups") && is(2, "members") && is(3, "$ref") => GraphEndpoint::AddGroupMember(seg(1)),
            5 if is(0, "groups") && is(2, "members") && is(4, "$ref") => {
                GraphEndpoint::RemoveGroupMember(seg(1), seg(3))
            }
            3 if is(0, "groups") && is(2, "owners") => GraphEndpoint::GroupOwners(seg(1)),
            4 if is(0, "groups") && is(2, "owners") && is(3, "$ref") => GraphEndpoint::AddGroupOwner(seg(1)),
            5 if is(0, "groups") && is(2, "owners") && is(4, "$ref") => GraphEndpoint::RemoveGroupOwner(seg(1), seg(3)),
            3 if is(2, "checkMemberGroups") => {
                GraphEndpoint::CheckMemberGroups(ObjectCollection::parse(&segs[0])?, seg(1))
            }
            3 if is(2, "getMemberGroups") => GraphEndpoint::GetMemberGroups(ObjectCollection::parse(&segs[0])?, seg(1)),
            _ => return None,
        })
    }
}

/// A Graph error: status, code and message.
#[derive(Debug, Clone)]
pub struct GraphError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl GraphError {
    fn not_found(what: &str) -> GraphError {
        GraphError {
            status: StatusCode::NOT_FOUND,
            code: "Request_ResourceNotFound",
            message: format!(
                "Resource '{what}' does not exist or one of its queried reference-property objects are not present."
            ),
        }
    }

    fn bad_request(message: impl Into<String>) -> GraphError {
        GraphError { status: StatusCode::BAD_REQUEST, code: "Request_BadRequest", message: message.into() }
    }

    fn denied(message: impl Into<String>) -> GraphError {
        GraphError { status: StatusCode::FORBIDDEN, code: "Authorization_RequestDenied", message: message.into() }
    }

    fn storage(context: &str, e: impl std::fmt::Display) -> GraphError {
        tracing::error!(context, error = %e, "directory storage failure");
        GraphError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "InternalServerError",
            message: format!("Internal error while {context}."),
        }
    }

    fn response(&self) -> Response {
        let body = json!({"error": {
            "code": self.code,
            "message": self.message,
            "innerError": {"date": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true), "request-id": uuid::Uuid::new_v4().to_string()},
        }});
        (self.status, [(http::header::CONTENT_TYPE, "application/json; charset=utf-8")], body.to_string())
            .into_response()
    }
}

type GraphResult<T> = Result<T, GraphError>;

fn respond(status: StatusCode, v: &Value) -> Response {
    (status, [(http::header::CONTENT_TYPE, "application/json; charset=utf-8")], v.to_string()).into_response()
}

/// What a handler gets.
struct GraphCtx {
    state: Arc<AppState>,
    caller: crate::auth::management::ManagementCaller,
    base: String,
    query: HashMap<String, String>,
    body: bytes::Bytes,
}

impl GraphCtx {
    fn json(&self) -> GraphResult<Value> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(json!({}));
        }
        match serde_json::from_slice::<Value>(&self.body) {
            Ok(v) if v.is_object() => Ok(v),
            Ok(_) => Err(GraphError::bad_request("The request body must be a JSON object.")),
            Err(e) => Err(GraphError::bad_request(format!("Unable to read JSON request payload: {e}"))),
        }
    }

    fn context(&self, what: &str) -> String {
        format!("{}/v1.0/$metadata#{what}", self.base)
    }

    fn list(&self, what: &str, mut items: Vec<Value>) -> GraphResult<Response> {
        let filter = Filter::parse(self.query.get("$filter").map(String::as_str).unwrap_or(""))?;
        items.retain(|v| filter.iter().all(|c| c.matches(v)));
        if let Some(top) = self.query.get("$top") {
            let n: usize = top.parse().map_err(|_| GraphError::bad_request(format!("Invalid $top value '{top}'.")))?;
            items.truncate(n);
        }
        Ok(respond(StatusCode::OK, &json!({"@odata.context": self.context(what), "value": items})))
    }
}

pub async fn handle(state: Arc<AppState>, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let Some(endpoint) = GraphEndpoint::parse(parts.uri.path()) else {
        return GraphError {
            status: StatusCode::BAD_REQUEST,
            code: "BadRequest",
            message: format!("Resource not found for the segment '{}'.", parts.uri.path()),
        }
        .response();
    };
    let caller = match crate::auth::management::authenticate(&state, &parts.headers, Audience::Graph) {
        Ok(c) => c,
        Err(e) => {
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::UNAUTHORIZED);
            let mut resp = GraphError { status, code: "InvalidAuthenticationToken", message: e.message }.response();
            resp.headers_mut().insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
            return resp;
        }
    };
    let Ok(body) = axum::body::to_bytes(body, 1024 * 1024).await else {
        return GraphError::bad_request("The request body is too large.").response();
    };
    let ctx = GraphCtx {
        base: state.base_url(&parts.headers),
        query: crate::oci::parse_query(parts.uri.query()),
        state,
        caller,
        body,
    };
    match dispatch(&ctx, &parts.method, endpoint).await {
        Ok(r) => r,
        Err(e) => e.response(),
    }
}

/// The management action whose holders at the subscription may change the directory: the
/// right to assign roles (Owner, User Access Administrator). Reading needs only sign-in.
pub const DIRECTORY_WRITE_ACTION: &str = "Microsoft.Authorization/roleAssignments/write";

/// Directory writes (creating users and service principals, adding secrets, deleting) need
/// [`DIRECTORY_WRITE_ACTION`] at the subscription: whoever may create a service principal with
/// a secret and assign it roles could otherwise raise their own access.
/// `owned_group`: the group whose owners could also make the change (the caller is not one).
fn require_directory_write(ctx: &GraphCtx, owned_group: Option<&str>) -> GraphResult<()> {
    let scope = format!("/subscriptions/{}", ctx.state.subscription_id);
    let decision = ctx.state.authz.authorize_action(ctx.caller.object_id(), &scope, DIRECTORY_WRITE_ACTION);
    if decision.is_allowed() {
        return Ok(());
    }
    let not_owner = owned_group.map(|g| format!("not an owner of group {g}")).unwrap_or_default();
    tracing::warn!(caller = %ctx.caller.object_id(), action = DIRECTORY_WRITE_ACTION, scope, explanation = %decision.explain(), not_owner, "directory change denied");
    Err(GraphError::denied("Insufficient privileges to complete the operation."))
}

async fn dispatch(ctx: &GraphCtx, method: &Method, endpoint: GraphEndpoint) -> GraphResult<Response> {
    use GraphEndpoint as E;
    // Graph's read-only actions are POSTs: they change nothing and need only sign-in.
    let read_only =
        *method == Method::GET || matches!(endpoint, E::GetByIds | E::CheckMemberGroups(..) | E::GetMemberGroups(..));
    // A group's owners may change its members and owners, and delete it, without directory
    // rights (as in Entra).
    let owned_group = match (method, &endpoint) {
        (_, E::AddGroupMember(g) | E::RemoveGroupMember(g, _) | E::AddGroupOwner(g) | E::RemoveGroupOwner(g, _)) => {
            Some(g.as_str())
        }
        (&Method::DELETE, E::Group(g)) => Some(g.as_str()),
        _ => None,
    };
    if !read_only && !caller_owns(ctx, owned_group).await? {
        require_directory_write(ctx, owned_group)?;
    }
    match (method, endpoint) {
        (&Method::GET, E::Me) => {
            let user = directory::get_user(&*ctx.state.meta, ctx.caller.object_id())
                .await
                .map_err(|e| GraphError::storage("reading a user", e))?;
            let user = user.ok_or_else(|| {
                GraphError::bad_request("/me is only valid with a user's token: the caller is not a user.")
            })?;
            Ok(respond(StatusCode::OK, &with_context(ctx.context("users/$entity"), user_json(&user))))
        }
        (&Method::GET, E::Users) => {
            let users =
                directory::list_users(&*ctx.state.meta).await.map_err(|e| GraphError::storage("listing users", e))?;
            ctx.list("users", users.iter().map(user_json).collect())
        }
        (&Method::POST, E::Users) => create_user(ctx).await,
        (&Method::GET, E::User(id)) => {
            let u = find_user(ctx, &id).await?;
            Ok(respond(StatusCode::OK, &with_context(ctx.context("users/$entity"), user_json(&u))))
        }
        (&Method::PATCH, E::User(id)) => update_user(ctx, &id).await,
        (&Method::DELETE, E::User(id)) => {
            let u = find_user(ctx, &id).await?;
            directory::delete_user(&*ctx.state.meta, &u.id)
                .await
                .map_err(|e| GraphError::storage("deleting a user", e))?;
            leave_all_groups(ctx, &u.id).await?;
            revoke_now(&ctx.state, &u.id).await?;
            tracing::info!(user = %u.user_principal_name, by = %ctx.caller.object_id(), "deleted a user");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (&Method::GET, E::Applications) => {
            let apps = directory::list_apps(&*ctx.state.meta)
                .await
                .map_err(|e| GraphError::storage("listing applications", e))?;
            ctx.list("applications", apps.iter().filter(|a| a.builtin.is_none()).map(app_json).collect())
        }
        (&Method::POST, E::Applications) => {
            let body = ctx.json()?;
            let name = display_name(&body)?;
            let app = directory::create_application(&*ctx.state.meta, &name)
                .await
                .map_err(|e| GraphError::storage("creating an application", e))?;
            tracing::info!(app_id = %app.app_id, by = %ctx.caller.object_id(), "registered an application");
            Ok(respond(StatusCode::CREATED, &with_context(ctx.context("applications/$entity"), app_json(&app))))
        }
        (&Method::PATCH, E::Application(id)) => update_application(ctx, &id).await,
        (&Method::GET, E::Application(id)) => {
            let app = find_app(ctx, &id).await?;
            Ok(respond(StatusCode::OK, &with_context(ctx.context("applications/$entity"), app_json(&app))))
        }
        (&Method::DELETE, E::Application(id)) => {
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
        (&Method::POST, E::AddPassword(holder, id)) => add_password(ctx, holder, &id).await,
        (&Method::POST, E::RemovePassword(holder, id)) => remove_password(ctx, holder, &id).await,
        (&Method::GET, E::ServicePrincipals) => {
            let mut items: Vec<Value> = directory::list_sps(&*ctx.state.meta)
                .await
                .map_err(|e| GraphError::storage("listing service principals", e))?
                .iter()
                .map(|sp| sp_json(&ctx.state, sp))
                .collect();
            let mis = resources::managed_identities(&*ctx.state.meta)
                .await
                .map_err(|e| GraphError::storage("listing managed identities", e))?;
            items.extend(mis.iter().map(|m| mi_json(&ctx.state, m)));
            ctx.list("servicePrincipals", items)
        }
        (&Method::POST, E::ServicePrincipals) => create_sp(ctx).await,
        (&Method::PATCH, E::ServicePrincipal(id)) => update_service_principal(ctx, &id).await,
        (&Method::GET, E::ServicePrincipal(id)) => {
            let v = match find_sp(ctx, &id).await? {
                SpOrMi::Sp(sp) => sp_json(&ctx.state, &sp),
                SpOrMi::Mi(mi) => mi_json(&ctx.state, &mi),
            };
            Ok(respond(StatusCode::OK, &with_context(ctx.context("servicePrincipals/$entity"), v)))
        }
        (&Method::DELETE, E::ServicePrincipal(id)) => match find_sp(ctx, &id).await? {
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
        (&Method::POST, E::GetByIds) => get_by_ids(ctx).await,
        (&Method::GET, E::Groups) => {
            let groups =
                directory::list_groups(&*ctx.state.meta).await.map_err(|e| GraphError::storage("listing groups", e))?;
            ctx.list("groups", groups.iter().map(group_json).collect())
        }
        (&Method::POST, E::Groups) => create_group(ctx).await,
        (&Method::GET, E::Group(id)) => {
            let g = find_group(ctx, &id).await?;
            Ok(respond(StatusCode::OK, &with_context(ctx.context("groups/$entity"), group_json(&g))))
        }
        (&Method::DELETE, E::Group(id)) => {
            let g = find_group(ctx, &id).await?;
            directory::delete_group(&*ctx.state.meta, &g.id)
                .await
                .map_err(|e| GraphError::storage("deleting a group", e))?;
            reload_authz(ctx).await?;
            tracing::info!(group = %g.id, name = %g.display_name, by = %ctx.caller.object_id(), "deleted a group");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (&Method::GET, E::GroupMembers(id)) => list_related(ctx, GroupRelation::Member, &id).await,
        (&Method::POST, E::AddGroupMember(id)) => add_related(ctx, GroupRelation::Member, &id).await,
        (&Method::DELETE, E::RemoveGroupMember(id, member)) => {
            remove_related(ctx, GroupRelation::Member, &id, &member).await
        }
        (&Method::GET, E::GroupOwners(id)) => list_related(ctx, GroupRelation::Owner, &id).await,
        (&Method::POST, E::AddGroupOwner(id)) => add_related(ctx, GroupRelation::Owner, &id).await,
        (&Method::DELETE, E::RemoveGroupOwner(id, owner)) => {
            remove_related(ctx, GroupRelation::Owner, &id, &owner).await
        }
        (&Method::POST, E::CheckMemberGroups(collection, id)) => check_member_groups(ctx, collection, &id).await,
        (&Method::POST, E::GetMemberGroups(collection, id)) => get_member_groups(ctx, collection, &id).await,
        (m, _) => Err(GraphError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: "Request_BadRequest",
            message: format!("The method '{m}' is not supported on this resource."),
        }),
    }
}

fn with_context(context: String, mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.insert("@odata.context".into(), json!(context));
    }
    v
}

fn display_name(body: &Value) -> GraphResult<String> {
    body["displayName"]
        .as_str()
        .map(str::trim)
        .filter(|n| !n.is_empty() && n.len() <= 256)
        .map(str::to_string)
        .ok_or_else(|| GraphError::bad_request("Property 'displayName' is required and must be 1-256 characters."))
}

fn refuse_builtin(sp: &ServicePrincipal) -> GraphResult<()> {
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
async fn revoke_now(state: &AppState, principal_id: &str) -> GraphResult<()> {
    state
        .identity
        .revoke_before_now(&*state.meta, principal_id)
        .await
        .map_err(|e| GraphError::storage("revoking tokens", e))?;
    let nanos = chrono::Utc::now().timestamp_subsec_nanos() as u64;
    tokio::time::sleep(std::time::Duration::from_nanos(1_000_000_000 - nanos.min(999_999_999) + 1_000_000)).await;
    Ok(())
}

// ---- users ----

fn user_json(u: &User) -> Value {
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

async fn find_user(ctx: &GraphCtx, id_or_upn: &str) -> GraphResult<User> {
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
fn patch_properties<'a>(
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

fn bool_property(props: &serde_json::Map<String, Value>, name: &str) -> GraphResult<Option<bool>> {
    match props.get(name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(GraphError::bad_request(format!("Property '{name}' must be true or false, not {v}."))),
    }
}

/// `PATCH /users/{id}` (`az ad user update`): display name, password, enabled. Disabling a
/// user or setting a new password revokes every token it holds.
async fn update_user(ctx: &GraphCtx, id: &str) -> GraphResult<Response> {
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
        ctx.state.identity.cache.lock().expect("auth cache lock").clear();
        revoke_now(&ctx.state, &user.id).await?;
    }
    tracing::info!(upn = %user.user_principal_name, changed = ?props.keys().collect::<Vec<_>>(), revoked = revoke, by = %ctx.caller.object_id(), "updated a user");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PATCH /applications/{id}` (`az ad app update`): the display name (shared with the service
/// principal).
async fn update_application(ctx: &GraphCtx, id: &str) -> GraphResult<Response> {
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
async fn update_service_principal(ctx: &GraphCtx, id: &str) -> GraphResult<Response> {
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
        ctx.state.identity.cache.lock().expect("auth cache lock").clear();
        revoke_now(&ctx.state, &sp.id).await?;
    }
    tracing::info!(app_id = %sp.app_id, enabled = sp.account_enabled, revoked = revoke, by = %ctx.caller.object_id(), "updated a service principal");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Minimum length of a user's password.
pub const MIN_PASSWORD_LEN: usize = 8;

async fn create_user(ctx: &GraphCtx) -> GraphResult<Response> {
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

// ---- applications and service principals ----

fn credentials_json(sp: &ServicePrincipal) -> Value {
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

fn app_json(app: &ServicePrincipal) -> Value {
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

fn sp_json(state: &AppState, sp: &ServicePrincipal) -> Value {
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

fn mi_json(state: &AppState, mi: &ManagedIdentityObject) -> Value {
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
async fn find_app(ctx: &GraphCtx, id: &str) -> GraphResult<ServicePrincipal> {
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

enum SpOrMi {
    Sp(ServicePrincipal),
    Mi(ManagedIdentityObject),
}

async fn find_sp(ctx: &GraphCtx, id: &str) -> GraphResult<SpOrMi> {
    let meta = &*ctx.state.meta;
    if let Some(sp) =
        directory::get_sp(meta, id).await.map_err(|e| GraphError::storage("reading a service principal", e))?
    {
        return Ok(SpOrMi::Sp(sp));
    }
    match resources::find_managed_identity(meta, id)
        .await
        .map_err(|e| GraphError::storage("reading a managed identity", e))?
    {
        Some(mi) => Ok(SpOrMi::Mi(mi)),
        None => Err(GraphError::not_found(id)),
    }
}

async fn create_sp(ctx: &GraphCtx) -> GraphResult<Response> {
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
        return Err(GraphError {
            status: StatusCode::CONFLICT,
            code: "Request_MultipleObjectsWithSameKeyValue",
            message: format!(
                "The service principal cannot be created, updated, or restored because the service principal name {app_id} is already in use."
            ),
        });
    }
    app.service_principal_created = true;
    app.account_enabled = body["accountEnabled"] != json!(false);
    directory::save_sp(meta, &app, false).await.map_err(|e| GraphError::storage("creating a service principal", e))?;
    tracing::info!(app_id = %app.app_id, by = %ctx.caller.object_id(), "created a service principal");
    Ok(respond(StatusCode::CREATED, &with_context(ctx.context("servicePrincipals/$entity"), sp_json(&ctx.state, &app))))
}

/// The application/service-principal pair whose secrets `holder` `id` names.
async fn find_secret_holder(ctx: &GraphCtx, holder: SecretHolder, id: &str) -> GraphResult<ServicePrincipal> {
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

async fn add_password(ctx: &GraphCtx, holder: SecretHolder, id: &str) -> GraphResult<Response> {
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
    ctx.state.identity.cache.lock().expect("auth cache lock").clear();
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
async fn remove_password(ctx: &GraphCtx, holder: SecretHolder, id: &str) -> GraphResult<Response> {
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

async fn get_by_ids(ctx: &GraphCtx) -> GraphResult<Response> {
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
    let lookup = Lookup::new(ctx).await?;
    let mut out = vec![];
    for id in &ids {
        if let Some(o) = lookup.find(id).await?
            && wants(o.kind())
        {
            out.push(o.typed_json(&ctx.state));
        }
    }
    Ok(respond(StatusCode::OK, &json!({"@odata.context": ctx.context("directoryObjects"), "value": out})))
}

// ---- groups ----

/// A directory object of any kind Wharf has, as found by object id.
enum DirectoryObject {
    User(User),
    Sp(ServicePrincipal),
    Mi(ManagedIdentityObject),
    Group(Group),
}

impl DirectoryObject {
    fn kind(&self) -> MemberKind {
        match self {
            DirectoryObject::User(_) => MemberKind::User,
            DirectoryObject::Sp(_) | DirectoryObject::Mi(_) => MemberKind::ServicePrincipal,
            DirectoryObject::Group(_) => MemberKind::Group,
        }
    }

    fn id(&self) -> &str {
        match self {
            DirectoryObject::User(u) => &u.id,
            DirectoryObject::Sp(sp) => &sp.id,
            DirectoryObject::Mi(mi) => &mi.object_id,
            DirectoryObject::Group(g) => &g.id,
        }
    }

    /// The object's Graph shape with its `@odata.type`, as collections of directory objects
    /// (`getByIds`, `members`) show it.
    fn typed_json(&self, state: &AppState) -> Value {
        let (mut v, t) = match self {
            DirectoryObject::User(u) => (user_json(u), "#microsoft.graph.user"),
            DirectoryObject::Sp(sp) => (sp_json(state, sp), "#microsoft.graph.servicePrincipal"),
            DirectoryObject::Mi(mi) => (mi_json(state, mi), "#microsoft.graph.servicePrincipal"),
            DirectoryObject::Group(g) => (group_json(g), "#microsoft.graph.group"),
        };
        if let Value::Object(m) = &mut v {
            m.insert("@odata.type".into(), json!(t));
        }
        v
    }
}

/// Finds directory objects by object id; managed identities are listed once per request.
struct Lookup<'a> {
    ctx: &'a GraphCtx,
    mis: Vec<ManagedIdentityObject>,
}

impl Lookup<'_> {
    async fn new(ctx: &GraphCtx) -> GraphResult<Lookup<'_>> {
        let mis = resources::managed_identities(&*ctx.state.meta)
            .await
            .map_err(|e| GraphError::storage("listing managed identities", e))?;
        Ok(Lookup { ctx, mis })
    }

    async fn find(&self, id: &str) -> GraphResult<Option<DirectoryObject>> {
        let meta = &*self.ctx.state.meta;
        if let Some(u) = directory::get_user(meta, id).await.map_err(|e| GraphError::storage("reading a user", e))? {
            return Ok(Some(DirectoryObject::User(u)));
        }
        if let Some(sp) =
            directory::get_sp(meta, id).await.map_err(|e| GraphError::storage("reading a service principal", e))?
        {
            return Ok(Some(DirectoryObject::Sp(sp)));
        }
        if let Some(mi) = self.mis.iter().find(|m| m.object_id.eq_ignore_ascii_case(id)) {
            return Ok(Some(DirectoryObject::Mi(mi.clone())));
        }
        let group = directory::get_group(meta, id).await.map_err(|e| GraphError::storage("reading a group", e))?;
        Ok(group.map(DirectoryObject::Group))
    }
}

/// Entra's `securityIdentifier` of an object id: `S-1-12-1-` and the GUID's 16 bytes (in
/// Microsoft's mixed-endian order) read as four little-endian 32-bit numbers.
pub fn security_identifier(object_id: &str) -> Option<String> {
    let bytes = uuid::Uuid::parse_str(object_id).ok()?.to_bytes_le();
    let parts: Vec<String> =
        bytes.chunks(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]).to_string()).collect();
    Some(format!("S-1-12-1-{}", parts.join("-")))
}

fn group_json(g: &Group) -> Value {
    json!({
        "id": g.id,
        "deletedDateTime": Value::Null,
        "classification": Value::Null,
        "createdDateTime": g.created_date_time,
        "creationOptions": [],
        "description": g.description,
        "displayName": g.display_name,
        "expirationDateTime": Value::Null,
        "groupTypes": [],
        "isAssignableToRole": Value::Null,
        "mail": Value::Null,
        "mailEnabled": g.mail_enabled,
        "mailNickname": g.mail_nickname,
        "membershipRule": Value::Null,
        "membershipRuleProcessingState": Value::Null,
        "onPremisesSyncEnabled": Value::Null,
        "preferredDataLocation": Value::Null,
        "preferredLanguage": Value::Null,
        "proxyAddresses": [],
        "renewedDateTime": g.created_date_time,
        "resourceBehaviorOptions": [],
        "resourceProvisioningOptions": [],
        "securityEnabled": g.security_enabled,
        "securityIdentifier": security_identifier(&g.id),
        "theme": Value::Null,
        "visibility": Value::Null,
        "onPremisesProvisioningErrors": [],
        "serviceProvisioningErrors": [],
    })
}

/// Object ids in paths must be GUIDs, as in Graph (which answers 400 before looking).
fn object_id_param(id: &str) -> GraphResult<String> {
    uuid::Uuid::parse_str(id)
        .map(|u| u.to_string())
        .map_err(|_| GraphError::bad_request(format!("Invalid object identifier '{id}'.")))
}

async fn find_group(ctx: &GraphCtx, id: &str) -> GraphResult<Group> {
    let oid = object_id_param(id)?;
    directory::get_group(&*ctx.state.meta, &oid)
        .await
        .map_err(|e| GraphError::storage("reading a group", e))?
        .ok_or_else(|| GraphError::not_found(id))
}

async fn reload_authz(ctx: &GraphCtx) -> GraphResult<()> {
    ctx.state.authz.reload(&*ctx.state.meta).await.map_err(|e| GraphError::storage("reloading group memberships", e))
}

/// A deleted principal leaves every group it was in (as in Entra), and authorization forgets it.
async fn leave_all_groups(ctx: &GraphCtx, object_id: &str) -> GraphResult<()> {
    directory::remove_from_all_groups(&*ctx.state.meta, object_id)
        .await
        .map_err(|e| GraphError::storage("removing group memberships", e))?;
    reload_authz(ctx).await
}

/// Graph's `mailNickname` rule: 1-64 ASCII characters, none of `@ ( ) \ [ ] " ; : < > ,` or space.
fn valid_mail_nickname(n: &str) -> bool {
    (1..=64).contains(&n.len())
        && n.chars().all(|c| c.is_ascii() && !c.is_ascii_control() && !"@()\\[]\";:<>, ".contains(c))
}

async fn create_group(ctx: &GraphCtx) -> GraphResult<Response> {
    let body = ctx.json()?;
    let name = display_name(&body)?;
    let nickname = body["mailNickname"].as_str().unwrap_or_default();
    if !valid_mail_nickname(nickname) {
        return Err(GraphError::bad_request(format!(
            "Invalid value specified for property 'mailNickname' of resource 'Group': '{nickname}' must be 1-64 ASCII characters without spaces or any of @()\\[]\";:<>,."
        )));
    }
    let unified = body["groupTypes"].as_array().is_some_and(|t| !t.is_empty());
    if body["mailEnabled"] == json!(true) || body["securityEnabled"] == json!(false) || unified {
        return Err(GraphError::bad_request(
            "Wharf's directory has security groups only: use mailEnabled false, securityEnabled true and no groupTypes.",
        ));
    }
    let description = match &body["description"] {
        Value::Null => None,
        Value::String(d) if d.chars().count() <= 1024 => Some(d.clone()),
        _ => {
            return Err(GraphError::bad_request("Property 'description' must be a string of at most 1024 characters."));
        }
    };
    let group = directory::create_group(&*ctx.state.meta, &name, nickname, description)
        .await
        .map_err(|e| GraphError::storage("creating a group", e))?;
    tracing::info!(group = %group.id, name = %group.display_name, by = %ctx.caller.object_id(), "created a group");
    Ok(respond(StatusCode::CREATED, &with_context(ctx.context("groups/$entity"), group_json(&group))))
}

/// A group's direct members, or its owners, each as its typed directory object.
async fn list_related(ctx: &GraphCtx, relation: GroupRelation, id: &str) -> GraphResult<Response> {
    let g = find_group(ctx, id).await?;
    let related = directory::related(&*ctx.state.meta, relation, &g.id)
        .await
        .map_err(|e| GraphError::storage("listing a group's members or owners", e))?;
    let lookup = Lookup::new(ctx).await?;
    let mut items = vec![];
    for m in &related {
        // An object that is gone (a managed identity deleted with its resource) is not shown.
        if let Some(o) = lookup.find(&m.member_id).await? {
            items.push(o.typed_json(&ctx.state));
        }
    }
    ctx.list("directoryObjects", items)
}

/// The object id at the end of an `@odata.id` reference (`…/directoryObjects/{id}`, or the
/// `users`, `servicePrincipals` and `groups` forms).
fn referenced_id(body: &Value) -> GraphResult<String> {
    let Some(url) = body["@odata.id"].as_str() else {
        return Err(GraphError::bad_request(
            "The request body must reference the new member with '@odata.id', e.g. https://graph.microsoft.com/v1.0/directoryObjects/{id}.",
        ));
    };
    let last = url.trim_end_matches('/').rsplit('/').next().unwrap_or_default();
    object_id_param(last)
}

/// `POST /groups/{id}/members/$ref` or `…/owners/$ref`. Members are users, service principals
/// (managed identities included) or other groups, never the group itself; owners are users or
/// service principals (Entra's rule: groups cannot own groups).
async fn add_related(ctx: &GraphCtx, relation: GroupRelation, id: &str) -> GraphResult<Response> {
    let g = find_group(ctx, id).await?;
    let object_id = referenced_id(&ctx.json()?)?;
    let Some(object) = Lookup::new(ctx).await?.find(&object_id).await? else {
        return Err(GraphError::not_found(&object_id));
    };
    match relation {
        GroupRelation::Member if object.id().eq_ignore_ascii_case(&g.id) => {
            return Err(GraphError::bad_request("A group cannot be a member of itself."));
        }
        GroupRelation::Owner if object.kind() == MemberKind::Group => {
            return Err(GraphError::bad_request("A group cannot own a group: owners are users or service principals."));
        }
        _ => {}
    }
    match directory::relate(&*ctx.state.meta, relation, &g.id, object.id(), object.kind()).await {
        Ok(()) => {}
        Err(wharf_storage::StorageError::Conflict(_)) => {
            return Err(GraphError::bad_request(format!(
                "One or more added object references already exist for the following modified properties: '{}'.",
                relation.segment()
            )));
        }
        Err(e) => return Err(GraphError::storage("adding a group member or owner", e)),
    }
    reload_authz(ctx).await?;
    tracing::info!(group = %g.id, object = %object.id(), kind = ?object.kind(), relation = relation.segment(), by = %ctx.caller.object_id(), "added to a group");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /groups/{id}/members/{objectId}/$ref` or `…/owners/{objectId}/$ref`.
async fn remove_related(ctx: &GraphCtx, relation: GroupRelation, id: &str, object: &str) -> GraphResult<Response> {
    let g = find_group(ctx, id).await?;
    let object_id = object_id_param(object)?;
    let removed = directory::unrelate(&*ctx.state.meta, relation, &g.id, &object_id)
        .await
        .map_err(|e| GraphError::storage("removing a group member or owner", e))?;
    if !removed {
        return Err(GraphError::not_found(object));
    }
    reload_authz(ctx).await?;
    tracing::info!(group = %g.id, object = %object_id, relation = relation.segment(), by = %ctx.caller.object_id(), "removed from a group");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Whether the caller owns `group` (false when there is no group in question or it does not
/// exist; the handler then answers for the missing group).
async fn caller_owns(ctx: &GraphCtx, group: Option<&str>) -> GraphResult<bool> {
    let Some(group) = group else { return Ok(false) };
    let Ok(gid) = object_id_param(group) else { return Ok(false) };
    directory::is_related(&*ctx.state.meta, GroupRelation::Owner, &gid, ctx.caller.object_id())
        .await
        .map_err(|e| GraphError::storage("reading group owners", e))
}

/// The object that `checkMemberGroups`/`getMemberGroups` ask about, through its collection
/// (`/users/` also takes a user principal name).
async fn member_object(ctx: &GraphCtx, collection: ObjectCollection, id: &str) -> GraphResult<DirectoryObject> {
    if collection == ObjectCollection::Users && id.contains('@') {
        return Ok(DirectoryObject::User(find_user(ctx, id).await?));
    }
    let oid = object_id_param(id)?;
    match Lookup::new(ctx).await?.find(&oid).await? {
        Some(o) if collection.admits(o.kind()) => Ok(o),
        _ => Err(GraphError::not_found(id)),
    }
}

const STRING_COLLECTION: &str = "Collection(Edm.String)";

async fn check_member_groups(ctx: &GraphCtx, collection: ObjectCollection, id: &str) -> GraphResult<Response> {
    let object = member_object(ctx, collection, id).await?;
    let body = ctx.json()?;
    let Some(asked) = body["groupIds"].as_array().filter(|a| (1..=20).contains(&a.len())) else {
        return Err(GraphError::bad_request("'groupIds' must list 1 to 20 group ids."));
    };
    let asked: Vec<&str> = asked
        .iter()
        .map(|v| v.as_str().ok_or_else(|| GraphError::bad_request("'groupIds' must be strings.")))
        .collect::<GraphResult<_>>()?;
    let groups = ctx.state.authz.transitive_groups(object.id());
    let value: Vec<&str> = asked.into_iter().filter(|a| groups.iter().any(|g| g.eq_ignore_ascii_case(a))).collect();
    Ok(respond(StatusCode::OK, &json!({"@odata.context": ctx.context(STRING_COLLECTION), "value": value})))
}

/// Every group the object belongs to, transitively. Wharf's groups are all security groups, so
/// `securityEnabledOnly` does not change the answer.
async fn get_member_groups(ctx: &GraphCtx, collection: ObjectCollection, id: &str) -> GraphResult<Response> {
    let object = member_object(ctx, collection, id).await?;
    let body = ctx.json()?;
    if !matches!(body["securityEnabledOnly"], Value::Bool(_) | Value::Null) {
        return Err(GraphError::bad_request("'securityEnabledOnly' must be true or false."));
    }
    let value = ctx.state.authz.transitive_groups(object.id());
    Ok(respond(StatusCode::OK, &json!({"@odata.context": ctx.context(STRING_COLLECTION), "value": value})))
}

// ---- $filter ----

/// One `$filter` clause of the forms az sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `field eq 'value'` (case-insensitive, as Graph compares these properties).
    Eq(String, String),
    /// `startswith(field,'value')`.
    StartsWith(String, String),
    /// `servicePrincipalNames/any(c:c eq 'value')`.
    AnyServicePrincipalName(String),
}

impl Filter {
    /// Parses clauses joined by ` and `.
    pub fn parse(f: &str) -> GraphResult<Vec<Filter>> {
        let f = f.trim();
        if f.is_empty() {
            return Ok(vec![]);
        }
        f.split(" and ").map(|c| Filter::parse_one(c.trim(), f)).collect()
    }

    fn parse_one(c: &str, whole: &str) -> GraphResult<Filter> {
        let bad = || {
            GraphError::bad_request(format!(
                "Unsupported or invalid query filter clause specified: '{whole}'. Use 'field eq 'value'', startswith(field,'value') or servicePrincipalNames/any(c:c eq 'value')."
            ))
        };
        let quoted = |s: &str| -> Option<String> {
            let s = s.trim();
            (s.len() >= 2 && s.starts_with('\'') && s.ends_with('\'')).then(|| s[1..s.len() - 1].replace("''", "'"))
        };
        let lower = c.to_ascii_lowercase();
        if let Some(rest) = lower.strip_prefix("serviceprincipalnames/any(") {
            // `c:c eq 'value')` — take the value from the original spelling.
            let open = c.len() - rest.len();
            let inner = c[open..].strip_suffix(')').ok_or_else(bad)?;
            let (var, cond) = inner.split_once(':').ok_or_else(bad)?;
            let (lhs, value) = cond.split_once(" eq ").ok_or_else(bad)?;
            if lhs.trim() != var.trim() {
                return Err(bad());
            }
            return quoted(value).map(Filter::AnyServicePrincipalName).ok_or_else(bad);
        }
        if lower.starts_with("startswith(") {
            let inner = c["startswith(".len()..].strip_suffix(')').ok_or_else(bad)?;
            let (field, value) = inner.split_once(',').ok_or_else(bad)?;
            return Ok(Filter::StartsWith(field.trim().to_string(), quoted(value).ok_or_else(bad)?));
        }
        let (field, value) = c.split_once(" eq ").ok_or_else(bad)?;
        let field = field.trim();
        if field.is_empty() || !field.chars().all(|ch| ch.is_ascii_alphanumeric()) {
            return Err(bad());
        }
        // Booleans are compared unquoted (`securityEnabled eq true`).
        let literal = quoted(value).or_else(|| {
            ["true", "false"].into_iter().find(|b| value.trim().eq_ignore_ascii_case(b)).map(str::to_string)
        });
        Ok(Filter::Eq(field.to_string(), literal.ok_or_else(bad)?))
    }

    fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
        v.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    pub fn matches(&self, v: &Value) -> bool {
        let text = |x: &Value| match x {
            Value::String(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        };
        match self {
            Filter::Eq(f, want) => Self::field(v, f).and_then(text).is_some_and(|s| s.eq_ignore_ascii_case(want)),
            Filter::StartsWith(f, want) => Self::field(v, f)
                .and_then(text)
                .is_some_and(|s| s.to_ascii_lowercase().starts_with(&want.to_ascii_lowercase())),
            Filter::AnyServicePrincipalName(want) => v["servicePrincipalNames"]
                .as_array()
                .is_some_and(|a| a.iter().any(|n| n.as_str().is_some_and(|n| n.eq_ignore_ascii_case(want)))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        assert_eq!(GraphEndpoint::parse("/v1.0/users"), Some(GraphEndpoint::Users));
        assert_eq!(GraphEndpoint::parse("/v1.0/users/a%40b.c"), Some(GraphEndpoint::User("a@b.c".into())));
        assert_eq!(
            GraphEndpoint::parse("/v1.0/applications/x/addPassword"),
            Some(GraphEndpoint::AddPassword(SecretHolder::Application, "x".into()))
        );
        assert_eq!(
            GraphEndpoint::parse("/v1.0/servicePrincipals/x/removePassword"),
            Some(GraphEndpoint::RemovePassword(SecretHolder::ServicePrincipal, "x".into()))
        );
        assert_eq!(GraphEndpoint::parse("/v1.0/servicePrincipals/"), Some(GraphEndpoint::ServicePrincipals));
        assert_eq!(GraphEndpoint::parse("/v1.0/directoryObjects/getByIds"), Some(GraphEndpoint::GetByIds));
        assert_eq!(GraphEndpoint::parse("/v1.0/groups"), Some(GraphEndpoint::Groups));
        assert_eq!(GraphEndpoint::parse("/v1.0/groups/g1"), Some(GraphEndpoint::Group("g1".into())));
        assert_eq!(GraphEndpoint::parse("/v1.0/groups/g1/members"), Some(GraphEndpoint::GroupMembers("g1".into())));
        assert_eq!(
            GraphEndpoint::parse("/v1.0/groups/g1/members/$ref"),
            Some(GraphEndpoint::AddGroupMember("g1".into()))
        );
        assert_eq!(
            GraphEndpoint::parse("/v1.0/groups/g1/members/%24ref"),
            Some(GraphEndpoint::AddGroupMember("g1".into()))
        );
        assert_eq!(
            GraphEndpoint::parse("/v1.0/groups/g1/members/m1/$ref"),
            Some(GraphEndpoint::RemoveGroupMember("g1".into(), "m1".into()))
        );
        assert_eq!(GraphEndpoint::parse("/v1.0/groups/g1/members/m1"), None);
        assert_eq!(GraphEndpoint::parse("/v1.0/groups/g1/owners"), Some(GraphEndpoint::GroupOwners("g1".into())));
        assert_eq!(
            GraphEndpoint::parse("/v1.0/groups/g1/owners/$ref"),
            Some(GraphEndpoint::AddGroupOwner("g1".into()))
        );
        assert_eq!(
            GraphEndpoint::parse("/v1.0/groups/g1/owners/o1/$ref"),
            Some(GraphEndpoint::RemoveGroupOwner("g1".into(), "o1".into()))
        );
        assert_eq!(
            GraphEndpoint::parse("/v1.0/directoryObjects/x/checkMemberGroups"),
            Some(GraphEndpoint::CheckMemberGroups(ObjectCollection::DirectoryObjects, "x".into()))
        );
        assert_eq!(
            GraphEndpoint::parse("/v1.0/users/a@b.c/getMemberGroups"),
            Some(GraphEndpoint::GetMemberGroups(ObjectCollection::Users, "a@b.c".into()))
        );
        assert_eq!(
            GraphEndpoint::parse("/v1.0/groups/g1/getMemberGroups"),
            Some(GraphEndpoint::GetMemberGroups(ObjectCollection::Groups, "g1".into()))
        );
        assert_eq!(GraphEndpoint::parse("/v1.0/applications/x/checkMemberGroups"), None);
    }

    #[test]
    fn filters_az_sends() {
        let sp = json!({"appId": "AB", "displayName": "My App", "servicePrincipalNames": ["ab", "/x"]});
        for (f, want) in [
            ("appId eq 'ab'", true),
            ("appId eq 'zz'", false),
            ("servicePrincipalNames/any(c:c eq 'AB')", true),
            ("servicePrincipalNames/any(x:x eq '/x')", true),
            ("servicePrincipalNames/any(c:c eq 'nope')", false),
            ("startswith(displayName,'my')", true),
            ("displayName eq 'My App' and appId eq 'ab'", true),
            ("displayName eq 'It''s'", false),
        ] {
            let parsed = Filter::parse(f).unwrap();
            assert_eq!(parsed.iter().all(|c| c.matches(&sp)), want, "{f}");
        }
        let group = json!({"securityEnabled": true, "mailEnabled": false});
        assert!(
            Filter::parse("securityEnabled eq true and mailEnabled eq false")
                .unwrap()
                .iter()
                .all(|c| c.matches(&group))
        );
        assert!(!Filter::parse("securityEnabled eq false").unwrap().iter().all(|c| c.matches(&group)));
        for bad in ["appId ne 'x'", "appId eq x", "startswith(displayName)", "a/b eq 'x'"] {
            assert!(Filter::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn security_identifiers_read_the_guid_as_four_little_endian_words() {
        // Data1 = 1, Data2 = 2, Data3 = 3, Data4 = 04 00 00 00 05 00 00 00.
        assert_eq!(
            security_identifier("00000001-0002-0003-0400-000005000000").as_deref(),
            Some("S-1-12-1-1-196610-4-5")
        );
        assert_eq!(security_identifier("not-a-guid"), None);
    }

    #[test]
    fn mail_nicknames() {
        for ok in ["devs", "team-a_b.c", &"x".repeat(64)] {
            assert!(valid_mail_nickname(ok), "{ok}");
        }
        for bad in ["", "a b", "a@b", "a(b", "a;b", "ä", &"x".repeat(65)] {
            assert!(!valid_mail_nickname(bad), "{bad}");
        }
    }

    #[test]
    fn member_references() {
        for (url, want) in [
            (
                "https://graph.microsoft.com/v1.0/directoryObjects/6A1B3C8E-0000-4000-8000-000000000001",
                Some("6a1b3c8e-0000-4000-8000-000000000001"),
            ),
            (
                "https://wharf.test/v1.0/users/6a1b3c8e-0000-4000-8000-000000000001/",
                Some("6a1b3c8e-0000-4000-8000-000000000001"),
            ),
            ("https://graph.microsoft.com/v1.0/directoryObjects/nope", None),
        ] {
            assert_eq!(referenced_id(&json!({"@odata.id": url})).ok().as_deref(), want, "{url}");
        }
        assert_eq!(referenced_id(&json!({})).unwrap_err().code, "Request_BadRequest");
    }
}
