//! Impact preview of a network-policy change: who loses data-plane network access.
//!
//! Owns comparing an old and a new policy for a list of subjects (identities with roles on the
//! registry, their hosting resources and, where known, their client addresses). It never
//! applies a change and never looks up roles: the caller passes the subjects in.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

use crate::caller::{Caller, TrustedService};
use crate::decision::{
    Arrival, BypassNotApplicable, BypassVia, NetworkRequest, Reason, bypass, check,
    describe_identity,
};
use crate::policy::{DefaultAction, NetworkPolicy, PublicNetworkAccess};

/// The client addresses a subject typically connects from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "addresses", rename_all = "camelCase")]
pub enum SubjectAddresses {
    Unknown,
    Known(Vec<IpAddr>),
}

/// One identity with a role on the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImpactSubject {
    /// How the CLI names it, e.g. "container group cg1 (AcrPull)".
    pub description: String,
    /// Principal type, identity kind, hosting resource.
    pub caller: Caller,
    pub addresses: SubjectAddresses,
    /// True when it reaches the registry only through a private endpoint of this registry
    /// (then no public-network change affects it).
    pub via_private_endpoint: bool,
}

/// How sure the preview is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Certainty {
    /// Allowed before, denied after, for every known address (or regardless of address).
    Loses,
    /// Depends on an address the preview does not know (or on some of the known ones only).
    MayLose,
}

/// One subject that loses (or may lose) network access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImpactLine {
    /// Index into the `subjects` slice.
    pub subject: usize,
    pub description: String,
    pub certainty: Certainty,
    /// What let it in before, e.g. "the trusted-services bypass as system-assigned identity of
    /// container group 'cg1'".
    pub relied_on: String,
    /// Why it is denied after the change.
    pub denied_because: String,
    /// The known addresses that lose access (empty when addresses are unknown).
    pub addresses: Vec<IpAddr>,
}

impl fmt::Display for ImpactLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.certainty {
            Certainty::Loses => "loses",
            Certainty::MayLose => "may lose",
        };
        write!(
            f,
            "{} {verb} data-plane network access: it relied on {}; after the change {}",
            self.description, self.relied_on, self.denied_because
        )?;
        if !self.addresses.is_empty() {
            let list: Vec<String> = self.addresses.iter().map(IpAddr::to_string).collect();
            write!(f, " (from {})", list.join(", "))?;
        }
        Ok(())
    }
}

/// Who loses data-plane network access when `old` is replaced by `new`. Subjects that keep
/// access, or had none, are not listed. Management-API access is never affected.
pub fn impact(
    old: &NetworkPolicy,
    new: &NetworkPolicy,
    subjects: &[ImpactSubject],
) -> Vec<ImpactLine> {
    subjects
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.via_private_endpoint)
        .filter_map(|(i, s)| match &s.addresses {
            SubjectAddresses::Known(addrs) if !addrs.is_empty() => known(i, s, addrs, old, new),
            _ => unknown(i, s, old, new),
        })
        .collect()
}

const IMPACT_REGISTRY: &str = "impact-preview";

fn known(
    index: usize,
    subject: &ImpactSubject,
    addrs: &[IpAddr],
    old: &NetworkPolicy,
    new: &NetworkPolicy,
) -> Option<ImpactLine> {
    let arrival = Arrival::Public;
    let mut losing = Vec::new();
    let mut first = None;
    for &ip in addrs {
        let request = NetworkRequest {
            client_ip: ip,
            arrival: &arrival,
            registry_id: IMPACT_REGISTRY,
            caller: Some(&subject.caller),
        };
        let (before, after) = (check(old, &request), check(new, &request));
        if before.allowed && !after.allowed {
            losing.push(before.client_ip);
            if first.is_none() {
                let denied = after.explain();
                let denied = denied
                    .strip_prefix("denied: ")
                    .unwrap_or(&denied)
                    .to_owned();
                first = Some((relied_on(&before.reason, &subject.caller), denied));
            }
        }
    }
    let (relied_on, denied_because) = first?;
    Some(ImpactLine {
        subject: index,
        description: subject.description.clone(),
        certainty: if losing.len() == addrs.len() {
            Certainty::Loses
        } else {
            Certainty::MayLose
        },
        relied_on,
        denied_because,
        addresses: losing,
    })
}

