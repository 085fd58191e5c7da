//! The SQL of every [`MetadataStore`] operation, each one a single statement or transaction.

use std::sync::LazyLock;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use wharf_oci::{Digest, Reference, RepositoryName, Tag};

use super::SqliteMetadataStore;
use super::rows::*;
use crate::{
    BlobRecord, BlobReferences, ChangeableAttributes, ManifestMeta, ManifestPutOutcome, ManifestRead, MetadataCounts,
    MetadataStore, NewManifest, NewRun, Order, Page, RegistryKey, RepositoryRecord, ResourceFilter, ResourceRecord,
    Result, RunFilter, RunRecord, StorageError, TagRecord, TaskImage, TaskImageRole, TaskImageRow, TimerTick,
    UnrecordedReference, UploadId, UploadLimitScope, UploadLimits, UploadRecord, run_status,
};

fn repo_id(conn: &Connection, registry: &str, repo: &str) -> Result<Option<i64>> {
    let mut stmt = conn.prepare_cached("SELECT id FROM repositories WHERE registry = ?1 AND name = ?2")?;
    Ok(stmt.query_row(params![registry, repo], |r| r.get(0)).optional()?)
}

fn ensure_repo(tx: &Transaction<'_>, registry: &str, repo: &str, now: i64) -> Result<i64> {
    tx.prepare_cached(
        "INSERT INTO repositories (registry, name, created_at, updated_at) VALUES (?1, ?2, ?3, ?3) \
         ON CONFLICT (registry, name) DO NOTHING",
    )?
    .execute(params![registry, repo, now])?;
    repo_id(tx, registry, repo)?.ok_or_else(|| StorageError::Database("repository row vanished".into()))
}

fn touch_repo(tx: &Transaction<'_>, id: i64, now: i64) -> Result<()> {
    tx.prepare_cached("UPDATE repositories SET updated_at = ?2 WHERE id = ?1")?.execute(params![id, now])?;
    Ok(())
}

/// Removes the repository row once it holds neither blob links nor manifests.
fn prune_repo(tx: &Transaction<'_>, id: i64) -> Result<()> {
    tx.prepare_cached(
        "DELETE FROM repositories WHERE id = ?1 \
         AND NOT EXISTS (SELECT 1 FROM blob_links WHERE repo_id = ?1) \
         AND NOT EXISTS (SELECT 1 FROM manifests WHERE repo_id = ?1)",
    )?
    .execute(params![id])?;
    Ok(())
}

fn set_attributes_sql(table: &str, key: &str) -> String {
    format!(
        "UPDATE {table} SET delete_enabled = ?3, write_enabled = ?4, read_enabled = ?5, list_enabled = ?6 \
         WHERE repo_id = ?1 AND {key} = ?2"
    )
}

/// Keyset paging clause and ordering for a table aliased `x` whose name column is `col`.
/// `?1` is the repository id, `?3` the `last` name or digest, `?4` the limit. In the time orders,
/// an unknown `last` yields nothing (there is no position to continue from).
fn page_sql(order: Order, alias: &str, table: &str, col: &str) -> String {
    let x = alias;
    match order {
        Order::Name => format!("AND (?3 IS NULL OR {x}.{col} > ?3) ORDER BY {x}.{col} LIMIT ?4"),
        Order::TimeAsc => format!(
            "AND (?3 IS NULL OR ({x}.updated_at, {x}.{col}) > \
               (SELECT updated_at, {col} FROM {table} WHERE repo_id = ?1 AND {col} = ?3)) \
             ORDER BY {x}.updated_at, {x}.{col} LIMIT ?4"
        ),
        Order::TimeDesc => format!(
            "AND (?3 IS NULL OR ({x}.updated_at, {x}.{col}) < \
               (SELECT updated_at, {col} FROM {table} WHERE repo_id = ?1 AND {col} = ?3)) \
             ORDER BY {x}.updated_at DESC, {x}.{col} DESC LIMIT ?4"
        ),
    }
}

/// Makes a blob visible in a repository (creating the repository row if needed), recording the
/// blob or refreshing its record's time.
fn link_blob(tx: &Transaction<'_>, registry: &str, repo: &str, digest: &str, size: i64, now: i64) -> Result<()> {
    let id = ensure_repo(tx, registry, repo, now)?;
    tx.prepare_cached(
        "INSERT INTO blobs (digest, size, recorded_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (digest) DO UPDATE SET recorded_at = excluded.recorded_at",
    )?
    .execute(params![digest, size, now])?;
    tx.prepare_cached(
        "INSERT INTO blob_links (repo_id, digest, size, linked_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (repo_id, digest) DO NOTHING",
    )?
    .execute(params![id, digest, size, now])?;
    Ok(())
}

/// What keeps a recorded blob (a `blobs` row aliased `b`) from being collected.
const BLOB_IN_USE_SQL: &str = "EXISTS (SELECT 1 FROM blob_links l WHERE l.digest = b.digest) \
     OR EXISTS (SELECT 1 FROM manifest_blob_refs r WHERE r.digest = b.digest) \
     OR EXISTS (SELECT 1 FROM manifests m WHERE m.digest = b.digest)";

/// Blob HEAD/GET's visibility check: two index searches.
const BLOB_VISIBLE_SQL: &str = "SELECT l.size FROM repositories r \
     JOIN blob_links l ON l.repo_id = r.id AND l.digest = ?3 WHERE r.registry = ?1 AND r.name = ?2";

/// Takes the first queued run in queue order (`?1` 'Queued', `?2` 'Started', `?3` the agent, `?4`
/// the lease, `?5` now): one statement, the choice an index search of `runs_by_status`.
const RUN_CLAIM_SQL: &str = "UPDATE runs SET status = ?2, agent = ?3, lease_until = ?4, updated_at = ?5 \
     WHERE (registry, number) = \
       (SELECT registry, number FROM runs WHERE status = ?1 ORDER BY created_at, registry, number LIMIT 1)";

/// Queued runs ahead of a run in queue order (`?1` 'Queued', `?2` its creation time, `?3` its
/// registry, `?4` its number).
const RUN_QUEUED_BEFORE_SQL: &str =
    "SELECT count(*) FROM runs WHERE status = ?1 AND (created_at, registry, number) < (?2, ?3, ?4)";

fn lookup_keys(registry: &RegistryKey, repo: &RepositoryName, reference: &Reference) -> (String, String, bool, String) {
    let (by_tag, key) = match reference {
        Reference::Tag(t) => (true, t.as_str().to_string()),
        Reference::Digest(d) => (false, d.to_string()),
    };
    (registry.0.clone(), repo.as_str().to_string(), by_tag, key)
}

