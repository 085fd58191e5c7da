//! Streaming a run's log from the blob URL that `listLogSasUrl` returns (`logLink`), the way
//! az's `_stream_logs` does (`acr/_stream_utils.py`). Owns the blob reads and how log bytes
//! become lines on the terminal; must never send the CLI's management token to the blob
//! endpoint (the SAS query string in the URL is the only credential) and must never decide
//! what a command does with the run's outcome beyond az's `raise_error_on_failure` mapping.
//!
//! The loop, as az runs it:
//!
//! 1. `HEAD <logLink>`: 404 means the log does not exist yet (nothing read, no metadata);
//!    200 gives the size (`Content-Length`) and the metadata (every `x-ms-meta-<k>` header).
//! 2. While `start < size`: `GET <logLink>` with `x-ms-range: bytes=<start>-<start+4095>`,
//!    which must answer 206 with `Content-Range`; `start` advances by the bytes received (the
//!    server may send fewer than asked for). Everything up to the last CRLF in the buffer is
//!    printed, one line per CRLF-terminated line, each ended with `\n`.
//! 3. HEAD again (size and metadata). Done when the metadata has a key `complete` (any case)
//!    and every byte is read; the remainder of the buffer is flushed.
//! 4. Otherwise, when nothing new arrived, wait and go round again. If no new bytes arrive for
//!    longer than the idle timeout (the task's `timeout`, a run's `--timeout`, 3600 s by
//!    default), stop with az's warning (not an error).
//!
//! The idle wait differs from az on purpose: az sleeps `base + uniform(1, 2)` seconds with a
//! base of 1 s doubling after every three idle rounds up to 15 s, so a short run's last lines
//! can show up to ~17 s late. Wharf's server is usually near, so [`StreamOptions::default`]
//! starts at 0.2 s and doubles after every idle round up to 2 s, without jitter, and starts
//! again at 0.2 s whenever bytes arrive. A HEAD every 2 s at most is cheap for the server, and
//! a run's output appears within 2 s of being written.

use std::io::Write;
use std::time::Duration;

use reqwest::StatusCode;

use crate::error::CliError;

/// Bytes asked for per ranged GET (az's `byte_size`).
pub const CHUNK: u64 = 4096;
/// The blob service version az's storage SDK sends; Wharf's blob endpoint ignores it.
const STORAGE_VERSION: &str = "2026-04-06";

/// How long to wait between polls and when to give up.
#[derive(Debug, Clone, Copy)]
pub struct StreamOptions {
    /// First idle wait, and the wait after any round that brought new bytes.
    pub initial_wait: Duration,
    /// Longest idle wait (the wait doubles after every idle round up to this).
    pub max_wait: Duration,
    /// Stop when no new bytes arrived for longer than this.
    pub idle_timeout: Duration,
}

impl StreamOptions {
    /// az's idle timeout in seconds, Wharf's (shorter) waits.
    pub fn with_timeout_secs(secs: u64) -> StreamOptions {
        StreamOptions { idle_timeout: Duration::from_secs(secs), ..StreamOptions::default() }
    }
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            initial_wait: Duration::from_millis(200),
            max_wait: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECS),
        }
    }
}

/// az's default log timeout (60 minutes).
pub const DEFAULT_TIMEOUT_SECS: u64 = 3600;

/// How the stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The blob's `Complete` metadata value (e.g. `successful`, `failed`).
    Complete(String),
    /// No new bytes for longer than the idle timeout (az's warning was printed).
    IdleTimeout,
}

impl Outcome {
    /// az's `raise_error_on_failure` (build, run, task run; not `task logs`): the `Complete`
    /// value, compared without case, decides the exit status.
    pub fn into_result(self) -> Result<(), CliError> {
        match self {
            Outcome::Complete(status) => match status.to_ascii_lowercase().as_str() {
                "failed" | "internalerror" => Err(CliError::Other("Run failed".into())),
                "timedout" => Err(CliError::Other("Run timed out".into())),
                "canceled" => Err(CliError::Other("Run was canceled".into())),
                _ => Ok(()),
            },
            Outcome::IdleTimeout => Ok(()),
        }
    }
}

