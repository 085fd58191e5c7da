//! Blob garbage collection: removes the bytes of blobs that no repository links and no
//! manifest references, and (at start-up, then hourly) blob files that no record knows (left by a
//! crash between a collection's two steps, or by an upload that was never acknowledged).
//!
//! Bytes are removed only when last written more than [`GRACE_SECONDS`] ago, checked by the blob
//! store atomically with its commits (`BlobStore::delete_if_idle`): a commit refreshes the time
//! of the file it puts in place, so content about to be recorded is never removed. Within one
//! process, a cross-repository mount holds [`AppState::gc_lock`] for reading while it links, and
//! the record collection holds it for writing, so a mounted blob cannot lose its bytes between
//! the check and the link. Several replicas will need a shared fence (see docs/architecture.md).

use crate::state::AppState;

/// Blobs recorded or linked less than this long ago, and blob files written less than this long
/// ago, are never collected (the store refreshes a blob's record time when it is recorded or
/// linked again, and the file's time when its content is committed again).
pub const GRACE_SECONDS: i64 = 60;

pub async fn collect(state: &AppState) -> Result<usize, wharf_storage::StorageError> {
    let now = chrono::Utc::now();
    let cutoff = now - chrono::Duration::seconds(GRACE_SECONDS);
    let unreferenced = {
        let _guard = state.gc_lock.write().await;
        let digests = state.meta.blob_collect_unreferenced(cutoff.timestamp()).await?;
        for d in &digests {
            state.blobs.delete_if_idle(d, cutoff).await?;
        }
        digests.len()
    };
    if unreferenced > 0 {
        tracing::info!(count = unreferenced, "garbage collection removed unreferenced blobs");
    }
    if !orphan_walk_due() {
        return Ok(unreferenced);
    }
    // Listed without the fence (a walk of the whole store), removed only if still unknown.
    let candidates = wharf_storage::maintenance::orphan_blob_candidates(&*state.meta, &*state.blobs, cutoff).await?;
    let orphans =
        wharf_storage::maintenance::remove_orphan_blobs(&*state.meta, &*state.blobs, &candidates, cutoff).await?;
    Ok(unreferenced + orphans.len())
}

/// Files no record knows come only from crashes and failed requests, and finding them walks the
/// whole blob store, so the walk runs at the first collection of the process and then at most
/// once every [`ORPHAN_WALK_INTERVAL`].
pub const ORPHAN_WALK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

fn orphan_walk_due() -> bool {
    static LAST: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    if last.is_some_and(|t| t.elapsed() < ORPHAN_WALK_INTERVAL) {
        return false;
    }
    *last = Some(std::time::Instant::now());
    true
}
