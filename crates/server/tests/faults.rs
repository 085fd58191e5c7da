//! Storage faults, in process: a metadata store that fails must give each plane's own error
//! shape with a 503 (unavailable, retry) or a 500 (anything else) — never a panic, a hang or the
//! store's own message — and leave nothing half-written for when it recovers.

mod support;

use http::{Method, StatusCode};
use serde_json::json;
use support::{Fault, SECRET_ERROR_TEXT, TestApp};

fn oci_manifest() -> (Vec<u8>, Vec<u8>) {
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let digest = format!("sha256:{}", sha256_hex(&config));
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest, "size": config.len()},
        "layers": [],
    });
    (config, manifest.to_string().into_bytes())
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

async fn app_with_registry() -> TestApp {
    let app = TestApp::start().await;
    let rg = format!("/subscriptions/{}/resourceGroups/rg", app.state.subscription_id);
    assert!(app.arm(Method::PUT, &rg, Some(json!({"location": "westus"}))).await.status.is_success());
    let a = app
        .arm(
            Method::PUT,
            &app.registry_path("rg", "faultreg"),
            Some(json!({"location": "westus", "sku": {"name": "Premium"}})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{a:?}");
    app
}

/// Every plane answers a failing store in its own shape, without the store's words.
#[tokio::test]
async fn a_failing_store_gets_each_planes_error_shape() {
    let app = app_with_registry().await;
    let (config, manifest) = oci_manifest();
    let digest = format!("sha256:{}", sha256_hex(&config));
    let pushed =
        app.data(Method::POST, &format!("/v2/faultreg/app/blobs/uploads/?digest={digest}"), None, config).await;
    assert_eq!(pushed.status, StatusCode::CREATED, "{pushed:?}");
    let put = app
        .data(
            Method::PUT,
            "/v2/faultreg/app/manifests/v1",
            Some("application/vnd.oci.image.manifest.v1+json"),
            manifest,
        )
        .await;
    assert_eq!(put.status, StatusCode::CREATED, "{put:?}");

    for (fault, status, oci_code, arm_code, graph_code) in [
        (
            Fault::Unavailable,
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "ServiceUnavailable",
            "ServiceNotAvailable",
        ),
        (
            Fault::Broken,
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "InternalServerError",
            "InternalServerError",
        ),
    ] {
        app.faults.set(fault);
        let answers = [
            ("data plane", app.data(Method::GET, "/v2/faultreg/app/manifests/v1", None, vec![]).await, oci_code),
            ("data plane tags", app.data(Method::GET, "/v2/faultreg/app/tags/list", None, vec![]).await, oci_code),
            ("acr", app.data(Method::GET, "/acr/v1/faultreg/app/_tags", None, vec![]).await, oci_code),
            ("arm", app.arm(Method::GET, &app.registry_path("rg", "faultreg"), None).await, arm_code),
            (
                "arm list",
                app.arm(Method::GET, &format!("/subscriptions/{}/resourceGroups", app.state.subscription_id), None)
                    .await,
                arm_code,
            ),
            ("graph", app.graph(Method::GET, "users", None).await, graph_code),
        ];
        for (plane, a, code) in answers {
            assert_eq!(a.status, status, "{fault:?} {plane}: {a:?}");
            assert!(a.content_type.starts_with("application/json"), "{plane}: {a:?}");
            let body = a.json();
            let found = body["errors"][0]["code"].as_str().or(body["error"]["code"].as_str());
            assert_eq!(found, Some(code), "{fault:?} {plane}: {body}");
            assert!(!a.text.contains(SECRET_ERROR_TEXT), "{plane} leaks the store's message: {}", a.text);
        }
    }
    app.faults.set(Fault::None);
    let again = app.data(Method::GET, "/v2/faultreg/app/manifests/v1", None, vec![]).await;
    assert_eq!(again.status, StatusCode::OK, "the store recovered: {again:?}");
}

/// A write that fails leaves nothing behind: no registry, no tag, no assignment, no user.
#[tokio::test]
async fn a_failing_write_leaves_nothing_half_written() {
    let app = app_with_registry().await;
    let (config, manifest) = oci_manifest();
    let digest = format!("sha256:{}", sha256_hex(&config));
    app.faults.set(Fault::Writes);
    let blob =
        app.data(Method::POST, &format!("/v2/faultreg/app/blobs/uploads/?digest={digest}"), None, config.clone()).await;
    assert_eq!(blob.status, StatusCode::INTERNAL_SERVER_ERROR, "{blob:?}");
    let reg = app
        .arm(
            Method::PUT,
            &app.registry_path("rg", "faultreg2"),
            Some(json!({"location": "westus", "sku": {"name": "Basic"}})),
        )
        .await;
    assert_eq!(reg.status, StatusCode::INTERNAL_SERVER_ERROR, "{reg:?}");
    let user = app
        .graph(
            Method::POST,
            "users",
            Some(json!({"accountEnabled": true, "displayName": "F", "userPrincipalName": "f@wharf.local",
                        "passwordProfile": {"password": "Sup3r-secret-1"}})),
        )
        .await;
    assert_eq!(user.status, StatusCode::INTERNAL_SERVER_ERROR, "{user:?}");
    app.faults.set(Fault::None);
    // The blob never became visible; the registry and the user do not exist.
    let head = app.data(Method::HEAD, &format!("/v2/faultreg/app/blobs/{digest}"), None, vec![]).await;
    assert_eq!(head.status, StatusCode::NOT_FOUND);
    assert_eq!(app.arm(Method::GET, &app.registry_path("rg", "faultreg2"), None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.graph(Method::GET, "users/f@wharf.local", None).await.status, StatusCode::NOT_FOUND);
    // The same push succeeds now, and so does the manifest.
    let blob = app.data(Method::POST, &format!("/v2/faultreg/app/blobs/uploads/?digest={digest}"), None, config).await;
    assert_eq!(blob.status, StatusCode::CREATED, "{blob:?}");
    app.faults.set(Fault::Writes);
    let put = app
        .data(
            Method::PUT,
            "/v2/faultreg/app/manifests/v1",
            Some("application/vnd.oci.image.manifest.v1+json"),
            manifest.clone(),
        )
        .await;
    assert_eq!(put.status, StatusCode::INTERNAL_SERVER_ERROR, "{put:?}");
    app.faults.set(Fault::None);
    let tag = app.data(Method::GET, "/v2/faultreg/app/manifests/v1", None, vec![]).await;
    assert_eq!(tag.status, StatusCode::NOT_FOUND, "no tag survived the failed write: {tag:?}");
    let put = app
        .data(
            Method::PUT,
            "/v2/faultreg/app/manifests/v1",
            Some("application/vnd.oci.image.manifest.v1+json"),
            manifest,
        )
        .await;
    assert_eq!(put.status, StatusCode::CREATED, "{put:?}");
}
