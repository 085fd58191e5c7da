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

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::{self, IoSlice, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex as SyncMutex};
use std::task::{Context, Poll};

use async_trait::async_trait;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::sync::Mutex as AsyncMutex;
use tokio::task::JoinHandle;
use wharf_oci::{Digest, DigestAlgorithm, Hasher};

use crate::{BlobStore, ByteStream, Result, StorageError, UploadId};

/// Bytes gathered from the client before they are written and hashed together.
pub const BATCH_BYTES: usize = 1024 * 1024;
/// Size of each read when streaming a blob out: large enough that the per-chunk costs (a
/// blocking-pool round trip, an allocation, a `writev`) are small next to copying the bytes,
/// small enough that a download holds little memory (the chunk being sent and the one read
/// ahead).
pub const READ_CHUNK_BYTES: usize = 512 * 1024;
const REHASH_BUFFER_BYTES: usize = 1024 * 1024;

/// Name of the acknowledged-size record in a session directory.
const ACKED_RECORD: &str = "acked";
/// Bytes of one slot of the acknowledged-size record; the record holds two.
const ACKED_SLOT_BYTES: usize = 64;

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

/// Writes every byte of `batch` with vectored writes (no copy into an intermediate buffer).
fn write_batch(file: &mut File, batch: &[Bytes]) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = batch.iter().map(|b| IoSlice::new(b)).collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        match file.write_vectored(rest) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "failed to write upload data")),
            Ok(n) => IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Batches queued ahead of the writer and the hasher (each), bounding an append's memory to
/// about `(QUEUE_DEPTH + 1) * BATCH_BYTES`.
const QUEUE_DEPTH: usize = 4;

/// Unflushed bytes after which the flusher thread calls `fdatasync`, so that the disk works
/// while the rest streams in and the final flush (of an acknowledged append, or of the commit)
/// only has the tail left. Each flush covers everything written by then, so flushes grow
/// when the disk is slower than the client.
pub const FLUSH_EVERY_BYTES: u64 = 8 * 1024 * 1024;

type Batch = Arc<Vec<Bytes>>;

/// Writes batches to `file` until the queue closes, reporting the bytes written so far.
fn writer_thread(
    mut file: File,
    mut queue: tokio::sync::mpsc::Receiver<Batch>,
    progress: std::sync::mpsc::Sender<u64>,
) -> (File, io::Result<()>) {
    let mut written = 0u64;
    while let Some(batch) = queue.blocking_recv() {
        if let Err(e) = write_batch(&mut file, &batch) {
            return (file, Err(e));
        }
        written += batch.iter().map(|b| b.len() as u64).sum::<u64>();
        // A gone flusher has failed; its error is reported when it is joined.
        let _ = progress.send(written);
    }
    (file, Ok(()))
}

/// Flushes the file (through its own handle) whenever enough was written since the last flush,
/// without ever holding up the writer: the disk and the writer work at the same time. Returns
/// how many of the appended bytes it flushed.
fn flusher_thread(file: File, progress: std::sync::mpsc::Receiver<u64>, every: u64) -> io::Result<u64> {
    let mut flushed = 0u64;
    while let Ok(mut written) = progress.recv() {
        while let Ok(newer) = progress.try_recv() {
            written = newer;
        }
        if written - flushed >= every {
            file.sync_data()?;
            flushed = written;
        }
    }
    Ok(flushed)
}

fn hasher_thread(mut hasher: Hasher, mut queue: tokio::sync::mpsc::Receiver<Batch>) -> Hasher {
    while let Some(batch) = queue.blocking_recv() {
        for chunk in batch.iter() {
            hasher.update(chunk);
        }
    }
    hasher
}

enum AppendFailure {
    Client(io::Error),
    TooLarge,
    Io(io::Error),
}

/// What [`stream_into`] appended.
struct Appended {
    bytes: u64,
    /// How many of `bytes` are already flushed.
    flushed: u64,
    file: File,
    hasher: Option<Hasher>,
}

