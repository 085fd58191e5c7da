//! Blob reads (with `Range`) and deletes.

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use wharf_oci::Digest;

use super::Ctx;
use crate::http::oci::{Code, OciError, OciResult};

/// A single byte range resolved against a blob of known size.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeRequest {
    Whole,
    Part { start: u64, end_inclusive: u64 },
    Unsatisfiable,
}

/// Parses a `Range` header for a blob of `size` bytes. Anything that is not a single
/// `bytes=` range is ignored (the whole blob is sent), as RFC 9110 allows.
pub fn parse_range(value: Option<&str>, size: u64) -> RangeRequest {
    let Some(v) = value else { return RangeRequest::Whole };
    let Some(spec) = v.trim().strip_prefix("bytes=") else { return RangeRequest::Whole };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return RangeRequest::Whole };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        // Suffix range: the last b bytes.
        let Ok(len) = b.parse::<u64>() else { return RangeRequest::Whole };
        if len == 0 || size == 0 {
            return RangeRequest::Unsatisfiable;
        }
        let len = len.min(size);
        return RangeRequest::Part { start: size - len, end_inclusive: size - 1 };
    }
    let Ok(start) = a.parse::<u64>() else { return RangeRequest::Whole };
    let end = if b.is_empty() {
        size.saturating_sub(1)
    } else {
        match b.parse::<u64>() {
            Ok(e) if e >= start => e.min(size.saturating_sub(1)),
            Ok(_) => return RangeRequest::Whole,
            Err(_) => return RangeRequest::Whole,
        }
    };
    if start >= size {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Part { start, end_inclusive: end }
}

pub async fn get(ctx: &Ctx, digest: &Digest, head: bool) -> OciResult<Response> {
    let t = ctx.target()?;
    super::locks::repository(ctx, t, super::locks::Op::Read).await?;
    let size = ctx
        .state
        .meta
        .blob_visible(&t.registry.key, &t.repo, digest)
        .await
        .map_err(|e| OciError::from_storage("looking up a blob", e))?
        .ok_or_else(|| OciError::blob_unknown(digest))?;
    let range = parse_range(ctx.header("range"), size);
    let (status, start, len) = match range {
        RangeRequest::Whole => (StatusCode::OK, 0, size),
        RangeRequest::Part { start, end_inclusive } => (StatusCode::PARTIAL_CONTENT, start, end_inclusive - start + 1),
        RangeRequest::Unsatisfiable => {
            return Err(OciError::new(
                Code::RangeNotSatisfiable,
                format!("requested range is not satisfiable: the blob has {size} bytes"),
            )
            .header(header::CONTENT_RANGE, format!("bytes */{size}")));
        }
    };
    let body = if head || len == 0 {
        Body::empty()
    } else {
        let r = (status == StatusCode::PARTIAL_CONTENT).then_some(start..start + len);
        let stream = ctx.state.blobs.read(digest, r).await.map_err(|e| OciError::from_storage("reading a blob", e))?;
        Body::from_stream(stream)
    };
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, "application/octet-stream".parse().expect("static"));
    h.insert(header::CONTENT_LENGTH, len.into());
    h.insert(header::ACCEPT_RANGES, "bytes".parse().expect("static"));
    h.insert("docker-content-digest", digest.to_string().parse().expect("digest is ascii"));
    h.insert(header::ETAG, format!("\"{digest}\"").parse().expect("digest is ascii"));
    if status == StatusCode::PARTIAL_CONTENT {
        let v = format!("bytes {start}-{}/{size}", start + len - 1);
        h.insert(header::CONTENT_RANGE, v.parse().expect("ascii"));
    }
    Ok(resp)
}

pub async fn delete(ctx: &Ctx, digest: &Digest) -> OciResult<Response> {
    let t = ctx.target()?;
    super::locks::repository(ctx, t, super::locks::Op::Delete).await?;
    let removed = ctx
        .state
        .meta
        .blob_unlink(&t.registry.key, &t.repo, digest)
        .await
        .map_err(|e| OciError::from_storage("deleting a blob", e))?;
    if !removed {
        return Err(OciError::blob_unknown(digest));
    }
    Ok((StatusCode::ACCEPTED, [("docker-content-digest", digest.to_string())]).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeRequest::*;
        assert_eq!(parse_range(None, 10), Whole);
        assert_eq!(parse_range(Some("bytes=0-3"), 10), Part { start: 0, end_inclusive: 3 });
        assert_eq!(parse_range(Some("bytes=5-"), 10), Part { start: 5, end_inclusive: 9 });
        assert_eq!(parse_range(Some("bytes=-4"), 10), Part { start: 6, end_inclusive: 9 });
        assert_eq!(parse_range(Some("bytes=-40"), 10), Part { start: 0, end_inclusive: 9 });
        assert_eq!(parse_range(Some("bytes=8-100"), 10), Part { start: 8, end_inclusive: 9 });
        assert_eq!(parse_range(Some("bytes=10-"), 10), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 10), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-1,3-4"), 10), Whole);
        assert_eq!(parse_range(Some("items=0-1"), 10), Whole);
        assert_eq!(parse_range(Some("bytes=5-2"), 10), Whole);
        assert_eq!(parse_range(Some("bytes=0-0"), 0), Unsatisfiable);
    }
}