/// The manifest read (`?1` registry, `?2` repository, `?3` tag or digest): one statement, every
/// step an index search. Columns: the manifest's ([`META_COLS`], NULL when the reference
/// resolves to nothing), the repository's four attributes, the tag's four (NULL for a digest or
/// a missing tag), then the bytes when asked for. No row when the repository does not exist.
/// Built once; each connection caches it prepared.
fn manifest_read_sql(by_tag: bool, with_bytes: bool) -> &'static str {
    static SQL: LazyLock<[String; 4]> = LazyLock::new(|| {
        let build = |by_tag: bool, with_bytes: bool| {
            let bytes = if with_bytes { ", m.bytes" } else { "" };
            let (tag_cols, from) = if by_tag {
                (
                    "x.delete_enabled, x.write_enabled, x.read_enabled, x.list_enabled",
                    "LEFT JOIN tags x ON x.repo_id = r.id AND x.name = ?3 \
                     LEFT JOIN manifests m ON m.repo_id = r.id AND m.digest = x.digest",
                )
            } else {
                ("NULL, NULL, NULL, NULL", "LEFT JOIN manifests m ON m.repo_id = r.id AND m.digest = ?3")
            };
            format!(
                "SELECT {META_COLS}, r.delete_enabled, r.write_enabled, r.read_enabled, r.list_enabled, \
                 {tag_cols}{bytes} FROM repositories r {from} WHERE r.registry = ?1 AND r.name = ?2"
            )
        };
        [build(false, false), build(false, true), build(true, false), build(true, true)]
    });
    &SQL[usize::from(by_tag) * 2 + usize::from(with_bytes)]
}

