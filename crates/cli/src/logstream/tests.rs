//! The log stream against a tiny blob endpoint in the test: a log that grows while the client
//! reads it, then gets its `Complete` metadata.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::*;

/// What the fake blob holds and what it was asked.
#[derive(Default)]
struct Blob {
    exists: bool,
    content: Vec<u8>,
    complete: Option<String>,
    /// Most bytes one GET answers with (0: as many as asked for).
    max_chunk: usize,
    /// 403 to every request.
    forbidden: bool,
    /// Leave `Content-Range` out of 206 answers.
    no_content_range: bool,
    /// `METHOD x-ms-range` of every request, in order.
    requests: Vec<String>,
    /// Requests that carried an `Authorization` header.
    authorized: usize,
}

type Shared = Arc<Mutex<Blob>>;

/// Serves `blob` over HTTP/1.1 (one request per connection) and returns its URL, which has the
/// `/<account>/<container>/<blob>?<sas>` shape az needs.
async fn serve(blob: Shared) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let blob = blob.clone();
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut chunk = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    req.extend_from_slice(&chunk[..n]);
                }
                let text = String::from_utf8_lossy(&req).to_string();
                let reply = answer(&blob, &text);
                let _ = sock.write_all(&reply).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    format!("http://{addr}/acct/logs/runs/ca1/rawtext.log?sv=2026-04-06&sig=test")
}

fn answer(blob: &Shared, request: &str) -> Vec<u8> {
    let mut b = blob.lock().unwrap();
    let mut lines = request.split("\r\n");
    let method = lines.next().unwrap_or_default().split(' ').next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let range = header("x-ms-range").unwrap_or_default();
    b.requests.push(format!("{method} {range}").trim().to_string());
    if header("authorization").is_some() {
        b.authorized += 1;
    }
    let meta = b.complete.as_ref().map(|c| format!("x-ms-meta-Complete: {c}\r\n")).unwrap_or_default();
    if b.forbidden {
        return b"HTTP/1.1 403 Forbidden\r\nx-ms-error-code: AuthenticationFailed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec();
    }
    if !b.exists {
        return b"HTTP/1.1 404 Not Found\r\nx-ms-error-code: BlobNotFound\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            .to_vec();
    }
    let len = b.content.len();
    match method.as_str() {
        "HEAD" => format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n{meta}Connection: close\r\n\r\n").into_bytes(),
        "GET" if range.is_empty() => {
            // A plain GET (the logArtifactLink shape): the whole log at once.
            let mut out = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n").into_bytes();
            out.extend_from_slice(&b.content);
            out
        }
        "GET" => {
            let (a, z) = range
                .strip_prefix("bytes=")
                .and_then(|r| r.split_once('-'))
                .map(|(a, z)| (a.parse::<usize>().unwrap(), z.parse::<usize>().unwrap()))
                .expect("az sends x-ms-range");
            if a >= len {
                return b"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec();
            }
            let mut end = (z + 1).min(len);
            if b.max_chunk > 0 {
                end = end.min(a + b.max_chunk);
            }
            let body = &b.content[a..end];
            let cr = if b.no_content_range {
                String::new()
            } else {
                format!("Content-Range: bytes {a}-{}/{len}\r\n", end - 1)
            };
            let mut out = format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\n{cr}{meta}Connection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            out.extend_from_slice(body);
            out
        }
        _ => b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
    }
}

/// A terminal that hands every write to the test as it happens.
struct Terminal(mpsc::UnboundedSender<String>);

impl Write for Terminal {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = self.0.send(String::from_utf8_lossy(buf).to_string());
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Waits until the terminal has shown `want` (more text may follow in the same write).
async fn shown(rx: &mut mpsc::UnboundedReceiver<String>, seen: &mut String, want: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !seen.contains(want) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(s)) => seen.push_str(&s),
            _ => panic!("{want:?} was not printed; printed so far: {seen:?}"),
        }
    }
}

