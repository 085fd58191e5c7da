//! The run-log plane: each run's log served as a read-only blob in the shape Azure Blob Storage
//! serves one (what `az acr task logs` and `az acr build` read through the `logLink` that
//! `listLogSasUrl` hands out): `HEAD` gives its size and its `x-ms-meta-Complete` once the run is
//! over, `GET` with `x-ms-range` (or `Range`) gives bytes with `Content-Range`.
//!
//! Path: `/wharf-logs/{registry key}/{run id}/rawtext.log?se={expiry}&sp=r&sig={signature}` (three
//! or more segments, so the Azure SDK uses the URL exactly as given). The permission of every
//! endpoint is [`LogEndpoint::permission`]: a shared access signature for that one log, read
//! only, unexpired — checked in [`authorize`], the plane's one decision. There is no other
//! credential: a link is what `listLogSasUrl` (which needs
//! `Microsoft.ContainerRegistry/registries/runs/listLogSasUrl/action`) hands to its caller
//! (`runs::log_link` signs it; this plane only checks).
//!
//! Must never: serve a file outside the run-log directory, or tell a caller without a valid
//! signature whether a log exists.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::Response;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::http::Query;
use crate::state::AppState;

pub use crate::runs::LOG_PREFIX as PREFIX;
use crate::runs::{LOG_BLOB_NAME as BLOB_NAME, log_resource as resource, log_signature as signature};

/// A request for a run's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEndpoint {
    pub registry: String,
    pub run: String,
    /// `HEAD` (properties only) or `GET` (bytes).
    pub head: bool,
}

/// What an endpoint needs: a signature over this resource, for reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub resource: String,
    pub read: bool,
}

impl LogEndpoint {
    /// `None` for a path or method this plane does not serve.
    pub fn parse(method: &Method, path: &str) -> Option<LogEndpoint> {
        let rest = path.strip_prefix(PREFIX)?;
        let parts: Vec<&str> = rest.split('/').collect();
        let head = match *method {
            Method::HEAD => true,
            Method::GET => false,
            _ => return None,
        };
        let safe = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        match parts.as_slice() {
            [registry, run, BLOB_NAME] if safe(registry) && safe(run) => {
                Some(LogEndpoint { registry: registry.to_string(), run: run.to_ascii_lowercase(), head })
            }
            _ => None,
        }
    }

    /// The plane's permission table (one row: every log endpoint reads one log).
    pub fn permission(&self) -> Permission {
        Permission { resource: resource(&self.registry, &self.run), read: true }
    }
}

/// Why a request is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    Missing,
    Expired,
    Mismatch,
}

/// The plane's one decision: does the query carry a valid, unexpired read signature for the
/// permission's resource.
pub fn authorize(state: &AppState, permission: &Permission, query: &Query, now: i64) -> Result<(), Refusal> {
    let (Some(sig), Some(se)) = (query.get("sig"), query.get("se").and_then(|s| s.parse::<i64>().ok())) else {
        return Err(Refusal::Missing);
    };
    if permission.read && query.get("sp") != Some("r") {
        return Err(Refusal::Mismatch);
    }
    let want = signature(state, &permission.resource, se);
    if !wharf_identity::secret::constant_time_eq(want.as_bytes(), sig.as_bytes()) {
        return Err(Refusal::Mismatch);
    }
    if se < now {
        return Err(Refusal::Expired);
    }
    Ok(())
}

fn blob_error(status: StatusCode, code: &'static str, message: &str, head: bool) -> Response {
    let body = if head {
        Body::empty()
    } else {
        Body::from(format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
        ))
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut().insert("x-ms-error-code", HeaderValue::from_static(code));
    r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    r
}

/// `bytes=a-b` or `bytes=a-` from `x-ms-range` (preferred, as the Azure SDK sends) or `Range`.
fn range(headers: &HeaderMap) -> Option<(u64, Option<u64>)> {
    let v = headers.get("x-ms-range").or_else(|| headers.get(http::header::RANGE))?.to_str().ok()?;
    let (a, b) = v.trim().strip_prefix("bytes=")?.split_once('-')?;
    let start = a.trim().parse().ok()?;
    let end = if b.trim().is_empty() { None } else { Some(b.trim().parse().ok()?) };
    Some((start, end))
}

