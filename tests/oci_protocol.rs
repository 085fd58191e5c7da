//! Protocol-level tests of the OCI distribution API (and ACR's `/acr/v1`) against a spawned
//! `wharf serve`: every endpoint, its headers, and the spec's error codes for malformed requests.
mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn blob_bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[tokio::test]
async fn ping_answers_with_the_api_version_header() {
    let s = TestServer::start().await;
    for m in [Method::GET, Method::HEAD] {
        let r = send(s.http(m.clone(), "/v2/")).await;
        assert_eq!(r.status, StatusCode::OK, "{m}");
        assert_eq!(r.header("docker-distribution-api-version"), Some("registry/2.0"));
    }
    let r = send(s.http(Method::GET, "/v2")).await;
    assert_eq!(r.status, StatusCode::OK);
    // Errors carry the header too.
    let r = send(s.http(Method::GET, "/v2/nosuchregistry/repo/tags/list")).await;
    r.expect_error(404, "NAME_UNKNOWN");
    assert_eq!(r.header("docker-distribution-api-version"), Some("registry/2.0"));
}

#[tokio::test]
async fn blob_head_get_and_ranges() {
    let s = TestServer::start().await;
    let reg = s.registry("blobs1").await;
    let data = blob_bytes(100, 7);
    let d = reg.push_blob("app", &data).await;

    let r = send(reg.v2(Method::HEAD, "app", &format!("blobs/{d}"))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-length"), Some("100"));
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
    assert!(r.body.is_empty());

    let r = reg.get_blob("app", &d).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body[..], &data[..]);
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));

    let range = |v: &'static str| reg.v2(Method::GET, "app", &format!("blobs/{d}")).header("range", v);
    let r = send(range("bytes=10-19")).await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.header("content-range"), Some("bytes 10-19/100"));
    assert_eq!(&r.body[..], &data[10..20]);

    let r = send(range("bytes=-10")).await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.header("content-range"), Some("bytes 90-99/100"));
    assert_eq!(&r.body[..], &data[90..]);

    let r = send(range("bytes=95-")).await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.header("content-range"), Some("bytes 95-99/100"));
    assert_eq!(&r.body[..], &data[95..]);

    let r = send(range("bytes=100-")).await;
    r.expect_error(416, "SIZE_INVALID");
    assert_eq!(r.header("content-range"), Some("bytes */100"));

    // Unknown blob, in a repository that exists and one that does not.
    let unknown = sha256(b"never pushed");
    send(reg.v2(Method::GET, "app", &format!("blobs/{unknown}"))).await.expect_error(404, "BLOB_UNKNOWN");
    let r = send(reg.v2(Method::HEAD, "app", &format!("blobs/{unknown}"))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // A blob is only visible in the repositories it was pushed to.
    send(reg.v2(Method::GET, "other", &format!("blobs/{d}"))).await.expect_error(404, "BLOB_UNKNOWN");
}

#[tokio::test]
async fn monolithic_and_post_put_uploads() {
    let s = TestServer::start().await;
    let reg = s.registry("monolithic").await;
    let data = blob_bytes(4096, 1);
    let d = sha256(&data);
    let r = send(reg.v2(Method::POST, "app", &format!("blobs/uploads/?digest={d}")).body(data.clone())).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.header("location"), Some(format!("/v2/monolithic/app/blobs/{d}").as_str()));
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
    assert_eq!(&reg.get_blob("app", &d).await.body[..], &data[..]);

    // POST then a single PUT carrying the whole body.
    let data2 = blob_bytes(5000, 2);
    let d2 = sha256(&data2);
    let r = send(reg.v2(Method::POST, "app", "blobs/uploads/")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let loc = r.header("location").expect("Location").to_string();
    assert!(loc.starts_with("/v2/monolithic/app/blobs/uploads/"), "{loc}");
    assert!(r.header("docker-upload-uuid").is_some());
    let r = send(s.http(Method::PUT, &format!("{loc}?digest={d2}")).body(data2.clone())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.header("docker-content-digest"), Some(d2.as_str()));
    assert_eq!(&reg.get_blob("app", &d2).await.body[..], &data2[..]);

    // The empty blob.
    let d0 = reg.push_blob("app", b"").await;
    let r = reg.get_blob("app", &d0).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.is_empty());
}

