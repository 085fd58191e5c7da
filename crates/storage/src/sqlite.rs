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

mod rows;
mod store;

use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::Utc;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::{Result, StorageError};

/// Schema migrations; migration `i` brings the database from `user_version = i` to `i + 1`.
/// Released migrations are never edited: a change is a new entry.
pub const MIGRATIONS: &[&str] = &[
    include_str!("sqlite/schema_v1.sql"),
    include_str!("sqlite/schema_v2.sql"),
    include_str!("sqlite/schema_v3.sql"),
    include_str!("sqlite/schema_v4.sql"),
    include_str!("sqlite/schema_v5.sql"),
];

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
        if prev >= wall { self.last_time.fetch_add(1, Ordering::Relaxed) + 1 } else { wall }
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

    /// Opens an existing database as it is, for offline checks: nothing is created and nothing
    /// migrated, and a database of another schema version than this build's is refused. One
    /// connection serves reads and writes (repairs).
    pub fn open_existing(path: &Path) -> Result<Self> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
        )?;
        configure(&conn)?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let current = MIGRATIONS.len() as i64;
        if version < current {
            return Err(StorageError::Database(format!(
                "the database has schema version {version} and this Wharf uses {current}: back it up, then start \
                 `wharf serve` of this version once to migrate it"
            )));
        }
        if version > current {
            return Err(StorageError::Database(format!(
                "the database has schema version {version}, newer than this Wharf understands ({current}): use the \
                 Wharf that wrote it"
            )));
        }
        Ok(Self::from_parts(conn, Vec::new()))
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