/// What a HEAD or a ranged GET told about the blob.
struct Props {
    size: u64,
    /// `(key, value)` of every `x-ms-meta-*` header, the key without the prefix.
    metadata: Vec<(String, String)>,
}

fn complete(metadata: &[(String, String)]) -> Option<&str> {
    metadata.iter().find(|(k, _)| k.eq_ignore_ascii_case("complete")).map(|(_, v)| v.as_str())
}

fn metadata(headers: &reqwest::header::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(k, v)| {
            let key = k.as_str().strip_prefix("x-ms-meta-")?;
            Some((key.to_string(), v.to_str().ok()?.to_string()))
        })
        .collect()
}

/// A blob error as az's storage SDK reports it.
fn blob_error(status: StatusCode, headers: &reqwest::header::HeaderMap) -> CliError {
    let reason = status.canonical_reason().unwrap_or("Unknown");
    let mut text = format!("Operation returned an invalid status '{reason}'");
    if let Some(code) = headers.get("x-ms-error-code").and_then(|v| v.to_str().ok()) {
        text.push_str(&format!("\nErrorCode:{code}"));
    }
    CliError::Other(text)
}

fn blob_request_error(e: reqwest::Error) -> CliError {
    CliError::Other(format!("cannot read the run's log from the blob endpoint: {e}"))
}

/// `HEAD`: `None` when the blob does not exist yet (404).
async fn head(http: &reqwest::Client, url: &str) -> Result<Option<Props>, CliError> {
    let resp = http
        .head(url)
        .header("x-ms-version", STORAGE_VERSION)
        .header("Accept", "application/xml")
        .send()
        .await
        .map_err(blob_request_error)?;
    if resp.status() == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !resp.status().is_success() {
        return Err(blob_error(resp.status(), resp.headers()));
    }
    let size = resp
        .headers()
        .get(reqwest::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok(Some(Props { size, metadata: metadata(resp.headers()) }))
}

/// `bytes <a>-<b>/<total>` → total.
fn content_range_total(v: &str) -> Option<u64> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    a.trim().parse::<u64>().ok()?;
    b.trim().parse::<u64>().ok()?;
    total.trim().parse().ok()
}

