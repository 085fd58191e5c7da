//! The SQLite metadata store: every record but blob bytes, in one database file.
//!
//! Owns the schema (versioned with `PRAGMA user_version`, see [`MIGRATIONS`]), the connection
//! pool and the SQL. It must never block the async runtime (every query runs on a blocking
//! thread), never touch blob bytes, and never change more than one row outside a transaction.
//!
//! Connections: one writer behind a mutex (SQLite serialises writers anyway; `BEGIN IMMEDIATE`
//! takes the write lock up front so a transaction never fails halfway on a lock upgrade) and a
//! few reader connections (WAL lets them read a consistent snapshot while the writer commits).
//! Statements are prepared once per connection and cached (`prepare_cached`).
//!
//! Durability: WAL journal. `synchronous` defaults to `FULL`: each commit fsyncs the WAL, so an
//! acknowledged manifest PUT survives power loss as well as `kill -9`, matching the blob store,
//! which fsyncs every blob before acknowledging it. `NORMAL` ([`Synchronous::Normal`]) survives
//! process crashes but may lose the last commits on power loss (never consistency).

use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row, Transaction, TransactionBehavior};
use wharf_oci::{Digest, Reference, RepositoryName, Tag};

use crate::{
    ChangeableAttributes, ManifestMeta, ManifestPutOutcome, ManifestRecord, MetadataStore, NewManifest, Order, Page,
    RegistryKey, RepositoryRecord, ResourceFilter, ResourceRecord, Result, StorageError, TagRecord, UploadId,
    UploadRecord,
};

/// Schema migrations; migration `i` brings the database from `user_version = i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[SCHEMA_V1];

