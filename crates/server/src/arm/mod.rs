//! The management plane: an ARM-shaped REST API for resource groups, registries, managed
//! identities, hosting resources, the emulated network and `Microsoft.Authorization`.
//!
//! One path for every request: **parse** method and path into an [`ArmEndpoint`] → check the
//! `api-version` and the subscription → **authenticate** the bearer token (management
//! audience) → **authorize** the endpoint's [`Requirement`] (its one permission table, before
//! any store read; listings get the per-item filter) → **route** to the endpoint's handler,
//! which answers ARM JSON or an [`ArmError`]. The registry rules themselves (names, properties,
//! SKU limits) live in `wharf-arm`.

pub mod authorization;
pub mod endpoint;
pub mod error;
pub mod explain;
pub mod groups;
pub mod network;
pub mod registries;
pub mod resources;
pub mod tasks;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use serde_json::Value;
use wharf_arm::ArmError;
use wharf_authz::Scope;

pub use endpoint::{ArmEndpoint, ItemAction, Requirement};

use crate::auth::management::ManagementCaller;
use crate::http::{Query, json_response};
use crate::state::AppState;

/// What a handler gets.
pub struct ArmCtx {
    pub state: Arc<AppState>,
    /// The authenticated caller.
    pub caller: ManagementCaller,
    pub query: Query,
    pub body: bytes::Bytes,
    pub headers: http::HeaderMap,
    /// For listings: which items the caller may see (decided by the endpoint's requirement).
    pub items: ItemFilter,
}

/// The per-item part of a listing's requirement.
pub struct ItemFilter(Option<ItemAction>);

impl ArmCtx {
    /// Whether a listing may show the item with resource id `id` of type `resource_type`.
    pub fn shows(&self, id: &str, resource_type: &str) -> bool {
        let action = match &self.items.0 {
            None => return true,
            Some(ItemAction::Fixed(a)) => a.clone(),
            Some(ItemAction::ReadOfItemType) => format!("{resource_type}/read"),
        };
        Scope::parse(id)
            .is_ok_and(|scope| self.state.authz.authorize_action(self.caller.object_id(), &scope, &action).is_allowed())
    }

    /// ARM's 403 `AuthorizationFailed` unless the caller may perform `action` on `scope`; a
    /// scope that is no ARM scope at all (`a/../b`) is refused as such, whoever asks.
    fn authorize(&self, action: &str, scope: &str) -> Result<(), ArmError> {
        let parsed = Scope::parse(scope).map_err(error::from_scope)?;
        let decision = self.state.authz.authorize_action(self.caller.object_id(), &parsed, action);
        if decision.is_allowed() {
            return Ok(());
        }
        let who = self.caller.display();
        let oid = self.caller.object_id();
        tracing::warn!(caller = %who, object_id = %oid, action, scope, explanation = %decision.explain(), "management call denied");
        Err(ArmError::new(
            403,
            "AuthorizationFailed",
            format!(
                "The client '{who}' with object id '{oid}' does not have authorization to perform action '{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your credentials."
            ),
        ))
    }

    /// The request body as a JSON object (`{}` when empty).
    pub fn json(&self) -> Result<Value, ArmError> {
        body_json(&self.body)
    }
}

fn body_json(body: &[u8]) -> Result<Value, ArmError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ArmError::invalid_request(format!("The request content is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(ArmError::invalid_request("The request content must be a JSON object."));
    }
    Ok(v)
}

/// `api-version` must be present and look like an ARM version (`YYYY-MM-DD[-preview]`).
fn check_api_version(query: &Query, resource_type: &str) -> Result<(), ArmError> {
    let Some(v) = query.get("api-version").filter(|v| !v.is_empty()) else {
        return Err(ArmError::missing_api_version());
    };
    let (date, suffix) = match (v.get(..10), v.get(10..)) {
        (Some(d), Some(s)) => (d, s),
        _ => return Err(ArmError::invalid_api_version(v, resource_type)),
    };
    let date_ok = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok();
    let suffix_ok = suffix.is_empty() || matches!(suffix, "-preview" | "-beta" | "-alpha");
    if date_ok && suffix_ok { Ok(()) } else { Err(ArmError::invalid_api_version(v, resource_type)) }
}

