//! The build-source plane: the upload endpoint `listBuildSourceUploadUrl` points to, in the
//! shape of Azure Blob Storage's block blobs, which is what the real `az acr build` and
//! `az acr run` upload through (Put Blob up to 64 MiB; Put Block and Put Block List above).
//!
//! Path: `/wharf-sources/{registry key}/{upload id}/source.tar.gz?se={expiry}&sp=cw&sig=…`.
//! The permission of every endpoint is [`SourceEndpoint::permission`]: a shared access
//! signature for that one upload, for writing, unexpired — checked in [`authorize`], the
//! plane's one decision. The link is what `listBuildSourceUploadUrl` (which needs
//! `Microsoft.ContainerRegistry/registries/listBuildSourceUploadUrl/action`) hands out;
//! `sources::upload_link` signs it, this plane only checks.
//!
//! Must never: store more than the configured limit for one upload (a declared length over it
//! is refused before a byte is read), write outside the sources directory, or tell a caller
//! without a valid signature anything about an upload.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::Response;
use futures::StreamExt;
use sha2::Digest;
use tokio::io::AsyncWriteExt;

use crate::http::Query;
use crate::sources::{self, BLOB_NAME};
use crate::state::AppState;

pub use crate::sources::PREFIX;

/// What a request does to an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// Put Blob: the whole source in one request.
    Blob,
    /// Put Block: one staged block, by its (opaque) id.
    Block(String),
    /// Put Block List: the staged blocks, in order, become the source.
    BlockList,
}

/// A request to the source plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceEndpoint {
    pub registry: String,
    pub upload: String,
    pub operation: Operation,
}

/// What an endpoint needs: a signature over this resource, for writing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub resource: String,
    pub write: bool,
}

impl SourceEndpoint {
    /// `None` for a path, method or operation this plane does not serve.
    pub fn parse(method: &Method, path: &str, query: &Query) -> Option<SourceEndpoint> {
        if *method != Method::PUT {
            return None;
        }
        let rest = path.strip_prefix(PREFIX)?;
        let [registry, upload, BLOB_NAME] = rest.split('/').collect::<Vec<_>>()[..] else { return None };
        if !sources::is_registry_key(registry) || !sources::is_upload_id(upload) {
            return None;
        }
        let operation = match query.get("comp") {
            None => Operation::Blob,
            Some("block") => Operation::Block(query.get("blockid").filter(|b| !b.is_empty())?.to_string()),
            Some("blocklist") => Operation::BlockList,
            Some(_) => return None,
        };
        Some(SourceEndpoint { registry: registry.to_string(), upload: upload.to_string(), operation })
    }

    /// The plane's permission table (one row: every operation writes one upload).
    pub fn permission(&self) -> Permission {
        Permission { resource: sources::resource(&self.registry, &self.upload), write: true }
    }
}

/// Why a request is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    Missing,
    Expired,
    Mismatch,
}

/// The plane's one decision: does the query carry a valid, unexpired create-and-write signature
/// for the permission's resource.
pub fn authorize(state: &AppState, permission: &Permission, query: &Query, now: i64) -> Result<(), Refusal> {
    let (Some(sig), Some(se)) = (query.get("sig"), query.get("se").and_then(|s| s.parse::<i64>().ok())) else {
        return Err(Refusal::Missing);
    };
    if permission.write && query.get("sp") != Some("cw") {
        return Err(Refusal::Mismatch);
    }
    let want = sources::signature(state, &permission.resource, se);
    if !wharf_identity::secret::constant_time_eq(want.as_bytes(), sig.as_bytes()) {
        return Err(Refusal::Mismatch);
    }
    if se < now {
        return Err(Refusal::Expired);
    }
    Ok(())
}

fn blob_error(status: StatusCode, code: &'static str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert("x-ms-error-code", HeaderValue::from_static(code));
    r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    r
}

fn too_large(limit: u64) -> Response {
    blob_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestBodyTooLarge",
        &format!(
            "The build source is larger than this server's limit of {limit} bytes: leave large files out with a .dockerignore, or ask the operator to raise --max-build-source-size."
        ),
    )
}

fn busy(what: &str, e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "{what} failed");
    blob_error(StatusCode::SERVICE_UNAVAILABLE, "ServerBusy", &format!("{what} failed on the server; retry."))
}

