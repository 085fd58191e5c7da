//! Conversions between SQL values and the store's records; the column lists they read.

use chrono::{DateTime, Utc};
use rusqlite::Row;
use wharf_oci::Digest;

use crate::{
    BlobRecord, ChangeableAttributes, ManifestMeta, RegistryKey, ResourceRecord, Result, RunRecord, StorageError,
    TagRecord, UploadId, UploadRecord,
};

pub(super) fn time(ns: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(ns)
}

pub(super) fn nanos(t: &DateTime<Utc>) -> Result<i64> {
    t.timestamp_nanos_opt().ok_or_else(|| StorageError::Database(format!("time {t} is out of range")))
}

pub(super) fn digest(s: String) -> Result<Digest> {
    Digest::parse(&s).map_err(|e| StorageError::Corrupt(format!("stored digest {s:?}: {e}")))
}

pub(super) fn size(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(super) fn to_i64(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| StorageError::Database(format!("size {v} is out of range")))
}

pub(super) fn json(s: Option<String>) -> Result<Option<serde_json::Value>> {
    s.map(|s| serde_json::from_str(&s).map_err(|e| StorageError::Corrupt(format!("stored JSON: {e}")))).transpose()
}

pub(super) fn attributes(row: &Row<'_>, first: usize) -> Result<ChangeableAttributes> {
    Ok(ChangeableAttributes {
        delete_enabled: row.get(first)?,
        write_enabled: row.get(first + 1)?,
        read_enabled: row.get(first + 2)?,
        list_enabled: row.get(first + 3)?,
    })
}

pub(super) fn limit(n: Option<usize>) -> i64 {
    n.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX))
}

pub(super) fn lower(s: &str) -> String {
    s.to_lowercase()
}

pub(super) const RESOURCE_COLS: &str = "id, type, name, resource_group, key, body, created_at, updated_at";

pub(super) fn resource_from_row(row: &Row<'_>) -> Result<ResourceRecord> {
    let body: String = row.get(5)?;
    Ok(ResourceRecord {
        id: row.get(0)?,
        resource_type: row.get(1)?,
        name: row.get(2)?,
        resource_group: row.get(3)?,
        key: row.get(4)?,
        body: serde_json::from_str(&body).map_err(|e| StorageError::Corrupt(format!("resource body: {e}")))?,
        created_at: time(row.get(6)?),
        updated_at: time(row.get(7)?),
    })
}

pub(super) fn collect<T>(mut rows: rusqlite::Rows<'_>, f: impl Fn(&Row<'_>) -> Result<T>) -> Result<Vec<T>> {
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(f(row)?);
    }
    Ok(out)
}

/// Manifest columns, in the order `meta_from_row` reads them; `m` is the manifests table.
pub(super) const META_COLS: &str = "m.digest, m.media_type, m.size, m.artifact_type, m.subject, m.annotations, \
     m.architecture, m.os, \
     (SELECT group_concat(t.name, ',') FROM tags t WHERE t.repo_id = m.repo_id AND t.digest = m.digest), \
     m.created_at, m.updated_at, m.delete_enabled, m.write_enabled, m.read_enabled, m.list_enabled";
pub(super) const META_LEN: usize = 15;

pub(super) fn meta_from_row(row: &Row<'_>) -> Result<ManifestMeta> {
    let tags: Option<String> = row.get(8)?;
    let mut tags: Vec<String> = tags.map(|t| t.split(',').map(str::to_string).collect()).unwrap_or_default();
    tags.sort();
    Ok(ManifestMeta {
        digest: digest(row.get(0)?)?,
        media_type: row.get(1)?,
        size: size(row.get(2)?),
        artifact_type: row.get(3)?,
        subject: row.get::<_, Option<String>>(4)?.map(digest).transpose()?,
        annotations: json(row.get(5)?)?,
        architecture: row.get(6)?,
        os: row.get(7)?,
        tags,
        created_at: time(row.get(9)?),
        updated_at: time(row.get(10)?),
        attributes: attributes(row, 11)?,
    })
}

pub(super) const TAG_COLS: &str =
    "t.name, t.digest, t.created_at, t.updated_at, t.delete_enabled, t.write_enabled, t.read_enabled, t.list_enabled";

pub(super) fn tag_from_row(row: &Row<'_>) -> Result<TagRecord> {
    Ok(TagRecord {
        name: row.get(0)?,
        digest: digest(row.get(1)?)?,
        created_at: time(row.get(2)?),
        updated_at: time(row.get(3)?),
        attributes: attributes(row, 4)?,
    })
}

/// Upload columns, in the order `upload_from_row` reads them.
pub(super) const UPLOAD_COLS: &str = "id, registry, repository, algorithm, created_at, principal, last_activity";

pub(super) fn upload_from_row(row: &Row<'_>) -> Result<UploadRecord> {
    let id: String = row.get(0)?;
    Ok(UploadRecord {
        id: UploadId::parse(&id).ok_or_else(|| StorageError::Corrupt(format!("stored upload id {id:?}")))?,
        registry: RegistryKey(row.get(1)?),
        repository: row.get(2)?,
        algorithm: row.get(3)?,
        created_at: time(row.get(4)?),
        principal: row.get(5)?,
        last_activity: time(row.get(6)?),
    })
}

pub(super) fn blob_from_row(row: &Row<'_>) -> Result<BlobRecord> {
    Ok(BlobRecord { digest: digest(row.get(0)?)?, size: size(row.get(1)?), recorded_at: time(row.get(2)?) })
}

/// Run columns, in the order `run_from_row` reads them.
pub(super) const RUN_COLS: &str =
    "registry, run_id, number, task, status, body, agent, lease_until, created_at, updated_at";

pub(super) fn run_from_row(row: &Row<'_>) -> Result<RunRecord> {
    let body: String = row.get(5)?;
    Ok(RunRecord {
        registry: RegistryKey(row.get(0)?),
        run_id: row.get(1)?,
        number: size(row.get(2)?),
        task: row.get(3)?,
        status: row.get(4)?,
        body: serde_json::from_str(&body).map_err(|e| StorageError::Corrupt(format!("run body: {e}")))?,
        agent: row.get(6)?,
        lease_until: row.get::<_, Option<i64>>(7)?.map(time),
        created_at: time(row.get(8)?),
        updated_at: time(row.get(9)?),
    })
}
