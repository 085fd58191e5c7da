//! OCI values and their validation: digests, repository names, tags, references, media types,
//! and manifest parsing.
//!
//! Everything here is a pure value that validates on construction: once a `Digest` or a
//! `RepositoryName` exists, it is well-formed. This crate never does I/O and knows nothing of
//! HTTP, storage or authorization.
#![forbid(unsafe_code)]

pub mod digest;
pub mod manifest;
pub mod media_type;
pub mod name;

pub use digest::{Digest, DigestAlgorithm, DigestError, Hasher};
pub use manifest::{Descriptor, MAX_MANIFEST_BYTES, Manifest, ManifestError, ManifestKind};
pub use name::{NameError, Reference, RepositoryName, Tag};
