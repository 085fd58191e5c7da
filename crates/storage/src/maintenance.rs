//! Keeping the two stores in agreement: upload sessions after a crash, commits whose metadata
//! write never happened, idle sessions, and blob bytes that no record knows.
//!
//! Everything here goes through the [`MetadataStore`] and [`BlobStore`] traits, so every backend
//! pair gets the same recovery. The server decides when these run; this module decides what is
//! safe to change, and says for each function whether it may run while requests go on.
//!
//! It must never delete bytes that a record knows or that a commit under way may still record
//! (files younger than the grace period the caller passes, content of a committed session), and
//! never drop an upload session a client could still resume.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use wharf_oci::Digest;

use crate::{BlobStore, MetadataStore, Result, StoredBlob, UploadId, UploadRecord, UploadState};

/// What [`reconcile_uploads`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reconciled {
    /// Open sessions kept (they resume at their acknowledged size).
    pub kept: usize,
    /// Sessions whose content had been committed before the crash: now linked, session gone.
    pub completed: Vec<(UploadId, Digest)>,
    /// Records whose bytes are gone (the session cannot resume): dropped.
    pub dropped_records: Vec<UploadId>,
    /// Bytes on disk that no record knows (an unacknowledged monolithic upload, a crash while a
    /// session was created or removed): discarded.
    pub discarded: Vec<UploadId>,
}

/// Brings upload sessions back in line after a restart: every record has its session and every
/// session its record; a session whose content was committed but whose metadata write did not
/// happen (a crash between the two) is completed: its blob is linked where the upload was going
/// and the session is gone, as if the request had finished. Runs before any request is served.
pub async fn reconcile_uploads(meta: &dyn MetadataStore, blobs: &dyn BlobStore) -> Result<Reconciled> {
    let records: HashMap<UploadId, UploadRecord> =
        meta.upload_list().await?.into_iter().map(|r| (r.id.clone(), r)).collect();
    let mut done = Reconciled::default();
    let mut on_disk = HashSet::new();
    for entry in blobs.upload_inventory().await? {
        on_disk.insert(entry.id.clone());
        let record = records.get(&entry.id);
        match (entry.state, record) {
            (UploadState::Open, Some(_)) => done.kept += 1,
            (UploadState::Open, None) | (UploadState::Empty, None) => {
                blobs.upload_abort(&entry.id).await?;
                done.discarded.push(entry.id);
            }
            (UploadState::Empty, Some(_)) => {
                tracing::warn!(upload = %entry.id, "upload session lost its bytes; dropping it");
                meta.upload_delete(&entry.id).await?;
                blobs.upload_abort(&entry.id).await?;
                done.dropped_records.push(entry.id);
            }
            (UploadState::Committed { digest, size }, record) => {
                if complete_one(meta, blobs, &entry.id, record, &digest, size).await? {
                    done.completed.push((entry.id, digest));
                } else if record.is_some() {
                    done.dropped_records.push(entry.id);
                }
            }
        }
    }
    for (id, _) in records.iter().filter(|(id, _)| !on_disk.contains(*id)) {
        tracing::warn!(upload = %id, "upload session has no bytes on disk; dropping it");
        meta.upload_delete(id).await?;
        done.dropped_records.push(id.clone());
    }
    if !done.completed.is_empty() {
        tracing::info!(count = done.completed.len(), "completed uploads whose commit a crash interrupted");
    }
    Ok(done)
}

/// Completes the sessions whose content is committed but not yet recorded (a metadata write that
/// failed after the commit), if they were committed before `settled_before`: a commit under way
/// looks the same until it records its blob, which takes a moment, not a minute.
pub async fn complete_committed_uploads(
    meta: &dyn MetadataStore,
    blobs: &dyn BlobStore,
    settled_before: DateTime<Utc>,
) -> Result<Vec<(UploadId, Digest)>> {
    let mut completed = Vec::new();
    for entry in blobs.upload_inventory().await? {
        let UploadState::Committed { digest, size } = entry.state else { continue };
        if entry.modified >= settled_before {
            continue;
        }
        let record = meta.upload_get(&entry.id).await?;
        if complete_one(meta, blobs, &entry.id, record.as_ref(), &digest, size).await? {
            completed.push((entry.id, digest));
        }
    }
    Ok(completed)
}

/// Links a committed session's blob for its record (if the record and the bytes are still
/// there) and releases the session. Returns whether the blob was linked.
pub(crate) async fn complete_one(
    meta: &dyn MetadataStore,
    blobs: &dyn BlobStore,
    id: &UploadId,
    record: Option<&UploadRecord>,
    digest: &Digest,
    size: u64,
) -> Result<bool> {
    let linked = match record {
        // No record: an unacknowledged monolithic upload, or a session whose metadata write
        // did happen; either way the bytes are left to garbage collection.
        None => false,
        Some(record) => match blobs.stat(digest).await? {
            Some(held) if held == size => meta.upload_complete(record, digest, size).await?,
            held => {
                tracing::error!(upload = %id, %digest, size, ?held, "a committed upload's content is missing or has the wrong size; dropping the session");
                meta.upload_delete(id).await?;
                false
            }
        },
    };
    blobs.upload_abort(id).await?;
    Ok(linked)
}