#[async_trait]
impl MetadataStore for SqliteMetadataStore {
    async fn setting_get(&self, key: &str) -> Result<Option<String>> {
        let key = key.to_string();
        self.read(move |c| {
            Ok(c.prepare_cached("SELECT value FROM settings WHERE key = ?1")?
                .query_row([key], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    async fn setting_put(&self, key: &str, value: &str) -> Result<()> {
        let (key, value) = (key.to_string(), value.to_string());
        self.write(move |tx, _| {
            tx.prepare_cached(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?
            .execute([key, value])?;
            Ok(())
        })
        .await
    }

    async fn resource_put(&self, resource: &ResourceRecord) -> Result<bool> {
        let r = resource.clone();
        self.write(move |tx, _| {
            let existed = tx.prepare_cached("SELECT 1 FROM resources WHERE id_lower = ?1")?.exists([lower(&r.id)])?;
            insert_resource(tx, &r, true)?;
            Ok(!existed)
        })
        .await
    }

    async fn resource_insert_unique_name(&self, resource: &ResourceRecord) -> Result<()> {
        let r = resource.clone();
        self.write(move |tx, _| {
            let taken = tx
                .prepare_cached("SELECT 1 FROM resources WHERE (type_lower = ?1 AND name_lower = ?2) OR id_lower = ?3")?
                .exists(params![lower(&r.resource_type), lower(&r.name), lower(&r.id)])?;
            if taken {
                return Err(StorageError::Conflict(format!("a {} named '{}' already exists", r.resource_type, r.name)));
            }
            insert_resource(tx, &r, false)?;
            Ok(())
        })
        .await
    }

    async fn resource_get(&self, id: &str) -> Result<Option<ResourceRecord>> {
        let id = lower(id);
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!("SELECT {RESOURCE_COLS} FROM resources WHERE id_lower = ?1"))?;
            Ok(collect(stmt.query([id])?, resource_from_row)?.pop())
        })
        .await
    }

    async fn resource_find_by_name(&self, resource_type: &str, name: &str) -> Result<Option<ResourceRecord>> {
        let (t, n) = (lower(resource_type), lower(name));
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {RESOURCE_COLS} FROM resources WHERE type_lower = ?1 AND name_lower = ?2 ORDER BY id_lower LIMIT 1"
            ))?;
            Ok(collect(stmt.query([t, n])?, resource_from_row)?.pop())
        })
        .await
    }

    async fn resource_list(&self, filter: &ResourceFilter) -> Result<Vec<ResourceRecord>> {
        let t = filter.resource_type.as_deref().map(lower);
        let g = filter.resource_group.as_deref().map(lower);
        let sql = resource_list_sql(t.is_some(), g.is_some());
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&sql)?;
            collect(stmt.query(params![t, g])?, resource_from_row)
        })
        .await
    }

    async fn resource_delete_tree(&self, id: &str) -> Result<Vec<ResourceRecord>> {
        let root = lower(id.trim_end_matches('/'));
        self.write(move |tx, _| {
            // Everything below `root/` sorts between `root/` and `root0` ('0' follows '/').
            let (below_from, below_to) = (format!("{root}/"), format!("{root}0"));
            let filter = "id_lower = ?1 OR (id_lower >= ?2 AND id_lower < ?3)";
            let mut stmt =
                tx.prepare_cached(&format!("SELECT {RESOURCE_COLS} FROM resources WHERE {filter} ORDER BY id_lower"))?;
            let deleted = collect(stmt.query(params![root, below_from, below_to])?, resource_from_row)?;
            tx.prepare_cached(&format!("DELETE FROM resources WHERE {filter}"))?
                .execute(params![root, below_from, below_to])?;
            Ok(deleted)
        })
        .await
    }

    async fn repository_list(&self, registry: &RegistryKey, last: Option<&str>, n: usize) -> Result<Vec<String>> {
        let (registry, last, n) = (registry.0.clone(), last.map(str::to_string), limit(Some(n)));
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT name FROM repositories WHERE registry = ?1 AND (?2 IS NULL OR name > ?2) ORDER BY name LIMIT ?3",
            )?;
            collect(stmt.query(params![registry, last, n])?, |r| Ok(r.get(0)?))
        })
        .await
    }

    async fn repository_get(&self, registry: &RegistryKey, repo: &RepositoryName) -> Result<Option<RepositoryRecord>> {
        let (registry, repo) = (registry.0.clone(), repo.as_str().to_string());
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT r.name, r.created_at, r.updated_at, \
                   (SELECT count(*) FROM manifests m WHERE m.repo_id = r.id), \
                   (SELECT count(*) FROM tags t WHERE t.repo_id = r.id), \
                   r.delete_enabled, r.write_enabled, r.read_enabled, r.list_enabled \
                 FROM repositories r WHERE r.registry = ?1 AND r.name = ?2",
            )?;
            let rows = stmt.query(params![registry, repo])?;
            Ok(collect(rows, |row| {
                Ok(RepositoryRecord {
                    name: row.get(0)?,
                    created_at: time(row.get(1)?),
                    updated_at: time(row.get(2)?),
                    manifest_count: size(row.get(3)?),
                    tag_count: size(row.get(4)?),
                    attributes: attributes(row, 5)?,
                })
            })?
            .pop())
        })
        .await
    }

    async fn repository_set_attributes(
        &self,
        registry: &RegistryKey,
        repo: &RepositoryName,
        attributes: &ChangeableAttributes,
    ) -> Result<bool> {
        let (registry, repo, a) = (registry.0.clone(), repo.as_str().to_string(), *attributes);
        self.write(move |tx, _| {
            let n = tx
                .prepare_cached(
                    "UPDATE repositories SET delete_enabled = ?3, write_enabled = ?4, read_enabled = ?5, \
                     list_enabled = ?6 WHERE registry = ?1 AND name = ?2",
                )?
                .execute(params![registry, repo, a.delete_enabled, a.write_enabled, a.read_enabled, a.list_enabled])?;
            Ok(n > 0)
        })
        .await
    }

    async fn repository_delete(&self, registry: &RegistryKey, repo: &RepositoryName) -> Result<bool> {
        let (registry, repo) = (registry.0.clone(), repo.as_str().to_string());
        self.write(move |tx, _| {
            // Links, manifests, their references and tags go with it (ON DELETE CASCADE).
            let n = tx
                .prepare_cached("DELETE FROM repositories WHERE registry = ?1 AND name = ?2")?
                .execute(params![registry, repo])?;
            Ok(n > 0)
        })
        .await
    }

    async fn blob_record(&self, digest: &Digest, size: u64) -> Result<()> {
        let (d, size) = (digest.to_string(), to_i64(size)?);
        self.write(move |tx, now| {
            // Re-recording refreshes `recorded_at`, which keeps a blob that was just pushed again
            // out of a concurrent garbage collection's `older_than` window.
            tx.prepare_cached(
                "INSERT INTO blobs (digest, size, recorded_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (digest) DO UPDATE SET size = excluded.size, recorded_at = excluded.recorded_at",
            )?
            .execute(params![d, size, now])?;
            Ok(())
        })
        .await
    }

    async fn blob_link(&self, registry: &RegistryKey, repo: &RepositoryName, digest: &Digest, size: u64) -> Result<()> {
        let (registry, repo, d, size) =
            (registry.0.clone(), repo.as_str().to_string(), digest.to_string(), to_i64(size)?);
        self.write(move |tx, now| link_blob(tx, &registry, &repo, &d, size, now)).await
    }

    async fn blob_visible(
        &self,
        registry: &RegistryKey,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<u64>> {
        let (registry, repo, d) = (registry.0.clone(), repo.as_str().to_string(), digest.to_string());
        self.read(move |c| {
            let v: Option<i64> =
                c.prepare_cached(BLOB_VISIBLE_SQL)?.query_row(params![registry, repo, d], |r| r.get(0)).optional()?;
            Ok(v.map(size))
        })
        .await
    }

    async fn blob_unlink(&self, registry: &RegistryKey, repo: &RepositoryName, digest: &Digest) -> Result<bool> {
        let (registry, repo, d) = (registry.0.clone(), repo.as_str().to_string(), digest.to_string());
        self.write(move |tx, _| {
            let Some(id) = repo_id(tx, &registry, &repo)? else { return Ok(false) };
            let n = tx
                .prepare_cached("DELETE FROM blob_links WHERE repo_id = ?1 AND digest = ?2")?
                .execute(params![id, d])?;
            prune_repo(tx, id)?;
            Ok(n > 0)
        })
        .await
    }

    async fn blob_collect_unreferenced(&self, older_than: i64) -> Result<Vec<Digest>> {
        let cutoff = older_than.saturating_mul(1_000_000_000);
        self.write(move |tx, _| {
            let unreferenced = format!("recorded_at < ?1 AND NOT ({BLOB_IN_USE_SQL})");
            let mut stmt =
                tx.prepare_cached(&format!("SELECT b.digest FROM blobs b WHERE {unreferenced} ORDER BY b.digest"))?;
            let found = collect(stmt.query([cutoff])?, |r| digest(r.get(0)?))?;
            tx.prepare_cached(&format!(
                "DELETE FROM blobs WHERE digest IN (SELECT b.digest FROM blobs b WHERE {unreferenced})"
            ))?
            .execute([cutoff])?;
            Ok(found)
        })
        .await
    }

    async fn blob_records(&self, after: Option<&Digest>, n: usize) -> Result<Vec<BlobRecord>> {
        let (after, n) = (after.map(|d| d.to_string()), limit(Some(n)));
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT digest, size, recorded_at FROM blobs WHERE (?1 IS NULL OR digest > ?1) ORDER BY digest LIMIT ?2",
            )?;
            collect(stmt.query(params![after, n])?, blob_from_row)
        })
        .await
    }

    async fn blob_records_of(&self, digests: &[Digest]) -> Result<Vec<BlobRecord>> {
        let digests: Vec<String> = digests.iter().map(|d| d.to_string()).collect();
        self.read(move |c| {
            let mut stmt = c.prepare_cached("SELECT digest, size, recorded_at FROM blobs WHERE digest = ?1")?;
            let mut out = Vec::new();
            for d in &digests {
                out.extend(collect(stmt.query([d])?, blob_from_row)?);
            }
            Ok(out)
        })
        .await
    }

    async fn blob_references(&self, digest: &Digest) -> Result<BlobReferences> {
        let d = digest.to_string();
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT (SELECT count(*) FROM blob_links WHERE digest = ?1), \
                        (SELECT count(*) FROM manifest_blob_refs WHERE digest = ?1)",
            )?;
            let (links, manifests): (i64, i64) = stmt.query_row([d], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(BlobReferences { links: size(links), manifests: size(manifests) })
        })
        .await
    }

    async fn blob_forget(&self, digest: &Digest) -> Result<bool> {
        let d = digest.to_string();
        self.write(move |tx, _| {
            let n = tx
                .prepare_cached(&format!("DELETE FROM blobs AS b WHERE b.digest = ?1 AND NOT ({BLOB_IN_USE_SQL})"))?
                .execute([d])?;
            Ok(n > 0)
        })
        .await
    }

    async fn blob_references_unrecorded(&self) -> Result<Vec<UnrecordedReference>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT l.digest, r.registry, r.name, NULL FROM blob_links l JOIN repositories r ON r.id = l.repo_id \
                   WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = l.digest) \
                 UNION ALL \
                 SELECT x.digest, r.registry, r.name, x.manifest_digest FROM manifest_blob_refs x \
                   JOIN repositories r ON r.id = x.repo_id \
                   WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = x.digest) \
                 ORDER BY 1, 2, 3, 4",
            )?;
            collect(stmt.query([])?, |row| {
                Ok(UnrecordedReference {
                    digest: digest(row.get(0)?)?,
                    registry: RegistryKey(row.get(1)?),
                    repository: row.get(2)?,
                    manifest: row.get::<_, Option<String>>(3)?.map(digest).transpose()?,
                })
            })
        })
        .await
    }

    async fn manifest_put(
        &self,
        registry: &RegistryKey,
        repo: &RepositoryName,
        manifest: &NewManifest,
    ) -> Result<ManifestPutOutcome> {
        let (registry, repo, m) = (registry.0.clone(), repo.as_str().to_string(), manifest.clone());
        self.write(move |tx, now| {
            let existing = repo_id(tx, &registry, &repo)?;
            let mut blob_refs = m.blob_refs.clone();
            blob_refs.sort();
            blob_refs.dedup();
            let mut child_refs = m.manifest_refs.clone();
            child_refs.sort();
            child_refs.dedup();
            let (mut missing_blobs, mut missing_children) = (Vec::new(), Vec::new());
            {
                let mut linked = tx.prepare_cached("SELECT 1 FROM blob_links WHERE repo_id = ?1 AND digest = ?2")?;
                let mut present = tx.prepare_cached("SELECT 1 FROM manifests WHERE repo_id = ?1 AND digest = ?2")?;
                for b in &blob_refs {
                    let found = match existing {
                        Some(id) => linked.exists(params![id, b.to_string()])?,
                        None => false,
                    };
                    if !found {
                        missing_blobs.push(b.clone());
                    }
                }
                for c in &child_refs {
                    let found = match existing {
                        Some(id) => present.exists(params![id, c.to_string()])?,
                        None => false,
                    };
                    if !found {
                        missing_children.push(c.clone());
                    }
                }
            }
            if !missing_blobs.is_empty() || !missing_children.is_empty() {
                return Err(StorageError::MissingReferences { blobs: missing_blobs, manifests: missing_children });
            }
            let id = match existing {
                Some(id) => id,
                None => ensure_repo(tx, &registry, &repo, now)?,
            };
            let d = m.digest.to_string();
            let annotations = m.annotations.as_ref().map(|a| a.to_string());
            let created = tx
                .prepare_cached(
                    "INSERT INTO manifests (repo_id, digest, media_type, size, bytes, artifact_type, subject, \
                     annotations, architecture, os, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11) \
                     ON CONFLICT (repo_id, digest) DO NOTHING",
                )?
                .execute(params![
                    id,
                    d,
                    m.media_type,
                    to_i64(m.bytes.len() as u64)?,
                    &m.bytes[..],
                    m.artifact_type,
                    m.subject.as_ref().map(|s| s.to_string()),
                    annotations,
                    m.architecture,
                    m.os,
                    now
                ])?
                > 0;
            if created {
                let mut blob = tx.prepare_cached(
                    "INSERT INTO manifest_blob_refs (repo_id, manifest_digest, digest) VALUES (?1, ?2, ?3)",
                )?;
                for b in &blob_refs {
                    blob.execute(params![id, d, b.to_string()])?;
                }
                let mut child = tx.prepare_cached(
                    "INSERT INTO manifest_child_refs (repo_id, manifest_digest, child_digest) VALUES (?1, ?2, ?3)",
                )?;
                for c in &child_refs {
                    child.execute(params![id, d, c.to_string()])?;
                }
            }
            let mut changed = created;
            let mut previous_tag_target = None;
            if let Some(tag) = &m.tag {
                let current: Option<String> = tx
                    .prepare_cached("SELECT digest FROM tags WHERE repo_id = ?1 AND name = ?2")?
                    .query_row(params![id, tag.as_str()], |r| r.get(0))
                    .optional()?;
                match current {
                    Some(cur) if cur == d => {}
                    Some(cur) => {
                        tx.prepare_cached("UPDATE tags SET digest = ?3, updated_at = ?4 WHERE repo_id = ?1 AND name = ?2")?
                            .execute(params![id, tag.as_str(), d, now])?;
                        previous_tag_target = Some(digest(cur)?);
                        changed = true;
                    }
                    None => {
                        tx.prepare_cached(
                            "INSERT INTO tags (repo_id, name, digest, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                        )?
                        .execute(params![id, tag.as_str(), d, now])?;
                        changed = true;
                    }
                }
            }
            if changed {
                touch_repo(tx, id, now)?;
            }
            Ok(ManifestPutOutcome { created, previous_tag_target })
        })
        .await
    }

    async fn manifest_read(
        &self,
        registry: &RegistryKey,
        repo: &RepositoryName,
        reference: &Reference,
        with_bytes: bool,
    ) -> Result<ManifestRead> {
        let (registry, repo, by_tag, key) = lookup_keys(registry, repo, reference);
        self.read(move |c| {
            let mut stmt = c.prepare_cached(manifest_read_sql(by_tag, with_bytes))?;
            let mut rows = stmt.query(params![registry, repo, key])?;
            let Some(row) = rows.next()? else { return Ok(ManifestRead::default()) };
            let found = row.get_ref(0)?.data_type() != rusqlite::types::Type::Null;
            let tag_found = row.get_ref(META_LEN + 4)?.data_type() != rusqlite::types::Type::Null;
            let bytes = match (found, with_bytes) {
                (true, true) => Some(Bytes::copy_from_slice(
                    row.get_ref(META_LEN + 8)?
                        .as_blob()
                        .map_err(|e| StorageError::Corrupt(format!("manifest bytes: {e}")))?,
                )),
                _ => None,
            };
            Ok(ManifestRead {
                repository: Some(attributes(row, META_LEN)?),
                tag: if tag_found { Some(attributes(row, META_LEN + 4)?) } else { None },
                manifest: if found { Some(meta_from_row(row)?) } else { None },
                bytes,
            })
        })
        .await
    }

    async fn manifest_delete(
        &self,
        registry: &RegistryKey,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<Vec<String>>> {
        let (registry, repo, d) = (registry.0.clone(), repo.as_str().to_string(), digest.to_string());
        self.write(move |tx, now| {
            let Some(id) = repo_id(tx, &registry, &repo)? else { return Ok(None) };
            let mut stmt =
                tx.prepare_cached("SELECT name FROM tags WHERE repo_id = ?1 AND digest = ?2 ORDER BY name")?;
            let tags = collect(stmt.query(params![id, d])?, |r| Ok(r.get::<_, String>(0)?))?;
            // Tags and reference rows go with the manifest (ON DELETE CASCADE). Index entries
            // pointing at it are left alone: OCI lets a child be deleted before its index.
            let n = tx
                .prepare_cached("DELETE FROM manifests WHERE repo_id = ?1 AND digest = ?2")?
                .execute(params![id, d])?;
            if n == 0 {
                return Ok(None);
            }
            touch_repo(tx, id, now)?;
            prune_repo(tx, id)?;
            Ok(Some(tags))
        })
        .await
    }

    async fn manifest_list(
        &self,
        registry: &RegistryKey,
        repo: &RepositoryName,
        page: &Page,
    ) -> Result<Vec<ManifestMeta>> {
        let (registry, repo, page) = (registry.0.clone(), repo.as_str().to_string(), page.clone());
        self.read(move |c| {
            let Some(id) = repo_id(c, &registry, &repo)? else { return Ok(Vec::new()) };
            let sql = format!(
                "SELECT {META_COLS} FROM manifests m WHERE m.repo_id = ?1 AND (?2 IS NULL OR m.digest = ?2) {}",
                page_sql(page.order, "m", "manifests", "digest")
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let d = page.digest.as_ref().map(|d| d.to_string());
            collect(stmt.query(params![id, d, page.last, limit(page.n)])?, meta_from_row)
        })
        .await
    }

    async fn manifest_set_attributes(
        &self,
        registry: &RegistryKey,
        repo: &RepositoryName,
        digest: &Digest,
        attributes: &ChangeableAttributes,
    ) -> Result<bool> {
        let (registry, repo, d, a) = (registry.0.clone(), repo.as_str().to_string(), digest.to_string(), *attributes);
        self.write(move |tx, _| {
            let Some(id) = repo_id(tx, &registry, &repo)? else { return Ok(false) };
            let n = tx.prepare_cached(&set_attributes_sql("manifests", "digest"))?.execute(params![
                id,
                d,
                a.delete_enabled,
                a.write_enabled,
                a.read_enabled,
                a.list_enabled
            ])?;
            Ok(n > 0)
        })
        .await
    }

    async fn tag_list(&self, registry: &RegistryKey, repo: &RepositoryName, page: &Page) -> Result<Vec<TagRecord>> {
        let (registry, repo, page) = (registry.0.clone(), repo.as_str().to_string(), page.clone());
        self.read(move |c| {
            let Some(id) = repo_id(c, &registry, &repo)? else { return Ok(Vec::new()) };
            let sql = format!(
                "SELECT {TAG_COLS} FROM tags t WHERE t.repo_id = ?1 AND (?2 IS NULL OR t.digest = ?2) {}",
                page_sql(page.order, "t", "tags", "name")
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let d = page.digest.as_ref().map(|d| d.to_string());
            collect(stmt.query(params![id, d, page.last, limit(page.n)])?, tag_from_row)
        })
        .await
    }

    async fn tag_get(&self, registry: &RegistryKey, repo: &RepositoryName, tag: &Tag) -> Result<Option<TagRecord>> {
        let (registry, repo, tag) = (registry.0.clone(), repo.as_str().to_string(), tag.as_str().to_string());
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {TAG_COLS} FROM repositories r JOIN tags t ON t.repo_id = r.id AND t.name = ?3 \
                 WHERE r.registry = ?1 AND r.name = ?2"
            ))?;
            Ok(collect(stmt.query(params![registry, repo, tag])?, tag_from_row)?.pop())
        })
        .await
    }

    async fn tag_set_attributes(
        &self,
        registry: &RegistryKey,
        repo: &RepositoryName,
        tag: &Tag,
        attributes: &ChangeableAttributes,
    ) -> Result<bool> {
        let (registry, repo, tag, a) =
            (registry.0.clone(), repo.as_str().to_string(), tag.as_str().to_string(), *attributes);
        self.write(move |tx, _| {
            let Some(id) = repo_id(tx, &registry, &repo)? else { return Ok(false) };
            let n = tx.prepare_cached(&set_attributes_sql("tags", "name"))?.execute(params![
                id,
                tag,
                a.delete_enabled,
                a.write_enabled,
                a.read_enabled,
                a.list_enabled
            ])?;
            Ok(n > 0)
        })
        .await
    }

    async fn tag_delete(&self, registry: &RegistryKey, repo: &RepositoryName, tag: &Tag) -> Result<bool> {
        let (registry, repo, tag) = (registry.0.clone(), repo.as_str().to_string(), tag.as_str().to_string());
        self.write(move |tx, now| {
            let Some(id) = repo_id(tx, &registry, &repo)? else { return Ok(false) };
            let n =
                tx.prepare_cached("DELETE FROM tags WHERE repo_id = ?1 AND name = ?2")?.execute(params![id, tag])?;
            if n > 0 {
                touch_repo(tx, id, now)?;
            }
            Ok(n > 0)
        })
        .await
    }

    async fn referrers(
        &self,
        registry: &RegistryKey,
        repo: &RepositoryName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<ManifestMeta>> {
        let (registry, repo, s) = (registry.0.clone(), repo.as_str().to_string(), subject.to_string());
        let artifact_type = artifact_type.map(str::to_string);
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {META_COLS} FROM repositories r JOIN manifests m ON m.repo_id = r.id AND m.subject = ?3 \
                 WHERE r.registry = ?1 AND r.name = ?2 AND (?4 IS NULL OR m.artifact_type = ?4) \
                 ORDER BY m.digest"
            ))?;
            collect(stmt.query(params![registry, repo, s, artifact_type])?, meta_from_row)
        })
        .await
    }

    async fn registry_size(&self, registry: &RegistryKey) -> Result<u64> {
        let registry = registry.0.clone();
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT \
                   (SELECT COALESCE(SUM(size), 0) FROM (SELECT MAX(bl.size) AS size FROM blob_links bl \
                      JOIN repositories r ON r.id = bl.repo_id WHERE r.registry = ?1 GROUP BY bl.digest)) + \
                   (SELECT COALESCE(SUM(size), 0) FROM (SELECT MAX(m.size) AS size FROM manifests m \
                      JOIN repositories r ON r.id = m.repo_id WHERE r.registry = ?1 GROUP BY m.digest))",
            )?;
            let bytes: i64 = stmt.query_row([&registry], |r| r.get(0))?;
            Ok(u64::try_from(bytes).unwrap_or(0))
        })
        .await
    }

    async fn registry_purge(&self, registry: &RegistryKey) -> Result<Vec<UploadId>> {
        let registry = registry.0.clone();
        self.write(move |tx, _| {
            tx.prepare_cached("DELETE FROM repositories WHERE registry = ?1")?.execute([&registry])?;
            // The run counter stays, so that the key's numbering never restarts.
            tx.prepare_cached("DELETE FROM runs WHERE registry = ?1")?.execute([&registry])?;
            tx.prepare_cached("DELETE FROM task_images WHERE task_registry = ?1 OR image_registry = ?1")?
                .execute([&registry])?;
            let mut stmt = tx.prepare_cached("DELETE FROM uploads WHERE registry = ?1 RETURNING id")?;
            let ids = collect(stmt.query([&registry])?, |r| {
                let id: String = r.get(0)?;
                UploadId::parse(&id).ok_or_else(|| StorageError::Corrupt(format!("stored upload id {id:?}")))
            })?;
            Ok(ids)
        })
        .await
    }

    async fn registry_keys_with_content(&self) -> Result<Vec<RegistryKey>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT registry FROM repositories UNION SELECT registry FROM uploads ORDER BY registry",
            )?;
            collect(stmt.query([])?, |r| Ok(RegistryKey(r.get(0)?)))
        })
        .await
    }

    async fn upload_put(&self, upload: &UploadRecord, limits: &UploadLimits) -> Result<()> {
        let (u, limits) = (upload.clone(), *limits);
        self.write(move |tx, _| {
            let count = |sql: &str, key: &str| -> Result<u64> {
                Ok(size(tx.prepare_cached(sql)?.query_row([key], |r| r.get::<_, i64>(0))?))
            };
            if let Some(limit) = limits.per_registry
                && count("SELECT count(*) FROM uploads WHERE registry = ?1", &u.registry.0)? >= limit
            {
                return Err(StorageError::UploadLimit { scope: UploadLimitScope::Registry, limit });
            }
            if let (Some(limit), Some(principal)) = (limits.per_principal, u.principal.as_deref())
                && count("SELECT count(*) FROM uploads WHERE principal = ?1", principal)? >= limit
            {
                return Err(StorageError::UploadLimit { scope: UploadLimitScope::Principal, limit });
            }
            tx.prepare_cached(&format!(
                "INSERT OR REPLACE INTO uploads ({UPLOAD_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
            ))?
            .execute(params![
                u.id.as_str(),
                u.registry.0,
                u.repository,
                u.algorithm,
                nanos(&u.created_at)?,
                u.principal,
                nanos(&u.last_activity)?
            ])?;
            Ok(())
        })
        .await
    }

    async fn upload_get(&self, id: &UploadId) -> Result<Option<UploadRecord>> {
        let id = id.as_str().to_string();
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!("SELECT {UPLOAD_COLS} FROM uploads WHERE id = ?1"))?;
            Ok(collect(stmt.query([id])?, upload_from_row)?.pop())
        })
        .await
    }

    async fn upload_delete(&self, id: &UploadId) -> Result<()> {
        let id = id.as_str().to_string();
        self.write(move |tx, _| {
            tx.prepare_cached("DELETE FROM uploads WHERE id = ?1")?.execute([id])?;
            Ok(())
        })
        .await
    }

    async fn upload_list(&self) -> Result<Vec<UploadRecord>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!("SELECT {UPLOAD_COLS} FROM uploads ORDER BY created_at, id"))?;
            collect(stmt.query([])?, upload_from_row)
        })
        .await
    }

    async fn upload_touch(&self, id: &UploadId, at: DateTime<Utc>) -> Result<()> {
        let (id, at) = (id.as_str().to_string(), nanos(&at)?);
        self.write(move |tx, _| {
            tx.prepare_cached("UPDATE uploads SET last_activity = ?2 WHERE id = ?1 AND last_activity < ?2")?
                .execute(params![id, at])?;
            Ok(())
        })
        .await
    }

    async fn upload_list_idle(&self, before: DateTime<Utc>) -> Result<Vec<UploadRecord>> {
        let before = nanos(&before)?;
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {UPLOAD_COLS} FROM uploads WHERE last_activity < ?1 ORDER BY last_activity, id"
            ))?;
            collect(stmt.query([before])?, upload_from_row)
        })
        .await
    }

    async fn upload_delete_if_idle(&self, id: &UploadId, before: DateTime<Utc>) -> Result<bool> {
        let (id, before) = (id.as_str().to_string(), nanos(&before)?);
        self.write(move |tx, _| {
            let n = tx
                .prepare_cached("DELETE FROM uploads WHERE id = ?1 AND last_activity < ?2")?
                .execute(params![id, before])?;
            Ok(n > 0)
        })
        .await
    }

    async fn upload_complete(&self, upload: &UploadRecord, digest: &Digest, size: u64) -> Result<bool> {
        let (u, d, size) = (upload.clone(), digest.to_string(), to_i64(size)?);
        self.write(move |tx, now| {
            let n = tx.prepare_cached("DELETE FROM uploads WHERE id = ?1")?.execute([u.id.as_str()])?;
            if n == 0 {
                return Ok(false);
            }
            link_blob(tx, &u.registry.0, &u.repository, &d, size, now)?;
            Ok(true)
        })
        .await
    }

    async fn run_create(&self, run: &NewRun, now: DateTime<Utc>) -> Result<RunRecord> {
        let (r, now) = (run.clone(), nanos(&now)?);
        self.write(move |tx, _| insert_run(tx, &r, now)).await
    }

    async fn run_get(&self, registry: &RegistryKey, run_id: &str) -> Result<Option<RunRecord>> {
        let (registry, id) = (registry.0.clone(), lower(run_id));
        self.read(move |c| {
            let mut stmt =
                c.prepare_cached(&format!("SELECT {RUN_COLS} FROM runs WHERE registry = ?1 AND run_id_lower = ?2"))?;
            Ok(collect(stmt.query(params![registry, id])?, run_from_row)?.pop())
        })
        .await
    }

    async fn run_list(&self, registry: &RegistryKey, filter: &RunFilter) -> Result<Vec<RunRecord>> {
        let (registry, task, status) = (registry.0.clone(), filter.task.as_deref().map(lower), filter.status.clone());
        let top = limit(filter.top);
        self.read(move |c| {
            // One statement per combination of filters, so that each searches its index.
            let sql = format!(
                "SELECT {RUN_COLS} FROM runs WHERE registry = ?1{}{} ORDER BY number DESC LIMIT ?4",
                if task.is_some() { " AND task_lower = ?2" } else { " AND ?2 IS NULL" },
                if status.is_some() { " AND status = ?3" } else { " AND ?3 IS NULL" },
            );
            let mut stmt = c.prepare_cached(&sql)?;
            collect(stmt.query(params![registry, task, status, top])?, run_from_row)
        })
        .await
    }

    async fn run_update(&self, run: &RunRecord, expected_status: &str, now: DateTime<Utc>) -> Result<bool> {
        let (r, expected, now) = (run.clone(), expected_status.to_string(), nanos(&now)?);
        let lease = r.lease_until.as_ref().map(nanos).transpose()?;
        self.write(move |tx, _| {
            let (registry, id) = (&r.registry.0, lower(&r.run_id));
            let n = tx
                .prepare_cached(
                    "UPDATE runs SET status = ?4, body = ?5, agent = ?6, lease_until = ?7, updated_at = ?8 \
                     WHERE registry = ?1 AND run_id_lower = ?2 AND status = ?3",
                )?
                .execute(params![registry, id, expected, r.status, r.body.to_string(), r.agent, lease, now])?;
            if n > 0 {
                return Ok(true);
            }
            let exists = tx
                .prepare_cached("SELECT 1 FROM runs WHERE registry = ?1 AND run_id_lower = ?2")?
                .exists(params![registry, id])?;
            if exists { Ok(false) } else { Err(StorageError::NotFound) }
        })
        .await
    }

    async fn run_claim(
        &self,
        agent: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<RunRecord>> {
        let (agent, lease, now) = (agent.to_string(), nanos(&lease_until)?, nanos(&now)?);
        self.write(move |tx, _| {
            // The writer's transaction makes the choice and the update one step.
            let mut stmt = tx.prepare_cached(&format!("{RUN_CLAIM_SQL} RETURNING {RUN_COLS}"))?;
            let rows = stmt.query(params![run_status::QUEUED, run_status::STARTED, agent, lease, now])?;
            Ok(collect(rows, run_from_row)?.pop())
        })
        .await
    }

    async fn run_renew(
        &self,
        registry: &RegistryKey,
        run_id: &str,
        agent: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<bool> {
        let (registry, id, agent, lease) = (registry.0.clone(), lower(run_id), agent.to_string(), nanos(&lease_until)?);
        self.write(move |tx, _| {
            let n = tx
                .prepare_cached(
                    "UPDATE runs SET lease_until = ?4 WHERE registry = ?1 AND run_id_lower = ?2 AND agent = ?3 \
                     AND status IN (?5, ?6)",
                )?
                .execute(params![registry, id, agent, lease, run_status::STARTED, run_status::RUNNING])?;
            Ok(n > 0)
        })
        .await
    }

    async fn run_expired_leases(&self, now: DateTime<Utc>) -> Result<Vec<RunRecord>> {
        let now = nanos(&now)?;
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {RUN_COLS} FROM runs WHERE status IN (?1, ?2) AND lease_until < ?3 \
                 ORDER BY created_at, registry, number"
            ))?;
            collect(stmt.query(params![run_status::STARTED, run_status::RUNNING, now])?, run_from_row)
        })
        .await
    }

    async fn runs_in_progress(&self) -> Result<Vec<RunRecord>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {RUN_COLS} FROM runs WHERE status IN (?1, ?2) ORDER BY created_at, registry, number"
            ))?;
            collect(stmt.query(params![run_status::STARTED, run_status::RUNNING])?, run_from_row)
        })
        .await
    }

    async fn run_count_queued_before(&self, run: &RunRecord) -> Result<u64> {
        let (created, registry, number) = (nanos(&run.created_at)?, run.registry.0.clone(), to_i64(run.number)?);
        self.read(move |c| {
            let n: i64 = c
                .prepare_cached(RUN_QUEUED_BEFORE_SQL)?
                .query_row(params![run_status::QUEUED, created, registry, number], |r| r.get(0))?;
            Ok(size(n))
        })
        .await
    }

    async fn runs_finished_before(
        &self,
        before: DateTime<Utc>,
        after: Option<&RunRecord>,
        max: usize,
    ) -> Result<Vec<RunRecord>> {
        let before = nanos(&before)?;
        let after = match after {
            Some(r) => Some((nanos(&r.updated_at)?, r.registry.0.clone(), r.number as i64)),
            None => None,
        };
        let top = limit(Some(max));
        self.read(move |c| {
            let (at, registry, number) = after.unwrap_or((i64::MIN, String::new(), i64::MIN));
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {RUN_COLS} FROM runs WHERE status NOT IN ('Queued', 'Started', 'Running') \
                 AND updated_at < ?1 AND (updated_at, registry, number) > (?2, ?3, ?4) \
                 ORDER BY updated_at, registry, number LIMIT ?5"
            ))?;
            collect(stmt.query(params![before, at, registry, number, top])?, run_from_row)
        })
        .await
    }

    async fn run_delete(&self, run: &RunRecord) -> Result<bool> {
        let (registry, id, status, at) =
            (run.registry.0.clone(), lower(&run.run_id), run.status.clone(), nanos(&run.updated_at)?);
        self.write(move |tx, _| {
            let n = tx
                .prepare_cached(
                    "DELETE FROM runs WHERE registry = ?1 AND run_id_lower = ?2 AND status = ?3 AND updated_at = ?4",
                )?
                .execute(params![registry, id, status, at])?;
            Ok(n > 0)
        })
        .await
    }

    async fn run_create_for_tick(
        &self,
        run: &NewRun,
        tick: &TimerTick,
        now: DateTime<Utc>,
    ) -> Result<Option<RunRecord>> {
        let (r, now) = (run.clone(), nanos(&now)?);
        let (task, trigger, at) = (lower(&tick.task), tick.trigger.clone(), nanos(&tick.tick)?);
        self.write(move |tx, _| {
            let claimed = tx
                .prepare_cached(
                    "INSERT INTO timer_ticks (task, trigger_name, tick, claimed_at) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT DO NOTHING",
                )?
                .execute(params![task, trigger, at, now])?;
            if claimed == 0 {
                return Ok(None);
            }
            let run = insert_run(tx, &r, now)?;
            tx.prepare_cached(
                "UPDATE timer_ticks SET registry = ?4, run_id = ?5 WHERE task = ?1 AND trigger_name = ?2 AND tick = ?3",
            )?
            .execute(params![task, trigger, at, run.registry.0, run.run_id])?;
            Ok(Some(run))
        })
        .await
    }

    async fn timer_ticks_sweep(&self, before: DateTime<Utc>) -> Result<u64> {
        let before = nanos(&before)?;
        self.write(move |tx, _| {
            let n = tx.prepare_cached("DELETE FROM timer_ticks WHERE tick < ?1")?.execute([before])?;
            Ok(n as u64)
        })
        .await
    }

    async fn task_images_set(
        &self,
        task: &str,
        task_registry: &RegistryKey,
        images: &[TaskImage],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let (task, task_registry, images, now) = (lower(task), task_registry.0.clone(), images.to_vec(), nanos(&now)?);
        self.write(move |tx, _| {
            tx.prepare_cached("DELETE FROM task_images WHERE task = ?1")?.execute([&task])?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO task_images (task, task_registry, image_registry, repository, tag, role, digest, recorded_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING",
            )?;
            for i in &images {
                insert.execute(params![
                    task,
                    task_registry,
                    i.registry.0,
                    i.repository,
                    i.tag,
                    i.role.as_str(),
                    i.digest,
                    now
                ])?;
            }
            Ok(())
        })
        .await
    }

    async fn task_images_using(
        &self,
        registry: &RegistryKey,
        repository: &str,
        tag: &str,
    ) -> Result<Vec<TaskImageRow>> {
        let (registry, repository, tag) = (registry.0.clone(), repository.to_string(), tag.to_string());
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {TASK_IMAGE_COLS} FROM task_images WHERE image_registry = ?1 AND repository = ?2 AND tag = ?3 \
                 ORDER BY task, role"
            ))?;
            collect(stmt.query(params![registry, repository, tag])?, task_image_row)
        })
        .await
    }

    async fn task_images_of(&self, task: &str) -> Result<Vec<TaskImageRow>> {
        let task = lower(task);
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {TASK_IMAGE_COLS} FROM task_images WHERE task = ?1 \
                 ORDER BY image_registry, repository, tag, role"
            ))?;
            collect(stmt.query([task])?, task_image_row)
        })
        .await
    }

    async fn run_create_for_image_update(&self, run: &NewRun, now: DateTime<Utc>) -> Result<Option<RunRecord>> {
        let (r, now) = (run.clone(), nanos(&now)?);
        let task = r
            .task
            .as_deref()
            .map(lower)
            .ok_or_else(|| StorageError::Conflict("an image-update run must name its task".into()))?;
        self.write(move |tx, _| {
            let pending = tx
                .prepare_cached(
                    "SELECT 1 FROM runs WHERE registry = ?1 AND task_lower = ?2 AND status = ?3 \
                     AND json_extract(body, '$.properties.imageUpdateTrigger') IS NOT NULL",
                )?
                .exists(params![r.registry.0, task, run_status::QUEUED])?;
            if pending {
                return Ok(None);
            }
            insert_run(tx, &r, now).map(Some)
        })
        .await
    }

    async fn integrity_check(&self) -> Result<Vec<String>> {
        self.read(move |c| {
            let mut problems = Vec::new();
            let mut stmt = c.prepare("PRAGMA integrity_check")?;
            for line in collect(stmt.query([])?, |r| Ok(r.get::<_, String>(0)?))? {
                if line != "ok" {
                    problems.push(format!("integrity_check: {line}"));
                }
            }
            let mut stmt = c.prepare("PRAGMA foreign_key_check")?;
            let violations = collect(stmt.query([])?, |r| {
                Ok(format!(
                    "foreign_key_check: a row of {} (rowid {:?}) refers to a missing row of {}",
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<i64>>(1)?,
                    r.get::<_, String>(2)?
                ))
            })?;
            problems.extend(violations);
            Ok(problems)
        })
        .await
    }

    async fn counts(&self) -> Result<MetadataCounts> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT (SELECT count(*) FROM repositories), (SELECT count(*) FROM manifests), \
                        (SELECT count(*) FROM tags), (SELECT count(*) FROM blobs), \
                        (SELECT COALESCE(SUM(size), 0) FROM blobs), (SELECT count(*) FROM blob_links), \
                        (SELECT count(*) FROM uploads), (SELECT count(*) FROM runs)",
            )?;
            Ok(stmt.query_row([], |r| {
                let n = |i: usize| r.get::<_, i64>(i).map(size);
                Ok(MetadataCounts {
                    repositories: n(0)?,
                    manifests: n(1)?,
                    tags: n(2)?,
                    blobs: n(3)?,
                    blob_bytes: n(4)?,
                    blob_links: n(5)?,
                    uploads: n(6)?,
                    runs: n(7)?,
                })
            })?)
        })
        .await
    }
}