fn created() -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::CREATED;
    let h = r.headers_mut();
    let etag = format!("\"0x{}\"", &uuid::Uuid::new_v4().simple().to_string()[..16].to_ascii_uppercase());
    h.insert(http::header::ETAG, HeaderValue::from_str(&etag).expect("ascii"));
    let modified = chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    h.insert(http::header::LAST_MODIFIED, HeaderValue::from_str(&modified).expect("ascii"));
    h.insert("x-ms-request-server-encrypted", HeaderValue::from_static("false"));
    h.insert(http::header::CONTENT_LENGTH, HeaderValue::from(0));
    r
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(http::header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

/// How a body went to a file.
enum Received {
    Done,
    TooLarge,
    Failed(String),
}

/// Streams `body` into a new file at `to`, at most `limit` bytes; the file is removed unless
/// the whole body fit.
async fn receive(body: Body, to: &std::path::Path, limit: u64) -> Received {
    if let Some(dir) = to.parent()
        && let Err(e) = tokio::fs::create_dir_all(dir).await
    {
        return Received::Failed(e.to_string());
    }
    let mut file = match tokio::fs::File::create(to).await {
        Ok(f) => f,
        Err(e) => return Received::Failed(e.to_string()),
    };
    let mut stream = body.into_data_stream();
    let mut n: u64 = 0;
    let outcome = loop {
        match stream.next().await {
            None => {
                break file
                    .sync_all()
                    .await
                    .map(|()| Received::Done)
                    .unwrap_or_else(|e| Received::Failed(e.to_string()));
            }
            Some(Err(e)) => break Received::Failed(format!("the request body broke off: {e}")),
            Some(Ok(chunk)) => {
                n += chunk.len() as u64;
                if n > limit {
                    break Received::TooLarge;
                }
                if let Err(e) = file.write_all(&chunk).await {
                    break Received::Failed(e.to_string());
                }
            }
        }
    };
    if !matches!(outcome, Received::Done) {
        let _ = tokio::fs::remove_file(to).await;
    }
    outcome
}

/// The file a staged block is kept in (block ids are opaque: named by their hash).
fn block_file(state: &AppState, ep: &SourceEndpoint, id: &str) -> std::path::PathBuf {
    sources::blocks(state, &ep.registry, &ep.upload).join(hex::encode(sha2::Sha256::digest(id.as_bytes())))
}

/// Bytes already staged for an upload.
async fn staged_bytes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(mut entries) = tokio::fs::read_dir(dir).await {
        while let Ok(Some(e)) = entries.next_entry().await {
            total += e.metadata().await.map(|m| m.len()).unwrap_or(0);
        }
    }
    total
}

