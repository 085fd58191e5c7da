//! The impact preview: who loses data-plane network access when the policy changes.

mod common;

use common::*;
use wharf_netrules::*;

fn subject(description: &str, caller: Caller, addresses: SubjectAddresses) -> ImpactSubject {
    ImpactSubject { description: description.into(), caller, addresses, via_private_endpoint: false }
}

fn subjects() -> Vec<ImpactSubject> {
    use SubjectAddresses::*;
    vec![
        subject("container group cg1", sys(ACI), Unknown),
        subject("ML workspace ws1 (user-assigned)", user_mi(ML), Unknown),
        subject("task t1", sys(TASK), Unknown),
        subject(
            "build agent sp",
            Caller::principal(PrincipalType::ServicePrincipal, "sp"),
            Known(vec![ip("203.0.113.5")]),
        ),
        subject(
            "laptop user",
            Caller::principal(PrincipalType::User, "u"),
            Known(vec![ip("198.51.100.1"), ip("203.0.113.9")]),
        ),
        ImpactSubject { via_private_endpoint: true, ..subject("aks via private link", sys(ACI), Unknown) },
        subject("someone unknown", Caller::principal(PrincipalType::User, "x"), Unknown),
    ]
}

/// The losses only (gains are tested separately).
fn lines(old: &NetworkPolicy, new: &NetworkPolicy) -> Vec<(String, Change)> {
    impact(old, new, &subjects())
        .into_iter()
        .filter(|l| l.change.is_loss())
        .map(|l| (l.description.clone(), l.change))
        .collect()
}

#[test]
fn turning_trusted_services_off() {
    let old = policy("Disabled", "Deny", &[], &[], "AzureServices", false);
    let new = policy("Disabled", "Deny", &[], &[], "None", false);
    let out = impact(&old, &new, &subjects());
    assert_eq!(
        out.iter().map(|l| (l.description.as_str(), l.change)).collect::<Vec<_>>(),
        vec![("container group cg1", Change::Loses), ("task t1", Change::Loses),]
    );
    assert_eq!(
        out[0].to_string(),
        "container group cg1 loses data-plane network access: it relied on the trusted-services \
         bypass as system-assigned identity of container group 'cg1'; after the change public \
         network access is disabled and the bypass does not apply: trusted services are not \
         allowed (networkRuleBypassOptions: None)"
    );
    // With the task switch on, the task keeps its access.
    let new_tasks = policy("Disabled", "Deny", &[], &[], "None", true);
    assert_eq!(lines(&old, &new_tasks), vec![("container group cg1".to_owned(), Change::Loses)]);
    // With IP rules and unknown addresses, the loss depends on the address.
    let old = policy("Enabled", "Deny", &["203.0.113.0/24"], &[], "AzureServices", false);
    let new = policy("Enabled", "Deny", &["203.0.113.0/24"], &[], "None", false);
    assert_eq!(
        lines(&old, &new),
        vec![("container group cg1".to_owned(), Change::MayLose), ("task t1".to_owned(), Change::MayLose),]
    );
}

#[test]
fn disabling_public_access() {
    let old = NetworkPolicy::default();
    let new = policy("Disabled", "Deny", &[], &[], "AzureServices", false);
    let out = impact(&old, &new, &subjects());
    let got: Vec<_> = out.iter().map(|l| (l.description.as_str(), l.change)).collect();
    assert_eq!(
        got,
        vec![
            ("ML workspace ws1 (user-assigned)", Change::Loses),
            ("build agent sp", Change::Loses),
            ("laptop user", Change::Loses),
            ("someone unknown", Change::Loses),
        ]
    );
    assert!(out[0].denied_because.contains("user-assigned identity of an ML workspace does not count"));
    assert_eq!(out[2].addresses, vec![ip("198.51.100.1"), ip("203.0.113.9")]);
    assert!(out[1].to_string().contains("(from 203.0.113.5)"));
}

