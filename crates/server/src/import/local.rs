//! An import between two registries of this deployment: a copy of metadata only. The blob
//! store is shared, so the source's blobs are linked into each target repository and its
//! manifests stored again with the same bytes (and so the same digests); no byte of a layer
//! moves.
//!
//! Owns: reading the source image (the manifest, every child of an index, up to
//! [`MAX_MANIFESTS`](super::MAX_MANIFESTS), each with its blobs, checking they are present);
//! checking every target before the first write (write locks; an existing tag under `NoForce`);
//! then linking and storing, children before their index and the tags last, so that a tag
//! only ever names a complete image.
//! Must never: write before every check passed, or link a blob the source repository cannot
//! show.

use std::collections::BTreeSet;

use wharf_oci::{Digest, Manifest, Reference, RepositoryName};
use wharf_storage::{ManifestRecord, NewManifest};

use super::request::ImportMode;
use super::{ImportError, ImportRequest, MAX_MANIFESTS, storage};
use crate::state::{AppState, RegistryInfo};

/// One manifest of the image to import, with the blobs it needs.
struct Piece {
    record: ManifestRecord,
    parsed: Manifest,
    /// (digest, size) of each blob the manifest references and the registry holds.
    blobs: Vec<(Digest, u64)>,
}

/// Layers that live outside registries need not exist (as a push decides).
fn is_foreign(d: &wharf_oci::Descriptor) -> bool {
    d.media_type.contains("foreign") || d.media_type.contains("nondistributable")
}

/// Reads the image from the source: the manifest the reference names first, then its children
/// (breadth first), each once.
async fn read_image(
    state: &AppState,
    source: &RegistryInfo,
    request: &ImportRequest,
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
        pieces.push(Piece { record, parsed, blobs });
    }
    Ok(pieces)
}

/// Every target repository (tagged and untagged), each once, in the order named.
fn target_repositories(request: &ImportRequest) -> Vec<RepositoryName> {
    let mut out: Vec<RepositoryName> = Vec::new();
    for r in request.target_tags.iter().map(|t| &t.repository).chain(&request.untagged_repositories) {
        if !out.contains(r) {
            out.push(r.clone());
        }
    }
    out
}

/// The checks of the targets, all before the first write: no locked repository or tag, and
/// under `NoForce` no tag that already names another manifest (a tag that already names this
/// very image is no conflict: importing again changes nothing).
async fn check_targets(
    state: &AppState,
    target: &RegistryInfo,
    request: &ImportRequest,
    digest: &Digest,
) -> Result<(), ImportError> {
    let mut existing = Vec::new();
    for repo in target_repositories(request) {
        let record = state.meta.repository_get(&target.key, &repo).await.map_err(|e| storage("reading a target", e))?;
        if record.is_some_and(|r| !r.attributes.write_enabled) {
            return Err(ImportError::Locked(format!("the target repository '{repo}' has writeEnabled set to false")));
        }
    }
    for t in &request.target_tags {
        let read = state
            .meta
            .manifest_read(&target.key, &t.repository, &Reference::Tag(t.tag.clone()), false)
            .await
            .map_err(|e| storage("reading a target tag", e))?;
        if read.tag.as_ref().is_some_and(|a| !a.write_enabled) {
            return Err(ImportError::Locked(format!("the target tag '{t}' has writeEnabled set to false")));
        }
        // A push may move a tag whatever the manifest it named says; only the tag's own lock
        // (checked above) and the mode decide.
        if let Some(m) = read.manifest
            && &m.digest != digest
        {
            existing.push(t.to_string());
        }
    }
    if request.mode == ImportMode::NoForce && !existing.is_empty() {
        return Err(ImportError::TagExists(format!(
            "the target tag(s) {} already exist in registry '{}'; nothing was copied (import with --force, mode Force, to overwrite)",
            existing.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(", "),
            target.name
        )));
    }
    Ok(())
}

fn new_manifest(piece: &Piece, tag: Option<wharf_oci::Tag>) -> NewManifest {
    let (m, meta) = (&piece.parsed, &piece.record.meta);
    NewManifest {
        digest: meta.digest.clone(),
        media_type: meta.media_type.clone(),
        bytes: piece.record.bytes.clone(),
        artifact_type: m.artifact_type.clone(),
        subject: m.subject.as_ref().map(|s| s.digest.clone()),
        annotations: m.annotations.clone().map(serde_json::Value::Object),
        blob_refs: piece.blobs.iter().map(|(d, _)| d.clone()).collect(),
        manifest_refs: m.manifests.iter().map(|d| d.digest.clone()).collect(),
        architecture: meta.architecture.clone(),
        os: meta.os.clone(),
        tag,
    }
}

/// Imports `request`'s image from `source` into `target`, both registries of this deployment.
pub async fn copy(
    state: &std::sync::Arc<AppState>,
    source: &RegistryInfo,
    target: &RegistryInfo,
    request: &ImportRequest,
) -> Result<(), ImportError> {
    let pieces = read_image(state, source, request).await?;
    let root = pieces[0].record.meta.digest.clone();
    check_targets(state, target, request, &root).await?;
    let put = |repo: &RepositoryName, new: NewManifest| {
        let repo = repo.clone();
        async move { state.meta.manifest_put(&target.key, &repo, &new).await.map_err(|e| storage("storing a manifest", e)) }
    };
    for repo in target_repositories(request) {
        {
            // As a cross-repository mount does: garbage collection cannot drop a blob between
            // the source's check and the target's link.
            let _fence = state.gc_lock.read().await;
            for piece in &pieces {
                for (digest, size) in &piece.blobs {
                    state
                        .meta
                        .blob_link(&target.key, &repo, digest, *size)
                        .await
                        .map_err(|e| storage("linking a blob", e))?;
                }
            }
        }
        // Children first: an index may only be stored once its children are.
        for piece in pieces.iter().rev() {
            put(&repo, new_manifest(piece, None)).await?;
        }
    }
    for t in &request.target_tags {
        put(&t.repository, new_manifest(&pieces[0], Some(t.tag.clone()))).await?;
        crate::triggers::base_images::pushed(
            state,
            crate::triggers::base_images::Pushed {
                registry: target.key.clone(),
                registry_name: target.name.clone(),
                repository: t.repository.to_string(),
                tag: t.tag.to_string(),
                digest: root.to_string(),
            },
        );
    }
    Ok(())
}
