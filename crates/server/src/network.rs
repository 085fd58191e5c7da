//! Registry network rules on the data plane: the client address (behind trusted proxies), the
//! listener a request arrived on, and the decision of `wharf-netrules`, with an audit event for
//! every denial and every bypass; the ABAC environment attributes of a request's network path;
//! and the network facts (caller kind, hosting resources) of a directory principal, for
//! `check-access` and the impact preview (`impact`). The management API is not behind these
//! rules.

pub mod access;
pub mod impact;

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use wharf_arm::registry::RegistryProperties;
use wharf_identity::{PrincipalType, RegistrySubject};
use wharf_netrules::{
    Arrival, Caller, ManagedIdentityKind, NetRuleError, NetworkDecision, NetworkPolicy, NetworkRequest,
};
use wharf_storage::StorageError;

use crate::listener::{ConnInfo, ListenerKind};
use crate::state::{AppState, RegistryInfo};

/// Where a request came from.
#[derive(Debug, Clone)]
pub struct Origin {
    pub client_ip: IpAddr,
    pub arrival: Arrival,
}

impl Origin {
    pub fn of(state: &AppState, conn: Option<&ConnInfo>, headers: &HeaderMap) -> Origin {
        let peer = conn.map(|c| c.peer).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let lines = |n: &str| headers.get_all(n).iter().map(|v| v.as_bytes()).collect::<Vec<_>>();
        let (xff, fwd) = (lines("x-forwarded-for"), lines("forwarded"));
        let forwarding = wharf_netrules::ForwardingHeaders { x_forwarded_for: &xff, forwarded: &fwd };
        let c = &state.config;
        let found = wharf_netrules::client_address(peer, &forwarding, c.trusted_proxy_header, &c.trusted_proxies);
        if let wharf_netrules::AddressSource::FailedClosed { reason } = found.source {
            tracing::debug!(%peer, %reason, "forwarding headers not believed; judging the proxy's address");
        }
        let client_ip = found.ip;
        let arrival = match conn.map(|c| &c.listener) {
            Some(ListenerKind::PrivateEndpoint { endpoint_id, registry_id }) => {
                Arrival::PrivateEndpoint { endpoint_id: endpoint_id.clone(), registry_id: registry_id.clone() }
            }
            _ => Arrival::Public,
        };
        Origin { client_ip, arrival }
    }

    pub fn is_private_endpoint(&self) -> bool {
        matches!(self.arrival, Arrival::PrivateEndpoint { .. })
    }
}

/// The network facts of a registry-token subject.
pub fn caller_of(s: &RegistrySubject) -> Caller {
    use wharf_netrules::PrincipalType as P;
    let principal_type = match s.principal_type {
        PrincipalType::User => P::User,
        PrincipalType::ServicePrincipal => P::ServicePrincipal,
        PrincipalType::ManagedIdentity => P::ManagedIdentity,
        PrincipalType::RegistryAdmin => P::RegistryAdmin,
        PrincipalType::RepositoryToken => P::RepositoryToken,
        PrincipalType::Anonymous => P::Anonymous,
    };
    Caller {
        principal_id: Some(s.principal_id.clone()),
        principal_type: Some(principal_type),
        identity_kind: s.mi_kind.map(|k| match k {
            wharf_identity::ManagedIdentityKind::SystemAssigned => ManagedIdentityKind::SystemAssigned,
            wharf_identity::ManagedIdentityKind::UserAssigned => ManagedIdentityKind::UserAssigned,
        }),
        hosting_resource_id: s.host.as_ref().map(|h| h.id.clone()),
        hosting_resource_type: s.host.as_ref().map(|h| h.resource_type.clone()),
        builtin: s.builtin.as_deref().and_then(wharf_netrules::BuiltinPrincipal::from_tag),
    }
}

/// Compiles network properties (current or proposed): IP rules, and each virtual-network
/// rule with its subnet's prefix (a subnet that no longer exists matches nothing).
pub async fn compile(state: &AppState, p: &RegistryProperties) -> Result<NetworkPolicy, NetRuleError> {
    let ip_rules: Vec<String> = p.network_rule_set.ip_rules.iter().map(|r| r.value.clone()).collect();
    let mut vnet_rules = Vec::new();
    for r in &p.network_rule_set.virtual_network_rules {
        let prefixes = match crate::arm::network::find_subnet(state, &r.id).await {
            Ok(Some((prefix, _))) => vec![prefix],
            _ => vec![],
        };
        vnet_rules.push((r.id.clone(), prefixes));
    }
    NetworkPolicy::from_properties(
        &p.public_network_access,
        &p.network_rule_set.default_action,
        &ip_rules,
        &vnet_rules,
        &p.network_rule_bypass_options,
        p.network_rule_bypass_allowed_for_tasks,
    )
}