/// What [`expire_uploads`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Expired {
    /// Sessions idle for too long: records and bytes removed.
    pub sessions: Vec<UploadId>,
    /// Session bytes that no record knows, idle as long (a stalled monolithic upload, a leftover
    /// of a failed request): removed.
    pub unrecorded: Vec<UploadId>,
}

/// Expires upload sessions whose last activity is before `idle_before`: their records and their
/// bytes go. A session whose bytes were written after `idle_before` (one long request still
/// streaming in) is active: its recorded activity is moved forward instead. Committed sessions
/// are left to [`complete_committed_uploads`].
pub async fn expire_uploads(
    meta: &dyn MetadataStore,
    blobs: &dyn BlobStore,
    idle_before: DateTime<Utc>,
) -> Result<Expired> {
    let mut expired = Expired::default();
    let idle = meta.upload_list_idle(idle_before).await?;
    let inventory = blobs.upload_inventory().await?;
    let written: HashMap<&UploadId, DateTime<Utc>> = inventory.iter().map(|u| (&u.id, u.modified)).collect();
    for record in &idle {
        if let Some(&modified) = written.get(&record.id)
            && modified >= idle_before
        {
            meta.upload_touch(&record.id, modified).await?;
            continue;
        }
        if meta.upload_delete_if_idle(&record.id, idle_before).await? {
            blobs.upload_abort(&record.id).await?;
            expired.sessions.push(record.id.clone());
        }
    }
    for entry in &inventory {
        if entry.modified >= idle_before
            || matches!(entry.state, UploadState::Committed { .. })
            || expired.sessions.contains(&entry.id)
        {
            continue;
        }
        if meta.upload_get(&entry.id).await?.is_none() {
            blobs.upload_abort(&entry.id).await?;
            expired.unrecorded.push(entry.id.clone());
        }
    }
    Ok(expired)
}

/// Discards the bytes of upload sessions whose records are gone (a deleted registry's).
pub async fn discard_uploads(blobs: &dyn BlobStore, ids: &[UploadId]) -> Result<()> {
    for id in ids {
        blobs.upload_abort(id).await?;
    }
    Ok(())
}

/// How many blob records are looked up per query while walking the blob store.
const LOOKUP_BATCH: usize = 512;

/// Blob files that no record knows and that were last written before `older_than`, excluding
/// the content of committed upload sessions not yet completed. Reads only: it can run while
/// uploads go on, and its answer is checked again by [`remove_orphan_blobs`].
pub async fn orphan_blob_candidates(
    meta: &dyn MetadataStore,
    blobs: &dyn BlobStore,
    older_than: DateTime<Utc>,
) -> Result<Vec<StoredBlob>> {
    let pending: HashSet<Digest> = blobs
        .upload_inventory()
        .await?
        .into_iter()
        .filter_map(|u| match u.state {
            UploadState::Committed { digest, .. } => Some(digest),
            _ => None,
        })
        .collect();
    let mut listing = blobs.blob_list().await?;
    let mut candidates = Vec::new();
    let mut batch: Vec<StoredBlob> = Vec::with_capacity(LOOKUP_BATCH);
    loop {
        let next = listing.next().await.transpose()?;
        let finished = next.is_none();
        if let Some(blob) = next
            && blob.modified < older_than
            && !pending.contains(&blob.digest)
        {
            batch.push(blob);
        }
        if batch.len() >= LOOKUP_BATCH || (finished && !batch.is_empty()) {
            let digests: Vec<Digest> = batch.iter().map(|b| b.digest.clone()).collect();
            let known: HashSet<Digest> = meta.blob_records_of(&digests).await?.into_iter().map(|r| r.digest).collect();
            candidates.extend(batch.drain(..).filter(|b| !known.contains(&b.digest)));
        }
        if finished {
            return Ok(candidates);
        }
    }
}

/// Deletes those of `candidates` that still have no record and were still last written before
/// `older_than`. Safe while uploads go on: a commit of the same content refreshes the file's
/// time ([`BlobStore::delete_if_idle`] checks it atomically with commits) and then records it.
pub async fn remove_orphan_blobs(
    meta: &dyn MetadataStore,
    blobs: &dyn BlobStore,
    candidates: &[StoredBlob],
    older_than: DateTime<Utc>,
) -> Result<Vec<Digest>> {
    let mut removed = Vec::new();
    for chunk in candidates.chunks(LOOKUP_BATCH) {
        let digests: Vec<Digest> = chunk.iter().map(|b| b.digest.clone()).collect();
        let known: HashSet<Digest> = meta.blob_records_of(&digests).await?.into_iter().map(|r| r.digest).collect();
        for blob in chunk.iter().filter(|b| !known.contains(&b.digest)) {
            if blobs.delete_if_idle(&blob.digest, older_than).await? {
                removed.push(blob.digest.clone());
            }
        }
    }
    if !removed.is_empty() {
        tracing::info!(count = removed.len(), "garbage collection removed blob files that no record knew");
    }
    Ok(removed)
}