/// Streams `body` to the end of `file` (positioned at its end), hashing with `hasher` when
/// given. The body is read here, on the runtime, while a writer thread and a hasher thread
/// consume the same batches (shared, not copied) at their own pace. Returns what was appended
/// with the file and the advanced hasher; on failure, the file (if still usable). An empty body
/// starts no thread.
async fn stream_into(
    file: File,
    hasher: Option<Hasher>,
    mut body: ByteStream,
    allowed: Option<u64>,
) -> Result<Appended, (AppendFailure, Option<File>)> {
    let first = loop {
        match body.next().await {
            None => return Ok(Appended { bytes: 0, flushed: 0, file, hasher }),
            Some(Ok(chunk)) if chunk.is_empty() => continue,
            Some(Ok(chunk)) => break chunk,
            Some(Err(e)) => return Err((AppendFailure::Client(e), Some(file))),
        }
    };
    let mut body = futures::stream::iter([Ok(first)]).chain(body);
    let flush_handle = match file.try_clone() {
        Ok(f) => f,
        Err(e) => return Err((AppendFailure::Io(e), Some(file))),
    };
    let (progress_tx, progress_rx) = std::sync::mpsc::channel::<u64>();
    let flusher = tokio::task::spawn_blocking(move || flusher_thread(flush_handle, progress_rx, FLUSH_EVERY_BYTES));
    let (write_tx, write_rx) = tokio::sync::mpsc::channel::<Batch>(QUEUE_DEPTH);
    let writer = tokio::task::spawn_blocking(move || writer_thread(file, write_rx, progress_tx));
    let (hash_tx, hasher) = match hasher {
        Some(h) => {
            let (tx, rx) = tokio::sync::mpsc::channel::<Batch>(QUEUE_DEPTH);
            (Some(tx), Some(tokio::task::spawn_blocking(move || hasher_thread(h, rx))))
        }
        None => (None, None),
    };
    let mut batch: Vec<Bytes> = Vec::new();
    let mut batch_len = 0usize;
    let mut total = 0u64;
    let mut failure = None;

    loop {
        let last = match body.next().await {
            Some(Ok(chunk)) => {
                total += chunk.len() as u64;
                if allowed.is_some_and(|a| total > a) {
                    failure = Some(AppendFailure::TooLarge);
                    break;
                }
                if !chunk.is_empty() {
                    batch_len += chunk.len();
                    batch.push(chunk);
                }
                false
            }
            Some(Err(e)) => {
                failure = Some(AppendFailure::Client(e));
                break;
            }
            None => true,
        };
        if batch_len >= BATCH_BYTES || (last && !batch.is_empty()) {
            let ready: Batch = Arc::new(std::mem::take(&mut batch));
            batch_len = 0;
            // A closed queue means that thread stopped on an error, reported when joined.
            if let Some(tx) = &hash_tx
                && tx.send(ready.clone()).await.is_err()
            {
                break;
            }
            if write_tx.send(ready).await.is_err() {
                break;
            }
        }
        if last {
            break;
        }
    }
    drop(write_tx);
    drop(hash_tx);
    let hasher = match hasher {
        Some(h) => Some(h.await.map_err(|e| (AppendFailure::Io(join_error(e)), None))?),
        None => None,
    };
    let (file, written) = writer.await.map_err(|e| (AppendFailure::Io(join_error(e)), None))?;
    let flushed = flusher.await.map_err(join_error).and_then(|r| r);
    match (failure, written, flushed) {
        (Some(f), _, _) => Err((f, Some(file))),
        (None, Err(e), _) | (None, Ok(()), Err(e)) => Err((AppendFailure::Io(e), Some(file))),
        (None, Ok(()), Ok(flushed)) => Ok(Appended { bytes: total, flushed, file, hasher }),
    }
}

/// Feeds `path` from byte `from` to its end into `hasher`.
fn hash_file_from(path: &Path, from: u64, hasher: &mut Hasher) -> io::Result<u64> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(from))?;
    let mut buf = vec![0u8; REHASH_BUFFER_BYTES];
    let mut pos = from;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => return Ok(pos),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        pos += n as u64;
    }
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

/// Reads `len` bytes at the file's position into a new buffer (not zeroed first:
/// `read_to_end` fills spare capacity). A file that ends early is an error.
fn read_chunk(file: &File, len: u64) -> io::Result<Bytes> {
    let mut buf = Vec::with_capacity(len as usize);
    file.take(len).read_to_end(&mut buf)?;
    if (buf.len() as u64) < len {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "blob file is shorter than its recorded size"));
    }
    Ok(Bytes::from(buf))
}

/// A committed blob, or a range of it, as chunks of [`READ_CHUNK_BYTES`] read on the blocking
/// pool, the next one being read while the consumer sends the last.
struct BlobChunks {
    /// Bytes not yet asked of the file.
    unread: u64,
    ready: Option<Bytes>,
    reading: Option<JoinHandle<(File, io::Result<Bytes>)>>,
}

impl BlobChunks {
    fn new(file: File, first: Bytes, unread: u64) -> BlobChunks {
        let mut chunks = BlobChunks { unread, ready: (!first.is_empty()).then_some(first), reading: None };
        chunks.read_ahead(file);
        chunks
    }

    fn read_ahead(&mut self, file: File) {
        if self.unread == 0 {
            return;
        }
        let len = self.unread.min(READ_CHUNK_BYTES as u64);
        self.unread -= len;
        self.reading = Some(tokio::task::spawn_blocking(move || {
            let chunk = read_chunk(&file, len);
            (file, chunk)
        }));
    }
}

