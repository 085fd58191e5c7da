//! Managed identities: user-assigned identities (`wharf identity …`), hosting resources that
//! carry identities (`wharf resource …`), and the App-Service-style endpoint through which their
//! workloads get tokens (`IDENTITY_ENDPOINT` + `X-IDENTITY-HEADER`), whose tokens record the
//! hosting resource and are accepted by `/oauth2/exchange`.

mod common;

use common::{Cli, GRAPH_SCOPE, TestServer, admin_access_token, exchange, graph, jwt_claims};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// `GET {endpoint}?resource=…&api-version=2019-08-01[&extra]` with the identity header.
async fn msi(s: &TestServer, env: &Value, resource: &str, extra: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut q = vec![("resource", resource), ("api-version", "2019-08-01")];
    q.extend_from_slice(extra);
    let r = s
        .client()
        .get(env["IDENTITY_ENDPOINT"].as_str().unwrap())
        .query(&q)
        .header("X-IDENTITY-HEADER", env["IDENTITY_HEADER"].as_str().unwrap())
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    let st = r.status();
    (st, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn user_assigned_identities_with_az_shapes() {
    let s = TestServer::start().await;
    let cli = Cli::login(&s);
    cli.run(&["group", "create", "-n", "rg-mi", "-l", "westus"]).ok();
    let id = cli.run(&["identity", "create", "-g", "rg-mi", "-n", "builder"]).ok().json();
    for k in ["clientId", "id", "location", "name", "principalId", "resourceGroup", "tags", "tenantId", "type"] {
        assert!(id.get(k).is_some(), "{k} missing from {id}");
    }
    let sub = &s.subscription;
    assert_eq!(
        id["id"],
        format!(
            "/subscriptions/{sub}/resourceGroups/rg-mi/providers/Microsoft.ManagedIdentity/userAssignedIdentities/builder"
        )
    );
    assert_eq!(id["type"], "Microsoft.ManagedIdentity/userAssignedIdentities");
    assert_eq!(id["resourceGroup"], "rg-mi");
    assert_eq!(id["location"], "westus");
    assert_eq!(id["tenantId"], s.admin().unwrap().tenant.as_str());
    assert_ne!(id["principalId"], id["clientId"]);

    // PUT again keeps the ids (200); the raw ARM call answers 201 on creation.
    let again = cli.run(&["identity", "create", "-g", "rg-mi", "-n", "builder", "--tags", "team=ci"]).ok().json();
    assert_eq!(again["principalId"], id["principalId"]);
    assert_eq!(again["tags"], json!({"team": "ci"}));
    let path = format!(
        "/subscriptions/{sub}/resourceGroups/rg-mi/providers/Microsoft.ManagedIdentity/userAssignedIdentities/other?api-version=2025-05-31-preview"
    );
    let (st, v) = s.mgmt(Method::PUT, &path, Some(json!({"location": "westus"}))).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert!(v["properties"]["principalId"].is_string());
    let (st, v) = s.mgmt(Method::PUT, &path, Some(json!({"location": "westus"}))).await;
    assert_eq!(st, StatusCode::OK, "{v}");

    let shown = cli.run(&["identity", "show", "-g", "rg-mi", "-n", "builder"]).ok().json();
    assert_eq!(shown["clientId"], id["clientId"]);
    let listed = cli.run(&["identity", "list", "-g", "rg-mi"]).ok().json();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    let all = cli.run(&["identity", "list"]).ok().json();
    assert_eq!(all.as_array().unwrap().len(), 2, "{all}");

    // Managed identities appear in the directory as service principals of type ManagedIdentity.
    let graph_token = admin_access_token(&s, GRAPH_SCOPE).await;
    let path = format!("servicePrincipals/{}", id["principalId"].as_str().unwrap());
    let (_, sp) = graph(&s, &graph_token, Method::GET, &path, None).await;
    assert_eq!(sp["servicePrincipalType"], "ManagedIdentity", "{sp}");
    assert_eq!(sp["appId"], id["clientId"]);
    assert!(sp["servicePrincipalNames"].as_array().unwrap().contains(&id["id"]), "{sp}");
    let via_cli = cli.run(&["ad", "sp", "show", "--id", id["id"].as_str().unwrap()]).ok().json();
    assert_eq!(via_cli["id"], id["principalId"]);

    cli.run(&["identity", "delete", "-g", "rg-mi", "-n", "builder"]).ok();
    let r = cli.run(&["identity", "show", "-g", "rg-mi", "-n", "builder"]);
    assert_eq!(r.code, 3, "{r:?}");
    let bad = cli.run(&["identity", "create", "-g", "rg-mi", "-n", "-bad name"]);
    assert_ne!(bad.code, 0);
}

#[tokio::test]
async fn hosting_resources_and_the_managed_identity_endpoint() {
    let s = TestServer::start().await;
    let cli = Cli::login(&s);
    let sub = s.subscription.clone();
    cli.run(&["group", "create", "-n", "rg-apps", "-l", "westus"]).ok();
    let uami = cli.run(&["identity", "create", "-g", "rg-apps", "-n", "puller"]).ok().json();
    let uami_id = uami["id"].as_str().unwrap().to_string();
    let other = cli.run(&["identity", "create", "-g", "rg-apps", "-n", "unattached"]).ok().json();

    // A container group with a system-assigned and a user-assigned identity.
    let cg = cli
        .run(&[
            "resource",
            "create",
            "-g",
            "rg-apps",
            "-n",
            "cg1",
            "--resource-type",
            "Microsoft.ContainerInstance/containerGroups",
            "--assign-identity",
            "[system]",
            &uami_id,
        ])
        .ok()
        .json();
    let cg_id = format!(
        "/subscriptions/{sub}/resourceGroups/rg-apps/providers/Microsoft.ContainerInstance/containerGroups/cg1"
    );
    assert_eq!(cg["id"], cg_id.as_str());
    assert_eq!(cg["type"], "Microsoft.ContainerInstance/containerGroups");
    assert_eq!(cg["identity"]["type"], "SystemAssigned, UserAssigned");
    assert_eq!(cg["identity"]["tenantId"], s.admin().unwrap().tenant.as_str());
    let system_oid = cg["identity"]["principalId"].as_str().unwrap().to_string();
    assert_eq!(cg["identity"]["userAssignedIdentities"][&uami_id]["principalId"], uami["principalId"], "{cg}");
    assert_eq!(cg["identity"]["userAssignedIdentities"][&uami_id]["clientId"], uami["clientId"]);
    assert_eq!(cg["properties"]["provisioningState"], "Succeeded");
    assert!(cg.get("_wharf").is_none(), "internal data leaked: {cg}");

    // The other hosting types; unknown types are refused.
    cli.run(&[
        "resource",
        "create",
        "-g",
        "rg-apps",
        "-n",
        "ws1",
        "--resource-type",
        "Microsoft.MachineLearningServices/workspaces",
        "--assign-identity",
    ])
    .ok();
    let site = cli
        .run(&["resource", "create", "-g", "rg-apps", "-n", "site1", "--resource-type", "Microsoft.Web/sites"])
        .ok()
        .json();
    assert_eq!(site["identity"]["type"], "None");
    let bad = cli.run(&[
        "resource",
        "create",
        "-g",
        "rg-apps",
        "-n",
        "vm1",
        "--resource-type",
        "Microsoft.Compute/virtualMachines",
    ]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("NoRegisteredProviderFound"), "{}", bad.stderr);
    let listed = cli
        .run(&["resource", "list", "-g", "rg-apps", "--resource-type", "Microsoft.ContainerInstance/containerGroups"])
        .ok()
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");

    // The workload environment; the header is shown once and only its fingerprint is stored.
    let env = cli.run(&["resource", "workload-env", "--ids", &cg_id]).ok().json();
    assert_eq!(env["IDENTITY_ENDPOINT"], format!("{}/msi/token", s.base()));
    let header = env["IDENTITY_HEADER"].as_str().unwrap().to_string();
    assert!(header.len() >= 32);
    assert!(cli.run(&["resource", "show", "--ids", &cg_id]).ok().stdout.find(&header).is_none());

    // Default: the system-assigned identity; the App Service response shape.
    let (st, tok) = msi(&s, &env, "https://containerregistry.azure.net", &[]).await;
    assert_eq!(st, StatusCode::OK, "{tok}");
    assert_eq!(tok["token_type"], "Bearer");
    assert_eq!(tok["resource"], "https://containerregistry.azure.net");
    let exp: i64 = tok["expires_on"].as_str().expect("expires_on is a string").parse().unwrap();
    assert!(exp > chrono_now());
    let c = jwt_claims(tok["access_token"].as_str().unwrap());
    assert_eq!(c["oid"], system_oid.as_str());
    assert_eq!(c["appid"], tok["client_id"]);
    assert_eq!(c["wharf_principal_type"], "ManagedIdentity");
    assert_eq!(c["wharf_mi_kind"], "SystemAssigned");
    assert_eq!(c["xms_mirid"], cg_id.as_str());
    assert_eq!(c["wharf_host_resource"], cg_id.as_str());
    assert_eq!(c["wharf_host_type"], "Microsoft.ContainerInstance/containerGroups");
    assert_eq!(c["aud"], "https://containerregistry.azure.net");
    let system_token = tok["access_token"].as_str().unwrap().to_string();

    // client_id, principal_id and mi_res_id select the user-assigned identity.
    for (k, v) in [
        ("client_id", uami["clientId"].as_str().unwrap()),
        ("principal_id", uami["principalId"].as_str().unwrap()),
        ("mi_res_id", uami_id.as_str()),
    ] {
        let (st, tok) = msi(&s, &env, "https://management.azure.com/", &[(k, v)]).await;
        assert_eq!(st, StatusCode::OK, "{k}: {tok}");
        let c = jwt_claims(tok["access_token"].as_str().unwrap());
        assert_eq!(c["oid"], uami["principalId"], "{k}");
        assert_eq!(c["wharf_mi_kind"], "UserAssigned");
        assert_eq!(c["xms_mirid"], uami_id.as_str());
        assert_eq!(c["wharf_host_resource"], cg_id.as_str(), "the token records the host it was asked from");
        assert_eq!(tok["client_id"], uami["clientId"]);
    }
    // An identity not attached to this resource: 400.
    let (st, v) =
        msi(&s, &env, "https://management.azure.com/", &[("client_id", other["clientId"].as_str().unwrap())]).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    // Bad requests.
    let (st, _) = msi(&s, &env, "https://vault.azure.net", &[]).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let r = s
        .client()
        .get(format!("{}/msi/token?resource=https://management.azure.com/&api-version=2017-09-01", s.base()))
        .header("X-IDENTITY-HEADER", &header)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // The managed identity's token is exchanged at a registry; the refresh token keeps the host.
    s.create_group("rg-reg").await;
    let (st, reg) = s.create_registry("rg-reg", "miregistry", "Premium").await;
    assert!(st.is_success(), "{reg}");
    let login_server = s.login_server("miregistry");
    let (st, v) = exchange(&s, &login_server, &system_token).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let rc = jwt_claims(v["refresh_token"].as_str().unwrap());
    assert_eq!(rc["wharf_host_resource"], cg_id.as_str(), "{rc}");
    assert_eq!(rc["wharf_host_type"], "Microsoft.ContainerInstance/containerGroups");
    assert_eq!(rc["wharf_principal_type"], "ManagedIdentity");

    // Another resource's header does not work for this one; a missing or unknown header is a
    // 401 whose reason is in the server log, not in the response.
    let ws_id = format!(
        "/subscriptions/{sub}/resourceGroups/rg-apps/providers/Microsoft.MachineLearningServices/workspaces/ws1"
    );
    let ws_env = cli.run(&["resource", "workload-env", "--ids", &ws_id]).ok().json();
    let (st, tok) =
        msi(&s, &ws_env, "https://management.azure.com/", &[("client_id", uami["clientId"].as_str().unwrap())]).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "the workspace has no such identity: {tok}");
    let (st, tok) = msi(&s, &ws_env, "https://management.azure.com/", &[]).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        jwt_claims(tok["access_token"].as_str().unwrap())["wharf_host_type"],
        "Microsoft.MachineLearningServices/workspaces"
    );
    let forged = json!({"IDENTITY_ENDPOINT": env["IDENTITY_ENDPOINT"], "IDENTITY_HEADER": format!("{header}x")});
    let (st, v) = msi(&s, &forged, "https://management.azure.com/", &[]).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let body = v.to_string();
    assert!(!body.contains("rotated") && !body.contains("belongs"), "the reason is not in the response: {body}");
    assert!(s.log_text().contains("belongs to no hosting resource"), "the reason is logged");
    let r = s
        .client()
        .get(format!("{}/msi/token?resource=https://management.azure.com/&api-version=2019-08-01", s.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // workload-env again rotates the header: the previous one stops working.
    let env2 = cli.run(&["resource", "workload-env", "--ids", &cg_id]).ok().json();
    assert_ne!(env2["IDENTITY_HEADER"], env["IDENTITY_HEADER"]);
    assert_eq!(msi(&s, &env, "https://management.azure.com/", &[]).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(msi(&s, &env2, "https://management.azure.com/", &[]).await.0, StatusCode::OK);

    // identity remove/assign: removing the system identity revokes its tokens.
    let ident = cli.run(&["resource", "identity", "remove", "--ids", &cg_id, "--identities", "[system]"]).ok().json();
    assert_eq!(ident["type"], "UserAssigned", "{ident}");
    assert_eq!(
        exchange(&s, &login_server, &system_token).await.0,
        StatusCode::UNAUTHORIZED,
        "the removed system identity's token still works"
    );
    let (st, tok) = msi(&s, &env2, "https://management.azure.com/", &[]).await;
    assert_eq!(st, StatusCode::OK, "the only user-assigned identity is the default now: {tok}");
    assert_eq!(jwt_claims(tok["access_token"].as_str().unwrap())["oid"], uami["principalId"]);
    let ident = cli.run(&["resource", "identity", "assign", "--ids", &cg_id]).ok().json();
    assert_eq!(ident["type"], "SystemAssigned, UserAssigned");
    assert_ne!(ident["principalId"], system_oid.as_str(), "a re-enabled system identity is a new principal");
    let ident = cli
        .run(&[
            "resource",
            "identity",
            "remove",
            "-g",
            "rg-apps",
            "-n",
            "cg1",
            "--resource-type",
            "Microsoft.ContainerInstance/containerGroups",
            "--identities",
            &uami_id,
        ])
        .ok()
        .json();
    assert_eq!(ident["type"], "SystemAssigned");
    assert!(ident.get("userAssignedIdentities").is_none());
    let (st, _) = msi(&s, &env2, "https://management.azure.com/", &[("mi_res_id", uami_id.as_str())]).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let bad = cli.run(&["resource", "identity", "assign", "--ids", &cg_id, "--identities", &format!("/subscriptions/{sub}/resourceGroups/rg-apps/providers/Microsoft.ManagedIdentity/userAssignedIdentities/nope")]);
    assert_eq!(bad.code, 1, "{bad:?}");

    // The system-assigned identity lives and dies with its resource.
    let (st, tok) = msi(&s, &env2, "https://containerregistry.azure.net", &[]).await;
    assert_eq!(st, StatusCode::OK);
    let token = tok["access_token"].as_str().unwrap().to_string();
    assert_eq!(exchange(&s, &login_server, &token).await.0, StatusCode::OK);
    cli.run(&["resource", "delete", "--ids", &cg_id]).ok();
    assert_eq!(cli.run(&["resource", "show", "--ids", &cg_id]).code, 3);
    assert_eq!(
        exchange(&s, &login_server, &token).await.0,
        StatusCode::UNAUTHORIZED,
        "the deleted resource's identity still works"
    );
    assert_eq!(msi(&s, &env2, "https://management.azure.com/", &[]).await.0, StatusCode::UNAUTHORIZED);
    // The user-assigned identity outlives it.
    cli.run(&["identity", "show", "--ids", &uami_id]).ok();

    // Deleting the resource group deletes its resources and their identities the same way.
    let ws_tok = msi(&s, &ws_env, "https://containerregistry.azure.net", &[]).await.1["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, v) = msi(&s, &env2, "https://containerregistry.azure.net", &[]).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
    let uami_env = cli
        .run(&[
            "resource",
            "create",
            "-g",
            "rg-apps",
            "-n",
            "cg2",
            "--resource-type",
            "Microsoft.ContainerInstance/containerGroups",
            "--assign-identity",
            &uami_id,
        ])
        .ok()
        .json();
    let cg2_env = cli.run(&["resource", "workload-env", "--ids", uami_env["id"].as_str().unwrap()]).ok().json();
    let uami_tok = msi(&s, &cg2_env, "https://containerregistry.azure.net", &[]).await.1["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(exchange(&s, &login_server, &ws_tok).await.0, StatusCode::OK);
    assert_eq!(exchange(&s, &login_server, &uami_tok).await.0, StatusCode::OK);
    cli.run(&["group", "delete", "-n", "rg-apps", "--yes"]).ok();
    assert_eq!(
        exchange(&s, &login_server, &ws_tok).await.0,
        StatusCode::UNAUTHORIZED,
        "a system identity outlived its resource group"
    );
    assert_eq!(
        exchange(&s, &login_server, &uami_tok).await.0,
        StatusCode::UNAUTHORIZED,
        "a user-assigned identity outlived its resource group"
    );
    assert_eq!(msi(&s, &ws_env, "https://management.azure.com/", &[]).await.0, StatusCode::UNAUTHORIZED);
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}
