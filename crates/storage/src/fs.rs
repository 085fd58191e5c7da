//! The filesystem blob store: committed blobs and upload sessions under one directory.
//!
//! Owns the on-disk layout below `root` and nothing else:
//!
//! ```text
//! root/blobs/{algorithm}/{first two hex}/{hex}   committed, immutable content
//! root/uploads/{upload id}/data                  bytes received so far
//! root/uploads/{upload id}/algorithm             digest algorithm chosen at creation
//! root/tmp/                                      temp files of `put_bytes` (emptied at open)
//! ```
//!
//! Bytes are streamed: each append is cut into batches of about [`BATCH_BYTES`] (the client's
//! chunks, shared rather than copied) that a writer thread (vectored `write`) and a hasher thread
//! consume at their own pace while the runtime reads the next ones; a short bounded queue caps
//! memory. A third thread `fdatasync`s every [`FLUSH_EVERY_BYTES`] so that the disk works during
//! the upload rather than all at the commit.
//! Content enters `blobs/` only through a rename, after its digest was checked and its bytes
//! were flushed with `fsync`; the directory is synced afterwards.
//!
//! Upload sessions live entirely on disk; memory only caches each session's hashing progress
//! (`SessionState`). A restarted process finds its sessions with their sizes, and a commit
//! re-hashes from disk whatever that cache cannot vouch for, so nothing unverified ever reaches
//! `blobs/`. An append that fails (client stream error, size limit, I/O) truncates the file back
//! to its size before the append, so a retry from the reported offset works.
//!
//! This module must never build a path from anything but a validated [`Digest`] or
//! [`UploadId`], never hold a whole blob in memory, and never know which repository a blob
//! belongs to (visibility is metadata).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex as SyncMutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::Mutex as AsyncMutex;
use tokio_util::io::ReaderStream;
use wharf_oci::{Digest, DigestAlgorithm, Hasher};

use crate::{BlobStore, ByteStream, Result, StorageError, UploadId};

/// Bytes gathered from the client before they are written and hashed together.
pub const BATCH_BYTES: usize = 1024 * 1024;
/// Read size when streaming a blob out, and when re-hashing a session from disk.
pub const READ_BUFFER_BYTES: usize = 256 * 1024;
const REHASH_BUFFER_BYTES: usize = 1024 * 1024;

/// In-memory hashing progress of one upload session.
///
/// `hasher` has consumed exactly the first `hashed` bytes of the session's data file. It is
/// `None` when that is unknown: after a restart, or while an append is running (an append that
/// is abandoned halfway leaves it `None`, and the commit re-hashes from disk).
struct SessionState {
    hashed: u64,
    hasher: Option<Hasher>,
}

type Session = Arc<AsyncMutex<SessionState>>;

/// Content-addressed blobs and upload sessions on a local filesystem.
pub struct FsBlobStore {
    root: PathBuf,
    sessions: SyncMutex<HashMap<UploadId, Session>>,
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
        Ok(FsBlobStore { root, sessions: SyncMutex::new(HashMap::new()) })
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

    fn data_path(&self, id: &UploadId) -> PathBuf {
        self.upload_dir(id).join("data")
    }

