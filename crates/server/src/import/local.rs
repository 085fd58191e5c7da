//! An import between two registries of this deployment: a copy of metadata only. The blob
//! store is shared, so the source's blobs are linked into each target repository and its
//! manifests stored again with the same bytes (and so the same digests); no byte of a layer
//! moves.
//!
//! Owns: reading the source image (the manifest, every child of an index, up to
//! [`MAX_MANIFESTS`](super::MAX_MANIFESTS), each with its blobs, checking they are visible in
//! the source repository); `image` checks the targets and writes.
//! Must never: link a blob the source repository cannot show.

use std::collections::BTreeSet;

use wharf_oci::{Manifest, Reference};
use wharf_storage::ManifestRecord;

use super::image::{Piece, is_foreign};
use super::{ImportError, ImportRequest, MAX_MANIFESTS, storage};
use crate::state::{AppState, RegistryInfo};

/// Reads the image from the source: the manifest the reference names first, then its children
/// (breadth first), each once.
async fn read_image(
    state: &AppState,
    source: &RegistryInfo,
    request: &ImportRequest,
    tracker: &super::Tracker,
) -> Result<Vec<Piece>, ImportError> {
    let repo = &request.repository;
    let read = state
        .meta
        .manifest_read(&source.key, repo, &request.reference, true)
        .await
        .map_err(|e| storage("reading the source manifest", e))?;
    let unreadable = |what: String| {
        ImportError::Locked(format!("{what} of the source registry '{}' has readEnabled set to false", source.name))
    };
    if read.repository.as_ref().is_some_and(|a| !a.read_enabled) {
        return Err(unreadable(format!("repository '{repo}'")));
    }
    if read.tag.as_ref().is_some_and(|a| !a.read_enabled) {
        return Err(unreadable(format!("image '{}'", request.source_image())));
    }
    let (Some(meta), Some(bytes)) = (read.manifest, read.bytes) else {
        return Err(ImportError::SourceNotFound(format!(
            "the source image '{}' was not found in registry '{}'",
            request.source_image(),
            source.name
        )));
    };
    let mut pieces = Vec::new();
    let mut seen = BTreeSet::new();
    let mut queue = std::collections::VecDeque::from([ManifestRecord { meta, bytes }]);
    while let Some(record) = queue.pop_front() {
        if !seen.insert(record.meta.digest.clone()) {
            continue;
        }
        if seen.len() > MAX_MANIFESTS {
            return Err(ImportError::TooManyManifests(format!(
                "the image '{}' has more than {MAX_MANIFESTS} manifests, the most one import copies",
                request.source_image()
            )));
        }
        if !record.meta.attributes.read_enabled {
            return Err(unreadable(format!("manifest '{}'", record.meta.digest)));
        }
        let parsed = Manifest::parse(&record.bytes, Some(&record.meta.media_type)).map_err(|e| {
            ImportError::SourceUnreachable(format!("the source manifest '{}' cannot be read: {e}", record.meta.digest))
        })?;
        let mut blobs = Vec::new();
        for d in parsed.blob_references().filter(|d| !is_foreign(d)) {
            let size = state
                .meta
                .blob_visible(&source.key, repo, &d.digest)
                .await
                .map_err(|e| storage("reading the source's blobs", e))?
                .ok_or_else(|| {
                    ImportError::SourceNotFound(format!(
                        "the source image is incomplete: blob '{}' of manifest '{}' is missing from repository '{repo}'",
                        d.digest, record.meta.digest
                    ))
                })?;
            blobs.push((d.digest.clone(), size));
        }
        for child in &parsed.manifests {
            let found = state
                .meta
                .manifest_get(&source.key, repo, &Reference::Digest(child.digest.clone()))
                .await
                .map_err(|e| storage("reading the source's child manifests", e))?
                .ok_or_else(|| {
                    ImportError::SourceNotFound(format!(
                        "the source image is incomplete: child manifest '{}' is missing from repository '{repo}'",
                        child.digest
                    ))
                })?;
            queue.push_back(found);
        }
        tracker.manifest();
        pieces.push(Piece {
            digest: record.meta.digest,
            media_type: record.meta.media_type,
            bytes: record.bytes,
            parsed,
            blobs,
            architecture: record.meta.architecture,
            os: record.meta.os,
        });
    }
    Ok(pieces)
}

/// Imports `request`'s image from `source` into `target`, both registries of this deployment:
/// the targets are checked, then the blobs linked and the manifests stored.
pub async fn copy(
    state: &std::sync::Arc<AppState>,
    source: &RegistryInfo,
    target: &RegistryInfo,
    request: &ImportRequest,
    tracker: &super::Tracker,
) -> Result<(), ImportError> {
    let pieces = read_image(state, source, request, tracker).await?;
    super::image::check_targets(state, target, request, &pieces[0].digest).await?;
    super::image::store(state, target, request, &pieces).await
}