/// Writes one resource row; `replace` overwrites a row with the same id.
fn insert_resource(tx: &rusqlite::Transaction<'_>, r: &ResourceRecord, replace: bool) -> Result<()> {
    let verb = if replace { "INSERT OR REPLACE" } else { "INSERT" };
    tx.prepare_cached(&format!(
        "{verb} INTO resources (id_lower, id, type, type_lower, name, name_lower, resource_group, \
         resource_group_lower, key, body, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
    ))?
    .execute(params![
        lower(&r.id),
        r.id,
        r.resource_type,
        lower(&r.resource_type),
        r.name,
        lower(&r.name),
        r.resource_group,
        r.resource_group.as_deref().map(lower),
        r.key,
        r.body.to_string(),
        nanos(&r.created_at)?,
        nanos(&r.updated_at)?,
    ])?;
    Ok(())
}

/// `resource_list`'s query: one statement per combination of filters, so that each uses its
/// index (a `(?1 IS NULL OR type_lower = ?1)` form would scan every resource — role assignments
/// included — on each listing of one type).
fn resource_list_sql(by_type: bool, by_group: bool) -> String {
    let filter = match (by_type, by_group) {
        (true, true) => "type_lower = ?1 AND resource_group_lower = ?2",
        (true, false) => "type_lower = ?1 AND ?2 IS NULL",
        (false, true) => "resource_group_lower = ?2 AND ?1 IS NULL",
        (false, false) => "?1 IS NULL AND ?2 IS NULL",
    };
    format!("SELECT {RESOURCE_COLS} FROM resources WHERE {filter} ORDER BY id_lower")
}

