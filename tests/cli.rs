//! The az-style CLI (`wharf group …`, `wharf acr …`) and the management API it drives, run as
//! the real `wharf` binary against a spawned server.
mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn group_lifecycle() {
    let s = TestServer::start().await;
    let cli = Cli::login(&s);
    let v = cli.run(&["group", "create", "-n", "rg1", "-l", "westus", "--tags", "env=test"]).ok().json();
    assert_eq!(v["name"], "rg1");
    assert_eq!(v["location"], "westus");
    assert_eq!(v["tags"]["env"], "test");
    assert_eq!(v["id"], format!("/subscriptions/{}/resourceGroups/rg1", s.subscription));
    cli.run(&["group", "create", "-n", "rg2", "-l", "eastus"]).ok();

    let v = cli.run(&["group", "show", "-n", "rg1"]).ok().json();
    assert_eq!(v["name"], "rg1");
    let v = cli.run(&["group", "list"]).ok().json();
    let mut names: Vec<&str> = v.as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["rg1", "rg2"]);
    let r = cli.run(&["group", "list", "--query", "[].name", "-o", "tsv"]).ok();
    let mut lines: Vec<&str> = r.stdout.lines().collect();
    lines.sort();
    assert_eq!(lines, ["rg1", "rg2"]);
    assert_eq!(cli.run(&["group", "exists", "-n", "rg1"]).ok().stdout.trim(), "true");
    assert_eq!(cli.run(&["group", "exists", "-n", "nope"]).ok().stdout.trim(), "false");

    // Deleting needs --yes without a terminal.
    let r = cli.run(&["group", "delete", "-n", "rg2"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--yes"), "{r:?}");
    let r = cli.run(&["group", "delete", "-n", "rg2", "--yes"]).ok();
    assert!(r.stdout.is_empty(), "{r:?}");
    let r = cli.run(&["group", "show", "-n", "rg2"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("ERROR: (ResourceGroupNotFound)"), "{r:?}");
}

#[tokio::test]
async fn acr_lifecycle_and_output_formats() {
    let s = TestServer::start().await;
    let cli = Cli::login(&s);
    cli.run(&["group", "create", "-n", "rg", "-l", "westus"]).ok();
    let v = cli.run(&["acr", "create", "-n", "myreg", "-g", "rg", "--sku", "Premium"]).ok().json();
    assert_eq!(v["name"], "myreg");
    assert_eq!(v["loginServer"], s.login_server("myreg"));
    assert_eq!(v["sku"]["name"], "Premium");
    assert_eq!(v["resourceGroup"], "rg");
    assert_eq!(v["adminUserEnabled"], false);
    assert_eq!(v["type"], "Microsoft.ContainerRegistry/registries");

    // show without -g finds the group.
    let v = cli.run(&["acr", "show", "-n", "myreg"]).ok().json();
    assert_eq!(v["loginServer"], s.login_server("myreg"));
    let r = cli.run(&["acr", "show", "-n", "myreg", "--query", "loginServer", "-o", "tsv"]).ok();
    assert_eq!(r.stdout, format!("{}\n", s.login_server("myreg")));

    cli.run(&["acr", "create", "-n", "second", "-g", "rg", "--sku", "Basic"]).ok();
    // az's columns for registries (issue 10 item 13), not one column per field.
    let r = cli.run(&["acr", "list", "-o", "table"]).ok();
    let mut lines = r.stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split("  ").map(str::trim).filter(|h| !h.is_empty()).collect();
    assert_eq!(
        header,
        ["NAME", "RESOURCE GROUP", "LOCATION", "SKU", "LOGIN SERVER", "CREATION DATE", "ADMIN ENABLED"],
        "{}",
        r.stdout
    );
    assert!(lines.next().unwrap().starts_with("---"), "{}", r.stdout);
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2, "{}", r.stdout);
    assert!(rows.iter().any(|l| l.contains("myreg") && l.contains(&s.login_server("myreg"))), "{}", r.stdout);
    assert!(rows.iter().all(|l| l.trim_end().ends_with("False")), "admin disabled: {}", r.stdout);
    let r = cli.run(&["acr", "list", "-g", "rg", "--query", "[].{n:name, s:sku.name}", "-o", "tsv"]).ok();
    let mut lines: Vec<&str> = r.stdout.lines().collect();
    lines.sort();
    assert_eq!(lines, ["myreg\tPremium", "second\tBasic"]);
    // The query's key order, not sorted keys: the name, then the login server.
    let r = cli.run(&["acr", "list", "--query", "[?name=='myreg'].{n:name, l:loginServer}", "-o", "tsv"]).ok();
    assert_eq!(r.stdout, format!("myreg\t{}\n", s.login_server("myreg")));
    let r = cli.run(&["acr", "list", "--query", "[?name=='myreg'].{z:name, a:sku.name}", "-o", "table"]).ok();
    assert!(r.stdout.starts_with("Z      A\n"), "{}", r.stdout);
    // A backtick literal that is not JSON is a string, as in az.
    let r = cli.run(&["acr", "list", "--query", "[?name==`second`].sku.name", "-o", "tsv"]).ok();
    assert_eq!(r.stdout, "Basic\n");
    let r = cli.run(&["acr", "show", "-n", "second", "-o", "yaml"]).ok();
    assert!(r.stdout.contains("name: second"), "{}", r.stdout);
    assert!(r.stdout.lines().any(|l| l.trim() == "name: Basic"), "{}", r.stdout);
    let r = cli.run(&["acr", "show", "-n", "second", "-o", "none"]).ok();
    assert_eq!(r.stdout, "");

    // update
    let v = cli.run(&["acr", "update", "-n", "myreg", "--admin-enabled", "true", "--tags", "team=a"]).ok().json();
    assert_eq!(v["adminUserEnabled"], true);
    assert_eq!(v["tags"]["team"], "a");
    let v = cli.run(&["acr", "update", "-n", "second", "--sku", "Standard"]).ok().json();
    assert_eq!(v["sku"]["name"], "Standard");
    // The management API agrees with the CLI.
    let (st, body) = s.mgmt(Method::GET, &s.registry_path("rg", "myreg"), None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body["properties"]["adminUserEnabled"], true);

    // check-name: names are unique in the deployment, whatever the case.
    let v = cli.run(&["acr", "check-name", "-n", "MYREG"]).ok().json();
    assert_eq!((&v["nameAvailable"], &v["reason"]), (&json!(false), &json!("AlreadyExists")), "{v}");
    assert_eq!(cli.run(&["acr", "check-name", "-n", "unusedname"]).ok().json(), json!({"nameAvailable": true}));
    assert_eq!(cli.run(&["acr", "check-name", "-n", "bad_name"]).ok().json()["reason"], "Invalid");

    // show-usage: the bytes a registry holds, each blob and manifest once.
    let reg = s.registry("usagereg").await;
    let size = |name: &str| {
        cli.run(&["acr", "show-usage", "-n", name, "--query", "value[?name=='Size'].currentValue | [0]"]).ok().json()
    };
    assert_eq!(size("usagereg"), json!(0));
    let (manifest, _) = reg.push_image("app", "v1", "usage").await;
    reg.push_image("copy", "v1", "usage").await;
    let img = TestImage::new("usage", "amd64");
    let expected = img.blobs().iter().map(|(_, b)| b.len()).sum::<usize>() + manifest.len();
    assert_eq!(size("usagereg"), json!(expected), "the same image in two repositories counts once");
    let limits =
        cli.run(&["acr", "show-usage", "-n", "usagereg", "--query", "value[?name=='IPRules'].limit | [0]"]).ok().json();
    assert_eq!(limits, json!(200));

    // delete
    cli.run(&["acr", "delete", "-n", "second", "--yes"]).ok();
    let r = cli.run(&["acr", "show", "-n", "second"]);
    assert_eq!(r.code, 3, "{r:?}");
    let v = cli.run(&["acr", "list", "-g", "rg"]).ok().json();
    assert_eq!(v.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn errors_and_exit_codes() {
    let s = TestServer::start().await;
    let cli = Cli::login(&s);
    cli.run(&["group", "create", "-n", "rg", "-l", "westus"]).ok();
    cli.run(&["group", "create", "-n", "other", "-l", "westus"]).ok();

    // Invalid registry name.
    let r = cli.run(&["acr", "create", "-n", "bad-name!", "-g", "rg", "--sku", "Basic"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("ERROR: (InvalidResourceName)"), "{r:?}");
    let r = cli.run(&["acr", "create", "-n", "ab", "-g", "rg", "--sku", "Basic"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("(InvalidResourceName)"), "{r:?}");

    // Missing registry and missing group: exit 3.
    let r = cli.run(&["acr", "show", "-n", "missing"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.starts_with("ERROR: "), "{r:?}");
    let r = cli.run(&["acr", "show", "-n", "missing", "-g", "rg"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("(ResourceNotFound)"), "{r:?}");
    let r = cli.run(&["acr", "create", "-n", "inmissing", "-g", "nogroup", "--sku", "Basic", "-l", "westus"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("(ResourceGroupNotFound)"), "{r:?}");

    // Registry names are unique across groups.
    cli.run(&["acr", "create", "-n", "unique1", "-g", "rg", "--sku", "Basic"]).ok();
    let r = cli.run(&["acr", "create", "-n", "unique1", "-g", "other", "--sku", "Basic"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("(AlreadyInUse)"), "{r:?}");
    let r = cli.run(&["acr", "create", "-n", "UNIQUE1", "-g", "other", "--sku", "Basic"]);
    assert_eq!(r.code, 1, "a name differing only in case is the same DNS name: {r:?}");

    // Premium-only network settings on Basic.
    let r = cli.run(&["acr", "create", "-n", "basicnet", "-g", "rg", "--sku", "Basic", "--default-action", "Deny"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("(FeatureNotSupportedForSku)"), "{r:?}");
    let r = cli.run(&[
        "acr",
        "create",
        "-n",
        "basicpub",
        "-g",
        "rg",
        "--sku",
        "Basic",
        "--public-network-enabled",
        "false",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("(FeatureNotSupportedForSku)"), "{r:?}");
    let r = cli.run(&["acr", "update", "-n", "unique1", "--default-action", "Deny"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("(FeatureNotSupportedForSku)"), "{r:?}");
    // …which Premium accepts.
    let v = cli.run(&["acr", "update", "-n", "unique1", "--sku", "Premium", "--default-action", "Deny"]).ok().json();
    assert_eq!(v["networkRuleSet"]["defaultAction"], "Deny");

    // Usage errors: exit 2.
    let r = cli.run(&["acr", "create", "-n", "x1x", "-g", "rg", "--sku", "Gold"]);
    assert_eq!(r.code, 2, "{r:?}");
    let r = cli.run(&["acr", "list", "--query", "[?"]);
    assert_eq!(r.code, 2, "{r:?}");

    // Not logged in.
    let fresh = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(["acr", "list"])
        .env("WHARF_CONFIG_DIR", fresh.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wharf login"));
}

#[tokio::test]
async fn management_api_errors() {
    let s = TestServer::start().await;
    // api-version is required and must look like one.
    let path = format!("/subscriptions/{}/resourcegroups", s.subscription);
    let r = send(s.mgmt_request_exact(Method::GET, &path)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"]["code"], "MissingApiVersionParameter", "{}", r.json());
    assert!(r.json()["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    let r = send(s.mgmt_request_exact(Method::GET, &format!("{path}?api-version=latest"))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"]["code"], "InvalidApiVersionParameter");

    // Unknown subscription, unknown path, bad JSON, missing location.
    let (st, v) = s.mgmt(Method::GET, "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["error"]["code"], "SubscriptionNotFound");
    let (st, v) = s.mgmt(Method::GET, &format!("/subscriptions/{}/nothing", s.subscription), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    let r = send(s.mgmt_request(Method::PUT, &s.group_path("rg")).header("content-type", "application/json").body("{"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["error"]["code"].as_str().is_some());
    let (st, v) = s.mgmt(Method::PUT, &s.group_path("rg"), Some(json!({}))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["code"], "LocationRequired");

    // Registry create: 201, then PUT again 200; sku required; name rules.
    s.create_group("rg").await;
    let (st, v) = s.create_registry("rg", "apireg", "Standard").await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["properties"]["loginServer"], s.login_server("apireg"));
    let (st, _) = s.create_registry("rg", "apireg", "Standard").await;
    assert_eq!(st, StatusCode::OK);
    let (st, v) = s.mgmt(Method::PUT, &s.registry_path("rg", "nosku"), Some(json!({"location": "westus"}))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (st, v) = s.create_registry("rg", "has-dash", "Basic").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["code"], "InvalidResourceName");
    // Deleting the group deletes its registries, and their names are free again.
    let (st, _) = s.mgmt(Method::DELETE, &s.group_path("rg"), None).await;
    assert!(st.is_success());
    let (st, _) = s.mgmt(Method::GET, &s.registry_path("rg", "apireg"), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    send(s.http(Method::GET, "/v2/apireg/app/tags/list")).await.expect_error(404, "NAME_UNKNOWN");
    s.create_group("rg2").await;
    let (st, v) = s.create_registry("rg2", "apireg", "Basic").await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
}
