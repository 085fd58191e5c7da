//! Manifests: push (validated), pull with content negotiation, delete by digest or tag.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use serde_json::json;
use wharf_oci::{Digest, MAX_MANIFEST_BYTES, Manifest, Reference, media_type};
use wharf_storage::{ManifestMeta, NewManifest, StorageError};

use super::{BodyError, Ctx};
use crate::http::oci::{Code, OciError, OciResult};

/// Whether a stored manifest of `stored` type may be returned for these `Accept` values.
/// No `Accept`, a wildcard, or an `Accept` that names no manifest type at all accepts anything;
/// otherwise the stored type must be listed (as CNCF distribution decides).
pub fn acceptable<'a>(accept: impl Iterator<Item = &'a str>, stored: &str) -> bool {
    let listed: Vec<String> =
        accept.flat_map(|v| v.split(',')).map(media_type::essence).filter(|s| !s.is_empty()).collect();
    if listed.is_empty() || listed.iter().any(|m| m == "*/*" || m == "application/*" || m == stored) {
        return true;
    }
    !listed.iter().any(|m| media_type::is_manifest_type(m))
}

/// GET and HEAD: one store read gives the manifest and every lock on the way to it.
pub async fn get(ctx: &Ctx, reference: &Reference, head: bool) -> OciResult<Response> {
    let t = ctx.target()?;
    let found = ctx
        .state
        .meta
        .manifest_read(&t.registry.key, &t.repo, reference, !head)
        .await
        .map_err(|e| OciError::from_storage("reading a manifest", e))?;
    super::locks::check_reference(&found, reference, super::locks::Op::Read, t)?;
    let info = found.manifest.ok_or_else(|| OciError::manifest_unknown(reference))?;
    let bytes = found.bytes;
    let accept = ctx.headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok());
    if !acceptable(accept, &info.media_type) {
        return Err(OciError::new(
            Code::ManifestUnknown,
            format!("the manifest is stored as {}, which the request's Accept header does not allow", info.media_type),
        ));
    }
    let mut resp = match bytes {
        Some(b) => (StatusCode::OK, b).into_response(),
        None => StatusCode::OK.into_response(),
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        info.media_type.parse().map_err(|e| OciError::internal("formatting a manifest", e))?,
    );
    h.insert(header::CONTENT_LENGTH, info.size.into());
    h.insert("docker-content-digest", info.digest.to_string().parse().expect("digest is ascii"));
    h.insert(header::ETAG, format!("\"{}\"", info.digest).parse().expect("digest is ascii"));
    Ok(resp)
}

/// Layers that live outside the registry (`urls`, non-distributable media types) need not exist.
fn is_foreign(d: &wharf_oci::Descriptor) -> bool {
    d.media_type.contains("foreign") || d.media_type.contains("nondistributable")
}

pub async fn put(ctx: &mut Ctx, reference: &Reference) -> OciResult<Response> {
    let t = ctx.target()?.clone();
    super::locks::reference(ctx, &t, reference, super::locks::Op::Write).await?;
    let bytes = match ctx.read_body(MAX_MANIFEST_BYTES).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            return Err(OciError::new(
                Code::ManifestTooLarge,
                format!("manifest is larger than the {MAX_MANIFEST_BYTES}-byte limit"),
            ));
        }
        Err(BodyError::Failed(e)) => {
            return Err(OciError::new(Code::ManifestInvalid, format!("reading the manifest failed: {e}")));
        }
    };
    let content_type = ctx.header("content-type").map(str::to_string);
    let manifest = Manifest::parse(&bytes, content_type.as_deref())
        .map_err(|e| OciError::new(Code::ManifestInvalid, e.to_string()))?;
    let (digest, tag) = match reference {
        Reference::Digest(d) => {
            let computed = Digest::of(d.algorithm(), &bytes);
            if &computed != d {
                return Err(OciError::digest_invalid(format!(
                    "the manifest's digest is {computed}, not {d} as the URL says"
                )));
            }
            (d.clone(), None)
        }
        Reference::Tag(tag) => (Digest::sha256_of(&bytes), Some(tag.clone())),
    };
    let (architecture, os) = config_platform(ctx, &t, &manifest).await;
    let new = NewManifest {
        digest: digest.clone(),
        media_type: manifest.kind.media_type().to_string(),
        bytes: bytes.clone(),
        artifact_type: manifest.artifact_type.clone(),
        subject: manifest.subject.as_ref().map(|s| s.digest.clone()),
        annotations: manifest.annotations.clone().map(serde_json::Value::Object),
        blob_refs: manifest.blob_references().filter(|d| !is_foreign(d)).map(|d| d.digest.clone()).collect(),
        manifest_refs: manifest.manifests.iter().map(|d| d.digest.clone()).collect(),
        architecture,
        os,
        tag,
    };
    match ctx.state.meta.manifest_put(&t.registry.key, &t.repo, &new).await {
        Ok(_) => {}
        Err(StorageError::MissingReferences { blobs, manifests }) => {
            let mut missing: Vec<String> = blobs.iter().map(|d| d.to_string()).collect();
            missing.extend(manifests.iter().map(|d| d.to_string()));
            return Err(OciError::new(
                Code::ManifestBlobUnknown,
                format!("the manifest references {} item(s) not pushed to this repository", missing.len()),
            )
            .detail(json!({"blobs": blobs.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
                           "manifests": manifests.iter().map(|d| d.to_string()).collect::<Vec<_>>()})));
        }
        Err(e) => return Err(OciError::internal("storing a manifest", e)),
    }
    if let Some(tag) = &new.tag {
        crate::triggers::base_images::pushed(
            &ctx.state,
            crate::triggers::base_images::Pushed {
                registry: t.registry.key.clone(),
                registry_name: t.registry.name.clone(),
                repository: t.repo.to_string(),
                tag: tag.to_string(),
                digest: digest.to_string(),
            },
        );
    }
    let mut resp = (
        StatusCode::CREATED,
        [
            (header::LOCATION, format!("/v2/{}/manifests/{digest}", t.client_name())),
            (header::CONTENT_LENGTH, "0".to_string()),
            (header::HeaderName::from_static("docker-content-digest"), digest.to_string()),
        ],
    )
        .into_response();
    if let Some(subject) = &manifest.subject {
        resp.headers_mut().insert("oci-subject", subject.digest.to_string().parse().expect("digest is ascii"));
    }
    Ok(resp)
}

