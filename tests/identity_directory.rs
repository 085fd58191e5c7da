//! The directory: Graph's users, applications and service principals over HTTP, and
//! `wharf ad …` with az's output shapes; secrets shown once; credential reset revoking earlier
//! tokens (directory tokens and registry refresh tokens alike).

mod common;

use common::{
    Cli, TestServer, admin_access_token, exchange_refresh, graph, jwt_claims, refresh_grant, sp_token, user_token,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn graph_users_applications_and_service_principals() {
    let s = TestServer::start().await;
    // az sends its cloud's microsoftGraphResourceId (the server's own URL) as the Graph scope;
    // Microsoft Graph's public id works too.
    let own = admin_access_token(&s, &format!("{}//.default", s.base())).await;
    assert_eq!(jwt_claims(&own)["aud"], format!("{}/", s.base()));
    let t = admin_access_token(&s, "https://graph.microsoft.com/.default").await;

    // Without a token, or with a management token: 401 in Graph's error shape.
    let r = s.client().get(format!("{}/v1.0/users", s.base())).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "InvalidAuthenticationToken");
    let (st, v) = graph(&s, &s.bearer().unwrap(), Method::GET, "users", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "management-audience token on Graph: {v}");

    // Users.
    let body = json!({"accountEnabled": true, "displayName": "Ana Núñez", "mailNickname": "ana",
                      "passwordProfile": {"password": "Correct-Horse-9"}, "userPrincipalName": "ana@contoso.test"});
    let (st, user) = graph(&s, &t, Method::POST, "users", Some(body.clone())).await;
    assert_eq!(st, StatusCode::CREATED, "{user}");
    assert_eq!(user["userPrincipalName"], "ana@contoso.test");
    assert_eq!(user["displayName"], "Ana Núñez");
    assert!(user.get("passwordProfile").is_none(), "the password is never echoed: {user}");
    let uid = user["id"].as_str().unwrap().to_string();
    let (st, v) = graph(&s, &t, Method::POST, "users", Some(body)).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["code"], "Request_BadRequest", "{v}");
    let (st, v) = graph(&s, &t, Method::POST, "users", Some(json!({"displayName": "x", "userPrincipalName": "x@contoso.test", "passwordProfile": {"password": "short"}}))).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("Request_BadRequest")), "{v}");
    let (st, v) = graph(&s, &t, Method::GET, "users?$filter=userPrincipalName%20eq%20'ANA@contoso.test'", None).await;
    assert_eq!(st, StatusCode::OK);
    assert!(v["@odata.context"].as_str().unwrap().ends_with("$metadata#users"), "{v}");
    assert_eq!(v["value"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["value"][0]["id"], uid.as_str());
    let (st, v) = graph(&s, &t, Method::GET, &format!("users/{uid}"), None).await;
    assert_eq!((st, v["userPrincipalName"].as_str()), (StatusCode::OK, Some("ana@contoso.test")));
    let (st, v) = graph(&s, &t, Method::GET, "users/nobody@contoso.test", None).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("Request_ResourceNotFound")));

    // The new user signs in; deleting the user revokes its tokens.
    let (st, v) = user_token(&s, "ana@contoso.test", "Correct-Horse-9", "https://graph.microsoft.com/.default").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let ana = v["access_token"].as_str().unwrap().to_string();
    let (st, me) = graph(&s, &ana, Method::GET, "me", None).await;
    assert_eq!((st, me["id"].as_str()), (StatusCode::OK, Some(uid.as_str())), "{me}");

    // An application, then its service principal (the two-step Graph flow).
    let (st, app) = graph(&s, &t, Method::POST, "applications", Some(json!({"displayName": "ci-pipeline"}))).await;
    assert_eq!(st, StatusCode::CREATED, "{app}");
    let app_id = app["appId"].as_str().unwrap().to_string();
    let app_oid = app["id"].as_str().unwrap().to_string();
    assert_ne!(app_id, app_oid);
    let (st, pw) = graph(
        &s,
        &t,
        Method::POST,
        &format!("applications/{app_oid}/addPassword"),
        Some(json!({"passwordCredential": {"displayName": "ci"}})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{pw}");
    let secret = pw["secretText"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 40);
    assert_eq!(pw["hint"].as_str().unwrap(), &secret[..3]);
    for k in ["keyId", "startDateTime", "endDateTime"] {
        assert!(pw[k].is_string(), "{k} in {pw}");
    }
    // No service principal yet: the application cannot sign in.
    let (st, v) = sp_token(&s, &app_id, &secret, "https://management.core.windows.net//.default").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"], "unauthorized_client");
    let (st, sp) = graph(&s, &t, Method::POST, "servicePrincipals", Some(json!({"appId": app_id}))).await;
    assert_eq!(st, StatusCode::CREATED, "{sp}");
    assert_eq!(sp["servicePrincipalType"], "Application");
    assert_eq!(sp["servicePrincipalNames"], json!([app_id]));
    assert_eq!(sp["accountEnabled"], true);
    let sp_oid = sp["id"].as_str().unwrap().to_string();
    let (st, _) = graph(&s, &t, Method::POST, "servicePrincipals", Some(json!({"appId": app_id}))).await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (st, v) = sp_token(&s, &app_id, &secret, "https://management.core.windows.net//.default").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let claims = jwt_claims(v["access_token"].as_str().unwrap());
    assert_eq!(claims["oid"], sp_oid.as_str());
    assert_eq!(claims["appid"], app_id.as_str());
    // A principal without the right to assign roles reads the directory but cannot change it.
    let (st, v) = sp_token(&s, &app_id, &secret, "https://graph.microsoft.com/.default").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let weak = v["access_token"].as_str().unwrap().to_string();
    let (st, v) = graph(&s, &weak, Method::GET, "servicePrincipals", None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = graph(&s, &weak, Method::POST, "users", Some(json!({"displayName": "Eve", "userPrincipalName": "eve@contoso.test", "passwordProfile": {"password": "Eve-Passw0rd"}}))).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("Authorization_RequestDenied")), "{v}");
    let (st, _) = graph(&s, &weak, Method::POST, &format!("applications/{app_oid}/addPassword"), Some(json!({}))).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "a principal adding itself a secret without rights");
    assert!(s.log_text().contains("directory change denied"));

    // The stored application shows secrets without their text.
    let (_, v) = graph(&s, &t, Method::GET, &format!("applications?$filter=appId%20eq%20'{app_id}'"), None).await;
    assert_eq!(v["value"][0]["passwordCredentials"][0]["secretText"], Value::Null, "{v}");
    assert_eq!(v["value"][0]["passwordCredentials"][0]["keyId"], pw["keyId"]);

    // The filters az sends.
    for f in [
        format!("appId eq '{app_id}'"),
        format!("servicePrincipalNames/any(c:c eq '{app_id}')"),
        "displayName eq 'ci-pipeline'".to_string(),
    ] {
        let (st, v) = graph(&s, &t, Method::GET, &format!("servicePrincipals?$filter={}", url_escape(&f)), None).await;
        assert_eq!(st, StatusCode::OK, "{f}: {v}");
        assert_eq!(v["value"].as_array().unwrap().len(), 1, "{f}: {v}");
        assert_eq!(v["value"][0]["id"], sp_oid.as_str());
    }
    let (st, v) = graph(&s, &t, Method::GET, "servicePrincipals?$filter=appId%20ne%20'x'", None).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("Request_BadRequest")));

    // Built-in service principals stand for trusted services; they cannot be changed.
    let (_, all) = graph(&s, &t, Method::GET, "servicePrincipals", None).await;
    let tags: Vec<String> = all["value"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|v| v["tags"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    assert!(tags.contains(&"WharfBuiltin:defender-scanner".to_string()), "{all}");
    assert!(tags.contains(&"WharfBuiltin:acr-import".to_string()), "{all}");
    let builtin = all["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["tags"] == json!(["WharfBuiltin:acr-import"]))
        .unwrap()
        .clone();
    let (st, _) =
        graph(&s, &t, Method::DELETE, &format!("servicePrincipals/{}", builtin["id"].as_str().unwrap()), None).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = graph(
        &s,
        &t,
        Method::POST,
        &format!("applications/{}/addPassword", builtin["appId"].as_str().unwrap()),
        Some(json!({})),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "built-ins have no application to add secrets to");

    // getByIds, as az's --assignee resolution uses it.
    let (st, v) = graph(&s, &t, Method::POST, "directoryObjects/getByIds", Some(json!({"ids": [uid, sp_oid, "00000000-0000-0000-0000-00000000dead"], "types": ["user", "group", "servicePrincipal", "directoryObjectPartnerReference"]}))).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let types: Vec<&str> = v["value"].as_array().unwrap().iter().map(|o| o["@odata.type"].as_str().unwrap()).collect();
    assert_eq!(types, vec!["#microsoft.graph.user", "#microsoft.graph.servicePrincipal"]);

    // Deleting the service principal leaves the application, which can no longer sign in.
    let (st, _) = graph(&s, &t, Method::DELETE, &format!("servicePrincipals/{sp_oid}"), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = sp_token(&s, &app_id, &secret, "https://management.core.windows.net//.default").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = graph(&s, &t, Method::GET, &format!("applications/{app_oid}"), None).await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = graph(&s, &t, Method::DELETE, &format!("applications/{app_oid}"), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = graph(&s, &t, Method::GET, &format!("applications/{app_oid}"), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Deleting a user: sign-in fails and the tokens it already had stop working.
    let (st, _) = graph(&s, &t, Method::DELETE, "users/ana@contoso.test", None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = graph(&s, &ana, Method::GET, "me", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = user_token(&s, "ana@contoso.test", "Correct-Horse-9", "https://graph.microsoft.com/.default").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // Secrets are stored only as argon2id hashes.
    let mut db = vec![];
    for f in ["metadata.db", "metadata.db-wal"] {
        db.extend(std::fs::read(s.data_dir.join(f)).unwrap_or_default());
    }
    let hay = String::from_utf8_lossy(&db);
    assert!(!hay.contains(&secret), "a client secret is stored in plaintext");
    assert!(!hay.contains("Correct-Horse-9"), "a password is stored in plaintext");
    assert!(hay.contains("$argon2id$"));
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn cli_ad_commands_and_credential_reset() {
    let s = TestServer::start().await;
    let cli = Cli::login(&s);
    let tenant = s.admin().unwrap().tenant.clone();

    // ad user create / show / list / delete.
    let u = cli
        .run(&[
            "ad",
            "user",
            "create",
            "--display-name",
            "Bo Li",
            "--password",
            "Str0ng-Passw0rd",
            "--user-principal-name",
            "bo@contoso.test",
        ])
        .ok()
        .json();
    assert_eq!(u["userPrincipalName"], "bo@contoso.test");
    assert_eq!(u["displayName"], "Bo Li");
    assert!(u["id"].is_string());
    assert!(u.get("@odata.context").is_none());
    let shown = cli.run(&["ad", "user", "show", "--id", "bo@contoso.test"]).ok().json();
    assert_eq!(shown["id"], u["id"]);
    let listed = cli.run(&["ad", "user", "list", "--upn", "bo@contoso.test"]).ok().json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let r = cli.run(&["ad", "user", "show", "--id", "nobody@contoso.test"]);
    assert_eq!(r.code, 3, "{r:?}");

    // create-for-rbac prints az's four fields, the secret once.
    let sub = s.subscription.clone();
    let created = cli
        .run(&[
            "ad",
            "sp",
            "create-for-rbac",
            "--name",
            "deployer",
            "--role",
            "Owner",
            "--scopes",
            &format!("/subscriptions/{sub}"),
        ])
        .ok();
    let c = created.json();
    let keys: Vec<&String> = c.as_object().unwrap().keys().collect();
    assert_eq!(keys, vec!["appId", "displayName", "password", "tenant"], "{c}");
    assert_eq!(c["displayName"], "deployer");
    assert_eq!(c["tenant"], tenant.as_str());
    let app_id = c["appId"].as_str().unwrap().to_string();
    let password = c["password"].as_str().unwrap().to_string();
    assert!(created.stderr.contains("credentials that you must protect"), "{}", created.stderr);

    // The new service principal signs in and works with its role.
    let sp_cli = Cli { config_dir: tempfile::tempdir().unwrap(), ca: None };
    sp_cli
        .run(&[
            "login",
            "--server",
            &s.base(),
            "--service-principal",
            "-u",
            &app_id,
            "-p",
            &password,
            "--tenant",
            &tenant,
        ])
        .ok();
    sp_cli.run(&["group", "create", "-n", "rg-sp", "-l", "westus"]).ok();

    let shown = cli.run(&["ad", "sp", "show", "--id", &app_id]).ok().json();
    assert_eq!(shown["appId"], app_id.as_str());
    assert_eq!(shown["servicePrincipalType"], "Application");
    let listed = cli.run(&["ad", "sp", "list", "--display-name", "deploy"]).ok().json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let by_oid = cli.run(&["ad", "sp", "show", "--id", shown["id"].as_str().unwrap()]).ok().json();
    assert_eq!(by_oid["appId"], app_id.as_str());

    // A registry refresh token obtained with the old secret, before the reset.
    s.create_group("rg-reg").await;
    let (st, reg) = s.create_registry("rg-reg", "resetreg", "Premium").await;
    assert!(st.is_success(), "{reg}");
    let login_server = s.login_server("resetreg");
    let (st, v) = sp_token(&s, &app_id, &password, "https://containerregistry.azure.net/.default").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let old_aad = v["access_token"].as_str().unwrap().to_string();
    let refresh = exchange_refresh(&s, &login_server, &old_aad).await.expect("exchange before the reset");
    assert_eq!(refresh_grant(&s, &login_server, "repository:hello:pull", &refresh).await.0, StatusCode::OK);

    // Reset: a new secret, the old one and every token issued before stop working.
    let reset = cli.run(&["ad", "sp", "credential", "reset", "--id", &app_id]).ok().json();
    let keys: Vec<&String> = reset.as_object().unwrap().keys().collect();
    assert_eq!(keys, vec!["appId", "password", "tenant"], "{reset}");
    let new_password = reset["password"].as_str().unwrap().to_string();
    assert_ne!(new_password, password);
    let (st, _) = sp_token(&s, &app_id, &password, "https://management.core.windows.net//.default").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "the old secret still works");
    assert_eq!(
        refresh_grant(&s, &login_server, "repository:hello:pull", &refresh).await.0,
        StatusCode::UNAUTHORIZED,
        "refresh token replay after credential reset"
    );
    assert!(
        exchange_refresh(&s, &login_server, &old_aad).await.is_none(),
        "a directory token from before the reset was exchanged"
    );
    assert!(s.log_text().contains("refresh token rejected"), "the reason is logged");
    let (st, v) = sp_token(&s, &app_id, &new_password, "https://containerregistry.azure.net/.default").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let refresh = exchange_refresh(&s, &login_server, v["access_token"].as_str().unwrap())
        .await
        .expect("exchange after the reset");
    assert_eq!(refresh_grant(&s, &login_server, "repository:hello:pull", &refresh).await.0, StatusCode::OK);
    // --append keeps the current secret.
    let appended = cli.run(&["ad", "sp", "credential", "reset", "--id", &app_id, "--append"]).ok().json();
    let (st, _) = sp_token(&s, &app_id, &new_password, "https://management.core.windows.net//.default").await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) =
        sp_token(&s, &app_id, appended["password"].as_str().unwrap(), "https://management.core.windows.net//.default")
            .await;
    assert_eq!(st, StatusCode::OK);

    // create-for-rbac on an existing name patches it (a new secret), as az does.
    let again = cli.run(&["ad", "sp", "create-for-rbac", "--name", "deployer"]).ok();
    assert_eq!(again.json()["appId"], app_id.as_str());
    assert!(again.stderr.contains("Found an existing application instance"), "{}", again.stderr);
    let r = cli.run(&["ad", "sp", "create-for-rbac", "--name", "x", "--role", "Reader"]);
    assert_eq!(r.code, 2, "--role without --scopes is a usage error: {r:?}");

    // Delete removes the service principal and its application.
    cli.run(&["ad", "sp", "delete", "--id", &app_id]).ok();
    assert_eq!(cli.run(&["ad", "sp", "show", "--id", &app_id]).code, 3);
    let (st, _) = sp_token(&s, &app_id, &new_password, "https://management.core.windows.net//.default").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    cli.run(&["ad", "user", "delete", "--id", "bo@contoso.test"]).ok();
    assert_eq!(cli.run(&["ad", "user", "show", "--id", "bo@contoso.test"]).code, 3);
}

/// Issue 10 item 14: `create-for-rbac` with the display name of a built-in service principal
/// (a trusted service's stand-in, which has no application in the directory) used to announce
/// that it would patch the application and then fail to find it. It is refused clearly, with
/// nothing created; a name that belongs to an application is still patched, as az does.
#[tokio::test]
async fn create_for_rbac_refuses_the_name_of_a_built_in_service_principal() {
    let s = TestServer::start().await;
    let cli = Cli::login(&s);
    let sub_scope = format!("/subscriptions/{}", s.subscription);
    let builtin = "Azure Container Registry Import";
    let before = cli.run(&["ad", "sp", "list", "--display-name", builtin]).ok().json();
    assert_eq!(before.as_array().unwrap().len(), 1, "the built-in principal is listed: {before}");
    let assignments_before = cli.run(&["role", "assignment", "list", "--all"]).ok().json();

    let r = cli.run(&["ad", "sp", "create-for-rbac", "--name", builtin, "--role", "Reader", "--scopes", &sub_scope]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("built-in service principal") && r.stderr.contains("acr-import"), "{}", r.stderr);
    assert!(!r.stderr.contains("We will patch it"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "no credentials are printed: {r:?}");
    let after = cli.run(&["ad", "sp", "list", "--display-name", builtin]).ok().json();
    assert_eq!(after, before, "no second principal of that name");
    let assignments = cli.run(&["role", "assignment", "list", "--all"]).ok().json();
    assert_eq!(assignments, assignments_before, "no role was assigned");

    // An application's own name is patched: the same app id, a new secret.
    let first = cli.run(&["ad", "sp", "create-for-rbac", "--name", "Import helper"]).ok().json();
    let again = cli.run(&["ad", "sp", "create-for-rbac", "--name", "Import helper"]).ok();
    assert_eq!(again.json()["appId"], first["appId"]);
    assert_ne!(again.json()["password"], first["password"]);
    assert!(again.stderr.contains("Found an existing application instance"), "{}", again.stderr);
}

/// `wharf ad user update` and `wharf ad sp update`: disabling stops sign-in and revokes the
/// tokens already issued; a new password replaces the old; renaming reaches the service
/// principal; properties Wharf's directory does not keep are refused by name.
#[tokio::test]
async fn disabling_and_updating_users_and_service_principals() {
    let s = TestServer::start().await;
    let cli = Cli::login(&s);
    const MGMT: &str = "https://management.core.windows.net//.default";
    let subscriptions = |token: String| {
        let s = &s;
        async move {
            s.client()
                .get(format!("{}/subscriptions?api-version=2022-12-01", s.base()))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };

    // A user.
    cli.run(&[
        "ad",
        "user",
        "create",
        "--display-name",
        "Ann",
        "--password",
        "Ann-passw0rd-1",
        "--user-principal-name",
        "ann@wharf.local",
    ])
    .ok();
    let (st, before) = user_token(&s, "ann@wharf.local", "Ann-passw0rd-1", MGMT).await;
    assert_eq!(st, StatusCode::OK, "{before}");
    let before = before["access_token"].as_str().unwrap().to_string();
    assert_eq!(subscriptions(before.clone()).await, StatusCode::OK);
    cli.run(&[
        "ad",
        "user",
        "update",
        "--id",
        "ann@wharf.local",
        "--account-enabled",
        "false",
        "--display-name",
        "Ann B",
    ])
    .ok();
    let shown = cli.run(&["ad", "user", "show", "--id", "ann@wharf.local"]).ok().json();
    assert_eq!((&shown["accountEnabled"], &shown["displayName"]), (&json!(false), &json!("Ann B")), "{shown}");
    assert_eq!(
        user_token(&s, "ann@wharf.local", "Ann-passw0rd-1", MGMT).await.0,
        StatusCode::BAD_REQUEST,
        "a disabled user cannot sign in"
    );
    assert_eq!(subscriptions(before).await, StatusCode::UNAUTHORIZED, "its earlier token is revoked");
    cli.run(&[
        "ad",
        "user",
        "update",
        "--id",
        "ann@wharf.local",
        "--account-enabled",
        "true",
        "--password",
        "Ann-passw0rd-2",
    ])
    .ok();
    assert_eq!(
        user_token(&s, "ann@wharf.local", "Ann-passw0rd-1", MGMT).await.0,
        StatusCode::BAD_REQUEST,
        "the old password is gone"
    );
    assert_eq!(user_token(&s, "ann@wharf.local", "Ann-passw0rd-2", MGMT).await.0, StatusCode::OK);
    let short = cli.run(&["ad", "user", "update", "--id", "ann@wharf.local", "--password", "short"]);
    assert!(short.code != 0 && short.stderr.contains("at least 8 characters"), "{short:?}");
    let nothing = cli.run(&["ad", "user", "update", "--id", "ann@wharf.local"]);
    assert!(nothing.code != 0 && nothing.stderr.contains("nothing to change"), "{nothing:?}");

    // A service principal.
    let sp = cli.run(&["ad", "sp", "create-for-rbac", "--name", "ci-bot"]).ok().json();
    let (app, secret) = (sp["appId"].as_str().unwrap().to_string(), sp["password"].as_str().unwrap().to_string());
    let (st, v) = sp_token(&s, &app, &secret, MGMT).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let before = v["access_token"].as_str().unwrap().to_string();
    cli.run(&["ad", "sp", "update", "--id", &app, "--set", "accountEnabled=false"]).ok();
    assert_eq!(cli.run(&["ad", "sp", "show", "--id", &app, "--query", "accountEnabled"]).ok().json(), json!(false));
    let (st, v) = sp_token(&s, &app, &secret, MGMT).await;
    assert_eq!((st, &v["error"]), (StatusCode::BAD_REQUEST, &json!("unauthorized_client")), "{v}");
    assert_eq!(subscriptions(before).await, StatusCode::UNAUTHORIZED, "its earlier token is revoked");
    cli.run(&["ad", "sp", "update", "--id", &app, "--set", "accountEnabled=true", "--set", "displayName=ci-bot-2"])
        .ok();
    assert_eq!(sp_token(&s, &app, &secret, MGMT).await.0, StatusCode::OK);
    assert_eq!(cli.run(&["ad", "sp", "show", "--id", &app, "--query", "displayName"]).ok().json(), json!("ci-bot-2"));
    let bad = cli.run(&["ad", "sp", "update", "--id", &app, "--set", "homepage=x"]);
    assert!(bad.code != 0 && bad.stderr.contains("accountEnabled=true|false"), "{bad:?}");

    // Graph refuses a property it does not keep, naming it.
    let token = admin_access_token(&s, "https://graph.microsoft.com/.default").await;
    let (st, v) = graph(&s, &token, Method::PATCH, "users/ann@wharf.local", Some(json!({"jobTitle": "x"}))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("'jobTitle'"), "{v}");
}
