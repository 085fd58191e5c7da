//! Streaming committed blobs out of the filesystem blob store: chunks read on the blocking pool,
//! one ahead of the consumer.
//!
//! Owns only an open file handle per read; it must never read more than one chunk ahead, nor end
//! a body quietly when the file turns out shorter than asked.

use std::fs::File;
use std::future::Future;
use std::io::{self, Read};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use tokio::task::JoinHandle;

use super::join_error;

/// Size of each read when streaming a blob out: large enough that the per-chunk costs (a
/// blocking-pool round trip, an allocation, a `writev`) are small next to copying the bytes,
/// small enough that a download holds little memory (the chunk being sent and the one read
/// ahead).
pub const READ_CHUNK_BYTES: usize = 512 * 1024;

/// Reads `len` bytes at the file's position into a new buffer (not zeroed first:
/// `read_to_end` fills spare capacity). A file that ends early is an error.
pub(super) fn read_chunk(file: &File, len: u64) -> io::Result<Bytes> {
    let mut buf = Vec::with_capacity(len as usize);
    file.take(len).read_to_end(&mut buf)?;
    if (buf.len() as u64) < len {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "blob file is shorter than its recorded size"));
    }
    Ok(Bytes::from(buf))
}

/// A committed blob, or a range of it, as chunks of [`READ_CHUNK_BYTES`] read on the blocking
/// pool, the next one being read while the consumer sends the last.
pub(super) struct BlobChunks {
    /// Bytes not yet asked of the file.
    unread: u64,
    ready: Option<Bytes>,
    reading: Option<JoinHandle<(File, io::Result<Bytes>)>>,
}

impl BlobChunks {
    pub(super) fn new(file: File, first: Bytes, unread: u64) -> BlobChunks {
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
