//! The filesystem blob store: committed blobs and upload sessions under one directory.
//!
//! Owns the on-disk layout below `root` and nothing else:
//!
//! ```text
//! root/blobs/{algorithm}/{first two hex}/{hex}   committed, immutable content
//! root/uploads/{upload id}/data                  bytes received so far
//! root/uploads/{upload id}/algorithm             digest algorithm chosen at creation
//! root/uploads/{upload id}/acked                 acknowledged size (two checksummed slots) and,
//!                                                while one runs, the commit record
//! root/tmp/                                      temp files of `put_bytes` (emptied at open)
//! root/quarantine/                               blobs whose bytes did not match their digest
//! ```
//!
//! Bytes are streamed: each append is cut into batches of about [`BATCH_BYTES`] (the client's
//! chunks, shared rather than copied) that a writer thread (vectored `write`) and a hasher thread
//! consume at their own pace while the runtime reads the next ones; a short bounded queue caps
//! memory. A third thread `fdatasync`s whenever [`FLUSH_EVERY_BYTES`] are unflushed, so that the
//! disk works during the upload rather than all at the end (`pipeline.rs`).
//! Content enters `blobs/` only through a rename, after its digest was checked and its bytes
//! were flushed with `fsync`; the directory is synced afterwards.
//!
//! An append that returns is durable: its bytes are flushed, then its new size is written to
//! the `acked` record and flushed, so that after a crash (even a power loss) the session resumes
//! exactly at the last size a client was told, dropping the bytes of a request that never
//! completed. The record alternates between two checksummed slots overwritten in place, so
//! updating it costs one small flush and never a directory operation, and a torn write leaves
//! the previous slot valid (`acked.rs`). The session's directory entries are synced once, at its
//! first acknowledged append.
//!
//! The last bytes of an upload and its commit are one operation ([`BlobStore::upload_finish`]):
//! the bytes are appended without acknowledging them, the whole content is verified, and only a
//! match goes further. A mismatch, a broken body or a failure before the rename truncates the
//! file back, so the session is exactly as it was. A match is committed in this order: the
//! bytes are flushed, the *commit record* (digest and size) is written into the `acked` file
//! (and flushed, for a session whose directory was synced by an acknowledged append: one that
//! never had one may vanish in a power loss anyway), the file's modification time is set to now
//! (garbage collection's grace period for files no record knows counts from it), and the file is
//! renamed into `blobs/` (or dropped if the store already holds that content, whose file is
//! touched instead). The session directory stays, holding the commit
//! record, until the caller has recorded the blob in metadata and releases it with
//! [`BlobStore::upload_abort`]. So a crash at any point leaves either an open session at its
//! acknowledged size (no rename yet: recovery drops the unacknowledged bytes and the record) or
//! a committed one that [`BlobStore::upload_inventory`] reports with its digest, for start-up
//! to link (see `crate::maintenance`).
//!
//! Upload sessions live on disk; memory only caches each session's acknowledged size and hashing
//! progress (`Session`). A restarted process finds its sessions with their sizes, and a commit
//! re-hashes from disk whatever that cache cannot vouch for, so nothing unverified ever reaches
//! `blobs/`. An append that fails (client stream error, size limit, I/O) truncates the file back
//! to its size before the append, so a retry from the reported offset works.
//!
//! Reads hand the HTTP layer chunks of [`READ_CHUNK_BYTES`] read on the blocking pool straight
//! into the buffers that are sent (one copy out of the page cache), one chunk ahead of the
//! consumer (`read.rs`).
//!
//! Test hook: when the environment variable `WHARF_TEST_PAUSE_AFTER_BLOB_COMMIT_MS` is set at
//! [`FsBlobStore::open`], a commit sleeps that long right after its rename, so that the crash
//! tests can kill the process between the rename and the metadata write. It is read once; unset
//! (always, outside tests) it costs nothing.
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
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::sync::Mutex as AsyncMutex;
use wharf_oci::{Digest, DigestAlgorithm, Hasher};

use self::acked::{
    ACKED_RECORD, clear_commit, create_acked, newest_acked, read_commit, read_legacy_acked, write_acked, write_commit,
};
use self::pipeline::{AppendFailure, Appended, hash_file_from, stream_into};
pub use self::pipeline::{BATCH_BYTES, FLUSH_EVERY_BYTES};
pub use self::read::READ_CHUNK_BYTES;
use self::read::{BlobChunks, read_chunk};
use crate::{
    BlobListing, BlobStore, ByteStream, Result, StorageError, StoredBlob, UploadId, UploadOnDisk, UploadState,
};

