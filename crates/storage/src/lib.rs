//! Wharf's storage engine: what is stored and how, never who may see it or how it travels.
//!
//! Two traits split the state of a deployment:
//! - [`BlobStore`]: content-addressed bytes (layers, configs) and the staging area of upload
//!   sessions. Bytes are streamed and hashed as they arrive, never buffered whole, and enter the
//!   content store only when their digest matches (temp file, fsync, rename).
//! - [`MetadataStore`]: everything else — ARM resources (resource groups, registries, …),
//!   deployment settings, repositories, which blobs each repository may see, manifests (their
//!   bytes live here too: they are small and must change atomically with tags), tags,
//!   referrers and upload sessions. Every multi-row change is one transaction, so a crash leaves
//!   no tag pointing at a manifest whose blobs are missing.
//!
//! The embedded backends are [`fs::FsBlobStore`] and [`sqlite::SqliteMetadataStore`]. The
//! traits are shaped so that PostgreSQL and object storage can implement them without the HTTP
//! layer noticing; `conformance` (behind the test-only `conformance` feature, so never in the
//! production build) holds the tests every backend must pass.
//!
//! This crate never sees HTTP requests, tokens or permissions.
#![forbid(unsafe_code)]

#[cfg(feature = "conformance")]
pub mod conformance;
pub mod error;
pub mod fs;
pub mod lock;
pub mod records;
pub mod sqlite;

use std::ops::Range;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;
use wharf_oci::{Digest, DigestAlgorithm, Reference, RepositoryName, Tag};

pub use error::StorageError;
pub use records::*;

/// A stream of body bytes coming from a client, or going to one.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send + 'static>>;

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Content-addressed bytes and upload staging.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Size of a committed blob, or `None` if the store does not hold it.
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>>;

    /// Streams a committed blob, or the half-open byte range `range` of it (already checked
    /// against the size by the caller). `NotFound` if absent.
    async fn read(&self, digest: &Digest, range: Option<Range<u64>>) -> Result<ByteStream>;

    /// Stores small content whose bytes are in memory, verifying `digest`. Idempotent.
    async fn put_bytes(&self, digest: &Digest, bytes: Bytes) -> Result<()>;

    /// Removes a committed blob. Deleting an absent blob is not an error.
    async fn delete(&self, digest: &Digest) -> Result<()>;

    /// Starts an empty upload session whose content will be hashed with `algorithm`.
    async fn upload_create(&self, id: &UploadId, algorithm: DigestAlgorithm) -> Result<()>;

    /// Appends `body` at byte `offset`, which must equal the session's current size
    /// (`UploadOffsetMismatch` otherwise, with nothing written). At most `max_len` bytes are
    /// accepted when given (`UploadTooLarge`). Returns the new size once the appended bytes are
    /// durable: acknowledged bytes survive a crash. A body that fails midway leaves the session
    /// at its last durable size or at a size the next status request reports.
    async fn upload_append(&self, id: &UploadId, offset: u64, body: ByteStream, max_len: Option<u64>) -> Result<u64>;

    /// Appends the last bytes of an upload as [`BlobStore::upload_append`] does, for a caller
    /// that calls [`BlobStore::upload_commit`] next (the final `PUT`, a monolithic upload):
    /// the bytes need not be durable when this returns, as the commit makes them so, and a
    /// backend may skip what acknowledging them would cost. Until a later `upload_append`
    /// returns, a crash may take the session back to its size before this call.
    async fn upload_append_final(
        &self,
        id: &UploadId,
        offset: u64,
        body: ByteStream,
        max_len: Option<u64>,
    ) -> Result<u64> {
        self.upload_append(id, offset, body, max_len).await
    }

    /// Current size of an upload session (`UploadUnknown` if absent).
    async fn upload_size(&self, id: &UploadId) -> Result<u64>;

    /// Verifies that the session's content hashes to `expected` and moves it into the content
    /// store atomically. Returns the size. On `DigestMismatch` the session is left as it was.
    async fn upload_commit(&self, id: &UploadId, expected: &Digest) -> Result<u64>;

    /// Discards an upload session. Absent sessions are not an error.
    async fn upload_abort(&self, id: &UploadId) -> Result<()>;

    /// Ids of all upload sessions held (to reconcile with metadata after a crash).
    async fn upload_ids(&self) -> Result<Vec<UploadId>>;
}

