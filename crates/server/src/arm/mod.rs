//! The management plane: an ARM-shaped REST API for resource groups and registries.
//!
//! Like the data plane, a request is first parsed into a typed [`ArmEndpoint`]; handlers work on
//! that value and answer ARM JSON, or an [`ArmError`] body. The registry rules themselves
//! (names, properties, SKU limits) live in `wharf-arm`.

pub mod authorization;
pub mod groups;
pub mod network;
pub mod registries;
pub mod resources;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use wharf_arm::ArmError;

use crate::state::AppState;

/// A management request, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum ArmEndpoint {
    ListSubscriptions,
    GetSubscription,
    ListTenants,
    ListGroups,
    Group {
        name: String,
    },
    ListResources {
        group: Option<String>,
    },
    ListRegistries {
        group: Option<String>,
    },
    /// `/subscriptions/{sub}/providers/{namespace}/{type}`: every resource of a type other than
    /// registries in the subscription (`az identity list`, `az network vnet list`, …).
    ListByType {
        namespace: String,
        type_name: String,
    },
    /// `POST /subscriptions/{sub}/providers/Microsoft.ContainerRegistry/checkNameAvailability`.
    CheckRegistryName,
    Registry {
        group: String,
        name: String,
    },
    /// A registry's action or child resource: `…/registries/{name}/{rest…}` (listCredentials,
    /// regenerateCredential, …).
    RegistryChild {
        group: String,
        name: String,
        rest: Vec<String>,
    },
    /// Any other resource under a resource group: `…/providers/{namespace}/{type}/{name}[/…]`
    /// (managed identities, hosting resources, …), served by `resources`.
    Other {
        group: String,
        namespace: String,
        rest: Vec<String>,
    },
    /// `{scope}/providers/Microsoft.Authorization/roleAssignments[/{guid}]`
    RoleAssignments {
        scope: String,
        name: Option<String>,
    },
    /// `{scope}/providers/Microsoft.Authorization/roleDefinitions[/{guid}]`
    RoleDefinitions {
        scope: String,
        name: Option<String>,
    },
}

impl ArmEndpoint {
    /// Parses a path; ARM's keywords are case-insensitive. Returns the subscription named in the
    /// path too (checked by the caller).
    pub fn parse(path: &str) -> Result<(Option<String>, ArmEndpoint), ArmError> {
        if path.trim_end_matches('/').eq_ignore_ascii_case("/tenants") {
            return Ok((None, ArmEndpoint::ListTenants));
        }
        let segs: Vec<String> = path
            .trim_matches('/')
            .split('/')
            .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
            .collect();
        let is = |i: usize, kw: &str| segs.get(i).is_some_and(|s| s.eq_ignore_ascii_case(kw));
        let not_found = || ArmError::not_found_path(path);
        if !is(0, "subscriptions") {
            return Err(not_found());
        }
        // Extension resources of Microsoft.Authorization at any scope.
        if let Some(i) =
            (0..segs.len().saturating_sub(2)).find(|&i| is(i, "providers") && is(i + 1, "Microsoft.Authorization"))
        {
            let scope = format!("/{}", segs[..i].join("/"));
            let name = segs.get(i + 3).cloned();
            if segs.len() > i + 4 {
                return Err(not_found());
            }
            let sub = segs.get(1).cloned();
            return match segs.get(i + 2).map(|s| s.to_ascii_lowercase()).as_deref() {
                Some("roleassignments") => Ok((sub, ArmEndpoint::RoleAssignments { scope, name })),
                Some("roledefinitions") => Ok((sub, ArmEndpoint::RoleDefinitions { scope, name })),
                _ => Err(not_found()),
            };
        }
        if segs.len() == 1 {
            return Ok((None, ArmEndpoint::ListSubscriptions));
        }
        let sub = Some(segs[1].clone());
        let rest = &segs[2..];
        let at = |i: usize, kw: &str| rest.get(i).is_some_and(|s| s.eq_ignore_ascii_case(kw));
        let registries_at =
            |i: usize| at(i, "providers") && at(i + 1, "Microsoft.ContainerRegistry") && at(i + 2, "registries");
        let ep = match rest.len() {
            0 => ArmEndpoint::GetSubscription,
            1 if at(0, "resourcegroups") => ArmEndpoint::ListGroups,
            1 if at(0, "resources") => ArmEndpoint::ListResources { group: None },
            2 if at(0, "resourcegroups") => ArmEndpoint::Group { name: rest[1].clone() },
            3 if registries_at(0) => ArmEndpoint::ListRegistries { group: None },
            3 if at(0, "providers") && at(1, "Microsoft.ContainerRegistry") && at(2, "checkNameAvailability") => {
                ArmEndpoint::CheckRegistryName
            }
            3 if at(0, "providers") => {
                ArmEndpoint::ListByType { namespace: rest[1].clone(), type_name: rest[2].clone() }
            }
            3 if at(0, "resourcegroups") && at(2, "resources") => {
                ArmEndpoint::ListResources { group: Some(rest[1].clone()) }
            }
            5 if at(0, "resourcegroups") && registries_at(2) => {
                ArmEndpoint::ListRegistries { group: Some(rest[1].clone()) }
            }
            6 if at(0, "resourcegroups") && registries_at(2) => {
                ArmEndpoint::Registry { group: rest[1].clone(), name: rest[5].clone() }
            }
            n if n > 6 && at(0, "resourcegroups") && registries_at(2) => {
                ArmEndpoint::RegistryChild { group: rest[1].clone(), name: rest[5].clone(), rest: rest[6..].to_vec() }
            }
            n if n >= 5 && at(0, "resourcegroups") && at(2, "providers") => {
                ArmEndpoint::Other { group: rest[1].clone(), namespace: rest[3].clone(), rest: rest[4..].to_vec() }
            }
            _ => return Err(not_found()),
        };
        Ok((sub, ep))
    }
}