/// Largest management request body accepted.
const MAX_BODY: usize = 1024 * 1024;

pub async fn handle(state: Arc<AppState>, req: Request<Body>) -> Response {
    match dispatch(state, req).await {
        Ok(r) => r,
        Err(e) => error::response(&e),
    }
}

async fn dispatch(state: Arc<AppState>, req: Request<Body>) -> Result<Response, ArmError> {
    let (parts, body) = req.into_parts();
    let (sub, endpoint) = ArmEndpoint::parse(&parts.method, parts.uri.path())?;
    let query = Query::parse(parts.uri.query());
    check_api_version(&query, endpoint.resource_type())?;
    if let Some(sub) = &sub
        && !sub.eq_ignore_ascii_case(&state.subscription_id)
    {
        return Err(ArmError::subscription_not_found(sub));
    }
    let caller = match crate::auth::management::authenticate(
        &state,
        &parts.headers,
        wharf_identity::Audience::Management,
    ) {
        Ok(c) => c,
        // ARM names the authority to get a token from, as `WWW-Authenticate` on every 401.
        Err(e) => {
            let mut resp = error::response(&error::unauthenticated(e));
            let challenge = format!(
                "Bearer authorization_uri=\"{}/{}\", error=\"invalid_token\", error_description=\"The authentication failed because of missing 'Authorization' header or an invalid token.\"",
                state.base_url(&parts.headers),
                state.tenant_id
            );
            if let Ok(v) = http::HeaderValue::from_str(&challenge) {
                resp.headers_mut().insert(http::header::WWW_AUTHENTICATE, v);
            }
            return Ok(resp);
        }
    };
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| ArmError::invalid_request(format!("The request body is larger than {MAX_BODY} bytes.")))?;
    let mut ctx = ArmCtx { state, caller, query, body, headers: parts.headers, items: ItemFilter(None) };
    // Authorize, once, before any store read.
    match endpoint.requirement(&ctx.state.subscription_id) {
        Requirement::Authenticated => {}
        Requirement::Actions(actions) => {
            for (action, scope) in &actions {
                ctx.authorize(action, scope)?;
            }
        }
        Requirement::PerItem(action) => ctx.items = ItemFilter(Some(action)),
        Requirement::Linked { actions, action, pointer } => {
            for (action, scope) in &actions {
                ctx.authorize(action, scope)?;
            }
            // The linked resource is checked as the body names it; a body that names none is
            // the handler's validation error.
            if let Some(linked) =
                ctx.json().ok().and_then(|b| b.pointer(pointer).and_then(Value::as_str).map(str::to_string))
            {
                ctx.authorize(&action, &linked)?;
            }
        }
    }
    route(&ctx, endpoint).await
}