const SCHEMA_V1: &str = r#"
CREATE TABLE settings (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- ARM resources. Ids, types, names and resource groups are compared case-insensitively
-- through their lowercased copies; the originals are returned as created.
CREATE TABLE resources (
    id_lower             TEXT PRIMARY KEY NOT NULL,
    id                   TEXT NOT NULL,
    type                 TEXT NOT NULL,
    type_lower           TEXT NOT NULL,
    name                 TEXT NOT NULL,
    name_lower           TEXT NOT NULL,
    resource_group       TEXT,
    resource_group_lower TEXT,
    key                  TEXT NOT NULL,
    body                 TEXT NOT NULL,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);
CREATE INDEX resources_by_name ON resources (type_lower, name_lower);
CREATE INDEX resources_by_group ON resources (resource_group_lower, type_lower);

-- A repository row exists while the repository holds a blob link or a manifest.
-- Times are unix nanoseconds (UTC).
CREATE TABLE repositories (
    id             INTEGER PRIMARY KEY,
    registry       TEXT NOT NULL,
    name           TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    delete_enabled INTEGER NOT NULL DEFAULT 1,
    write_enabled  INTEGER NOT NULL DEFAULT 1,
    read_enabled   INTEGER NOT NULL DEFAULT 1,
    list_enabled   INTEGER NOT NULL DEFAULT 1,
    UNIQUE (registry, name)
);

-- Blobs the blob store holds (deployment-wide, deduplicated).
CREATE TABLE blobs (
    digest      TEXT PRIMARY KEY NOT NULL,
    size        INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Which blobs a repository may see.
CREATE TABLE blob_links (
    repo_id   INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    digest    TEXT NOT NULL,
    size      INTEGER NOT NULL,
    linked_at INTEGER NOT NULL,
    PRIMARY KEY (repo_id, digest)
) WITHOUT ROWID;
CREATE INDEX blob_links_by_digest ON blob_links (digest);

CREATE TABLE manifests (
    repo_id        INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    digest         TEXT NOT NULL,
    media_type     TEXT NOT NULL,
    size           INTEGER NOT NULL,
    bytes          BLOB NOT NULL,
    artifact_type  TEXT,
    subject        TEXT,
    annotations    TEXT,
    architecture   TEXT,
    os             TEXT,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    delete_enabled INTEGER NOT NULL DEFAULT 1,
    write_enabled  INTEGER NOT NULL DEFAULT 1,
    read_enabled   INTEGER NOT NULL DEFAULT 1,
    list_enabled   INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (repo_id, digest)
);
CREATE INDEX manifests_by_digest ON manifests (digest);
CREATE INDEX manifests_by_subject ON manifests (repo_id, subject, digest) WHERE subject IS NOT NULL;
CREATE INDEX manifests_by_time ON manifests (repo_id, updated_at, digest);

-- What each manifest references: validation at put, and roots for blob garbage collection.
CREATE TABLE manifest_blob_refs (
    repo_id         INTEGER NOT NULL,
    manifest_digest TEXT NOT NULL,
    digest          TEXT NOT NULL,
    PRIMARY KEY (repo_id, manifest_digest, digest),
    FOREIGN KEY (repo_id, manifest_digest) REFERENCES manifests (repo_id, digest) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX manifest_blob_refs_by_digest ON manifest_blob_refs (digest);

CREATE TABLE manifest_child_refs (
    repo_id         INTEGER NOT NULL,
    manifest_digest TEXT NOT NULL,
    child_digest    TEXT NOT NULL,
    PRIMARY KEY (repo_id, manifest_digest, child_digest),
    FOREIGN KEY (repo_id, manifest_digest) REFERENCES manifests (repo_id, digest) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX manifest_child_refs_by_child ON manifest_child_refs (repo_id, child_digest);

-- A tag always points at a manifest of its repository (the foreign key enforces it).
CREATE TABLE tags (
    repo_id        INTEGER NOT NULL,
    name           TEXT NOT NULL,
    digest         TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    delete_enabled INTEGER NOT NULL DEFAULT 1,
    write_enabled  INTEGER NOT NULL DEFAULT 1,
    read_enabled   INTEGER NOT NULL DEFAULT 1,
    list_enabled   INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (repo_id, name),
    FOREIGN KEY (repo_id, digest) REFERENCES manifests (repo_id, digest) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX tags_by_digest ON tags (repo_id, digest, name);
CREATE INDEX tags_by_time ON tags (repo_id, updated_at, name);

CREATE TABLE uploads (
    id         TEXT PRIMARY KEY NOT NULL,
    registry   TEXT NOT NULL,
    repository TEXT NOT NULL,
    algorithm  TEXT NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX uploads_by_registry ON uploads (registry);
"#;

/// How far a commit is flushed before it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// fsync the WAL at every commit: durable across power loss.
    #[default]
    Full,
    /// fsync only at checkpoints: durable across process crashes; the last commits may be lost
    /// on power loss, the database stays consistent.
    Normal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Reader connections (queries that change nothing). 0 sends reads to the writer.
    pub readers: usize,
    pub synchronous: Synchronous,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions { readers: 4, synchronous: Synchronous::Full }
    }
}

struct Pool {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    /// Last timestamp handed to a write, so that successive writes get increasing times.
    last_time: AtomicI64,
}

fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while holding a connection cannot leave a transaction open (dropping a
    // `Transaction` rolls it back), so the connection is still usable.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Pool {
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        if self.readers.is_empty() {
            return f(&lock(&self.writer));
        }
        let n = self.readers.len();
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed) % n;
        for i in 0..n {
            if let Ok(conn) = self.readers[(start + i) % n].try_lock() {
                return f(&conn);
            }
        }
        f(&lock(&self.readers[start]))
    }

    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>, i64) -> Result<T>) -> Result<T> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = self.now();
        let out = f(&tx, now)?;
        tx.commit()?;
        Ok(out)
    }

    /// Wall-clock nanoseconds, nudged forward so that it never repeats or goes back.
    fn now(&self) -> i64 {
        let wall = Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
        let prev = self.last_time.fetch_max(wall, Ordering::Relaxed);
        if prev >= wall {
            self.last_time.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            wall
        }
    }
}