/// What a handler gets.
pub struct ArmCtx {
    pub state: Arc<AppState>,
    /// The authenticated caller.
    pub caller: crate::auth::management::ManagementCaller,
    pub method: Method,
    pub query: HashMap<String, String>,
    pub body: bytes::Bytes,
    pub headers: http::HeaderMap,
}

impl ArmCtx {
    /// Whether the caller may perform `action` on `scope` (a resource id).
    pub fn allowed(&self, action: &str, scope: &str) -> bool {
        self.state.authz.authorize_action(self.caller.object_id(), scope, action).is_allowed()
    }

    /// ARM's 403 `AuthorizationFailed` unless the caller may perform `action` on `scope`.
    pub fn authorize(&self, action: &str, scope: &str) -> Result<(), ArmError> {
        let decision = self.state.authz.authorize_action(self.caller.object_id(), scope, action);
        if decision.is_allowed() {
            return Ok(());
        }
        let c = &self.caller.claims;
        let who = c.upn.clone().or_else(|| c.appid.clone()).unwrap_or_else(|| c.oid.clone());
        tracing::warn!(caller = %who, object_id = %c.oid, action, scope, explanation = %decision.explain(), "management call denied");
        Err(ArmError::new(
            403,
            "AuthorizationFailed",
            format!(
                "The client '{who}' with object id '{}' does not have authorization to perform action '{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.",
                c.oid
            ),
        ))
    }

    /// The request body as a JSON object (`{}` when empty).
    pub fn json(&self) -> Result<Value, ArmError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Object(Default::default()));
        }
        let v: Value = serde_json::from_slice(&self.body)
            .map_err(|e| ArmError::invalid_request(format!("The request content is not valid JSON: {e}")))?;
        if !v.is_object() {
            return Err(ArmError::invalid_request("The request content must be a JSON object."));
        }
        Ok(v)
    }
}

pub fn arm_error_response(e: &ArmError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(http::header::CONTENT_TYPE, "application/json; charset=utf-8")], e.body().to_string()).into_response()
}

pub fn json_response(status: StatusCode, v: &Value) -> Response {
    (status, [(http::header::CONTENT_TYPE, "application/json; charset=utf-8")], v.to_string()).into_response()
}

/// `api-version` must be present and look like an ARM version (`YYYY-MM-DD[-preview]`).
fn check_api_version(query: &HashMap<String, String>, resource_type: &str) -> Result<(), ArmError> {
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
        Err(e) => arm_error_response(&e),
    }
}

