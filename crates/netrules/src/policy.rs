//! A registry's network policy, compiled once from its ARM properties.
//!
//! Owns parsing and validating `publicNetworkAccess`, `networkRuleSet` (default action, IP
//! rules, virtual-network rules), `networkRuleBypassOptions` and
//! `networkRuleBypassAllowedForTasks`, enforcing ACR's rule limits, and the per-family range
//! tables that make rule lookup O(log n). It never sees a request or a caller.

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net};
use serde::Serialize;

use crate::error::NetRuleError;
use crate::ranges::{RangeTable, addr_key, net_bounds, to_nets};
use crate::reach::PublicReach;

/// ACR's limit on IP access rules per registry ("a maximum of 200 IP access rules").
pub const MAX_IP_RULES: usize = 200;
/// ACR's limit on virtual-network (service endpoint) rules per registry.
pub const MAX_VNET_RULES: usize = 100;

/// `publicNetworkAccess`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PublicNetworkAccess {
    Enabled,
    Disabled,
}

/// `networkRuleSet.defaultAction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DefaultAction {
    Allow,
    Deny,
}

/// One `networkRuleSet.ipRules[]` entry: the text as configured and the prefix it means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IpRule {
    /// The configured value, trimmed (what explanations and audit events quote).
    pub value: String,
    /// The prefix it covers: a single address becomes a /32 or /128, host bits are cleared,
    /// and IPv4-mapped IPv6 becomes IPv4.
    pub net: IpNet,
}

/// One `networkRuleSet.virtualNetworkRules[]` entry: a subnet with the ContainerRegistry
/// service endpoint, and the address prefixes of that subnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VnetRule {
    pub subnet_id: String,
    pub prefixes: Vec<IpNet>,
}

/// The rule that matched a client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum RuleMatch<'a> {
    /// `ipRules[index]`, quoted as configured.
    IpRule { index: usize, value: &'a str },
    /// `virtualNetworkRules[index]`, through one of its subnet prefixes.
    VnetRule { index: usize, subnet_id: &'a str, prefix: IpNet },
}

/// Which rule a table label stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Ip(usize),
    Vnet(usize, usize),
}

/// A registry's compiled network policy. Build it once per policy change with
/// [`NetworkPolicy::from_properties`]; [`crate::check`] then costs one binary search.
///
/// `Default` is a new ACR registry: public access enabled, default action Allow, trusted
/// services allowed, task bypass off, no rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkPolicy {
    public_network_access: PublicNetworkAccess,
    default_action: DefaultAction,
    allow_trusted_services: bool,
    bypass_for_tasks: bool,
    ip_rules: Vec<IpRule>,
    vnet_rules: Vec<VnetRule>,
    sources: Vec<Source>,
    v4: RangeTable,
    v6: RangeTable,
}

impl Default for NetworkPolicy {
    fn default() -> Self {
        NetworkPolicy {
            public_network_access: PublicNetworkAccess::Enabled,
            default_action: DefaultAction::Allow,
            allow_trusted_services: true,
            bypass_for_tasks: false,
            ip_rules: Vec::new(),
            vnet_rules: Vec::new(),
            sources: Vec::new(),
            v4: RangeTable::default(),
            v6: RangeTable::default(),
        }
    }
}