/// Compiles a registry's network policy. A policy that cannot be compiled denies everything
/// on the public listener (fail closed) and says why in the log.
pub async fn policy(state: &AppState, info: &RegistryInfo) -> NetworkPolicy {
    match compile(state, &info.properties).await {
        Ok(policy) => policy,
        Err(e) => {
            tracing::error!(registry = %info.name, error = %e, "unusable network rules; denying public access until they are fixed");
            NetworkPolicy::from_properties("Disabled", "Deny", &[], &[], "None", false)
                .expect("a closed policy compiles")
        }
    }
}

/// Judges a request to `info` from `origin` by `caller` (None before authentication).
/// Returns `Ok(())` when allowed; otherwise ACR's 403 `DENIED` response.
///
/// A denial with `caller: None` is provisional (the caller may still turn out to be a trusted
/// service) and is not audited here; the code that makes it final calls
/// [`deny_unauthenticated`], which is.
#[allow(clippy::result_large_err)] // the refusal is the response itself, built once per denial
pub fn judge(
    info: &RegistryInfo,
    policy: &NetworkPolicy,
    origin: &Origin,
    caller: Option<&Caller>,
) -> Result<(), Response> {
    let request = NetworkRequest {
        client_ip: origin.client_ip,
        arrival: &origin.arrival,
        registry_id: &info.resource_id,
        caller,
    };
    let decision = wharf_netrules::check(policy, &request);
    if decision.should_audit() && (decision.allowed || caller.is_some()) {
        audit(&info.name, &decision);
    }
    if decision.allowed {
        return Ok(());
    }
    Err(deny(origin.client_ip))
}

/// The audit event of a denial or a bypass: one structured event with the registry, client
/// address, listener, principal, hosting resource and the deciding rule or bypass, plus the
/// whole decision as JSON and its explanation.
fn audit(registry: &str, decision: &NetworkDecision<'_>) {
    let event = serde_json::to_string(decision).unwrap_or_default();
    let listener = match decision.listener {
        Arrival::Public => "public".to_string(),
        Arrival::PrivateEndpoint { endpoint_id, .. } => format!("privateEndpoint {endpoint_id}"),
    };
    let caller = decision.caller;
    let principal = caller.and_then(|c| c.principal_id.as_deref()).unwrap_or("-");
    let principal_type = caller.and_then(|c| c.principal_type).map(|t| t.as_str()).unwrap_or("unauthenticated");
    let hosting = caller.and_then(|c| c.hosting_resource_id.as_deref()).unwrap_or("-");
    let rule = decision.deciding_rule();
    if decision.allowed {
        tracing::info!(target: "wharf::audit", registry, client = %decision.client_ip, listener, principal, principal_type, hosting_resource = hosting, rule, decision = %event, "network bypass: {}", decision.explain());
    } else {
        tracing::warn!(target: "wharf::audit", registry, client = %decision.client_ip, listener, principal, principal_type, hosting_resource = hosting, rule, decision = %event, "network denial: {}", decision.explain());
    }
}

/// The final refusal of a request the rules deny before authentication whose credentials
/// could not make it a trusted service (missing, invalid, or not a bypass): audited, then
/// ACR's 403. With no registry (path style on a private endpoint, which serves one registry
/// only) the event names the listener alone.
pub fn deny_unauthenticated(info: Option<&RegistryInfo>, origin: &Origin) -> Response {
    match info {
        Some(info) => {
            let request = NetworkRequest {
                client_ip: origin.client_ip,
                arrival: &origin.arrival,
                registry_id: &info.resource_id,
                caller: None,
            };
            let decision = wharf_netrules::check(&info.network, &request);
            audit(&info.name, &decision);
        }
        None => {
            let listener = match &origin.arrival {
                Arrival::Public => "public".to_string(),
                Arrival::PrivateEndpoint { endpoint_id, .. } => format!("privateEndpoint {endpoint_id}"),
            };
            tracing::warn!(target: "wharf::audit", registry = "-", client = %origin.client_ip, listener, principal = "-", principal_type = "unauthenticated", hosting_resource = "-", rule = "privateEndpointServesOneRegistry", "network denial: a private endpoint serves only its own registry, and this request names none");
        }
    }
    deny(origin.client_ip)
}