fn fast() -> StreamOptions {
    StreamOptions {
        initial_wait: Duration::from_millis(20),
        max_wait: Duration::from_millis(50),
        idle_timeout: Duration::from_secs(10),
    }
}

fn http() -> reqwest::Client {
    // The builder the commands use.
    crate::client::http_builder().build().unwrap()
}

#[tokio::test]
async fn lines_are_printed_as_they_arrive_after_a_404_and_the_metadata_ends_the_stream() {
    let blob: Shared = Arc::default();
    let url = serve(blob.clone()).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move { stream(&http(), &url, fast(), &mut Terminal(tx)).await });

    // The log does not exist yet: the client keeps asking.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(blob.lock().unwrap().requests.iter().filter(|r| *r == "HEAD").count() >= 2);
    assert!(rx.try_recv().is_err(), "nothing to print before the log exists");

    let mut seen = String::new();
    {
        let mut b = blob.lock().unwrap();
        b.exists = true;
        b.content.extend_from_slice(b"2026/12/04 18:00:00 Downloading source code...\r\n");
    }
    shown(&mut rx, &mut seen, "2026/12/04 18:00:00 Downloading source code...\n").await;

    blob.lock().unwrap().content.extend_from_slice(b"step 1 done\r\nhalf a li");
    shown(&mut rx, &mut seen, "step 1 done\n").await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    while let Ok(s) = rx.try_recv() {
        seen.push_str(&s);
    }
    assert!(!seen.contains("half"), "an unterminated line waits for its CRLF: {seen:?}");

    {
        let mut b = blob.lock().unwrap();
        b.content.extend_from_slice(b"ne\r\nRun ID: ca1 was successful after 2s\r\n");
        b.complete = Some("successful".into());
    }
    let outcome = tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap().unwrap();
    while let Ok(s) = rx.try_recv() {
        seen.push_str(&s);
    }
    assert_eq!(outcome, Outcome::Complete("successful".into()));
    assert_eq!(
        seen,
        "2026/12/04 18:00:00 Downloading source code...\nstep 1 done\nhalf a line\nRun ID: ca1 was successful after 2s\n"
    );
    assert!(outcome.into_result().is_ok());
    let b = blob.lock().unwrap();
    assert_eq!(b.authorized, 0, "the SAS in the URL is the only credential");
    let gets: Vec<&String> = b.requests.iter().filter(|r| r.starts_with("GET")).collect();
    assert_eq!(gets[0], "GET bytes=0-4095");
    assert_eq!(gets[1], "GET bytes=48-4143", "the range starts after the bytes already read");
}

#[tokio::test]
async fn ranges_advance_by_the_bytes_received() {
    let blob: Shared = Arc::default();
    let mut content = Vec::new();
    for i in 0..500 {
        content.extend_from_slice(format!("line {i:04} of a long log\r\n").as_bytes());
    }
    let total = content.len();
    {
        let mut b = blob.lock().unwrap();
        b.exists = true;
        b.content = content.clone();
        b.complete = Some("successful".into());
        b.max_chunk = 1000;
    }
    let url = serve(blob.clone()).await;
    let mut out = Vec::new();
    let outcome = stream(&http(), &url, fast(), &mut out).await.unwrap();
    assert_eq!(outcome, Outcome::Complete("successful".into()));
    assert_eq!(String::from_utf8(out).unwrap(), String::from_utf8(content).unwrap().replace("\r\n", "\n"));
    let b = blob.lock().unwrap();
    let gets: Vec<String> = b.requests.iter().filter(|r| r.starts_with("GET")).cloned().collect();
    let want: Vec<String> =
        (0..total.div_ceil(1000)).map(|i| format!("GET bytes={}-{}", i * 1000, i * 1000 + 4095)).collect();
    assert_eq!(gets, want);
}