async fn dispatch(state: Arc<AppState>, req: Request<Body>) -> Result<Response, ArmError> {
    let (parts, body) = req.into_parts();
    let (sub, endpoint) = ArmEndpoint::parse(parts.uri.path())?;
    let query = crate::oci::parse_query(parts.uri.query());
    let resource_type = match &endpoint {
        ArmEndpoint::ListRegistries { .. } | ArmEndpoint::Registry { .. } | ArmEndpoint::CheckRegistryName => {
            wharf_arm::types::REGISTRY
        }
        _ => "Microsoft.Resources",
    };
    check_api_version(&query, resource_type)?;
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
        Err(e) if e.status == 401 => {
            let mut resp = arm_error_response(&e);
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
        Err(e) => return Err(e),
    };
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| ArmError::invalid_request(format!("The request body is larger than {MAX_BODY} bytes.")))?;
    let ctx = ArmCtx { state, caller, method: parts.method, query, body, headers: parts.headers };
    if let Some((action, scope)) = required_action(&ctx, &endpoint) {
        ctx.authorize(&action, &scope)?;
    }
    let m = ctx.method.clone();
    match (&m, endpoint) {
        (&Method::GET, ArmEndpoint::ListSubscriptions) => Ok(groups::list_subscriptions(&ctx)),
        (&Method::GET, ArmEndpoint::ListTenants) => {
            let t = &ctx.state.tenant_id;
            Ok(json_response(
                StatusCode::OK,
                &serde_json::json!({"value": [{"id": format!("/tenants/{t}"), "tenantId": t, "tenantCategory": "Home", "displayName": "Wharf", "defaultDomain": "wharf.local"}]}),
            ))
        }
        (&Method::GET, ArmEndpoint::GetSubscription) => {
            Ok(json_response(StatusCode::OK, &groups::subscription_json(&ctx.state)))
        }
        (&Method::GET, ArmEndpoint::ListGroups) => groups::list(&ctx).await,
        (_, ArmEndpoint::Group { name }) => groups::handle(&ctx, &name).await,
        (&Method::GET, ArmEndpoint::ListResources { group }) => groups::list_resources(&ctx, group.as_deref()).await,
        (&Method::GET, ArmEndpoint::ListRegistries { group }) => registries::list(&ctx, group.as_deref()).await,
        (&Method::POST, ArmEndpoint::CheckRegistryName) => registries::check_name(&ctx).await,
        (&Method::GET, ArmEndpoint::ListByType { namespace, type_name }) => {
            resources::list_by_type(&ctx, &namespace, &type_name).await
        }
        (_, ArmEndpoint::Registry { group, name }) => registries::handle(&ctx, &group, &name).await,
        (_, ArmEndpoint::RegistryChild { group, name, rest }) => registries::child(&ctx, &group, &name, &rest).await,
        (_, ArmEndpoint::Other { group, namespace, rest }) if namespace.eq_ignore_ascii_case("Microsoft.Network") => {
            network::handle(&ctx, &group, &rest).await
        }
        (_, ArmEndpoint::Other { group, namespace, rest }) => resources::handle(&ctx, &group, &namespace, &rest).await,
        (_, ArmEndpoint::RoleAssignments { scope, name }) => {
            authorization::assignments(&ctx, &scope, name.as_deref()).await
        }
        (_, ArmEndpoint::RoleDefinitions { scope, name }) => {
            authorization::definitions(&ctx, &scope, name.as_deref()).await
        }
        (m, _) => Err(ArmError::method_not_allowed(m.as_str())),
    }
}

