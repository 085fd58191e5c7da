//! The filesystem blob store: committed blobs and upload sessions under one directory.
//!
//! Owns the on-disk layout below `root` and nothing else:
//!
//! ```text
//! root/blobs/{algorithm}/{first two hex}/{hex}   committed, immutable content
//! root/uploads/{upload id}/data                  bytes received so far
//! root/uploads/{upload id}/algorithm             digest algorithm chosen at creation
//! root/uploads/{upload id}/acked                 acknowledged size (two checksummed slots)
//! root/tmp/                                      temp files of `put_bytes` (emptied at open)
//! ```
//!
//! Bytes are streamed: each append is cut into batches of about [`BATCH_BYTES`] (the client's
//! chunks, shared rather than copied) that a writer thread (vectored `write`) and a hasher thread
//! consume at their own pace while the runtime reads the next ones; a short bounded queue caps
//! memory. A third thread `fdatasync`s whenever [`FLUSH_EVERY_BYTES`] are unflushed, so that the
//! disk works during the upload rather than all at the end.
//! Content enters `blobs/` only through a rename, after its digest was checked and its bytes
//! were flushed with `fsync`; the directory is synced afterwards.
//!
//! An append that returns is durable: its bytes are flushed, then its new size is written to
//! the `acked` record and flushed, so that after a crash (even a power loss) the session resumes
//! exactly at the last size a client was told, dropping the bytes of a request that never
//! completed. The record alternates between two checksummed slots overwritten in place, so
//! updating it costs one small flush and never a directory operation, and a torn write leaves
//! the previous slot valid. The session's directory entries are synced once, at its first
//! acknowledged append. ([`BlobStore::upload_append_final`], followed by the commit, flushes
//! nothing of its own: the commit makes the bytes durable.)
//!
//! Upload sessions live on disk; memory only caches each session's acknowledged size and hashing
//! progress (`Session`). A restarted process finds its sessions with their sizes, and a commit
//! re-hashes from disk whatever that cache cannot vouch for, so nothing unverified ever reaches
//! `blobs/`. An append that fails (client stream error, size limit, I/O) truncates the file back
//! to its size before the append, so a retry from the reported offset works.
//!
//! Reads hand the HTTP layer chunks of [`READ_CHUNK_BYTES`] read on the blocking pool straight
//! into the buffers that are sent (one copy out of the page cache), one chunk ahead of the
//! consumer.
//!
//! This module must never build a path from anything but a validated [`Digest`] or
//! [`UploadId`], never hold a whole blob in memory, and never know which repository a blob
//! belongs to (visibility is metadata).

mod acked;
mod pipeline;
mod read;

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex as SyncMutex};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::Mutex as AsyncMutex;
use wharf_oci::{Digest, DigestAlgorithm, Hasher};

use self::acked::{ACKED_RECORD, create_acked, newest_acked, read_legacy_acked, write_acked};
use self::pipeline::{AppendFailure, Appended, hash_file_from, stream_into};
pub use self::pipeline::{BATCH_BYTES, FLUSH_EVERY_BYTES};
pub use self::read::READ_CHUNK_BYTES;
use self::read::{BlobChunks, read_chunk};
use crate::{BlobStore, ByteStream, Result, StorageError, UploadId};

/// One upload session as this process knows it.
struct Session {
    /// The size last acknowledged to a client (what status reports). Changes only under
    /// `state`'s lock, and only once the bytes and the record are durable.
    acked: AtomicU64,
    /// Set once the session is committed or aborted: its files are gone.
    closed: AtomicBool,
    state: AsyncMutex<SessionState>,
}

/// In-memory progress of one upload session, changed under its lock.
///
/// `hasher` has consumed exactly the first `hashed` bytes of the session's data file. It is
/// `None` when that is unknown: after a restart, or while an append is running (an append that
/// is abandoned halfway leaves it `None`, and the commit re-hashes from disk).
struct SessionState {
    hashed: u64,
    hasher: Option<Hasher>,
    /// Sequence number of the last acknowledged-size record written (its slot is `seq % 2`).
    seq: u64,
    /// Whether the session's directory entries are known to be on disk.
    dir_synced: bool,
    /// Whether the bytes and the record are known to be on disk up to the acknowledged size
    /// (false after an [`BlobStore::upload_append_final`] that no commit followed).
    durable: bool,
}

impl Session {
    fn new(acked: u64, seq: u64, hasher: Option<Hasher>, dir_synced: bool) -> Session {
        Session {
            acked: AtomicU64::new(acked),
            closed: AtomicBool::new(false),
            state: AsyncMutex::new(SessionState {
                hashed: if hasher.is_some() { acked } else { 0 },
                hasher,
                seq,
                dir_synced,
                durable: true,
            }),
        }
    }
}

