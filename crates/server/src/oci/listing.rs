//! Listings: `_catalog`, tag lists and the referrers API, with `n`/`last` paging and `Link`.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use wharf_oci::{Digest, media_type};
use wharf_storage::{Page, RegistryKey};

use super::manifests::referrer_descriptor;
use super::target::Style;
use super::{Ctx, DEFAULT_PAGE, next_link, page_params};
use crate::http::oci::{OciError, OciResult};
use crate::state::AppState;

fn json_response(body: serde_json::Value, link: Option<String>, content_type: &str) -> Response {
    let mut resp =
        (StatusCode::OK, [(header::CONTENT_TYPE, content_type.to_string())], body.to_string()).into_response();
    if let Some(l) = link {
        resp.headers_mut().insert(header::LINK, l.parse().expect("link is ascii"));
    }
    resp
}

/// Repository names of one registry after `last`, at most `n`, and whether more follow.
async fn registry_repositories(
    state: &AppState,
    key: &RegistryKey,
    last: Option<&str>,
    n: usize,
) -> OciResult<(Vec<String>, bool)> {
    let mut names = state
        .meta
        .repository_list(key, last, n + 1)
        .await
        .map_err(|e| OciError::from_storage("listing repositories", e))?;
    let more = names.len() > n;
    names.truncate(n);
    Ok((names, more))
}

/// Repositories visible through this request's style: one registry's in host style; in path
/// style, every registry's, prefixed with the registry name.
pub async fn repositories(ctx: &Ctx, last: Option<&str>, n: usize) -> OciResult<(Vec<String>, bool)> {
    match &ctx.style {
        Style::Host(info) => registry_repositories(&ctx.state, &info.key, last, n).await,
        Style::Path => {
            let filter = wharf_storage::ResourceFilter {
                resource_type: Some(wharf_arm::types::REGISTRY.to_string()),
                resource_group: None,
            };
            let mut regs = ctx
                .state
                .meta
                .resource_list(&filter)
                .await
                .map_err(|e| OciError::from_storage("listing registries", e))?;
            for r in &mut regs {
                r.name = r.name.to_ascii_lowercase();
            }
            regs.sort_by(|a, b| a.name.cmp(&b.name));
            let (last_reg, last_repo) = match last {
                Some(l) => match l.split_once('/') {
                    Some((r, p)) => (Some(r.to_string()), Some(p.to_string())),
                    None => (Some(l.to_string()), None),
                },
                None => (None, None),
            };
            let mut out = Vec::new();
            for r in regs {
                if last_reg.as_deref().is_some_and(|lr| r.name.as_str() < lr) {
                    continue;
                }
                // Inside the registry `last` points into, continue after its repository part.
                let after = if last_reg.as_deref() == Some(r.name.as_str()) { last_repo.clone() } else { None };
                // Only registries whose catalog this caller may list.
                let Ok(Some(info)) = ctx.state.registry(&r.name).await else { continue };
                if !ctx.access.may_list(&ctx.state, &info) {
                    continue;
                }
                // Nor registries whose network rules keep this client out (skipped, not
                // requested: no audit event for registries the client never named).
                let caller = crate::network::caller_of(&ctx.access.subject());
                if !crate::network::admits(info.guarded(), &ctx.origin, &caller) {
                    continue;
                }
                let want = n + 1 - out.len();
                let key = RegistryKey(r.key.clone());
                let (names, _) = registry_repositories(&ctx.state, &key, after.as_deref(), want).await?;
                out.extend(names.into_iter().map(|p| format!("{}/{p}", r.name)));
                if out.len() > n {
                    break;
                }
            }
            let more = out.len() > n;
            out.truncate(n);
            Ok((out, more))
        }
    }
}

pub async fn catalog(ctx: &Ctx) -> OciResult<Response> {
    let (last, n) = page_params(ctx, DEFAULT_PAGE)?;
    let (names, more) = repositories(ctx, last.as_deref(), n).await?;
    let link = match (more, names.last()) {
        (true, Some(l)) => Some(next_link("/v2/_catalog", n, l, &[])),
        _ => None,
    };
    Ok(json_response(json!({"repositories": names}), link, "application/json"))
}

pub async fn tags(ctx: &Ctx) -> OciResult<Response> {
    let t = ctx.target()?;
    let (last, n) = page_params(ctx, DEFAULT_PAGE)?;
    let meta = &ctx.state.meta;
    let repo = meta
        .repository_get(&t.registry.key, &t.repo)
        .await
        .map_err(|e| OciError::from_storage("reading a repository", e))?;
    if repo.is_none() {
        return Err(OciError::name_unknown(&t.client_name()));
    }
    let page = Page { last, n: Some(n + 1), ..Page::default() };
    let mut tags =
        meta.tag_list(&t.registry.key, &t.repo, &page).await.map_err(|e| OciError::from_storage("listing tags", e))?;
    let more = tags.len() > n;
    tags.truncate(n);
    // Tags locked with listEnabled: false are not listed (paging still counts them).
    let names: Vec<String> = tags.into_iter().filter(|t| t.attributes.list_enabled).map(|t| t.name).collect();
    let client = t.client_name();
    let link = match (more, names.last()) {
        (true, Some(l)) => Some(next_link(&format!("/v2/{client}/tags/list"), n, l, &[])),
        _ => None,
    };
    Ok(json_response(json!({"name": client, "tags": names}), link, "application/json"))
}

pub async fn referrers(ctx: &Ctx, subject: &Digest) -> OciResult<Response> {
    let t = ctx.target()?;
    let artifact_type = ctx.param("artifactType").filter(|s| !s.is_empty());
    let found = ctx
        .state
        .meta
        .referrers(&t.registry.key, &t.repo, subject, artifact_type)
        .await
        .map_err(|e| OciError::from_storage("listing referrers", e))?;
    let manifests: Vec<serde_json::Value> = found.iter().map(referrer_descriptor).collect();
    let body = json!({"schemaVersion": 2, "mediaType": media_type::OCI_INDEX, "manifests": manifests});
    let mut resp = json_response(body, None, media_type::OCI_INDEX);
    if artifact_type.is_some() {
        resp.headers_mut().insert("oci-filters-applied", "artifactType".parse().expect("static"));
    }
    Ok(resp)
}