impl NetworkPolicy {
    /// Compiles a registry's ARM network properties.
    ///
    /// * `public_network_access`: `Enabled` | `Disabled`
    /// * `default_action`: `Allow` | `Deny`
    /// * `ip_rules`: IPv4/IPv6 addresses or CIDR ranges (at most [`MAX_IP_RULES`]); host bits
    ///   of a CIDR are cleared (`10.1.2.3/16` means `10.1.0.0/16`), IPv4-mapped IPv6 is
    ///   treated as IPv4.
    /// * `vnet_rules`: `(subnet id, subnet prefixes)` (at most [`MAX_VNET_RULES`]); a subnet
    ///   with no prefixes matches nothing.
    /// * `bypass_options`: `AzureServices` (allow trusted services) | `None`
    /// * `bypass_for_tasks`: `networkRuleBypassAllowedForTasks`
    ///
    /// Enum values are matched ASCII-case-insensitively, as ARM does.
    pub fn from_properties(
        public_network_access: &str,
        default_action: &str,
        ip_rules: &[String],
        vnet_rules: &[(String, Vec<IpNet>)],
        bypass_options: &str,
        bypass_for_tasks: bool,
    ) -> Result<NetworkPolicy, NetRuleError> {
        let public_network_access = match public_network_access.trim() {
            v if v.eq_ignore_ascii_case("Enabled") => PublicNetworkAccess::Enabled,
            v if v.eq_ignore_ascii_case("Disabled") => PublicNetworkAccess::Disabled,
            other => return Err(NetRuleError::PublicNetworkAccess(other.to_owned())),
        };
        let default_action = match default_action.trim() {
            v if v.eq_ignore_ascii_case("Allow") => DefaultAction::Allow,
            v if v.eq_ignore_ascii_case("Deny") => DefaultAction::Deny,
            other => return Err(NetRuleError::DefaultAction(other.to_owned())),
        };
        let allow_trusted_services = match bypass_options.trim() {
            v if v.eq_ignore_ascii_case("AzureServices") => true,
            v if v.eq_ignore_ascii_case("None") => false,
            other => return Err(NetRuleError::BypassOptions(other.to_owned())),
        };
        if ip_rules.len() > MAX_IP_RULES {
            return Err(NetRuleError::TooManyIpRules { count: ip_rules.len(), max: MAX_IP_RULES });
        }
        if vnet_rules.len() > MAX_VNET_RULES {
            return Err(NetRuleError::TooManyVnetRules { count: vnet_rules.len(), max: MAX_VNET_RULES });
        }

        let ip_rules = ip_rules
            .iter()
            .enumerate()
            .map(|(index, value)| {
                let value = value.trim();
                parse_ip_rule(value)
                    .map(|net| IpRule { value: value.to_owned(), net })
                    .ok_or_else(|| NetRuleError::InvalidIpRule { index, value: value.to_owned() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let vnet_rules = vnet_rules
            .iter()
            .enumerate()
            .map(|(index, (subnet_id, prefixes))| {
                let subnet_id = subnet_id.trim();
                if subnet_id.is_empty() {
                    return Err(NetRuleError::EmptySubnetId { index });
                }
                Ok(VnetRule { subnet_id: subnet_id.to_owned(), prefixes: prefixes.iter().map(normalise_net).collect() })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let mut policy = NetworkPolicy {
            public_network_access,
            default_action,
            allow_trusted_services,
            bypass_for_tasks,
            ip_rules,
            vnet_rules,
            ..NetworkPolicy::default()
        };
        policy.compile();
        Ok(policy)
    }

    /// Builds the range tables. Labels give the precedence when rules overlap: IP rules in
    /// order, then virtual-network rules in order (and their prefixes in order).
    fn compile(&mut self) {
        let mut sources = Vec::new();
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        let mut add = |net: &IpNet, source: Source| {
            let label = u32::try_from(sources.len()).unwrap_or(u32::MAX);
            sources.push(source);
            let (first, last) = net_bounds(net);
            match net {
                IpNet::V4(_) => v4.push((first, last, label)),
                IpNet::V6(_) => v6.push((first, last, label)),
            }
        };
        for (i, rule) in self.ip_rules.iter().enumerate() {
            add(&rule.net, Source::Ip(i));
        }
        for (i, rule) in self.vnet_rules.iter().enumerate() {
            for (k, prefix) in rule.prefixes.iter().enumerate() {
                add(prefix, Source::Vnet(i, k));
            }
        }
        self.sources = sources;
        self.v4 = RangeTable::build(&v4);
        self.v6 = RangeTable::build(&v6);
    }

    /// The first rule (IP rules before virtual-network rules, each in configured order) whose
    /// range contains `ip`. IPv4-mapped IPv6 addresses are matched as IPv4. O(log n).
    #[inline]
    pub fn matching_rule(&self, ip: IpAddr) -> Option<RuleMatch<'_>> {
        let ip = normalise_ip(ip);
        let label = match ip {
            IpAddr::V4(_) => self.v4.lookup(addr_key(ip)),
            IpAddr::V6(_) => self.v6.lookup(addr_key(ip)),
        }?;
        Some(match *self.sources.get(label as usize)? {
            Source::Ip(index) => RuleMatch::IpRule { index, value: &self.ip_rules[index].value },
            Source::Vnet(index, k) => RuleMatch::VnetRule {
                index,
                subnet_id: &self.vnet_rules[index].subnet_id,
                prefix: self.vnet_rules[index].prefixes[k],
            },
        })
    }

    /// True when every address any rule of `other` admits is also admitted by a rule here.
    pub(crate) fn rules_cover(&self, other: &NetworkPolicy) -> bool {
        self.v4.covers(&other.v4) && self.v6.covers(&other.v6)
    }

    /// True when no IP or virtual-network rule can match any address.
    pub(crate) fn has_no_rule_ranges(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// Every address an IP or virtual-network rule admits, as the fewest prefixes (IPv4 first,
    /// each family in address order; overlapping and adjacent rules merged).
    pub fn rule_prefixes(&self) -> Vec<IpNet> {
        let mut out = to_nets(&self.v4.intervals(), false);
        out.extend(to_nets(&self.v6.intervals(), true));
        out
    }

    /// The public client addresses the rules admit on their own, without any bypass.
    pub fn public_reach(&self) -> PublicReach {
        if self.public_network_access == PublicNetworkAccess::Disabled {
            return PublicReach::Nowhere;
        }
        if self.default_action == DefaultAction::Allow {
            return PublicReach::Everywhere;
        }
        match self.rule_prefixes() {
            nets if nets.is_empty() => PublicReach::Nowhere,
            nets => PublicReach::Only(nets),
        }
    }

    pub fn public_network_access(&self) -> PublicNetworkAccess {
        self.public_network_access
    }
    pub fn default_action(&self) -> DefaultAction {
        self.default_action
    }
    /// `networkRuleBypassOptions == AzureServices`.
    pub fn allow_trusted_services(&self) -> bool {
        self.allow_trusted_services
    }
    /// `networkRuleBypassAllowedForTasks`.
    pub fn bypass_for_tasks(&self) -> bool {
        self.bypass_for_tasks
    }
    pub fn ip_rules(&self) -> &[IpRule] {
        &self.ip_rules
    }
    pub fn vnet_rules(&self) -> &[VnetRule] {
        &self.vnet_rules
    }
    /// True when the registry has virtual-network (service endpoint) rules, which switch off
    /// every network bypass.
    pub fn has_vnet_rules(&self) -> bool {
        !self.vnet_rules.is_empty()
    }
}

/// Maps an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) to IPv4; every other address is
/// returned unchanged. Deprecated IPv4-compatible addresses (`::a.b.c.d`) stay IPv6.
#[inline]
pub fn normalise_ip(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// Clears host bits and maps prefixes inside `::ffff:0:0/96` to IPv4.
pub(crate) fn normalise_net(net: &IpNet) -> IpNet {
    if let IpNet::V6(n) = net
        && n.prefix_len() >= 96
        && let Some(v4) = n.network().to_ipv4_mapped()
        && let Ok(n4) = Ipv4Net::new(v4, n.prefix_len() - 96)
    {
        return IpNet::V4(n4.trunc());
    }
    net.trunc()
}

fn parse_ip_rule(value: &str) -> Option<IpNet> {
    if value.is_empty() {
        return None;
    }
    if let Ok(ip) = value.parse::<IpAddr>() {
        return Some(normalise_net(&IpNet::from(ip)));
    }
    // The address part goes through std's strict parser, which rejects leading zeros in IPv4
    // octets (`010.0.0.0` is octal to some tools), so such a rule is an error, not a surprise.
    let (addr, len) = value.split_once('/')?;
    let addr = addr.parse::<IpAddr>().ok()?;
    if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let net = IpNet::new(addr, len.parse::<u8>().ok()?).ok()?;
    Some(normalise_net(&net))
}