/// The management action (and the scope it is checked at) a request needs, for endpoints
/// authorized before their handler runs. Listings filter per item instead; the
/// `Microsoft.Authorization` handlers check their own actions.
fn required_action(ctx: &ArmCtx, endpoint: &ArmEndpoint) -> Option<(String, String)> {
    let sub = &ctx.state.subscription_id;
    let verb = match ctx.method {
        Method::GET | Method::HEAD => "read",
        Method::DELETE => "delete",
        _ => "write",
    };
    match endpoint {
        ArmEndpoint::CheckRegistryName => {
            Some(("Microsoft.ContainerRegistry/checkNameAvailability/read".into(), format!("/subscriptions/{sub}")))
        }
        ArmEndpoint::Group { name } => Some((
            format!("Microsoft.Resources/subscriptions/resourceGroups/{verb}"),
            wharf_arm::ResourceId::resource_group(sub, name).to_string(),
        )),
        ArmEndpoint::Registry { group, name } => Some((
            format!("Microsoft.ContainerRegistry/registries/{verb}"),
            wharf_arm::ResourceId::registry(sub, group, name).to_string(),
        )),
        ArmEndpoint::RegistryChild { group, name, rest } => {
            let id = wharf_arm::ResourceId::registry(sub, group, name).to_string();
            // checkAccess, roleAssignmentModeImpact and networkRuleImpact check their own actions.
            let own = rest.len() == 1
                && ["checkAccess", "roleAssignmentModeImpact", "networkRuleImpact"]
                    .iter()
                    .any(|a| rest[0].eq_ignore_ascii_case(a));
            // A POST to a single segment is an action (`importImage`, `listCredentials`);
            // anything else addresses a child resource type (`tasks`, `tasks/t1`).
            let action = match (rest.as_slice(), &ctx.method) {
                ([action], &Method::POST) => format!("Microsoft.ContainerRegistry/registries/{action}/action"),
                ([child, ..], _) => format!("Microsoft.ContainerRegistry/registries/{child}/{verb}"),
                ([], _) => format!("Microsoft.ContainerRegistry/registries/{verb}"),
            };
            (!own).then_some((action, id))
        }
        ArmEndpoint::Other { group, namespace, rest } if rest.len() >= 2 => {
            let id = format!(
                "{}/providers/{namespace}/{}/{}",
                wharf_arm::ResourceId::resource_group(sub, group),
                rest[0],
                rest[1]
            );
            // Actions on a resource (e.g. workloadEnvironment) need write access to it.
            let verb = if rest.len() > 2 { "write" } else { verb };
            Some((format!("{namespace}/{}/{verb}", rest[0]), id))
        }
        ArmEndpoint::Other { group, namespace, rest } => Some((
            format!("{namespace}/{}/read", rest.first().map(String::as_str).unwrap_or("")),
            wharf_arm::ResourceId::resource_group(sub, group).to_string(),
        )),
        _ => None,
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
        "importimage" => ("Image import", "copy images between registries with 'skopeo copy' or 'oras copy'"),
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

pub fn storage_error(context: &str, e: wharf_storage::StorageError) -> ArmError {
    tracing::error!(context, error = %e, "management storage failure");
    ArmError::internal(format!("Internal error while {context}."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_case_insensitively() {
        let (sub, ep) = ArmEndpoint::parse("/subscriptions/S/resourcegroups/rg1").unwrap();
        assert_eq!(sub.as_deref(), Some("S"));
        assert_eq!(ep, ArmEndpoint::Group { name: "rg1".into() });
        let (_, ep) = ArmEndpoint::parse(
            "/subscriptions/S/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myreg",
        )
        .unwrap();
        assert_eq!(ep, ArmEndpoint::Registry { group: "rg".into(), name: "myreg".into() });
        let (_, ep) = ArmEndpoint::parse("/subscriptions/S/providers/microsoft.containerregistry/registries").unwrap();
        assert_eq!(ep, ArmEndpoint::ListRegistries { group: None });
        let (_, ep) =
            ArmEndpoint::parse("/subscriptions/S/providers/Microsoft.ManagedIdentity/userAssignedIdentities").unwrap();
        assert_eq!(
            ep,
            ArmEndpoint::ListByType {
                namespace: "Microsoft.ManagedIdentity".into(),
                type_name: "userAssignedIdentities".into()
            }
        );
        let (_, ep) =
            ArmEndpoint::parse("/subscriptions/S/providers/Microsoft.ContainerRegistry/checkNameAvailability").unwrap();
        assert_eq!(ep, ArmEndpoint::CheckRegistryName);
        assert!(ArmEndpoint::parse("/subscriptions/S/foo").is_err());
    }

    #[test]
    fn api_versions() {
        let q = |v: &str| HashMap::from([("api-version".to_string(), v.to_string())]);
        assert!(check_api_version(&q("2026-09-01-preview"), "t").is_ok());
        assert!(check_api_version(&q("2024-11-01"), "t").is_ok());
        assert_eq!(check_api_version(&HashMap::new(), "t").unwrap_err().code, "MissingApiVersionParameter");
        assert_eq!(check_api_version(&q("latest"), "t").unwrap_err().code, "InvalidApiVersionParameter");
    }
}
