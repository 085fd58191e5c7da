//! Every branch of `check()`, the seed's trusted-services table row by row, and the deny texts.

mod common;

use common::*;
use wharf_netrules::*;

const PUBLIC: Arrival = Arrival::Public;

fn pe(registry: &str) -> Arrival {
    Arrival::PrivateEndpoint { endpoint_id: "pe1".into(), registry_id: registry.into() }
}

#[test]
fn branches_of_check() {
    let open = policy("Enabled", "Allow", &[], &[], "AzureServices", false);
    let fw = policy("Enabled", "Deny", &["203.0.113.0/24", "198.51.100.7"], &[], "AzureServices", false);
    let fw_vnet = policy("Enabled", "Deny", &["203.0.113.0/24"], &[(SUBNET, &["10.1.0.0/16"])], "AzureServices", false);
    let closed = policy("Disabled", "Deny", &["203.0.113.0/24"], &[], "AzureServices", false);
    let pe_mine = pe(REG);
    let pe_other = pe(OTHER_REG);
    let pe_mine_case = pe(&REG.to_uppercase());
    let user = Caller::principal(PrincipalType::User, "u1");
    let aci = sys(ACI);

    struct Case<'a> {
        name: &'a str,
        policy: &'a NetworkPolicy,
        client: &'a str,
        arrival: &'a Arrival,
        caller: Option<&'a Caller>,
        want: Reason<'a>,
    }
    let cases = [
        Case {
            name: "own private endpoint, public access disabled",
            policy: &closed,
            client: "10.9.9.9",
            arrival: &pe_mine,
            caller: None,
            want: Reason::PrivateEndpoint { endpoint_id: "pe1" },
        },
        Case {
            name: "own private endpoint, id differs in case",
            policy: &fw,
            client: "10.9.9.9",
            arrival: &pe_mine_case,
            caller: None,
            want: Reason::PrivateEndpoint { endpoint_id: "pe1" },
        },
        Case {
            name: "private endpoint of another registry, even for a trusted service",
            policy: &open,
            client: "10.9.9.9",
            arrival: &pe_other,
            caller: Some(&aci),
            want: Reason::PrivateEndpointOfAnotherRegistry { endpoint_id: "pe1", endpoint_registry_id: OTHER_REG },
        },
        Case {
            name: "default action allow",
            policy: &open,
            client: "192.0.2.1",
            arrival: &PUBLIC,
            caller: None,
            want: Reason::DefaultActionAllow,
        },
        Case {
            name: "ip rule (range)",
            policy: &fw,
            client: "203.0.113.200",
            arrival: &PUBLIC,
            caller: None,
            want: Reason::IpRule { index: 0, value: "203.0.113.0/24" },
        },
        Case {
            name: "ip rule (single address)",
            policy: &fw,
            client: "198.51.100.7",
            arrival: &PUBLIC,
            caller: None,
            want: Reason::IpRule { index: 1, value: "198.51.100.7" },
        },
        Case {
            name: "vnet rule",
            policy: &fw_vnet,
            client: "10.1.2.3",
            arrival: &PUBLIC,
            caller: None,
            want: Reason::VnetRule { index: 0, subnet_id: SUBNET, prefix: net("10.1.0.0/16") },
        },
        Case {
            name: "no matching rule, unauthenticated",
            policy: &fw,
            client: "192.0.2.1",
            arrival: &PUBLIC,
            caller: None,
            want: Reason::Denied { denial: NetworkDenial::NoMatchingRule, bypass: BypassNotApplicable::CallerUnknown },
        },
        Case {
            name: "no matching rule, user",
            policy: &fw,
            client: "192.0.2.1",
            arrival: &PUBLIC,
            caller: Some(&user),
            want: Reason::Denied {
                denial: NetworkDenial::NoMatchingRule,
                bypass: BypassNotApplicable::CallerNotTrusted {
                    why: NotTrusted::PrincipalType { principal_type: PrincipalType::User },
                },
            },
        },
        Case {
            name: "no matching rule, trusted service bypasses",
            policy: &fw,
            client: "192.0.2.1",
            arrival: &PUBLIC,
            caller: Some(&aci),
            want: Reason::Bypass {
                service: TrustedService::ContainerInstances,
                via: BypassVia::TrustedServices,
                lifted: NetworkDenial::NoMatchingRule,
            },
        },
        Case {
            name: "public access disabled overrides a matching ip rule",
            policy: &closed,
            client: "203.0.113.5",
            arrival: &PUBLIC,
            caller: None,
            want: Reason::Denied {
                denial: NetworkDenial::PublicAccessDisabled,
                bypass: BypassNotApplicable::CallerUnknown,
            },
        },
        Case {
            name: "public access disabled, trusted service bypasses",
            policy: &closed,
            client: "192.0.2.1",
            arrival: &PUBLIC,
            caller: Some(&aci),
            want: Reason::Bypass {
                service: TrustedService::ContainerInstances,
                via: BypassVia::TrustedServices,
                lifted: NetworkDenial::PublicAccessDisabled,
            },
        },
        Case {
            name: "vnet rules switch the bypass off",
            policy: &fw_vnet,
            client: "192.0.2.1",
            arrival: &PUBLIC,
            caller: Some(&aci),
            want: Reason::Denied {
                denial: NetworkDenial::NoMatchingRule,
                bypass: BypassNotApplicable::VnetRulesPresent { service: TrustedService::ContainerInstances },
            },
        },
        Case {
            name: "matching rule allows without consulting the bypass",
            policy: &fw,
            client: "203.0.113.9",
            arrival: &PUBLIC,
            caller: Some(&aci),
            want: Reason::IpRule { index: 0, value: "203.0.113.0/24" },
        },
    ];
    for c in &cases {
        let d = decide(c.policy, c.client, c.arrival, c.caller);
        assert_eq!(d.reason, c.want, "{}", c.name);
        let allowed = !matches!(c.want, Reason::Denied { .. } | Reason::PrivateEndpointOfAnotherRegistry { .. });
        assert_eq!(d.allowed, allowed, "{}", c.name);
        assert_eq!(d.should_audit(), !allowed || d.is_bypass(), "{}", c.name);
        assert_eq!(d.deny_message().is_some(), !allowed, "{}", c.name);
        assert!(!d.explain().is_empty());
        assert_eq!(d.registry_id, REG);
    }
}