impl Stream for BlobChunks {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(chunk) = this.ready.take() {
            return Poll::Ready(Some(Ok(chunk)));
        }
        let Some(reading) = this.reading.as_mut() else { return Poll::Ready(None) };
        let done = std::task::ready!(Pin::new(reading).poll(cx));
        this.reading = None;
        match done {
            Ok((file, Ok(chunk))) => {
                this.read_ahead(file);
                Poll::Ready(Some(Ok(chunk)))
            }
            Ok((_, Err(e))) => {
                this.unread = 0;
                Poll::Ready(Some(Err(e)))
            }
            Err(e) => {
                this.unread = 0;
                Poll::Ready(Some(Err(join_error(e))))
            }
        }
    }
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

// ---- the acknowledged-size record ----
//
// Two slots of `ACKED_SLOT_BYTES`, each `{seq:020} {size:020} {check:016x}` padded with spaces
// and ended by a newline, where `check` is FNV-1a of the first two fields. Record `seq` goes to
// slot `seq % 2`, overwriting in place (no rename, so no directory change); the valid slot with
// the highest `seq` counts. A torn write spoils only the slot being written, whose append was
// not acknowledged yet.

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

fn acked_slot(seq: u64, size: u64) -> [u8; ACKED_SLOT_BYTES] {
    let fields = format!("{seq:020} {size:020}");
    let line = format!("{fields} {:016x}", fnv1a(fields.as_bytes()));
    let mut slot = [b' '; ACKED_SLOT_BYTES];
    slot[..line.len()].copy_from_slice(line.as_bytes());
    slot[ACKED_SLOT_BYTES - 1] = b'\n';
    slot
}

fn parse_acked_slot(slot: &[u8]) -> Option<(u64, u64)> {
    let mut words = std::str::from_utf8(slot).ok()?.split_ascii_whitespace();
    let (seq, size, check) = (words.next()?, words.next()?, words.next()?);
    if words.next().is_some() || check != format!("{:016x}", fnv1a(format!("{seq} {size}").as_bytes())) {
        return None;
    }
    Some((seq.parse().ok()?, size.parse().ok()?))
}

/// A new session's record: size 0 in slot 0, slot 1 blank.
fn create_acked(dir: &Path) -> io::Result<()> {
    let mut record = acked_slot(0, 0).to_vec();
    record.extend_from_slice(&[b' '; ACKED_SLOT_BYTES - 1]);
    record.push(b'\n');
    std::fs::write(dir.join(ACKED_RECORD), record)
}

/// The newest valid slot of a session's record: (sequence number, acknowledged size).
fn newest_acked(record: &[u8]) -> Option<(u64, u64)> {
    record.chunks(ACKED_SLOT_BYTES).filter_map(parse_acked_slot).max_by_key(|&(seq, _)| seq)
}

/// Writes `size` as record `seq` into its slot, flushing it when `durable`.
fn write_acked(dir: &Path, seq: u64, size: u64, durable: bool) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create(true).truncate(false).open(dir.join(ACKED_RECORD))?;
    file.seek(SeekFrom::Start((seq % 2) * ACKED_SLOT_BYTES as u64))?;
    file.write_all(&acked_slot(seq, size))?;
    if durable {
        file.sync_data()?;
    }
    Ok(())
}

/// The acknowledged size as sessions created before the record existed kept it (a `size` file
/// replaced by rename).
fn read_legacy_acked(dir: &Path) -> Option<u64> {
    std::fs::read_to_string(dir.join("size")).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acked_record_round_trips_and_rejects_damage() {
        let slot = acked_slot(7, 123_456);
        assert_eq!(slot.len(), ACKED_SLOT_BYTES);
        assert_eq!(parse_acked_slot(&slot), Some((7, 123_456)));
        let mut torn = slot;
        torn[30] = b'9';
        assert_eq!(parse_acked_slot(&torn), None);
        assert_eq!(parse_acked_slot(&[b' '; ACKED_SLOT_BYTES]), None);
        assert_eq!(parse_acked_slot(&[0; ACKED_SLOT_BYTES]), None);
    }

    #[test]
    fn newest_valid_slot_wins() {
        let dir = tempfile::tempdir().unwrap();
        let read = || newest_acked(&std::fs::read(dir.path().join(ACKED_RECORD)).unwrap());
        create_acked(dir.path()).unwrap();
        assert_eq!(read(), Some((0, 0)));
        write_acked(dir.path(), 1, 10, false).unwrap();
        write_acked(dir.path(), 2, 20, true).unwrap();
        assert_eq!(read(), Some((2, 20)));
        // A torn write of record 3 (slot 1) leaves record 2 in force.
        let path = dir.path().join(ACKED_RECORD);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[ACKED_SLOT_BYTES..ACKED_SLOT_BYTES + 10].copy_from_slice(b"0000000000");
        bytes[ACKED_SLOT_BYTES + 25] = b'x';
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(read(), Some((2, 20)));
    }
}
