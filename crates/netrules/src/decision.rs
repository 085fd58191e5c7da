//! The network check itself: request facts in, a decision value out.
//!
//! Owns the order of checks (private endpoint, public access, default action, rules, bypass),
//! the decision value with every fact an audit event needs, its `explain()` text, and ACR's
//! exact deny message (the server puts it in its OCI error body). It never logs, never reads a clock, never touches a socket,
//! and never decides authorization: an allowed network decision grants no permission.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

use crate::caller::{Caller, ManagedIdentityKind, NotTrusted, TrustedService, classify};
use crate::policy::{DefaultAction, NetworkPolicy, PublicNetworkAccess, RuleMatch, normalise_ip};

/// Which listener a request arrived on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Arrival {
    /// The registry's public endpoint.
    Public,
    /// A private-endpoint listener, bound to exactly one registry.
    #[serde(rename_all = "camelCase")]
    PrivateEndpoint { endpoint_id: String, registry_id: String },
}

/// The facts of one request the network check needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkRequest<'a> {
    /// The client address (see [`crate::client_address`]); IPv4-mapped IPv6 is normalised.
    pub client_ip: IpAddr,
    pub arrival: &'a Arrival,
    /// ARM id of the registry the request is for (compared ASCII-case-insensitively).
    pub registry_id: &'a str,
    /// `None` before the caller is authenticated (first request, token endpoint): then only
    /// the rules decide, and the bypass cannot apply.
    pub caller: Option<&'a Caller>,
}

/// Which switch let a trusted service through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum BypassVia {
    /// `networkRuleBypassOptions: AzureServices` ("allow trusted services").
    TrustedServices,
    /// `networkRuleBypassAllowedForTasks: true` (task identities only).
    TasksBypass,
}

/// What the network rules alone said when they denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum NetworkDenial {
    /// `publicNetworkAccess: Disabled` and the request came to the public endpoint.
    PublicAccessDisabled,
    /// `defaultAction: Deny` and no IP or virtual-network rule contains the client address.
    NoMatchingRule,
}

/// Why the bypass did not lift a denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum BypassNotApplicable<'a> {
    /// The caller is not authenticated yet: only the rules decide.
    CallerUnknown,
    /// The caller is not a trusted service instance.
    CallerNotTrusted { why: NotTrusted<'a> },
    /// The registry has virtual-network (service endpoint) rules, which switch the bypass off.
    VnetRulesPresent { service: TrustedService },
    /// The caller is trusted, but the registry's switch for it is off
    /// (`networkRuleBypassOptions: None`, and for tasks also
    /// `networkRuleBypassAllowedForTasks: false`).
    BypassDisabled { service: TrustedService },
}