pub async fn handle(state: Arc<AppState>, req: Request<Body>) -> Response {
    let head = req.method() == Method::HEAD;
    let Some(endpoint) = LogEndpoint::parse(req.method(), req.uri().path()) else {
        return blob_error(StatusCode::BAD_REQUEST, "InvalidUri", "This is not a run log's address.", head);
    };
    let query = Query::parse(req.uri().query());
    if let Err(why) = authorize(&state, &endpoint.permission(), &query, chrono::Utc::now().timestamp()) {
        tracing::warn!(registry = %endpoint.registry, run = %endpoint.run, reason = ?why, "run log request refused");
        let message = match why {
            Refusal::Expired => "The link to this log has expired: ask listLogSasUrl for a new one.",
            _ => "Server failed to authenticate the request: the link's signature is missing or wrong.",
        };
        return blob_error(StatusCode::FORBIDDEN, "AuthenticationFailed", message, head);
    }
    let complete = match crate::runs::log_completion(&state, &endpoint.registry, &endpoint.run).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "reading a run for its log failed");
            return blob_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServerBusy",
                "The run could not be read; retry.",
                head,
            );
        }
    };
    let path = state.run_queue.log_path(&endpoint.registry, &endpoint.run);
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(_) => return blob_error(StatusCode::NOT_FOUND, "BlobNotFound", "The specified blob does not exist.", head),
    };
    let size = match file.metadata().await {
        Ok(m) => m.len(),
        Err(_) => return blob_error(StatusCode::NOT_FOUND, "BlobNotFound", "The specified blob does not exist.", head),
    };
    let mut headers = HeaderMap::new();
    headers.insert("x-ms-blob-type", HeaderValue::from_static("AppendBlob"));
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(http::header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(c) = complete.and_then(|c| HeaderValue::from_str(c).ok()) {
        headers.insert("x-ms-meta-Complete", c);
    }
    let (status, body, length) = if head {
        (StatusCode::OK, Body::empty(), size)
    } else {
        match range(req.headers()) {
            None => {
                let mut buf = Vec::with_capacity(size as usize);
                if file.read_to_end(&mut buf).await.is_err() {
                    return blob_error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "ServerBusy",
                        "The log could not be read.",
                        head,
                    );
                }
                let n = buf.len() as u64;
                (StatusCode::OK, Body::from(buf), n)
            }
            Some((start, _)) if start >= size => {
                headers.insert(
                    http::header::CONTENT_RANGE,
                    HeaderValue::from_str(&format!("bytes */{size}")).expect("ascii"),
                );
                return with_headers(
                    blob_error(
                        StatusCode::RANGE_NOT_SATISFIABLE,
                        "InvalidRange",
                        "The range specified is invalid for the current size of the resource.",
                        false,
                    ),
                    headers,
                );
            }
            Some((start, end)) => {
                let end = end.map_or(size - 1, |e| e.min(size - 1));
                let len = end - start + 1;
                let mut buf = vec![0u8; len as usize];
                let read = async {
                    file.seek(std::io::SeekFrom::Start(start)).await?;
                    file.read_exact(&mut buf).await
                };
                if read.await.is_err() {
                    return blob_error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "ServerBusy",
                        "The log could not be read.",
                        head,
                    );
                }
                headers.insert(
                    http::header::CONTENT_RANGE,
                    HeaderValue::from_str(&format!("bytes {start}-{end}/{size}")).expect("ascii"),
                );
                (StatusCode::PARTIAL_CONTENT, Body::from(buf), len)
            }
        }
    };
    headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(length));
    let mut r = Response::new(body);
    *r.status_mut() = status;
    with_headers(r, headers)
}

fn with_headers(mut r: Response, headers: HeaderMap) -> Response {
    r.headers_mut().extend(headers);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let ep = LogEndpoint::parse(&Method::GET, "/wharf-logs/0f3a-b2/CA12/rawtext.log").unwrap();
        assert_eq!(ep, LogEndpoint { registry: "0f3a-b2".into(), run: "ca12".into(), head: false });
        assert_eq!(ep.permission(), Permission { resource: "0f3a-b2/ca12".into(), read: true });
        for bad in [
            "/wharf-logs/a/b",
            "/wharf-logs/a/../rawtext.log",
            "/wharf-logs/a/b/other.log",
            "/wharf-logs/a%2F/b/rawtext.log",
        ] {
            assert_eq!(LogEndpoint::parse(&Method::GET, bad), None, "{bad}");
        }
        assert_eq!(LogEndpoint::parse(&Method::PUT, "/wharf-logs/a/b/rawtext.log"), None);
    }

    #[test]
    fn ranges() {
        let h = |k: &str, v: &str| {
            let mut m = HeaderMap::new();
            m.insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
            m
        };
        assert_eq!(range(&h("x-ms-range", "bytes=0-4095")), Some((0, Some(4095))));
        assert_eq!(range(&h("range", "bytes=10-")), Some((10, None)));
        assert_eq!(range(&h("range", "items=1-2")), None);
        assert_eq!(range(&HeaderMap::new()), None);
    }
}
