//! Wharf's storage engine: what is stored and how, never who may see it or how it travels.
//!
//! Two traits split the state of a deployment:
//! - [`BlobStore`]: content-addressed bytes (layers, configs) and the staging area of upload
//!   sessions. Bytes are streamed and hashed as they arrive, never buffered whole, and enter the
//!   content store only when their digest matches (temp file, fsync, rename).
//! - [`MetadataStore`]: everything else — ARM resources (resource groups, registries, …),
//!   deployment settings, repositories, which blobs each repository may see, manifests (their
//!   bytes live here too: they are small and must change atomically with tags), tags,
//!   referrers, upload sessions and the run queue of ACR Tasks. Every multi-row change is one
//!   transaction, so a crash leaves no tag pointing at a manifest whose blobs are missing.
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
pub mod fsck;
pub mod lock;
pub mod maintenance;
pub mod records;
pub mod sqlite;

use std::ops::Range;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
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

    /// A committed blob as [`BlobStore::blob_list`] describes it, or `None` if absent.
    async fn blob_info(&self, digest: &Digest) -> Result<Option<StoredBlob>>;

    /// Streams a committed blob, or the half-open byte range `range` of it (already checked
    /// against the size by the caller). `NotFound` if absent.
    async fn read(&self, digest: &Digest, range: Option<Range<u64>>) -> Result<ByteStream>;

    /// Stores small content whose bytes are in memory, verifying `digest`. Idempotent.
    async fn put_bytes(&self, digest: &Digest, bytes: Bytes) -> Result<()>;

    /// Removes a committed blob. Deleting an absent blob is not an error.
    async fn delete(&self, digest: &Digest) -> Result<()>;

    /// Removes a committed blob unless its bytes were written or committed again at or after
    /// `written_before`: a commit of the same content refreshes that time, and the check and the
    /// removal are atomic with respect to this store's commits, so garbage collection cannot
    /// remove content that a commit under way is about to record. Returns whether it removed
    /// the blob (an absent blob is not an error).
    async fn delete_if_idle(&self, digest: &Digest, written_before: DateTime<Utc>) -> Result<bool>;

    /// Every committed blob the store holds, with its size and when its bytes were last written
    /// or committed again (what garbage collection measures its grace period from). Streamed: a
    /// store may hold more blobs than fit in memory.
    async fn blob_list(&self) -> Result<BlobListing>;

    /// Moves a committed blob whose bytes turned out not to match its digest out of the content
    /// store, keeping the bytes for inspection where the backend can; afterwards the store does
    /// not hold `digest`, so the blob can be pushed again. Absent blobs are not an error.
    async fn quarantine(&self, digest: &Digest) -> Result<()>;

    /// Starts an empty upload session whose content will be hashed with `algorithm`.
    async fn upload_create(&self, id: &UploadId, algorithm: DigestAlgorithm) -> Result<()>;

    /// Appends `body` at byte `offset`, which must equal the session's current size
    /// (`UploadOffsetMismatch` otherwise, with nothing written). At most `max_len` bytes are
    /// accepted when given (`UploadTooLarge`). Returns the new size once the appended bytes are
    /// durable: acknowledged bytes survive a crash. A body that fails midway leaves the session
    /// at its last durable size or at a size the next status request reports.
    async fn upload_append(&self, id: &UploadId, offset: u64, body: ByteStream, max_len: Option<u64>) -> Result<u64>;

    /// Appends the last bytes of an upload at `offset` (as [`BlobStore::upload_append`] does,
    /// with the same `offset` and `max_len` rules), verifies that the whole content hashes to
    /// `expected` and moves it into the content store atomically. Returns the blob's size.
    ///
    /// A refused or failed call — wrong offset, body too large or broken, `DigestMismatch`, an
    /// I/O error before the content was committed — leaves the session exactly as it was
    /// (size and bytes), so the client can retry. A crash at any point leaves either that same
    /// session or a committed one.
    ///
    /// On success the session is *committed*: it accepts no more appends and is no longer among
    /// [`BlobStore::upload_ids`], but [`BlobStore::upload_inventory`] reports it as
    /// [`UploadState::Committed`] until [`BlobStore::upload_abort`] releases it. The caller
    /// records the blob in metadata first and releases the session afterwards, so that a crash
    /// between the commit and the metadata write can be completed at start-up rather than
    /// leaving bytes nobody knows and a session that vanished.
    async fn upload_finish(
        &self,
        id: &UploadId,
        offset: u64,
        body: ByteStream,
        max_len: Option<u64>,
        expected: &Digest,
    ) -> Result<u64>;

    /// [`BlobStore::upload_finish`] with no more bytes: commits what the session holds.
    async fn upload_commit(&self, id: &UploadId, expected: &Digest) -> Result<u64> {
        let size = self.upload_size(id).await?;
        self.upload_finish(id, size, Box::pin(futures::stream::empty()), Some(0), expected).await
    }

    /// Current size of an upload session (`UploadUnknown` if absent or committed).
    async fn upload_size(&self, id: &UploadId) -> Result<u64>;

    /// Discards an upload session, or releases a committed one (its content stays in the
    /// store). Absent sessions are not an error.
    async fn upload_abort(&self, id: &UploadId) -> Result<()>;

    /// Ids of the open upload sessions held (to reconcile with metadata after a crash).
    async fn upload_ids(&self) -> Result<Vec<UploadId>>;

    /// Everything the store holds of upload sessions, open, committed but not released, or
    /// left empty by a crash, with when each was last written (for reconciliation, expiry and
    /// checks).
    async fn upload_inventory(&self) -> Result<Vec<UploadOnDisk>>;
}