/// The rule, listener or bypass that decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Reason<'a> {
    /// Allowed: arrived on this registry's private endpoint (rules do not apply).
    #[serde(rename_all = "camelCase")]
    PrivateEndpoint { endpoint_id: &'a str },
    /// Denied: arrived on a private endpoint bound to another registry. No bypass.
    #[serde(rename_all = "camelCase")]
    PrivateEndpointOfAnotherRegistry { endpoint_id: &'a str, endpoint_registry_id: &'a str },
    /// Allowed: public access enabled, default action Allow.
    DefaultActionAllow,
    /// Allowed: default action Deny, the client address is in `ipRules[index]`.
    IpRule { index: usize, value: &'a str },
    /// Allowed: default action Deny, the client address is in a prefix of
    /// `virtualNetworkRules[index]`.
    #[serde(rename_all = "camelCase")]
    VnetRule { index: usize, subnet_id: &'a str, prefix: ipnet::IpNet },
    /// Allowed: the rules denied (`lifted`), and a trusted service instance bypassed them.
    Bypass { service: TrustedService, via: BypassVia, lifted: NetworkDenial },
    /// Denied by the rules, and the bypass did not apply.
    Denied { denial: NetworkDenial, bypass: BypassNotApplicable<'a> },
}

/// A network decision: allowed or denied, what decided, and the request facts an audit event
/// records (registry, client address, listener, principal and hosting resource).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkDecision<'a> {
    pub allowed: bool,
    pub reason: Reason<'a>,
    pub registry_id: &'a str,
    /// The normalised client address.
    pub client_ip: IpAddr,
    pub listener: &'a Arrival,
    pub caller: Option<&'a Caller>,
}

/// Decides whether a request may reach the registry over the network.
///
/// Order of checks:
/// 1. Private-endpoint listener: allowed if it is bound to the requested registry; denied if it
///    is bound to another registry (no bypass: that listener does not serve this registry).
/// 2. Public listener with `publicNetworkAccess: Disabled`: the rules deny.
/// 3. `defaultAction: Allow`: allowed (IP and virtual-network rules are not consulted).
/// 4. `defaultAction: Deny`: allowed by the first IP rule, else the first virtual-network rule,
///    containing the client address; otherwise the rules deny.
/// 5. Only when 2 or 4 denied: the bypass (see [`Reason::Bypass`] and [`BypassNotApplicable`]).
///
/// Deterministic and allocation-free; cheap enough to run again after authentication.
pub fn check<'a>(policy: &'a NetworkPolicy, request: &NetworkRequest<'a>) -> NetworkDecision<'a> {
    let client_ip = normalise_ip(request.client_ip);
    let (allowed, reason) = match request.arrival {
        Arrival::PrivateEndpoint { endpoint_id, registry_id } => {
            if registry_id.eq_ignore_ascii_case(request.registry_id) {
                (true, Reason::PrivateEndpoint { endpoint_id })
            } else {
                let reason =
                    Reason::PrivateEndpointOfAnotherRegistry { endpoint_id, endpoint_registry_id: registry_id };
                (false, reason)
            }
        }
        Arrival::Public => match public_rules(policy, client_ip) {
            Ok(reason) => (true, reason),
            Err(denial) => match bypass(policy, request.caller) {
                Ok((service, via)) => (true, Reason::Bypass { service, via, lifted: denial }),
                Err(bypass) => (false, Reason::Denied { denial, bypass }),
            },
        },
    };
    NetworkDecision {
        allowed,
        reason,
        registry_id: request.registry_id,
        client_ip,
        listener: request.arrival,
        caller: request.caller,
    }
}

/// What the public-endpoint rules alone decide for `ip`.
fn public_rules(policy: &NetworkPolicy, ip: IpAddr) -> Result<Reason<'_>, NetworkDenial> {
    if policy.public_network_access() == PublicNetworkAccess::Disabled {
        return Err(NetworkDenial::PublicAccessDisabled);
    }
    if policy.default_action() == DefaultAction::Allow {
        return Ok(Reason::DefaultActionAllow);
    }
    match policy.matching_rule(ip) {
        Some(RuleMatch::IpRule { index, value }) => Ok(Reason::IpRule { index, value }),
        Some(RuleMatch::VnetRule { index, subnet_id, prefix }) => Ok(Reason::VnetRule { index, subnet_id, prefix }),
        None => Err(NetworkDenial::NoMatchingRule),
    }
}

/// Whether the bypass lifts a network denial for `caller` under `policy`:
/// the caller must be a trusted service instance, the registry must have no virtual-network
/// rules, and the switch for that service must be on (`networkRuleBypassAllowedForTasks` for
/// task identities — reported as the deciding switch when on — else
/// `networkRuleBypassOptions: AzureServices`).
pub fn bypass<'a>(
    policy: &NetworkPolicy,
    caller: Option<&'a Caller>,
) -> Result<(TrustedService, BypassVia), BypassNotApplicable<'a>> {
    let caller = caller.ok_or(BypassNotApplicable::CallerUnknown)?;
    let service = classify(caller).map_err(|why| BypassNotApplicable::CallerNotTrusted { why })?;
    if policy.has_vnet_rules() {
        return Err(BypassNotApplicable::VnetRulesPresent { service });
    }
    if service == TrustedService::RegistryTasks && policy.bypass_for_tasks() {
        return Ok((service, BypassVia::TasksBypass));
    }
    if policy.allow_trusted_services() {
        Ok((service, BypassVia::TrustedServices))
    } else {
        Err(BypassNotApplicable::BypassDisabled { service })
    }
}

