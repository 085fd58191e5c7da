//! The impact preview of network-rule changes (`acr update` with network flags, `--what-if`,
//! `network-rule add|remove`), `check-access` with its network part (client address, private
//! endpoint, the trusted-services bypass, ABAC environment attributes), who may ask for a
//! preview, and the audit events of denials and bypasses. Distinct loopback source addresses
//! stand for distinct hosts.

mod common;

use common::{Cli, MGMT_SCOPE, TestServer, assign, assign_to, jwt_claims, service_principal, sp_access_token};
use reqwest::StatusCode;
use serde_json::{Value, json};

const CONTAINER_GROUPS: &str = "Microsoft.ContainerInstance/containerGroups";
const WEB_SITES: &str = "Microsoft.Web/sites";

/// Creates a hosting resource with a system-assigned identity; returns (resource id, principal id).
fn host(cli: &Cli, rg: &str, name: &str, ty: &str) -> (String, String) {
    let r = cli
        .run(&["resource", "create", "-g", rg, "-n", name, "--resource-type", ty, "--assign-identity", "[system]"])
        .ok()
        .json();
    (r["id"].as_str().unwrap().to_string(), r["identity"]["principalId"].as_str().unwrap().to_string())
}

fn show(cli: &Cli, reg: &str, query: &str) -> String {
    cli.run(&["acr", "show", "-n", reg, "--query", query, "-o", "tsv"]).ok().stdout.trim().to_string()
}

