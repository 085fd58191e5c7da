//! Registry network rules as the request paths apply them: where a request came from (the
//! client address behind trusted proxies, the listener it arrived on), a registry's compiled
//! policy, the gate that judges a request with `wharf-netrules` and writes the audit event of
//! every denial and every bypass, and the ABAC environment attributes of a request's network
//! path. The management API is not behind these rules.
//!
//! Owns: compiling registry properties into a [`NetworkPolicy`] (a subnet that no longer exists
//! matches nothing; a policy that cannot be compiled closes the public endpoint), the [`Gate`]
//! (judged before authentication, and once more with the caller's facts only when that first
//! judgement denied) and the audit events.
//! Must never: render a wire error (a denial is a [`Denied`] value each plane renders), or
//! validate a credential.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;
use wharf_arm::registry::RegistryProperties;
use wharf_identity::RegistrySubject;
use wharf_netrules::{Arrival, Caller, NetRuleError, NetworkDecision, NetworkPolicy, NetworkRequest};
use wharf_storage::MetadataStore;

use crate::listener::{ConnInfo, ListenerKind};

/// The proxies whose forwarding header is believed, and which header they write.
#[derive(Debug, Clone, Copy)]
pub struct TrustedProxies<'a> {
    pub addresses: &'a [IpNet],
    pub header: wharf_netrules::ForwardedHeader,
}

impl<'a> TrustedProxies<'a> {
    pub fn of(config: &'a crate::config::Config) -> TrustedProxies<'a> {
        TrustedProxies { addresses: &config.trusted_proxies, header: config.trusted_proxy_header }
    }
}

/// Where a request came from.
#[derive(Debug, Clone)]
pub struct Origin {
    pub client_ip: IpAddr,
    pub arrival: Arrival,
}

impl Origin {
    /// The client address (forwarding headers believed only from trusted proxies) and the
    /// listener.
    pub fn of(proxies: TrustedProxies<'_>, conn: Option<&ConnInfo>, headers: &HeaderMap) -> Origin {
        let peer = conn.map(|c| c.peer).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let lines = |n: &str| headers.get_all(n).iter().map(|v| v.as_bytes()).collect::<Vec<_>>();
        let (xff, fwd) = (lines("x-forwarded-for"), lines("forwarded"));
        let forwarding = wharf_netrules::ForwardingHeaders { x_forwarded_for: &xff, forwarded: &fwd };
        let found = wharf_netrules::client_address(peer, &forwarding, proxies.header, proxies.addresses);
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

    fn listener(&self) -> String {
        match &self.arrival {
            Arrival::Public => "public".to_string(),
            Arrival::PrivateEndpoint { endpoint_id, .. } => format!("privateEndpoint {endpoint_id}"),
        }
    }
}

/// The network facts of a registry-token subject.
pub fn caller_of(s: &RegistrySubject) -> Caller {
    Caller {
        principal_id: Some(s.principal_id.clone()),
        principal_type: Some(s.principal_type),
        identity_kind: s.mi_kind,
        hosting_resource_id: s.host.as_ref().map(|h| h.id.clone()),
        hosting_resource_type: s.host.as_ref().map(|h| h.resource_type.clone()),
        builtin: s.builtin.as_deref().and_then(wharf_netrules::BuiltinPrincipal::from_tag),
    }
}

/// Compiles network properties (current or proposed): IP rules, and each virtual-network rule
/// with its subnet's prefix (a subnet that no longer exists matches nothing).
pub async fn compile(meta: &dyn MetadataStore, p: &RegistryProperties) -> Result<NetworkPolicy, NetRuleError> {
    let ip_rules: Vec<String> = p.network_rule_set.ip_rules.iter().map(|r| r.value.clone()).collect();
    let mut vnet_rules = Vec::new();
    for r in &p.network_rule_set.virtual_network_rules {
        let prefixes = match crate::model::network::subnet(meta, &r.id).await {
            Ok(Some(subnet)) => vec![subnet.properties.address_prefix],
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

/// Compiles a registry's network policy. A policy that cannot be compiled denies everything on
/// the public listener (fail closed) and says why in the log.
pub async fn policy(meta: &dyn MetadataStore, registry: &str, p: &RegistryProperties) -> NetworkPolicy {
    match compile(meta, p).await {
        Ok(policy) => policy,
        Err(e) => {
            tracing::error!(registry, error = %e, "unusable network rules; denying public access until they are fixed");
            NetworkPolicy::from_properties("Disabled", "Deny", &[], &[], "None", false)
                .expect("a closed policy compiles")
        }
    }
}

/// A request the network rules refuse: each plane renders ACR's 403 naming the client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denied {
    pub client_ip: IpAddr,
}

/// What the network check needs to know of a registry.
pub struct Guarded<'a> {
    pub name: &'a str,
    pub resource_id: &'a str,
    pub policy: &'a NetworkPolicy,
}

/// The network check of one request to one registry. [`Gate::open`] judges the request before
/// authentication; only if that denies does [`Gate::admit`] judge it once more, with the
/// authenticated caller's facts, so that the trusted-services bypass can lift the denial.
pub struct Gate<'a> {
    registry: Guarded<'a>,
    origin: &'a Origin,
    open: bool,
}

impl<'a> Gate<'a> {
    /// The judgement before authentication (provisional, so not audited).
    pub fn open(registry: Guarded<'a>, origin: &'a Origin) -> Gate<'a> {
        let request = request(&registry, origin, None);
        let open = wharf_netrules::check(registry.policy, &request).allowed;
        Gate { registry, origin, open }
    }