#[test]
fn default_action_deny_with_rules() {
    let old = NetworkPolicy::default();
    let new = policy("Enabled", "Deny", &["203.0.113.0/24"], &[], "AzureServices", false);
    let got = lines(&old, &new);
    assert_eq!(
        got,
        vec![
            ("ML workspace ws1 (user-assigned)".to_owned(), Change::MayLose),
            ("laptop user".to_owned(), Change::MayLose),
            ("someone unknown".to_owned(), Change::MayLose),
        ]
    );
    let out = impact(&old, &new, &subjects());
    assert_eq!(out[1].addresses, vec![ip("198.51.100.1")]);
}

#[test]
fn narrowing_and_widening_rules() {
    let old = policy("Enabled", "Deny", &["203.0.113.0/24", "2001:db8::/32"], &[], "None", false);
    let wider = policy("Enabled", "Deny", &["203.0.112.0/23", "2001:db8::/31"], &[], "None", false);
    let narrower = policy("Enabled", "Deny", &["203.0.113.0/25"], &[], "None", false);
    assert!(lines(&old, &wider).is_empty());
    let got = lines(&old, &narrower);
    // Known addresses still inside 203.0.113.0/25 keep access; every subject with an unknown
    // address may lose it.
    let may = |d: &str| (d.to_owned(), Change::MayLose);
    assert_eq!(
        got,
        vec![
            may("container group cg1"),
            may("ML workspace ws1 (user-assigned)"),
            may("task t1"),
            may("someone unknown"),
        ]
    );
    assert!(impact(&old, &old, &subjects()).is_empty());
}

#[test]
fn adding_a_vnet_rule_switches_the_bypass_off() {
    let old = policy("Enabled", "Deny", &["203.0.113.0/24"], &[], "AzureServices", false);
    let new = policy("Enabled", "Deny", &["203.0.113.0/24"], &[(SUBNET, &["10.1.0.0/16"])], "AzureServices", false);
    let out = impact(&old, &new, &subjects());
    let losses: Vec<_> = out.iter().filter(|l| l.change.is_loss()).collect();
    let names: Vec<_> = losses.iter().map(|l| l.description.as_str()).collect();
    assert_eq!(names, vec!["container group cg1", "task t1"]);
    assert!(losses.iter().all(|l| l.change == Change::MayLose));
    // The subnet's addresses are new: callers that depended on their address may gain.
    let gains: Vec<_> =
        out.iter().filter(|l| !l.change.is_loss()).map(|l| (l.description.as_str(), l.change)).collect();
    assert_eq!(
        gains,
        vec![("ML workspace ws1 (user-assigned)", Change::MayGain), ("someone unknown", Change::MayGain),]
    );
}

#[test]
fn gains_mirror_losses() {
    let closed = policy("Disabled", "Deny", &[], &[], "None", false);
    let open = NetworkPolicy::default();
    let out = impact(&closed, &open, &subjects());
    assert!(out.iter().all(|l| l.change == Change::Gains), "{out:?}");
    assert_eq!(out.len(), 6, "everyone but the private-link subject gains: {out:?}");
    assert_eq!(
        out[0].to_string(),
        "container group cg1 gains data-plane network access through public access with the \
         default action Allow; before the change public network access is disabled and the \
         bypass does not apply: trusted services are not allowed (networkRuleBypassOptions: None)"
    );
    // Turning trusted services back on: the trusted identities gain, no one else.
    let on = policy("Disabled", "Deny", &[], &[], "AzureServices", false);
    let gains: Vec<_> = impact(&closed, &on, &subjects()).into_iter().map(|l| (l.description, l.change)).collect();
    assert_eq!(gains, vec![("container group cg1".to_owned(), Change::Gains), ("task t1".to_owned(), Change::Gains),]);
    // A known address newly inside a rule gains for that address only.
    let narrow = policy("Enabled", "Deny", &["203.0.113.0/29"], &[], "None", false);
    let wide = policy("Enabled", "Deny", &["203.0.113.0/24"], &[], "None", false);
    let laptop: Vec<_> =
        impact(&narrow, &wide, &subjects()).into_iter().filter(|l| l.description == "laptop user").collect();
    assert_eq!(laptop.len(), 1);
    assert_eq!(laptop[0].change, Change::MayGain);
    assert_eq!(laptop[0].addresses, vec![ip("203.0.113.9")]);
}

