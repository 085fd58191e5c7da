//! The data plane: OCI Distribution v1.1 and ACR's `/acr/v1` API.
//!
//! `handle` parses the request into an [`Endpoint`], resolves its registry and repository, and
//! calls the handler for that endpoint. Handlers extract, call the stores, and format; the
//! stores know nothing of HTTP.

pub mod acr;
pub mod blobs;
pub mod endpoint;
pub mod error;
pub mod listing;
pub mod locks;
pub mod manifests;
pub mod target;
pub mod uploads;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use wharf_storage::ByteStream;

pub use endpoint::Endpoint;
use error::{OciError, OciResult};
use target::Style;

use crate::state::AppState;

pub const API_VERSION_HEADER: &str = "docker-distribution-api-version";

/// What a handler gets besides the endpoint.
pub struct Ctx {
    pub state: Arc<AppState>,
    pub style: Style,
    pub headers: HeaderMap,
    pub query: HashMap<String, String>,
    /// In a mutex only so that `&Ctx` is `Send` (a body is `Send` but not `Sync`).
    pub body: std::sync::Mutex<Body>,
    /// What the request's credential allows (already checked for the endpoint itself).
    pub access: crate::auth::registry::Access,
    /// Where the request came from (for network rules of other registries, e.g. listings).
    pub origin: crate::network::Origin,
}

