//! Impact preview of a network-policy change: who loses (or gains) data-plane network access.
//!
//! Owns comparing an old and a new policy for a list of subjects (identities with roles on the
//! registry, their hosting resources and, where known, their client addresses). It never
//! applies a change and never looks up roles: the caller passes the subjects in. The
//! address-only view (what every caller without a bypass gains or loses) is
//! [`crate::address_impact`].

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

use crate::caller::{Caller, TrustedService};
use crate::decision::{
    Arrival, BypassNotApplicable, BypassVia, NetworkRequest, Reason, bypass, check, describe_identity,
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

/// What happens to a subject's network access, and how sure the preview is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Change {
    /// Allowed before, denied after, for every known address (or regardless of address).
    Loses,
    /// Depends on an address the preview does not know (or on some of the known ones only).
    MayLose,
    /// Denied before, allowed after, for every known address (or regardless of address).
    Gains,
    /// Gains access from some addresses only, or from an address the preview does not know.
    MayGain,
}

impl Change {
    pub fn is_loss(self) -> bool {
        matches!(self, Change::Loses | Change::MayLose)
    }

    pub fn verb(self) -> &'static str {
        match self {
            Change::Loses => "loses",
            Change::MayLose => "may lose",
            Change::Gains => "gains",
            Change::MayGain => "may gain",
        }
    }
}

/// One subject that loses or gains (or may lose or gain) network access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImpactLine {
    /// Index into the `subjects` slice.
    pub subject: usize,
    pub description: String,
    pub change: Change,
    /// What lets it in on the allowed side (before the change for a loss, after it for a
    /// gain), e.g. "the trusted-services bypass as system-assigned identity of container group
    /// 'cg1'".
    pub allowed_by: String,
    /// Why it is denied on the other side (after the change for a loss, before it for a gain).
    pub denied_because: String,
    /// The known addresses that lose or gain access (empty when addresses are unknown).
    pub addresses: Vec<IpAddr>,
}

impl fmt::Display for ImpactLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = self.change.verb();
        if self.change.is_loss() {
            write!(
                f,
                "{} {verb} data-plane network access: it relied on {}; after the change {}",
                self.description, self.allowed_by, self.denied_because
            )?;
        } else {
            write!(
                f,
                "{} {verb} data-plane network access through {}; before the change {}",
                self.description, self.allowed_by, self.denied_because
            )?;
        }
        if !self.addresses.is_empty() {
            let list: Vec<String> = self.addresses.iter().map(IpAddr::to_string).collect();
            write!(f, " (from {})", list.join(", "))?;
        }
        Ok(())
    }
}

/// Which way a comparison runs: losses compare `old → new`, gains the same way round
/// `new → old` (a gain is a loss in reverse).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Loss,
    Gain,
}

impl Direction {
    fn change(self, certain: bool) -> Change {
        match (self, certain) {
            (Direction::Loss, true) => Change::Loses,
            (Direction::Loss, false) => Change::MayLose,
            (Direction::Gain, true) => Change::Gains,
            (Direction::Gain, false) => Change::MayGain,
        }
    }
}

/// Who loses, then who gains, data-plane network access when `old` is replaced by `new`.
/// Subjects whose access does not change are not listed (a subject let in by a different rule
/// after the change keeps its access). Management-API access is never affected.
pub fn impact(old: &NetworkPolicy, new: &NetworkPolicy, subjects: &[ImpactSubject]) -> Vec<ImpactLine> {
    let mut out = compare(old, new, subjects, Direction::Loss);
    out.extend(compare(new, old, subjects, Direction::Gain));
    out
}

/// Subjects allowed under `from` and denied under `to`.
fn compare(from: &NetworkPolicy, to: &NetworkPolicy, subjects: &[ImpactSubject], dir: Direction) -> Vec<ImpactLine> {
    subjects
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.via_private_endpoint)
        .filter_map(|(i, s)| match &s.addresses {
            SubjectAddresses::Known(addrs) if !addrs.is_empty() => known(i, s, addrs, from, to, dir),
            _ => unknown(i, s, from, to, dir),
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
    dir: Direction,
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
                let denied = denied.strip_prefix("denied: ").unwrap_or(&denied).to_owned();
                first = Some((relied_on(&before.reason, &subject.caller), denied));
            }
        }
    }
    let (allowed_by, denied_because) = first?;
    Some(ImpactLine {
        subject: index,
        description: subject.description.clone(),
        change: dir.change(losing.len() == addrs.len()),
        allowed_by,
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
        Reason::PrivateEndpointOfAnotherRegistry { .. } | Reason::Denied { .. } => "nothing (it was denied)".to_owned(),
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
    /// Rules might admit the address; the bypass does not apply (why).
    DependsOnAddress(String),
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
        (Err(why), None) => Unknown::DependsOnAddress(not_applicable(&why)),
        (Err(why), Some(denial)) => {
            Unknown::Denied(format!("{denial} and the bypass does not apply: {}", not_applicable(&why)))
        }
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
    dir: Direction,
) -> Option<ImpactLine> {
    let line = |certain: bool, allowed_by: String, denied_because: String| ImpactLine {
        subject: index,
        description: subject.description.clone(),
        change: dir.change(certain),
        allowed_by,
        denied_because,
        addresses: Vec::new(),
    };
    let rules = "an IP or virtual-network rule matching its (unknown) address".to_owned();
    match (without_address(old, &subject.caller), without_address(new, &subject.caller)) {
        (Unknown::Denied(_), _) | (_, Unknown::Allowed(_)) => None,
        (Unknown::Allowed(before), Unknown::Denied(after)) => Some(line(true, before, after)),
        (Unknown::Allowed(before), Unknown::DependsOnAddress(no_bypass)) => {
            let only = match dir {
                Direction::Loss => "only addresses matching an IP or virtual-network rule are allowed",
                Direction::Gain => "only addresses matching an IP or virtual-network rule were allowed",
            };
            Some(line(false, before, format!("{only}, and the bypass does not apply: {no_bypass}")))
        }
        (Unknown::DependsOnAddress(_), Unknown::Denied(after)) => Some(line(false, rules, after)),
        (Unknown::DependsOnAddress(_), Unknown::DependsOnAddress(_)) => (!new.rules_cover(old)).then(|| {
            let uncovered = match dir {
                Direction::Loss => "some addresses the old rules allowed are no longer covered",
                Direction::Gain => "some addresses the new rules allow were not covered",
            };
            line(false, rules, uncovered.to_owned())
        }),
    }
}
