//! ACR's locks (`changeableAttributes`) restrict what a fully authorized caller may do.

mod common;

use common::{TestServer, send};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn locks_restrict_pulls_pushes_deletes_and_listings() {
    let s = TestServer::start().await;
    let reg = s.registry("lockreg").await;
    reg.push_image("app", "v1", "lock-one").await;
    reg.push_image("app", "v2", "lock-two").await;
    let patch = |path: &str, body: serde_json::Value| send(s.http(Method::PATCH, path).json(&body));

    // writeEnabled=false on the repository: no pushes, no deletes.
    assert_eq!(patch("/acr/v1/lockreg/app", json!({"writeEnabled": false})).await.status, StatusCode::OK);
    let upload = send(reg.v2(Method::POST, "app", "blobs/uploads/")).await;
    upload.expect_error(403, "DENIED");
    assert!(upload.text().contains("writeEnabled"), "{}", upload.text());
    send(reg.v2(Method::DELETE, "app", "manifests/v1")).await.expect_error(403, "DENIED");
    assert_eq!(reg.get_manifest("app", "v1").await.status, StatusCode::OK, "reads stay allowed");
    assert_eq!(patch("/acr/v1/lockreg/app", json!({"writeEnabled": true})).await.status, StatusCode::OK);

    // deleteEnabled=false on a tag: the tag cannot be deleted, the other can.
    assert_eq!(patch("/acr/v1/lockreg/app/_tags/v1", json!({"deleteEnabled": false})).await.status, StatusCode::OK);
    send(reg.v2(Method::DELETE, "app", "manifests/v1")).await.expect_error(403, "DENIED");
    assert_eq!(send(s.http(Method::DELETE, "/acr/v1/lockreg/app/_tags/v1")).await.status, StatusCode::FORBIDDEN);

    // readEnabled=false on a tag: pulls by that tag are refused.
    assert_eq!(patch("/acr/v1/lockreg/app/_tags/v2", json!({"readEnabled": false})).await.status, StatusCode::OK);
    reg.get_manifest("app", "v2").await.expect_error(403, "DENIED");
    assert_eq!(reg.get_manifest("app", "v1").await.status, StatusCode::OK);

    // listEnabled=false hides a tag from listings.
    assert_eq!(
        patch("/acr/v1/lockreg/app/_tags/v2", json!({"listEnabled": false, "readEnabled": true})).await.status,
        StatusCode::OK
    );
    let tags = send(reg.v2(Method::GET, "app", "tags/list")).await.json();
    assert_eq!(tags["tags"], json!(["v1"]), "{tags}");

    // Unlocked again, deletes work.
    assert_eq!(patch("/acr/v1/lockreg/app/_tags/v1", json!({"deleteEnabled": true})).await.status, StatusCode::OK);
    assert_eq!(send(reg.v2(Method::DELETE, "app", "manifests/v1")).await.status, StatusCode::ACCEPTED);
}

/// A delete that would take locked things with it is refused as a whole: deleting a manifest
/// by digest deletes the tags pointing at it (`az acr repository delete --image repo:tag`
/// deletes by digest), and deleting a repository deletes every manifest and tag in it.
#[tokio::test]
async fn deletes_do_not_get_round_a_lock() {
    let s = TestServer::start().await;
    let reg = s.registry("lockreg").await;
    let (_, digest) = reg.push_image("app", "v1", "round-one").await;
    reg.push_image("app", "v2", "round-two").await;
    let patch = |path: &str, body: serde_json::Value| send(s.http(Method::PATCH, path).json(&body));

    // A delete-locked tag protects its manifest, by either API, and names itself.
    assert_eq!(patch("/acr/v1/lockreg/app/_tags/v1", json!({"deleteEnabled": false})).await.status, StatusCode::OK);
    let by_digest = send(reg.v2(Method::DELETE, "app", &format!("manifests/{digest}"))).await;
    by_digest.expect_error(403, "DENIED");
    assert!(
        by_digest.text().contains("tag 'v1' has deleteEnabled set to false")
            && by_digest.text().contains("--image app:v1 --delete-enabled true"),
        "{}",
        by_digest.text()
    );
    send(s.http(Method::DELETE, &format!("/acr/v1/lockreg/app/_manifests/{digest}"))).await.expect_error(403, "DENIED");
    // … and the repository: nothing is deleted, not even the unlocked v2.
    let whole = send(s.http(Method::DELETE, "/acr/v1/lockreg/app")).await;
    whole.expect_error(403, "DENIED");
    assert!(whole.text().contains("tag 'v1'"), "{}", whole.text());
    assert_eq!(reg.get_manifest("app", "v1").await.status, StatusCode::OK);
    assert_eq!(reg.get_manifest("app", "v2").await.status, StatusCode::OK);

    // A write-locked manifest blocks the repository's deletion too, naming the digest.
    assert_eq!(patch("/acr/v1/lockreg/app/_tags/v1", json!({"deleteEnabled": true})).await.status, StatusCode::OK);
    assert_eq!(
        patch(&format!("/acr/v1/lockreg/app/_manifests/{digest}"), json!({"writeEnabled": false})).await.status,
        StatusCode::OK
    );
    let whole = send(s.http(Method::DELETE, "/acr/v1/lockreg/app")).await;
    whole.expect_error(403, "DENIED");
    assert!(whole.text().contains(&format!("--image app@{digest} --write-enabled true")), "{}", whole.text());

    // Unlocked, both deletes work.
    assert_eq!(
        patch(&format!("/acr/v1/lockreg/app/_manifests/{digest}"), json!({"writeEnabled": true})).await.status,
        StatusCode::OK
    );
    assert_eq!(send(reg.v2(Method::DELETE, "app", &format!("manifests/{digest}"))).await.status, StatusCode::ACCEPTED);
    assert_eq!(send(s.http(Method::DELETE, "/acr/v1/lockreg/app")).await.status, StatusCode::ACCEPTED);
}