fn relied_on(reason: &Reason<'_>, caller: &Caller) -> String {
    match reason {
        Reason::DefaultActionAllow => "public access with the default action Allow".to_owned(),
        Reason::IpRule { value, .. } => format!("IP rule '{value}'"),
        Reason::VnetRule { subnet_id, .. } => format!("virtual-network rule '{subnet_id}'"),
        Reason::Bypass { service, via, .. } => bypass_phrase(*service, *via, caller),
        Reason::PrivateEndpoint { endpoint_id } => format!("private endpoint '{endpoint_id}'"),
        Reason::PrivateEndpointOfAnotherRegistry { .. } | Reason::Denied { .. } => {
            "nothing (it was denied)".to_owned()
        }
    }
}

fn bypass_phrase(service: TrustedService, via: BypassVia, caller: &Caller) -> String {
    let switch = match via {
        BypassVia::TrustedServices => "the trusted-services bypass",
        BypassVia::TasksBypass => "the task bypass (networkRuleBypassAllowedForTasks)",
    };
    format!("{switch} as {}", describe_identity(caller, service))
}

/// Access when the address is unknown: decided regardless of address, or dependent on it.
enum Unknown {
    Allowed(String),
    Denied(String),
    DependsOnAddress,
}

fn without_address(policy: &NetworkPolicy, caller: &Caller) -> Unknown {
    // (why the rules deny regardless of address, or None when rules might admit the address)
    let denial = if policy.public_network_access() == PublicNetworkAccess::Disabled {
        Some("public network access is disabled")
    } else if policy.default_action() == DefaultAction::Allow {
        return Unknown::Allowed("public access with the default action Allow".to_owned());
    } else if policy.has_no_rule_ranges() {
        Some("the default action is Deny and there are no IP or virtual-network rules")
    } else {
        None
    };
    match (bypass(policy, Some(caller)), denial) {
        (Ok((service, via)), _) => Unknown::Allowed(bypass_phrase(service, via, caller)),
        (Err(_), None) => Unknown::DependsOnAddress,
        (Err(why), Some(denial)) => Unknown::Denied(format!(
            "{denial} and the bypass does not apply: {}",
            not_applicable(&why)
        )),
    }
}

fn not_applicable(why: &BypassNotApplicable<'_>) -> String {
    match why {
        BypassNotApplicable::CallerNotTrusted { why } => why.to_string(),
        BypassNotApplicable::CallerUnknown => "the caller is unknown".to_owned(),
        BypassNotApplicable::VnetRulesPresent { .. } => {
            "the registry has virtual-network rules, which switch the bypass off".to_owned()
        }
        BypassNotApplicable::BypassDisabled { service } => {
            if *service == TrustedService::RegistryTasks {
                "neither trusted services nor task bypass are allowed".to_owned()
            } else {
                "trusted services are not allowed (networkRuleBypassOptions: None)".to_owned()
            }
        }
    }
}

fn unknown(
    index: usize,
    subject: &ImpactSubject,
    old: &NetworkPolicy,
    new: &NetworkPolicy,
) -> Option<ImpactLine> {
    let line = |certainty, relied_on: String, denied_because: String| ImpactLine {
        subject: index,
        description: subject.description.clone(),
        certainty,
        relied_on,
        denied_because,
        addresses: Vec::new(),
    };
    let rules = "an IP or virtual-network rule matching its (unknown) address".to_owned();
    match (
        without_address(old, &subject.caller),
        without_address(new, &subject.caller),
    ) {
        (Unknown::Denied(_), _) | (_, Unknown::Allowed(_)) => None,
        (Unknown::Allowed(before), Unknown::Denied(after)) => {
            Some(line(Certainty::Loses, before, after))
        }
        (Unknown::Allowed(before), Unknown::DependsOnAddress) => Some(line(
            Certainty::MayLose,
            before,
            "only addresses matching the new IP or virtual-network rules are allowed".to_owned(),
        )),
        (Unknown::DependsOnAddress, Unknown::Denied(after)) => {
            Some(line(Certainty::MayLose, rules, after))
        }
        (Unknown::DependsOnAddress, Unknown::DependsOnAddress) => {
            (!new.rules_cover(old)).then(|| {
                line(
                    Certainty::MayLose,
                    rules,
                    "some addresses the old rules allowed are no longer covered".to_owned(),
                )
            })
        }
    }
}
