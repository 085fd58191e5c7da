//! Registry network rules end to end, with distinct loopback source addresses standing for
//! distinct hosts: IP rules, forged forwarding headers, the token endpoints behind the rules,
//! and the trusted-services bypass for workloads that authenticate with a managed identity
//! obtained through `IDENTITY_ENDPOINT` and `/oauth2/exchange`.

mod common;

use common::{Cli, TestServer, assign};
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn ip_rules_forwarding_headers_and_the_trusted_services_bypass() {
    let s = TestServer::start().await;
    let cli = Cli::login(&s);
    let reg = s.registry("netreg").await;
    reg.push_image("app", "v1", "network").await;
    let sub = s.subscription.clone();
    let rid = cli.run(&["acr", "show", "-n", "netreg", "--query", "id", "-o", "tsv"]).ok().stdout.trim().to_string();
    let service = s.login_server("netreg");

    // Workloads: a container group (trusted), a web site (App Service: not trusted), an ML
    // workspace without any role (trusted, but authorization still applies).
    let mut oids = vec![];
    for (name, ty) in [
        ("cg1", "Microsoft.ContainerInstance/containerGroups"),
        ("site1", "Microsoft.Web/sites"),
        ("ws1", "Microsoft.MachineLearningServices/workspaces"),
    ] {
        let r = cli
            .run(&[
                "resource",
                "create",
                "-g",
                "rg-netreg",
                "-n",
                name,
                "--resource-type",
                ty,
                "--assign-identity",
                "[system]",
            ])
            .ok()
            .json();
        oids.push(r["identity"]["principalId"].as_str().unwrap().to_string());
    }
    for oid in &oids[..2] {
        assign(&cli, oid, "AcrPull", &rid, None).ok();
    }
    let id_of = |name: &str, ty: &str| format!("/subscriptions/{sub}/resourceGroups/rg-netreg/providers/{ty}/{name}");
    let cg = id_of("cg1", "Microsoft.ContainerInstance/containerGroups");
    let site = id_of("site1", "Microsoft.Web/sites");
    let ws = id_of("ws1", "Microsoft.MachineLearningServices/workspaces");

    // Open registry: everyone passes the network check.
    let (st, get) = s.workload_pull(&cli, &cg, "127.0.0.3", &service, "app").await;
    assert_eq!((st, get), (StatusCode::OK, Some(StatusCode::OK)));

    // Firewall: only 127.0.0.2.
    cli.run(&["acr", "network-rule", "add", "-n", "netreg", "--ip-address", "127.0.0.2"]).ok();
    cli.run(&["acr", "update", "-n", "netreg", "--default-action", "Deny"]).ok();
    let (user, pass) = s.creds().unwrap();
    let tags = |ip: &str, xff: Option<&str>| {
        let mut rb =
            s.client_from(ip).get(format!("{}/v2/netreg/app/tags/list", s.base())).basic_auth(&user, Some(&pass));
        if let Some(x) = xff {
            rb = rb.header("x-forwarded-for", x);
        }
        rb.send()
    };
    assert_eq!(tags("127.0.0.2", None).await.unwrap().status(), StatusCode::OK);
    let denied = tags("127.0.0.3", None).await.unwrap();
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    let body = denied.text().await.unwrap();
    assert!(
        body.contains("\"code\":\"DENIED\"")
            && body.contains("127.0.0.3")
            && body.contains("https://aka.ms/acr/firewall"),
        "{body}"
    );
    // A forged X-Forwarded-For from an untrusted peer does not help.
    assert_eq!(tags("127.0.0.3", Some("127.0.0.2")).await.unwrap().status(), StatusCode::FORBIDDEN);
    // The token endpoint is behind the rules too.
    let t = s
        .client_from("127.0.0.3")
        .get(format!("{}/oauth2/token?service={}&scope=repository:netreg/app:pull", s.base(), s.host()))
        .basic_auth(&user, Some(&pass))
        .send()
        .await
        .unwrap();
    assert_eq!(t.status(), StatusCode::FORBIDDEN);

    // The container group's system-assigned identity bypasses the closed firewall.
    let (st, get) = s.workload_pull(&cli, &cg, "127.0.0.3", &service, "app").await;
    assert_eq!((st, get), (StatusCode::OK, Some(StatusCode::OK)), "trusted container group should bypass");
    // App Service is not a trusted service, although it holds AcrPull.
    let (st, _) = s.workload_pull(&cli, &site, "127.0.0.3", &service, "app").await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // A trusted identity without a role passes the network but not authorization.
    let (st, get) = s.workload_pull(&cli, &ws, "127.0.0.3", &service, "app").await;
    assert_eq!((st, get), (StatusCode::OK, Some(StatusCode::UNAUTHORIZED)));

    // Trusted services off: the container group is denied too.
    cli.run(&["acr", "update", "-n", "netreg", "--allow-trusted-services", "false"]).ok();
    let (st, _) = s.workload_pull(&cli, &cg, "127.0.0.3", &service, "app").await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // Back on, plus a virtual-network rule: the bypass no longer applies.
    cli.run(&["acr", "update", "-n", "netreg", "--allow-trusted-services", "true"]).ok();
    let (st, _) = s.workload_pull(&cli, &cg, "127.0.0.3", &service, "app").await;
    assert_eq!(st, StatusCode::OK);
    cli.run(&[
        "network",
        "vnet",
        "create",
        "-g",
        "rg-netreg",
        "-n",
        "v1",
        "--address-prefix",
        "127.30.0.0/16",
        "--subnet-name",
        "s1",
        "--subnet-prefix",
        "127.30.1.0/24",
    ])
    .ok();
    let no_endpoint = cli.run(&["acr", "network-rule", "add", "-n", "netreg", "--vnet-name", "v1", "--subnet", "s1"]);
    assert_ne!(no_endpoint.code, 0, "a subnet without the service endpoint must be refused");
    assert!(no_endpoint.stderr.contains("SubnetMissingServiceEndpoint"), "{}", no_endpoint.stderr);
    cli.run(&[
        "network",
        "vnet",
        "subnet",
        "update",
        "-g",
        "rg-netreg",
        "--vnet-name",
        "v1",
        "-n",
        "s1",
        "--service-endpoints",
        "Microsoft.ContainerRegistry",
    ])
    .ok();
    cli.run(&["acr", "network-rule", "add", "-n", "netreg", "--vnet-name", "v1", "--subnet", "s1"]).ok();
    let (st, _) = s.workload_pull(&cli, &cg, "127.0.0.3", &service, "app").await;
    assert_eq!(st, StatusCode::FORBIDDEN, "virtual-network rules switch the bypass off");
    // Clients inside the subnet are allowed by the virtual-network rule.
    assert_eq!(tags("127.30.1.9", None).await.unwrap().status(), StatusCode::OK);
    let listed = cli.run(&["acr", "network-rule", "list", "-n", "netreg"]).ok().json();
    assert_eq!(listed["ipRules"][0]["value"], "127.0.0.2");
    assert!(listed["virtualNetworkRules"][0]["id"].as_str().unwrap().ends_with("/subnets/s1"));

    // The denials and the bypass are audited.
    let log = s.log_text();
    assert!(log.contains("network bypass"), "no bypass audit event");
    assert!(log.contains("network denial"), "no denial audit event");
}

