//! The append pipeline of the filesystem blob store: a client body cut into batches that a
//! writer thread, a hasher thread and a flusher thread consume while the runtime reads the next
//! ones, and re-hashing a session's file from disk.
//!
//! Owns no paths and no session state: it is handed an open file and a hasher and gives them
//! back. It must never hold more than a bounded number of batches in memory, and never decide
//! what an append means for a session (acknowledging, truncating) — that is `super`'s job.

use std::fs::File;
use std::io::{self, IoSlice, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use wharf_oci::Hasher;

use super::join_error;
use crate::{ByteStream, Result};

/// Bytes gathered from the client before they are written and hashed together.
pub const BATCH_BYTES: usize = 1024 * 1024;
const REHASH_BUFFER_BYTES: usize = 1024 * 1024;

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

pub(super) enum AppendFailure {
    Client(io::Error),
    TooLarge,
    Io(io::Error),
}

/// What [`stream_into`] appended.
pub(super) struct Appended {
    pub(super) bytes: u64,
    /// How many of `bytes` are already flushed.
    pub(super) flushed: u64,
    pub(super) file: File,
    pub(super) hasher: Option<Hasher>,
}

/// Streams `body` to the end of `file` (positioned at its end), hashing with `hasher` when
/// given. The body is read here, on the runtime, while a writer thread and a hasher thread
/// consume the same batches (shared, not copied) at their own pace. Returns what was appended
/// with the file and the advanced hasher; on failure, the file (if still usable). An empty body
/// starts no thread.
pub(super) async fn stream_into(
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
pub(super) fn hash_file_from(path: &Path, from: u64, hasher: &mut Hasher) -> io::Result<u64> {
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
