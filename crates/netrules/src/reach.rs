//! The network rules when the client address is not known: which public addresses a policy
//! admits on its own, what it decides for a caller whatever its address, and which addresses
//! gain or lose access between two policies.
//!
//! Owns [`PublicReach`], [`any_address`] (the check for "any public address", used by
//! `check-access` without a client address) and [`address_impact`] (the impact preview's
//! "callers without a bypass lose access from …" line). Pure: values in, values out; it never
//! decides authorization.

use std::fmt;

use ipnet::IpNet;
use serde::Serialize;

use crate::caller::{Caller, TrustedService};
use crate::decision::{
    BypassNotApplicable, BypassVia, NetworkDenial, bypass, describe_identity, switch_phrase,
    write_bypass_not_applicable,
};
use crate::policy::{NetworkPolicy, PublicNetworkAccess};
use crate::ranges::{nets_to_intervals, subtract, to_nets};

/// The public client addresses a policy admits without any bypass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "prefixes", rename_all = "camelCase")]
pub enum PublicReach {
    /// Public access disabled, or default action Deny and no rule covers any address.
    Nowhere,
    /// Public access enabled and default action Allow.
    Everywhere,
    /// Default action Deny: the addresses of these prefixes (IP rules and the prefixes of
    /// virtual-network rule subnets, merged).
    Only(Vec<IpNet>),
}

/// A set of public client addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "prefixes", rename_all = "camelCase")]
pub enum AddressSet {
    Everywhere,
    EverywhereExcept(Vec<IpNet>),
    Only(Vec<IpNet>),
}

impl fmt::Display for AddressSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressSet::Everywhere => f.write_str("every public address"),
            AddressSet::EverywhereExcept(nets) => {
                write!(f, "every public address except {}", list(nets))
            }
            AddressSet::Only(nets) => f.write_str(&list(nets)),
        }
    }
}

fn list(nets: &[IpNet]) -> String {
    nets.iter().map(IpNet::to_string).collect::<Vec<_>>().join(", ")
}

/// The addresses in `before` and not in `after`.
fn minus(before: &PublicReach, after: &PublicReach) -> Option<AddressSet> {
    use PublicReach::{Everywhere, Nowhere, Only};
    match (before, after) {
        (Nowhere, _) | (_, Everywhere) => None,
        (Everywhere, Nowhere) => Some(AddressSet::Everywhere),
        (Everywhere, Only(kept)) => Some(AddressSet::EverywhereExcept(kept.clone())),
        (Only(nets), Nowhere) => Some(AddressSet::Only(nets.clone())),
        (Only(a), Only(b)) => {
            let ((a4, a6), (b4, b6)) = (nets_to_intervals(a), nets_to_intervals(b));
            let mut left = to_nets(&subtract(&a4, &b4), false);
            left.extend(to_nets(&subtract(&a6, &b6), true));
            (!left.is_empty()).then_some(AddressSet::Only(left))
        }
    }
}

/// How the public addresses the rules admit (without a bypass) change between two policies:
/// what every caller without a bypass — users, service principals, the admin user, repository
/// tokens, anonymous pull, untrusted identities — gains or loses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AddressImpact {
    pub before: PublicReach,
    pub after: PublicReach,
    /// Addresses admitted before and not after.
    pub lost: Option<AddressSet>,
    /// Addresses admitted after and not before.
    pub gained: Option<AddressSet>,
}

impl AddressImpact {
    /// True when no address changes side.
    pub fn is_empty(&self) -> bool {
        self.lost.is_none() && self.gained.is_none()
    }

    /// "callers without a network bypass lose data-plane access from …", if any are lost.
    pub fn lost_text(&self) -> Option<String> {
        self.lost.as_ref().map(|set| format!("callers without a network bypass lose data-plane access from {set}"))
    }

    /// "callers without a network bypass gain data-plane access from …", if any are gained.
    pub fn gained_text(&self) -> Option<String> {
        self.gained.as_ref().map(|set| format!("callers without a network bypass gain data-plane access from {set}"))
    }
}

