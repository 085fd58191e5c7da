//! The data plane: OCI Distribution v1.1 and ACR's `/acr/v1` API.
//!
//! Every request goes one way: **parse** (a typed [`Endpoint`], which names its operation) →
//! **resolve** (the registry and repository, once, carried in [`Ctx`]) → **gate** (network
//! rules, authentication, authorization: `access::admit`) → **route** (the endpoint's
//! handler). Handlers extract, call the stores, and format; the stores know nothing of HTTP.

pub mod access;
pub mod acr;
pub mod blobs;
pub mod endpoint;
pub mod listing;
pub mod locks;
pub mod manifests;
pub mod target;
pub mod uploads;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use wharf_storage::ByteStream;

pub use endpoint::Endpoint;
use target::{Addressed, Style, Target};

use crate::http::Query;
use crate::http::oci::{API_VERSION_HEADER, Code, OciError, OciResult};
use crate::state::AppState;

/// What a handler gets besides the endpoint.
pub struct Ctx {
    pub state: Arc<AppState>,
    pub style: Style,
    /// What the request addresses, resolved once.
    pub addressed: Addressed,
    pub headers: HeaderMap,
    pub query: Query,
    /// In a mutex only so that `&Ctx` is `Send` (a body is `Send` but not `Sync`).
    pub body: std::sync::Mutex<Body>,
    /// What the request's credential allows (already checked for the endpoint itself).
    pub access: access::Access,
    /// Where the request came from (for network rules of other registries, e.g. listings).
    pub origin: crate::network::Origin,
}

impl Ctx {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query.get(key)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The repository the endpoint acts on (every endpoint that names one was resolved to one).
    pub fn target(&self) -> OciResult<&Target> {
        self.addressed.repository().ok_or_else(|| OciError::internal("routing", "an endpoint without its repository"))
    }

    /// Takes the request body as a stream of bytes for the storage layer.
    pub fn take_body_stream(&mut self) -> ByteStream {
        let body = std::mem::take(&mut *self.body.lock().expect("body lock"));
        Box::pin(body.into_data_stream().map_err(std::io::Error::other))
    }

    /// Reads the whole body into memory, refusing more than `limit` bytes.
    pub async fn read_body(&mut self, limit: usize) -> Result<bytes::Bytes, BodyError> {
        let body = std::mem::take(&mut *self.body.lock().expect("body lock"));
        match axum::body::to_bytes(body, limit).await {
            Ok(b) => Ok(b),
            Err(e) => {
                let too_large = std::error::Error::source(&e)
                    .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                    || e.to_string().contains("length limit");
                if too_large { Err(BodyError::TooLarge) } else { Err(BodyError::Failed(e.to_string())) }
            }
        }
    }
}

pub enum BodyError {
    TooLarge,
    Failed(String),
}

