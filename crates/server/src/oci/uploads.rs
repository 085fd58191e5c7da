//! Blob uploads: monolithic (POST with `digest`), POST + PUT, chunked PATCH sessions with
//! `Content-Range`, status, cancel, and cross-repository mount.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use wharf_oci::{Digest, DigestAlgorithm};
use wharf_storage::{StorageError, UploadId, UploadRecord};

use super::Ctx;
use super::target::{self, Target};
use crate::http::oci::{Code, OciError, OciResult};

fn location(t: &Target, id: &UploadId) -> String {
    format!("/v2/{}/blobs/uploads/{id}", t.client_name())
}

fn range_value(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

/// 202 answer carrying the session's progress.
fn progress(t: &Target, id: &UploadId, size: u64, status: StatusCode) -> Response {
    (
        status,
        [
            (header::LOCATION, location(t, id)),
            (header::RANGE, range_value(size)),
            (header::CONTENT_LENGTH, "0".to_string()),
            (header::HeaderName::from_static("docker-upload-uuid"), id.to_string()),
        ],
    )
        .into_response()
}

fn created(t: &Target, digest: &Digest) -> Response {
    (
        StatusCode::CREATED,
        [
            (header::LOCATION, format!("/v2/{}/blobs/{digest}", t.client_name())),
            (header::CONTENT_LENGTH, "0".to_string()),
            (header::HeaderName::from_static("docker-content-digest"), digest.to_string()),
        ],
    )
        .into_response()
}

fn parse_digest_param(v: &str) -> OciResult<Digest> {
    Digest::parse(v).map_err(|e| OciError::digest_invalid(format!("invalid digest '{v}': {e}")))
}

pub async fn start(ctx: &mut Ctx) -> OciResult<Response> {
    let t = ctx.target()?.clone();
    super::locks::repository(ctx, &t, super::locks::Op::Write).await?;
    let mut algorithm = match ctx.param("digest-algorithm") {
        None => DigestAlgorithm::Sha256,
        Some(a) => a.parse().map_err(|e: wharf_oci::DigestError| OciError::digest_invalid(e.to_string()))?,
    };

    if let Some(mount) = ctx.param("mount").map(str::to_string) {
        let digest = parse_digest_param(&mount)?;
        algorithm = digest.algorithm();
        if let Some(from) = ctx.param("from").map(str::to_string)
            && try_mount(ctx, &t, &from, &digest).await?
        {
            return Ok(created(&t, &digest));
        }
        // Not visible where the client said: fall back to a fresh upload session (spec).
    } else if let Some(d) = ctx.param("digest").map(str::to_string) {
        let digest = parse_digest_param(&d)?;
        return monolithic(ctx, &t, &digest).await;
    }

    let id = UploadId::new();
    let now = chrono::Utc::now();
    let record = UploadRecord {
        id: id.clone(),
        registry: t.registry.key.clone(),
        repository: t.repo.to_string(),
        algorithm: algorithm.as_str().to_string(),
        created_at: now,
        principal: Some(ctx.access.subject().principal_id),
        last_activity: now,
    };
    let state = &ctx.state;
    state.blobs.upload_create(&id, algorithm).await.map_err(|e| OciError::from_storage("starting an upload", e))?;
    if let Err(e) = state.meta.upload_put(&record, &crate::uploads_sweep::limits(&state.config.uploads)).await {
        let _ = state.blobs.upload_abort(&id).await;
        return Err(OciError::from_storage("recording an upload session", e));
    }
    Ok(progress(&t, &id, 0, StatusCode::ACCEPTED))
}

/// Links `digest` into `t` if it is visible in `from` of the same registry.
async fn try_mount(ctx: &Ctx, t: &Target, from: &str, digest: &Digest) -> OciResult<bool> {
    let Ok(source) = target::resolve_repository(&ctx.state, &ctx.style, from).await else { return Ok(false) };
    // The mount source's operation in the permission table: the caller must be able to read it.
    let may_read = ctx.access.permits(&ctx.state, wharf_authz::DataPlaneOperation::MountSource, source.repo.as_str());
    if source.registry.key != t.registry.key || !may_read {
        return Ok(false);
    }
    let meta = &ctx.state.meta;
    let Some(size) = meta
        .blob_visible(&source.registry.key, &source.repo, digest)
        .await
        .map_err(|e| OciError::from_storage("checking a mount source", e))?
    else {
        return Ok(false);
    };
    let _gc = ctx.state.gc_lock.read().await;
    meta.blob_link(&t.registry.key, &t.repo, digest, size)
        .await
        .map_err(|e| OciError::from_storage("mounting a blob", e))?;
    Ok(true)
}

async fn monolithic(ctx: &mut Ctx, t: &Target, digest: &Digest) -> OciResult<Response> {
    let id = UploadId::new();
    let blobs = ctx.state.blobs.clone();
    blobs.upload_create(&id, digest.algorithm()).await.map_err(|e| OciError::from_storage("starting an upload", e))?;
    let body = ctx.take_body_stream();
    let size = match blobs.upload_finish(&id, 0, body, ctx.state.config.max_blob_size, digest).await {
        Ok(size) => size,
        Err(e) => {
            let _ = blobs.upload_abort(&id).await;
            return Err(OciError::from_storage("storing a blob", e));
        }
    };
    link_committed(ctx, t, digest, size).await?;
    release(ctx, &id).await;
    Ok(created(t, digest))
}

/// Records the committed blob and makes it visible in the repository: `blob_link` records the
/// blob too, in the same transaction (one commit, so one flush of the database's log).
async fn link_committed(ctx: &Ctx, t: &Target, digest: &Digest, size: u64) -> OciResult<()> {
    let meta = &ctx.state.meta;
    meta.blob_link(&t.registry.key, &t.repo, digest, size)
        .await
        .map_err(|e| OciError::from_storage("linking a blob", e))
}

/// Releases a committed session once its blob is recorded. Should that fail, the next start (or
/// the upload sweep) completes and releases it: the answer to the client stands.
async fn release(ctx: &Ctx, id: &UploadId) {
    if let Err(e) = ctx.state.blobs.upload_abort(id).await {
        tracing::warn!(upload = %id, error = %e, "could not release a completed upload session");
    }
}

/// Finds the session `id`, checks that it belongs to this repository, and notes the activity.
async fn session(ctx: &Ctx, t: &Target, id: &UploadId) -> OciResult<UploadRecord> {
    let record = ctx
        .state
        .meta
        .upload_get(id)
        .await
        .map_err(|e| OciError::from_storage("looking up an upload", e))?
        .ok_or_else(OciError::upload_unknown)?;
    if record.registry != t.registry.key || record.repository != t.repo.as_str() {
        return Err(OciError::upload_unknown());
    }
    crate::uploads_sweep::note_activity(&ctx.state, &record).await;
    Ok(record)
}

/// `Content-Range: <start>-<end>` (optionally `bytes ` prefixed and `/total` suffixed).
fn parse_content_range(v: &str) -> Option<(u64, u64)> {
    let v = v.trim();
    let v = v.strip_prefix("bytes ").unwrap_or(v);
    let v = v.split('/').next()?;
    let (a, b) = v.split_once('-')?;
    let (a, b) = (a.trim().parse::<u64>().ok()?, b.trim().parse::<u64>().ok()?);
    (b >= a).then_some((a, b))
}

fn range_invalid(t: &Target, id: &UploadId, current: u64, message: String) -> OciError {
    OciError::new(Code::BlobUploadRangeInvalid, message)
        .header(header::LOCATION, location(t, id))
        .header(header::RANGE, range_value(current))
        .header(header::HeaderName::from_static("docker-upload-uuid"), id.to_string())
}

/// Appends the request body to the session, honouring `Content-Range`. Returns the new size.
/// With `finish` (the final `PUT`), the body is the last bytes and the content is committed as
/// that digest in the same step; a refused request leaves the session as it was.
async fn append_body(ctx: &mut Ctx, t: &Target, id: &UploadId, finish: Option<&Digest>) -> OciResult<u64> {
    let blobs = ctx.state.blobs.clone();
    let current = blobs.upload_size(id).await.map_err(|e| OciError::from_storage("reading an upload", e))?;
    let declared_len = match ctx.header("content-length") {
        Some(v) => {
            Some(v.trim().parse::<u64>().map_err(|_| OciError::new(Code::SizeInvalid, "invalid Content-Length"))?)
        }
        None => None,
    };
    let mut chunk_limit = None;
    if let Some(cr) = ctx.header("content-range") {
        let (start, end) = parse_content_range(cr)
            .ok_or_else(|| range_invalid(t, id, current, format!("malformed Content-Range '{cr}'")))?;
        if start != current {
            return Err(range_invalid(
                t,
                id,
                current,
                format!("chunk starts at byte {start} but the upload holds {current} bytes; resume at {current}"),
            ));
        }
        let len = end - start + 1;
        if declared_len.is_some_and(|l| l != len) {
            return Err(range_invalid(
                t,
                id,
                current,
                format!("Content-Range covers {len} bytes but Content-Length is {}", declared_len.unwrap_or(0)),
            ));
        }
        chunk_limit = Some(len);
    }
    let size_limit = ctx.state.config.max_blob_size.map(|m| m.saturating_sub(current));
    let max_len = match (chunk_limit, size_limit) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let body = ctx.take_body_stream();
    let appended = match finish {
        Some(digest) => blobs.upload_finish(id, current, body, max_len, digest).await,
        None => blobs.upload_append(id, current, body, max_len).await,
    };
    match appended {
        Ok(size) => Ok(size),
        Err(StorageError::UploadOffsetMismatch { current }) => {
            Err(range_invalid(t, id, current, format!("another chunk was written concurrently; resume at {current}")))
        }
        Err(StorageError::UploadTooLarge)
            if chunk_limit.is_some() && size_limit.is_none_or(|s| chunk_limit < Some(s)) =>
        {
            Err(range_invalid(t, id, current, "request body is longer than its Content-Range".to_string()))
        }
        Err(e) if finish.is_some() => Err(OciError::from_storage("completing an upload", e)),
        Err(e) => Err(OciError::from_storage("appending to an upload", e)),
    }
}

pub async fn patch(ctx: &mut Ctx, id: &UploadId) -> OciResult<Response> {
    let t = ctx.target()?.clone();
    session(ctx, &t, id).await?;
    let size = append_body(ctx, &t, id, None).await?;
    Ok(progress(&t, id, size, StatusCode::ACCEPTED))
}

pub async fn status(ctx: &Ctx, id: &UploadId) -> OciResult<Response> {
    let t = ctx.target()?;
    session(ctx, t, id).await?;
    let size = ctx.state.blobs.upload_size(id).await.map_err(|e| OciError::from_storage("reading an upload", e))?;
    Ok(progress(t, id, size, StatusCode::NO_CONTENT))
}

pub async fn put(ctx: &mut Ctx, id: &UploadId) -> OciResult<Response> {
    let t = ctx.target()?.clone();
    let record = session(ctx, &t, id).await?;
    let digest = match ctx.param("digest") {
        Some(d) => parse_digest_param(d)?,
        None => return Err(OciError::digest_invalid("the digest query parameter is required to complete an upload")),
    };
    let size = append_body(ctx, &t, id, Some(&digest)).await?;
    // The link and the end of the session are one metadata write; a crash before it is
    // completed at the next start (the blob store keeps the committed session until released).
    let meta = &ctx.state.meta;
    let linked =
        meta.upload_complete(&record, &digest, size).await.map_err(|e| OciError::from_storage("linking a blob", e))?;
    if !linked
        && meta
            .blob_visible(&t.registry.key, &t.repo, &digest)
            .await
            .map_err(|e| OciError::from_storage("linking a blob", e))?
            .is_none()
    {
        // Cancelled, expired or deleted with its registry while the last bytes were arriving.
        release(ctx, id).await;
        return Err(OciError::upload_unknown());
    }
    release(ctx, id).await;
    Ok(created(&t, &digest))
}

pub async fn cancel(ctx: &Ctx, id: &UploadId) -> OciResult<Response> {
    let t = ctx.target()?;
    session(ctx, t, id).await?;
    let state = &ctx.state;
    state.blobs.upload_abort(id).await.map_err(|e| OciError::from_storage("cancelling an upload", e))?;
    state.meta.upload_delete(id).await.map_err(|e| OciError::from_storage("cancelling an upload", e))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::parse_content_range;

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("0-99"), Some((0, 99)));
        assert_eq!(parse_content_range("bytes 100-199/*"), Some((100, 199)));
        assert_eq!(parse_content_range("5-4"), None);
        assert_eq!(parse_content_range("x-4"), None);
    }
}
