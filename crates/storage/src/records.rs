//! The values the stores keep and return.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use wharf_oci::{Digest, DigestAlgorithm, RepositoryName, Tag};

/// The stable internal key of a registry (a UUID kept in its ARM resource record). Content is
/// keyed by it rather than by name, so that a deleted and recreated registry starts empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RegistryKey(pub String);

/// An upload session id (a UUID, the last path segment of the upload `Location`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UploadId(String);

impl UploadId {
    pub fn new() -> UploadId {
        UploadId(uuid::Uuid::new_v4().to_string())
    }

    /// Accepts only the canonical hyphenated UUID form, so an id can never name a path.
    pub fn parse(s: &str) -> Option<UploadId> {
        let u = uuid::Uuid::parse_str(s).ok()?;
        let canonical = u.hyphenated().to_string();
        (canonical == s).then_some(UploadId(canonical))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for UploadId {
    fn default() -> Self {
        UploadId::new()
    }
}

impl std::fmt::Display for UploadId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One ARM resource: resource groups, registries, identities, … The full ARM JSON body lives in
/// `body`; the other fields are what lookups need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceRecord {
    /// ARM id as created (case preserved); compared case-insensitively.
    pub id: String,
    /// e.g. `Microsoft.Resources/resourceGroups`, `Microsoft.ContainerRegistry/registries`.
    pub resource_type: String,
    pub name: String,
    /// Resource group name for resources inside one; `None` for resource groups themselves.
    pub resource_group: Option<String>,
    /// Stable internal key (UUID).
    pub key: String,
    pub body: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceFilter {
    pub resource_type: Option<String>,
    /// Case-insensitive.
    pub resource_group: Option<String>,
}

/// ACR's `changeableAttributes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeableAttributes {
    pub delete_enabled: bool,
    pub write_enabled: bool,
    pub read_enabled: bool,
    pub list_enabled: bool,
}

impl Default for ChangeableAttributes {
    fn default() -> Self {
        ChangeableAttributes { delete_enabled: true, write_enabled: true, read_enabled: true, list_enabled: true }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RepositoryRecord {
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub manifest_count: u64,
    pub tag_count: u64,
    pub attributes: ChangeableAttributes,
}

/// A manifest to store, as parsed and checked by the caller.
#[derive(Debug, Clone)]
pub struct NewManifest {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: bytes::Bytes,
    pub artifact_type: Option<String>,
    pub subject: Option<Digest>,
    /// Annotations of the manifest, as JSON, for the referrers index.
    pub annotations: Option<serde_json::Value>,
    /// Blobs (config, layers) that must be visible in the repository.
    pub blob_refs: Vec<Digest>,
    /// Child manifests (index entries) that must exist in the repository.
    pub manifest_refs: Vec<Digest>,
    /// Image config summary for ACR's listings, when known.
    pub architecture: Option<String>,
    pub os: Option<String>,
    pub tag: Option<Tag>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ManifestPutOutcome {
    /// False when identical content already existed.
    pub created: bool,
    /// The digest the tag pointed to before, when the tag moved.
    pub previous_tag_target: Option<Digest>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ManifestMeta {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub artifact_type: Option<String>,
    pub subject: Option<Digest>,
    pub annotations: Option<serde_json::Value>,
    pub architecture: Option<String>,
    pub os: Option<String>,
    pub tags: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub attributes: ChangeableAttributes,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ManifestRecord {
    pub meta: ManifestMeta,
    pub bytes: bytes::Bytes,
}

/// A manifest reference as one read found it, with what may lock it
/// (`MetadataStore::manifest_read`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ManifestRead {
    /// The repository's attributes; `None` when the repository does not exist.
    pub repository: Option<ChangeableAttributes>,
    /// The tag's attributes, for a reference by a tag that exists.
    pub tag: Option<ChangeableAttributes>,
    /// The manifest the reference resolves to.
    pub manifest: Option<ManifestMeta>,
    /// Its bytes, when they were asked for and the manifest exists.
    pub bytes: Option<bytes::Bytes>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TagRecord {
    pub name: String,
    pub digest: Digest,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub attributes: ChangeableAttributes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Lexical by name (tags) or digest (manifests); `last` pages.
    #[default]
    Name,
    /// Newest first (ACR `timedesc`).
    TimeDesc,
    /// Oldest first (ACR `timeasc`).
    TimeAsc,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    /// Only entries strictly after this name/digest (for `Order::Name`), or after the entry
    /// with this name/digest in the chosen order.
    pub last: Option<String>,
    pub n: Option<usize>,
    pub order: Order,
    /// Only tags pointing at this digest (ACR `_tags?digest=`).
    pub digest: Option<Digest>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadRecord {
    pub id: UploadId,
    pub registry: RegistryKey,
    pub repository: String,
    pub algorithm: String,
    pub created_at: DateTime<Utc>,
    /// Who opened the session (the caller's principal id), for the per-principal cap. `None`
    /// for sessions recorded before Wharf kept it.
    pub principal: Option<String>,
    /// The last request that named the session (recorded at most about once a minute, see the
    /// server's upload sweep); idle sessions expire from it.
    pub last_activity: DateTime<Utc>,
}

impl UploadRecord {
    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm.parse().unwrap_or(DigestAlgorithm::Sha256)
    }

    pub fn repository(&self) -> Option<RepositoryName> {
        RepositoryName::parse(&self.repository).ok()
    }
}

/// Caps on open upload sessions that [`crate::MetadataStore::upload_put`] enforces; `None` is
/// no cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UploadLimits {
    pub per_registry: Option<u64>,
    pub per_principal: Option<u64>,
}

/// Which cap an upload session would exceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum UploadLimitScope {
    Registry,
    Principal,
}

/// A blob the metadata store records as held by the blob store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlobRecord {
    pub digest: Digest,
    pub size: u64,
    pub recorded_at: DateTime<Utc>,
}

/// What uses a recorded blob.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BlobReferences {
    /// Repositories in which the blob is visible.
    pub links: u64,
    /// Manifests that reference it (config, layers).
    pub manifests: u64,
}

impl BlobReferences {
    pub fn is_empty(&self) -> bool {
        self.links == 0 && self.manifests == 0
    }
}

/// A link or a manifest reference to a blob that has no record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnrecordedReference {
    pub digest: Digest,
    pub registry: RegistryKey,
    pub repository: String,
    /// The manifest that references it; `None` for a repository's link.
    pub manifest: Option<Digest>,
}

/// How much the metadata store holds, for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MetadataCounts {
    pub repositories: u64,
    pub manifests: u64,
    pub tags: u64,
    pub blobs: u64,
    /// Sum of the recorded blobs' sizes.
    pub blob_bytes: u64,
    pub blob_links: u64,
    pub uploads: u64,
    /// Task runs, whatever their status.
    pub runs: u64,
}

