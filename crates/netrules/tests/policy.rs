//! Compiling ARM properties: values, errors naming the bad rule, limits, CIDR boundaries.

mod common;

use common::*;
use wharf_netrules::*;

fn props(ips: &[&str]) -> Result<NetworkPolicy, NetRuleError> {
    let ips: Vec<String> = ips.iter().map(|s| s.to_string()).collect();
    NetworkPolicy::from_properties("Enabled", "Deny", &ips, &[], "AzureServices", false)
}

#[test]
fn enum_properties_and_defaults() {
    let p = NetworkPolicy::from_properties("disabled", "DENY", &[], &[], "none", true).unwrap();
    assert_eq!(p.public_network_access(), PublicNetworkAccess::Disabled);
    assert_eq!(p.default_action(), DefaultAction::Deny);
    assert!(!p.allow_trusted_services());
    assert!(p.bypass_for_tasks());
    let d = NetworkPolicy::default();
    assert_eq!(d.public_network_access(), PublicNetworkAccess::Enabled);
    assert_eq!(d.default_action(), DefaultAction::Allow);
    assert!(d.allow_trusted_services());
    assert!(!d.bypass_for_tasks());

    let bad = [
        (("Open", "Deny", "None"), NetRuleError::PublicNetworkAccess("Open".into())),
        (("Enabled", "Block", "None"), NetRuleError::DefaultAction("Block".into())),
        (("Enabled", "Deny", "Everything"), NetRuleError::BypassOptions("Everything".into())),
    ];
    for ((a, b, c), want) in bad {
        assert_eq!(NetworkPolicy::from_properties(a, b, &[], &[], c, false).unwrap_err(), want);
    }
}

#[test]
fn bad_rules_are_named() {
    let cases = [
        (vec!["10.0.0.0/8", "10.0.0.300"], 1, "10.0.0.300"),
        (vec!["10.0.0.0/33"], 0, "10.0.0.0/33"),
        (vec!["2001:db8::/129"], 0, "2001:db8::/129"),
        (vec!["1.2.3.4", ""], 1, ""),
        (vec!["010.0.0.0/8"], 0, "010.0.0.0/8"),
        (vec!["example.com"], 0, "example.com"),
        (vec!["1.2.3.4-1.2.3.9"], 0, "1.2.3.4-1.2.3.9"),
    ];
    for (rules, index, value) in cases {
        let err = props(&rules).unwrap_err();
        assert_eq!(err, NetRuleError::InvalidIpRule { index, value: value.into() });
        assert!(err.to_string().contains(&format!("ipRules[{index}]")));
    }
    let err =
        NetworkPolicy::from_properties("Enabled", "Deny", &[], &[(" ".into(), vec![])], "None", false).unwrap_err();
    assert_eq!(err, NetRuleError::EmptySubnetId { index: 0 });
}

#[test]
fn limits() {
    let ok: Vec<String> = (0..MAX_IP_RULES).map(|i| format!("10.0.{}.{}", i / 256, i % 256)).collect();
    assert!(NetworkPolicy::from_properties("Enabled", "Deny", &ok, &[], "None", false).is_ok());
    let mut too_many = ok.clone();
    too_many.push("192.0.2.1".into());
    assert_eq!(
        NetworkPolicy::from_properties("Enabled", "Deny", &too_many, &[], "None", false).unwrap_err(),
        NetRuleError::TooManyIpRules { count: 201, max: 200 }
    );
    let vnets: Vec<(String, Vec<ipnet::IpNet>)> =
        (0..=MAX_VNET_RULES).map(|i| (format!("{SUBNET}{i}"), vec![])).collect();
    assert_eq!(
        NetworkPolicy::from_properties("Enabled", "Deny", &[], &vnets, "None", false).unwrap_err(),
        NetRuleError::TooManyVnetRules { count: 101, max: 100 }
    );
    assert!(NetworkPolicy::from_properties("Enabled", "Deny", &[], &vnets[..100], "None", false).is_ok());
}

#[test]
fn cidr_boundaries_v4_v6_and_mapped() {
    let p = props(&[
        "192.0.2.0/25",
        "198.51.100.77",
        "10.1.2.3/16",
        "2001:db8:1::/48",
        "2001:db8:2::5",
        "::ffff:203.0.113.0/120",
        "0.0.0.0/32",
    ])
    .unwrap();
    let cases: &[(&str, Option<usize>)] = &[
        ("192.0.1.255", None),
        ("192.0.2.0", Some(0)),
        ("192.0.2.127", Some(0)),
        ("192.0.2.128", None),
        ("198.51.100.76", None),
        ("198.51.100.77", Some(1)),
        ("198.51.100.78", None),
        ("10.0.255.255", None),
        ("10.1.0.0", Some(2)), // host bits cleared
        ("10.1.255.255", Some(2)),
        ("10.2.0.0", None),
        ("2001:db8:0:ffff:ffff:ffff:ffff:ffff", None),
        ("2001:db8:1::", Some(3)),
        ("2001:db8:1:ffff:ffff:ffff:ffff:ffff", Some(3)),
        ("2001:db8:2::", None),
        ("2001:db8:2::4", None),
        ("2001:db8:2::5", Some(4)),
        ("2001:db8:2::6", None),
        ("203.0.113.0", Some(5)), // IPv4-mapped rule became 203.0.113.0/24
        ("203.0.113.255", Some(5)),
        ("::ffff:203.0.113.9", Some(5)),
        ("203.0.114.0", None),
        ("::ffff:192.0.2.5", Some(0)),
        ("::ffff:192.0.2.200", None),
        ("0.0.0.0", Some(6)),
        ("0.0.0.1", None),
        ("::", None),         // IPv6 unspecified is not IPv4 0.0.0.0
        ("::c000:205", None), // IPv4-compatible (deprecated) stays IPv6
    ];
    for &(addr, want) in cases {
        let got = p.matching_rule(ip(addr)).map(|m| match m {
            RuleMatch::IpRule { index, .. } => index,
            RuleMatch::VnetRule { .. } => usize::MAX,
        });
        assert_eq!(got, want, "{addr}");
    }
    assert_eq!(p.ip_rules()[2].value, "10.1.2.3/16");
    assert_eq!(p.ip_rules()[2].net, net("10.1.0.0/16"));
    assert_eq!(p.ip_rules()[5].net, net("203.0.113.0/24"));
}

#[test]
fn whole_space_rules_and_precedence() {
    let p = policy(
        "Enabled",
        "Deny",
        &["10.0.0.0/8", "10.1.0.0/16", "::/0"],
        &[(SUBNET, &["10.1.0.0/16", "0.0.0.0/0"])],
        "None",
        false,
    );
    let m = |a: &str| p.matching_rule(ip(a));
    assert_eq!(m("10.1.1.1"), Some(RuleMatch::IpRule { index: 0, value: "10.0.0.0/8" }));
    assert_eq!(m("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), Some(RuleMatch::IpRule { index: 2, value: "::/0" }));
    assert_eq!(
        m("255.255.255.255"),
        Some(RuleMatch::VnetRule { index: 0, subnet_id: SUBNET, prefix: net("0.0.0.0/0") })
    );
    assert!(p.has_vnet_rules());
}

#[test]
fn ip_rules_ignored_when_default_action_allows() {
    let p = policy("Enabled", "Allow", &["192.0.2.0/24"], &[], "None", false);
    let arrival = Arrival::Public;
    assert_eq!(decide(&p, "198.51.100.1", &arrival, None).reason, Reason::DefaultActionAllow);
    assert_eq!(decide(&p, "192.0.2.1", &arrival, None).reason, Reason::DefaultActionAllow);
}