#[test]
fn address_impact_of_closing_the_firewall() {
    let open = NetworkPolicy::default();
    let deny = policy("Enabled", "Deny", &["127.0.0.2"], &[], "AzureServices", false);
    let i = address_impact(&open, &deny);
    assert_eq!(i.lost, Some(AddressSet::EverywhereExcept(vec![net("127.0.0.2/32")])));
    assert_eq!(i.gained, None);
    assert_eq!(
        i.lost_text().unwrap(),
        "callers without a network bypass lose data-plane access from every public address \
         except 127.0.0.2/32"
    );
    // Reopening gains what was lost.
    let back = address_impact(&deny, &open);
    assert_eq!(back.lost, None);
    assert_eq!(back.gained, Some(AddressSet::EverywhereExcept(vec![net("127.0.0.2/32")])));
    // Public access off: everything is lost.
    let off = policy("Disabled", "Deny", &[], &[], "AzureServices", false);
    assert_eq!(address_impact(&open, &off).lost, Some(AddressSet::Everywhere));
    assert_eq!(address_impact(&deny, &off).lost, Some(AddressSet::Only(vec![net("127.0.0.2/32")])));
    // Bypass switches alone move no address.
    let no_bypass = policy("Enabled", "Deny", &["127.0.0.2"], &[], "None", false);
    assert!(address_impact(&deny, &no_bypass).is_empty());
    // Narrowing a rule loses the difference, as prefixes; overlapping rules merge.
    let wide = policy("Enabled", "Deny", &["10.0.0.0/24", "10.0.0.128/25", "2001:db8::/32"], &[], "None", false);
    let narrow = policy("Enabled", "Deny", &["10.0.0.0/25"], &[], "None", false);
    let i = address_impact(&wide, &narrow);
    assert_eq!(i.lost, Some(AddressSet::Only(vec![net("10.0.0.128/25"), net("2001:db8::/32")])));
    assert_eq!(i.gained, None);
    assert_eq!(wide.public_reach(), PublicReach::Only(vec![net("10.0.0.0/24"), net("2001:db8::/32")]));
}

#[test]
fn any_public_address() {
    let cg = sys(ACI);
    let user = Caller::principal(PrincipalType::User, "u");
    let open = NetworkPolicy::default();
    assert_eq!(any_address(&open, Some(&user)), AnyAddress::Everywhere);
    assert_eq!(any_address(&open, Some(&user)).allowed(), Some(true));
    let fw = policy("Enabled", "Deny", &["127.0.0.2"], &[], "AzureServices", false);
    let d = any_address(&fw, Some(&user));
    assert_eq!(d.allowed(), None);
    assert!(
        d.explain(Some(&user))
            .starts_with("depends on the client address: the default action is Deny and only 127.0.0.2/32"),
        "{}",
        d.explain(Some(&user))
    );
    let d = any_address(&fw, Some(&cg));
    assert_eq!(d.allowed(), Some(true));
    assert!(
        d.explain(Some(&cg)).contains("system-assigned identity of container group 'cg1'"),
        "{}",
        d.explain(Some(&cg))
    );
    let off = policy("Disabled", "Deny", &[], &[], "None", false);
    let d = any_address(&off, Some(&cg));
    assert_eq!(d.allowed(), Some(false));
    assert_eq!(
        d.explain(Some(&cg)),
        "denied from every public address: public network access is disabled; the bypass does \
         not apply: the caller is a trusted service instance (Azure Container Instances), but \
         the registry does not allow trusted services (networkRuleBypassOptions: None)"
    );
}
