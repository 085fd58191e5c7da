//! Blob garbage collection: removes the bytes of blobs that no repository links and no
//! manifest references.
//!
//! Within one process, uploads hold [`AppState::gc_lock`] for reading from the moment they
//! commit bytes until the blob is linked, and a collection holds it for writing, so a blob
//! cannot be collected between its commit and its link. Several replicas will need a shared
//! fence (see docs/architecture.md).

use crate::state::AppState;

/// Blobs recorded or linked less than this long ago are never collected (the store refreshes a
/// blob's record time when it is recorded or linked again).
pub const GRACE_SECONDS: i64 = 60;

pub async fn collect(state: &AppState) -> Result<usize, wharf_storage::StorageError> {
    let _guard = state.gc_lock.write().await;
    let cutoff = chrono::Utc::now().timestamp() - GRACE_SECONDS;
    let digests = state.meta.blob_collect_unreferenced(cutoff).await?;
    for d in &digests {
        state.blobs.delete(d).await?;
    }
    if !digests.is_empty() {
        tracing::info!(count = digests.len(), "garbage collection removed unreferenced blobs");
    }
    Ok(digests.len())
}
