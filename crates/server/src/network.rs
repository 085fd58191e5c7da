//! Registry network rules on the data plane: the client address (behind trusted proxies), the
//! listener a request arrived on, and the decision of `wharf-netrules`, with an audit event for
//! every denial and every bypass. The management API is not behind these rules.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use wharf_identity::{PrincipalType, RegistrySubject};
use wharf_netrules::{Arrival, Caller, ManagedIdentityKind, NetworkPolicy, NetworkRequest};

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
        let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
        let client_ip = wharf_netrules::client_address(peer, h("x-forwarded-for"), h("forwarded"), &state.config.trusted_proxies);
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

/// Compiles a registry's network policy. A policy that cannot be compiled denies everything
/// on the public listener (fail closed) and says why in the log.
pub async fn policy(state: &AppState, info: &RegistryInfo) -> NetworkPolicy {
    let p = &info.properties;
    let ip_rules: Vec<String> = p.network_rule_set.ip_rules.iter().map(|r| r.value.clone()).collect();
    let mut vnet_rules = Vec::new();
    for r in &p.network_rule_set.virtual_network_rules {
        let prefixes = match crate::arm::network::find_subnet(state, &r.id).await {
            Ok(Some((prefix, _))) => vec![prefix],
            _ => vec![],
        };
        vnet_rules.push((r.id.clone(), prefixes));
    }
    match NetworkPolicy::from_properties(
        &p.public_network_access,
        &p.network_rule_set.default_action,
        &ip_rules,
        &vnet_rules,
        &p.network_rule_bypass_options,
        p.network_rule_bypass_allowed_for_tasks,
    ) {
        Ok(policy) => policy,
        Err(e) => {
            tracing::error!(registry = %info.name, error = %e, "unusable network rules; denying public access until they are fixed");
            NetworkPolicy::from_properties("Disabled", "Deny", &[], &[], "None", false).expect("a closed policy compiles")
        }
    }
}

/// Judges a request to `info` from `origin` by `caller` (None before authentication).
/// Returns `Ok(())` when allowed; otherwise ACR's 403 `DENIED` response.
pub fn judge(info: &RegistryInfo, policy: &NetworkPolicy, origin: &Origin, caller: Option<&Caller>) -> Result<(), Response> {
    let request = NetworkRequest { client_ip: origin.client_ip, arrival: &origin.arrival, registry_id: &info.resource_id, caller };
    let decision = wharf_netrules::check(policy, &request);
    if decision.should_audit() {
        let event = serde_json::to_string(&decision).unwrap_or_default();
        if decision.allowed {
            tracing::info!(target: "wharf::audit", registry = %info.name, client = %origin.client_ip, decision = %event, "network bypass: {}", decision.explain());
        } else if caller.is_some() {
            tracing::warn!(target: "wharf::audit", registry = %info.name, client = %origin.client_ip, decision = %event, "network denial: {}", decision.explain());
        }
    }
    if decision.allowed {
        return Ok(());
    }
    Err(deny(origin.client_ip))
}

pub fn deny(ip: IpAddr) -> Response {
    let mut r = (StatusCode::FORBIDDEN, wharf_netrules::deny_body(ip)).into_response();
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json; charset=utf-8"));
    r
}
