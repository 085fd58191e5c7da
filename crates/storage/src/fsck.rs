//! The checks and safe repairs of `wharf admin fsck`: a data directory's stores at rest, checked
//! against each other.
//!
//! What is checked: the metadata backend's own integrity; every blob record's bytes (present,
//! of the recorded size, hashing to the digest); every link and manifest reference naming a
//! recorded blob; upload session records against the sessions the blob store holds (including
//! commits a crash interrupted); blob files that no record knows; content of registries whose
//! resource is gone. Each problem found is a [`Finding`]: the [`Problem`] (a value that says what
//! is wrong) and its [`Resolution`] (what `--repair` does, did, or why it cannot).
//!
//! Repairs only ever make the stores agree without losing anything a client could still reach:
//! a record is dropped only when its bytes are gone and nothing references it; bytes are deleted
//! only when no record knows them and they are older than the grace period; bytes that do not
//! match their digest are moved to quarantine (kept for inspection), never deleted. Nothing is
//! repaired when the database itself is damaged.
//!
//! This module goes through the store traits only; it must never be run on stores a server is
//! using (the caller holds the data directory's lock, see [`crate::lock`]) and never prints:
//! the caller renders the [`Report`] (its `Display` is the text report) and the [`Progress`].

use std::collections::{HashMap, HashSet};
use std::fmt;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;
use wharf_oci::{Digest, Hasher};

use crate::maintenance;
use crate::{
    BlobReferences, BlobStore, MetadataCounts, MetadataStore, RegistryKey, Result, UnrecordedReference, UploadId,
    UploadRecord, UploadState,
};

/// How a check runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Repair what can be repaired safely (otherwise nothing is changed).
    pub repair: bool,
    pub now: DateTime<Utc>,
    /// Blob files no record knows are deleted only when last written this long before `now`.
    pub grace_seconds: i64,
    /// Keys of the registries that exist, when the caller knows them: content of any other
    /// registry is left over from a deletion that did not finish.
    pub live_registries: Option<HashSet<RegistryKey>>,
}

/// Progress of the long steps, for a terminal.
pub trait Progress: Sync {
    /// `done` of `total` units (bytes or items) of `step`.
    fn update(&self, _step: &'static str, _done: u64, _total: u64) {}
    /// The step is over (a terminal line can be cleared).
    fn finish(&self) {}
}

/// Reports no progress.
pub struct Silent;
impl Progress for Silent {}

/// What a check found and did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub repair: bool,
    /// Repairs were not attempted because the database is damaged.
    pub repair_refused: bool,
    pub counts: Counts,
    pub findings: Vec<Finding>,
}

/// How much was checked.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub metadata: MetadataCounts,
    /// Blob files in the blob store.
    pub blob_files: u64,
    /// Bytes read again to verify digests.
    pub rehashed_bytes: u64,
    /// Upload sessions the blob store holds (open, committed or empty).
    pub upload_sessions: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub problem: Problem,
    pub resolution: Resolution,
}

/// One thing wrong with a data directory.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Problem {
    /// The metadata backend's own check failed.
    Database { detail: String },
    /// A blob is recorded but the blob store does not hold it.
    BlobMissing { digest: Digest, size: u64, references: BlobReferences },
    /// The blob store holds a blob of another size than recorded.
    BlobWrongSize { digest: Digest, recorded: u64, actual: u64, references: BlobReferences },
    /// A blob's bytes do not hash to its digest.
    BlobCorrupt { digest: Digest, actual: Digest, references: BlobReferences },
    /// A link or manifest reference names a blob that has no record.
    UnrecordedReference { reference: UnrecordedReference, bytes_present: bool },
    /// A blob file that no record knows.
    OrphanBlob { digest: Digest, size: u64, modified: DateTime<Utc> },
    /// An upload session record whose session the blob store does not hold.
    UploadWithoutBytes { id: UploadId, repository: String },
    /// An upload session the blob store holds but no record knows.
    UploadWithoutRecord { id: UploadId },
    /// An upload session directory holding nothing (a crash while it was created or removed).
    UploadEmpty { id: UploadId, recorded: bool },
    /// A commit whose metadata write a crash interrupted: the content is in the blob store, the
    /// session not released.
    UploadCommitInterrupted { id: UploadId, digest: Digest, size: u64, recorded: bool },
    /// Content of a registry whose resource no longer exists (a deletion that did not finish).
    DeletedRegistryContent { registry: RegistryKey },
}

