//! Unmodified Azure SDKs against a TLS Wharf: azure-identity's `ManagedIdentityCredential`
//! (App Service style, with `IDENTITY_ENDPOINT`/`IDENTITY_HEADER` from a hosting resource's
//! workload environment) and `ClientSecretCredential`, feeding azure-containerregistry's
//! `ContainerRegistryClient`. Driven by `tests/sdk/registry_sdk_identities.py` in `.venv`.

mod common;

use std::path::Path;
use std::process::Command;

use common::{GRAPH_SCOPE, MGMT_SCOPE, TestServer, admin_access_token, bearer_call, require_venv_modules, uuid_like};
use reqwest::Method;
use serde_json::{Value, json};

/// A management or Graph call with a bearer token, checked to succeed: the JSON answer.
async fn call(s: &TestServer, token: &str, method: Method, path: &str, body: Option<Value>) -> Value {
    let (st, v) = bearer_call(s, token, method.clone(), path, body).await;
    assert!(st.is_success(), "{method} {path}: {st} {v}");
    v
}

#[tokio::test]
async fn azure_sdks_with_managed_identities_and_a_service_principal() {
    let Some(py) =
        require_venv_modules("azure.identity, azure.containerregistry", "azure-identity and azure-containerregistry")
    else {
        return;
    };
    let s = TestServer::builder().tls().start().await;
    let creds: Value =
        serde_json::from_str(&std::fs::read_to_string(s.data_dir.join("bootstrap-credentials.json")).unwrap()).unwrap();
    let (tenant, sub) =
        (creds["tenant"].as_str().unwrap().to_string(), creds["subscription"].as_str().unwrap().to_string());
    let arm = admin_access_token(&s, MGMT_SCOPE).await;
    let graph = admin_access_token(&s, GRAPH_SCOPE).await;
    let q = "?api-version=2024-11-01";

    // A registry with one image.
    let rg = format!("/subscriptions/{sub}/resourceGroups/rg-sdk");
    call(&s, &arm, Method::PUT, &format!("{rg}{q}"), Some(json!({"location": "westus"}))).await;
    let registry_id = format!("{rg}/providers/Microsoft.ContainerRegistry/registries/sdkregistry");
    let reg = call(
        &s,
        &arm,
        Method::PUT,
        &format!("{registry_id}{q}"),
        Some(json!({"location": "westus", "sku": {"name": "Premium"}})),
    )
    .await;
    let login_server = reg["properties"]["loginServer"].as_str().unwrap().to_string();
    let registry = common::Registry { server: &s, name: "sdkregistry".into(), rg: "rg-sdk".into() };
    registry.push_image("hello", "v1", "sdk").await;

    // A container group with a system-assigned and a user-assigned identity, both AcrPull.
    let uami_id = format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/sdk-identity");
    let uami = call(&s, &arm, Method::PUT, &format!("{uami_id}{q}"), Some(json!({"location": "westus"}))).await;
    let cg_id = format!("{rg}/providers/Microsoft.ContainerInstance/containerGroups/sdk-workload");
    let cg = call(&s, &arm, Method::PUT, &format!("{cg_id}{q}"), Some(json!({"location": "westus", "identity": {"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {uami_id.clone(): {}}}}))).await;
    let defs = call(&s, &arm, Method::GET, &format!("{registry_id}/providers/Microsoft.Authorization/roleDefinitions?$filter=roleName%20eq%20'AcrPull'&api-version=2022-05-01-preview"), None).await;
    let acr_pull = defs["value"][0]["id"].as_str().expect("the AcrPull role").to_string();
    let assign = |principal: String| {
        let (s, arm, registry_id, acr_pull) = (&s, arm.clone(), registry_id.clone(), acr_pull.clone());
        async move {
            let name = uuid_like(&format!("assignment:{principal}"));
            let body = json!({"properties": {"roleDefinitionId": acr_pull, "principalId": principal, "principalType": "ServicePrincipal"}});
            call(
                s,
                &arm,
                Method::PUT,
                &format!(
                    "{registry_id}/providers/Microsoft.Authorization/roleAssignments/{name}?api-version=2022-04-01"
                ),
                Some(body),
            )
            .await;
        }
    };
    assign(cg["identity"]["principalId"].as_str().unwrap().to_string()).await;
    assign(uami["properties"]["principalId"].as_str().unwrap().to_string()).await;
    let env = call(&s, &arm, Method::POST, &format!("{cg_id}/workloadEnvironment{q}"), None).await;
    assert_eq!(env["IDENTITY_ENDPOINT"], format!("{}/msi/token", s.base()));

    // A service principal made through Graph, also AcrPull.
    let app = call(&s, &graph, Method::POST, "/v1.0/applications", Some(json!({"displayName": "sdk-sp"}))).await;
    let sp = call(&s, &graph, Method::POST, "/v1.0/servicePrincipals", Some(json!({"appId": app["appId"]}))).await;
    let secret = call(
        &s,
        &graph,
        Method::POST,
        &format!("/v1.0/applications/{}/addPassword", app["id"].as_str().unwrap()),
        Some(json!({"passwordCredential": {}})),
    )
    .await;
    assign(sp["id"].as_str().unwrap().to_string()).await;

    let endpoint = format!("https://{login_server}");
    let run = |args: Vec<String>, with_msi: bool| {
        let mut cmd = Command::new(&py);
        cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/registry_sdk_identities.py"))
            .args(&args)
            .env("REQUESTS_CA_BUNDLE", s.tls_ca.as_ref().unwrap())
            .env("WHARF_REGISTRY_ENDPOINT", &endpoint)
            .env("AZURE_CORE_COLLECT_TELEMETRY", "false")
            .env("NO_PROXY", "*")
            .env_remove("IDENTITY_ENDPOINT")
            .env_remove("IDENTITY_HEADER")
            .env_remove("MSI_ENDPOINT")
            .env_remove("AZURE_CLIENT_ID");
        if with_msi {
            cmd.env("IDENTITY_ENDPOINT", env["IDENTITY_ENDPOINT"].as_str().unwrap())
                .env("IDENTITY_HEADER", env["IDENTITY_HEADER"].as_str().unwrap());
        }
        let out = cmd.output().expect("run python");
        assert!(
            out.status.success(),
            "python {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
    };

    let system = run(vec!["mi".into()], true);
    assert_eq!(system["oid"], cg["identity"]["principalId"], "{system}");
    assert_eq!(system["mi_kind"], "SystemAssigned");
    assert_eq!(system["host_type"], "Microsoft.ContainerInstance/containerGroups");
    assert_eq!(system["repositories"], json!(["hello"]));
    assert_eq!(system["tags"], json!(["v1"]));

    let user_assigned = run(vec!["mi".into(), uami["properties"]["clientId"].as_str().unwrap().to_string()], true);
    assert_eq!(user_assigned["oid"], uami["properties"]["principalId"], "{user_assigned}");
    assert_eq!(user_assigned["mi_kind"], "UserAssigned");
    assert_eq!(user_assigned["repositories"], json!(["hello"]));

    let by_secret = run(
        vec![
            "sp".into(),
            tenant.clone(),
            app["appId"].as_str().unwrap().to_string(),
            secret["secretText"].as_str().unwrap().to_string(),
            s.base(),
        ],
        false,
    );
    assert_eq!(by_secret["oid"], sp["id"], "{by_secret}");
    assert_eq!(by_secret["tags"], json!(["v1"]));
}