/// The block ids of a Put Block List body, in order (`Latest`, `Committed` and `Uncommitted`
/// all name staged blocks here: an upload is committed once).
pub fn block_list(xml: &str) -> Result<Vec<String>, String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut ids = vec![];
    // The text of the id element being read (quick-xml reports `&amp;` and the like apart).
    let mut open: Option<String> = None;
    let mut seen_root = false;
    loop {
        match reader.read_event().map_err(|e| format!("the block list is not XML: {e}"))? {
            Event::Start(e) => match e.name().as_ref() {
                b"BlockList" => seen_root = true,
                b"Latest" | b"Committed" | b"Uncommitted" if seen_root => open = Some(String::new()),
                other => return Err(format!("unexpected element <{}>", String::from_utf8_lossy(other))),
            },
            Event::Text(t) => {
                if let Some(text) = open.as_mut() {
                    text.push_str(&t.decode().map_err(|e| format!("the block list is not UTF-8: {e}"))?);
                }
            }
            Event::GeneralRef(r) => {
                if let Some(text) = open.as_mut() {
                    let name = r.decode().map_err(|e| format!("the block list is not UTF-8: {e}"))?;
                    let entity = format!("&{name};");
                    let resolved =
                        quick_xml::escape::unescape(&entity).map_err(|e| format!("bad escape in a block id: {e}"))?;
                    text.push_str(&resolved);
                }
            }
            Event::End(_) => {
                if let Some(text) = open.take() {
                    ids.push(text.trim().to_string());
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !seen_root {
        return Err("the body is not a <BlockList>".into());
    }
    Ok(ids)
}

pub async fn handle(state: Arc<AppState>, req: Request<Body>) -> Response {
    let query = Query::parse(req.uri().query());
    let Some(endpoint) = SourceEndpoint::parse(req.method(), req.uri().path(), &query) else {
        return blob_error(
            StatusCode::BAD_REQUEST,
            "InvalidUri",
            "This is not a build source's upload address, or the operation is not one an upload uses.",
        );
    };
    if let Err(why) = authorize(&state, &endpoint.permission(), &query, chrono::Utc::now().timestamp()) {
        tracing::warn!(registry = %endpoint.registry, upload = %endpoint.upload, reason = ?why, "build source upload refused");
        let message = match why {
            Refusal::Expired => "The upload link has expired: ask listBuildSourceUploadUrl for a new one.",
            _ => "Server failed to authenticate the request: the link's signature is missing or wrong.",
        };
        return blob_error(StatusCode::FORBIDDEN, "AuthenticationFailed", message);
    }
    let limit = state.config.tasks.max_source_size;
    let declared = declared_length(req.headers());
    let (registry, upload) = (endpoint.registry.as_str(), endpoint.upload.as_str());
    match &endpoint.operation {
        Operation::Blob => {
            if declared.is_some_and(|n| n > limit) {
                return too_large(limit);
            }
            let part = sources::part(&state, registry, upload);
            match receive(req.into_body(), &part, limit).await {
                Received::Done => {}
                Received::TooLarge => return too_large(limit),
                Received::Failed(e) => return busy("storing the build source", e),
            }
            if let Err(e) = tokio::fs::rename(&part, sources::committed(&state, registry, upload)).await {
                return busy("storing the build source", e);
            }
            created()
        }
        Operation::Block(id) => {
            let dir = sources::blocks(&state, registry, upload);
            let staged = staged_bytes(&dir).await;
            if declared.is_some_and(|n| staged + n > limit) {
                return too_large(limit);
            }
            let file = block_file(&state, &endpoint, id);
            let part = file.with_extension("part");
            match receive(req.into_body(), &part, limit.saturating_sub(staged)).await {
                Received::Done => {}
                Received::TooLarge => return too_large(limit),
                Received::Failed(e) => return busy("storing a block of the build source", e),
            }
            if let Err(e) = tokio::fs::rename(&part, &file).await {
                return busy("storing a block of the build source", e);
            }
            created()
        }
        Operation::BlockList => commit_blocks(&state, &endpoint, req.into_body(), limit).await,
    }
}

async fn commit_blocks(state: &AppState, ep: &SourceEndpoint, body: Body, limit: u64) -> Response {
    let xml = match axum::body::to_bytes(body, 4 << 20).await {
        Ok(b) => b,
        Err(_) => {
            return blob_error(
                StatusCode::BAD_REQUEST,
                "InvalidXmlDocument",
                "The block list is too long or broke off.",
            );
        }
    };
    let ids = match std::str::from_utf8(&xml).map_err(|e| e.to_string()).and_then(block_list) {
        Ok(ids) => ids,
        Err(e) => {
            return blob_error(
                StatusCode::BAD_REQUEST,
                "InvalidXmlDocument",
                &format!("The block list is invalid: {e}."),
            );
        }
    };
    let mut files = Vec::with_capacity(ids.len());
    let mut total = 0u64;
    for id in &ids {
        let f = block_file(state, ep, id);
        match tokio::fs::metadata(&f).await {
            Ok(m) => total += m.len(),
            Err(_) => {
                return blob_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidBlockList",
                    "The specified block list is invalid: it names a block that was not uploaded.",
                );
            }
        }
        files.push(f);
    }
    if total > limit {
        return too_large(limit);
    }
    let part = sources::part(state, &ep.registry, &ep.upload);
    let joined = async {
        let mut out = tokio::fs::File::create(&part).await?;
        for f in &files {
            let mut input = tokio::fs::File::open(f).await?;
            tokio::io::copy(&mut input, &mut out).await?;
        }
        out.sync_all().await?;
        tokio::fs::rename(&part, sources::committed(state, &ep.registry, &ep.upload)).await
    };
    if let Err(e) = joined.await {
        let _ = tokio::fs::remove_file(&part).await;
        return busy("joining the build source's blocks", e);
    }
    let _ = tokio::fs::remove_dir_all(sources::blocks(state, &ep.registry, &ep.upload)).await;
    created()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn paths_and_operations() {
        let path = format!("/wharf-sources/0f3a-b2/{ID}/source.tar.gz");
        let q = |s: &str| Query::parse(Some(s));
        let ep = SourceEndpoint::parse(&Method::PUT, &path, &q("se=1&sp=cw&sig=x")).unwrap();
        assert_eq!(ep.operation, Operation::Blob);
        assert_eq!(ep.permission(), Permission { resource: format!("0f3a-b2/{ID}"), write: true });
        let ep = SourceEndpoint::parse(&Method::PUT, &path, &q("comp=block&blockid=QUFB%3D%3D")).unwrap();
        assert_eq!(ep.operation, Operation::Block("QUFB==".into()));
        assert_eq!(
            SourceEndpoint::parse(&Method::PUT, &path, &q("comp=blocklist")).unwrap().operation,
            Operation::BlockList
        );
        assert_eq!(SourceEndpoint::parse(&Method::GET, &path, &q("")), None);
        assert_eq!(SourceEndpoint::parse(&Method::PUT, &path, &q("comp=metadata")), None);
        assert_eq!(SourceEndpoint::parse(&Method::PUT, &path, &q("comp=block")), None);
        for bad in [
            format!("/wharf-sources/a/{ID}"),
            format!("/wharf-sources/a/../{ID}/source.tar.gz"),
            "/wharf-sources/a/xyz/source.tar.gz".to_string(),
            format!("/wharf-sources/a/{ID}/other.tar.gz"),
        ] {
            assert_eq!(SourceEndpoint::parse(&Method::PUT, &bad, &q("")), None, "{bad}");
        }
    }

    #[test]
    fn block_lists() {
        let xml = "<?xml version='1.0' encoding='utf-8'?>\n<BlockList><Latest>QUE=</Latest><Uncommitted>QkI=</Uncommitted><Latest>a&amp;b</Latest></BlockList>";
        assert_eq!(block_list(xml).unwrap(), ["QUE=", "QkI=", "a&b"]);
        assert!(block_list("<Other><Latest>x</Latest></Other>").is_err());
        assert!(block_list("not xml at all").is_err());
        assert!(block_list("<BlockList><Latest>x</Latest>").is_ok_and(|ids| ids == ["x"]));
    }
}
