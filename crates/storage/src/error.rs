//! Storage errors. The HTTP layer maps them to OCI or ARM codes in one place each.

use wharf_oci::Digest;

use crate::UploadLimitScope;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("upload session unknown")]
    UploadUnknown,
    #[error("upload offset mismatch: session holds {current} bytes")]
    UploadOffsetMismatch { current: u64 },
    #[error("upload exceeds the allowed size")]
    UploadTooLarge,
    /// Opening another upload session would exceed a cap; nothing was recorded.
    #[error("{scope:?} already holds {limit} open upload sessions, its limit")]
    UploadLimit { scope: UploadLimitScope, limit: u64 },
    #[error("content digest {actual} does not match {expected}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("manifest references content missing from the repository")]
    MissingReferences { blobs: Vec<Digest>, manifests: Vec<Digest> },
    #[error("the client stream failed: {0}")]
    ClientStream(std::io::Error),
    #[error("storage I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("metadata database: {0}")]
    Database(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The store cannot answer now (busy, out of connections, briefly unreachable); the same
    /// request may succeed later. Planes answer 503.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
}

impl From<rusqlite::Error> for StorageError {
    fn from(e: rusqlite::Error) -> Self {
        let busy = matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        );
        if busy { StorageError::Unavailable(e.to_string()) } else { StorageError::Database(e.to_string()) }
    }
}