impl<'a> NetworkDecision<'a> {
    /// True when a trusted service got through by bypassing the rules.
    pub fn is_bypass(&self) -> bool {
        matches!(self.reason, Reason::Bypass { .. })
    }

    /// True for the decisions the audit log must record: every denial and every bypass.
    pub fn should_audit(&self) -> bool {
        !self.allowed || self.is_bypass()
    }

    /// ACR's deny message for this client, when denied.
    pub fn deny_message(&self) -> Option<String> {
        (!self.allowed).then(|| deny_message(self.client_ip))
    }

    /// One human-readable paragraph: what decided and why (for `check-access` and logs).
    pub fn explain(&self) -> String {
        self.to_string()
    }

    /// A short label of what decided, for audit fields: `privateEndpoint <id>`,
    /// `privateEndpointOfAnotherRegistry <id>`, `defaultActionAllow`, `ipRules[i] <value>`,
    /// `virtualNetworkRules[i] <subnet id>`, `bypass trustedServices|tasks (<service>)`,
    /// `denied publicAccessDisabled|noMatchingRule; bypass: <why not>`.
    pub fn deciding_rule(&self) -> String {
        match &self.reason {
            Reason::PrivateEndpoint { endpoint_id } => format!("privateEndpoint {endpoint_id}"),
            Reason::PrivateEndpointOfAnotherRegistry { endpoint_id, .. } => {
                format!("privateEndpointOfAnotherRegistry {endpoint_id}")
            }
            Reason::DefaultActionAllow => "defaultActionAllow".to_owned(),
            Reason::IpRule { index, value } => format!("ipRules[{index}] {value}"),
            Reason::VnetRule { index, subnet_id, .. } => format!("virtualNetworkRules[{index}] {subnet_id}"),
            Reason::Bypass { service, via, .. } => {
                let via = match via {
                    BypassVia::TrustedServices => "trustedServices",
                    BypassVia::TasksBypass => "tasks",
                };
                format!("bypass {via} ({service})")
            }
            Reason::Denied { denial, bypass } => {
                let denial = match denial {
                    NetworkDenial::PublicAccessDisabled => "publicAccessDisabled",
                    NetworkDenial::NoMatchingRule => "noMatchingRule",
                };
                let why = match bypass {
                    BypassNotApplicable::CallerUnknown => "callerUnknown",
                    BypassNotApplicable::CallerNotTrusted { .. } => "callerNotTrusted",
                    BypassNotApplicable::VnetRulesPresent { .. } => "vnetRulesPresent",
                    BypassNotApplicable::BypassDisabled { .. } => "bypassDisabled",
                };
                format!("denied {denial}; bypass: {why}")
            }
        }
    }
}

impl fmt::Display for NetworkDecision<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ip = self.client_ip;
        match &self.reason {
            Reason::PrivateEndpoint { endpoint_id } => write!(
                f,
                "allowed: the request arrived on private endpoint '{endpoint_id}' of this registry; \
                 public network access settings, IP rules and virtual-network rules do not apply \
                 to private endpoints"
            ),
            Reason::PrivateEndpointOfAnotherRegistry { endpoint_id, endpoint_registry_id } => write!(
                f,
                "denied: the request for registry '{}' arrived on private endpoint '{endpoint_id}', \
                 which belongs to registry '{endpoint_registry_id}'; a private endpoint serves only \
                 its own registry and no bypass applies",
                self.registry_id
            ),
            Reason::DefaultActionAllow => f.write_str(
                "allowed: public network access is enabled and the default action is Allow, \
                 so every client address may connect",
            ),
            Reason::IpRule { index, value } => write!(
                f,
                "allowed: the default action is Deny, and client IP '{ip}' matches IP rule \
                 '{value}' (ipRules[{index}])"
            ),
            Reason::VnetRule { index, subnet_id, prefix } => write!(
                f,
                "allowed: the default action is Deny, and client IP '{ip}' is in prefix {prefix} \
                 of subnet '{subnet_id}' (virtualNetworkRules[{index}])"
            ),
            Reason::Bypass { service, via, lifted } => {
                write!(f, "allowed by bypass: ")?;
                write_denial(f, *lifted, ip)?;
                write!(f, ", but the caller is a trusted service instance ({service}")?;
                if let Some(caller) = self.caller {
                    write!(f, ": {}", describe_identity(caller, *service))?;
                }
                write!(
                    f,
                    ") and {}; the bypass lifts only the network check, the caller still \
                     needs a role on the registry",
                    switch_phrase(*via)
                )
            }
            Reason::Denied { denial, bypass } => {
                write!(f, "denied: ")?;
                write_denial(f, *denial, ip)?;
                write!(f, "; the bypass does not apply: ")?;
                write_bypass_not_applicable(f, bypass)
            }
        }
    }
}

