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

    let s = TestServer::builder().data_dir(&data_dir).start().await;
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

    let s = TestServer::builder().data_dir(&data_dir).start().await;
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
    let s = TestServer::builder().data_dir(&data_dir).start().await;
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

    let s = TestServer::builder().data_dir(&data_dir).start().await;
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
    let s = TestServer::builder().data_dir(&data_dir).start().await;
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

    let s = TestServer::builder().data_dir(&data_dir).start().await;
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

// ---- a crash inside the final PUT (issue 10 item 7) ----

/// The storage's test-only hook (`wharf_storage::fs::TEST_COMMIT_PAUSE_ENV`): every blob commit
/// pauses this long right after its rename into the content store, before the metadata write,
/// so that a `kill -9` lands in that window every time.
const COMMIT_PAUSE_ENV: &str = "WHARF_TEST_PAUSE_AFTER_BLOB_COMMIT_MS";
const COMMIT_PAUSE_MS: &str = "3000";
/// How many kills must land between a final PUT's rename and its metadata write.
const HITS_WANTED: usize = 20;

fn blob_file(data_dir: &std::path::Path, digest: &str) -> std::path::PathBuf {
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    data_dir.join("blobs/blobs/sha256").join(&hex[..2]).join(hex)
}

/// Every file below `dir`, recursively.
fn files_below(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_below(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// One upload whose first `acked` bytes were acknowledged by a PATCH before the crash.
struct Tracked {
    loc: String,
    blob: Vec<u8>,
    digest: String,
    acked: usize,
    /// The kill landed after this session's rename (its blob file existed, no answer came).
    hit: bool,
    /// Its final PUT was answered 201 before the kill.
    acknowledged: bool,
}

#[derive(Debug, PartialEq)]
enum Outcome {
    /// The session resumes at its acknowledged size; the blob does not exist.
    Resumed,
    /// The blob is committed and visible; the session is gone.
    Committed,
}

/// Opens a session on `crashput/app` and PATCHes its first `acked` bytes (acknowledged).
async fn acked_session(s: &TestServer, seed: usize, len: usize, acked: usize) -> Tracked {
    let blob: Vec<u8> = (0..len).map(|i| ((i * 31 + seed * 7919 + i / 4093) % 251) as u8).collect();
    let digest = sha256(&blob);
    let r = send(s.http(Method::POST, "/v2/crashput/app/blobs/uploads/")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let loc = r.header("location").unwrap().to_string();
    let r = send(
        s.http(Method::PATCH, &loc)
            .header("content-range", format!("0-{}", acked - 1))
            .header("content-type", "application/octet-stream")
            .body(blob[..acked].to_vec()),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let loc = r.header("location").unwrap().to_string();
    Tracked { loc, blob, digest, acked, hit: false, acknowledged: false }
}

/// The request head of a final PUT of `t` carrying the rest of its bytes.
fn final_put_head(s: &TestServer, t: &Tracked) -> Vec<u8> {
    use base64::Engine as _;
    let (u, p) = s.creds().expect("credentials");
    format!(
        "PUT {}?digest={} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nContent-Range: {}-{}\r\n\
         Content-Type: application/octet-stream\r\nAuthorization: Basic {}\r\n\r\n",
        t.loc,
        t.digest,
        s.host(),
        t.blob.len() - t.acked,
        t.acked,
        t.blob.len() - 1,
        base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
    )
    .into_bytes()
}

/// Sends a final PUT of `t` with `sent` of its remaining bytes, in slices, from a thread of its
/// own, after `delay`; write errors (the server died) end it quietly. Returns the connection.
fn final_put(s: &TestServer, t: &Tracked, sent: usize, delay: Duration) -> std::thread::JoinHandle<Option<TcpStream>> {
    let host = s.host();
    let head = final_put_head(s, t);
    let body = t.blob[t.acked..t.acked + sent].to_vec();
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        let mut stream = TcpStream::connect(host).ok()?;
        stream.write_all(&head).ok()?;
        for piece in body.chunks(512 * 1024) {
            if stream.write_all(piece).is_err() {
                break;
            }
        }
        let _ = stream.flush();
        Some(stream)
    })
}

/// Whether a 2xx answer came back on `stream` (within a short wait once the server is dead).
fn answered_2xx(stream: Option<TcpStream>) -> bool {
    let Some(mut stream) = stream else { return false };
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 2")
}

/// Never half: either the session resumes at exactly its acknowledged size (and the blob does
/// not exist), or the blob is committed, visible and intact (and the session is gone).
async fn outcome(s: &TestServer, t: &Tracked) -> Outcome {
    let status = send(s.http(Method::GET, &t.loc)).await;
    let blob = send(s.http(Method::GET, &format!("/v2/crashput/app/blobs/{}", t.digest))).await;
    match (status.status, blob.status) {
        (StatusCode::NO_CONTENT, StatusCode::NOT_FOUND) => {
            assert_eq!(
                status.header("range"),
                Some(format!("0-{}", t.acked - 1).as_str()),
                "session {} resumes at its acknowledged size",
                t.loc
            );
            Outcome::Resumed
        }
        (StatusCode::NOT_FOUND, StatusCode::OK) => {
            status.expect_error(404, "BLOB_UPLOAD_UNKNOWN");
            assert_eq!(sha256(&blob.body), t.digest, "the committed blob is intact");
            Outcome::Committed
        }
        (st, b) => panic!("session {} is half there: status {st}, blob {b}: {}", t.loc, status.text()),
    }
}

/// `wharf admin fsck --json` on a stopped server's data directory: exit code and report.
fn fsck(data_dir: &std::path::Path, repair: bool) -> (i32, serde_json::Value) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_wharf"));
    cmd.args(["admin", "fsck", "--json", "--data-dir"]).arg(data_dir);
    if repair {
        cmd.arg("--repair");
    }
    let out = cmd.output().expect("run wharf admin fsck");
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "fsck output is not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

fn finding_kinds(report: &serde_json::Value) -> Vec<String> {
    report["findings"].as_array().unwrap().iter().map(|f| f["problem"]["kind"].as_str().unwrap().to_string()).collect()
}

/// `kill -9` between a final PUT's rename into the content store and its metadata write, again
/// and again: after each restart every acknowledged session either resumes at its acknowledged
/// size or its blob is committed and visible, never half; in the end nothing leaked (every blob
/// file is recorded, no session directory is left) and `wharf admin fsck` reports the directory
/// clean. Each round also kills two other final PUTs wherever they happen to be (one mid-body,
/// one started at a random moment), and every earlier outcome is checked again after each
/// restart.
#[tokio::test]
async fn kill_inside_the_final_put_never_loses_an_acknowledged_session() {
    let started = std::time::Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let pause = [(COMMIT_PAUSE_ENV, COMMIT_PAUSE_MS)];
    let (mut judged, mut last_round): (Vec<(Tracked, Outcome)>, Vec<Tracked>) = (Vec::new(), Vec::new());
    let (mut hits, mut rounds) = (0usize, 0usize);
    let mut seed = 0usize;
    while hits < HITS_WANTED {
        let s = TestServer::builder().data_dir(&data_dir).env(&pause).start().await;
        if rounds == 0 {
            drop(s.registry("crashput").await);
        }
        for t in last_round.drain(..) {
            let o = outcome(&s, &t).await;
            if t.hit || t.acknowledged {
                assert_eq!(o, Outcome::Committed, "a kill after the rename of {} must leave it committed", t.loc);
            }
            judged.push((t, o));
        }
        for (t, o) in &judged {
            assert_eq!(&outcome(&s, t).await, o, "{} changed across a restart", t.loc);
        }
        rounds += 1;
        // A: the final PUT the kill aims at. B: one still sending its body. C: one started at
        // a random moment around A's.
        let mut a = acked_session(&s, seed, 2 << 20, 1 << 20).await;
        let b = acked_session(&s, seed + 1, 3 << 20, 1 << 20).await;
        let mut c = acked_session(&s, seed + 2, 5 << 20, 512 << 10).await;
        seed += 3;
        let c_delay = Duration::from_millis(((rounds * 7919) % 300) as u64);
        let b_put = final_put(&s, &b, (b.blob.len() - b.acked) / 2, Duration::ZERO);
        let c_put = final_put(&s, &c, c.blob.len() - c.acked, c_delay);
        let a_put = final_put(&s, &a, a.blob.len() - a.acked, Duration::from_millis(50));
        let a_file = blob_file(&data_dir, &a.digest);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !a_file.exists() {
            assert!(std::time::Instant::now() < deadline, "the final PUT never committed; log:\n{}", s.log_text());
            std::thread::sleep(Duration::from_millis(2));
        }
        s.kill9();
        assert!(!answered_2xx(a_put.join().unwrap()), "the final PUT was answered although the kill came inside it");
        a.hit = true;
        hits += 1;
        assert!(!answered_2xx(b_put.join().unwrap()), "a PUT whose body never arrived was answered");
        c.acknowledged = answered_2xx(c_put.join().unwrap());
        last_round.extend([a, b, c]);
        drop(s);
    }

    // Offline, right after the last kill: fsck sees the interrupted commit and changes nothing.
    let (code, report) = fsck(&data_dir, false);
    assert_eq!(code, 1, "{report:#}");
    assert!(finding_kinds(&report).contains(&"upload-commit-interrupted".to_string()), "{report:#}");

    // A last start without the hook completes it; every session resumes or is committed.
    let s = TestServer::builder().data_dir(&data_dir).start().await;
    for t in last_round.drain(..) {
        let o = outcome(&s, &t).await;
        if t.hit || t.acknowledged {
            assert_eq!(o, Outcome::Committed, "{}", t.loc);
        }
        judged.push((t, o));
    }
    // Every resumed session completes from its acknowledged size.
    let mut resumed = 0;
    for (t, o) in &judged {
        if *o == Outcome::Resumed {
            resumed += 1;
            let r = send(
                s.http(Method::PUT, &format!("{}?digest={}", t.loc, t.digest))
                    .header("content-range", format!("{}-{}", t.acked, t.blob.len() - 1))
                    .header("content-type", "application/octet-stream")
                    .body(t.blob[t.acked..].to_vec()),
            )
            .await;
            assert_eq!(r.status, StatusCode::CREATED, "resuming {}: {}", t.loc, r.text());
        }
        assert_eq!(outcome(&s, t).await, Outcome::Committed);
    }
    assert!(resumed >= rounds, "every round left at least its mid-body PUT to resume ({resumed} of {rounds})");
    s.kill9();
    drop(s);

    // Nothing leaked: exactly one blob file per upload, no session left, and fsck is clean.
    let mut files: Vec<String> = files_below(&data_dir.join("blobs/blobs"))
        .iter()
        .map(|p| format!("sha256:{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    files.sort();
    let mut expected: Vec<String> = judged.iter().map(|(t, _)| t.digest.clone()).collect();
    expected.sort();
    assert_eq!(files, expected, "blob files are exactly the uploaded blobs");
    assert!(files_below(&data_dir.join("blobs/uploads")).is_empty(), "no upload session is left on disk");
    let (code, report) = fsck(&data_dir, false);
    assert_eq!((code, finding_kinds(&report)), (0, vec![]), "{report:#}");
    assert_eq!(report["counts"]["metadata"]["blobs"], serde_json::json!(expected.len()));
    eprintln!(
        "kill -9 inside the final PUT: {hits} hits in {rounds} rounds, {} sessions, {:.1} s",
        judged.len(),
        started.elapsed().as_secs_f64()
    );
}