impl Ctx {
    pub fn q(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
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

    pub async fn target(&self, name: &str) -> OciResult<target::Target> {
        target::resolve(&self.state, &self.style, name).await
    }
}

pub enum BodyError {
    TooLarge,
    Failed(String),
}

pub fn parse_query(raw: Option<&str>) -> HashMap<String, String> {
    raw.map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default()
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
    let endpoint = Endpoint::parse(&parts.method, parts.uri.path())?;
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .map(str::to_string);
    let style = target::style(&state, host.as_deref()).await?;
    let host = host.unwrap_or_default().to_ascii_lowercase();
    // Authenticate before anything else looks at the request.
    let (registry, repo, service, prefix) = match (endpoint.name(), &style) {
        (Some(name), _) => {
            let t = target::resolve(&state, &style, name).await?;
            (Some(t.registry), t.repo.to_string(), host.clone(), t.prefix)
        }
        (None, Style::Host(info)) => (Some(info.clone()), String::new(), host.clone(), String::new()),
        (None, Style::Path) => (None, String::new(), host.clone(), String::new()),
    };
    // Network rules first: a request the rules deny before the caller is known is re-judged
    // with the caller once its credential is checked (the trusted-services bypass needs it).
    let origin =
        crate::network::Origin::of(&state, parts.extensions.get::<crate::listener::ConnInfo>(), &parts.headers);
    let denied_before_auth = match &registry {
        Some(reg) => crate::network::judge(reg, &reg.network, &origin, None).is_err(),
        // A private endpoint serves its own registry only.
        None => origin.is_private_endpoint() && endpoint != Endpoint::Ping,
    };
    let environment = || match &registry {
        Some(reg) => crate::network::environment(&reg.network, &origin.arrival, Some(origin.client_ip)),
        None => wharf_authz::EnvironmentAttributes::default(),
    };
    let access = match crate::auth::registry::check(
        &state,
        &parts.headers,
        registry.as_ref(),
        &service,
        &endpoint,
        &repo,
        &prefix,
        environment,
    )
    .await
    {
        Ok(a) => a,
        Err(e) if denied_before_auth => {
            // A valid credential whose permissions fall short: if the network lets this caller
            // through (the trusted-services bypass), the refusal is authorization's, not the
            // network's.
            if let (Some(reg), Some(subject)) = (
                &registry,
                crate::auth::registry::authenticated_subject(&state, &parts.headers, registry.as_deref(), &service)
                    .await,
            ) {
                let caller = crate::network::caller_of(&subject);
                return match crate::network::judge(reg, &reg.network, &origin, Some(&caller)) {
                    Ok(()) => Err(e),
                    Err(resp) => Ok(resp),
                };
            }
            return Ok(crate::network::deny_unauthenticated(registry.as_deref(), &origin));
        }
        Err(e) => return Err(e),
    };
    if denied_before_auth {
        let caller = crate::network::caller_of(&access.subject());
        match &registry {
            Some(reg) => {
                if let Err(resp) = crate::network::judge(reg, &reg.network, &origin, Some(&caller)) {
                    return Ok(resp);
                }
            }
            None => return Ok(crate::network::deny_unauthenticated(None, &origin)),
        }
    }
    let mut ctx = Ctx {
        state,
        style,
        headers: parts.headers,
        query: parse_query(parts.uri.query()),
        body: std::sync::Mutex::new(body),
        access,
        origin,
    };
    use Endpoint::*;
    match endpoint {
        Ping => Ok((StatusCode::OK, [(http::header::CONTENT_TYPE, "application/json")], "{}").into_response()),
        Catalog => listing::catalog(&ctx).await,
        HeadBlob { name, digest } => blobs::get(&ctx, &name, &digest, true).await,
        GetBlob { name, digest } => blobs::get(&ctx, &name, &digest, false).await,
        DeleteBlob { name, digest } => blobs::delete(&ctx, &name, &digest).await,
        StartUpload { name } => uploads::start(&mut ctx, &name).await,
        UploadStatus { name, id } => uploads::status(&ctx, &name, &id).await,
        PatchUpload { name, id } => uploads::patch(&mut ctx, &name, &id).await,
        PutUpload { name, id } => uploads::put(&mut ctx, &name, &id).await,
        CancelUpload { name, id } => uploads::cancel(&ctx, &name, &id).await,
        GetManifest { name, reference } => manifests::get(&ctx, &name, &reference, false).await,
        HeadManifest { name, reference } => manifests::get(&ctx, &name, &reference, true).await,
        PutManifest { name, reference } => manifests::put(&mut ctx, &name, &reference).await,
        DeleteManifest { name, reference } => manifests::delete(&ctx, &name, &reference).await,
        ListTags { name } => listing::tags(&ctx, &name).await,
        ListReferrers { name, digest } => listing::referrers(&ctx, &name, &digest).await,
        AcrCatalog => acr::catalog(&ctx).await,
        AcrGetRepository { name } => acr::get_repository(&ctx, &name).await,
        AcrPatchRepository { name } => acr::patch_repository(&mut ctx, &name).await,
        AcrDeleteRepository { name } => acr::delete_repository(&ctx, &name).await,
        AcrListTags { name } => acr::list_tags(&ctx, &name).await,
        AcrGetTag { name, tag } => acr::get_tag(&ctx, &name, &tag).await,
        AcrPatchTag { name, tag } => acr::patch_tag(&mut ctx, &name, &tag).await,
        AcrDeleteTag { name, tag } => acr::delete_tag(&ctx, &name, &tag).await,
        AcrListManifests { name } => acr::list_manifests(&ctx, &name).await,
        AcrGetManifest { name, reference } => acr::get_manifest(&ctx, &name, &reference).await,
        AcrPatchManifest { name, reference } => acr::patch_manifest(&mut ctx, &name, &reference).await,
        AcrDeleteManifest { name, reference } => acr::delete_manifest(&ctx, &name, &reference).await,
    }
}

/// Parses `n` and `last` for listings. `n` must be a non-negative integer.
pub fn page_params(ctx: &Ctx, default_n: usize) -> OciResult<(Option<String>, usize)> {
    let n = match ctx.q("n") {
        None | Some("") => default_n,
        Some(s) => s.parse::<usize>().map_err(|_| {
            OciError::new(StatusCode::BAD_REQUEST, error::Code::Unsupported, format!("invalid page size n={s}"))
        })?,
    };
    let last = ctx.q("last").filter(|s| !s.is_empty()).map(str::to_string);
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