#[tokio::test]
async fn the_complete_metadata_decides_the_exit_status() {
    for (value, want) in [
        ("Failed", Some("Run failed")),
        ("internalerror", Some("Run failed")),
        ("TimedOut", Some("Run timed out")),
        ("canceled", Some("Run was canceled")),
        ("successful", None),
    ] {
        let blob: Shared = Arc::default();
        {
            let mut b = blob.lock().unwrap();
            b.exists = true;
            b.content = b"hello\r\n".to_vec();
            b.complete = Some(value.into());
        }
        let url = serve(blob).await;
        let mut out = Vec::new();
        let outcome = stream(&http(), &url, fast(), &mut out).await.unwrap();
        assert_eq!(out, b"hello\n");
        assert_eq!(outcome, Outcome::Complete(value.into()));
        match (outcome.into_result(), want) {
            (Ok(()), None) => {}
            (Err(e), Some(msg)) => {
                assert_eq!(e.to_string(), msg);
                assert_eq!(e.exit_code(), 1);
            }
            (got, want) => panic!("{value}: got {got:?}, want {want:?}"),
        }
    }
}

#[tokio::test]
async fn no_new_bytes_for_longer_than_the_timeout_stops_without_an_error() {
    let blob: Shared = Arc::default();
    {
        let mut b = blob.lock().unwrap();
        b.exists = true;
        b.content = b"started\r\nno newline yet".to_vec();
    }
    let url = serve(blob).await;
    let opts = StreamOptions { idle_timeout: Duration::from_millis(200), ..fast() };
    let mut out = Vec::new();
    let outcome = stream(&http(), &url, opts, &mut out).await.unwrap();
    assert_eq!(outcome, Outcome::IdleTimeout);
    assert_eq!(String::from_utf8(out).unwrap(), "started\nno newline yet\n", "the rest is flushed");
    assert!(outcome.into_result().is_ok());
}

#[tokio::test]
async fn blob_errors_are_reported_as_az_reports_them() {
    let blob: Shared = Arc::default();
    blob.lock().unwrap().forbidden = true;
    let url = serve(blob).await;
    let err = stream(&http(), &url, fast(), &mut Vec::new()).await.unwrap_err();
    assert_eq!(err.to_string(), "Operation returned an invalid status 'Forbidden'\nErrorCode:AuthenticationFailed");
    assert_eq!(err.exit_code(), 1);

    let blob: Shared = Arc::default();
    {
        let mut b = blob.lock().unwrap();
        b.exists = true;
        b.content = b"x\r\n".to_vec();
        b.no_content_range = true;
    }
    let url = serve(blob).await;
    let err = stream(&http(), &url, fast(), &mut Vec::new()).await.unwrap_err();
    assert_eq!(err.to_string(), "Required Content-Range response header is missing or malformed.");
}

#[test]
fn content_range_gives_the_total() {
    assert_eq!(content_range_total("bytes 0-4095/10000"), Some(10000));
    assert_eq!(content_range_total("bytes 4096-4100/4101"), Some(4101));
    assert_eq!(content_range_total("bytes */100"), None);
    assert_eq!(content_range_total("0-1/2"), None);
}

#[test]
fn lines_end_at_the_last_crlf() {
    let mut buf = b"a\r\nb\nc\r\nrest".to_vec();
    let mut out = Vec::new();
    print_lines(&mut buf, &mut out).unwrap();
    assert_eq!(out, b"a\nb\nc\n");
    assert_eq!(buf, b"rest");
    let mut buf = b"only LF\n".to_vec();
    let mut out = Vec::new();
    print_lines(&mut buf, &mut out).unwrap();
    assert!(out.is_empty(), "az waits for a CRLF");
}

#[tokio::test]
async fn an_artifact_link_is_printed_line_by_line() {
    let blob: Shared = Arc::default();
    {
        let mut b = blob.lock().unwrap();
        b.exists = true;
        b.content = b"one\r\ntwo\nthree".to_vec();
    }
    let url = serve(blob.clone()).await;
    let mut out = Vec::new();
    stream_artifact(&http(), &url, &mut out).await.unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), "one\ntwo\nthree\n");
    assert_eq!(blob.lock().unwrap().requests, vec!["GET"]);
}