/// Entry point for every request under `/v2` and `/acr/v1`.
pub async fn handle(state: Arc<AppState>, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let mut resp = match dispatch(state, parts, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    resp.headers_mut().insert(API_VERSION_HEADER, HeaderValue::from_static("registry/2.0"));
    resp
}

async fn dispatch(state: Arc<AppState>, parts: http::request::Parts, body: Body) -> OciResult<Response> {
    // Parse.
    let endpoint = Endpoint::parse(&parts.method, parts.uri.path())?;
    // Resolve.
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .map(str::to_string);
    let style = target::style(&state, host.as_deref()).await?;
    let addressed = target::resolve(&state, &style, endpoint.name()).await?;
    // Gate.
    let origin = crate::network::Origin::of(
        crate::network::TrustedProxies::of(&state.config),
        parts.extensions.get::<crate::listener::ConnInfo>(),
        &parts.headers,
    );
    let service = host.unwrap_or_default().to_ascii_lowercase();
    let admission = access::Admission {
        headers: &parts.headers,
        addressed: &addressed,
        operation: endpoint.operation(),
        origin: &origin,
        service: &service,
    };
    let access = access::admit(&state, &admission).await?;
    // Route.
    let mut ctx = Ctx {
        state,
        style,
        addressed,
        headers: parts.headers,
        query: Query::parse(parts.uri.query()),
        body: std::sync::Mutex::new(body),
        access,
        origin,
    };
    route(&mut ctx, endpoint).await
}

async fn route(ctx: &mut Ctx, endpoint: Endpoint) -> OciResult<Response> {
    use Endpoint::*;
    match endpoint {
        Ping => Ok((StatusCode::OK, [(http::header::CONTENT_TYPE, "application/json")], "{}").into_response()),
        Catalog => listing::catalog(ctx).await,
        HeadBlob { digest, .. } => blobs::get(ctx, &digest, true).await,
        GetBlob { digest, .. } => blobs::get(ctx, &digest, false).await,
        DeleteBlob { digest, .. } => blobs::delete(ctx, &digest).await,
        StartUpload { .. } => uploads::start(ctx).await,
        UploadStatus { id, .. } => uploads::status(ctx, &id).await,
        PatchUpload { id, .. } => uploads::patch(ctx, &id).await,
        PutUpload { id, .. } => uploads::put(ctx, &id).await,
        CancelUpload { id, .. } => uploads::cancel(ctx, &id).await,
        GetManifest { reference, .. } => manifests::get(ctx, &reference, false).await,
        HeadManifest { reference, .. } => manifests::get(ctx, &reference, true).await,
        PutManifest { reference, .. } => manifests::put(ctx, &reference).await,
        DeleteManifest { reference, .. } => manifests::delete(ctx, &reference).await,
        ListTags { .. } => listing::tags(ctx).await,
        ListReferrers { digest, .. } => listing::referrers(ctx, &digest).await,
        AcrCatalog => acr::catalog(ctx).await,
        AcrGetRepository { .. } => acr::get_repository(ctx).await,
        AcrPatchRepository { .. } => acr::patch_repository(ctx).await,
        AcrDeleteRepository { .. } => acr::delete_repository(ctx).await,
        AcrListTags { .. } => acr::list_tags(ctx).await,
        AcrGetTag { tag, .. } => acr::get_tag(ctx, &tag).await,
        AcrPatchTag { tag, .. } => acr::patch_tag(ctx, &tag).await,
        AcrDeleteTag { tag, .. } => acr::delete_tag(ctx, &tag).await,
        AcrListManifests { .. } => acr::list_manifests(ctx).await,
        AcrGetManifest { reference, .. } => acr::get_manifest(ctx, &reference).await,
        AcrPatchManifest { reference, .. } => acr::patch_manifest(ctx, &reference).await,
        AcrDeleteManifest { reference, .. } => acr::delete_manifest(ctx, &reference).await,
    }
}

/// Parses `n` and `last` for listings. `n` must be a non-negative integer.
pub fn page_params(ctx: &Ctx, default_n: usize) -> OciResult<(Option<String>, usize)> {
    let n = match ctx.param("n") {
        None | Some("") => default_n,
        Some(s) => {
            s.parse::<usize>().map_err(|_| OciError::new(Code::Unsupported, format!("invalid page size n={s}")))?
        }
    };
    let last = ctx.param("last").filter(|s| !s.is_empty()).map(str::to_string);
    Ok((last, n.min(MAX_PAGE)))
}

/// Upper bound of any page, whatever `n` asks.
pub const MAX_PAGE: usize = 10_000;
/// Page size when the client gives no `n`.
pub const DEFAULT_PAGE: usize = 1_000;

/// `Link: <path?n=N&last=X>; rel="next"` value.
pub fn next_link(path: &str, n: usize, last: &str, extra: &[(&str, &str)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("last", last);
    q.append_pair("n", &n.to_string());
    for (k, v) in extra {
        q.append_pair(k, v);
    }
    format!("<{path}?{}>; rel=\"next\"", q.finish())
}