    /// The session's in-memory state, rebuilt from disk when this process has not seen it yet.
    async fn session(&self, id: &UploadId) -> Result<Session> {
        if let Some(s) = self.sessions.lock().expect("session map poisoned").get(id) {
            return Ok(s.clone());
        }
        let dir = self.upload_dir(id);
        let (size, algorithm) = blocking(move || -> io::Result<Option<(u64, Option<DigestAlgorithm>)>> {
            let mut size = match std::fs::metadata(dir.join("data")) {
                Ok(m) => m.len(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            };
            // Bytes past the last acknowledged size belong to an append that never completed
            // (the process died mid-request): drop them, so the session resumes where the
            // client was told it stands.
            if let Some(acked) = read_acked(&dir) {
                if size > acked {
                    tracing::info!(dir = %dir.display(), size, acked, "dropping unacknowledged bytes of an interrupted upload");
                    OpenOptions::new().write(true).open(dir.join("data"))?.set_len(acked)?;
                    size = acked;
                }
            }
            let algorithm = std::fs::read_to_string(dir.join("algorithm"))
                .ok()
                .and_then(|s| s.trim().parse::<DigestAlgorithm>().ok());
            Ok(Some((size, algorithm)))
        })
        .await??
        .ok_or(StorageError::UploadUnknown)?;
        // An empty session can start hashing again; otherwise the commit catches up from disk.
        let hasher = if size == 0 { algorithm.map(Hasher::new) } else { None };
        let state = Arc::new(AsyncMutex::new(SessionState { hashed: 0, hasher }));
        let mut map = self.sessions.lock().expect("session map poisoned");
        Ok(map.entry(id.clone()).or_insert(state).clone())
    }

    fn forget_session(&self, id: &UploadId) {
        self.sessions.lock().expect("session map poisoned").remove(id);
    }
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
/// while the rest streams in and the commit's `fsync` only has the tail left.
pub const FLUSH_EVERY_BYTES: u64 = 16 * 1024 * 1024;

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
/// without ever holding up the writer: the disk and the writer work at the same time.
fn flusher_thread(file: File, progress: std::sync::mpsc::Receiver<u64>) -> io::Result<()> {
    let mut flushed = 0u64;
    while let Ok(mut written) = progress.recv() {
        while let Ok(newer) = progress.try_recv() {
            written = newer;
        }
        if written - flushed >= FLUSH_EVERY_BYTES {
            file.sync_data()?;
            flushed = written;
        }
    }
    Ok(())
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

/// Streams `body` to the end of `file` (positioned at its end), hashing with `hasher` when
/// given. The body is read here, on the runtime, while a writer thread and a hasher thread
/// consume the same batches (shared, not copied) at their own pace. Returns the bytes
/// appended, the file and the advanced hasher; on failure, the file (if still usable).
async fn stream_into(
    file: File,
    hasher: Option<Hasher>,
    mut body: ByteStream,
    allowed: Option<u64>,
) -> Result<(u64, File, Option<Hasher>), (AppendFailure, Option<File>)> {
    let flush_handle = match file.try_clone() {
        Ok(f) => f,
        Err(e) => return Err((AppendFailure::Io(e), Some(file))),
    };
    let (progress_tx, progress_rx) = std::sync::mpsc::channel::<u64>();
    let flusher = tokio::task::spawn_blocking(move || flusher_thread(flush_handle, progress_rx));
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
    match (failure, written.and(flushed)) {
        (Some(f), _) => Err((f, Some(file))),
        (None, Err(e)) => Err((AppendFailure::Io(e), Some(file))),
        (None, Ok(())) => Ok((total, file, hasher)),
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
        let mut file = match tokio::fs::File::open(self.blob_path(digest)).await {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StorageError::NotFound),
            Err(e) => return Err(e.into()),
        };
        file.set_max_buf_size(READ_BUFFER_BYTES);
        match range {
            Some(r) => {
                file.seek(SeekFrom::Start(r.start)).await?;
                let len = r.end.saturating_sub(r.start);
                Ok(Box::pin(ReaderStream::with_capacity(file.take(len), READ_BUFFER_BYTES)))
            }
            None => Ok(Box::pin(ReaderStream::with_capacity(file, READ_BUFFER_BYTES))),
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
            write_acked(&dir, 0)?;
            Ok(())
        })
        .await??;
        let state = SessionState { hashed: 0, hasher: Some(Hasher::new(algorithm)) };
        self.sessions.lock().expect("session map poisoned").insert(id.clone(), Arc::new(AsyncMutex::new(state)));
        Ok(())
    }

    async fn upload_append(&self, id: &UploadId, offset: u64, body: ByteStream, max_len: Option<u64>) -> Result<u64> {
        let session = self.session(id).await?;
        let id = id.clone();
        let path = self.data_path(&id);
        // The append runs in its own task holding the session lock, so that a caller dropping
        // this future (client gone) cannot leave a half-done append behind: the task sees the
        // body fail and truncates.
        let task = tokio::spawn(async move {
            let mut state = session.lock_owned().await;
            let opened = {
                let path = path.clone();
                blocking(move || -> io::Result<(File, u64)> {
                    let mut f = OpenOptions::new().write(true).open(&path)?;
                    let size = f.seek(SeekFrom::End(0))?;
                    Ok((f, size))
                })
                .await?
            };
            let (file, current) = match opened {
                Ok(v) => v,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StorageError::UploadUnknown),
                Err(e) => return Err(e.into()),
            };
            if offset != current {
                return Err(StorageError::UploadOffsetMismatch { current });
            }
            // Keep hashing incrementally only if the hasher has seen exactly the bytes on disk;
            // otherwise the commit re-hashes from disk.
            let hasher = if state.hashed == current { state.hasher.take() } else { None };
            let snapshot = hasher.clone();
            state.hasher = None;
            // `max_len` bounds what this call accepts; a caller capping the whole blob passes
            // `limit - offset`.
            match stream_into(file, hasher, body, max_len).await {
                Ok((n, file, hasher)) => {
                    drop(file);
                    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
                    let new_size = current + n;
                    blocking(move || write_acked(&dir, new_size)).await??;
                    state.hashed = new_size;
                    state.hasher = hasher;
                    Ok(new_size)
                }
                Err((failure, file)) => {
                    tracing::debug!(upload = %id, size = current, "append failed; truncating the session back");
                    // Back to the size before this append, so the client can retry from there.
                    let truncated = blocking(move || -> io::Result<()> {
                        let file = match file {
                            Some(f) => f,
                            None => OpenOptions::new().write(true).open(&path)?,
                        };
                        file.set_len(current)
                    })
                    .await
                    .and_then(|r| r.map_err(StorageError::from));
                    if truncated.is_ok() {
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
            }
        });
        task.await.map_err(|e| StorageError::Io(join_error(e)))?
    }

    async fn upload_size(&self, id: &UploadId) -> Result<u64> {
        // Loading the session recovers it from an interrupted append first.
        self.session(id).await?;
        match tokio::fs::metadata(self.data_path(id)).await {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StorageError::UploadUnknown),
            Err(e) => Err(e.into()),
        }
    }

    async fn upload_commit(&self, id: &UploadId, expected: &Digest) -> Result<u64> {
        let session = self.session(id).await?;
        let mut state = session.lock().await;
        let data = self.data_path(id);
        let target = self.blob_path(expected);
        let blobs_root = self.root.join("blobs");
        let expected = expected.clone();
        // Reuse the in-memory hasher when it is of the right algorithm; catch up from disk for
        // whatever it has not seen (everything, after a restart).
        let (start, hasher) = match &state.hasher {
            Some(h) if h.algorithm() == expected.algorithm() => (state.hashed, h.clone()),
            _ => (0, Hasher::new(expected.algorithm())),
        };
        let (size, hasher, outcome) = blocking(move || -> Result<(u64, Hasher, Result<()>)> {
            let size = match std::fs::metadata(&data) {
                Ok(m) => m.len(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StorageError::UploadUnknown),
                Err(e) => return Err(e.into()),
            };
            let (start, mut hasher) =
                if start <= size { (start, hasher) } else { (0, Hasher::new(expected.algorithm())) };
            let end = if start < size { hash_file_from(&data, start, &mut hasher)? } else { size };
            if end != size {
                return Err(StorageError::Corrupt("upload data changed while it was being verified".into()));
            }
            let actual = hasher.clone().finish();
            if actual != expected {
                return Ok((size, hasher, Err(StorageError::DigestMismatch { expected, actual })));
            }
            if !target.exists() {
                File::open(&data)?.sync_data()?;
            }
            install(&data, &target, &blobs_root)?;
            Ok((size, hasher, Ok(())))
        })
        .await??;
        if let Err(e) = outcome {
            state.hashed = size;
            state.hasher = Some(hasher);
            return Err(e);
        }
        state.hasher = None;
        drop(state);
        self.forget_session(id);
        let dir = self.upload_dir(id);
        blocking(move || remove_dir_if_present(&dir)).await??;
        Ok(size)
    }

    async fn upload_abort(&self, id: &UploadId) -> Result<()> {
        self.forget_session(id);
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

/// Records the acknowledged size of an upload session (`size` beside `data`), replaced
/// atomically. An append is acknowledged only after this is written.
fn write_acked(dir: &Path, size: u64) -> io::Result<()> {
    let tmp = dir.join("size.tmp");
    std::fs::write(&tmp, size.to_string())?;
    std::fs::rename(tmp, dir.join("size"))
}

fn read_acked(dir: &Path) -> Option<u64> {
    std::fs::read_to_string(dir.join("size")).ok()?.trim().parse().ok()
}
