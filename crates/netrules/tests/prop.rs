//! Property tests: the compiled O(log n) lookup agrees with a naive linear scan, `check()`
//! agrees with a naive reference, and client-address extraction never trusts untrusted peers.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use common::*;
use ipnet::IpNet;
use proptest::prelude::*;
use wharf_netrules::*;

/// IPv4 addresses clustered in a few /16s so that random rules overlap often.
fn v4() -> impl Strategy<Value = Ipv4Addr> {
    (prop::sample::select(vec![10u8, 192, 203]), 0u8..3, any::<u16>())
        .prop_map(|(a, b, rest)| Ipv4Addr::new(a, b, (rest >> 8) as u8, rest as u8))
}

fn v6() -> impl Strategy<Value = Ipv6Addr> {
    (0u16..3, any::<u16>(), any::<u64>()).prop_map(|(a, b, low)| {
        Ipv6Addr::new(0x2001, 0xdb8, a, b, (low >> 48) as u16, (low >> 32) as u16, (low >> 16) as u16, low as u16)
    })
}

fn addr() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        3 => v4().prop_map(IpAddr::V4),
        1 => v4().prop_map(|a| IpAddr::V6(a.to_ipv6_mapped())),
        3 => v6().prop_map(IpAddr::V6),
    ]
}

/// A rule as ARM text: a single address or a CIDR (host bits possibly set), v4, v6 or mapped.
fn rule_text() -> impl Strategy<Value = String> {
    prop_oneof![
        (v4(), 0u8..=32).prop_map(|(a, l)| format!("{a}/{l}")),
        (v4(), 8u8..=32).prop_map(|(a, l)| format!("{a}/{l}")),
        v4().prop_map(|a| a.to_string()),
        (v6(), 16u8..=128).prop_map(|(a, l)| format!("{a}/{l}")),
        (v6(), 0u8..=128).prop_map(|(a, l)| format!("{a}/{l}")),
        v6().prop_map(|a| a.to_string()),
        (v4(), 104u8..=128).prop_map(|(a, l)| format!("{}/{l}", a.to_ipv6_mapped())),
    ]
}

fn prefix() -> impl Strategy<Value = IpNet> {
    prop_oneof![
        (v4(), 8u8..=32).prop_map(|(a, l)| IpNet::new(IpAddr::V4(a), l).unwrap()),
        (v6(), 32u8..=128).prop_map(|(a, l)| IpNet::new(IpAddr::V6(a), l).unwrap()),
    ]
}

fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// The obviously-correct reference: parse each rule independently and scan in order.
fn naive_match(ips: &[String], vnets: &[(String, Vec<IpNet>)], ip: IpAddr) -> Option<(bool, usize)> {
    let ip = canonical(ip);
    let as_net = |n: IpNet| -> IpNet {
        match n {
            IpNet::V6(v6) if v6.prefix_len() >= 96 && v6.network().to_ipv4_mapped().is_some() => {
                IpNet::new(IpAddr::V4(v6.network().to_ipv4_mapped().unwrap()), v6.prefix_len() - 96).unwrap()
            }
            other => other,
        }
    };
    for (i, text) in ips.iter().enumerate() {
        let n = text.parse::<IpNet>().unwrap_or_else(|_| IpNet::from(text.parse::<IpAddr>().unwrap()));
        if as_net(n).trunc().contains(&ip) {
            return Some((true, i));
        }
    }
    for (i, (_, prefixes)) in vnets.iter().enumerate() {
        if prefixes.iter().any(|p| as_net(*p).trunc().contains(&ip)) {
            return Some((false, i));
        }
    }
    None
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn compiled_lookup_agrees_with_linear_scan(
        ips in prop::collection::vec(rule_text(), 0..40),
        vnets in prop::collection::vec(prop::collection::vec(prefix(), 0..4), 0..6),
        probes in prop::collection::vec(addr(), 1..64),
    ) {
        let vnets: Vec<(String, Vec<IpNet>)> = vnets
            .into_iter()
            .enumerate()
            .map(|(i, p)| (format!("{SUBNET}{i}"), p))
            .collect();
        let policy = NetworkPolicy::from_properties("Enabled", "Deny", &ips, &vnets, "None", false).unwrap();
        // Probe the random addresses plus every rule's boundaries and their neighbours.
        let mut all = probes.clone();
        for rule in policy.ip_rules() {
            all.extend(boundaries(rule.net));
        }
        for (_, prefixes) in &vnets {
            for p in prefixes {
                all.extend(boundaries(*p));
            }
        }
        for ip in all {
            let got = policy.matching_rule(ip).map(|m| match m {
                RuleMatch::IpRule { index, .. } => (true, index),
                RuleMatch::VnetRule { index, .. } => (false, index),
            });
            prop_assert_eq!(got, naive_match(&ips, &vnets, ip), "address {}", ip);
        }
    }

    #[test]
    fn check_agrees_with_reference(
        public in any::<bool>(),
        deny in any::<bool>(),
        trusted_on in any::<bool>(),
        tasks_on in any::<bool>(),
        ips in prop::collection::vec(rule_text(), 0..10),
        with_vnet in any::<bool>(),
        caller_pick in 0usize..7,
        pe_pick in 0usize..3,
        client in addr(),
    ) {
        let vnets: Vec<(String, Vec<IpNet>)> = if with_vnet {
            vec![(SUBNET.to_owned(), vec![net("10.1.0.0/16")])]
        } else {
            vec![]
        };
        let policy = NetworkPolicy::from_properties(
            if public { "Enabled" } else { "Disabled" },
            if deny { "Deny" } else { "Allow" },
            &ips, &vnets,
            if trusted_on { "AzureServices" } else { "None" },
            tasks_on,
        ).unwrap();
        let callers = [
            None,
            Some(sys(ACI)),
            Some(user_mi(ML)),
            Some(sys(TASK)),
            Some(sys(APP)),
            Some(Caller::principal(PrincipalType::User, "u")),
            Some(Caller::builtin(BuiltinPrincipal::AcrImport)),
        ];
        let caller = callers[caller_pick].as_ref();
        let arrival = match pe_pick {
            0 => Arrival::Public,
            1 => Arrival::PrivateEndpoint { endpoint_id: "pe".into(), registry_id: REG.into() },
            _ => Arrival::PrivateEndpoint { endpoint_id: "pe".into(), registry_id: OTHER_REG.into() },
        };
        let d = check(&policy, &NetworkRequest { client_ip: client, arrival: &arrival, registry_id: REG, caller });

        // Reference, written from the issue text.
        let rules_allow = public && (!deny || naive_match(&ips, &vnets, client).is_some());
        let is_task = caller_pick == 3;
        let trusted = matches!(caller_pick, 1 | 3 | 6); // ACI sys, task sys, import
        let switch_on = trusted_on || (is_task && tasks_on);
        let bypass = trusted && !with_vnet && switch_on;
        let want = match pe_pick {
            1 => true,
            2 => false,
            _ => rules_allow || bypass,
        };
        prop_assert_eq!(d.allowed, want, "{}", d.explain());
        prop_assert_eq!(d.is_bypass(), pe_pick == 0 && !rules_allow && bypass);
        prop_assert_eq!(d.client_ip, canonical(client));
    }

    #[test]
    fn address_impact_is_the_exact_difference(
        old_ips in prop::collection::vec(rule_text(), 0..8),
        new_ips in prop::collection::vec(rule_text(), 0..8),
        old_open in 0usize..3,
        new_open in 0usize..3,
        probes in prop::collection::vec(addr(), 1..32),
    ) {
        // 0: public access disabled, 1: default Allow, 2: default Deny with the rules.
        let make = |pick: usize, ips: &[String]| {
            let (public, default) = match pick {
                0 => ("Disabled", "Deny"),
                1 => ("Enabled", "Allow"),
                _ => ("Enabled", "Deny"),
            };
            NetworkPolicy::from_properties(public, default, ips, &[], "None", false).unwrap()
        };
        let (old, new) = (make(old_open, &old_ips), make(new_open, &new_ips));
        let impact = address_impact(&old, &new);
        let in_set = |set: &Option<AddressSet>, ip: IpAddr| match set {
            None => false,
            Some(AddressSet::Everywhere) => true,
            Some(AddressSet::EverywhereExcept(nets)) => !nets.iter().any(|n| n.contains(&ip)),
            Some(AddressSet::Only(nets)) => nets.iter().any(|n| n.contains(&ip)),
        };
        let mut all = probes.clone();
        for rule in old.ip_rules().iter().chain(new.ip_rules()) {
            all.extend(boundaries(rule.net));
        }
        let user = Caller::principal(PrincipalType::User, "u");
        for ip in all {
            let ip = canonical(ip);
            let allowed = |p: &NetworkPolicy| check(p, &NetworkRequest { client_ip: ip, arrival: &Arrival::Public, registry_id: REG, caller: Some(&user) }).allowed;
            let (before, after) = (allowed(&old), allowed(&new));
            prop_assert_eq!(in_set(&impact.lost, ip), before && !after, "lost, address {}: {:?}", ip, impact);
            prop_assert_eq!(in_set(&impact.gained, ip), after && !before, "gained, address {}: {:?}", ip, impact);
        }
    }

    #[test]
    fn headers_from_untrusted_peers_never_count(
        peer in addr(),
        port in any::<u16>(),
        xff in ".{0,60}",
        fwd in ".{0,60}",
    ) {
        let proxies = [net("172.16.0.0/12")];
        let peer_c = canonical(peer);
        prop_assume!(!proxies[0].contains(&peer_c));
        for which in [ForwardedHeader::XForwardedFor, ForwardedHeader::Forwarded] {
            let h = ForwardingHeaders { x_forwarded_for: &[xff.as_bytes()], forwarded: &[fwd.as_bytes()] };
            let got = client_address(SocketAddr::new(peer, port), &h, which, &proxies);
            prop_assert_eq!(got.ip, peer_c);
            prop_assert_eq!(got.source, AddressSource::Peer);
        }
    }

    /// RFC 9110 §5.3: splitting one X-Forwarded-For list into several field lines anywhere
    /// between entries never changes the answer.
    #[test]
    fn xff_lines_are_one_list(
        entries in prop::collection::vec(prop_oneof![
            addr().prop_map(|a| a.to_string()),
            Just("10.1.2.3".to_string()),
            Just("garbage".to_string()),
            Just(String::new()),
        ], 1..6),
        cuts in prop::collection::vec(any::<bool>(), 6),
    ) {
        let proxies = [net("10.0.0.0/8")];
        let peer = sa_v4(10, 0, 0, 1);
        let joined = entries.join(", ");
        // Cut the list into lines after entry i where cuts[i] says so.
        let mut split: Vec<String> = Vec::new();
        let mut group: Vec<&str> = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            group.push(e);
            if cuts[i] || i + 1 == entries.len() {
                split.push(group.join(", "));
                group.clear();
            }
        }
        // An empty entry alone on a line is a blank line; keep lines non-blank so both forms
        // carry the same entries.
        prop_assume!(split.iter().all(|l| !l.trim().is_empty()));
        let one_line: [&[u8]; 1] = [joined.as_bytes()];
        let many: Vec<&[u8]> = split.iter().map(|l| l.as_bytes()).collect();
        let a = client_address(peer, &ForwardingHeaders { x_forwarded_for: &one_line, forwarded: &[] }, ForwardedHeader::XForwardedFor, &proxies);
        let b = client_address(peer, &ForwardingHeaders { x_forwarded_for: &many, forwarded: &[] }, ForwardedHeader::XForwardedFor, &proxies);
        prop_assert_eq!(a, b, "{:?} vs {:?}", joined, split);
    }

    /// The header that is not configured never decides: whatever it says, the answer is the
    /// configured header's, or the peer.
    #[test]
    fn the_other_header_never_decides(
        xff in "[0-9a-f:., \\[\\]]{0,40}",
        fwd in "(for=|For=\"|;|,| |[0-9.:\\[\\]\"])*",
    ) {
        let proxies = [net("10.0.0.0/8")];
        let peer = sa_v4(10, 0, 0, 1);
        let both = ForwardingHeaders { x_forwarded_for: &[xff.as_bytes()], forwarded: &[fwd.as_bytes()] };
        let only_xff = ForwardingHeaders { x_forwarded_for: &[xff.as_bytes()], forwarded: &[] };
        let only_fwd = ForwardingHeaders { x_forwarded_for: &[], forwarded: &[fwd.as_bytes()] };
        let x = client_address(peer, &both, ForwardedHeader::XForwardedFor, &proxies).ip;
        prop_assert!(x == peer.ip() || x == client_address(peer, &only_xff, ForwardedHeader::XForwardedFor, &proxies).ip);
        let f = client_address(peer, &both, ForwardedHeader::Forwarded, &proxies).ip;
        prop_assert!(f == peer.ip() || f == client_address(peer, &only_fwd, ForwardedHeader::Forwarded, &proxies).ip);
    }

    #[test]
    fn client_address_never_panics_and_returns_peer_or_a_header_address(
        xff in "[0-9a-f:., \\[\\]]{0,40}",
        fwd in "(for=|For=\"|;|,| |[0-9.:\\[\\]\"])*",
    ) {
        let proxies = [net("10.0.0.0/8")];
        let peer = sa_v4(10, 0, 0, 1);
        for which in [ForwardedHeader::XForwardedFor, ForwardedHeader::Forwarded] {
            let h = ForwardingHeaders { x_forwarded_for: &[xff.as_bytes()], forwarded: &[fwd.as_bytes()] };
            let got = client_address(peer, &h, which, &proxies).ip;
            prop_assert!(got == peer.ip() || xff.contains(&got.to_string()[..1]) || fwd.contains(&got.to_string()[..1]));
        }
    }
}

fn sa_v4(a: u8, b: u8, c: u8, d: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(a, b, c, d)), 443)
}

fn boundaries(n: IpNet) -> Vec<IpAddr> {
    let (lo, hi) = (n.network(), n.broadcast());
    let mut out = vec![lo, hi];
    match (lo, hi) {
        (IpAddr::V4(l), IpAddr::V4(h)) => {
            if let Some(x) = u32::from(l).checked_sub(1) {
                out.push(IpAddr::V4(x.into()));
            }
            if let Some(x) = u32::from(h).checked_add(1) {
                out.push(IpAddr::V4(x.into()));
            }
        }
        (IpAddr::V6(l), IpAddr::V6(h)) => {
            if let Some(x) = u128::from(l).checked_sub(1) {
                out.push(IpAddr::V6(x.into()));
            }
            if let Some(x) = u128::from(h).checked_add(1) {
                out.push(IpAddr::V6(x.into()));
            }
        }
        _ => {}
    }
    out
}