/// The test-only pause after a commit's rename (see the module documentation).
pub const TEST_COMMIT_PAUSE_ENV: &str = "WHARF_TEST_PAUSE_AFTER_BLOB_COMMIT_MS";

/// One upload session as this process knows it.
struct Session {
    /// The size last acknowledged to a client (what status reports). Changes only under
    /// `state`'s lock, and only once the bytes and the record are durable.
    acked: AtomicU64,
    /// Set once the session is committed or aborted: it takes no more appends.
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
    /// The test-only pause after a commit's rename.
    commit_pause: Option<Duration>,
    /// Held while content is put into `blobs/` and while a blob is removed only if idle, so
    /// that the two never interleave (see [`BlobStore::delete_if_idle`]).
    installing: Installing,
}

/// The lock of [`FsBlobStore::installing`], shared with the blocking threads that commit.
type Installing = Arc<SyncMutex<()>>;

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
        let commit_pause =
            std::env::var(TEST_COMMIT_PAUSE_ENV).ok().and_then(|v| v.parse().ok()).map(Duration::from_millis);
        if let Some(pause) = commit_pause {
            tracing::warn!(
                ?pause,
                "{TEST_COMMIT_PAUSE_ENV} is set: every blob commit pauses after its rename (tests only)"
            );
        }
        Ok(FsBlobStore::new(root, commit_pause))
    }

    /// Opens an existing blob store below `root` without changing anything (no directory is
    /// created, no leftover removed), for offline checks. `NotFound` if there is none.
    pub fn open_existing(root: PathBuf) -> Result<FsBlobStore> {
        for dir in ["blobs", "uploads"] {
            if !root.join(dir).is_dir() {
                return Err(StorageError::NotFound);
            }
        }
        Ok(FsBlobStore::new(root, None))
    }

    fn new(root: PathBuf, commit_pause: Option<Duration>) -> FsBlobStore {
        FsBlobStore {
            root,
            sessions: Arc::new(SyncMutex::new(HashMap::new())),
            recovering: AsyncMutex::new(()),
            commit_pause,
            installing: Arc::new(SyncMutex::new(())),
        }
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
/// size), the record's sequence number and the digest algorithm. `None` if there is no open
/// session (none at all, or a committed one). A commit record next to the bytes is what a crash
/// before the commit's rename leaves: the session resumes, and the record is dropped.
fn recover_session(dir: &Path) -> io::Result<Option<(u64, u64, Option<DigestAlgorithm>)>> {
    let mut size = match std::fs::metadata(dir.join("data")) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let (seq, acked) = match std::fs::read(dir.join(ACKED_RECORD)) {
        Ok(record) => {
            if read_commit(&record).is_some() {
                tracing::info!(dir = %dir.display(), "a commit was interrupted before its content moved; the session resumes");
                clear_commit(dir)?;
            }
            // No valid slot: nothing was acknowledged yet (or, for a session of the previous
            // layout, the record only holds a commit record).
            newest_acked(&record).or_else(|| read_legacy_acked(dir).map(|size| (0, size))).unwrap_or((0, 0))
        }
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

/// Sets a committed blob's modification time to now: garbage collection leaves files that no
/// record knows alone for a grace period counted from it, which must cover a commit whose
/// metadata write is still to come.
fn touch(path: &Path) -> io::Result<()> {
    File::open(path)?.set_modified(SystemTime::now())
}

/// Moves a fully written, synced file into the content store, its modification time set to now.
/// If the blob already exists the new copy is discarded (content addressing makes both
/// identical) and the stored one is touched instead.
fn install(source: &Path, target: &Path, blobs_root: &Path, installing: &Installing) -> io::Result<()> {
    let _installing = installing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if target.exists() {
        touch(target)?;
        return std::fs::remove_file(source);
    }
    touch(source)?;
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

fn append_error(failure: AppendFailure) -> StorageError {
    match failure {
        AppendFailure::Client(e) => StorageError::ClientStream(e),
        AppendFailure::TooLarge => StorageError::UploadTooLarge,
        AppendFailure::Io(e) => StorageError::Io(e),
    }
}

/// How far a commit got when it did not fully succeed.
enum CommitFailure {
    /// Nothing was committed: the session must be rolled back to its acknowledged size.
    Before(StorageError),
    /// The content was renamed into the store, but making that durable failed: the session is
    /// committed (and left for recovery to complete), the caller gets the error.
    After(StorageError),
}

/// What a commit needs once the bytes are appended and the session lock is held.
struct CommitStep {
    expected: Digest,
    size: u64,
    paths: SessionPaths,
    target: PathBuf,
    blobs_root: PathBuf,
    installing: Installing,
    /// Flush the commit record: the session's directory entries are on disk (it had an
    /// acknowledged append), so the record must survive a power loss that the rename survives.
    /// A session that never had one may vanish in a power loss anyway (its directory was never
    /// synced, as before); for it the record only has to survive the process, which an unflushed
    /// write does.
    durable_record: bool,
    pause: Option<Duration>,
}

impl CommitStep {
    /// Verifies the content (with `hasher` if it saw every byte, from disk otherwise) and
    /// commits it: flush, commit record, rename. Blocking.
    fn run(self, file: File, hasher: Option<Hasher>) -> Result<(), CommitFailure> {
        use CommitFailure::{After, Before};
        let actual = match hasher {
            Some(h) => h.finish(),
            None => {
                let mut h = Hasher::new(self.expected.algorithm());
                let end = hash_file_from(&self.paths.data, 0, &mut h).map_err(|e| Before(e.into()))?;
                if end != self.size {
                    return Err(Before(StorageError::Corrupt(
                        "upload data changed while it was being verified".into(),
                    )));
                }
                h.finish()
            }
        };
        if actual != self.expected {
            return Err(Before(StorageError::DigestMismatch { expected: self.expected, actual }));
        }
        let prepared = (|| -> io::Result<()> {
            if !self.target.exists() {
                file.sync_data()?;
            }
            drop(file);
            write_commit(&self.paths.dir, &self.expected, self.size, self.durable_record)
        })();
        prepared.map_err(|e| Before(e.into()))?;
        if let Err(e) = install(&self.paths.data, &self.target, &self.blobs_root, &self.installing) {
            // Renamed (the data left the session and is in place) but not synced: committed.
            let moved = !self.paths.data.exists() && self.target.exists();
            return Err(if moved { After(e.into()) } else { Before(e.into()) });
        }
        if let Some(pause) = self.pause {
            std::thread::sleep(pause);
        }
        Ok(())
    }
}

/// An operation on one upload session, owning what it needs so that it runs in a task of its
/// own: a caller dropping its future (client gone) cannot leave it half done.
struct SessionOp {
    sessions: Sessions,
    id: UploadId,
    paths: SessionPaths,
    blobs_root: PathBuf,
    commit_pause: Option<Duration>,
    installing: Installing,
}

impl SessionOp {
    /// Appends `body` at `offset`; the bytes and the new acknowledged size are flushed before
    /// this returns.
    async fn append(
        &self,
        session: &Session,
        state: &mut SessionState,
        offset: u64,
        body: ByteStream,
        max_len: Option<u64>,
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
            Ok(Appended { bytes: 0, hasher, .. }) => {
                state.hasher = hasher;
                return Ok(current);
            }
            Ok(Appended { bytes, flushed, file, hasher }) => {
                let new_size = current + bytes;
                let seq = state.seq + 1;
                let sync_dirs = !state.dir_synced;
                // A flush covers the whole file: the flusher's last one covered everything
                // before this append's end only if it came after the last byte.
                let sync_data = flushed < bytes;
                let paths = self.paths.clone();
                let recorded = blocking(move || -> io::Result<File> {
                    if sync_data {
                        file.sync_data()?;
                    }
                    write_acked(&paths.dir, seq, new_size, true)?;
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
        Err(append_error(failure))
    }

    /// Appends the last bytes at `offset` without acknowledging them, then verifies the whole
    /// content against `expected` and commits it to `target` (see the module documentation).
    /// Anything short of a commit leaves the session as it was before the call.
    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        session: &Session,
        state: &mut SessionState,
        offset: u64,
        body: ByteStream,
        max_len: Option<u64>,
        expected: &Digest,
        target: PathBuf,
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
        let (hashed_before, snapshot) = (state.hashed, state.hasher.clone());
        // Hash while the bytes stream in only with a hasher of the expected algorithm that has
        // seen exactly the bytes on disk; otherwise the commit re-hashes the file.
        let hasher = match state.hasher.take() {
            Some(h) if hashed_before == current && h.algorithm() == expected.algorithm() => Some(h),
            _ => None,
        };
        let (file, hasher, size) = match stream_into(file, hasher, body, max_len).await {
            Ok(Appended { bytes, file, hasher, .. }) => (file, hasher, current + bytes),
            Err((failure, file)) => {
                self.roll_back(state, current, file, hashed_before, snapshot).await?;
                return Err(append_error(failure));
            }
        };
        let step = CommitStep {
            expected: expected.clone(),
            size,
            paths: self.paths.clone(),
            target,
            blobs_root: self.blobs_root.clone(),
            installing: self.installing.clone(),
            durable_record: state.dir_synced,
            pause: self.commit_pause,
        };
        match blocking(move || step.run(file, hasher)).await? {
            Ok(()) => {}
            Err(CommitFailure::Before(e)) => {
                tracing::debug!(upload = %self.id, size = current, error = %e, "final append not committed; truncating the session back");
                self.roll_back(state, current, None, hashed_before, snapshot).await?;
                return Err(e);
            }
            Err(CommitFailure::After(e)) => {
                tracing::error!(upload = %self.id, error = %e, "a committed upload could not be made durable; recovery completes it");
                self.close(session);
                return Err(e);
            }
        }
        state.hasher = None;
        self.close(session);
        Ok(size)
    }

    /// Takes the session back to `size` bytes (its acknowledged size) with its hashing
    /// progress, dropping any commit record.
    async fn roll_back(
        &self,
        state: &mut SessionState,
        size: u64,
        file: Option<File>,
        hashed: u64,
        hasher: Option<Hasher>,
    ) -> Result<()> {
        let paths = self.paths.clone();
        blocking(move || -> Result<()> {
            let file = match file {
                Some(f) => f,
                None => match OpenOptions::new().write(true).open(&paths.data) {
                    Ok(f) => f,
                    // Cancelled (or its registry deleted) while the request ran.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StorageError::UploadUnknown),
                    Err(e) => return Err(e.into()),
                },
            };
            file.set_len(size)?;
            Ok(clear_commit(&paths.dir)?)
        })
        .await??;
        state.hashed = hashed;
        state.hasher = hasher;
        Ok(())
    }

    /// Forgets a committed session: it takes no more requests. Its directory stays, with the
    /// commit record, until it is released.
    fn close(&self, session: &Session) {
        session.closed.store(true, Ordering::Release);
        self.sessions.lock().expect("session map poisoned").remove(&self.id);
    }
}

impl FsBlobStore {
    fn op(&self, id: &UploadId) -> SessionOp {
        SessionOp {
            sessions: self.sessions.clone(),
            id: id.clone(),
            paths: self.session_paths(id),
            blobs_root: self.root.join("blobs"),
            commit_pause: self.commit_pause,
            installing: self.installing.clone(),
        }
    }
}

/// Lists `dir`'s entries sorted by name (an absent directory has none).
fn sorted_entries(dir: &Path) -> io::Result<Vec<std::fs::DirEntry>> {
    let mut entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd.collect::<io::Result<Vec<_>>>()?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    entries.sort_by_key(|e| e.file_name());
    Ok(entries)
}

/// Walks `blobs/{algorithm}/{xx}/{hex}` in digest order, sending each blob found. Names that are
/// not a digest in its right place are skipped. Stops early when the receiver is gone.
fn walk_blobs(root: &Path, tx: &tokio::sync::mpsc::Sender<Result<StoredBlob>>) -> io::Result<()> {
    for algorithm in sorted_entries(root)? {
        let Some(alg) = algorithm.file_name().to_str().and_then(|a| a.parse::<DigestAlgorithm>().ok()) else {
            continue;
        };
        for prefix in sorted_entries(&algorithm.path())? {
            let prefix_name = prefix.file_name();
            for file in sorted_entries(&prefix.path())? {
                let name = file.file_name();
                let Some(hex) = name.to_str() else { continue };
                let Ok(digest) = Digest::parse(&format!("{}:{hex}", alg.as_str())) else { continue };
                if prefix_name.to_str() != Some(&digest.hex()[..2]) {
                    continue;
                }
                let meta = file.metadata()?;
                if !meta.is_file() {
                    continue;
                }
                let blob = StoredBlob { digest, size: meta.len(), modified: DateTime::<Utc>::from(meta.modified()?) };
                if tx.blocking_send(Ok(blob)).is_err() {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

/// What is on disk of one upload session directory.
fn inspect_session(id: UploadId, dir: &Path) -> io::Result<UploadOnDisk> {
    match std::fs::metadata(dir.join("data")) {
        Ok(m) => return Ok(UploadOnDisk { id, state: UploadState::Open, modified: m.modified()?.into() }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let modified = std::fs::metadata(dir)?.modified()?.into();
    let state = match std::fs::read(dir.join(ACKED_RECORD)) {
        Ok(record) => match read_commit(&record) {
            Some((digest, size)) => UploadState::Committed { digest, size },
            None => UploadState::Empty,
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => UploadState::Empty,
        Err(e) => return Err(e),
    };
    Ok(UploadOnDisk { id, state, modified })
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

    async fn blob_info(&self, digest: &Digest) -> Result<Option<StoredBlob>> {
        match tokio::fs::metadata(self.blob_path(digest)).await {
            Ok(m) => Ok(Some(StoredBlob { digest: digest.clone(), size: m.len(), modified: m.modified()?.into() })),
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
        let installing = self.installing.clone();
        blocking(move || -> Result<()> {
            // Verified even when the blob exists: wrong bytes are an error, not a no-op.
            let actual = Digest::of(expected.algorithm(), &bytes);
            if actual != expected {
                return Err(StorageError::DigestMismatch { expected, actual });
            }
            if target.exists() {
                let _installing = installing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                return Ok(touch(&target)?);
            }
            let written = (|| -> io::Result<()> {
                let mut f = File::create(&tmp)?;
                f.write_all(&bytes)?;
                f.sync_data()?;
                drop(f);
                install(&tmp, &target, &blobs_root, &installing)
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

    async fn delete_if_idle(&self, digest: &Digest, written_before: DateTime<Utc>) -> Result<bool> {
        let (path, installing) = (self.blob_path(digest), self.installing.clone());
        let removed = blocking(move || -> io::Result<bool> {
            let _installing = installing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let modified = match std::fs::metadata(&path) {
                Ok(m) => DateTime::<Utc>::from(m.modified()?),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(e),
            };
            if modified >= written_before {
                return Ok(false);
            }
            std::fs::remove_file(&path)?;
            Ok(true)
        })
        .await??;
        Ok(removed)
    }

    async fn blob_list(&self) -> Result<BlobListing> {
        let root = self.root.join("blobs");
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<StoredBlob>>(256);
        tokio::task::spawn_blocking(move || {
            if let Err(e) = walk_blobs(&root, &tx) {
                let _ = tx.blocking_send(Err(e.into()));
            }
        });
        Ok(Box::pin(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) })))
    }

    async fn quarantine(&self, digest: &Digest) -> Result<()> {
        let (source, dir) = (self.blob_path(digest), self.root.join("quarantine"));
        let stamp = Utc::now().format("%Y%m%dT%H%M%S%.6fZ");
        let target = dir.join(format!("{}-{}-{stamp}", digest.algorithm().as_str(), digest.hex()));
        blocking(move || -> io::Result<()> {
            if !source.exists() {
                return Ok(());
            }
            std::fs::create_dir_all(&dir)?;
            std::fs::rename(&source, &target)?;
            sync_dir(&dir)?;
            match source.parent() {
                Some(parent) => sync_dir(parent),
                None => Ok(()),
            }
        })
        .await??;
        Ok(())
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
        let session = self.session(id).await?;
        let op = self.op(id);
        // In a task of its own holding the session's lock (see [`SessionOp`]).
        let task = tokio::spawn(async move {
            let mut state = session.state.lock().await;
            op.append(&session, &mut state, offset, body, max_len).await
        });
        task.await.map_err(|e| StorageError::Io(join_error(e)))?
    }

    async fn upload_finish(
        &self,
        id: &UploadId,
        offset: u64,
        body: ByteStream,
        max_len: Option<u64>,
        expected: &Digest,
    ) -> Result<u64> {
        let session = self.session(id).await?;
        let op = self.op(id);
        let (expected, target) = (expected.clone(), self.blob_path(expected));
        let task = tokio::spawn(async move {
            let mut state = session.state.lock().await;
            op.finish(&session, &mut state, offset, body, max_len, &expected, target).await
        });
        task.await.map_err(|e| StorageError::Io(join_error(e)))?
    }

    async fn upload_size(&self, id: &UploadId) -> Result<u64> {
        // Loading the session recovers it from an interrupted append first.
        let session = self.session(id).await?;
        Ok(session.acked.load(Ordering::Acquire))
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
        let inventory = self.upload_inventory().await?;
        Ok(inventory.into_iter().filter(|u| u.state == UploadState::Open).map(|u| u.id).collect())
    }

    async fn upload_inventory(&self) -> Result<Vec<UploadOnDisk>> {
        let dir = self.root.join("uploads");
        blocking(move || -> io::Result<Vec<UploadOnDisk>> {
            let mut found = Vec::new();
            for entry in sorted_entries(&dir)? {
                let Some(id) = entry.file_name().to_str().and_then(UploadId::parse) else { continue };
                if !entry.file_type()?.is_dir() {
                    continue;
                }
                match inspect_session(id, &entry.path()) {
                    Ok(u) => found.push(u),
                    // Removed while it was being looked at (released, aborted).
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(found)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn body(data: &[u8]) -> ByteStream {
        let chunk = Bytes::copy_from_slice(data);
        Box::pin(futures::stream::iter([Ok(chunk)]))
    }

    /// The process dies after the commit record was written but before the rename: the session
    /// resumes at its acknowledged size, the unacknowledged bytes and the record dropped.
    #[tokio::test]
    async fn a_commit_interrupted_before_its_rename_resumes_the_session() {
        let dir = tempfile::tempdir().unwrap();
        let id = UploadId::new();
        let data = b"acknowledged bytes, then the last ones".to_vec();
        let digest = Digest::sha256_of(&data);
        let session_dir = dir.path().join("uploads").join(id.as_str());
        {
            let s = FsBlobStore::open(dir.path().to_path_buf()).unwrap();
            s.upload_create(&id, DigestAlgorithm::Sha256).await.unwrap();
            s.upload_append(&id, 0, body(&data[..19]), None).await.unwrap();
        }
        // What the final request had done when the process died.
        let mut f = OpenOptions::new().append(true).open(session_dir.join("data")).unwrap();
        f.write_all(&data[19..]).unwrap();
        write_commit(&session_dir, &digest, data.len() as u64, true).unwrap();

        let s = FsBlobStore::open(dir.path().to_path_buf()).unwrap();
        let inventory = s.upload_inventory().await.unwrap();
        assert_eq!(inventory.len(), 1);
        assert_eq!(inventory[0].state, UploadState::Open, "no rename happened: the session is open");
        assert_eq!(s.upload_size(&id).await.unwrap(), 19);
        assert_eq!(read_commit(&std::fs::read(session_dir.join(ACKED_RECORD)).unwrap()), None);
        assert_eq!(std::fs::metadata(session_dir.join("data")).unwrap().len(), 19);
        assert_eq!(s.stat(&digest).await.unwrap(), None);
        // The client retries its final request, which commits.
        assert_eq!(s.upload_finish(&id, 19, body(&data[19..]), None, &digest).await.unwrap(), data.len() as u64);
        assert_eq!(s.stat(&digest).await.unwrap(), Some(data.len() as u64));
    }

    /// A commit's rename sets the blob's modification time to now, also when the store already
    /// held the content, so garbage collection's grace period covers the metadata write to come.
    #[tokio::test]
    async fn a_commit_refreshes_the_blob_files_time() {
        let dir = tempfile::tempdir().unwrap();
        let s = FsBlobStore::open(dir.path().to_path_buf()).unwrap();
        let data = b"old content".to_vec();
        let digest = Digest::sha256_of(&data);
        let long_ago = SystemTime::now() - Duration::from_secs(7200);
        for round in 0..2 {
            let id = UploadId::new();
            s.upload_create(&id, DigestAlgorithm::Sha256).await.unwrap();
            s.upload_append(&id, 0, body(&data), None).await.unwrap();
            File::open(dir.path().join("uploads").join(id.as_str()).join("data"))
                .unwrap()
                .set_modified(long_ago)
                .unwrap();
            s.upload_commit(&id, &digest).await.unwrap();
            let info = s.blob_info(&digest).await.unwrap().unwrap();
            let age = Utc::now() - info.modified;
            assert!(age < chrono::Duration::seconds(60), "round {round}: the blob file is {age} old");
            File::open(s.blob_path(&digest)).unwrap().set_modified(long_ago).unwrap();
        }
    }
}