/// A ranged GET from `start`: the bytes and what the answer said about the blob (`None` for a
/// 404, which az ignores).
async fn read_range(http: &reqwest::Client, url: &str, start: u64) -> Result<Option<(Vec<u8>, Props)>, CliError> {
    let resp = http
        .get(url)
        .header("x-ms-version", STORAGE_VERSION)
        .header("Accept", "application/xml")
        .header("x-ms-range", format!("bytes={start}-{}", start + CHUNK - 1))
        .send()
        .await
        .map_err(blob_request_error)?;
    if resp.status() == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if resp.status() != StatusCode::PARTIAL_CONTENT {
        return Err(blob_error(resp.status(), resp.headers()));
    }
    let total = resp
        .headers()
        .get(reqwest::header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(content_range_total)
        .ok_or_else(|| CliError::Other("Required Content-Range response header is missing or malformed.".into()))?;
    let metadata = metadata(resp.headers());
    let bytes = resp.bytes().await.map_err(blob_request_error)?.to_vec();
    Ok(Some((bytes, Props { size: total, metadata })))
}

/// Writes every complete (CRLF-terminated) line of `buf` to `out`, each ended with `\n`, and
/// keeps the rest in `buf`. az prints up to the last CRLF; a line ended by a bare LF stays as
/// it is inside that text.
fn print_lines<W: Write>(buf: &mut Vec<u8>, out: &mut W) -> Result<(), CliError> {
    let Some(last) = buf.windows(2).rposition(|w| w == b"\r\n") else {
        return Ok(());
    };
    let text = String::from_utf8_lossy(&buf[..last]).replace("\r\n", "\n");
    writeln!(out, "{text}").and_then(|_| out.flush()).map_err(|e| CliError::Other(format!("cannot write: {e}")))?;
    buf.drain(..last + 2);
    Ok(())
}

/// Prints what is left when the stream stops (az prints the buffer with a final newline).
fn flush_rest<W: Write>(buf: &mut Vec<u8>, out: &mut W) -> Result<(), CliError> {
    print_lines(buf, out)?;
    if !buf.is_empty() {
        let text = String::from_utf8_lossy(buf).replace("\r\n", "\n");
        writeln!(out, "{text}").and_then(|_| out.flush()).map_err(|e| CliError::Other(format!("cannot write: {e}")))?;
        buf.clear();
    }
    Ok(())
}

/// Streams the log at `url` to `out` until the blob says it is complete or the idle timeout
/// passes. `http` must not add an `Authorization` header.
pub async fn stream<W: Write>(
    http: &reqwest::Client,
    url: &str,
    opts: StreamOptions,
    out: &mut W,
) -> Result<Outcome, CliError> {
    let mut buf: Vec<u8> = Vec::new();
    let mut start: u64 = 0;
    let mut props = head(http, url).await?.unwrap_or(Props { size: 0, metadata: vec![] });
    let mut wait = opts.initial_wait;
    let mut idle = Duration::ZERO;
    // az's loop: read what is there, look at the blob again, stop after too long without new
    // bytes, wait when there is nothing new and the log is not complete.
    while complete(&props.metadata).is_none() || start < props.size {
        while start < props.size {
            let Some((bytes, got)) = read_range(http, url, start).await? else {
                break; // 404 on the GET (az ignores it): look at the blob again.
            };
            wait = opts.initial_wait;
            idle = Duration::ZERO;
            if bytes.is_empty() {
                // A 206 with no bytes: the blob is shorter than it said.
                props.size = start;
                break;
            }
            start += bytes.len() as u64;
            props.size = got.size;
            if !got.metadata.is_empty() {
                props.metadata = got.metadata;
            }
            buf.extend_from_slice(&bytes);
            print_lines(&mut buf, out)?;
        }
        if let Some(p) = head(http, url).await? {
            props = p;
        }
        if idle > opts.idle_timeout {
            flush_rest(&mut buf, out)?;
            crate::output::warning(&format!(
                "Failed to find any new logs in {} seconds. Client will stop polling for additional logs.",
                idle.as_secs()
            ));
            return Ok(Outcome::IdleTimeout);
        }
        if complete(&props.metadata).is_none() && start >= props.size {
            tokio::time::sleep(wait).await;
            idle += wait;
            wait = (wait * 2).min(opts.max_wait);
        }
    }
    flush_rest(&mut buf, out)?;
    Ok(Outcome::Complete(complete(&props.metadata).unwrap_or_default().to_string()))
}

/// The other shape `listLogSasUrl` may answer (`logArtifactLink`): one plain GET whose body
/// is printed line by line as it arrives. It carries no outcome, so it never fails the run.
pub async fn stream_artifact<W: Write>(http: &reqwest::Client, url: &str, out: &mut W) -> Result<(), CliError> {
    let mut resp = http.get(url).send().await.map_err(blob_request_error)?;
    if !resp.status().is_success() {
        return Err(blob_error(resp.status(), resp.headers()));
    }
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(blob_request_error)? {
        buf.extend_from_slice(&chunk);
        while let Some(i) = buf.iter().position(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(&buf[..i]).trim_end_matches('\r').to_string();
            writeln!(out, "{line}")
                .and_then(|_| out.flush())
                .map_err(|e| CliError::Other(format!("cannot write: {e}")))?;
            buf.drain(..=i);
        }
    }
    if !buf.is_empty() {
        writeln!(out, "{}", String::from_utf8_lossy(&buf))
            .map_err(|e| CliError::Other(format!("cannot write: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