/// Metadata in SQLite; cheap to clone (shares the pool).
#[derive(Clone)]
pub struct SqliteMetadataStore {
    pool: Arc<Pool>,
}

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.set_prepared_statement_cache_capacity(64);
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let version = usize::try_from(version).map_err(|_| StorageError::Corrupt("negative schema version".into()))?;
    if version > MIGRATIONS.len() {
        return Err(StorageError::Database(format!(
            "database schema version {version} is newer than this Wharf understands ({})",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

impl SqliteMetadataStore {
    /// Opens (creating and migrating if needed) the database at `path` with default options.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, SqliteOptions::default())
    }

    pub fn open_with(path: &Path, options: SqliteOptions) -> Result<Self> {
        let mut writer = Connection::open(path)?;
        configure(&writer)?;
        let mode: String = writer.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StorageError::Database(format!("could not enable WAL (journal_mode is {mode})")));
        }
        let sync = match options.synchronous {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        };
        writer.pragma_update(None, "synchronous", sync)?;
        migrate(&mut writer)?;
        let mut readers = Vec::with_capacity(options.readers);
        for _ in 0..options.readers {
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
            )?;
            configure(&conn)?;
            conn.pragma_update(None, "query_only", true)?;
            readers.push(conn);
        }
        Ok(Self::from_parts(writer, readers))
    }

    /// A private database in memory (tests); all queries share one connection.
    pub fn open_in_memory() -> Result<Self> {
        let mut conn = Connection::open_in_memory()?;
        configure(&conn)?;
        migrate(&mut conn)?;
        Ok(Self::from_parts(conn, Vec::new()))
    }

    fn from_parts(writer: Connection, readers: Vec<Connection>) -> Self {
        SqliteMetadataStore {
            pool: Arc::new(Pool {
                writer: Mutex::new(writer),
                readers: readers.into_iter().map(Mutex::new).collect(),
                next_reader: AtomicUsize::new(0),
                last_time: AtomicI64::new(0),
            }),
        }
    }

    /// The schema version of the open database.
    pub async fn schema_version(&self) -> Result<i64> {
        self.read(|c| Ok(c.pragma_query_value(None, "user_version", |r| r.get(0))?)).await
    }

    async fn read<T: Send + 'static>(&self, f: impl FnOnce(&Connection) -> Result<T> + Send + 'static) -> Result<T> {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || pool.read(f))
            .await
            .map_err(|e| StorageError::Database(format!("query task failed: {e}")))?
    }

    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Transaction<'_>, i64) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || pool.write(f))
            .await
            .map_err(|e| StorageError::Database(format!("transaction task failed: {e}")))?
    }
}

// ---- conversions ----

fn time(ns: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(ns)
}

fn nanos(t: &DateTime<Utc>) -> Result<i64> {
    t.timestamp_nanos_opt().ok_or_else(|| StorageError::Database(format!("time {t} is out of range")))
}

fn digest(s: String) -> Result<Digest> {
    Digest::parse(&s).map_err(|e| StorageError::Corrupt(format!("stored digest {s:?}: {e}")))
}

fn size(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_i64(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| StorageError::Database(format!("size {v} is out of range")))
}

fn json(s: Option<String>) -> Result<Option<serde_json::Value>> {
    s.map(|s| serde_json::from_str(&s).map_err(|e| StorageError::Corrupt(format!("stored JSON: {e}")))).transpose()
}

fn attributes(row: &Row<'_>, first: usize) -> Result<ChangeableAttributes> {
    Ok(ChangeableAttributes {
        delete_enabled: row.get(first)?,
        write_enabled: row.get(first + 1)?,
        read_enabled: row.get(first + 2)?,
        list_enabled: row.get(first + 3)?,
    })
}

fn limit(n: Option<usize>) -> i64 {
    n.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX))
}