const TASK_IMAGE_COLS: &str = "task, task_registry, image_registry, repository, tag, role, digest";

fn task_image_row(r: &rusqlite::Row<'_>) -> Result<TaskImageRow> {
    let role: String = r.get(5)?;
    Ok(TaskImageRow {
        task: r.get(0)?,
        task_registry: RegistryKey(r.get(1)?),
        image: TaskImage {
            registry: RegistryKey(r.get(2)?),
            repository: r.get(3)?,
            tag: r.get(4)?,
            role: TaskImageRole::parse(&role)
                .ok_or_else(|| StorageError::Database(format!("task_images has an unknown role '{role}'")))?,
            digest: r.get(6)?,
        },
    })
}

/// Enqueues a run inside the writer's transaction (`run_create`, `run_create_for_tick`).
fn insert_run(tx: &rusqlite::Transaction<'_>, r: &NewRun, now: i64) -> Result<RunRecord> {
    let number: i64 = tx
        .prepare_cached(
            "INSERT INTO run_counters (registry, last_number) VALUES (?1, 1) \
             ON CONFLICT (registry) DO UPDATE SET last_number = last_number + 1 RETURNING last_number",
        )?
        .query_row([&r.registry.0], |row| row.get(0))?;
    let run_id = format!("{}{number}", r.id_prefix);
    let taken = tx
        .prepare_cached("SELECT 1 FROM runs WHERE registry = ?1 AND run_id_lower = ?2")?
        .exists(params![r.registry.0, lower(&run_id)])?;
    if taken {
        return Err(StorageError::Conflict(format!("the registry already has a run '{run_id}'")));
    }
    let mut stmt = tx.prepare_cached(&format!(
        "INSERT INTO runs (registry, number, run_id, run_id_lower, task, task_lower, status, body, \
         created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9) RETURNING {RUN_COLS}"
    ))?;
    let rows = stmt.query(params![
        r.registry.0,
        number,
        run_id,
        lower(&run_id),
        r.task,
        r.task.as_deref().map(lower),
        r.status,
        r.body.to_string(),
        now
    ])?;
    collect(rows, run_from_row)?.pop().ok_or_else(|| StorageError::Database("run row vanished".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-request queries must stay index searches: a `SCAN` would make a pull's cost grow
    /// with the registry.
    #[test]
    fn hot_queries_search_indexes() {
        let store = SqliteMetadataStore::open_in_memory().unwrap();
        let conn = store.pool.writer.lock().unwrap();
        let queries = [
            manifest_read_sql(true, true),
            manifest_read_sql(true, false),
            manifest_read_sql(false, true),
            manifest_read_sql(false, false),
            BLOB_VISIBLE_SQL,
            RUN_CLAIM_SQL,
            RUN_QUEUED_BEFORE_SQL,
        ]
        .map(str::to_string)
        .into_iter()
        .chain([resource_list_sql(true, false), resource_list_sql(true, true), resource_list_sql(false, true)]);
        for sql in queries {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let nulls = vec![None::<String>; stmt.parameter_count()];
            let plan: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(nulls), |r| r.get(3))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            assert!(plan.iter().all(|step| !step.starts_with("SCAN")), "{sql}\n{plan:#?}");
            assert!(plan.iter().any(|step| step.starts_with("SEARCH")), "{plan:#?}");
        }
    }
}
