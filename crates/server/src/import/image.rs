//! What every import writes, whatever its source: the checks of the targets before the first
//! write (write locks; an existing tag under `NoForce`), then the links and manifest records,
//! children before their index and the tags last, so that a tag only ever names a complete
//! image.
//! Must never: write before every check passed, or store a manifest whose blobs are not in the
//! blob store.

use wharf_oci::{Digest, Manifest, Reference, RepositoryName};
use wharf_storage::NewManifest;

use super::request::ImportMode;
use super::{ImportError, ImportRequest, storage};
use crate::state::{AppState, RegistryInfo};

/// One manifest of the image to import, with the blobs it needs.
pub struct Piece {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: bytes::Bytes,
    pub parsed: Manifest,
    /// (digest, size) of each blob the manifest references (foreign layers left out).
    pub blobs: Vec<(Digest, u64)>,
    pub architecture: Option<String>,
    pub os: Option<String>,
}

/// Layers that live outside registries need not exist (as a push decides).
pub fn is_foreign(d: &wharf_oci::Descriptor) -> bool {
    d.media_type.contains("foreign") || d.media_type.contains("nondistributable")
}

/// `architecture` and `os` of an image manifest's config, read from the blob store (for ACR's
/// listings). Best effort, as for a push: anything unreadable leaves them unknown.
pub async fn platform_of(state: &AppState, m: &Manifest) -> (Option<String>, Option<String>) {
    use futures::TryStreamExt;
    let Some(config) = &m.config else { return (None, None) };
    let is_image_config = config.media_type == wharf_oci::media_type::OCI_CONFIG
        || config.media_type == "application/vnd.docker.container.image.v1+json";
    if !is_image_config || config.size > 1024 * 1024 {
        return (None, None);
    }
    let Ok(stream) = state.blobs.read(&config.digest, None).await else { return (None, None) };
    let Ok(chunks) = stream.try_collect::<Vec<bytes::Bytes>>().await else { return (None, None) };
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&chunks.concat()) else { return (None, None) };
    let s = |k: &str| doc.get(k).and_then(|v| v.as_str()).map(str::to_string);
    (s("architecture"), s("os"))
}

/// Every target repository (tagged and untagged), each once, in the order named.
pub fn target_repositories(request: &ImportRequest) -> Vec<RepositoryName> {
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
pub async fn check_targets(
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
    let m = &piece.parsed;
    NewManifest {
        digest: piece.digest.clone(),
        media_type: piece.media_type.clone(),
        bytes: piece.bytes.clone(),
        artifact_type: m.artifact_type.clone(),
        subject: m.subject.as_ref().map(|s| s.digest.clone()),
        annotations: m.annotations.clone().map(serde_json::Value::Object),
        blob_refs: piece.blobs.iter().map(|(d, _)| d.clone()).collect(),
        manifest_refs: m.manifests.iter().map(|d| d.digest.clone()).collect(),
        architecture: piece.architecture.clone(),
        os: piece.os.clone(),
        tag,
    }
}

/// Links `digest` into every target repository (under the GC fence, as a cross-repository
/// mount does, so garbage collection cannot drop it in between).
pub async fn link(
    state: &AppState,
    target: &RegistryInfo,
    request: &ImportRequest,
    digest: &Digest,
    size: u64,
) -> Result<(), ImportError> {
    let _fence = state.gc_lock.read().await;
    for repo in target_repositories(request) {
        state.meta.blob_link(&target.key, &repo, digest, size).await.map_err(|e| storage("linking a blob", e))?;
    }
    Ok(())
}

/// Writes the image (`pieces[0]` is the manifest the request named; every blob is in the blob
/// store) into `target`: links, manifests, tags. The targets were checked with
/// [`check_targets`] before anything was fetched or linked.
pub async fn store(
    state: &std::sync::Arc<AppState>,
    target: &RegistryInfo,
    request: &ImportRequest,
    pieces: &[Piece],
) -> Result<(), ImportError> {
    let root = pieces[0].digest.clone();
    let put = |repo: &RepositoryName, new: NewManifest| {
        let repo = repo.clone();
        async move { state.meta.manifest_put(&target.key, &repo, &new).await.map_err(|e| storage("storing a manifest", e)) }
    };
    for piece in pieces {
        for (digest, size) in &piece.blobs {
            link(state, target, request, digest, *size).await?;
        }
    }
    for repo in target_repositories(request) {
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