type Sessions = Arc<SyncMutex<HashMap<UploadId, Arc<Session>>>>;

/// Content-addressed blobs and upload sessions on a local filesystem.
pub struct FsBlobStore {
    root: PathBuf,
    sessions: Sessions,
    /// Held while a session is recovered from disk, so that two first requests for it cannot
    /// both recover it (the second would cut the file under the first one's append).
    recovering: AsyncMutex<()>,
}

/// The paths one upload session works with.
#[derive(Clone)]
struct SessionPaths {
    dir: PathBuf,
    data: PathBuf,
    uploads: PathBuf,
}

impl FsBlobStore {
    /// Opens (creating if needed) a blob store below `root`. Upload sessions found on disk are
    /// kept; leftovers of interrupted `put_bytes` calls in `root/tmp` are removed.
    pub fn open(root: PathBuf) -> Result<FsBlobStore> {
        for dir in ["blobs", "uploads", "tmp"] {
            std::fs::create_dir_all(root.join(dir))?;
        }
        for entry in std::fs::read_dir(root.join("tmp"))? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                tracing::info!(path = %entry.path().display(), "removing a temp file left by an interrupted write");
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(FsBlobStore { root, sessions: Arc::new(SyncMutex::new(HashMap::new())), recovering: AsyncMutex::new(()) })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob_dir(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs").join(digest.algorithm().as_str()).join(&digest.hex()[..2])
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blob_dir(digest).join(digest.hex())
    }

    fn upload_dir(&self, id: &UploadId) -> PathBuf {
        self.root.join("uploads").join(id.as_str())
    }

    fn session_paths(&self, id: &UploadId) -> SessionPaths {
        let dir = self.upload_dir(id);
        SessionPaths { data: dir.join("data"), dir, uploads: self.root.join("uploads") }
    }

    /// The session as this process knows it, recovered from disk when it has not seen it yet:
    /// bytes past the acknowledged size (a request that never completed) are dropped.
    async fn session(&self, id: &UploadId) -> Result<Arc<Session>> {
        let known = || -> Option<Arc<Session>> {
            let map = self.sessions.lock().expect("session map poisoned");
            map.get(id).filter(|s| !s.closed.load(Ordering::Acquire)).cloned()
        };
        if let Some(s) = known() {
            return Ok(s);
        }
        let _recovering = self.recovering.lock().await;
        if let Some(s) = known() {
            return Ok(s);
        }
        let dir = self.upload_dir(id);
        let (size, seq, algorithm) =
            blocking(move || recover_session(&dir)).await??.ok_or(StorageError::UploadUnknown)?;
        // An empty session can start hashing again; otherwise the commit catches up from disk.
        let hasher = if size == 0 { algorithm.map(Hasher::new) } else { None };
        let session = Arc::new(Session::new(size, seq, hasher, false));
        self.sessions.lock().expect("session map poisoned").insert(id.clone(), session.clone());
        Ok(session)
    }
}

/// Reads a session's state from disk after a restart: its size (cut back to the acknowledged
/// size), the record's sequence number and the digest algorithm. `None` if there is no session.
fn recover_session(dir: &Path) -> io::Result<Option<(u64, u64, Option<DigestAlgorithm>)>> {
    let mut size = match std::fs::metadata(dir.join("data")) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let (seq, acked) = match std::fs::read(dir.join(ACKED_RECORD)) {
        // No valid slot: nothing was acknowledged yet.
        Ok(record) => newest_acked(&record).unwrap_or((0, 0)),
        // A session created before the record existed.
        Err(e) if e.kind() == io::ErrorKind::NotFound => (0, read_legacy_acked(dir).unwrap_or(size)),
        Err(e) => return Err(e),
    };
    if size > acked {
        // Bytes of an append that never completed (the process died mid-request): drop them, so
        // the session resumes where the client was told it stands.
        tracing::info!(dir = %dir.display(), size, acked, "dropping unacknowledged bytes of an interrupted upload");
        OpenOptions::new().write(true).open(dir.join("data"))?.set_len(acked)?;
        size = acked;
    } else if size < acked {
        tracing::warn!(dir = %dir.display(), size, acked, "upload session holds fewer bytes than were acknowledged");
    }
    let algorithm =
        std::fs::read_to_string(dir.join("algorithm")).ok().and_then(|s| s.trim().parse::<DigestAlgorithm>().ok());
    Ok(Some((size, seq, algorithm)))
}

/// Runs blocking file work off the async runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| StorageError::Io(io::Error::other(e)))
}