async fn route(ctx: &ArmCtx, endpoint: ArmEndpoint) -> Result<Response, ArmError> {
    use ArmEndpoint as E;
    match endpoint {
        E::ListSubscriptions => Ok(groups::list_subscriptions(ctx)),
        E::ListTenants => {
            let t = &ctx.state.tenant_id;
            Ok(json_response(
                StatusCode::OK,
                &serde_json::json!({"value": [{"id": format!("/tenants/{t}"), "tenantId": t, "tenantCategory": "Home", "displayName": "Wharf", "defaultDomain": "wharf.local"}]}),
            ))
        }
        E::GetSubscription => Ok(json_response(StatusCode::OK, &groups::subscription_json(&ctx.state))),
        E::ListGroups => groups::list(ctx).await,
        E::GetGroup { group } => groups::get(ctx, &group).await,
        E::CheckGroup { group } => groups::exists(ctx, &group).await,
        E::PutGroup { group } => groups::put(ctx, &group).await,
        E::PatchGroup { group } => groups::patch(ctx, &group).await,
        E::DeleteGroup { group } => groups::delete(ctx, &group).await,
        E::ListResources { group } => groups::list_resources(ctx, group.as_deref()).await,
        E::ListRegistries { group } => registries::list(ctx, group.as_deref()).await,
        E::CheckRegistryName => registries::check_name(ctx).await,
        E::ListByType { namespace, type_name } => resources::list_by_type(ctx, &namespace, &type_name).await,
        E::GetRegistry { group, name } => registries::get(ctx, &group, &name).await,
        E::PutRegistry { group, name } => registries::put(ctx, &group, &name).await,
        E::PatchRegistry { group, name } => registries::patch(ctx, &group, &name).await,
        E::DeleteRegistry { group, name } => registries::delete(ctx, &group, &name).await,
        E::RegistryAction { group, name, action } => registries::action(ctx, &group, &name, action).await,
        E::ImportOperation { group, name, operation } => {
            registries::import_status(ctx, &group, &name, &operation).await
        }
        E::Tasks { group, name, endpoint } => tasks::handle(ctx, &group, &name, endpoint).await,
        E::RegistryFeature { group, name, method, rest } => {
            registries::feature(ctx, &group, &name, &method, &rest).await
        }
        E::ListIdentities { group } => resources::identities::list(ctx, &group).await,
        E::GetIdentity(at) => resources::identities::get(ctx, &at).await,
        E::PutIdentity(at) => resources::identities::put(ctx, &at).await,
        E::PatchIdentity(at) => resources::identities::patch(ctx, &at).await,
        E::DeleteIdentity(at) => resources::identities::delete(ctx, &at).await,
        E::ListHosts { group, resource_type } => resources::hosts::list(ctx, &group, resource_type).await,
        E::GetHost { resource_type, at } => resources::hosts::get(ctx, resource_type, &at).await,
        E::PutHost { resource_type, at } => resources::hosts::put(ctx, resource_type, &at).await,
        E::PatchHost { resource_type, at } => resources::hosts::patch(ctx, resource_type, &at).await,
        E::DeleteHost { resource_type, at } => resources::hosts::delete(ctx, resource_type, &at).await,
        E::HostWorkloadEnvironment { resource_type, at } => {
            resources::hosts::workload_environment(ctx, resource_type, &at).await
        }
        E::ListVnets { group } => network::list(ctx, &group, wharf_arm::network::VIRTUAL_NETWORK).await,
        E::GetVnet(at) => network::get_vnet(ctx, &at).await,
        E::PutVnet(at) => network::put_vnet(ctx, &at).await,
        E::DeleteVnet(at) => network::delete_vnet(ctx, &at).await,
        E::ListSubnets { vnet } => network::list_subnets(ctx, &vnet).await,
        E::GetSubnet { vnet, subnet } => network::get_subnet(ctx, &vnet, &subnet).await,
        E::PutSubnet { vnet, subnet } => network::put_subnet(ctx, &vnet, &subnet).await,
        E::DeleteSubnet { vnet, subnet } => network::delete_subnet(ctx, &vnet, &subnet).await,
        E::ListPrivateEndpoints { group } => network::list(ctx, &group, wharf_arm::network::PRIVATE_ENDPOINT).await,
        E::GetPrivateEndpoint(at) => network::get_private_endpoint(ctx, &at).await,
        E::PutPrivateEndpoint(at) => network::put_private_endpoint(ctx, &at).await,
        E::DeletePrivateEndpoint(at) => network::delete_private_endpoint(ctx, &at).await,
        E::UnknownResource { group, namespace, rest } => resources::unknown(ctx, &group, &namespace, &rest).await,
        E::ListRoleAssignments { scope } => authorization::list_assignments(ctx, &scope).await,
        E::GetRoleAssignment { scope, name } => authorization::get_assignment(ctx, &scope, &name).await,
        E::PutRoleAssignment { scope, name } => authorization::put_assignment(ctx, &scope, &name).await,
        E::DeleteRoleAssignment { scope, name } => authorization::delete_assignment(ctx, &scope, &name).await,
        E::ListRoleDefinitions { scope } => authorization::list_definitions(ctx, &scope).await,
        E::GetRoleDefinition { scope, name } => authorization::get_definition(ctx, &scope, &name).await,
        E::PutRoleDefinition { scope, name } => authorization::put_definition(ctx, &scope, &name).await,
        E::DeleteRoleDefinition { scope, name } => authorization::delete_definition(ctx, &scope, &name).await,
        E::MethodNotAllowed { method } => Err(ArmError::method_not_allowed(method.as_str())),
    }
}

