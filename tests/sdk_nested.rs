//! The unmodified `azure-containerregistry` SDK on nested repository names: every
//! `ContainerRegistryClient` method of the SDK tests runs on `team/svc/api` as on `app` (the SDK
//! encodes the nested name as one path segment, `/acr/v1/team%2Fsvc%2Fapi/…`). Driven by
//! `tests/sdk/nested_names.py` in `.venv`.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

#[tokio::test]
async fn the_registry_sdk_works_on_nested_repository_names() {
    let Some(py) = require_venv_python() else { return };
    let s = TestServer::builder().tls().start().await;
    let cli = Cli::login(&s);
    let (app, secret, _) = service_principal(
        &cli,
        "sdk-nested",
        &["--role", "Owner", "--scopes", &format!("/subscriptions/{}", s.subscription)],
    );
    let reg = s.registry("nestreg").await;
    let repos = ["app", "team/svc/api"];
    for repo in repos {
        reg.push_image(repo, "v1", &format!("{repo}-one")).await;
        reg.push_image(repo, "v2", &format!("{repo}-two")).await;
    }
    let tenant = s.admin().expect("bootstrap admin").tenant.clone();
    let out = Command::new(&py)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/nested_names.py"))
        .args([s.base().as_str(), tenant.as_str(), app.as_str(), secret.as_str(), s.login_server("nestreg").as_str()])
        .args(repos)
        .env("REQUESTS_CA_BUNDLE", s.tls_ca.as_ref().expect("a TLS server"))
        .env("AZURE_CORE_COLLECT_TELEMETRY", "false")
        .env("NO_PROXY", "*")
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "nested_names.py failed:\n{}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        s.log_text()
    );
    let seen: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    for repo in repos {
        let r = &seen[repo];
        assert_eq!(r["listed"], true, "{repo}: {r}");
        assert_eq!(r["repository_name"], repo, "{repo}: {r}");
        assert_eq!(r["tags"], serde_json::json!(["v1", "v2"]), "{repo}: {r}");
        assert_eq!(r["tag_digest_matches"], true, "{repo}: {r}");
        assert_eq!(r["manifests"], 2, "{repo}: {r}");
        assert_eq!(r["manifest_can_delete"], false, "{repo}: {r}");
        assert_eq!(r["locked_delete"], 403, "{repo}: {r}");
        assert_eq!(r["tag_can_write"], false, "{repo}: {r}");
        assert_eq!(r["repository_can_write"], false, "{repo}: {r}");
        assert_eq!(r["tags_after_delete"], serde_json::json!(["v1"]), "{repo}: {r}");
        assert_eq!(r["listed_after_delete"], false, "{repo}: {r}");
    }
    // Every call on the nested name went to its encoded form and was served.
    assert!(!s.log_text().contains("invalid path segment"), "{}", s.log_text());
}