/// For the token endpoints: `Some(403)` (audited) when the rules deny `origin` before
/// authentication, to answer a request whose credentials failed — so that an address the
/// firewall blocks learns nothing about credentials, as with ACR, where the firewall answers
/// first. `None` when the rules admit the address (the credential error stands).
pub fn refuse_unauthenticated(info: Option<&RegistryInfo>, origin: &Origin) -> Option<Response> {
    let info = info?;
    let request = NetworkRequest {
        client_ip: origin.client_ip,
        arrival: &origin.arrival,
        registry_id: &info.resource_id,
        caller: None,
    };
    (!wharf_netrules::check(&info.network, &request).allowed).then(|| deny_unauthenticated(Some(info), origin))
}

/// The ABAC environment attributes of a request's network path: `isPrivateLink`, the private
/// endpoint it arrived on, the subnet of a virtual-network rule whose prefix holds the client
/// address (public listener only), and the time. Used by token issuance and `check-access`.
pub fn environment(
    policy: &NetworkPolicy,
    arrival: &Arrival,
    client_ip: Option<IpAddr>,
) -> wharf_authz::EnvironmentAttributes {
    let (is_private_link, private_endpoint, subnet) = match arrival {
        Arrival::PrivateEndpoint { endpoint_id, .. } => (true, Some(endpoint_id.clone()), None),
        Arrival::Public => {
            let subnet = client_ip.and_then(|ip| {
                let ip = wharf_netrules::normalise_ip(ip);
                policy
                    .vnet_rules()
                    .iter()
                    .find(|r| r.prefixes.iter().any(|p| p.contains(&ip)))
                    .map(|r| r.subnet_id.clone())
            });
            (false, None, subnet)
        }
    };
    wharf_authz::EnvironmentAttributes {
        is_private_link: Some(is_private_link),
        private_endpoint,
        subnet,
        utc_now: Some(chrono::Utc::now()),
    }
}

/// A principal as the network check would see its requests: one [`Caller`] per hosting
/// resource it can run in (a user-assigned identity attached to several resources has one
/// each), with a description for messages.
#[derive(Debug, Clone)]
pub struct NetworkIdentity {
    pub caller: Caller,
    /// "user 'alice@contoso.com'", "system-assigned identity of container group 'cg1'", …
    pub description: String,
}

/// What a directory object id is, for the network check.
#[derive(Debug, Clone)]
pub enum PrincipalFacts {
    /// A user, service principal or managed identity: the callers its requests can carry.
    Callers(Vec<NetworkIdentity>),
    /// A group: groups make no requests, their members do.
    Group { display_name: String },
    /// Not found in the directory.
    Unknown,
}

/// The directory and hosting-resource facts of the principals of a deployment, loaded once.
pub struct Directory {
    identities: Vec<crate::arm::resources::ManagedIdentityObject>,
    hosts: Vec<crate::arm::resources::hosts::Host>,
}

impl Directory {
    pub async fn load(state: &AppState) -> Result<Directory, StorageError> {
        use crate::arm::resources::{HOST_TYPES, hosts::Host, managed_identities};
        let identities = managed_identities(&*state.meta).await?;
        let mut hosts = Vec::new();
        for t in HOST_TYPES {
            let filter = wharf_storage::ResourceFilter { resource_type: Some(t.into()), resource_group: None };
            for r in state.meta.resource_list(&filter).await? {
                if let Ok(h) = Host::from_record(r) {
                    hosts.push(h);
                }
            }
        }
        Ok(Directory { identities, hosts })
    }

