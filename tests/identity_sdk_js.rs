//! The Azure SDKs for JavaScript, unmodified, under node against a TLS Wharf on the default
//! domain (issue 10 item 12): `@azure/arm-containerregistry`'s management client with Wharf as
//! its endpoint (it asks for a token for `{endpoint}/.default`), and `@azure/container-registry`
//! on a nested repository name. Driven by `tests/sdk-js/*.mjs`; `.ci/run` installs the packages
//! with `npm ci` from `tests/sdk-js/package-lock.json`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Cli, TestServer, owner_service_principal, require_tool};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// `tests/sdk-js` with its packages installed. In CI (`CI=true`) missing node or packages
/// fail the test; elsewhere it is skipped with the reason.
fn require_node_sdks() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk-js");
    if !require_tool("node") {
        return None;
    }
    let installed = ["@azure/identity", "@azure/container-registry", "@azure/arm-containerregistry"]
        .iter()
        .all(|p| dir.join("node_modules").join(p).join("package.json").is_file());
    if installed {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("the Azure SDKs for JavaScript are required in CI (CI=true); run .ci/run (npm ci in {})", dir.display());
    }
    eprintln!("SKIPPED: the Azure SDKs for JavaScript are not installed (cd {} && npm ci)", dir.display());
    None
}

/// Runs `node {script} args…` trusting the server's CA; returns its JSON output.
fn node(dir: &Path, s: &TestServer, script: &str, args: &[&str]) -> Value {
    let out = Command::new("node")
        .arg(dir.join(script))
        .args(args)
        .current_dir(dir)
        .env("NODE_EXTRA_CA_CERTS", s.tls_ca.as_ref().expect("a TLS server"))
        .env("NO_PROXY", "*")
        .env_remove("HTTPS_PROXY")
        .env_remove("HTTP_PROXY")
        .env_remove("AZURE_CLIENT_ID")
        .env_remove("IDENTITY_ENDPOINT")
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "node {script} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("node {script}: not JSON ({e}): {stdout}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn javascript_management_sdk_with_wharf_as_its_endpoint() {
    let Some(dir) = require_node_sdks() else { return };
    let s = TestServer::builder().tls().start().await;
    let cli = Cli::login(&s);
    cli.run(&["group", "create", "-n", "rg-js", "-l", "westus"]).ok();
    cli.run(&["group", "create", "-n", "rg-other", "-l", "westus"]).ok();
    cli.run(&["acr", "create", "-n", "otherregistry", "-g", "rg-other", "--sku", "Basic"]).ok();
    let (app_id, secret, _) = owner_service_principal(&s, &cli, "js-mgmt");
    let tenant = s.tenant();
    let endpoint = s.base();
    let v = node(
        &dir,
        &s,
        "management.mjs",
        &[&endpoint, &tenant, &app_id, &secret, &s.subscription, "rg-js", "jsregistry"],
    );

    // The token the SDK asked for names Wharf's own URL, and the management API took it.
    assert_eq!(v["scope"], format!("{endpoint}/"), "{v}");
    assert_eq!(
        v["created"],
        json!({"name": "jsregistry", "loginServer": s.login_server("jsregistry"), "sku": "Premium", "state": "Succeeded"}),
        "{v}"
    );
    assert!(
        v["fetched"].as_str().is_some_and(
            |id| id.ends_with("/resourceGroups/rg-js/providers/Microsoft.ContainerRegistry/registries/jsregistry")
        ),
        "{v}"
    );
    assert_eq!(v["listedInGroup"], json!(["jsregistry"]), "{v}");
    assert_eq!(v["listed"], json!(["jsregistry", "otherregistry"]), "{v}");
    assert_eq!(v["missing"], "ResourceNotFound", "{v}");
    // What the SDK created is what the management API shows.
    let (st, body) = s.mgmt(reqwest::Method::GET, &s.registry_path("rg-js", "jsregistry"), None).await;
    assert_eq!(st, StatusCode::OK, "{body}");
}

/// Every `ContainerRegistryClient` call on `team/svc/api`. The SDK sends the name encoded
/// (`/acr/v1/team%2Fsvc%2Fapi/_tags`); until the server accepts the encoded form (issue 10 item
/// 10) the calls on the repository fail with `NAME_INVALID`, and this test says which.
#[tokio::test(flavor = "multi_thread")]
async fn javascript_registry_sdk_on_a_nested_repository() {
    let Some(dir) = require_node_sdks() else { return };
    let s = TestServer::builder().tls().start().await;
    let cli = Cli::login(&s);
    let reg = s.registry("jsdata").await;
    let (manifest, digest) = reg.push_image("team/svc/api", "v1", "js-sdk").await;
    let r = reg.put_manifest("team/svc/api", "v2", common::OCI_MANIFEST, &manifest).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let (app_id, secret, _) = owner_service_principal(&s, &cli, "js-data");
    let tenant = s.tenant();
    let registry_endpoint = format!("https://{}", s.login_server("jsdata"));
    let v =
        node(&dir, &s, "data_plane.mjs", &[&s.base(), &tenant, &app_id, &secret, &registry_endpoint, "team/svc/api"]);

    let expected = json!({
        "repositories": ["team/svc/api"],
        "repositoryProperties": {"name": "team/svc/api", "manifestCount": 1, "tagCount": 2},
        "tags": ["v1", "v2"],
        "manifests": [digest],
        "manifest": {"digest": digest, "tags": ["v1", "v2"], "repositoryName": "team/svc/api"},
        "tagProperties": {"name": "v2", "digest": digest},
        "lockedManifest": {"canDelete": false},
        "lockedDelete": 403,
        "unlockedManifest": {"canDelete": true},
        "readOnlyRepository": {"canWrite": false},
        "writableRepository": {"canWrite": true},
        "deletedTag": ["v1"],
        "deletedRepository": [],
    });
    let failed: Vec<String> = expected
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, want)| &v[k.as_str()] != *want)
        .map(|(k, want)| format!("{k}: expected {want}, got {}", v[k.as_str()]))
        .collect();
    assert!(failed.is_empty(), "ContainerRegistryClient on team/svc/api:\n{}", failed.join("\n"));
}
