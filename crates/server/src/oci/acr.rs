//! ACR's data-plane API (`/acr/v1`): repository, tag and manifest attributes and listings, in
//! the JSON shapes of ACR's REST specification.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use wharf_oci::{Reference, Tag};
use wharf_storage::{ChangeableAttributes, ManifestMeta, Order, Page, TagRecord};

use super::target::Target;
use super::{BodyError, Ctx, DEFAULT_PAGE, next_link, page_params};
use crate::http::oci::{Code, OciError, OciResult};

fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn ok(body: Value, link: Option<String>) -> Response {
    let mut resp = (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response();
    if let Some(l) = link {
        resp.headers_mut().insert(header::LINK, l.parse().expect("link is ascii"));
    }
    resp
}

fn login_server(ctx: &Ctx, t: &Target) -> String {
    ctx.state.login_server(&t.registry.name)
}

fn order(ctx: &Ctx) -> OciResult<Order> {
    match ctx.param("orderby").map(str::to_ascii_lowercase).as_deref() {
        None | Some("") => Ok(Order::Name),
        Some("timedesc") | Some("time_desc") => Ok(Order::TimeDesc),
        Some("timeasc") | Some("time_asc") => Ok(Order::TimeAsc),
        Some(other) => {
            Err(OciError::new(Code::Unsupported, format!("unknown orderby '{other}': use timedesc or timeasc")))
        }
    }
}

fn tag_json(t: &TagRecord) -> Value {
    json!({
        "name": t.name,
        "digest": t.digest.to_string(),
        "createdTime": time(&t.created_at),
        "lastUpdateTime": time(&t.updated_at),
        "signed": false,
        "changeableAttributes": t.attributes,
    })
}

fn manifest_json(m: &ManifestMeta) -> Value {
    let mut v = json!({
        "digest": m.digest.to_string(),
        "imageSize": m.size,
        "createdTime": time(&m.created_at),
        "lastUpdateTime": time(&m.updated_at),
        "mediaType": m.media_type,
        "tags": m.tags,
        "changeableAttributes": m.attributes,
    });
    if let Some(a) = &m.architecture {
        v["architecture"] = json!(a);
    }
    if let Some(o) = &m.os {
        v["os"] = json!(o);
    }
    if let Some(at) = &m.artifact_type {
        v["artifactType"] = json!(at);
    }
    v
}

pub async fn catalog(ctx: &Ctx) -> OciResult<Response> {
    let (last, n) = page_params(ctx, DEFAULT_PAGE)?;
    let (names, more) = super::listing::repositories(ctx, last.as_deref(), n).await?;
    let link = match (more, names.last()) {
        (true, Some(l)) => Some(next_link("/acr/v1/_catalog", n, l, &[])),
        _ => None,
    };
    Ok(ok(json!({"repositories": names}), link))
}

async fn repository_json(ctx: &Ctx, t: &Target) -> OciResult<Value> {
    let repo = ctx
        .state
        .meta
        .repository_get(&t.registry.key, &t.repo)
        .await
        .map_err(|e| OciError::from_storage("reading a repository", e))?
        .ok_or_else(|| OciError::name_unknown(&t.client_name()))?;
    Ok(json!({
        "registry": login_server(ctx, t),
        "imageName": t.client_name(),
        "createdTime": time(&repo.created_at),
        "lastUpdateTime": time(&repo.updated_at),
        "manifestCount": repo.manifest_count,
        "tagCount": repo.tag_count,
        "changeableAttributes": repo.attributes,
    }))
}

pub async fn get_repository(ctx: &Ctx) -> OciResult<Response> {
    let t = ctx.target()?.clone();
    Ok(ok(repository_json(ctx, &t).await?, None))
}

/// Reads a PATCH body: a subset of the four changeable attributes, applied over `current`.
async fn attributes_patch(ctx: &mut Ctx, current: ChangeableAttributes) -> OciResult<ChangeableAttributes> {
    let bad = |m: String| OciError::new(Code::Unsupported, m);
    let body = match ctx.read_body(64 * 1024).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => return Err(bad("attribute update body is too large".into())),
        Err(BodyError::Failed(e)) => return Err(bad(format!("reading the body failed: {e}"))),
    };
    let v: Value = serde_json::from_slice(&body).map_err(|e| bad(format!("body is not JSON: {e}")))?;
    let obj = v.as_object().ok_or_else(|| bad("body must be a JSON object".into()))?;
    let mut out = current;
    for (k, val) in obj {
        let b = val.as_bool().ok_or_else(|| bad(format!("'{k}' must be true or false")))?;
        match k.as_str() {
            "deleteEnabled" => out.delete_enabled = b,
            "writeEnabled" => out.write_enabled = b,
            "readEnabled" => out.read_enabled = b,
            "listEnabled" => out.list_enabled = b,
            other => return Err(bad(format!("unknown attribute '{other}'"))),
        }
    }
    Ok(out)
}