/// Reads `architecture`/`os` from an image config blob for ACR's listings. Best effort: any
/// failure leaves them unknown, never fails the push.
async fn config_platform(ctx: &Ctx, t: &super::target::Target, m: &Manifest) -> (Option<String>, Option<String>) {
    let Some(config) = &m.config else { return (None, None) };
    let is_image_config = config.media_type == media_type::OCI_CONFIG
        || config.media_type == "application/vnd.docker.container.image.v1+json";
    if !is_image_config || config.size > 1024 * 1024 {
        return (None, None);
    }
    let visible = ctx.state.meta.blob_visible(&t.registry.key, &t.repo, &config.digest).await;
    if !matches!(visible, Ok(Some(_))) {
        return (None, None);
    }
    let Ok(stream) = ctx.state.blobs.read(&config.digest, None).await else { return (None, None) };
    let Ok(chunks) = stream.try_collect::<Vec<bytes::Bytes>>().await else { return (None, None) };
    let bytes = chunks.concat();
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&bytes) else { return (None, None) };
    let s = |k: &str| doc.get(k).and_then(|v| v.as_str()).map(str::to_string);
    (s("architecture"), s("os"))
}

pub async fn delete(ctx: &Ctx, reference: &Reference) -> OciResult<Response> {
    let t = ctx.target()?;
    super::locks::reference(ctx, t, reference, super::locks::Op::Delete).await?;
    let meta = &ctx.state.meta;
    match reference {
        Reference::Digest(d) => {
            let deleted = meta.manifest_delete(&t.registry.key, &t.repo, d).await;
            if deleted.map_err(|e| OciError::from_storage("deleting a manifest", e))?.is_none() {
                return Err(OciError::manifest_unknown(reference));
            }
        }
        Reference::Tag(tag) => {
            let deleted = meta.tag_delete(&t.registry.key, &t.repo, tag).await;
            if !deleted.map_err(|e| OciError::from_storage("deleting a tag", e))? {
                return Err(OciError::manifest_unknown(reference));
            }
        }
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

/// The descriptor the referrers API lists for a stored manifest.
pub fn referrer_descriptor(m: &ManifestMeta) -> serde_json::Value {
    let mut d = json!({"mediaType": m.media_type, "digest": m.digest.to_string(), "size": m.size});
    if let Some(at) = &m.artifact_type {
        d["artifactType"] = json!(at);
    }
    if let Some(a) = &m.annotations {
        d["annotations"] = a.clone();
    }
    d
}

#[cfg(test)]
mod tests {
    use super::acceptable;

    #[test]
    fn content_negotiation() {
        let oci = wharf_oci::media_type::OCI_MANIFEST;
        let docker = wharf_oci::media_type::DOCKER_MANIFEST;
        assert!(acceptable(std::iter::empty(), oci));
        assert!(acceptable([docker, oci].into_iter(), oci));
        assert!(acceptable([&*format!("{docker}, {oci};q=0.9")].into_iter(), oci));
        assert!(!acceptable([docker].into_iter(), oci));
        assert!(acceptable(["*/*"].into_iter(), oci));
        assert!(acceptable(["application/json"].into_iter(), oci));
    }
}