#[tokio::test]
async fn public_access_disabled_and_a_private_endpoint() {
    let s = TestServer::start().await;
    let cli = Cli::login(&s);
    let reg = s.registry("pereg").await;
    reg.push_image("app", "v1", "private").await;
    let rid = cli.run(&["acr", "show", "-n", "pereg", "--query", "id", "-o", "tsv"]).ok().stdout.trim().to_string();
    cli.run(&[
        "network",
        "vnet",
        "create",
        "-g",
        "rg-pereg",
        "-n",
        "v1",
        "--address-prefix",
        "127.40.0.0/16",
        "--subnet-name",
        "s1",
        "--subnet-prefix",
        "127.40.1.0/24",
    ])
    .ok();
    let pe = cli
        .run(&[
            "network",
            "private-endpoint",
            "create",
            "-g",
            "rg-pereg",
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
    let ip = pe["ipConfigurations"][0]["privateIPAddress"].as_str().unwrap().to_string();
    assert_eq!(ip, "127.40.1.4");
    let conns = cli
        .run(&[
            "acr",
            "show",
            "-n",
            "pereg",
            "--query",
            "privateEndpointConnections[0].properties.privateLinkServiceConnectionState.status",
            "-o",
            "tsv",
        ])
        .ok();
    assert_eq!(conns.stdout.trim(), "Approved");
    cli.run(&["acr", "update", "-n", "pereg", "--public-network-enabled", "false"]).ok();
    let (user, pass) = s.creds().unwrap();
    let port = s.base().rsplit(':').next().unwrap().to_string();
    let public = s
        .client()
        .get(format!("{}/v2/pereg/app/tags/list", s.base()))
        .basic_auth(&user, Some(&pass))
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), StatusCode::FORBIDDEN);
    let private = s
        .client()
        .get(format!("http://{ip}:{port}/v2/pereg/app/tags/list"))
        .basic_auth(&user, Some(&pass))
        .send()
        .await
        .unwrap();
    assert_eq!(private.status(), StatusCode::OK, "the private endpoint serves its registry");
    // It serves that registry only.
    let other = s.registry("otherreg").await;
    other.push_image("x", "v1", "other").await;
    let wrong = s
        .client()
        .get(format!("http://{ip}:{port}/v2/otherreg/x/tags/list"))
        .basic_auth(&user, Some(&pass))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    // A path-style catalog through the endpoint lists its registry's repositories, and only
    // those (the other registry is public, but not reached through this listener), without an
    // audit event for a registry the request never named.
    let other_denials =
        || s.log_text().lines().filter(|l| l.contains("network denial") && l.contains("otherreg")).count();
    let denials_before = other_denials();
    assert!(denials_before >= 1, "the direct request to otherreg was audited");
    for catalog in ["v2/_catalog", "acr/v1/_catalog"] {
        let listed = s
            .client()
            .get(format!("http://{ip}:{port}/{catalog}"))
            .basic_auth(&user, Some(&pass))
            .send()
            .await
            .unwrap();
        assert_eq!(listed.status(), StatusCode::OK, "{catalog}");
        let names: serde_json::Value = listed.json().await.unwrap();
        assert_eq!(names["repositories"], serde_json::json!(["pereg/app"]), "{catalog}");
    }
    assert_eq!(other_denials(), denials_before, "a listing audited a registry it was not asked about");
    // Deleting the endpoint closes the listener.
    cli.run(&["network", "private-endpoint", "delete", "-g", "rg-pereg", "-n", "pe1"]).ok();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        s.client().request(Method::GET, format!("http://{ip}:{port}/v2/")).send().await.is_err(),
        "listener still open"
    );
}