/// The run statuses the metadata store acts on itself (ACR's `RunStatus` names). Every other
/// status (`Succeeded`, `Failed`, `Canceled`, `Error`, `Timeout`, …) is an opaque string to it.
pub mod run_status {
    /// Waiting for an agent: what [`crate::MetadataStore::run_claim`] takes.
    pub const QUEUED: &str = "Queued";
    /// Claimed by an agent, which holds its lease.
    pub const STARTED: &str = "Started";
    /// Being executed by the agent that holds its lease.
    pub const RUNNING: &str = "Running";
}

/// A run to enqueue ([`crate::MetadataStore::run_create`]); the store numbers it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    pub registry: RegistryKey,
    /// The run id is this prefix followed by the run's number (ACR: `ca1`, `ca2`, …).
    pub id_prefix: String,
    /// The task it runs, `None` for a quick run (`az acr build`, `az acr run`).
    pub task: Option<String>,
    pub status: String,
    /// The run as the tasks plane keeps it (ARM `properties` and whatever the agent needs).
    pub body: serde_json::Value,
}

/// One tick of a task's timer trigger: what [`crate::MetadataStore::run_create_for_tick`]
/// claims, so that a tick queues one run whichever process or replica sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerTick {
    /// The task's resource id (compared case-insensitively).
    pub task: String,
    /// The timer trigger's name (compared exactly).
    pub trigger: String,
    /// The schedule occurrence.
    pub tick: DateTime<Utc>,
}

/// How a task's run uses an image (base-image triggers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskImageRole {
    /// The base image of the build's final stage: what the built image runs on.
    Runtime,
    /// The base image of another stage of the build.
    BuildTime,
    /// An image the run pushes.
    Output,
}

impl TaskImageRole {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskImageRole::Runtime => "runtime",
            TaskImageRole::BuildTime => "buildtime",
            TaskImageRole::Output => "output",
        }
    }

    pub fn parse(s: &str) -> Option<TaskImageRole> {
        [TaskImageRole::Runtime, TaskImageRole::BuildTime, TaskImageRole::Output].into_iter().find(|r| r.as_str() == s)
    }
}

/// An image of a registry of this deployment that a task's last run used or pushed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TaskImage {
    /// The key of the registry the image is in.
    pub registry: RegistryKey,
    pub repository: String,
    pub tag: String,
    pub role: TaskImageRole,
    /// What the tag named when the run started; `None` when it named nothing, and for outputs.
    pub digest: Option<String>,
}

/// A [`TaskImage`] with the task it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskImageRow {
    /// The task's resource id, lowercased.
    pub task: String,
    /// The key of the task's registry (whose queue its runs go to).
    pub task_registry: RegistryKey,
    pub image: TaskImage,
}

/// One run of a registry's run queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub registry: RegistryKey,
    /// `{id_prefix}{number}` as created; compared case-insensitively.
    pub run_id: String,
    /// 1, 2, … per registry, in creation order; never reused.
    pub number: u64,
    /// As created; compared case-insensitively.
    pub task: Option<String>,
    pub status: String,
    pub body: serde_json::Value,
    /// The agent that claimed it, while (and after) it held the lease.
    pub agent: Option<String>,
    /// Until when the agent's lease holds; a run in progress whose lease ended is the agent's
    /// no more ([`crate::MetadataStore::run_expired_leases`]).
    pub lease_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Which runs [`crate::MetadataStore::run_list`] returns; `None` fields do not filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFilter {
    /// Only runs of this task, compared case-insensitively.
    pub task: Option<String>,
    /// Only runs of exactly this status.
    pub status: Option<String>,
    /// At most this many (the newest).
    pub top: Option<usize>,
}
