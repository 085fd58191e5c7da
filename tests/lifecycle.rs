//! What deleting and creating again does to grants and tokens: a registry or resource group
//! deleted takes its role assignments with it at once (no grant survives in memory), a registry
//! created again under the same name owes nothing to the one before (its tokens, its grants),
//! tokens refused after a mode switch stay refused when the mode is switched back, and a role
//! assignment may only name a scope that exists, normalised.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Whether a Basic-authenticated caller may start an upload in `registry/app` (path style).
async fn may_push(s: &TestServer, registry: &str, user: &str, pass: &str) -> StatusCode {
    basic_status(s, Method::POST, &format!("/v2/{registry}/app/blobs/uploads/"), user, pass).await
}

fn registry_id(cli: &Cli, name: &str) -> String {
    cli.run(&["acr", "show", "-n", name, "--query", "id", "-o", "tsv"]).ok().stdout.trim().to_string()
}

fn check_access(cli: &Cli, registry: &str, app: &str) -> serde_json::Value {
    cli.run(&["acr", "check-access", "-n", registry, "--assignee", app, "--repository", "app", "--action", "push"])
        .ok()
        .json()
}

#[tokio::test]
async fn deleting_a_registry_or_its_group_takes_its_grants_with_it_at_once() {
    let s = TestServer::start().await;
    let cli = Cli::login(&s);
    cli.run(&["group", "create", "-n", "rg-stale", "-l", "westus"]).ok();
    cli.run(&["acr", "create", "-n", "regstale", "-g", "rg-stale", "--sku", "Premium"]).ok();
    let id = registry_id(&cli, "regstale");
    let (app, secret, _) = service_principal(&cli, "pusher", &["--role", "AcrPush", "--scopes", &id]);
    assert_eq!(may_push(&s, "regstale", &app, &secret).await, StatusCode::ACCEPTED, "the grant works");
    // The explanation is for people: words, not Rust's debug text.
    let explained = check_access(&cli, "regstale", &app)["explanation"].as_str().unwrap_or_default().to_string();
    assert!(explained.contains("grants it"), "{explained}");
    assert!(!explained.contains("Granted {") && !explained.contains("Some("), "{explained}");

    // The registry goes, and one of the same name comes: the old grant must not decide.
    cli.run(&["acr", "delete", "-n", "regstale", "--yes"]).ok();
    cli.run(&["acr", "create", "-n", "regstale", "-g", "rg-stale", "--sku", "Premium"]).ok();
    assert_eq!(may_push(&s, "regstale", &app, &secret).await, StatusCode::UNAUTHORIZED);
    let granted = s.granted(&app, &secret, &s.host(), &["repository:regstale/app:pull,push"]).await;
    assert!(granted.is_empty(), "a fresh token grants nothing: {granted:?}");
    let access = check_access(&cli, "regstale", &app);
    assert_eq!(access["allowed"], false, "{access}");
    let listed = cli.run(&["role", "assignment", "list", "--scope", &registry_id(&cli, "regstale")]).ok().json();
    assert_eq!(listed, json!([]));

    // The same through a resource group: an assignment at the group, the group deleted.
    cli.run(&["group", "create", "-n", "rg-gone", "-l", "westus"]).ok();
    let group_id = format!("/subscriptions/{}/resourceGroups/rg-gone", s.subscription);
    let (app2, secret2, _) = service_principal(&cli, "group-pusher", &["--role", "AcrPush", "--scopes", &group_id]);
    cli.run(&["acr", "create", "-n", "reginrg", "-g", "rg-gone", "--sku", "Premium"]).ok();
    assert_eq!(may_push(&s, "reginrg", &app2, &secret2).await, StatusCode::ACCEPTED);
    cli.run(&["group", "delete", "-n", "rg-gone", "--yes"]).ok();
    let left = cli.run(&["role", "assignment", "list", "--all", "--assignee", &app2]).ok().json();
    assert_eq!(left, json!([]), "the group's assignment went with it");
    cli.run(&["group", "create", "-n", "rg-gone", "-l", "westus"]).ok();
    cli.run(&["acr", "create", "-n", "reginrg", "-g", "rg-gone", "--sku", "Premium"]).ok();
    assert_eq!(may_push(&s, "reginrg", &app2, &secret2).await, StatusCode::UNAUTHORIZED);
    assert_eq!(check_access(&cli, "reginrg", &app2)["allowed"], false);
}