/// A stream of the blobs a [`BlobStore`] holds.
pub type BlobListing = Pin<Box<dyn Stream<Item = Result<StoredBlob>> + Send + 'static>>;

/// One committed blob as the blob store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    pub digest: Digest,
    pub size: u64,
    /// When its bytes were last written or committed again (a commit of content the store
    /// already holds refreshes it).
    pub modified: DateTime<Utc>,
}

/// What a blob store holds of one upload session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadOnDisk {
    pub id: UploadId,
    pub state: UploadState,
    /// When the session's bytes (or, without bytes, its other files) were last written.
    pub modified: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadState {
    /// Receiving bytes.
    Open,
    /// Its content was committed into the store as `digest` (`size` bytes), and the session was
    /// not released yet: the metadata side may not know the blob.
    Committed { digest: Digest, size: u64 },
    /// Neither bytes nor a commit: what a crash while the session was created or removed
    /// leaves. It holds nothing.
    Empty,
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
    /// Recorded blobs in digest order, strictly after `after`, at most `limit` (for checks that
    /// walk them all).
    async fn blob_records(&self, after: Option<&Digest>, limit: usize) -> Result<Vec<BlobRecord>>;
    /// The records of those of `digests` that are recorded, in any order.
    async fn blob_records_of(&self, digests: &[Digest]) -> Result<Vec<BlobRecord>>;
    /// What uses a blob: the repositories it is visible in and the manifests referencing it.
    async fn blob_references(&self, digest: &Digest) -> Result<BlobReferences>;
    /// Drops the record of a blob that nothing uses (no link, no manifest reference, no manifest
    /// of that digest), checking that in the same transaction. Returns false, changing nothing,
    /// if something uses it or it has no record.
    async fn blob_forget(&self, digest: &Digest) -> Result<bool>;
    /// Links and manifest references naming blobs that have no record. The store's own writes
    /// never leave any (a link records its blob in the same transaction); checks report them.
    async fn blob_references_unrecorded(&self) -> Result<Vec<UnrecordedReference>>;

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
    /// Reads, at once, what serving a manifest reference needs: the repository's attributes,
    /// the tag's (for a reference by tag), the manifest it resolves to and, with `with_bytes`,
    /// its bytes. The locks on the way can then be checked without reading again. A repository
    /// that does not exist reads as [`ManifestRead::default()`].
    async fn manifest_read(
        &self,
        registry: &RegistryKey,
        repo: &RepositoryName,
        reference: &Reference,
        with_bytes: bool,
    ) -> Result<ManifestRead>;
    /// The manifest a reference resolves to, with its bytes.
    async fn manifest_get(
        &self,
        registry: &RegistryKey,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<Option<ManifestRecord>> {
        let read = self.manifest_read(registry, repo, reference, true).await?;
        Ok(read.manifest.zip(read.bytes).map(|(meta, bytes)| ManifestRecord { meta, bytes }))
    }
    /// Like `manifest_get` without the bytes (HEAD, listings).
    async fn manifest_head(
        &self,
        registry: &RegistryKey,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<Option<ManifestMeta>> {
        Ok(self.manifest_read(registry, repo, reference, false).await?.manifest)
    }
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
    /// Deletes every repository, tag, manifest, link, upload session record and run of a
    /// registry (its run numbering is kept: a later run of the same key does not reuse a
    /// number). Returns the ids of the upload sessions it deleted, whose bytes the caller
    /// discards.
    async fn registry_purge(&self, registry: &RegistryKey) -> Result<Vec<UploadId>>;
    /// Keys of the registries that hold any content (repositories or upload sessions), to find
    /// the content of registries whose resource is gone.
    async fn registry_keys_with_content(&self) -> Result<Vec<RegistryKey>>;
    /// Bytes a registry holds: every distinct blob linked into any of its repositories and every
    /// distinct manifest, each counted once (a layer shared by two repositories counts once).
    async fn registry_size(&self, registry: &RegistryKey) -> Result<u64>;

    // ---- upload sessions ----
    /// Records a new upload session unless the registry or the principal already holds as many
    /// open sessions as `limits` allows (`UploadLimit`, nothing recorded); the count and the
    /// insert are one transaction, so concurrent requests cannot overshoot a cap.
    async fn upload_put(&self, upload: &UploadRecord, limits: &UploadLimits) -> Result<()>;
    async fn upload_get(&self, id: &UploadId) -> Result<Option<UploadRecord>>;
    async fn upload_delete(&self, id: &UploadId) -> Result<()>;
    /// Every upload session record, oldest first.
    async fn upload_list(&self) -> Result<Vec<UploadRecord>>;
    /// Records activity on a session: its `last_activity` moves to `at` unless it is later
    /// already. Absent sessions are not an error.
    async fn upload_touch(&self, id: &UploadId, at: DateTime<Utc>) -> Result<()>;
    /// Sessions whose last activity is before `before`, least recently active first.
    async fn upload_list_idle(&self, before: DateTime<Utc>) -> Result<Vec<UploadRecord>>;
    /// Deletes a session's record if its last activity is still before `before` (a request
    /// that touched it meanwhile keeps it). Returns whether it was deleted.
    async fn upload_delete_if_idle(&self, id: &UploadId, before: DateTime<Utc>) -> Result<bool>;
    /// Ends an upload whose content the blob store committed as `digest` (`size` bytes): in one
    /// transaction, deletes the session's record and makes the blob visible in the session's
    /// repository as [`MetadataStore::blob_link`] does. Returns false, linking nothing, if the
    /// record is gone (the session was cancelled, expired or purged with its registry
    /// meanwhile).
    async fn upload_complete(&self, upload: &UploadRecord, digest: &Digest, size: u64) -> Result<bool>;

    // ---- task runs (the run queue of ACR Tasks) ----
    // The store treats a run's status as an opaque string, except for the names in
    // [`run_status`]: `Queued` runs wait in one deployment-wide queue, ordered by `created_at`,
    // then registry key, then number (the *queue order*); `Started` and `Running` runs are in
    // progress, held by the agent named in `agent` until `lease_until`.

    /// Enqueues a run. In one transaction it takes the registry's next number (1, 2, …: one more
    /// than any number the registry key ever had, even after its runs were deleted or the
    /// registry purged, so a number is never reused) and records the run with
    /// `run_id = format!("{id_prefix}{number}")`, `created_at = updated_at = now`, no agent and
    /// no lease. `Conflict`, recording nothing, if the registry already has a run of that id
    /// compared case-insensitively (possible only when prefixes vary, e.g. `a1` + `1` and `a` +
    /// `11`).
    async fn run_create(&self, run: &NewRun, now: DateTime<Utc>) -> Result<RunRecord>;
    /// A run of the registry by id, compared case-insensitively.
    async fn run_get(&self, registry: &RegistryKey, run_id: &str) -> Result<Option<RunRecord>>;
    /// A registry's runs, newest first (number descending), only those of `filter.task`
    /// (case-insensitive) and of exactly `filter.status` when given, at most `filter.top`.
    async fn run_list(&self, registry: &RegistryKey, filter: &RunFilter) -> Result<Vec<RunRecord>>;
    /// Compare-and-set: writes `run`'s status, body, agent and lease (as given, `None` clearing
    /// them) and `updated_at = now` only if the stored run (found by `run.registry` and
    /// `run.run_id`, case-insensitively) still has status `expected_status`. Returns false,
    /// changing nothing, if its status changed meanwhile (a cancellation, another agent's
    /// verdict); `NotFound` if there is no such run. The number, task and creation time never
    /// change.
    async fn run_update(&self, run: &RunRecord, expected_status: &str, now: DateTime<Utc>) -> Result<bool>;
    /// Atomically takes the first `Queued` run in queue order, of any registry, and returns it
    /// with status `Started`, `agent`, `lease_until` and `updated_at = now` recorded; `None` when
    /// nothing is queued. Two concurrent claimers never get the same run.
    async fn run_claim(&self, agent: &str, lease_until: DateTime<Utc>, now: DateTime<Utc>)
    -> Result<Option<RunRecord>>;
    /// Sets the lease of a run in progress (`Started` or `Running`) to `lease_until` if `agent`
    /// still holds it (is its recorded agent). Returns false, changing nothing, otherwise: the
    /// run was finished, canceled or taken over, or does not exist. `updated_at` does not move
    /// (a renewal is a heartbeat, not a change of the run).
    async fn run_renew(
        &self,
        registry: &RegistryKey,
        run_id: &str,
        agent: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<bool>;
    /// Runs in progress (`Started` or `Running`) whose lease ended before `now` (`lease_until <
    /// now`; a run without a lease never expires), of any registry, in queue order. Reading
    /// changes nothing: the caller ends each with [`MetadataStore::run_update`] expecting the
    /// status it read, so that two sweepers, or a sweeper and a late agent, cannot both win.
    async fn run_expired_leases(&self, now: DateTime<Utc>) -> Result<Vec<RunRecord>>;
    /// Every run in progress (`Started` or `Running`), of any registry, in queue order
    /// (start-up recovery).
    async fn runs_in_progress(&self) -> Result<Vec<RunRecord>>;
    /// How many `Queued` runs, of any registry, come before `run` in queue order (by its
    /// `created_at`, registry and number), i.e. will be claimed before it.
    async fn run_count_queued_before(&self, run: &RunRecord) -> Result<u64>;
    /// Finished runs (any status but `Queued`, `Started` and `Running`), of any registry, whose
    /// `updated_at` is before `before`, ordered by (`updated_at`, registry, number) and only
    /// those after `after` in that order (a page's last run: paging through runs the caller
    /// keeps), at most `limit` (the retention sweep's listing).
    async fn runs_finished_before(
        &self,
        before: DateTime<Utc>,
        after: Option<&RunRecord>,
        limit: usize,
    ) -> Result<Vec<RunRecord>>;
    /// Deletes `run` (found by registry and id, case-insensitively) if it is unchanged since it
    /// was read: the same status and `updated_at`. Returns false, deleting nothing, when it
    /// changed meanwhile (an archive flag set, a cancellation) or is gone. The registry's run
    /// counter is kept, so the number is never handed out again.
    async fn run_delete(&self, run: &RunRecord) -> Result<bool>;

    // ---- timer triggers ----
    /// Queues a run for one tick of a timer trigger, at most once per tick: in one transaction
    /// it records the claim of `tick` (task compared case-insensitively, trigger name exactly,
    /// the tick to the nanosecond) and, only if no claim of it existed, creates `run` as
    /// [`MetadataStore::run_create`] does. `None`, creating nothing, when the tick was claimed
    /// already (by another replica, or by this deployment before a restart). Claims outlive
    /// their runs (deleting a run, a task or a registry leaves them) until
    /// [`MetadataStore::timer_ticks_sweep`] removes them.
    async fn run_create_for_tick(
        &self,
        run: &NewRun,
        tick: &TimerTick,
        now: DateTime<Utc>,
    ) -> Result<Option<RunRecord>>;
    /// Deletes the claims of ticks before `before`; returns how many there were.
    async fn timer_ticks_sweep(&self, before: DateTime<Utc>) -> Result<u64>;

    // ---- base-image triggers ----
    /// Replaces the images recorded for `task` (its resource id, compared case-insensitively)
    /// with `images`, in one transaction; an empty list forgets the task.
    async fn task_images_set(
        &self,
        task: &str,
        task_registry: &RegistryKey,
        images: &[TaskImage],
        now: DateTime<Utc>,
    ) -> Result<()>;
    /// Every recorded use of `registry`/`repository`:`tag`, by any task, in any role.
    async fn task_images_using(&self, registry: &RegistryKey, repository: &str, tag: &str)
    -> Result<Vec<TaskImageRow>>;
    /// The images recorded for `task`.
    async fn task_images_of(&self, task: &str) -> Result<Vec<TaskImageRow>>;
    /// Queues `run` (of a task: `run.task` is set) as [`MetadataStore::run_create`] does, unless
    /// the same task of the same registry already has a `Queued` run whose body has
    /// `properties.imageUpdateTrigger`: in one transaction, so that a burst of base-image pushes,
    /// seen by any number of replicas, queues one run that builds on the newest bases. `None`
    /// when such a run was already queued.
    async fn run_create_for_image_update(&self, run: &NewRun, now: DateTime<Utc>) -> Result<Option<RunRecord>>;

    // ---- checks ----
    /// The backend's own consistency check of its files (SQLite: `integrity_check` and
    /// `foreign_key_check`): one line per problem, empty when sound.
    async fn integrity_check(&self) -> Result<Vec<String>>;
    /// How much the store holds.
    async fn counts(&self) -> Result<MetadataCounts>;
}