/// Everything but blob bytes.
#[async_trait]
pub trait MetadataStore: Send + Sync + 'static {
    // ---- deployment settings (ids, key sets, …) ----
    async fn setting_get(&self, key: &str) -> Result<Option<String>>;
    async fn setting_put(&self, key: &str, value: &str) -> Result<()>;

    // ---- ARM resources ----
    /// Inserts or replaces a resource by id (case-insensitive). Returns true when created.
    async fn resource_put(&self, resource: &ResourceRecord) -> Result<bool>;
    /// Inserts a resource only if no resource of the same type has the same name, compared
    /// case-insensitively across the whole deployment (registry names are global).
    /// `Conflict` otherwise.
    async fn resource_insert_unique_name(&self, resource: &ResourceRecord) -> Result<()>;
    async fn resource_get(&self, id: &str) -> Result<Option<ResourceRecord>>;
    /// Finds a resource of `resource_type` by name, case-insensitively, deployment-wide.
    async fn resource_find_by_name(&self, resource_type: &str, name: &str) -> Result<Option<ResourceRecord>>;
    async fn resource_list(&self, filter: &ResourceFilter) -> Result<Vec<ResourceRecord>>;
    /// Deletes a resource and every resource whose id lies below it (`{id}/…`). Returns the
    /// deleted records.
    async fn resource_delete_tree(&self, id: &str) -> Result<Vec<ResourceRecord>>;

    // ---- repositories ----
    /// Repository names in lexical order, strictly after `last`, at most `n`.
    async fn repository_list(&self, registry: &RegistryKey, last: Option<&str>, n: usize) -> Result<Vec<String>>;
    async fn repository_get(&self, registry: &RegistryKey, repo: &RepositoryName) -> Result<Option<RepositoryRecord>>;
    async fn repository_set_attributes(
        &self,
        registry: &RegistryKey,
        repo: &RepositoryName,
        attributes: &ChangeableAttributes,
    ) -> Result<bool>;
    /// Deletes a repository with its tags, manifests and blob links. Returns false if absent.
    async fn repository_delete(&self, registry: &RegistryKey, repo: &RepositoryName) -> Result<bool>;

    // ---- blobs: global bookkeeping and per-repository visibility ----
    /// Records that the blob store holds `digest` (after a commit).
    async fn blob_record(&self, digest: &Digest, size: u64) -> Result<()>;
    /// Makes a committed blob visible in a repository (creating the repository if needed). In
    /// the same transaction it records the blob (or refreshes its record's time) as
    /// `blob_record` does, so that a commit followed by a link needs no separate record.
    async fn blob_link(&self, registry: &RegistryKey, repo: &RepositoryName, digest: &Digest, size: u64) -> Result<()>;
    /// Size of the blob if it is visible in the repository.
    async fn blob_visible(&self, registry: &RegistryKey, repo: &RepositoryName, digest: &Digest)
    -> Result<Option<u64>>;
    /// Removes the blob's visibility from a repository. Returns false if it was not visible.
    async fn blob_unlink(&self, registry: &RegistryKey, repo: &RepositoryName, digest: &Digest) -> Result<bool>;
    /// Blobs recorded but neither linked in any repository nor referenced by any manifest,
    /// and recorded before `older_than` (unix seconds). Removes their records; the caller then
    /// deletes the bytes.
    async fn blob_collect_unreferenced(&self, older_than: i64) -> Result<Vec<Digest>>;

    // ---- manifests and tags ----
    /// Stores a manifest in one transaction: checks that every blob it references is visible in
    /// the repository and every child manifest exists there (`MissingReferences` otherwise,
    /// listing them), stores the bytes, and points `tag` at it when given (creating or moving
    /// the tag). Idempotent for identical content.
    async fn manifest_put(
        &self,
        registry: &RegistryKey,
        repo: &RepositoryName,
        manifest: &NewManifest,
    ) -> Result<ManifestPutOutcome>;
    async fn manifest_get(
        &self,
        registry: &RegistryKey,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<Option<ManifestRecord>>;
    /// Like `manifest_get` without the bytes (HEAD, listings).
    async fn manifest_head(
        &self,
        registry: &RegistryKey,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<Option<ManifestMeta>>;
    /// Deletes a manifest by digest and every tag pointing at it. Returns the deleted tags, or
    /// `None` if the manifest was absent.
    async fn manifest_delete(
        &self,
        registry: &RegistryKey,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<Vec<String>>>;
    /// Manifests of a repository, ordered as asked, paged by digest (`last`) or time.
    async fn manifest_list(
        &self,
        registry: &RegistryKey,
        repo: &RepositoryName,
        page: &Page,
    ) -> Result<Vec<ManifestMeta>>;
    async fn manifest_set_attributes(
        &self,
        registry: &RegistryKey,
        repo: &RepositoryName,
        digest: &Digest,
        attributes: &ChangeableAttributes,
    ) -> Result<bool>;
    /// Tags of a repository with their targets, ordered as asked.
    async fn tag_list(&self, registry: &RegistryKey, repo: &RepositoryName, page: &Page) -> Result<Vec<TagRecord>>;
    async fn tag_get(&self, registry: &RegistryKey, repo: &RepositoryName, tag: &Tag) -> Result<Option<TagRecord>>;
    async fn tag_set_attributes(
        &self,
        registry: &RegistryKey,
        repo: &RepositoryName,
        tag: &Tag,
        attributes: &ChangeableAttributes,
    ) -> Result<bool>;
    /// Removes a tag (the manifest stays). Returns false if absent.
    async fn tag_delete(&self, registry: &RegistryKey, repo: &RepositoryName, tag: &Tag) -> Result<bool>;
    /// Manifests in the repository whose `subject` is `subject`, optionally filtered by
    /// artifact type, ordered by digest.
    async fn referrers(
        &self,
        registry: &RegistryKey,
        repo: &RepositoryName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<ManifestMeta>>;

    // ---- registries as a whole ----
    /// Deletes every repository, tag, manifest, link and upload session of a registry.
    async fn registry_purge(&self, registry: &RegistryKey) -> Result<()>;
    /// Bytes a registry holds: every distinct blob linked into any of its repositories and every
    /// distinct manifest, each counted once (a layer shared by two repositories counts once).
    async fn registry_size(&self, registry: &RegistryKey) -> Result<u64>;

    // ---- upload sessions ----
    async fn upload_put(&self, upload: &UploadRecord) -> Result<()>;
    async fn upload_get(&self, id: &UploadId) -> Result<Option<UploadRecord>>;
    async fn upload_delete(&self, id: &UploadId) -> Result<()>;
    async fn upload_list(&self) -> Result<Vec<UploadRecord>>;
}