#[tokio::test]
async fn registry_tokens_do_not_outlive_their_registry_or_a_mode_switch() {
    let s = TestServer::start().await;
    let cli = Cli::login(&s);
    let (user, pass) = s.creds().unwrap();
    cli.run(&["group", "create", "-n", "rg-tok", "-l", "westus"]).ok();
    cli.run(&["acr", "create", "-n", "regtok", "-g", "rg-tok", "--sku", "Premium"]).ok();
    let (st, v) = s.registry_token(&user, &pass, &s.host(), &["repository:regtok/app:pull,push"]).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let token = v["access_token"].as_str().unwrap().to_string();
    let server = &s;
    let push = |token: String| async move {
        server
            .client()
            .post(format!("{}/v2/regtok/app/blobs/uploads/", server.base()))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(push(token.clone()).await, StatusCode::ACCEPTED);

    // Deleted and created again under the same name and resource id: the old token is refused.
    cli.run(&["acr", "delete", "-n", "regtok", "--yes"]).ok();
    cli.run(&["acr", "create", "-n", "regtok", "-g", "rg-tok", "--sku", "Premium"]).ok();
    assert_eq!(push(token).await, StatusCode::UNAUTHORIZED);
    assert!(s.log_text().contains("earlier epoch"), "the refusal says why in the log");

    // A token of the legacy mode, refused in ABAC mode, stays refused back in legacy mode.
    let (_, v) = s.registry_token(&user, &pass, &s.host(), &["repository:regtok/app:pull,push"]).await;
    let legacy = v["access_token"].as_str().unwrap().to_string();
    assert_eq!(push(legacy.clone()).await, StatusCode::ACCEPTED);
    cli.run(&["acr", "update", "-n", "regtok", "--role-assignment-mode", "rbac-abac", "--yes"]).ok();
    assert_eq!(push(legacy.clone()).await, StatusCode::UNAUTHORIZED);
    cli.run(&["acr", "update", "-n", "regtok", "--role-assignment-mode", "rbac", "--yes"]).ok();
    assert_eq!(push(legacy).await, StatusCode::UNAUTHORIZED, "switching back does not revive the token");
    // A token issued now works, and the registry's ARM body never shows the epoch.
    let (_, v) = s.registry_token(&user, &pass, &s.host(), &["repository:regtok/app:pull,push"]).await;
    assert_eq!(push(v["access_token"].as_str().unwrap().to_string()).await, StatusCode::ACCEPTED);
    let (_, body) = s.mgmt(Method::GET, &s.registry_path("rg-tok", "regtok"), None).await;
    assert!(body.get("_wharf").is_none() && !body.to_string().contains("tokenEpoch"), "{body}");
    let listed = cli.run(&["resource", "list"]).ok().stdout;
    assert!(!listed.contains("tokenEpoch"), "{listed}");
}

#[tokio::test]
async fn role_assignments_only_at_scopes_that_exist_and_normalised() {
    let s = TestServer::start().await;
    let cli = Cli::login(&s);
    cli.run(&["group", "create", "-n", "rg-scope", "-l", "westus"]).ok();
    let (_, _, oid) = service_principal(&cli, "scoped", &[]);
    let sub = format!("/subscriptions/{}", s.subscription);
    let reg =
        |name: &str| format!("{sub}/resourceGroups/rg-scope/providers/Microsoft.ContainerRegistry/registries/{name}");
    let server = &s;
    let put = |scope: String| {
        let path = format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{}", uuid_like(&scope));
        let body = json!({"properties": {
            "roleDefinitionId": format!("{sub}/providers/Microsoft.Authorization/roleDefinitions/8311e382-0749-4cb8-b61a-304f252e45ec"),
            "principalId": oid,
        }});
        async move { server.mgmt(Method::PUT, &path, Some(body)).await }
    };
    // A registry not created yet: refused, and its later creation grants nothing.
    let (st, v) = put(reg("later")).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("ResourceNotFound")), "{v}");
    let (st, v) = put(format!("{sub}/resourceGroups/nogroup")).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("ResourceGroupNotFound")), "{v}");
    let (st, v) = put("/subscriptions/00000000-0000-4000-8000-00000000dead".into()).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("SubscriptionNotFound")), "{v}");
    // Relative segments are refused, not stored verbatim (sent raw: HTTP clients resolve them).
    cli.run(&["acr", "create", "-n", "scopereg", "-g", "rg-scope", "--sku", "Premium"]).ok();
    let dotted = format!(
        "{sub}/resourceGroups/rg-scope/providers/Microsoft.ContainerRegistry/registries/a/../scopereg/providers/Microsoft.Authorization/roleAssignments/{}?api-version=2022-04-01",
        uuid_like("dotted")
    );
    let body = json!({"properties": {
        "roleDefinitionId": format!("{sub}/providers/Microsoft.Authorization/roleDefinitions/8311e382-0749-4cb8-b61a-304f252e45ec"),
        "principalId": oid,
    }});
    let auth = format!("Bearer {}", s.bearer().unwrap());
    let headers = [("Authorization", auth), ("Content-Type", "application/json".to_string())];
    let (st, _, answer) = raw_http(&s, "PUT", &dotted, &headers, body.to_string().as_bytes());
    let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap_or_default();
    assert_eq!((st, answer["error"]["code"].as_str()), (400, Some("InvalidScope")), "{answer}");
    // A trailing slash is normalised away: the assignment is the registry's.
    let (st, v) = put(format!("{}/", reg("scopereg"))).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["properties"]["scope"], reg("scopereg"));
    let listed = cli.run(&["role", "assignment", "list", "--scope", &reg("scopereg")]).ok().json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let created = cli.run(&["acr", "create", "-n", "later", "-g", "rg-scope", "--sku", "Premium"]).ok().json();
    let none = cli.run(&["role", "assignment", "list", "--scope", created["id"].as_str().unwrap()]).ok().json();
    assert_eq!(none, json!([]), "nothing was stored for the registry before it existed");
}