/// What happens about a problem.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", content = "action", rename_all = "kebab-case")]
pub enum Resolution {
    /// `--repair` would do this.
    Repairable(String),
    /// This run did this.
    Repaired(String),
    /// It stays: why, and what to do about it.
    Unrepairable(String),
}

impl Report {
    /// Problems that remain after this run (all of them without `--repair`, except none).
    pub fn remaining(&self) -> usize {
        self.findings.iter().filter(|f| !matches!(f.resolution, Resolution::Repaired(_))).count()
    }

    pub fn repaired(&self) -> usize {
        self.findings.len() - self.remaining()
    }

    /// Nothing remains wrong.
    pub fn is_clean(&self) -> bool {
        self.remaining() == 0
    }
}

/// Blob records read per page while walking them.
const PAGE: usize = 500;

struct Run<'a> {
    meta: &'a dyn MetadataStore,
    blobs: &'a dyn BlobStore,
    options: &'a Options,
    progress: &'a dyn Progress,
    repair: bool,
    findings: Vec<Finding>,
    counts: Counts,
    /// Blob files that other findings already account for (not reported as orphans).
    accounted: HashSet<Digest>,
}

/// Checks the two stores, repairing what it safely can when `options.repair` is set.
pub async fn run(
    meta: &dyn MetadataStore,
    blobs: &dyn BlobStore,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Report> {
    let mut run = Run {
        meta,
        blobs,
        options,
        progress,
        repair: options.repair,
        findings: Vec::new(),
        counts: Counts::default(),
        accounted: HashSet::new(),
    };
    let damaged = run.database().await?;
    let repair_refused = options.repair && damaged;
    run.repair &= !damaged;
    run.uploads().await?;
    run.counts.metadata = meta.counts().await?;
    run.blob_records().await?;
    run.unrecorded_references().await?;
    run.deleted_registries().await?;
    run.blob_files().await?;
    Ok(Report { repair: options.repair, repair_refused, counts: run.counts, findings: run.findings })
}

impl Run<'_> {
    fn found(&mut self, problem: Problem, resolution: Resolution) {
        self.findings.push(Finding { problem, resolution });
    }

    /// Repairable (described) without `--repair`; with it, the outcome of `repair`.
    fn plan(&self, what: &str) -> Option<Resolution> {
        (!self.repair).then(|| Resolution::Repairable(what.to_string()))
    }

    async fn database(&mut self) -> Result<bool> {
        let problems = self.meta.integrity_check().await?;
        for detail in &problems {
            self.found(
                Problem::Database { detail: detail.clone() },
                Resolution::Unrepairable(
                    "fsck does not repair the database: restore metadata.db from a backup (see docs/operations.md)"
                        .into(),
                ),
            );
        }
        Ok(!problems.is_empty())
    }

    async fn uploads(&mut self) -> Result<()> {
        let records: HashMap<UploadId, UploadRecord> =
            self.meta.upload_list().await?.into_iter().map(|r| (r.id.clone(), r)).collect();
        let inventory = self.blobs.upload_inventory().await?;
        self.counts.upload_sessions = inventory.len() as u64;
        let mut on_disk = HashSet::new();
        for entry in inventory {
            on_disk.insert(entry.id.clone());
            let record = records.get(&entry.id);
            match entry.state {
                UploadState::Open if record.is_some() => {}
                UploadState::Open => {
                    let resolution = match self.plan("discard its bytes") {
                        Some(r) => r,
                        None => {
                            self.blobs.upload_abort(&entry.id).await?;
                            Resolution::Repaired("discarded its bytes".into())
                        }
                    };
                    self.found(Problem::UploadWithoutRecord { id: entry.id }, resolution);
                }
                UploadState::Empty => {
                    let resolution = match self.plan("remove the directory (and the record)") {
                        Some(r) => r,
                        None => {
                            if record.is_some() {
                                self.meta.upload_delete(&entry.id).await?;
                            }
                            self.blobs.upload_abort(&entry.id).await?;
                            Resolution::Repaired("removed the directory (and the record)".into())
                        }
                    };
                    self.found(Problem::UploadEmpty { id: entry.id, recorded: record.is_some() }, resolution);
                }
                UploadState::Committed { digest, size } => {
                    self.accounted.insert(digest.clone());
                    let what = match record {
                        Some(r) => format!(
                            "link the blob into repository '{}' and release the session, as the interrupted request would have (what `wharf serve` does at start-up)",
                            r.repository
                        ),
                        None => {
                            "release the session (no record knows it: the blob is left to garbage collection)".into()
                        }
                    };
                    let resolution = match self.plan(&what) {
                        Some(r) => r,
                        None => {
                            let linked =
                                maintenance::complete_one(self.meta, self.blobs, &entry.id, record, &digest, size)
                                    .await?;
                            if !linked {
                                self.accounted.remove(&digest);
                            }
                            Resolution::Repaired(if linked {
                                "linked the blob and released the session".into()
                            } else {
                                "released the session".into()
                            })
                        }
                    };
                    self.found(
                        Problem::UploadCommitInterrupted { id: entry.id, digest, size, recorded: record.is_some() },
                        resolution,
                    );
                }
            }
        }
        for (id, record) in records.iter().filter(|(id, _)| !on_disk.contains(*id)) {
            let resolution = match self.plan("drop the record (the session cannot be resumed)") {
                Some(r) => r,
                None => {
                    self.meta.upload_delete(id).await?;
                    Resolution::Repaired("dropped the record".into())
                }
            };
            self.found(
                Problem::UploadWithoutBytes { id: id.clone(), repository: record.repository.clone() },
                resolution,
            );
        }
        Ok(())
    }

    async fn blob_records(&mut self) -> Result<()> {
        let total = self.counts.metadata.blob_bytes;
        let mut after: Option<Digest> = None;
        loop {
            let page = self.meta.blob_records(after.as_ref(), PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.digest.clone());
            for record in page {
                let problem = match self.blobs.blob_info(&record.digest).await? {
                    None => Some(Problem::BlobMissing {
                        digest: record.digest.clone(),
                        size: record.size,
                        references: self.meta.blob_references(&record.digest).await?,
                    }),
                    Some(held) if held.size != record.size => Some(Problem::BlobWrongSize {
                        digest: record.digest.clone(),
                        recorded: record.size,
                        actual: held.size,
                        references: self.meta.blob_references(&record.digest).await?,
                    }),
                    Some(_) => match self.rehash(&record.digest, total).await? {
                        actual if actual == record.digest => None,
                        actual => Some(Problem::BlobCorrupt {
                            digest: record.digest.clone(),
                            actual,
                            references: self.meta.blob_references(&record.digest).await?,
                        }),
                    },
                };
                if let Some(problem) = problem {
                    let resolution = self.bad_bytes(&problem).await?;
                    self.found(problem, resolution);
                }
            }
        }
        self.progress.finish();
        Ok(())
    }

    /// Hashes a stored blob again, reporting progress against `total` bytes.
    async fn rehash(&mut self, digest: &Digest, total: u64) -> Result<Digest> {
        let mut hasher = Hasher::new(digest.algorithm());
        let mut stream = self.blobs.read(digest, None).await?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            hasher.update(&chunk);
            self.counts.rehashed_bytes += chunk.len() as u64;
            self.progress.update("verifying blob digests", self.counts.rehashed_bytes, total);
        }
        Ok(hasher.finish())
    }

    /// The resolution of a recorded blob whose bytes are missing or wrong.
    async fn bad_bytes(&mut self, problem: &Problem) -> Result<Resolution> {
        let (digest, references, present) = match problem {
            Problem::BlobMissing { digest, references, .. } => (digest, *references, false),
            Problem::BlobWrongSize { digest, references, .. } | Problem::BlobCorrupt { digest, references, .. } => {
                (digest, *references, true)
            }
            _ => unreachable!("only blob problems have bad bytes"),
        };
        let push_again = format!(
            "{} and {} use it: push the blob again (e.g. push the image again) to restore its bytes",
            plural(references.links, "repository links", "repositories link"),
            plural(references.manifests, "manifest references", "manifests reference"),
        );
        let quarantine = "move the bad bytes to quarantine/ (kept for inspection)";
        if !self.repair {
            return Ok(match (present, references.is_empty()) {
                (false, true) => Resolution::Repairable("drop the record (nothing uses the blob)".into()),
                (true, true) => {
                    Resolution::Repairable(format!("{quarantine} and drop the record (nothing uses the blob)"))
                }
                // Half a repair: the bytes go, the problem (a used blob without them) stays.
                (true, false) => Resolution::Unrepairable(format!("--repair would {quarantine}; then {push_again}")),
                (false, false) => Resolution::Unrepairable(push_again),
            });
        }
        let mut done = Vec::new();
        if present {
            self.blobs.quarantine(digest).await?;
            done.push("moved the bad bytes to quarantine/");
        }
        if self.meta.blob_forget(digest).await? {
            done.push("dropped the record");
            return Ok(Resolution::Repaired(done.join(" and ")));
        }
        Ok(match done.is_empty() {
            true => Resolution::Unrepairable(push_again),
            false => Resolution::Unrepairable(format!("{}; {push_again}", done.join(" and "))),
        })
    }

    async fn unrecorded_references(&mut self) -> Result<()> {
        for reference in self.meta.blob_references_unrecorded().await? {
            let held = self.blobs.blob_info(&reference.digest).await?;
            let intact = match &held {
                Some(_) => self.rehash(&reference.digest, 0).await? == reference.digest,
                None => false,
            };
            self.progress.finish();
            let resolution = if !intact {
                Resolution::Unrepairable(format!(
                    "the blob store does not hold its bytes{}: push the blob again to restore them",
                    if held.is_some() { " intact" } else { "" }
                ))
            } else {
                self.accounted.insert(reference.digest.clone());
                match self.plan("record the blob (its bytes are present and match their digest)") {
                    Some(r) => r,
                    None => {
                        let size = held.as_ref().map(|b| b.size).unwrap_or(0);
                        self.meta.blob_record(&reference.digest, size).await?;
                        Resolution::Repaired("recorded the blob".into())
                    }
                }
            };
            self.found(Problem::UnrecordedReference { bytes_present: held.is_some(), reference }, resolution);
        }
        Ok(())
    }

    async fn deleted_registries(&mut self) -> Result<()> {
        let Some(live) = &self.options.live_registries else { return Ok(()) };
        for registry in self.meta.registry_keys_with_content().await? {
            if live.contains(&registry) {
                continue;
            }
            let what = "delete its repositories, manifests, tags, links and upload sessions (the server's garbage collection then removes blobs nothing else uses)";
            let resolution = match self.plan(what) {
                Some(r) => r,
                None => {
                    let uploads = self.meta.registry_purge(&registry).await?;
                    maintenance::discard_uploads(self.blobs, &uploads).await?;
                    Resolution::Repaired(format!(
                        "deleted its content and {}",
                        plural(uploads.len() as u64, "upload session", "upload sessions")
                    ))
                }
            };
            self.found(Problem::DeletedRegistryContent { registry }, resolution);
        }
        Ok(())
    }

    async fn blob_files(&mut self) -> Result<()> {
        let mut listing = self.blobs.blob_list().await?;
        let mut batch = Vec::with_capacity(PAGE);
        loop {
            let next = listing.next().await.transpose()?;
            let finished = next.is_none();
            if let Some(blob) = next {
                self.counts.blob_files += 1;
                self.progress.update("listing blob files", self.counts.blob_files, self.counts.metadata.blobs);
                if !self.accounted.contains(&blob.digest) {
                    batch.push(blob);
                }
            }
            if batch.len() >= PAGE || (finished && !batch.is_empty()) {
                let digests: Vec<Digest> = batch.iter().map(|b| b.digest.clone()).collect();
                let known: HashSet<Digest> =
                    self.meta.blob_records_of(&digests).await?.into_iter().map(|r| r.digest).collect();
                for blob in std::mem::take(&mut batch) {
                    if !known.contains(&blob.digest) {
                        self.orphan(blob).await?;
                    }
                }
            }
            if finished {
                break;
            }
        }
        self.progress.finish();
        Ok(())
    }

    async fn orphan(&mut self, blob: crate::StoredBlob) -> Result<()> {
        let cutoff = self.options.now - chrono::Duration::seconds(self.options.grace_seconds);
        let resolution = if blob.modified >= cutoff {
            Resolution::Unrepairable(format!(
                "written less than {} s ago (the grace period of a commit whose record is still to come): left alone; run fsck again later",
                self.options.grace_seconds
            ))
        } else {
            match self.plan("delete it") {
                Some(r) => r,
                None => {
                    self.blobs.delete(&blob.digest).await?;
                    Resolution::Repaired("deleted it".into())
                }
            }
        };
        self.found(Problem::OrphanBlob { digest: blob.digest, size: blob.size, modified: blob.modified }, resolution);
        Ok(())
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `1.5 MiB`-style sizes for people.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} bytes") } else { format!("{value:.1} {}", UNITS[unit]) }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let uses = |r: &BlobReferences| {
            format!(
                "{}, {}",
                plural(r.links, "repository links it", "repositories link it"),
                plural(r.manifests, "manifest references it", "manifests reference it")
            )
        };
        match self {
            Problem::Database { detail } => write!(f, "the metadata database is damaged: {detail}"),
            Problem::BlobMissing { digest, size, references } => {
                write!(
                    f,
                    "blob {digest} ({}) is recorded but its bytes are missing; {}",
                    human_bytes(*size),
                    uses(references)
                )
            }
            Problem::BlobWrongSize { digest, recorded, actual, references } => write!(
                f,
                "blob {digest} is recorded with {recorded} bytes but its file holds {actual}; {}",
                uses(references)
            ),
            Problem::BlobCorrupt { digest, actual, references } => {
                write!(f, "blob {digest}'s bytes hash to {actual}: they are not its content; {}", uses(references))
            }
            Problem::UnrecordedReference { reference, bytes_present } => {
                let by = match &reference.manifest {
                    Some(m) => format!("manifest {m} in repository '{}'", reference.repository),
                    None => format!("repository '{}'", reference.repository),
                };
                write!(
                    f,
                    "{by} (registry key {}) uses blob {}, which has no record{}",
                    reference.registry.0,
                    reference.digest,
                    if *bytes_present { "" } else { " and whose bytes are missing" }
                )
            }
            Problem::OrphanBlob { digest, size, modified } => write!(
                f,
                "blob file {digest} ({}, last written {}) is known to no record",
                human_bytes(*size),
                modified.format("%Y-%m-%d %H:%M:%S UTC")
            ),
            Problem::UploadWithoutBytes { id, repository } => {
                write!(f, "upload session {id} (repository '{repository}') is recorded but holds no bytes on disk")
            }
            Problem::UploadWithoutRecord { id } => write!(f, "upload session {id} holds bytes but has no record"),
            Problem::UploadEmpty { id, recorded } => write!(
                f,
                "upload session {id} is an empty directory{}",
                if *recorded { " (its record remains)" } else { "" }
            ),
            Problem::UploadCommitInterrupted { id, digest, size, recorded } => write!(
                f,
                "upload session {id} committed blob {digest} ({}) but a crash interrupted it before {}",
                human_bytes(*size),
                if *recorded { "the blob was recorded and linked" } else { "the session was released" }
            ),
            Problem::DeletedRegistryContent { registry } => write!(
                f,
                "registry key {} holds content but no registry has that key (its deletion did not finish)",
                registry.0
            ),
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counts;
        let m = &c.metadata;
        writeln!(
            f,
            "database         {}",
            if self.findings.iter().any(|x| matches!(x.problem, Problem::Database { .. })) {
                "DAMAGED"
            } else {
                "ok (integrity and foreign keys)"
            }
        )?;
        writeln!(
            f,
            "blob records     {} ({}), {} verified again",
            m.blobs,
            human_bytes(m.blob_bytes),
            human_bytes(c.rehashed_bytes)
        )?;
        writeln!(f, "blob files       {}", c.blob_files)?;
        writeln!(
            f,
            "repositories     {} ({} manifests, {} tags, {} blob links)",
            m.repositories, m.manifests, m.tags, m.blob_links
        )?;
        writeln!(f, "upload sessions  {} recorded, {} in the blob store", m.uploads, c.upload_sessions)?;
        writeln!(f)?;
        if self.findings.is_empty() {
            return writeln!(f, "No problems found.");
        }
        writeln!(f, "{}:", plural(self.findings.len() as u64, "problem", "problems"))?;
        for (i, finding) in self.findings.iter().enumerate() {
            writeln!(f, "{:>3}. {}", i + 1, finding.problem)?;
            match &finding.resolution {
                Resolution::Repairable(what) => writeln!(f, "     --repair: {what}")?,
                Resolution::Repaired(what) => writeln!(f, "     repaired: {what}")?,
                Resolution::Unrepairable(why) => writeln!(f, "     not repaired: {why}")?,
            }
        }
        writeln!(f)?;
        if self.repair_refused {
            writeln!(f, "Nothing was repaired: the database is damaged, and repairs are not attempted on it.")?;
        }
        let repairable = self.findings.iter().filter(|x| matches!(x.resolution, Resolution::Repairable(_))).count();
        match (self.repair, self.remaining()) {
            (true, 0) => {
                writeln!(f, "Repaired {}; none remain.", plural(self.repaired() as u64, "problem", "problems"))
            }
            (true, left) => {
                writeln!(f, "Repaired {}; {} remain.", plural(self.repaired() as u64, "problem", "problems"), left)
            }
            (false, left) => writeln!(
                f,
                "{} found; --repair fixes {} of them.",
                plural(left as u64, "problem", "problems"),
                repairable
            ),
        }
    }
}
