//! The impact preview: who loses data-plane network access when the policy changes.

mod common;

use common::*;
use wharf_netrules::*;

fn subject(description: &str, caller: Caller, addresses: SubjectAddresses) -> ImpactSubject {
    ImpactSubject {
        description: description.into(),
        caller,
        addresses,
        via_private_endpoint: false,
    }
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
        ImpactSubject {
            via_private_endpoint: true,
            ..subject("aks via private link", sys(ACI), Unknown)
        },
        subject(
            "someone unknown",
            Caller::principal(PrincipalType::User, "x"),
            Unknown,
        ),
    ]
}

fn lines(old: &NetworkPolicy, new: &NetworkPolicy) -> Vec<(String, Certainty)> {
    impact(old, new, &subjects())
        .into_iter()
        .map(|l| (l.description.clone(), l.certainty))
        .collect()
}

#[test]
fn turning_trusted_services_off() {
    let old = policy("Disabled", "Deny", &[], &[], "AzureServices", false);
    let new = policy("Disabled", "Deny", &[], &[], "None", false);
    let out = impact(&old, &new, &subjects());
    assert_eq!(
        out.iter()
            .map(|l| (l.description.as_str(), l.certainty))
            .collect::<Vec<_>>(),
        vec![
            ("container group cg1", Certainty::Loses),
            ("task t1", Certainty::Loses),
        ]
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
    assert_eq!(
        lines(&old, &new_tasks),
        vec![("container group cg1".to_owned(), Certainty::Loses)]
    );
    // With IP rules and unknown addresses, the loss depends on the address.
    let old = policy(
        "Enabled",
        "Deny",
        &["203.0.113.0/24"],
        &[],
        "AzureServices",
        false,
    );
    let new = policy("Enabled", "Deny", &["203.0.113.0/24"], &[], "None", false);
    assert_eq!(
        lines(&old, &new),
        vec![
            ("container group cg1".to_owned(), Certainty::MayLose),
            ("task t1".to_owned(), Certainty::MayLose),
        ]
    );
}

#[test]
fn disabling_public_access() {
    let old = NetworkPolicy::default();
    let new = policy("Disabled", "Deny", &[], &[], "AzureServices", false);
    let out = impact(&old, &new, &subjects());
    let got: Vec<_> = out
        .iter()
        .map(|l| (l.description.as_str(), l.certainty))
        .collect();
    assert_eq!(
        got,
        vec![
            ("ML workspace ws1 (user-assigned)", Certainty::Loses),
            ("build agent sp", Certainty::Loses),
            ("laptop user", Certainty::Loses),
            ("someone unknown", Certainty::Loses),
        ]
    );
    assert!(
        out[0]
            .denied_because
            .contains("user-assigned identity of an ML workspace does not count")
    );
    assert_eq!(
        out[2].addresses,
        vec![ip("198.51.100.1"), ip("203.0.113.9")]
    );
    assert!(out[1].to_string().contains("(from 203.0.113.5)"));
}

#[test]
fn default_action_deny_with_rules() {
    let old = NetworkPolicy::default();
    let new = policy(
        "Enabled",
        "Deny",
        &["203.0.113.0/24"],
        &[],
        "AzureServices",
        false,
    );
    let got = lines(&old, &new);
    assert_eq!(
        got,
        vec![
            (
                "ML workspace ws1 (user-assigned)".to_owned(),
                Certainty::MayLose
            ),
            ("laptop user".to_owned(), Certainty::MayLose),
            ("someone unknown".to_owned(), Certainty::MayLose),
        ]
    );
    let out = impact(&old, &new, &subjects());
    assert_eq!(out[1].addresses, vec![ip("198.51.100.1")]);
}

#[test]
fn narrowing_and_widening_rules() {
    let old = policy(
        "Enabled",
        "Deny",
        &["203.0.113.0/24", "2001:db8::/32"],
        &[],
        "None",
        false,
    );
    let wider = policy(
        "Enabled",
        "Deny",
        &["203.0.112.0/23", "2001:db8::/31"],
        &[],
        "None",
        false,
    );
    let narrower = policy("Enabled", "Deny", &["203.0.113.0/25"], &[], "None", false);
    assert!(impact(&old, &wider, &subjects()).is_empty());
    let got = lines(&old, &narrower);
    // Known addresses still inside 203.0.113.0/25 keep access; every subject with an unknown
    // address may lose it.
    let may = |d: &str| (d.to_owned(), Certainty::MayLose);
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
    let old = policy(
        "Enabled",
        "Deny",
        &["203.0.113.0/24"],
        &[],
        "AzureServices",
        false,
    );
    let new = policy(
        "Enabled",
        "Deny",
        &["203.0.113.0/24"],
        &[(SUBNET, &["10.1.0.0/16"])],
        "AzureServices",
        false,
    );
    let out = impact(&old, &new, &subjects());
    let names: Vec<_> = out.iter().map(|l| l.description.as_str()).collect();
    assert_eq!(names, vec!["container group cg1", "task t1"]);
    assert!(out.iter().all(|l| l.certainty == Certainty::MayLose));
}
