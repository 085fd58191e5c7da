//! Crash safety: `kill -9` of the server in the middle of a request loses only that
//! unacknowledged request. Everything acknowledged before survives a restart on the same data
//! directory, and nothing half-written becomes visible.
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * 7919) % 251) as u8).collect()
}

/// Sends a request head (with `Content-Length: total`) and `first` bytes of the body, then
/// leaves the connection open: the request is in flight and will never be acknowledged.
fn start_streaming(
    s: &TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    total: usize,
    first: &[u8],
) -> TcpStream {
    let mut stream = TcpStream::connect(s.host()).expect("connect");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {total}\r\n", s.host());
    if let Some((u, p)) = s.creds() {
        use base64::Engine as _;
        head.push_str(&format!(
            "Authorization: Basic {}\r\n",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        ));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    // In slices, slowly, so that the server is reading (and writing batches) when it dies.
    for piece in first.chunks(256 * 1024) {
        stream.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    stream.flush().unwrap();
    stream
}

/// No response must have come back for the in-flight request (it was not acknowledged).
fn assert_unanswered(mut stream: TcpStream) {
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf);
    assert!(
        !String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 2"),
        "the interrupted request was acknowledged: {}",
        String::from_utf8_lossy(&buf)
    );
}

#[tokio::test]
async fn kill_during_a_chunk_upload_keeps_the_acknowledged_part() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let blob = data(4 * 1024 * 1024 + 4321);
    let digest = sha256(&blob);
    let acked = 300 * 1024;

    let s = TestServer::start_on(&data_dir, None).await;
    let reg = s.registry("crashup").await;
    let r = send(reg.v2(Method::POST, "app", "blobs/uploads/")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let loc = r.header("location").unwrap().to_string();
    let r = send(
        s.http(Method::PATCH, &loc)
            .header("content-range", format!("0-{}", acked - 1))
            .header("content-type", "application/octet-stream")
            .body(blob[..acked].to_vec()),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert_eq!(r.header("range"), Some(format!("0-{}", acked - 1).as_str()));
    let loc = r.header("location").unwrap().to_string();

    // Second chunk: the rest of the blob, of which 2.5 MiB reach the server before it dies.
    let rest = &blob[acked..];
    let stream = start_streaming(
        &s,
        "PATCH",
        &loc,
        &[
            ("Content-Range", format!("{acked}-{}", blob.len() - 1)),
            ("Content-Type", "application/octet-stream".into()),
        ],
        rest.len(),
        &rest[..2 * 1024 * 1024 + 512 * 1024],
    );
    std::thread::sleep(Duration::from_millis(500));
    s.kill9();
    assert_unanswered(stream);
    drop(reg);
    drop(s);

    let s = TestServer::start_on(&data_dir, None).await;
    let r = send(s.http(Method::GET, &loc)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "the session survives the crash: {}", r.text());
    assert_eq!(
        r.header("range"),
        Some(format!("0-{}", acked - 1).as_str()),
        "after the crash the session holds exactly the acknowledged bytes"
    );
    // Resume from the acknowledged offset and finish.
    let r = send(
        s.http(Method::PATCH, &loc)
            .header("content-range", format!("{acked}-{}", blob.len() - 1))
            .header("content-type", "application/octet-stream")
            .body(rest.to_vec()),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let r = send(s.http(Method::PUT, &format!("{loc}?digest={digest}"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = send(s.http(Method::GET, &format!("/v2/crashup/app/blobs/{digest}"))).await;
    assert_eq!(sha256(&r.body), digest);
}

#[tokio::test]
async fn kill_during_a_monolithic_upload_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let blob = data(3 * 1024 * 1024);
    let digest = sha256(&blob);
    let s = TestServer::start_on(&data_dir, None).await;
    let reg = s.registry("crashmono").await;
    let kept = reg.push_blob("app", b"acknowledged before the crash").await;
    let stream = start_streaming(
        &s,
        "POST",
        &format!("/v2/crashmono/app/blobs/uploads/?digest={digest}"),
        &[("Content-Type", "application/octet-stream".into())],
        blob.len(),
        &blob[..2 * 1024 * 1024],
    );
    std::thread::sleep(Duration::from_millis(500));
    s.kill9();
    assert_unanswered(stream);
    drop(reg);
    drop(s);

    let s = TestServer::start_on(&data_dir, None).await;
    let r = send(s.http(Method::HEAD, &format!("/v2/crashmono/app/blobs/{digest}"))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "a half-received blob must not exist");
    let r = send(s.http(Method::GET, &format!("/v2/crashmono/app/blobs/{kept}"))).await;
    assert_eq!(&r.body[..], b"acknowledged before the crash");
    // The same push, retried, works.
    let r = send(s.http(Method::POST, &format!("/v2/crashmono/app/blobs/uploads/?digest={digest}")).body(blob.clone()))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
}

/// After a restart, `tag` is either absent or names a complete manifest whose bytes match its
/// digest.
async fn absent_or_complete(s: &TestServer, repo: &str, tag: &str, candidate: &[u8]) {
    let r = send(s.http(Method::GET, &format!("/v2/{repo}/manifests/{tag}")).header("accept", OCI_MANIFEST)).await;
    match r.status {
        StatusCode::NOT_FOUND => r.expect_error(404, "MANIFEST_UNKNOWN"),
        StatusCode::OK => {
            let d = r.header("docker-content-digest").unwrap().to_string();
            assert_eq!(sha256(&r.body), d, "tag {tag} names a broken manifest");
            assert_eq!(&r.body[..], candidate, "tag {tag} names something nobody pushed");
        }
        other => panic!("tag {tag}: unexpected {other}: {}", r.text()),
    }
}

#[tokio::test]
async fn kill_during_a_manifest_put_keeps_acknowledged_tags() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let s = TestServer::start_on(&data_dir, None).await;
    let reg = s.registry("crashman").await;
    let (stable, stable_digest) = reg.push_image("app", "stable", "crash-stable").await;

    // A large manifest (many annotations), pushed to a new tag and over the acknowledged one;
    // only part of its body arrives before the crash.
    let img = TestImage::new("crash-next", "arm64");
    for (_, b) in img.blobs() {
        reg.push_blob("app", &b).await;
    }
    let mut m: serde_json::Value = serde_json::from_slice(&img.manifest).unwrap();
    m["annotations"] = json!({"padding": "p".repeat(2 * 1024 * 1024)});
    let next = serde_json::to_vec(&m).unwrap();
    m["annotations"] = json!({"padding": "q".repeat(2 * 1024 * 1024)});
    let raced = serde_json::to_vec(&m).unwrap();
    let mut streams = Vec::new();
    for tag in ["next", "stable"] {
        streams.push(start_streaming(
            &s,
            "PUT",
            &format!("/v2/crashman/app/manifests/{tag}"),
            &[("Content-Type", OCI_MANIFEST.into())],
            next.len(),
            &next[..next.len() / 2],
        ));
    }
    // And one whose body is complete when the server dies: it may or may not have been stored.
    streams.push(start_streaming(
        &s,
        "PUT",
        "/v2/crashman/app/manifests/raced",
        &[("Content-Type", OCI_MANIFEST.into())],
        raced.len(),
        &raced,
    ));
    std::thread::sleep(Duration::from_millis(300));
    s.kill9();
    for st in streams.drain(..2) {
        assert_unanswered(st);
    }
    drop(reg);
    drop(s);

    let s = TestServer::start_on(&data_dir, None).await;
    let r = send(s.http(Method::GET, "/v2/crashman/app/manifests/stable").header("accept", OCI_MANIFEST)).await;
    assert_eq!(r.status, StatusCode::OK, "an acknowledged tag resolves after the crash");
    assert_eq!(&r.body[..], &stable[..]);
    assert_eq!(r.header("docker-content-digest"), Some(stable_digest.as_str()));
    let r = send(s.http(Method::GET, "/v2/crashman/app/manifests/next")).await;
    r.expect_error(404, "MANIFEST_UNKNOWN");
    let r = send(s.http(Method::GET, &format!("/v2/crashman/app/manifests/{}", sha256(&next)))).await;
    r.expect_error(404, "MANIFEST_UNKNOWN");
    absent_or_complete(&s, "crashman/app", "raced", &raced).await;

    // The registry keeps working: the interrupted push, retried, succeeds.
    let r = send(
        s.http(Method::PUT, "/v2/crashman/app/manifests/next").header("content-type", OCI_MANIFEST).body(next.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    absent_or_complete(&s, "crashman/app", "next", &next).await;
}
