//! Upload sessions over time (issue 10 item 6): idle sessions expire with their bytes, open
//! sessions are capped per principal and per registry with a protocol-shaped refusal, and a
//! deleted registry's sessions go with it, bytes included.
mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn session_dir(s: &TestServer, loc: &str) -> PathBuf {
    s.data_dir.join("blobs/uploads").join(loc.rsplit('/').next().unwrap())
}

async fn open_session(s: &TestServer, path: &str) -> Reply {
    send(s.http(Method::POST, &format!("{path}/blobs/uploads/"))).await
}

#[tokio::test]
async fn idle_sessions_expire_with_their_bytes_and_active_ones_stay() {
    let s = TestServer::builder().flags(&["--upload-idle-timeout", "4"]).start().await;
    let _reg = s.registry("idlereg").await;
    let r = open_session(&s, "/v2/idlereg/app").await;
    let idle = patch_accepted(&s, r.header("location").unwrap(), b"abandoned after one chunk").await;
    let r = open_session(&s, "/v2/idlereg/app").await;
    let active = patch_accepted(&s, r.header("location").unwrap(), b"polled").await;
    assert!(session_dir(&s, &idle).join("data").is_file());

    // The active session's client keeps asking for its status; the idle one's never comes back.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = send(s.http(Method::GET, &active)).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "a session in use must not expire: {}", r.text());
        if !session_dir(&s, &idle).exists() {
            break;
        }
        assert!(Instant::now() < deadline, "the idle session did not expire");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    send(s.http(Method::GET, &idle)).await.expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    send(s.http(Method::PATCH, &idle).body(b"late".to_vec())).await.expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    // The active one still works to the end.
    let r = send(s.http(Method::GET, &active)).await;
    assert_eq!(r.header("range"), Some("0-5"));
    let r = send(s.http(Method::PUT, &format!("{active}?digest={}", sha256(b"polled")))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert!(s.log_text().contains("expired idle upload sessions"), "the expiry is logged");
}

/// The admin user of `registry` (enabled here): a principal of its own.
async fn admin_user(s: &TestServer, registry: &str) -> (String, String) {
    let path = s.registry_path(&format!("rg-{registry}"), registry);
    let (st, v) = s.mgmt(Method::PATCH, &path, Some(json!({"properties": {"adminUserEnabled": true}}))).await;
    assert!(st.is_success(), "{st} {v}");
    let (st, creds) = s.mgmt(Method::POST, &format!("{path}/listCredentials"), None).await;
    assert_eq!(st, StatusCode::OK, "{creds}");
    (creds["username"].as_str().unwrap().to_string(), creds["passwords"][0]["value"].as_str().unwrap().to_string())
}

fn expect_cap(r: &Reply, setting: &str, limit: u64) {
    r.expect_error(429, "TOOMANYREQUESTS");
    let e = &r.json()["errors"][0];
    let message = e["message"].as_str().unwrap();
    assert!(message.contains(setting) && message.contains(&format!("{limit} open upload sessions")), "{message}");
    assert!(message.contains("cancel"), "the message says how to get out: {message}");
    assert_eq!(e["detail"]["limit"], json!(limit));
}

#[tokio::test]
async fn open_sessions_are_capped_per_principal_and_per_registry() {
    let s = TestServer::builder()
        .flags(&["--max-uploads-per-principal", "3", "--max-uploads-per-registry", "4"])
        .start()
        .await;
    let _one = s.registry("capone").await;
    let _two = s.registry("captwo").await;
    let mut mine = Vec::new();
    for _ in 0..3 {
        let r = open_session(&s, "/v2/capone/app").await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
        mine.push(r.header("location").unwrap().to_string());
    }
    // The principal's cap holds in every registry.
    expect_cap(&open_session(&s, "/v2/capone/app").await, "--max-uploads-per-principal", 3);
    expect_cap(&open_session(&s, "/v2/captwo/app").await, "--max-uploads-per-principal", 3);
    // A refused request left nothing behind on disk.
    let dirs = std::fs::read_dir(s.data_dir.join("blobs/uploads")).unwrap().count();
    assert_eq!(dirs, 3);
    // Monolithic uploads open no session: they still work.
    let r = send(
        s.http(Method::POST, &format!("/v2/capone/app/blobs/uploads/?digest={}", sha256(b"one shot")))
            .body(&b"one shot"[..]),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());

    // Another principal (the registry's admin user) fills the registry's cap.
    let (user, password) = admin_user(&s, "capone").await;
    let as_admin =
        || s.client().post(format!("{}/v2/capone/app/blobs/uploads/", s.base())).basic_auth(&user, Some(&password));
    let r = send(as_admin()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    expect_cap(&send(as_admin()).await, "--max-uploads-per-registry", 4);

    // Ending a session makes room again.
    let r = send(s.http(Method::DELETE, &mine[0])).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = open_session(&s, "/v2/captwo/app").await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    expect_cap(&open_session(&s, "/v2/capone/app").await, "--max-uploads-per-principal", 3);
    let r = send(s.http(Method::PUT, &format!("{}?digest={}", mine[1], sha256(b"")))).await;
    assert_eq!(r.status, StatusCode::CREATED, "a completed session ends too: {}", r.text());
    let r = send(as_admin()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
}

#[tokio::test]
async fn deleting_a_registry_deletes_its_upload_sessions_and_their_bytes() {
    let s = TestServer::start().await;
    let reg = s.registry("doomedup").await;
    let _other = s.registry("keptup").await;
    let r = open_session(&s, "/v2/doomedup/app").await;
    let doomed = patch_accepted(&s, r.header("location").unwrap(), &vec![7u8; 100_000]).await;
    let r = open_session(&s, "/v2/keptup/app").await;
    let kept = patch_accepted(&s, r.header("location").unwrap(), b"kept").await;
    assert!(session_dir(&s, &doomed).join("data").is_file());

    let (st, body) = s.mgmt(Method::DELETE, &s.registry_path(&reg.rg, "doomedup"), None).await;
    assert!(st.is_success(), "{st} {body}");
    assert!(!session_dir(&s, &doomed).exists(), "the deleted registry's session bytes are gone at once");
    // Recreated under the same name, the old session is unknown.
    let (st, body): (StatusCode, Value) = s.create_registry(&reg.rg, "doomedup", "Premium").await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    send(s.http(Method::GET, &doomed)).await.expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    // Other registries' sessions are untouched.
    let r = send(s.http(Method::GET, &kept)).await;
    assert_eq!((r.status, r.header("range")), (StatusCode::NO_CONTENT, Some("0-3")));
}