/// (name, caller, networkRuleBypassOptions, tasks switch, expected bypass or explanation text).
type Row = (&'static str, Caller, &'static str, bool, Result<(TrustedService, BypassVia), &'static str>);

/// The seed's table, row by row: (name, caller, trusted services on, tasks switch, expected).
#[test]
fn trusted_services_table() {
    use TrustedService::*;
    let app_acrpull = Caller { principal_id: Some("app-mi".into()), ..sys(APP) };
    let rows: Vec<Row> = vec![
        ("ACI system-assigned", sys(ACI), "AzureServices", false, Ok((ContainerInstances, BypassVia::TrustedServices))),
        (
            "ACI user-assigned",
            user_mi(ACI),
            "AzureServices",
            false,
            Ok((ContainerInstances, BypassVia::TrustedServices)),
        ),
        (
            "ML workspace system-assigned",
            sys(ML),
            "AzureServices",
            false,
            Ok((MachineLearning, BypassVia::TrustedServices)),
        ),
        (
            "ML workspace user-assigned",
            user_mi(ML),
            "AzureServices",
            false,
            Err("user-assigned identity of an ML workspace does not count"),
        ),
        (
            "task system-assigned, trusted services on",
            sys(TASK),
            "AzureServices",
            false,
            Ok((RegistryTasks, BypassVia::TrustedServices)),
        ),
        (
            "task system-assigned, trusted off, tasks switch on",
            sys(TASK),
            "None",
            true,
            Ok((RegistryTasks, BypassVia::TasksBypass)),
        ),
        (
            "task system-assigned, both on: tasks switch decides",
            sys(TASK),
            "AzureServices",
            true,
            Ok((RegistryTasks, BypassVia::TasksBypass)),
        ),
        ("task system-assigned, both off", sys(TASK), "None", false, Err("allows neither trusted services")),
        (
            "task user-assigned, tasks switch on",
            user_mi(TASK),
            "AzureServices",
            true,
            Err("user-assigned identity of a registry task does not count"),
        ),
        (
            "Defender scanner",
            Caller::builtin(BuiltinPrincipal::DefenderScanner),
            "AzureServices",
            false,
            Ok((DefenderForCloud, BypassVia::TrustedServices)),
        ),
        (
            "ACR import",
            Caller::builtin(BuiltinPrincipal::AcrImport),
            "AzureServices",
            false,
            Ok((RegistryImport, BypassVia::TrustedServices)),
        ),
        (
            "Defender scanner, trusted services off",
            Caller::builtin(BuiltinPrincipal::DefenderScanner),
            "None",
            true,
            Err("does not allow trusted services"),
        ),
        ("ACI, trusted services off", sys(ACI), "None", true, Err("does not allow trusted services")),
        (
            "App Service with AcrPull",
            app_acrpull,
            "AzureServices",
            false,
            Err("App Service (Microsoft.Web/sites) is not a trusted service"),
        ),
        ("App Service slot", sys(&format!("{APP}/slots/staging")), "AzureServices", false, Err("App Service")),
        (
            "user",
            Caller::principal(PrincipalType::User, "u"),
            "AzureServices",
            false,
            Err("a user is never a trusted service"),
        ),
        (
            "service principal",
            Caller::principal(PrincipalType::ServicePrincipal, "sp"),
            "AzureServices",
            false,
            Err("a service principal is never"),
        ),
        (
            "admin user",
            Caller::principal(PrincipalType::RegistryAdmin, "reg1"),
            "AzureServices",
            false,
            Err("admin user is never"),
        ),
        (
            "anonymous",
            Caller::principal(PrincipalType::Anonymous, ""),
            "AzureServices",
            false,
            Err("anonymous caller is never"),
        ),
        ("empty caller", Caller::default(), "AzureServices", false, Err("principal is unknown")),
        ("MI without kind", Caller { identity_kind: None, ..sys(ACI) }, "AzureServices", false, Err("kind")),
        (
            "MI without hosting resource",
            Caller { hosting_resource_id: None, ..sys(ACI) },
            "AzureServices",
            false,
            Err("no known hosting resource"),
        ),
        (
            "MI of a VM",
            sys("/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/vm1"),
            "AzureServices",
            false,
            Err("vm1 are not a trusted service"),
        ),
        (
            "claimed type contradicts id",
            Caller { hosting_resource_type: Some(CONTAINER_GROUPS.into()), ..sys(APP) },
            "AzureServices",
            false,
            Err("not of the claimed type"),
        ),
        (
            "type given without id",
            Caller {
                hosting_resource_id: None,
                hosting_resource_type: Some("microsoft.containerinstance/CONTAINERGROUPS".into()),
                ..sys(ACI)
            },
            "AzureServices",
            false,
            Ok((ContainerInstances, BypassVia::TrustedServices)),
        ),
    ];
    for (name, caller, bypass_opt, tasks, want) in rows {
        let p = policy("Disabled", "Deny", &[], &[], bypass_opt, tasks);
        let d = decide(&p, "192.0.2.1", &PUBLIC, Some(&caller));
        match want {
            Ok((service, via)) => {
                assert!(d.allowed, "{name}: {}", d.explain());
                assert_eq!(
                    d.reason,
                    Reason::Bypass { service, via, lifted: NetworkDenial::PublicAccessDisabled },
                    "{name}"
                );
                assert!(d.explain().contains("still needs a role"), "{name}");
            }
            Err(text) => {
                assert!(!d.allowed, "{name}");
                assert!(d.explain().contains(text), "{name}: {}", d.explain());
            }
        }
        // trusted_service() agrees with classify() regardless of the registry's switches.
        assert_eq!(trusted_service(&caller), classify(&caller).ok(), "{name}");
    }
}

#[test]
fn vnet_rules_switch_off_every_bypass_including_tasks() {
    let p = policy("Disabled", "Deny", &[], &[(SUBNET, &["10.0.0.0/24"])], "AzureServices", true);
    for caller in [
        sys(ACI),
        sys(ML),
        sys(TASK),
        Caller::builtin(BuiltinPrincipal::DefenderScanner),
        Caller::builtin(BuiltinPrincipal::AcrImport),
    ] {
        let d = decide(&p, "192.0.2.1", &PUBLIC, Some(&caller));
        assert!(
            matches!(d.reason, Reason::Denied { bypass: BypassNotApplicable::VnetRulesPresent { .. }, .. }),
            "{caller:?}: {d:?}"
        );
    }
}

#[test]
fn deny_message_is_acrs() {
    assert_eq!(
        deny_message(ip("203.0.113.9")),
        "client with IP '203.0.113.9' is not allowed access. Refer https://aka.ms/acr/firewall to grant access."
    );
    assert_eq!(
        deny_message(ip("::ffff:192.0.2.4")),
        "client with IP '192.0.2.4' is not allowed access. Refer https://aka.ms/acr/firewall to grant access."
    );
}

#[test]
fn decision_names_the_normalised_client_ip_and_serialises_for_audit() {
    let p = policy("Enabled", "Deny", &["203.0.113.0/24"], &[], "AzureServices", false);
    let app = sys(APP);
    let d = decide(&p, "::ffff:192.0.2.1", &PUBLIC, Some(&app));
    assert_eq!(d.client_ip, ip("192.0.2.1"));
    assert_eq!(
        d.deny_message().unwrap(),
        "client with IP '192.0.2.1' is not allowed access. Refer https://aka.ms/acr/firewall to grant access."
    );
    let v = serde_json::to_value(d).unwrap();
    assert_eq!(v["allowed"], false);
    assert_eq!(v["registryId"], REG);
    assert_eq!(v["clientIp"], "192.0.2.1");
    assert_eq!(v["listener"]["kind"], "public");
    assert_eq!(v["caller"]["hostingResourceId"], APP);
    assert_eq!(v["reason"]["kind"], "denied");
    assert_eq!(v["reason"]["denial"], "noMatchingRule");
    assert_eq!(v["reason"]["bypass"]["why"]["kind"], "appService");

    let d2 = decide(&p, "::ffff:203.0.113.4", &PUBLIC, None);
    assert!(d2.allowed, "IPv4-mapped client matches an IPv4 rule");
}

#[test]
fn explain_texts() {
    let p = policy("Disabled", "Deny", &[], &[], "AzureServices", false);
    let aci = sys(ACI);
    let d = decide(&p, "192.0.2.1", &PUBLIC, Some(&aci));
    assert_eq!(
        d.explain(),
        "allowed by bypass: public network access is disabled and client IP '192.0.2.1' reached \
         the public endpoint, but the caller is a trusted service instance (Azure Container \
         Instances: system-assigned identity of container group 'cg1') and the registry allows \
         trusted services (networkRuleBypassOptions: AzureServices); the bypass lifts only the \
         network check, the caller still needs a role on the registry"
    );
    let ml = user_mi(ML);
    let d = decide(&p, "192.0.2.1", &PUBLIC, Some(&ml));
    assert_eq!(
        d.explain(),
        "denied: public network access is disabled and client IP '192.0.2.1' reached the public \
         endpoint; the bypass does not apply: user-assigned identity of an ML workspace does not \
         count (only system-assigned identities are trusted)"
    );
    let fw = policy("Enabled", "Deny", &["2001:db8::/32"], &[], "None", false);
    let d = decide(&fw, "2001:db8:ffff::1", &PUBLIC, None);
    assert_eq!(
        d.explain(),
        "allowed: the default action is Deny, and client IP '2001:db8:ffff::1' matches IP rule \
         '2001:db8::/32' (ipRules[0])"
    );
}