    /// The network facts of `object_id`.
    pub async fn facts(&self, state: &AppState, object_id: &str) -> Result<PrincipalFacts, StorageError> {
        use crate::auth::directory;
        let meta = &*state.meta;
        let oid = object_id.to_ascii_lowercase();
        if let Some(mi) = self.identities.iter().find(|m| m.object_id.eq_ignore_ascii_case(&oid)) {
            return Ok(PrincipalFacts::Callers(self.identity_callers(mi)));
        }
        if let Some(u) = directory::get_user(meta, &oid).await? {
            let caller = Caller::principal(wharf_netrules::PrincipalType::User, &oid);
            return Ok(PrincipalFacts::Callers(vec![NetworkIdentity {
                caller,
                description: format!("user '{}'", u.user_principal_name),
            }]));
        }
        if let Some(sp) = directory::get_sp(meta, &oid).await? {
            let builtin = sp.builtin.as_deref().and_then(wharf_netrules::BuiltinPrincipal::from_tag);
            let (caller, description) = match builtin {
                Some(b) => (
                    Caller { principal_id: Some(oid.clone()), ..Caller::builtin(b) },
                    format!("built-in principal '{}'", sp.display_name),
                ),
                None => (
                    Caller::principal(wharf_netrules::PrincipalType::ServicePrincipal, &oid),
                    format!("service principal '{}'", sp.display_name),
                ),
            };
            return Ok(PrincipalFacts::Callers(vec![NetworkIdentity { caller, description }]));
        }
        if let Some(g) = meta.resource_get(&crate::authz::group_record_id(&oid)).await? {
            let display_name = g.body["displayName"].as_str().unwrap_or(&oid).to_string();
            return Ok(PrincipalFacts::Group { display_name });
        }
        Ok(PrincipalFacts::Unknown)
    }

    /// A system-assigned identity runs in its own resource; a user-assigned one in every
    /// resource it is attached to (and, attached to none, it has no hosting resource at all).
    fn identity_callers(&self, mi: &crate::arm::resources::ManagedIdentityObject) -> Vec<NetworkIdentity> {
        let on = |host_id: &str, host_type: &str, kind: ManagedIdentityKind| Caller {
            principal_id: Some(mi.object_id.to_ascii_lowercase()),
            hosting_resource_type: Some(host_type.to_string()),
            ..Caller::managed_identity(kind, host_id)
        };
        match mi.kind {
            wharf_identity::ManagedIdentityKind::SystemAssigned => {
                let host_type = self
                    .hosts
                    .iter()
                    .find(|h| h.record.id.eq_ignore_ascii_case(&mi.resource_id))
                    .map(|h| h.record.resource_type.clone());
                let host_type = host_type.unwrap_or_default();
                let description =
                    format!("system-assigned identity of {} '{}'", host_noun(&host_type), mi.display_name);
                let caller = if host_type.is_empty() {
                    Caller {
                        principal_id: Some(mi.object_id.to_ascii_lowercase()),
                        ..Caller::managed_identity(ManagedIdentityKind::SystemAssigned, &mi.resource_id)
                    }
                } else {
                    on(&mi.resource_id, &host_type, ManagedIdentityKind::SystemAssigned)
                };
                vec![NetworkIdentity { caller, description }]
            }
            wharf_identity::ManagedIdentityKind::UserAssigned => {
                let attached: Vec<NetworkIdentity> = self
                    .hosts
                    .iter()
                    .filter(|h| h.user_assigned_ids().iter().any(|id| id.eq_ignore_ascii_case(&mi.resource_id)))
                    .map(|h| NetworkIdentity {
                        caller: on(&h.record.id, &h.record.resource_type, ManagedIdentityKind::UserAssigned),
                        description: format!(
                            "user-assigned identity '{}' on {} '{}'",
                            mi.display_name,
                            host_noun(&h.record.resource_type),
                            h.record.name
                        ),
                    })
                    .collect();
                if !attached.is_empty() {
                    return attached;
                }
                let caller = Caller {
                    principal_id: Some(mi.object_id.to_ascii_lowercase()),
                    principal_type: Some(wharf_netrules::PrincipalType::ManagedIdentity),
                    identity_kind: Some(ManagedIdentityKind::UserAssigned),
                    ..Caller::default()
                };
                vec![NetworkIdentity {
                    caller,
                    description: format!(
                        "user-assigned identity '{}' (attached to no hosting resource)",
                        mi.display_name
                    ),
                }]
            }
        }
    }
}

/// How messages name a hosting resource type.
pub fn host_noun(resource_type: &str) -> &'static str {
    let is = |t: &str| resource_type.eq_ignore_ascii_case(t);
    if is(wharf_netrules::CONTAINER_GROUPS) {
        "container group"
    } else if is(wharf_netrules::ML_WORKSPACES) {
        "ML workspace"
    } else if is(wharf_netrules::APP_SERVICE_SITES) {
        "web app (App Service)"
    } else if is(wharf_netrules::REGISTRY_TASKS) {
        "registry task"
    } else {
        "resource"
    }
}

pub fn deny(ip: IpAddr) -> Response {
    let mut r = (StatusCode::FORBIDDEN, wharf_netrules::deny_body(ip)).into_response();
    r.headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json; charset=utf-8"));
    r
}