fn lower(s: &str) -> String {
    s.to_lowercase()
}

const RESOURCE_COLS: &str =
    "id, type, name, resource_group, key, body, created_at, updated_at";

fn resource_from_row(row: &Row<'_>) -> Result<ResourceRecord> {
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

fn collect<T>(mut rows: rusqlite::Rows<'_>, f: impl Fn(&Row<'_>) -> Result<T>) -> Result<Vec<T>> {
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(f(row)?);
    }
    Ok(out)
}

/// Manifest columns, in the order `meta_from_row` reads them; `m` is the manifests table.
const META_COLS: &str = "m.digest, m.media_type, m.size, m.artifact_type, m.subject, m.annotations, \
     m.architecture, m.os, \
     (SELECT group_concat(t.name, ',') FROM tags t WHERE t.repo_id = m.repo_id AND t.digest = m.digest), \
     m.created_at, m.updated_at, m.delete_enabled, m.write_enabled, m.read_enabled, m.list_enabled";
const META_LEN: usize = 15;

fn meta_from_row(row: &Row<'_>) -> Result<ManifestMeta> {
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

const TAG_COLS: &str =
    "t.name, t.digest, t.created_at, t.updated_at, t.delete_enabled, t.write_enabled, t.read_enabled, t.list_enabled";

fn tag_from_row(row: &Row<'_>) -> Result<TagRecord> {
    Ok(TagRecord {
        name: row.get(0)?,
        digest: digest(row.get(1)?)?,
        created_at: time(row.get(2)?),
        updated_at: time(row.get(3)?),
        attributes: attributes(row, 4)?,
    })
}

fn upload_from_row(row: &Row<'_>) -> Result<UploadRecord> {
    let id: String = row.get(0)?;
    Ok(UploadRecord {
        id: UploadId::parse(&id).ok_or_else(|| StorageError::Corrupt(format!("stored upload id {id:?}")))?,
        registry: RegistryKey(row.get(1)?),
        repository: row.get(2)?,
        algorithm: row.get(3)?,
        created_at: time(row.get(4)?),
    })
}

// ---- shared statements ----

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
            let existed = tx
                .prepare_cached("SELECT 1 FROM resources WHERE id_lower = ?1")?
                .exists([lower(&r.id)])?;
            tx.prepare_cached(
                "INSERT OR REPLACE INTO resources (id_lower, id, type, type_lower, name, name_lower, resource_group, \
                 resource_group_lower, key, body, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?
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
            Ok(!existed)
        })
        .await
    }

    async fn resource_insert_unique_name(&self, resource: &ResourceRecord) -> Result<()> {
        let r = resource.clone();
        self.write(move |tx, _| {
            let taken = tx
                .prepare_cached(
                    "SELECT 1 FROM resources WHERE (type_lower = ?1 AND name_lower = ?2) OR id_lower = ?3",
                )?
                .exists(params![lower(&r.resource_type), lower(&r.name), lower(&r.id)])?;
            if taken {
                return Err(StorageError::Conflict(format!("a {} named '{}' already exists", r.resource_type, r.name)));
            }
            tx.prepare_cached(
                "INSERT INTO resources (id_lower, id, type, type_lower, name, name_lower, resource_group, \
                 resource_group_lower, key, body, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?
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
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {RESOURCE_COLS} FROM resources \
                 WHERE (?1 IS NULL OR type_lower = ?1) AND (?2 IS NULL OR resource_group_lower = ?2) \
                 ORDER BY id_lower"
            ))?;
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
        let (registry, repo, d, size) = (registry.0.clone(), repo.as_str().to_string(), digest.to_string(), to_i64(size)?);
        self.write(move |tx, now| {
            let id = ensure_repo(tx, &registry, &repo, now)?;
            tx.prepare_cached(
                "INSERT INTO blobs (digest, size, recorded_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (digest) DO UPDATE SET recorded_at = excluded.recorded_at",
            )?
            .execute(params![d, size, now])?;
            tx.prepare_cached(
                "INSERT INTO blob_links (repo_id, digest, size, linked_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (repo_id, digest) DO NOTHING",
            )?
            .execute(params![id, d, size, now])?;
            Ok(())
        })
        .await
    }

    async fn blob_visible(&self, registry: &RegistryKey, repo: &RepositoryName, digest: &Digest) -> Result<Option<u64>> {
        let (registry, repo, d) = (registry.0.clone(), repo.as_str().to_string(), digest.to_string());
        self.read(move |c| {
            let v: Option<i64> = c
                .prepare_cached(
                    "SELECT l.size FROM repositories r JOIN blob_links l ON l.repo_id = r.id AND l.digest = ?3 \
                     WHERE r.registry = ?1 AND r.name = ?2",
                )?
                .query_row(params![registry, repo, d], |r| r.get(0))
                .optional()?;
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
            let unreferenced = "recorded_at < ?1 \
                 AND NOT EXISTS (SELECT 1 FROM blob_links l WHERE l.digest = b.digest) \
                 AND NOT EXISTS (SELECT 1 FROM manifest_blob_refs r WHERE r.digest = b.digest) \
                 AND NOT EXISTS (SELECT 1 FROM manifests m WHERE m.digest = b.digest)";
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

    async fn manifest_put(&self, registry: &RegistryKey, repo: &RepositoryName, manifest: &NewManifest) -> Result<ManifestPutOutcome> {
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

    async fn manifest_get(&self, registry: &RegistryKey, repo: &RepositoryName, reference: &Reference) -> Result<Option<ManifestRecord>> {
        let (registry, repo) = (registry.0.clone(), repo.as_str().to_string());
        let reference = reference.clone();
        self.read(move |c| {
            let (mut stmt, key) = match &reference {
                Reference::Tag(t) => (
                    c.prepare_cached(&format!(
                        "SELECT {META_COLS}, m.bytes FROM repositories r \
                         JOIN tags x ON x.repo_id = r.id AND x.name = ?3 \
                         JOIN manifests m ON m.repo_id = r.id AND m.digest = x.digest \
                         WHERE r.registry = ?1 AND r.name = ?2"
                    ))?,
                    t.as_str().to_string(),
                ),
                Reference::Digest(d) => (
                    c.prepare_cached(&format!(
                        "SELECT {META_COLS}, m.bytes FROM repositories r \
                         JOIN manifests m ON m.repo_id = r.id AND m.digest = ?3 \
                         WHERE r.registry = ?1 AND r.name = ?2"
                    ))?,
                    d.to_string(),
                ),
            };
            let mut rows = stmt.query(params![registry, repo, key])?;
            match rows.next()? {
                Some(row) => {
                    let meta = meta_from_row(row)?;
                    let blob = row.get_ref(META_LEN)?;
                    let bytes = Bytes::copy_from_slice(
                        blob.as_blob().map_err(|e| StorageError::Corrupt(format!("manifest bytes: {e}")))?,
                    );
                    Ok(Some(ManifestRecord { meta, bytes }))
                }
                None => Ok(None),
            }
        })
        .await
    }

    async fn manifest_head(&self, registry: &RegistryKey, repo: &RepositoryName, reference: &Reference) -> Result<Option<ManifestMeta>> {
        let (registry, repo) = (registry.0.clone(), repo.as_str().to_string());
        let reference = reference.clone();
        self.read(move |c| {
            let (mut stmt, key) = match &reference {
                Reference::Tag(t) => (
                    c.prepare_cached(&format!(
                        "SELECT {META_COLS} FROM repositories r \
                         JOIN tags x ON x.repo_id = r.id AND x.name = ?3 \
                         JOIN manifests m ON m.repo_id = r.id AND m.digest = x.digest \
                         WHERE r.registry = ?1 AND r.name = ?2"
                    ))?,
                    t.as_str().to_string(),
                ),
                Reference::Digest(d) => (
                    c.prepare_cached(&format!(
                        "SELECT {META_COLS} FROM repositories r \
                         JOIN manifests m ON m.repo_id = r.id AND m.digest = ?3 \
                         WHERE r.registry = ?1 AND r.name = ?2"
                    ))?,
                    d.to_string(),
                ),
            };
            Ok(collect(stmt.query(params![registry, repo, key])?, meta_from_row)?.pop())
        })
        .await
    }

    async fn manifest_delete(&self, registry: &RegistryKey, repo: &RepositoryName, digest: &Digest) -> Result<Option<Vec<String>>> {
        let (registry, repo, d) = (registry.0.clone(), repo.as_str().to_string(), digest.to_string());
        self.write(move |tx, now| {
            let Some(id) = repo_id(tx, &registry, &repo)? else { return Ok(None) };
            let mut stmt = tx.prepare_cached("SELECT name FROM tags WHERE repo_id = ?1 AND digest = ?2 ORDER BY name")?;
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

    async fn manifest_list(&self, registry: &RegistryKey, repo: &RepositoryName, page: &Page) -> Result<Vec<ManifestMeta>> {
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
            let n = tx
                .prepare_cached(&set_attributes_sql("manifests", "digest"))?
                .execute(params![id, d, a.delete_enabled, a.write_enabled, a.read_enabled, a.list_enabled])?;
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
        let (registry, repo, tag, a) = (registry.0.clone(), repo.as_str().to_string(), tag.as_str().to_string(), *attributes);
        self.write(move |tx, _| {
            let Some(id) = repo_id(tx, &registry, &repo)? else { return Ok(false) };
            let n = tx
                .prepare_cached(&set_attributes_sql("tags", "name"))?
                .execute(params![id, tag, a.delete_enabled, a.write_enabled, a.read_enabled, a.list_enabled])?;
            Ok(n > 0)
        })
        .await
    }

    async fn tag_delete(&self, registry: &RegistryKey, repo: &RepositoryName, tag: &Tag) -> Result<bool> {
        let (registry, repo, tag) = (registry.0.clone(), repo.as_str().to_string(), tag.as_str().to_string());
        self.write(move |tx, now| {
            let Some(id) = repo_id(tx, &registry, &repo)? else { return Ok(false) };
            let n = tx
                .prepare_cached("DELETE FROM tags WHERE repo_id = ?1 AND name = ?2")?
                .execute(params![id, tag])?;
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

    async fn registry_purge(&self, registry: &RegistryKey) -> Result<()> {
        let registry = registry.0.clone();
        self.write(move |tx, _| {
            tx.prepare_cached("DELETE FROM repositories WHERE registry = ?1")?.execute([&registry])?;
            tx.prepare_cached("DELETE FROM uploads WHERE registry = ?1")?.execute([&registry])?;
            Ok(())
        })
        .await
    }

    async fn upload_put(&self, upload: &UploadRecord) -> Result<()> {
        let u = upload.clone();
        self.write(move |tx, _| {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO uploads (id, registry, repository, algorithm, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![u.id.as_str(), u.registry.0, u.repository, u.algorithm, nanos(&u.created_at)?])?;
            Ok(())
        })
        .await
    }

    async fn upload_get(&self, id: &UploadId) -> Result<Option<UploadRecord>> {
        let id = id.as_str().to_string();
        self.read(move |c| {
            let mut stmt =
                c.prepare_cached("SELECT id, registry, repository, algorithm, created_at FROM uploads WHERE id = ?1")?;
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
            let mut stmt = c.prepare_cached(
                "SELECT id, registry, repository, algorithm, created_at FROM uploads ORDER BY created_at, id",
            )?;
            collect(stmt.query([])?, upload_from_row)
        })
        .await
    }
}