    /// Whether the rules admit the request whoever makes it.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// The final judgement for `caller`: an open gate admits at once; a closed one asks the
    /// rules again with the caller's facts and audits the outcome (a bypass or a denial).
    pub fn admit(&self, caller: &Caller) -> Result<(), Denied> {
        if self.open {
            return Ok(());
        }
        let decision = wharf_netrules::check(self.registry.policy, &request(&self.registry, self.origin, Some(caller)));
        audit(self.registry.name, &decision);
        if decision.allowed { Ok(()) } else { Err(Denied { client_ip: self.origin.client_ip }) }
    }

    /// The refusal of a request whose credential is missing or invalid: when the gate is
    /// closed the firewall answers first (audited), so an address the rules block learns
    /// nothing about credentials, as with ACR. `None` when the gate is open (the credential
    /// error stands).
    pub fn refuse_unauthenticated(&self) -> Option<Denied> {
        if self.open {
            return None;
        }
        let decision = wharf_netrules::check(self.registry.policy, &request(&self.registry, self.origin, None));
        audit(self.registry.name, &decision);
        Some(Denied { client_ip: self.origin.client_ip })
    }
}

fn request<'a>(registry: &'a Guarded<'_>, origin: &'a Origin, caller: Option<&'a Caller>) -> NetworkRequest<'a> {
    NetworkRequest { client_ip: origin.client_ip, arrival: &origin.arrival, registry_id: registry.resource_id, caller }
}

/// Whether `caller` from `origin` passes `registry`'s rules, without an audit event: for
/// listings that span registries, which skip the registries a client is kept out of rather than
/// request them.
pub fn admits(registry: Guarded<'_>, origin: &Origin, caller: &Caller) -> bool {
    wharf_netrules::check(registry.policy, &request(&registry, origin, Some(caller))).allowed
}

/// The address the registry import service is judged from: it reaches registries from inside
/// the deployment, from no address of any client network, so only a registry open to every
/// address (or an IP rule covering all of them) admits it without the trusted-services bypass.
pub const IMPORT_SERVICE_ADDRESS: IpAddr = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);

/// Whether the registry import service (the trusted service "Azure Container Registry", the
/// built-in principal `acr-import`) may reach `registry`, judged with its caller facts on the
/// public listener and audited like any request; a refusal carries the decision's explanation.
pub fn admits_import_service(registry: Guarded<'_>) -> Result<(), String> {
    let caller = Caller {
        principal_id: Some(wharf_netrules::BuiltinPrincipal::AcrImport.tag().to_string()),
        ..Caller::builtin(wharf_netrules::BuiltinPrincipal::AcrImport)
    };
    let origin = Origin { client_ip: IMPORT_SERVICE_ADDRESS, arrival: Arrival::Public };
    let decision = wharf_netrules::check(registry.policy, &request(&registry, &origin, Some(&caller)));
    audit(registry.name, &decision);
    if decision.allowed { Ok(()) } else { Err(decision.explain()) }
}

/// The refusal of a request that names no registry on a private endpoint, which serves only its
/// own registry (path-style requests that span registries).
pub fn deny_on_private_endpoint(origin: &Origin) -> Denied {
    tracing::warn!(target: "wharf::audit", registry = "-", client = %origin.client_ip, listener = origin.listener(),
        principal = "-", principal_type = "unauthenticated", hosting_resource = "-", rule = "privateEndpointServesOneRegistry",
        "network denial: a private endpoint serves only its own registry, and this request names none");
    Denied { client_ip: origin.client_ip }
}

/// The audit event of a denial or a bypass: one structured event with the registry, client
/// address, listener, principal, hosting resource and the deciding rule or bypass, plus the
/// whole decision as JSON and its explanation. Allowed requests without a bypass are not
/// audited.
fn audit(registry: &str, decision: &NetworkDecision<'_>) {
    if !decision.should_audit() {
        return;
    }
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