fn join_error(e: tokio::task::JoinError) -> io::Error {
    io::Error::other(e)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` and its missing parents up to (not including) `stop`, syncing each parent
/// whose entries changed, so that a later rename into `dir` is durable.
fn create_dirs_durably(dir: &Path, stop: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let parent = dir.parent().ok_or_else(|| io::Error::other("blob directory without parent"))?;
    if parent != stop {
        create_dirs_durably(parent, stop)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => sync_dir(parent),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Moves a fully written, synced file into the content store. If the blob already exists the
/// new copy is discarded (content addressing makes both identical).
fn install(source: &Path, target: &Path, blobs_root: &Path) -> io::Result<()> {
    if target.exists() {
        return std::fs::remove_file(source);
    }
    let dir = target.parent().ok_or_else(|| io::Error::other("blob path without parent"))?;
    create_dirs_durably(dir, blobs_root)?;
    std::fs::rename(source, target)?;
    sync_dir(dir)
}

/// Opens a session's data file for appending at `size`, the acknowledged size: bytes past it
/// (left by an append whose rollback failed) are dropped first.
fn open_for_append(path: &Path, size: u64) -> Result<File> {
    let mut file = match OpenOptions::new().write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StorageError::UploadUnknown),
        Err(e) => return Err(e.into()),
    };
    let len = file.metadata()?.len();
    if len < size {
        return Err(StorageError::Corrupt(format!("upload data holds {len} bytes but {size} were acknowledged")));
    }
    if len > size {
        file.set_len(size)?;
    }
    file.seek(SeekFrom::Start(size))?;
    Ok(file)
}

/// An operation on one upload session, owning what it needs so that it runs in a task of its
/// own: a caller dropping its future (client gone) cannot leave it half done.
struct SessionOp {
    sessions: Sessions,
    id: UploadId,
    paths: SessionPaths,
    blobs_root: PathBuf,
}

impl SessionOp {
    /// Appends `body` at `offset`. When `durable`, the bytes and the new acknowledged size are
    /// flushed before this returns (with any earlier ones that were not); otherwise the record
    /// is written but not flushed (a commit follows).
    async fn append(
        &self,
        session: &Session,
        state: &mut SessionState,
        offset: u64,
        body: ByteStream,
        max_len: Option<u64>,
        durable: bool,
    ) -> Result<u64> {
        if session.closed.load(Ordering::Acquire) {
            return Err(StorageError::UploadUnknown);
        }
        let current = session.acked.load(Ordering::Acquire);
        if offset != current {
            return Err(StorageError::UploadOffsetMismatch { current });
        }
        let data = self.paths.data.clone();
        let file = blocking(move || open_for_append(&data, current)).await??;
        // Keep hashing incrementally only if the hasher has seen exactly the bytes on disk;
        // otherwise the commit re-hashes from disk.
        let hasher = if state.hashed == current { state.hasher.take() } else { None };
        let snapshot = hasher.clone();
        state.hasher = None;
        // `max_len` bounds what this call accepts; a caller capping the whole blob passes
        // `limit - offset`.
        let failure = match stream_into(file, hasher, body, max_len).await {
            Ok(Appended { bytes: 0, hasher, .. }) if state.durable || !durable => {
                state.hasher = hasher;
                return Ok(current);
            }
            Ok(Appended { bytes, flushed, file, hasher }) => {
                let new_size = current + bytes;
                let seq = state.seq + 1;
                let sync_dirs = durable && !state.dir_synced;
                // A flush covers the whole file: the flusher's last one covered everything
                // before this append's end only if it came after the last byte.
                let sync_data = durable && (flushed < bytes || bytes == 0 || !state.durable);
                let paths = self.paths.clone();
                let recorded = blocking(move || -> io::Result<File> {
                    if sync_data {
                        file.sync_data()?;
                    }
                    write_acked(&paths.dir, seq, new_size, durable)?;
                    if sync_dirs {
                        sync_dir(&paths.dir)?;
                        sync_dir(&paths.uploads)?;
                    }
                    Ok(file)
                })
                .await?;
                match recorded {
                    Ok(_) => {
                        state.seq = seq;
                        state.dir_synced |= sync_dirs;
                        state.durable = durable;
                        state.hashed = new_size;
                        state.hasher = hasher;
                        session.acked.store(new_size, Ordering::Release);
                        return Ok(new_size);
                    }
                    // The bytes could not be made durable: undo the append, as for any failure.
                    Err(e) => {
                        state.seq = seq;
                        (AppendFailure::Io(e), None)
                    }
                }
            }
            Err(failure) => failure,
        };
        let (failure, file) = failure;
        tracing::debug!(upload = %self.id, size = current, "append failed; truncating the session back");
        // Back to the size before this append, so the client can retry from there; the record
        // is rewritten in case the failed append had already recorded its size.
        let (data, dir, seq) = (self.paths.data.clone(), self.paths.dir.clone(), state.seq + 1);
        let truncated = blocking(move || -> io::Result<()> {
            let file = match file {
                Some(f) => f,
                None => OpenOptions::new().write(true).open(&data)?,
            };
            file.set_len(current)?;
            write_acked(&dir, seq, current, false)
        })
        .await
        .and_then(|r| r.map_err(StorageError::from));
        if truncated.is_ok() {
            state.seq = seq;
            state.hashed = current;
            state.hasher = snapshot;
        }
        truncated?;
        Err(match failure {
            AppendFailure::Client(e) => StorageError::ClientStream(e),
            AppendFailure::TooLarge => StorageError::UploadTooLarge,
            AppendFailure::Io(e) => StorageError::Io(e),
        })
    }

    /// Verifies the session's content against `expected` and moves it to `target`. On success
    /// the session is gone; on `DigestMismatch` it is left as it was.
    async fn commit(
        &self,
        session: &Session,
        state: &mut SessionState,
        expected: &Digest,
        target: PathBuf,
    ) -> Result<u64> {
        if session.closed.load(Ordering::Acquire) {
            return Err(StorageError::UploadUnknown);
        }
        let acked = session.acked.load(Ordering::Acquire);
        // Reuse the in-memory hasher when it is of the right algorithm; catch up from disk for
        // whatever it has not seen (everything, after a restart).
        let (start, hasher) = match &state.hasher {
            Some(h) if h.algorithm() == expected.algorithm() && state.hashed <= acked => (state.hashed, h.clone()),
            _ => (0, Hasher::new(expected.algorithm())),
        };
        let data = self.paths.data.clone();
        let blobs_root = self.blobs_root.clone();
        let wanted = expected.clone();
        let (hasher, outcome) = blocking(move || -> Result<(Hasher, Result<()>)> {
            drop(open_for_append(&data, acked)?);
            let mut hasher = hasher;
            let end = if start < acked { hash_file_from(&data, start, &mut hasher)? } else { acked };
            if end != acked {
                return Err(StorageError::Corrupt("upload data changed while it was being verified".into()));
            }
            let actual = hasher.clone().finish();
            if actual != wanted {
                return Ok((hasher, Err(StorageError::DigestMismatch { expected: wanted, actual })));
            }
            if !target.exists() {
                File::open(&data)?.sync_data()?;
            }
            install(&data, &target, &blobs_root)?;
            Ok((hasher, Ok(())))
        })
        .await??;
        if let Err(e) = outcome {
            state.hashed = acked;
            state.hasher = Some(hasher);
            return Err(e);
        }
        state.hasher = None;
        self.close(session).await?;
        Ok(acked)
    }

    /// Forgets the session and removes its directory.
    async fn close(&self, session: &Session) -> Result<()> {
        session.closed.store(true, Ordering::Release);
        self.sessions.lock().expect("session map poisoned").remove(&self.id);
        let dir = self.paths.dir.clone();
        blocking(move || remove_dir_if_present(&dir)).await??;
        Ok(())
    }
}

impl FsBlobStore {
    fn op(&self, id: &UploadId) -> SessionOp {
        SessionOp {
            sessions: self.sessions.clone(),
            id: id.clone(),
            paths: self.session_paths(id),
            blobs_root: self.root.join("blobs"),
        }
    }

    /// Appends in a task of its own holding the session's lock (see [`SessionOp`]).
    async fn append(
        &self,
        id: &UploadId,
        offset: u64,
        body: ByteStream,
        max_len: Option<u64>,
        durable: bool,
    ) -> Result<u64> {
        let session = self.session(id).await?;
        let op = self.op(id);
        let task = tokio::spawn(async move {
            let mut state = session.state.lock().await;
            op.append(&session, &mut state, offset, body, max_len, durable).await
        });
        task.await.map_err(|e| StorageError::Io(join_error(e)))?
    }
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>> {
        match tokio::fs::metadata(self.blob_path(digest)).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn read(&self, digest: &Digest, range: Option<Range<u64>>) -> Result<ByteStream> {
        let path = self.blob_path(digest);
        // Opening and the first read share one trip to the blocking pool.
        let opened = blocking(move || -> io::Result<(File, Bytes, u64)> {
            let mut file = File::open(&path)?;
            let (start, len) = match range {
                Some(r) => (r.start, r.end.saturating_sub(r.start)),
                None => (0, file.metadata()?.len()),
            };
            if start > 0 {
                file.seek(SeekFrom::Start(start))?;
            }
            let first = len.min(READ_CHUNK_BYTES as u64);
            let chunk = read_chunk(&file, first)?;
            Ok((file, chunk, len - first))
        })
        .await?;
        match opened {
            Ok((file, first, unread)) => Ok(Box::pin(BlobChunks::new(file, first, unread))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StorageError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    async fn put_bytes(&self, digest: &Digest, bytes: Bytes) -> Result<()> {
        let target = self.blob_path(digest);
        let tmp = self.root.join("tmp").join(uuid::Uuid::new_v4().to_string());
        let blobs_root = self.root.join("blobs");
        let expected = digest.clone();
        blocking(move || -> Result<()> {
            // Verified even when the blob exists: wrong bytes are an error, not a no-op.
            let actual = Digest::of(expected.algorithm(), &bytes);
            if actual != expected {
                return Err(StorageError::DigestMismatch { expected, actual });
            }
            if target.exists() {
                return Ok(());
            }
            let written = (|| -> io::Result<()> {
                let mut f = File::create(&tmp)?;
                f.write_all(&bytes)?;
                f.sync_data()?;
                drop(f);
                install(&tmp, &target, &blobs_root)
            })();
            if written.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            Ok(written?)
        })
        .await?
    }

    async fn delete(&self, digest: &Digest) -> Result<()> {
        match tokio::fs::remove_file(self.blob_path(digest)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn upload_create(&self, id: &UploadId, algorithm: DigestAlgorithm) -> Result<()> {
        let dir = self.upload_dir(id);
        // Nothing is flushed here: an empty session has nothing to lose, and the first
        // acknowledged append syncs the directory entries.
        blocking(move || -> Result<()> {
            match std::fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(StorageError::Conflict("upload session already exists".into()));
                }
                Err(e) => return Err(e.into()),
            }
            std::fs::write(dir.join("algorithm"), algorithm.as_str())?;
            File::create(dir.join("data"))?;
            create_acked(&dir)?;
            Ok(())
        })
        .await??;
        let session = Arc::new(Session::new(0, 0, Some(Hasher::new(algorithm)), false));
        self.sessions.lock().expect("session map poisoned").insert(id.clone(), session);
        Ok(())
    }

    async fn upload_append(&self, id: &UploadId, offset: u64, body: ByteStream, max_len: Option<u64>) -> Result<u64> {
        self.append(id, offset, body, max_len, true).await
    }

    async fn upload_append_final(
        &self,
        id: &UploadId,
        offset: u64,
        body: ByteStream,
        max_len: Option<u64>,
    ) -> Result<u64> {
        self.append(id, offset, body, max_len, false).await
    }

    async fn upload_size(&self, id: &UploadId) -> Result<u64> {
        // Loading the session recovers it from an interrupted append first.
        let session = self.session(id).await?;
        Ok(session.acked.load(Ordering::Acquire))
    }

    async fn upload_commit(&self, id: &UploadId, expected: &Digest) -> Result<u64> {
        let session = self.session(id).await?;
        let op = self.op(id);
        let (expected, target) = (expected.clone(), self.blob_path(expected));
        let task = tokio::spawn(async move {
            let mut state = session.state.lock().await;
            op.commit(&session, &mut state, &expected, target).await
        });
        task.await.map_err(|e| StorageError::Io(join_error(e)))?
    }

    async fn upload_abort(&self, id: &UploadId) -> Result<()> {
        if let Some(session) = self.sessions.lock().expect("session map poisoned").remove(id) {
            session.closed.store(true, Ordering::Release);
        }
        let dir = self.upload_dir(id);
        blocking(move || remove_dir_if_present(&dir)).await??;
        Ok(())
    }

    async fn upload_ids(&self) -> Result<Vec<UploadId>> {
        let dir = self.root.join("uploads");
        blocking(move || -> io::Result<Vec<UploadId>> {
            let mut ids = Vec::new();
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                let Some(id) = entry.file_name().to_str().and_then(UploadId::parse) else { continue };
                if entry.path().join("data").is_file() {
                    ids.push(id);
                }
            }
            ids.sort();
            Ok(ids)
        })
        .await?
        .map_err(StorageError::from)
    }
}

fn remove_dir_if_present(dir: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