/// The registry switch a bypass went through, as a clause.
pub(crate) fn switch_phrase(via: BypassVia) -> &'static str {
    match via {
        BypassVia::TrustedServices => "the registry allows trusted services (networkRuleBypassOptions: AzureServices)",
        BypassVia::TasksBypass => {
            "the registry lets tasks bypass network rules (networkRuleBypassAllowedForTasks: true)"
        }
    }
}

fn write_denial(f: &mut fmt::Formatter<'_>, denial: NetworkDenial, ip: IpAddr) -> fmt::Result {
    match denial {
        NetworkDenial::PublicAccessDisabled => {
            write!(f, "public network access is disabled and client IP '{ip}' reached the public endpoint")
        }
        NetworkDenial::NoMatchingRule => write!(
            f,
            "the default action is Deny and client IP '{ip}' matches no IP rule or \
             virtual-network rule"
        ),
    }
}

pub(crate) fn write_bypass_not_applicable(f: &mut fmt::Formatter<'_>, reason: &BypassNotApplicable<'_>) -> fmt::Result {
    match reason {
        BypassNotApplicable::CallerUnknown => {
            f.write_str("the caller is not authenticated yet, so only the network rules decide")
        }
        BypassNotApplicable::CallerNotTrusted { why } => write!(f, "{why}"),
        BypassNotApplicable::VnetRulesPresent { service } => write!(
            f,
            "the caller is a trusted service instance ({service}), but the registry has \
             virtual-network (service endpoint) rules, which switch the bypass off"
        ),
        BypassNotApplicable::BypassDisabled { service } => {
            if *service == TrustedService::RegistryTasks {
                f.write_str(
                    "the caller is a registry task, but the registry allows neither trusted \
                     services (networkRuleBypassOptions: None) nor task bypass \
                     (networkRuleBypassAllowedForTasks: false)",
                )
            } else {
                write!(
                    f,
                    "the caller is a trusted service instance ({service}), but the registry does \
                     not allow trusted services (networkRuleBypassOptions: None)"
                )
            }
        }
    }
}

/// "system-assigned identity of container group 'cg1'", "the built-in Defender scanner", …
pub(crate) fn describe_identity(caller: &Caller, service: TrustedService) -> String {
    let noun = match service {
        TrustedService::ContainerInstances => "container group",
        TrustedService::MachineLearning => "ML workspace",
        TrustedService::RegistryTasks => "registry task",
        TrustedService::DefenderForCloud => return "the built-in Defender scanner".to_owned(),
        TrustedService::RegistryImport => return "the registry import service".to_owned(),
    };
    let kind = caller.identity_kind.map(ManagedIdentityKind::describe).unwrap_or("managed identity");
    match caller.hosting_name() {
        Some(name) => format!("{kind} of {noun} '{name}'"),
        None => format!("{kind} of a {noun}"),
    }
}

/// ACR's exact deny message.
pub fn deny_message(client_ip: IpAddr) -> String {
    format!(
        "client with IP '{}' is not allowed access. Refer https://aka.ms/acr/firewall to grant access.",
        normalise_ip(client_ip)
    )
}