pub async fn patch_repository(ctx: &mut Ctx) -> OciResult<Response> {
    let t = ctx.target()?.clone();
    let current = repository_json(ctx, &t).await?;
    let attrs: ChangeableAttributes = serde_json::from_value(current["changeableAttributes"].clone())
        .map_err(|e| OciError::internal("reading attributes", e))?;
    let new = attributes_patch(ctx, attrs).await?;
    ctx.state
        .meta
        .repository_set_attributes(&t.registry.key, &t.repo, &new)
        .await
        .map_err(|e| OciError::from_storage("updating a repository", e))?;
    Ok(ok(repository_json(ctx, &t).await?, None))
}

pub async fn delete_repository(ctx: &Ctx) -> OciResult<Response> {
    let t = ctx.target()?.clone();
    let manifests = super::locks::whole_repository(ctx, &t).await?;
    let meta = &ctx.state.meta;
    let deleted = meta
        .repository_delete(&t.registry.key, &t.repo)
        .await
        .map_err(|e| OciError::from_storage("deleting a repository", e))?;
    if !deleted {
        return Err(OciError::name_unknown(&t.client_name()));
    }
    let tags: Vec<&String> = manifests.iter().flat_map(|m| m.tags.iter()).collect();
    let digests: Vec<String> = manifests.iter().map(|m| m.digest.to_string()).collect();
    let body = json!({"manifestsDeleted": digests, "tagsDeleted": tags});
    Ok((StatusCode::ACCEPTED, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response())
}

pub async fn list_tags(ctx: &Ctx) -> OciResult<Response> {
    let t = ctx.target()?.clone();
    repository_json(ctx, &t).await?;
    let (last, n) = page_params(ctx, DEFAULT_PAGE)?;
    let digest = match ctx.param("digest") {
        Some(d) if !d.is_empty() => {
            Some(wharf_oci::Digest::parse(d).map_err(|e| OciError::digest_invalid(e.to_string()))?)
        }
        _ => None,
    };
    let order = order(ctx)?;
    let page = Page { last, n: Some(n + 1), order, digest };
    let mut tags = ctx
        .state
        .meta
        .tag_list(&t.registry.key, &t.repo, &page)
        .await
        .map_err(|e| OciError::from_storage("listing tags", e))?;
    let more = tags.len() > n;
    tags.truncate(n);
    let link = match (more, tags.last()) {
        (true, Some(l)) => {
            let ob = ctx.param("orderby").unwrap_or("");
            Some(next_link(&format!("/acr/v1/{}/_tags", t.client_name()), n, &l.name, &[("orderby", ob)]))
        }
        _ => None,
    };
    let body = json!({
        "registry": login_server(ctx, &t),
        "imageName": t.client_name(),
        "tags": tags.iter().map(tag_json).collect::<Vec<_>>(),
    });
    Ok(ok(body, link))
}

async fn tag_record(ctx: &Ctx, t: &Target, tag: &Tag) -> OciResult<TagRecord> {
    ctx.state
        .meta
        .tag_get(&t.registry.key, &t.repo, tag)
        .await
        .map_err(|e| OciError::from_storage("reading a tag", e))?
        .ok_or_else(|| OciError::manifest_unknown(tag))
}

pub async fn get_tag(ctx: &Ctx, tag: &Tag) -> OciResult<Response> {
    let t = ctx.target()?.clone();
    let rec = tag_record(ctx, &t, tag).await?;
    Ok(ok(json!({"registry": login_server(ctx, &t), "imageName": t.client_name(), "tag": tag_json(&rec)}), None))
}

pub async fn patch_tag(ctx: &mut Ctx, tag: &Tag) -> OciResult<Response> {
    let t = ctx.target()?.clone();
    let rec = tag_record(ctx, &t, tag).await?;
    let new = attributes_patch(ctx, rec.attributes).await?;
    ctx.state
        .meta
        .tag_set_attributes(&t.registry.key, &t.repo, tag, &new)
        .await
        .map_err(|e| OciError::from_storage("updating a tag", e))?;
    let rec = tag_record(ctx, &t, tag).await?;
    Ok(ok(json!({"registry": login_server(ctx, &t), "imageName": t.client_name(), "tag": tag_json(&rec)}), None))
}

pub async fn delete_tag(ctx: &Ctx, tag: &Tag) -> OciResult<Response> {
    let t = ctx.target()?.clone();
    super::locks::reference(ctx, &t, &Reference::Tag(tag.clone()), super::locks::Op::Delete).await?;
    let deleted = ctx
        .state
        .meta
        .tag_delete(&t.registry.key, &t.repo, tag)
        .await
        .map_err(|e| OciError::from_storage("deleting a tag", e))?;
    if !deleted {
        return Err(OciError::manifest_unknown(tag));
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

pub async fn list_manifests(ctx: &Ctx) -> OciResult<Response> {
    let t = ctx.target()?.clone();
    repository_json(ctx, &t).await?;
    let (last, n) = page_params(ctx, DEFAULT_PAGE)?;
    let page = Page { last, n: Some(n + 1), order: order(ctx)?, digest: None };
    let mut ms = ctx
        .state
        .meta
        .manifest_list(&t.registry.key, &t.repo, &page)
        .await
        .map_err(|e| OciError::from_storage("listing manifests", e))?;
    let more = ms.len() > n;
    ms.truncate(n);
    let link = match (more, ms.last()) {
        (true, Some(l)) => {
            let ob = ctx.param("orderby").unwrap_or("");
            Some(next_link(
                &format!("/acr/v1/{}/_manifests", t.client_name()),
                n,
                &l.digest.to_string(),
                &[("orderby", ob)],
            ))
        }
        _ => None,
    };
    let body = json!({
        "registry": login_server(ctx, &t),
        "imageName": t.client_name(),
        "manifests": ms.iter().map(manifest_json).collect::<Vec<_>>(),
    });
    Ok(ok(body, link))
}

async fn manifest_meta(ctx: &Ctx, t: &Target, reference: &Reference) -> OciResult<ManifestMeta> {
    ctx.state
        .meta
        .manifest_head(&t.registry.key, &t.repo, reference)
        .await
        .map_err(|e| OciError::from_storage("reading a manifest", e))?
        .ok_or_else(|| OciError::manifest_unknown(reference))
}

pub async fn get_manifest(ctx: &Ctx, reference: &Reference) -> OciResult<Response> {
    let t = ctx.target()?.clone();
    let m = manifest_meta(ctx, &t, reference).await?;
    Ok(ok(
        json!({"registry": login_server(ctx, &t), "imageName": t.client_name(), "manifest": manifest_json(&m)}),
        None,
    ))
}

pub async fn patch_manifest(ctx: &mut Ctx, reference: &Reference) -> OciResult<Response> {
    let t = ctx.target()?.clone();
    let m = manifest_meta(ctx, &t, reference).await?;
    let new = attributes_patch(ctx, m.attributes).await?;
    ctx.state
        .meta
        .manifest_set_attributes(&t.registry.key, &t.repo, &m.digest, &new)
        .await
        .map_err(|e| OciError::from_storage("updating a manifest", e))?;
    let m = manifest_meta(ctx, &t, &Reference::Digest(m.digest.clone())).await?;
    Ok(ok(
        json!({"registry": login_server(ctx, &t), "imageName": t.client_name(), "manifest": manifest_json(&m)}),
        None,
    ))
}

pub async fn delete_manifest(ctx: &Ctx, reference: &Reference) -> OciResult<Response> {
    let t = ctx.target()?.clone();
    super::locks::reference(ctx, &t, reference, super::locks::Op::Delete).await?;
    let m = manifest_meta(ctx, &t, reference).await?;
    ctx.state
        .meta
        .manifest_delete(&t.registry.key, &t.repo, &m.digest)
        .await
        .map_err(|e| OciError::from_storage("deleting a manifest", e))?;
    Ok(StatusCode::ACCEPTED.into_response())
}