async fn start_session(reg: &Registry<'_>, repo: &str) -> String {
    let r = send(reg.v2(Method::POST, repo, "blobs/uploads/")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    r.header("location").expect("Location").to_string()
}

#[tokio::test]
async fn chunked_upload_with_status_and_final_put() {
    let s = TestServer::start().await;
    let reg = s.registry("chunks").await;
    let data = blob_bytes(30, 3);
    let d = sha256(&data);

    // Final PUT without a body.
    let loc = start_session(&reg, "app").await;
    let r = patch(&s, &loc, Some("0-9"), &data[..10]).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert_eq!(r.header("range"), Some("0-9"));
    let loc = r.header("location").unwrap().to_string();
    let r = send(s.http(Method::GET, &loc)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.header("range"), Some("0-9"));
    assert!(r.header("location").is_some());
    let r = patch(&s, &loc, Some("10-19"), &data[10..20]).await;
    assert_eq!(r.header("range"), Some("0-19"));
    // A chunk without Content-Range is appended too (streamed PATCH).
    let r = patch(&s, &loc, None, &data[20..]).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.header("range"), Some("0-29"));
    let r = send(s.http(Method::PUT, &format!("{loc}?digest={d}"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(&reg.get_blob("app", &d).await.body[..], &data[..]);
    // The finished session is gone.
    send(s.http(Method::GET, &loc)).await.expect_error(404, "BLOB_UPLOAD_UNKNOWN");

    // Final PUT carrying the last chunk.
    let data2 = blob_bytes(25, 4);
    let d2 = sha256(&data2);
    let loc = start_session(&reg, "app").await;
    let r = patch(&s, &loc, Some("0-14"), &data2[..15]).await;
    let loc = r.header("location").unwrap().to_string();
    let r = send(
        s.http(Method::PUT, &format!("{loc}?digest={d2}")).header("content-range", "15-24").body(data2[15..].to_vec()),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(&reg.get_blob("app", &d2).await.body[..], &data2[..]);
}

#[tokio::test]
async fn out_of_order_and_overlapping_chunks_are_refused_with_the_current_range() {
    let s = TestServer::start().await;
    let reg = s.registry("order").await;
    let data = blob_bytes(30, 5);
    let loc = start_session(&reg, "app").await;
    let r = patch(&s, &loc, Some("0-9"), &data[..10]).await;
    let loc = r.header("location").unwrap().to_string();

    for (range, body) in [("20-29", &data[20..]), ("5-14", &data[5..15]), ("0-9", &data[..10])] {
        let r = patch(&s, &loc, Some(range), body).await;
        r.expect_error(416, "BLOB_UPLOAD_INVALID");
        assert_eq!(r.header("range"), Some("0-9"), "chunk {range}");
        assert!(r.header("location").is_some(), "chunk {range}");
    }
    // Content-Range that disagrees with the body length, and a malformed one.
    let r = patch(&s, &loc, Some("10-19"), &data[10..15]).await;
    assert_eq!(r.status.as_u16(), 416, "{}", r.text());
    let r = patch(&s, &loc, Some("ten-nineteen"), &data[10..20]).await;
    r.expect_error(416, "BLOB_UPLOAD_INVALID");
    // Nothing of the refused chunks was kept: the session resumes at 10.
    let r = send(s.http(Method::GET, &loc)).await;
    assert_eq!(r.header("range"), Some("0-9"));
    let r = patch(&s, &loc, Some("10-29"), &data[10..]).await;
    assert_eq!(r.header("range"), Some("0-29"));
    let d = sha256(&data);
    let r = send(s.http(Method::PUT, &format!("{loc}?digest={d}"))).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(&reg.get_blob("app", &d).await.body[..], &data[..]);
}

#[tokio::test]
async fn digest_mismatch_stores_nothing() {
    let s = TestServer::start().await;
    let reg = s.registry("mismatch").await;
    let data = blob_bytes(64, 9);
    let wrong = sha256(b"something else");
    let r = send(reg.v2(Method::POST, "app", &format!("blobs/uploads/?digest={wrong}")).body(data.clone())).await;
    r.expect_error(400, "DIGEST_INVALID");
    for d in [&wrong, &sha256(&data)] {
        let r = send(reg.v2(Method::HEAD, "app", &format!("blobs/{d}"))).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{d} must not exist");
    }

    // Chunked, wrong digest at the final PUT.
    let loc = start_session(&reg, "app").await;
    let r = patch(&s, &loc, Some("0-63"), &data).await;
    let loc = r.header("location").unwrap().to_string();
    let r = send(s.http(Method::PUT, &format!("{loc}?digest={wrong}"))).await;
    r.expect_error(400, "DIGEST_INVALID");
    for d in [&wrong, &sha256(&data)] {
        let r = send(reg.v2(Method::HEAD, "app", &format!("blobs/{d}"))).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{d} must not exist");
    }
    // A final PUT needs a digest.
    let loc = start_session(&reg, "app").await;
    send(s.http(Method::PUT, &loc).body(data.clone())).await.expect_error(400, "DIGEST_INVALID");
}

/// Issue 10 item 8: a final PUT that is refused (wrong digest, body longer than its
/// Content-Range) leaves the session exactly as it was — its body is not appended — so the
/// client resumes from the size it was told and completes the upload.
#[tokio::test]
async fn a_refused_final_put_leaves_the_session_as_it_was() {
    let s = TestServer::start().await;
    let reg = s.registry("refusedput").await;
    let data = blob_bytes(3000, 11);
    let d = sha256(&data);
    let loc = start_session(&reg, "app").await;
    let r = patch(&s, &loc, Some("0-999"), &data[..1000]).await;
    let loc = r.header("location").unwrap().to_string();
    let wrong = sha256(b"not this content");
    let final_put = |digest: &str, range: Option<&str>, body: &[u8]| {
        let mut rb = s.http(Method::PUT, &format!("{loc}?digest={digest}")).body(body.to_vec());
        if let Some(range) = range {
            rb = rb.header("content-range", range);
        }
        send(rb)
    };
    final_put(&wrong, Some("1000-1999"), &data[1000..2000]).await.expect_error(400, "DIGEST_INVALID");
    final_put(&wrong, None, &data[1000..]).await.expect_error(400, "DIGEST_INVALID");
    let r = final_put(&d, Some("1000-1499"), &data[1000..]).await;
    assert_eq!(r.status.as_u16(), 416, "a body longer than its range: {}", r.text());
    for d in [&wrong, &d] {
        let r = send(reg.v2(Method::HEAD, "app", &format!("blobs/{d}"))).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{d} must not exist");
    }
    let r = send(s.http(Method::GET, &loc)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.header("range"), Some("0-999"), "the refused bodies were not appended");
    // The client resumes where it was told it stands.
    let r = patch(&s, &loc, Some("1000-1999"), &data[1000..2000]).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let r = final_put(&d, Some("2000-2999"), &data[2000..]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(&reg.get_blob("app", &d).await.body[..], &data[..]);
}

#[tokio::test]
async fn cancel_and_foreign_sessions() {
    let s = TestServer::start().await;
    let reg = s.registry("cancel").await;
    let other = s.registry("cancel2").await;
    let loc = start_session(&reg, "app").await;
    let id = loc.rsplit('/').next().unwrap().to_string();

    // The session is not reachable through another repository or registry.
    for path in [format!("/v2/cancel/other/blobs/uploads/{id}"), format!("/v2/cancel2/app/blobs/uploads/{id}")] {
        send(s.http(Method::GET, &path)).await.expect_error(404, "BLOB_UPLOAD_UNKNOWN");
        patch(&s, &path, Some("0-2"), b"abc").await.expect_error(404, "BLOB_UPLOAD_UNKNOWN");
        send(s.http(Method::DELETE, &path)).await.expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    }
    let _ = other;
    // Ids that were never issued.
    send(s.http(Method::GET, "/v2/cancel/app/blobs/uploads/not-an-id")).await.expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    send(s.http(Method::GET, "/v2/cancel/app/blobs/uploads/00000000-0000-4000-8000-000000000000"))
        .await
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");

    // Cancel: 204, then the session is unknown everywhere.
    let r = send(s.http(Method::DELETE, &loc)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    send(s.http(Method::GET, &loc)).await.expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    patch(&s, &loc, Some("0-2"), b"abc").await.expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    send(s.http(Method::PUT, &format!("{loc}?digest={}", sha256(b"abc"))))
        .await
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    send(s.http(Method::DELETE, &loc)).await.expect_error(404, "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn cross_repository_mount() {
    let s = TestServer::start().await;
    let reg = s.registry("mount").await;
    let other = s.registry("mountother").await;
    let data = blob_bytes(200, 11);
    let d = reg.push_blob("src", &data).await;
    other.push_blob("src", &data).await;

    let r = send(reg.v2(Method::POST, "dst", &format!("blobs/uploads/?mount={d}&from=mount/src"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.header("location"), Some(format!("/v2/mount/dst/blobs/{d}").as_str()));
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
    assert_eq!(&reg.get_blob("dst", &d).await.body[..], &data[..]);

    // Not visible in `from`, `from` in another registry, or no `from`: an upload session instead.
    for q in [format!("mount={d}&from=mount/empty"), format!("mount={d}&from=mountother/src"), format!("mount={d}")] {
        let r = send(reg.v2(Method::POST, "dst2", &format!("blobs/uploads/?{q}"))).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{q}: {}", r.text());
        let loc = r.header("location").expect("Location of the fallback session");
        assert!(loc.starts_with("/v2/mount/dst2/blobs/uploads/"), "{loc}");
        let r = send(reg.v2(Method::HEAD, "dst2", &format!("blobs/{d}"))).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{q} must not have mounted");
    }
    // A malformed mount digest.
    send(reg.v2(Method::POST, "dst2", "blobs/uploads/?mount=sha256:zz&from=mount/src"))
        .await
        .expect_error(400, "DIGEST_INVALID");
}

#[tokio::test]
async fn blob_delete() {
    let s = TestServer::start().await;
    let reg = s.registry("blobdel").await;
    let d = reg.push_blob("app", b"to be deleted").await;
    let r = send(reg.v2(Method::DELETE, "app", &format!("blobs/{d}"))).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = send(reg.v2(Method::HEAD, "app", &format!("blobs/{d}"))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    send(reg.v2(Method::DELETE, "app", &format!("blobs/{d}"))).await.expect_error(404, "BLOB_UNKNOWN");
}

fn docker_manifest(config: &[u8], layer: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "digest": sha256(config), "size": config.len()},
        "layers": [{"mediaType": DOCKER_LAYER, "digest": sha256(layer), "size": layer.len()}],
    }))
    .unwrap()
}

fn docker_list(children: &[(&[u8], &str)]) -> Vec<u8> {
    let manifests: Vec<Value> = children
        .iter()
        .map(|(b, arch)| {
            json!({"mediaType": DOCKER_MANIFEST, "digest": sha256(b), "size": b.len(),
                                 "platform": {"architecture": arch, "os": "linux"}})
        })
        .collect();
    serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": manifests})).unwrap()
}

/// PUT by tag, then GET and HEAD by tag and by digest, with type, length and digest headers.
async fn round_trip(reg: &Registry<'_>, repo: &str, tag: &str, media_type: &str, bytes: &[u8]) -> String {
    let d = sha256(bytes);
    let r = reg.put_manifest(repo, tag, media_type, bytes).await;
    assert_eq!(r.status, StatusCode::CREATED, "{media_type}: {}", r.text());
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
    assert_eq!(r.header("location"), Some(format!("/v2/{}/manifests/{d}", reg.name_of(repo)).as_str()));
    for reference in [tag, d.as_str()] {
        let r = reg.get_manifest(repo, reference).await;
        assert_eq!(r.status, StatusCode::OK, "GET {reference}");
        assert_eq!(&r.body[..], bytes, "GET {reference}");
        assert_eq!(r.header("content-type"), Some(media_type));
        assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
        assert_eq!(r.header("content-length"), Some(bytes.len().to_string().as_str()));
        let r = send(reg.v2(Method::HEAD, repo, &format!("manifests/{reference}")).header("accept", media_type)).await;
        assert_eq!(r.status, StatusCode::OK, "HEAD {reference}");
        assert!(r.body.is_empty());
        assert_eq!(r.header("content-type"), Some(media_type));
        assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
        assert_eq!(r.header("content-length"), Some(bytes.len().to_string().as_str()));
    }
    d
}

#[tokio::test]
async fn manifests_of_every_type_round_trip_and_delete() {
    let s = TestServer::start().await;
    let reg = s.registry("manifests").await;
    let amd = TestImage::new("mani", "amd64");
    let arm = TestImage::new("mani", "arm64");
    for img in [&amd, &arm] {
        for (_, b) in img.blobs() {
            reg.push_blob("app", &b).await;
        }
    }
    let d_amd = round_trip(&reg, "app", "amd", OCI_MANIFEST, &amd.manifest).await;
    round_trip(&reg, "app", "arm", OCI_MANIFEST, &arm.manifest).await;
    let index = oci_index(&[(&amd.manifest[..], "amd64"), (&arm.manifest[..], "arm64")]);
    let d_index = round_trip(&reg, "app", "multi", OCI_INDEX, &index).await;

    let dm_amd = docker_manifest(&amd.config, &amd.layer);
    let dm_arm = docker_manifest(&arm.config, &arm.layer);
    round_trip(&reg, "app", "docker-amd", DOCKER_MANIFEST, &dm_amd).await;
    round_trip(&reg, "app", "docker-arm", DOCKER_MANIFEST, &dm_arm).await;
    let list = docker_list(&[(&dm_amd[..], "amd64"), (&dm_arm[..], "arm64")]);
    let d_list = round_trip(&reg, "app", "docker-multi", DOCKER_LIST, &list).await;

    // Re-tagging moves the tag; pushing by digest creates no tag.
    let r = reg.put_manifest("app", "amd", OCI_MANIFEST, &arm.manifest).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(&reg.get_manifest("app", "amd").await.body[..], &arm.manifest[..]);
    let r = reg.put_manifest("app", &d_amd, OCI_MANIFEST, &amd.manifest).await;
    assert_eq!(r.status, StatusCode::CREATED);

    // Tag delete: the tag goes, the manifest stays.
    let r = send(reg.v2(Method::DELETE, "app", "manifests/docker-multi")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    reg.get_manifest("app", "docker-multi").await.expect_error(404, "MANIFEST_UNKNOWN");
    assert_eq!(reg.get_manifest("app", &d_list).await.status, StatusCode::OK);
    send(reg.v2(Method::DELETE, "app", "manifests/docker-multi")).await.expect_error(404, "MANIFEST_UNKNOWN");

    // Delete by digest: the manifest and its tags go.
    let r = send(reg.v2(Method::DELETE, "app", &format!("manifests/{d_index}"))).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    reg.get_manifest("app", &d_index).await.expect_error(404, "MANIFEST_UNKNOWN");
    reg.get_manifest("app", "multi").await.expect_error(404, "MANIFEST_UNKNOWN");
    send(reg.v2(Method::DELETE, "app", &format!("manifests/{d_index}"))).await.expect_error(404, "MANIFEST_UNKNOWN");
    let tags = send(reg.v2(Method::GET, "app", "tags/list")).await.json();
    let mut names: Vec<&str> = tags["tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["amd", "arm", "docker-amd", "docker-arm"]);
}

#[tokio::test]
async fn accept_negotiation() {
    let s = TestServer::start().await;
    let reg = s.registry("accept").await;
    let (bytes, d) = reg.push_image("app", "v1", "accept").await;
    let get = |accept: Option<&'static str>| {
        let rb = reg.v2(Method::GET, "app", "manifests/v1");
        match accept {
            Some(a) => rb.header("accept", a),
            None => rb,
        }
    };
    for a in [
        None,
        Some(OCI_MANIFEST),
        Some("*/*"),
        Some("application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"),
    ] {
        let r = send(get(a)).await;
        assert_eq!(r.status, StatusCode::OK, "Accept {a:?}");
        assert_eq!(&r.body[..], &bytes[..]);
        assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
    }
    // Only a Docker type accepted: the OCI manifest is not offered (CNCF distribution's answer).
    send(get(Some(DOCKER_MANIFEST))).await.expect_error(404, "MANIFEST_UNKNOWN");
}

#[tokio::test]
async fn manifest_with_unknown_references_is_refused_and_creates_nothing() {
    let s = TestServer::start().await;
    let reg = s.registry("refsreg").await;
    let img = TestImage::new("refs", "amd64");
    // Only the config is pushed: the layer is unknown.
    reg.push_blob("app", &img.config).await;
    let r = reg.put_manifest("app", "v1", OCI_MANIFEST, &img.manifest).await;
    r.expect_error(400, "MANIFEST_BLOB_UNKNOWN");
    assert!(r.json().to_string().contains(&sha256(&img.layer)), "the error names the missing blob: {}", r.json());
    reg.get_manifest("app", "v1").await.expect_error(404, "MANIFEST_UNKNOWN");
    reg.get_manifest("app", &img.digest).await.expect_error(404, "MANIFEST_UNKNOWN");

    // A blob pushed to another repository of the same registry does not count.
    reg.push_blob("elsewhere", &img.layer).await;
    reg.put_manifest("app", "v1", OCI_MANIFEST, &img.manifest).await.expect_error(400, "MANIFEST_BLOB_UNKNOWN");

    // An index whose child manifest is missing.
    let other = TestImage::new("refs-child", "arm64");
    let index = oci_index(&[(&other.manifest[..], "arm64")]);
    reg.put_manifest("app", "multi", OCI_INDEX, &index).await.expect_error(400, "MANIFEST_BLOB_UNKNOWN");
    reg.get_manifest("app", "multi").await.expect_error(404, "MANIFEST_UNKNOWN");

    // No tag was created by any of it.
    let r = send(reg.v2(Method::GET, "app", "tags/list")).await;
    if r.status == StatusCode::OK {
        assert_eq!(r.json()["tags"].as_array().map(Vec::len).unwrap_or(0), 0, "{}", r.json());
    } else {
        r.expect_error(404, "NAME_UNKNOWN");
    }
    // Once the layer is there, the same manifest goes in.
    reg.push_blob("app", &img.layer).await;
    assert_eq!(reg.put_manifest("app", "v1", OCI_MANIFEST, &img.manifest).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn malformed_manifests() {
    let s = TestServer::start().await;
    let reg = s.registry("badmani").await;
    let (bytes, _) = reg.push_image("app", "v1", "badmani").await;
    // Not JSON, wrong schema version, media type header disagreeing with the body.
    reg.put_manifest("app", "x", OCI_MANIFEST, b"{not json").await.expect_error(400, "MANIFEST_INVALID");
    let v1 = serde_json::to_vec(&json!({"schemaVersion": 1, "name": "x"})).unwrap();
    reg.put_manifest("app", "x", OCI_MANIFEST, &v1).await.expect_error(400, "MANIFEST_INVALID");
    reg.put_manifest("app", "x", OCI_INDEX, &bytes).await.expect_error(400, "MANIFEST_INVALID");
    // PUT by a digest that is not the body's.
    let wrong = sha256(b"other");
    reg.put_manifest("app", &wrong, OCI_MANIFEST, &bytes).await.expect_error(400, "DIGEST_INVALID");
    // Invalid tags.
    reg.put_manifest("app", "-bad", OCI_MANIFEST, &bytes).await.expect_error(400, "MANIFEST_INVALID");
    let long = "t".repeat(129);
    reg.put_manifest("app", &long, OCI_MANIFEST, &bytes).await.expect_error(400, "MANIFEST_INVALID");
    reg.get_manifest("app", "x").await.expect_error(404, "MANIFEST_UNKNOWN");
    let tags = send(reg.v2(Method::GET, "app", "tags/list")).await.json();
    assert_eq!(tags["tags"], json!(["v1"]));
}

#[tokio::test]
async fn oversized_manifest_and_header() {
    let s = TestServer::start().await;
    let reg = s.registry("bigmani").await;
    let mut big =
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{"x":""#.to_vec();
    big.extend(std::iter::repeat_n(b'a', 4 * 1024 * 1024 + 10));
    big.extend_from_slice(br#""}}"#);
    let r = reg.put_manifest("app", "big", OCI_MANIFEST, &big).await;
    r.expect_error(413, "MANIFEST_INVALID");
    reg.get_manifest("app", "big").await.expect_error(404, "MANIFEST_UNKNOWN");

    // A 1 MiB header: refused by the HTTP layer with 431, and the server stays up.
    let (status, _, _) = raw_http(&s, "GET", "/v2/", &[("x-huge", "h".repeat(1024 * 1024))], b"");
    assert_eq!(status, 431);
    assert_eq!(send(s.http(Method::GET, "/v2/")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn tags_list_and_catalog_paging() {
    let s = TestServer::start().await;
    let reg = s.registry("paging").await;
    let (bytes, _) = reg.push_image("app", "t1", "paging").await;
    for t in ["t2", "t3", "t4", "t5"] {
        assert_eq!(reg.put_manifest("app", t, OCI_MANIFEST, &bytes).await.status, StatusCode::CREATED);
    }
    let r = send(reg.v2(Method::GET, "app", "tags/list")).await;
    assert_eq!(r.json(), json!({"name": "paging/app", "tags": ["t1", "t2", "t3", "t4", "t5"]}));
    assert!(r.header("link").is_none());

    // Follow the Link headers two at a time.
    let mut url = "/v2/paging/app/tags/list?n=2".to_string();
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let r = send(s.http(Method::GET, &url)).await;
        assert_eq!(r.status, StatusCode::OK);
        let tags = r.json()["tags"].as_array().unwrap().clone();
        assert!(tags.len() <= 2);
        seen.extend(tags.iter().map(|t| t.as_str().unwrap().to_string()));
        pages += 1;
        match r.header("link") {
            Some(l) => {
                assert!(l.ends_with("rel=\"next\""), "{l}");
                url = l[l.find('<').unwrap() + 1..l.find('>').unwrap()].to_string();
                assert!(url.starts_with("/v2/paging/app/tags/list?"), "{url}");
            }
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(seen, ["t1", "t2", "t3", "t4", "t5"]);
    let r = send(s.http(Method::GET, "/v2/paging/app/tags/list?n=2&last=t3")).await;
    assert_eq!(r.json()["tags"], json!(["t4", "t5"]));
    let r = send(s.http(Method::GET, "/v2/paging/app/tags/list?n=0")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["tags"], json!([]));
    let r = send(s.http(Method::GET, "/v2/paging/app/tags/list?n=abc")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    send(s.http(Method::GET, "/v2/paging/nothing/tags/list")).await.expect_error(404, "NAME_UNKNOWN");

    // Catalog: path style lists every registry's repositories with their prefix.
    let reg2 = s.registry("paging2").await;
    for repo in ["a", "b/c", "d"] {
        reg2.push_blob(repo, repo.as_bytes()).await;
        reg2.push_image(repo, "v1", repo).await;
    }
    let r = send(s.http(Method::GET, "/v2/_catalog")).await;
    assert_eq!(r.json(), json!({"repositories": ["paging/app", "paging2/a", "paging2/b/c", "paging2/d"]}));
    let mut url = "/v2/_catalog?n=3".to_string();
    let mut seen = Vec::new();
    loop {
        let r = send(s.http(Method::GET, &url)).await;
        seen.extend(r.json()["repositories"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()));
        match r.header("link") {
            Some(l) => url = l[l.find('<').unwrap() + 1..l.find('>').unwrap()].to_string(),
            None => break,
        }
        assert!(seen.len() < 10);
    }
    assert_eq!(seen, ["paging/app", "paging2/a", "paging2/b/c", "paging2/d"]);
    let r = send(s.http(Method::GET, "/v2/_catalog?n=0")).await;
    assert_eq!(r.json()["repositories"], json!([]));
    // Host style: one registry, without the prefix.
    let r = send(s.http_host("paging2", Method::GET, "/v2/_catalog?n=2")).await;
    assert_eq!(r.json()["repositories"], json!(["a", "b/c"]));
    assert!(
        r.header("link").is_some_and(|l| l.contains("last=b%2Fc") || l.contains("last=b/c")),
        "{:?}",
        r.header("link")
    );
}

/// An artifact manifest (empty config) that refers to `subject`.
fn referrer(subject: (&str, usize, &str), artifact_type: &str, layer: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256(b"{}"), "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": sha256(layer), "size": layer.len()}],
        "subject": {"mediaType": subject.2, "digest": subject.0, "size": subject.1},
        "annotations": {"org.example.kind": artifact_type},
    }))
    .unwrap()
}

#[tokio::test]
async fn referrers_with_filter_and_subject_header() {
    let s = TestServer::start().await;
    let reg = s.registry("refer").await;
    let (subject, sd) = reg.push_image("app", "v1", "refer").await;
    reg.push_blob("app", b"{}").await;
    reg.push_blob("app", b"signature").await;
    reg.push_blob("app", b"sbom").await;
    let sig = referrer((&sd, subject.len(), OCI_MANIFEST), "application/vnd.example.sig", b"signature");
    let sbom = referrer((&sd, subject.len(), OCI_MANIFEST), "application/vnd.example.sbom", b"sbom");
    for m in [&sig, &sbom] {
        let r = reg.put_manifest("app", &sha256(m), OCI_MANIFEST, m).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        assert_eq!(r.header("oci-subject"), Some(sd.as_str()));
    }
    let r = send(reg.v2(Method::GET, "app", &format!("referrers/{sd}"))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some(OCI_INDEX));
    assert!(r.header("oci-filters-applied").is_none());
    let v = r.json();
    assert_eq!(v["schemaVersion"], 2);
    assert_eq!(v["mediaType"], OCI_INDEX);
    let mut found: Vec<(String, String)> = v["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["digest"].as_str().unwrap().to_string(), m["artifactType"].as_str().unwrap().to_string()))
        .collect();
    found.sort();
    let mut want = vec![
        (sha256(&sig), "application/vnd.example.sig".to_string()),
        (sha256(&sbom), "application/vnd.example.sbom".to_string()),
    ];
    want.sort();
    assert_eq!(found, want);
    let entry = v["manifests"].as_array().unwrap().iter().find(|m| m["digest"] == sha256(&sig)).unwrap();
    assert_eq!(entry["size"], sig.len());
    assert_eq!(entry["mediaType"], OCI_MANIFEST);
    assert_eq!(entry["annotations"]["org.example.kind"], "application/vnd.example.sig");

    let r = send(reg.v2(Method::GET, "app", &format!("referrers/{sd}?artifactType=application/vnd.example.sig"))).await;
    assert_eq!(r.header("oci-filters-applied"), Some("artifactType"));
    let v = r.json();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(v["manifests"][0]["digest"], sha256(&sig));

    // A subject nobody refers to (or that does not exist): an empty index, not an error.
    let r = send(reg.v2(Method::GET, "app", &format!("referrers/{}", sha256(b"nothing")))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["manifests"], json!([]));
    send(reg.v2(Method::GET, "app", "referrers/sha256:zz")).await.expect_error(400, "DIGEST_INVALID");
    // Deleting a referrer removes it from the list.
    send(reg.v2(Method::DELETE, "app", &format!("manifests/{}", sha256(&sbom)))).await;
    let v = send(reg.v2(Method::GET, "app", &format!("referrers/{sd}"))).await.json();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn sha512_end_to_end() {
    let s = TestServer::start().await;
    let reg = s.registry("sha512").await;
    // Monolithic.
    let config = serde_json::to_vec(
        &json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}),
    )
    .unwrap();
    let dc = sha512(&config);
    let r = send(reg.v2(Method::POST, "app", &format!("blobs/uploads/?digest={dc}")).body(config.clone())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.header("docker-content-digest"), Some(dc.as_str()));
    assert_eq!(&reg.get_blob("app", &dc).await.body[..], &config[..]);

    // Chunked, with a sha512 digest only at the final PUT.
    let layer = blob_bytes(3000, 13);
    let dl = sha512(&layer);
    let loc = start_session(&reg, "app").await;
    let r = patch(&s, &loc, Some("0-999"), &layer[..1000]).await;
    let loc = r.header("location").unwrap().to_string();
    let r = patch(&s, &loc, Some("1000-2999"), &layer[1000..]).await;
    assert_eq!(r.header("range"), Some("0-2999"));
    let r = send(s.http(Method::PUT, &format!("{loc}?digest={dl}"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(&reg.get_blob("app", &dl).await.body[..], &layer[..]);
    // The session can also say its algorithm up front.
    let layer2 = blob_bytes(100, 14);
    let r = send(reg.v2(Method::POST, "app", "blobs/uploads/?digest-algorithm=sha512")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let loc = r.header("location").unwrap().to_string();
    let r = send(s.http(Method::PUT, &format!("{loc}?digest={}", sha512(&layer2))).body(layer2.clone())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());

    // A manifest PUT by its sha512 digest.
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": dc, "size": config.len()},
        "layers": [{"mediaType": OCI_LAYER_TAR, "digest": dl, "size": layer.len()}],
    }))
    .unwrap();
    let dm = sha512(&manifest);
    let r = reg.put_manifest("app", &dm, OCI_MANIFEST, &manifest).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.header("docker-content-digest"), Some(dm.as_str()));
    let r = reg.get_manifest("app", &dm).await;
    assert_eq!(&r.body[..], &manifest[..]);
    assert_eq!(r.header("docker-content-digest"), Some(dm.as_str()));

    // Mount of a sha512 blob.
    let r = send(reg.v2(Method::POST, "copy", &format!("blobs/uploads/?mount={dl}&from=sha512/app"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(&reg.get_blob("copy", &dl).await.body[..], &layer[..]);

    // Referrers of a sha512 subject.
    reg.push_blob("app", b"{}").await;
    reg.push_blob("app", b"sig512").await;
    let art = referrer((&dm, manifest.len(), OCI_MANIFEST), "application/vnd.example.sig", b"sig512");
    let r = reg.put_manifest("app", &sha256(&art), OCI_MANIFEST, &art).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.header("oci-subject"), Some(dm.as_str()));
    let v = send(reg.v2(Method::GET, "app", &format!("referrers/{dm}"))).await.json();
    assert_eq!(v["manifests"][0]["digest"], sha256(&art), "{v}");
}

#[tokio::test]
async fn malformed_digests_are_digest_invalid() {
    let s = TestServer::start().await;
    let reg = s.registry("digests").await;
    reg.push_image("app", "v1", "digests").await;
    let hex64 = "a".repeat(64);
    let bad = [
        "sha256:zz".to_string(),
        format!("md5:{}", "a".repeat(32)),
        format!("sha256:{}", hex64.to_uppercase()),
        format!("sha256:{}", &hex64[..63]),
        "sha256:".to_string(),
    ];
    for d in &bad {
        send(reg.v2(Method::GET, "app", &format!("blobs/{d}"))).await.expect_error(400, "DIGEST_INVALID");
        send(reg.v2(Method::DELETE, "app", &format!("blobs/{d}"))).await.expect_error(400, "DIGEST_INVALID");
        send(reg.v2(Method::POST, "app", &format!("blobs/uploads/?digest={d}")).body("x"))
            .await
            .expect_error(400, "DIGEST_INVALID");
        let loc = start_session(&reg, "app").await;
        send(s.http(Method::PUT, &format!("{loc}?digest={d}")).body("x")).await.expect_error(400, "DIGEST_INVALID");
        send(reg.v2(Method::GET, "app", &format!("referrers/{d}"))).await.expect_error(400, "DIGEST_INVALID");
    }
    // In a manifest reference, a malformed digest is DIGEST_INVALID too.
    send(reg.v2(Method::GET, "app", "manifests/sha256:zz")).await.expect_error(400, "DIGEST_INVALID");
    // Nothing was written: the repository holds what it held.
    let tags = send(reg.v2(Method::GET, "app", "tags/list")).await.json();
    assert_eq!(tags["tags"], json!(["v1"]));
}

#[tokio::test]
async fn name_grammar_and_path_traversal() {
    let s = TestServer::start().await;
    let reg = s.registry("names").await;
    reg.push_image("app", "v1", "names").await;
    let long = format!("names/{}", "a".repeat(256));
    let bad_names = [
        "names/App".to_string(),
        "names/app/../app".to_string(),
        "names/%2e%2e/names/app".to_string(),
        "names/app/%2e%2e".to_string(),
        "names/a%2F%2Fb".to_string(),
        "names/app/".to_string(),
        "names//app".to_string(),
        "names/-app".to_string(),
        "names/app%00".to_string(),
        "..%2fnames/app".to_string(),
        long,
    ];
    for name in &bad_names {
        for (method, rest) in [
            ("GET", "tags/list"),
            ("GET", "manifests/v1"),
            ("POST", "blobs/uploads/"),
            ("PUT", "manifests/v2"),
            ("GET", &*format!("blobs/{}", sha256(b"x"))),
        ] {
            let path = format!("/v2/{name}/{rest}");
            let body = if method == "PUT" { br#"{"schemaVersion":2}"#.to_vec() } else { Vec::new() };
            let (status, head, body) =
                raw_http(&s, method, &path, &[("content-type", OCI_MANIFEST.to_string())], &body);
            assert!(status == 400 || status == 404, "{method} {path} → {status}\n{head}");
            let v: Value =
                serde_json::from_slice(&body).unwrap_or_else(|_| panic!("{method} {path}: body not JSON: {head}"));
            let code = v["errors"][0]["code"].as_str().unwrap_or_default();
            if status == 400 {
                assert!(code == "NAME_INVALID" || code == "MANIFEST_INVALID", "{method} {path}: {v}");
            } else {
                assert!(
                    ["NAME_UNKNOWN", "NAME_INVALID", "UNSUPPORTED", "MANIFEST_UNKNOWN", "BLOB_UNKNOWN"].contains(&code),
                    "{method} {path}: {v}"
                );
            }
        }
    }
    // The invalid names did not create anything.
    let r = send(s.http(Method::GET, "/v2/_catalog")).await;
    assert_eq!(r.json()["repositories"], json!(["names/app"]));
    // An encoded separator inside a name is the nested name (the Azure SDKs send them so, as
    // ACR and distribution read them), never another route.
    let (_, digest) = reg.push_image("team/app", "v1", "names-nested").await;
    let (status, _, body) = raw_http(&s, "GET", "/v2/names/team%2Fapp/tags/list", &[], b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["tags"], json!(["v1"]));
    let (status, head, _) =
        raw_http(&s, "HEAD", "/v2/names%2Fteam%2Fapp/manifests/v1", &[("accept", OCI_MANIFEST.to_string())], b"");
    assert_eq!(status, 200, "{head}");
    assert!(head.to_ascii_lowercase().contains(&format!("docker-content-digest: {digest}")), "{head}");
    let (status, _, _) = raw_http(&s, "GET", "/v2/names/team%2Fmanifests%2Fv1", &[], b"");
    assert_eq!(status, 404, "encoded separators make no route");
    // Traversal out of /v2 does not reach the management API or the filesystem.
    for path in ["/v2/../subscriptions", "/v2/%2e%2e/subscriptions", "/v2/names/app/blobs/..%2f..%2f..%2fetc%2fpasswd"]
    {
        let (status, head, _) = raw_http(&s, "GET", path, &[], b"");
        assert!(status == 400 || status == 404, "{path} → {head}");
    }
}

#[tokio::test]
async fn host_style_and_path_style_see_the_same_content() {
    let s = TestServer::start().await;
    let reg = s.registry("styles").await;
    let (bytes, d) = reg.push_image("team/app", "v1", "styles").await;
    // Pushed path style, read host style.
    let r = send(s.http_host("styles", Method::GET, "/v2/team/app/manifests/v1").header("accept", OCI_MANIFEST)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body[..], &bytes[..]);
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
    let r = send(s.http_host("styles", Method::GET, "/v2/team/app/tags/list")).await;
    assert_eq!(r.json(), json!({"name": "team/app", "tags": ["v1"]}));
    let r = send(reg.v2(Method::GET, "team/app", "tags/list")).await;
    assert_eq!(r.json(), json!({"name": "styles/team/app", "tags": ["v1"]}));

    // Pushed host style, read path style; Locations name the repository as the client does.
    let data = b"host style blob".to_vec();
    let bd = sha256(&data);
    let r = send(s.http_host("styles", Method::POST, "/v2/other/blobs/uploads/")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let loc = r.header("location").unwrap().to_string();
    assert!(loc.starts_with("/v2/other/blobs/uploads/"), "{loc}");
    let r = send(s.http_host("styles", Method::PUT, &format!("{loc}?digest={bd}")).body(data.clone())).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.header("location"), Some(format!("/v2/other/blobs/{bd}").as_str()));
    assert_eq!(&reg.get_blob("other", &bd).await.body[..], &data[..]);
    // The session is bound to its registry, whichever style names it.
    let r = send(s.http_host("styles", Method::POST, "/v2/other/blobs/uploads/")).await;
    let id = r.header("location").unwrap().rsplit('/').next().unwrap().to_string();
    let r = send(s.http(Method::GET, &format!("/v2/styles/other/blobs/uploads/{id}"))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);

    // An unknown registry in either style.
    send(s.http_host("nosuch", Method::GET, "/v2/team/app/tags/list")).await.expect_error(404, "NAME_UNKNOWN");
    send(s.http(Method::GET, "/v2/nosuch/team/app/tags/list")).await.expect_error(404, "NAME_UNKNOWN");
    // Path style needs a registry and a repository.
    send(s.http(Method::GET, "/v2/styles/tags/list")).await.expect_error(400, "NAME_INVALID");
}

#[tokio::test]
async fn acr_api_shapes_and_attributes() {
    let s = TestServer::start().await;
    let reg = s.registry("acrapi").await;
    let (_, d) = reg.push_image("app", "v1", "acrapi").await;
    let login = s.login_server("acrapi");

    let v = send(s.http(Method::GET, "/acr/v1/_catalog")).await.json();
    assert_eq!(v, json!({"repositories": ["acrapi/app"]}));
    let v = send(s.http_host("acrapi", Method::GET, "/acr/v1/_catalog")).await.json();
    assert_eq!(v, json!({"repositories": ["app"]}));

    let v = send(s.http(Method::GET, "/acr/v1/acrapi/app")).await.json();
    assert_eq!(v["registry"], login);
    assert_eq!(v["imageName"], "acrapi/app");
    assert_eq!(v["tagCount"], 1);
    assert_eq!(v["manifestCount"], 1);
    for k in ["createdTime", "lastUpdateTime", "changeableAttributes"] {
        assert!(v.get(k).is_some(), "repository has no {k}: {v}");
    }

    let r = send(s.http(Method::GET, "/acr/v1/acrapi/app/_tags")).await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["registry"], login);
    assert_eq!(v["imageName"], "acrapi/app");
    let tag = &v["tags"][0];
    assert_eq!(tag["name"], "v1");
    assert_eq!(tag["digest"], d);
    for k in ["createdTime", "lastUpdateTime"] {
        assert!(tag[k].as_str().is_some_and(|t| t.contains('T')), "tag {k}: {tag}");
    }
    let attrs = &tag["changeableAttributes"];
    for k in ["deleteEnabled", "writeEnabled", "readEnabled", "listEnabled"] {
        assert_eq!(attrs[k], true, "tag attribute {k}: {tag}");
    }

    let v = send(s.http(Method::GET, "/acr/v1/acrapi/app/_manifests")).await.json();
    assert_eq!(v["registry"], login);
    let m = &v["manifests"][0];
    assert_eq!(m["digest"], d);
    assert!(m["imageSize"].as_u64().is_some_and(|n| n > 0), "{m}");
    assert_eq!(m["architecture"], "amd64");
    assert_eq!(m["os"], "linux");
    assert_eq!(m["tags"], json!(["v1"]));

    // PATCH changeableAttributes of a tag, a manifest and the repository.
    let r = send(s.http(Method::PATCH, "/acr/v1/acrapi/app/_tags/v1").json(&json!({"deleteEnabled": false}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["tag"]["changeableAttributes"]["deleteEnabled"], false);
    let v = send(s.http(Method::GET, "/acr/v1/acrapi/app/_tags/v1")).await.json();
    assert_eq!(v["tag"]["changeableAttributes"]["deleteEnabled"], false);
    assert_eq!(v["tag"]["changeableAttributes"]["writeEnabled"], true);
    let r = send(
        s.http(Method::PATCH, &format!("/acr/v1/acrapi/app/_manifests/{d}")).json(&json!({"writeEnabled": false})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["manifest"]["changeableAttributes"]["writeEnabled"], false);
    let r = send(s.http(Method::PATCH, "/acr/v1/acrapi/app").json(&json!({"listEnabled": false}))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["changeableAttributes"]["listEnabled"], false);
    // Bad attribute bodies.
    let r = send(s.http(Method::PATCH, "/acr/v1/acrapi/app/_tags/v1").json(&json!({"deleteEnabled": "no"}))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = send(s.http(Method::PATCH, "/acr/v1/acrapi/app/_tags/v1").json(&json!({"bogus": true}))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = send(s.http(Method::PATCH, "/acr/v1/acrapi/app/_tags/v1").body("nope")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Unlock again (deletes below must not depend on whether locks are enforced).
    for (path, body) in [
        ("/acr/v1/acrapi/app/_tags/v1".to_string(), json!({"deleteEnabled": true})),
        (format!("/acr/v1/acrapi/app/_manifests/{d}"), json!({"writeEnabled": true})),
        ("/acr/v1/acrapi/app".to_string(), json!({"listEnabled": true})),
    ] {
        let r = send(s.http(Method::PATCH, &path).json(&body)).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
    }

    // Unknown things.
    send(s.http(Method::GET, "/acr/v1/acrapi/nothing")).await.expect_error(404, "NAME_UNKNOWN");
    send(s.http(Method::GET, "/acr/v1/acrapi/app/_tags/nope")).await.expect_error(404, "MANIFEST_UNKNOWN");

    // Tag delete, then repository delete.
    let r = send(s.http(Method::DELETE, "/acr/v1/acrapi/app/_tags/v1")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let v = send(s.http(Method::GET, "/acr/v1/acrapi/app/_tags")).await.json();
    assert_eq!(v["tags"], json!([]));
    let r = send(s.http(Method::DELETE, "/acr/v1/acrapi/app")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.json()["manifestsDeleted"], json!([d]));
    send(s.http(Method::GET, "/acr/v1/acrapi/app")).await.expect_error(404, "NAME_UNKNOWN");
    reg.get_manifest("app", &d).await.expect_error(404, "MANIFEST_UNKNOWN");
    let v = send(s.http(Method::GET, "/v2/_catalog")).await.json();
    assert_eq!(v["repositories"], json!([]));
}

#[tokio::test]
async fn concurrent_pushes_of_the_same_tag() {
    let s = TestServer::start().await;
    let reg = s.registry("racetag").await;
    let images: Vec<TestImage> = (0..8).map(|i| TestImage::new(&format!("race{i}"), "amd64")).collect();
    let pushes = images.iter().map(|img| {
        let reg = &reg;
        async move {
            for (_, b) in img.blobs() {
                reg.push_blob("app", &b).await;
            }
            reg.put_manifest("app", "latest", OCI_MANIFEST, &img.manifest).await
        }
    });
    let results = futures::future::join_all(pushes).await;
    for (r, img) in results.iter().zip(&images) {
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        assert_eq!(r.header("docker-content-digest"), Some(img.digest.as_str()));
    }
    let r = reg.get_manifest("app", "latest").await;
    assert_eq!(r.status, StatusCode::OK);
    let tagged = r.header("docker-content-digest").unwrap().to_string();
    assert!(images.iter().any(|i| i.digest == tagged), "latest points at {tagged}, which nobody pushed");
    assert_eq!(sha256(&r.body), tagged, "the tag's bytes are a complete manifest");
    for img in &images {
        let r = reg.get_manifest("app", &img.digest).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(&r.body[..], &img.manifest[..]);
    }
    let tags = send(reg.v2(Method::GET, "app", "tags/list")).await.json();
    assert_eq!(tags["tags"], json!(["latest"]));
}

#[tokio::test]
async fn deleting_a_registry_removes_its_content() {
    let s = TestServer::start().await;
    let reg = s.registry("doomed").await;
    let (_, d) = reg.push_image("app", "v1", "doomed").await;
    let layer = TestImage::new("doomed", "amd64").layer;
    let (st, body) = s.mgmt(Method::DELETE, &s.registry_path(&reg.rg, "doomed"), None).await;
    assert!(st.is_success(), "{st} {body}");
    send(reg.v2(Method::GET, "app", "tags/list")).await.expect_error(404, "NAME_UNKNOWN");
    reg.get_manifest("app", &d).await.expect_error(404, "NAME_UNKNOWN");

    // Recreated with the same name, it is empty.
    let (st, body) = s.create_registry(&reg.rg, "doomed", "Basic").await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let v = send(s.http(Method::GET, "/v2/_catalog")).await.json();
    assert_eq!(v["repositories"], json!([]));
    send(reg.v2(Method::GET, "app", "tags/list")).await.expect_error(404, "NAME_UNKNOWN");
    reg.get_manifest("app", &d).await.expect_error(404, "MANIFEST_UNKNOWN");
    let r = send(reg.v2(Method::HEAD, "app", &format!("blobs/{}", sha256(&layer)))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn unsupported_methods_and_routes() {
    let s = TestServer::start().await;
    let reg = s.registry("routes").await;
    reg.push_image("app", "v1", "routes").await;
    let r = send(reg.v2(Method::POST, "app", "manifests/v1")).await;
    r.expect_error(405, "UNSUPPORTED");
    let r = send(s.http(Method::DELETE, "/v2/_catalog")).await;
    r.expect_error(405, "UNSUPPORTED");
    let r = send(s.http(Method::GET, "/v2/routes/app/nothing-here")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(!r.code().is_empty());
    let r = send(s.http(Method::GET, "/v2/routes/app/manifests/-bad")).await;
    r.expect_error(404, "MANIFEST_UNKNOWN");
}

#[tokio::test]
async fn requests_without_valid_credentials_are_refused() {
    let s = TestServer::start().await;
    let reg = s.registry("anonreg").await;
    reg.push_image("app", "v1", "anon").await;
    let (user, _) = s.creds().expect("the server bootstraps an administrator");
    for path in ["/v2/", "/v2/anonreg/app/tags/list", "/v2/anonreg/app/manifests/v1"] {
        // No credentials, and a wrong password.
        for rb in [
            s.client().get(format!("{}{path}", s.base())),
            s.client().get(format!("{}{path}", s.base())).basic_auth(&user, Some("wrong")),
        ] {
            let r = send(rb).await;
            r.expect_error(401, "UNAUTHORIZED");
            assert!(r.header("www-authenticate").is_some(), "{path}: 401 without a challenge");
        }
    }
    let r = send(s.client().get(format!("{}/subscriptions?api-version=2022-12-01", s.base()))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.json()["error"]["code"].as_str().is_some());
}