/// The principal ids named by an impact preview, with their change.
fn named(impact: &Value) -> Vec<(String, String)> {
    impact["principals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["principalId"].as_str().unwrap().to_string(), p["change"].as_str().unwrap().to_string()))
        .collect()
}

#[tokio::test]
async fn impact_preview_of_network_changes() {
    let s = TestServer::start().await;
    let cli = Cli::login(&s);
    let reg = s.registry("impreg").await;
    reg.push_image("app", "v1", "impact").await;
    let rid = show(&cli, "impreg", "id");
    let service = s.login_server("impreg");
    let (cg, cg_oid) = host(&cli, "rg-impreg", "cg1", CONTAINER_GROUPS);
    let (_, site_oid) = host(&cli, "rg-impreg", "site1", WEB_SITES);
    assign(&cli, &cg_oid, "AcrPull", &rid, None).ok();
    assign(&cli, &site_oid, "AcrPull", &rid, None).ok();

    // Closing the firewall, in a script (no terminal): the impact goes to stderr and the change
    // is applied without a question.
    cli.run(&["acr", "network-rule", "add", "-n", "impreg", "--ip-address", "127.0.0.2"]).ok();
    let closed = cli.run(&["acr", "update", "-n", "impreg", "--default-action", "Deny"]).ok();
    assert!(
        closed.stderr.contains(
            "callers without a network bypass lose data-plane access from every public address except 127.0.0.2/32"
        ),
        "{}",
        closed.stderr
    );
    assert!(!closed.stderr.contains(&cg_oid), "the container group keeps access through the bypass: {}", closed.stderr);
    assert_eq!(show(&cli, "impreg", "networkRuleSet.defaultAction"), "Deny");
    assert_eq!(
        s.workload_pull(&cli, &cg, "127.0.0.3", &service, "app").await.0,
        StatusCode::OK,
        "bypass before the change"
    );

    // --what-if: trusted services off would cost the container group's identity its bypass;
    // the web app never had one and is not named. Nothing changes.
    let what_if = cli.run(&["acr", "update", "-n", "impreg", "--allow-trusted-services", "false", "--what-if"]).ok();
    let impact = &what_if.json()["networkRules"];
    let names = named(impact);
    assert!(names.contains(&(cg_oid.clone(), "mayLose".to_string())), "{impact}");
    assert!(!names.iter().any(|(p, _)| *p == site_oid), "App Service never had the bypass: {impact}");
    let cg_line =
        impact["principals"].as_array().unwrap().iter().find(|p| p["principalId"] == cg_oid.as_str()).unwrap();
    assert_eq!(cg_line["hostingResource"]["id"], cg.as_str());
    assert_eq!(cg_line["trustedService"], "Azure Container Instances");
    assert_eq!(cg_line["roles"], json!(["AcrPull"]));
    let text = cg_line["text"].as_str().unwrap();
    assert!(text.starts_with("system-assigned identity of container group 'cg1'"), "{text}");
    assert!(text.contains("trusted-services bypass") && text.contains("networkRuleBypassOptions: None"), "{text}");
    assert!(impact["addresses"]["lost"].is_null(), "no address changes side: {impact}");
    assert!(what_if.stderr.contains("container group 'cg1'"), "{}", what_if.stderr);
    assert_eq!(show(&cli, "impreg", "networkRuleBypassOptions"), "AzureServices", "--what-if changed the registry");

    // --what-if for public access off: the rule's addresses go; the web app (which relied on
    // them) may lose access, the container group keeps its bypass.
    let what_if =
        cli.run(&["acr", "update", "-n", "impreg", "--public-network-enabled", "false", "--what-if"]).ok().json();
    let impact = &what_if["networkRules"];
    assert_eq!(impact["addresses"]["lost"], json!({"kind": "only", "prefixes": ["127.0.0.2/32"]}), "{impact}");
    let names = named(impact);
    assert!(names.contains(&(site_oid.clone(), "mayLose".to_string())), "{impact}");
    assert!(!names.iter().any(|(p, _)| *p == cg_oid), "{impact}");
    assert_eq!(show(&cli, "impreg", "publicNetworkAccess"), "Enabled", "--what-if changed the registry");

    // Several flags at once: both previews, still nothing applied.
    let both = cli
        .run(&[
            "acr",
            "update",
            "-n",
            "impreg",
            "--public-network-enabled",
            "false",
            "--role-assignment-mode",
            "rbac-abac",
            "--what-if",
        ])
        .ok()
        .json();
    assert_eq!(both["to"], "AbacRepositoryPermissions", "{both}");
    assert!(
        both["value"].as_array().unwrap().iter().any(|p| p["principalId"] == cg_oid.as_str()),
        "AcrPull is not honoured in ABAC mode: {both}"
    );
    assert_eq!(both["networkRules"]["proposed"]["publicNetworkAccess"], "Disabled");
    assert_eq!(show(&cli, "impreg", "publicNetworkAccess"), "Enabled");
    assert_eq!(show(&cli, "impreg", "roleAssignmentMode"), "LegacyRegistryPermissions");

    // Applied without a terminal: printed, then done — and the container group really loses it.
    let off = cli.run(&["acr", "update", "-n", "impreg", "--allow-trusted-services", "false"]).ok();
    assert!(off.stderr.contains(&cg_oid) && off.stderr.contains("trusted-services bypass"), "{}", off.stderr);
    assert_eq!(show(&cli, "impreg", "networkRuleBypassOptions"), "None");
    assert_eq!(s.workload_pull(&cli, &cg, "127.0.0.3", &service, "app").await.0, StatusCode::FORBIDDEN);
    // Turning it back on is a gain.
    let on = cli.run(&["acr", "update", "-n", "impreg", "--allow-trusted-services", "true", "--what-if"]).ok().json();
    assert!(named(&on["networkRules"]).contains(&(cg_oid.clone(), "mayGain".to_string())), "{on}");

    // Removing the only IP rule: its address loses access; printed by network-rule remove.
    let removed = cli.run(&["acr", "network-rule", "remove", "-n", "impreg", "--ip-address", "127.0.0.2"]).ok();
    assert!(
        removed.stderr.contains("callers without a network bypass lose data-plane access from 127.0.0.2/32"),
        "{}",
        removed.stderr
    );

    // A preview validates like the PATCH and takes network properties only.
    let bad = s
        .mgmt(
            reqwest::Method::POST,
            &format!("{rid}/networkRuleImpact"),
            Some(json!({"properties": {"adminUserEnabled": true}})),
        )
        .await;
    assert_eq!(bad.0, StatusCode::BAD_REQUEST, "{}", bad.1);
    assert!(
        bad.1["error"]["message"].as_str().unwrap().contains("'properties.adminUserEnabled' is not a network property"),
        "{}",
        bad.1
    );
    let bad = s
        .mgmt(
            reqwest::Method::POST,
            &format!("{rid}/networkRuleImpact"),
            Some(json!({"properties": {"publicNetworkAccess": "Sometimes"}})),
        )
        .await;
    assert_eq!(bad.0, StatusCode::BAD_REQUEST, "{}", bad.1);
}

#[tokio::test]
async fn who_may_preview() {
    let s = TestServer::start().await;
    let cli = Cli::login(&s);
    s.registry("whoreg").await;
    let rid = show(&cli, "whoreg", "id");
    let (puller, puller_secret, puller_oid) = service_principal(&cli, "puller", &[]);
    let (reader, reader_secret, reader_oid) = service_principal(&cli, "reader", &[]);
    assign(&cli, &puller_oid, "AcrPull", &rid, None).ok();
    assign(&cli, &reader_oid, "Reader", &rid, None).ok();
    // A member of a group holding AcrPull counts, through the group.
    let group =
        cli.run(&["ad", "group", "create", "--display-name", "pullers", "--mail-nickname", "pullers"]).ok().json();
    let (_, _, member_oid) = service_principal(&cli, "member", &[]);
    cli.run(&["ad", "group", "member", "add", "--group", "pullers", "--member-id", &member_oid]).ok();
    assign_to(&cli, "Group", group["id"].as_str().unwrap(), "AcrPull", &rid, None).ok();
    let body = json!({"properties": {"publicNetworkAccess": "Disabled"}});
    let url = format!("{}{rid}/networkRuleImpact?api-version=2025-04-01", s.base());
    let ask = |token: String| s.client().post(&url).bearer_auth(token).json(&body).send();
    // Data access alone gives no management access: reading the registry and its role
    // assignments is what a preview needs.
    let r = ask(sp_access_token(&s, &puller, &puller_secret, MGMT_SCOPE).await).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["error"]["code"], "AuthorizationFailed", "{err}");
    // A Reader may read both, so it may preview (it changes nothing).
    let r = ask(sp_access_token(&s, &reader, &reader_secret, MGMT_SCOPE).await).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let impact: Value = r.json().await.unwrap();
    assert!(named(&impact).contains(&(puller_oid.clone(), "loses".to_string())), "{impact}");
    assert_eq!(impact["addresses"]["lost"]["kind"], "everywhere", "{impact}");
    let member = impact["principals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["principalId"] == member_oid.as_str())
        .unwrap_or_else(|| panic!("group member not named: {impact}"));
    assert_eq!(member["throughGroups"], json!(["pullers"]));
    assert_eq!(member["change"], "loses");
    assert!(
        !impact["principals"].as_array().unwrap().iter().any(|p| p["principalId"] == group["id"]),
        "a group makes no requests: {impact}"
    );
    assert_eq!(show(&cli, "whoreg", "publicNetworkAccess"), "Enabled");
}

/// `acr check-access … --output json`.
fn check(cli: &Cli, reg: &str, assignee: &str, extra: &[&str]) -> Value {
    let mut args =
        vec!["acr", "check-access", "-n", reg, "--assignee", assignee, "--repository", "app", "--action", "pull"];
    args.extend(extra);
    cli.run(&args).ok().json()
}

#[tokio::test]
async fn check_access_explains_the_network_part() {
    let s = TestServer::start().await;
    let cli = Cli::login(&s);
    let reg = s.registry("careg").await;
    reg.push_image("app", "v1", "check-access").await;
    let rid = show(&cli, "careg", "id");
    let (_, _, sp_oid) = service_principal(&cli, "builder", &[]);
    assign(&cli, &sp_oid, "AcrPull", &rid, None).ok();
    let (cg, cg_oid) = host(&cli, "rg-careg", "cg1", CONTAINER_GROUPS);
    let (_, site_oid) = host(&cli, "rg-careg", "site1", WEB_SITES);
    assign(&cli, &cg_oid, "AcrPull", &rid, None).ok();
    assign(&cli, &site_oid, "AcrPull", &rid, None).ok();
    cli.run(&["acr", "network-rule", "add", "-n", "careg", "--ip-address", "127.0.0.2"]).ok();
    cli.run(&["acr", "update", "-n", "careg", "--default-action", "Deny"]).ok();

    // Inside the IP rule: both parts allow.
    let inside = check(&cli, "careg", &sp_oid, &["--client-ip", "127.0.0.2"]);
    assert_eq!(inside["allowed"], true, "{inside}");
    assert_eq!(inside["network"]["evaluated"], "clientIp");
    let d = &inside["network"]["decisions"][0];
    assert_eq!(d["reason"], json!({"kind": "ipRule", "index": 0, "value": "127.0.0.2"}), "{inside}");
    assert_eq!(inside["environment"]["isPrivateLink"], false);
    // Outside: authorization allows, the network does not, so the answer is no.
    let outside = check(&cli, "careg", &sp_oid, &["--client-ip", "127.0.0.3"]);
    assert_eq!(
        (outside["allowed"].clone(), outside["authorizationAllowed"].clone()),
        (json!(false), json!(true)),
        "{outside}"
    );
    let d = &outside["network"]["decisions"][0];
    assert_eq!(d["reason"]["kind"], "denied");
    assert_eq!(d["bypass"]["applies"], false);
    assert!(
        d["bypass"]["whyNot"].as_str().unwrap().contains("a service principal is never a trusted service"),
        "{outside}"
    );
    assert!(outside["explanation"].as_str().unwrap().contains("Network: denied"), "{outside}");
    // Without an address: it depends on it.
    let any = check(&cli, "careg", &sp_oid, &[]);
    assert_eq!(any["decision"], "dependsOnClientAddress", "{any}");
    assert_eq!(any["allowed"], false);
    assert_eq!(any["network"]["evaluated"], "anyPublicAddress");
    assert!(any["network"]["explanation"].as_str().unwrap().contains("only 127.0.0.2/32"), "{any}");

    // The container group's identity goes through the closed firewall; the web app's does not.
    let trusted = check(&cli, "careg", &cg_oid, &["--client-ip", "127.0.0.3"]);
    assert_eq!(trusted["allowed"], true, "{trusted}");
    let d = &trusted["network"]["decisions"][0];
    assert_eq!(d["reason"]["kind"], "bypass");
    assert_eq!(d["reason"]["via"], "trustedServices");
    assert_eq!(d["bypass"]["trustedService"], "Azure Container Instances");
    assert_eq!(d["bypass"]["identityKind"], "system-assigned identity");
    assert_eq!(d["bypass"]["hostingResourceType"], CONTAINER_GROUPS);
    assert_eq!(d["bypass"]["virtualNetworkRulesPresent"], false);
    assert_eq!(d["bypass"]["allowTrustedServices"], true);
    assert_eq!(d["hostingResource"]["id"], cg.as_str());
    let untrusted = check(&cli, "careg", &site_oid, &["--client-ip", "127.0.0.3"]);
    assert_eq!(untrusted["allowed"], false);
    assert!(
        untrusted["network"]["decisions"][0]["bypass"]["whyNot"].as_str().unwrap().contains("App Service"),
        "{untrusted}"
    );

    // Public access off, a private endpoint: allowed through the endpoint only.
    cli.run(&[
        "network",
        "vnet",
        "create",
        "-g",
        "rg-careg",
        "-n",
        "v1",
        "--address-prefix",
        "127.41.0.0/16",
        "--subnet-name",
        "s1",
        "--subnet-prefix",
        "127.41.1.0/24",
    ])
    .ok();
    let pe = cli
        .run(&[
            "network",
            "private-endpoint",
            "create",
            "-g",
            "rg-careg",
            "-n",
            "pe1",
            "--vnet-name",
            "v1",
            "--subnet",
            "s1",
            "--private-connection-resource-id",
            &rid,
            "--group-id",
            "registry",
            "--connection-name",
            "c1",
        ])
        .ok()
        .json();
    let pe_id = pe["id"].as_str().unwrap().to_string();
    cli.run(&["acr", "update", "-n", "careg", "--public-network-enabled", "false"]).ok();
    let via = check(&cli, "careg", &sp_oid, &["--via-private-endpoint", "pe1"]);
    assert_eq!(via["allowed"], true, "{via}");
    assert_eq!(via["network"]["evaluated"], "privateEndpoint");
    assert_eq!(
        via["network"]["decisions"][0]["reason"],
        json!({"kind": "privateEndpoint", "endpointId": pe_id}),
        "{via}"
    );
    assert_eq!(via["environment"]["isPrivateLink"], true);
    assert_eq!(via["environment"]["privateEndpoint"], pe_id.as_str());
    let public = check(&cli, "careg", &sp_oid, &["--client-ip", "127.0.0.2"]);
    assert_eq!(public["allowed"], false, "{public}");
    assert!(
        public["network"]["explanation"].as_str().unwrap().contains("public network access is disabled"),
        "{public}"
    );
    let unknown =
        cli.run(&["acr", "check-access", "-n", "careg", "--assignee", &sp_oid, "--via-private-endpoint", "nope"]);
    assert_ne!(unknown.code, 0);
    assert!(unknown.stderr.contains("does not exist"), "{}", unknown.stderr);
}

#[tokio::test]
async fn private_link_conditions_are_judged_with_the_network_path() {
    let s = TestServer::start().await;
    let cli = Cli::login(&s);
    let reg = s.registry("plreg").await;
    reg.push_image("app", "v1", "private-link").await;
    let rid = show(&cli, "plreg", "id");
    cli.run(&["acr", "update", "-n", "plreg", "--role-assignment-mode", "rbac-abac", "--yes"]).ok();
    let (app, secret, oid) = service_principal(&cli, "pl-reader", &[]);
    let condition = "((!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'})) OR (@Environment[isPrivateLink] BoolEquals true))";
    assign(&cli, &oid, "Container Registry Repository Reader", &rid, Some(condition)).ok();
    cli.run(&[
        "network",
        "vnet",
        "create",
        "-g",
        "rg-plreg",
        "-n",
        "v1",
        "--address-prefix",
        "127.42.0.0/16",
        "--subnet-name",
        "s1",
        "--subnet-prefix",
        "127.42.1.0/24",
    ])
    .ok();
    let pe = cli
        .run(&[
            "network",
            "private-endpoint",
            "create",
            "-g",
            "rg-plreg",
            "-n",
            "pe1",
            "--vnet-name",
            "v1",
            "--subnet",
            "s1",
            "--private-connection-resource-id",
            &rid,
            "--group-id",
            "registry",
            "--connection-name",
            "c1",
        ])
        .ok()
        .json();
    let pe_ip = pe["ipConfigurations"][0]["privateIPAddress"].as_str().unwrap().to_string();

    // check-access: through the endpoint the condition holds; from the public endpoint it does not.
    let via = check(&cli, "plreg", &oid, &["--via-private-endpoint", "pe1"]);
    assert_eq!(via["allowed"], true, "{via}");
    let public = check(&cli, "plreg", &oid, &["--client-ip", "127.0.0.1"]);
    assert_eq!(
        (public["allowed"].clone(), public["authorizationAllowed"].clone()),
        (json!(false), json!(false)),
        "{public}"
    );
    assert_eq!(public["network"]["allowed"], true, "the network allows; the condition does not");

    // The data plane agrees: a token from the private endpoint's listener grants the pull, one
    // from the public listener does not.
    let port = s.base().rsplit(':').next().unwrap().to_string();
    let pull_token = |base: String| {
        let (app, secret) = (app.clone(), secret.clone());
        let service = s.host();
        async move {
            let t: Value = reqwest::Client::builder()
                .no_proxy()
                .build()
                .unwrap()
                .get(format!("{base}/oauth2/token?service={service}&scope=repository:plreg/app:pull"))
                .basic_auth(&app, Some(&secret))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            t["access_token"].as_str().unwrap().to_string()
        }
    };
    let granted = |token: &str| {
        jwt_claims(token)["access"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|a| a["actions"].as_array().unwrap().clone())
            .collect::<Vec<_>>()
    };
    let private = pull_token(format!("http://{pe_ip}:{port}")).await;
    assert_eq!(granted(&private), vec![json!("pull")]);
    let public = pull_token(s.base()).await;
    assert!(granted(&public).is_empty(), "the public path does not meet the condition");

    // Basic credentials straight on /v2/ are judged with the same network path.
    let basic_get = |base: String| {
        let (app, secret) = (app.clone(), secret.clone());
        async move {
            reqwest::Client::builder()
                .no_proxy()
                .build()
                .unwrap()
                .get(format!("{base}/v2/plreg/app/manifests/v1"))
                .header("accept", "application/vnd.oci.image.manifest.v1+json")
                .basic_auth(&app, Some(&secret))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(basic_get(format!("http://{pe_ip}:{port}")).await, reqwest::StatusCode::OK);
    assert_eq!(basic_get(s.base()).await, reqwest::StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn denials_and_bypasses_are_audited() {
    let s = TestServer::start().await;
    let cli = Cli::login(&s);
    let reg = s.registry("audreg").await;
    reg.push_image("app", "v1", "audit").await;
    let rid = show(&cli, "audreg", "id");
    let service = s.login_server("audreg");
    let (cg, cg_oid) = host(&cli, "rg-audreg", "cg1", CONTAINER_GROUPS);
    assign(&cli, &cg_oid, "AcrPull", &rid, None).ok();
    cli.run(&["acr", "update", "-n", "audreg", "--default-action", "Deny"]).ok();
    let (user, pass) = s.creds().unwrap();

    // A bypass.
    assert_eq!(s.workload_pull(&cli, &cg, "127.0.0.3", &service, "app").await.0, StatusCode::OK);
    // A denial with valid credentials, one with wrong credentials, one without any, on the
    // data plane and the token endpoint.
    let c = s.client_from("127.0.0.4");
    let tags = format!("{}/v2/audreg/app/tags/list", s.base());
    assert_eq!(c.get(&tags).basic_auth(&user, Some(&pass)).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(c.get(&tags).basic_auth(&user, Some("wrong")).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(c.get(&tags).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    let token = |password: &'static str| {
        c.get(format!("{}/oauth2/token?service={}&scope=repository:audreg/app:pull", s.base(), s.host()))
            .basic_auth(&user, Some(password))
            .send()
    };
    // Wrong credentials from a blocked address: the firewall answers, as with ACR, so the
    // address learns nothing about the credentials.
    assert_eq!(token("wrong").await.unwrap().status(), StatusCode::FORBIDDEN);

    let log = s.log_text();
    let events: Vec<&str> = log.lines().filter(|l| l.contains("wharf::audit")).collect();
    let bypass =
        events.iter().find(|l| l.contains("network bypass")).unwrap_or_else(|| panic!("no bypass event:\n{log}"));
    for field in [
        "registry=\"audreg\"",
        "client=127.0.0.3",
        "listener=\"public\"",
        &format!("principal=\"{cg_oid}\""),
        &format!("hosting_resource=\"{cg}\""),
        "rule=\"bypass trustedServices (Azure Container Instances)\"",
    ] {
        assert!(bypass.contains(field), "bypass event lacks {field}: {bypass}");
    }
    let denials: Vec<&&str> =
        events.iter().filter(|l| l.contains("network denial") && l.contains("client=127.0.0.4")).collect();
    assert!(denials.len() >= 4, "every denial is audited:\n{}", events.join("\n"));
    for d in &denials {
        for field in
            ["registry=\"audreg\"", "listener=\"public\"", "rule=\"denied noMatchingRule; bypass: ", "principal_type="]
        {
            assert!(d.contains(field), "denial event lacks {field}: {d}");
        }
    }
    assert!(denials.iter().any(|d| d.contains("principal_type=\"unauthenticated\"")), "{denials:?}");
    assert!(denials.iter().any(|d| d.contains("principal_type=\"user\"")), "{denials:?}");
}