/// Which public addresses gain or lose access when `old` is replaced by `new`, for callers no
/// bypass admits. Private-endpoint traffic is never affected by these settings.
pub fn address_impact(old: &NetworkPolicy, new: &NetworkPolicy) -> AddressImpact {
    let (before, after) = (old.public_reach(), new.public_reach());
    AddressImpact { lost: minus(&before, &after), gained: minus(&after, &before), before, after }
}

/// The network decision on the public endpoint for a caller whose client address is unknown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum AnyAddress<'a> {
    /// Allowed from every public address: public access enabled, default action Allow.
    Everywhere,
    /// Allowed from every public address by the bypass, although the rules admit only `rules`.
    Bypass { service: TrustedService, via: BypassVia, rules: PublicReach },
    /// Allowed only from these prefixes; the bypass does not apply.
    OnlyFrom { prefixes: Vec<IpNet>, bypass: BypassNotApplicable<'a> },
    /// Denied from every public address; the bypass does not apply.
    Nowhere { denial: NetworkDenial, bypass: BypassNotApplicable<'a> },
}

/// What the rules decide for `caller` (`None`: not authenticated) on the public endpoint,
/// whatever its client address.
pub fn any_address<'a>(policy: &NetworkPolicy, caller: Option<&'a Caller>) -> AnyAddress<'a> {
    let rules = policy.public_reach();
    if rules == PublicReach::Everywhere {
        return AnyAddress::Everywhere;
    }
    match bypass(policy, caller) {
        Ok((service, via)) => AnyAddress::Bypass { service, via, rules },
        Err(why) => match rules {
            PublicReach::Only(prefixes) => AnyAddress::OnlyFrom { prefixes, bypass: why },
            _ => AnyAddress::Nowhere {
                denial: if policy.public_network_access() == PublicNetworkAccess::Disabled {
                    NetworkDenial::PublicAccessDisabled
                } else {
                    NetworkDenial::NoMatchingRule
                },
                bypass: why,
            },
        },
    }
}

impl AnyAddress<'_> {
    /// `Some(true)` / `Some(false)` when the answer is the same for every public address,
    /// `None` when it depends on the address.
    pub fn allowed(&self) -> Option<bool> {
        match self {
            AnyAddress::Everywhere | AnyAddress::Bypass { .. } => Some(true),
            AnyAddress::Nowhere { .. } => Some(false),
            AnyAddress::OnlyFrom { .. } => None,
        }
    }

    /// One paragraph; `caller` names the identity in a bypass.
    pub fn explain(&self, caller: Option<&Caller>) -> String {
        Explained(self, caller).to_string()
    }
}

struct Explained<'x, 'a>(&'x AnyAddress<'a>, Option<&'x Caller>);

impl fmt::Display for Explained<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            AnyAddress::Everywhere => f.write_str(
                "allowed from every public address: public network access is enabled and the \
                 default action is Allow",
            ),
            AnyAddress::Bypass { service, via, rules } => {
                write!(f, "allowed from every public address by bypass: ")?;
                match rules {
                    PublicReach::Only(nets) => write!(
                        f,
                        "the rules admit only {}, but the caller is a trusted service instance \
                         ({service}",
                        list(nets)
                    )?,
                    _ => write!(
                        f,
                        "the rules admit no public address, but the caller is a trusted service \
                         instance ({service}"
                    )?,
                }
                if let Some(caller) = self.1 {
                    write!(f, ": {}", describe_identity(caller, *service))?;
                }
                write!(f, ") and {}; the bypass lifts only the network check", switch_phrase(*via))
            }
            AnyAddress::OnlyFrom { prefixes, bypass } => {
                write!(
                    f,
                    "depends on the client address: the default action is Deny and only {} \
                     (IP and virtual-network rules) may connect; the bypass does not apply: ",
                    list(prefixes)
                )?;
                write_bypass_not_applicable(f, bypass)
            }
            AnyAddress::Nowhere { denial, bypass } => {
                f.write_str("denied from every public address: ")?;
                f.write_str(match denial {
                    NetworkDenial::PublicAccessDisabled => "public network access is disabled",
                    NetworkDenial::NoMatchingRule => {
                        "the default action is Deny and there are no IP or virtual-network rules"
                    }
                })?;
                f.write_str("; the bypass does not apply: ")?;
                write_bypass_not_applicable(f, bypass)
            }
        }
    }
}