/// ACR features whose ARM resources Wharf recognises but does not serve yet: a clear error
/// instead of "no such resource type", so scripts written for ACR fail with the reason.
/// 501 is not retried by azure-core (500, 502, 503 and 504 are).
pub fn not_yet_served(child: &str) -> Option<ArmError> {
    let (feature, instead) = match child.to_ascii_lowercase().as_str() {
        "tasks" | "taskruns" | "runs" | "schedulerun" | "agentpools" | "listbuildsourceuploadurl" => (
            "ACR Tasks",
            "build and push images with podman, buildah or docker, and pull with a managed identity as a workload would",
        ),
        "replications" => ("Geo-replication", "run one Wharf per region"),
        "webhooks" => ("Webhooks", "poll '/acr/v1/_catalog' and tags listings"),
        "scopemaps" | "tokens" => (
            "Repository-scoped tokens",
            "use service principals with Container Registry Repository roles and conditions",
        ),
        "cacherules" | "credentialsets" => ("Artifact cache", "copy images in with 'skopeo copy'"),
        "connectedregistries" => ("Connected registries", "run a second Wharf"),
        _ => return None,
    };
    Some(ArmError::new(
        501,
        "FeatureNotSupported",
        format!(
            "{feature} ({child}) is not available in this version of Wharf; for now, {instead}. See docs/azure-cli.md."
        ),
    ))
}

/// `GET /metadata/endpoints`: the cloud description `az cloud register` reads, naming this
/// server as Resource Manager, login endpoint and Graph, and `.{domain}` as the login-server
/// suffix.
pub fn cloud_metadata(state: &AppState, headers: &http::HeaderMap) -> Response {
    let base = state.base_url(headers);
    let body = serde_json::json!({
        "name": "Wharf",
        "portal": base,
        "resourceManager": format!("{base}/"),
        "authentication": {
            "loginEndpoint": base,
            "audiences": ["https://management.core.windows.net/", "https://management.azure.com/"],
            "tenant": "organizations",
            "identityProvider": "AAD",
        },
        "microsoftGraphResourceId": format!("{base}/"),
        "graph": format!("{base}/"),
        "graphAudience": format!("{base}/"),
        "suffixes": {"acrLoginServer": state.config.domain},
        "activeDirectoryDataLake": null,
        "batch": null,
        "gallery": null,
        "sqlManagement": null,
        "vmImageAliasDoc": null,
    });
    json_response(StatusCode::OK, &body)
}

/// A storage failure while doing `context` (see `error::storage`).
pub fn storage_error(context: &str, e: wharf_storage::StorageError) -> ArmError {
    error::storage(context, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions() {
        let q = |v: &str| Query::parse(Some(&format!("api-version={v}")));
        assert!(check_api_version(&q("2026-09-01-preview"), "t").is_ok());
        assert!(check_api_version(&q("2024-11-01"), "t").is_ok());
        assert_eq!(check_api_version(&Query::default(), "t").unwrap_err().code, "MissingApiVersionParameter");
        assert_eq!(check_api_version(&q("latest"), "t").unwrap_err().code, "InvalidApiVersionParameter");
    }
}
