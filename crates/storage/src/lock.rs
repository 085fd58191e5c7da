//! The data directory's lock: one process at a time opens a Wharf data directory.
//!
//! `wharf serve` holds an exclusive advisory lock on `{data-dir}/wharf.lock` for as long as it
//! serves; `wharf admin fsck` takes the same lock, so it refuses to check (and above all to
//! repair) a directory that a running server is changing, and a second server refuses to start
//! on a directory the first one holds. The lock is the operating system's (`flock` on Unix), so
//! it goes away with its process, `kill -9` included: there is no stale lock to clean up.
//!
//! This module owns the lock file and nothing else: it must never remove the file (another
//! process may be about to lock it) and never treat a failure to lock as permission to go on.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Name of the lock file inside a data directory.
pub const LOCK_FILE: &str = "wharf.lock";

/// Why a data directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock.
    #[error(
        "the data directory {dir} is in use by another Wharf process{holder} (it holds {lock}); stop it first",
        dir = .dir.display(),
        lock = .lock.display(),
        holder = .holder.as_deref().map(|h| format!(" ({h})")).unwrap_or_default()
    )]
    Held { dir: PathBuf, lock: PathBuf, holder: Option<String> },
    #[error("cannot lock the data directory {dir}: {source}", dir = .dir.display())]
    Io { dir: PathBuf, source: std::io::Error },
}

/// An exclusive lock on a data directory, released when dropped (or when the process ends).
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Takes the lock of the data directory `dir` (which must exist) without waiting. The file
    /// records the holder's process id, for the message another process gets.
    pub fn acquire(dir: &Path) -> Result<DataDirLock, LockError> {
        let path = dir.join(LOCK_FILE);
        let io = |source| LockError::Io { dir: dir.to_path_buf(), source };
        let mut file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(LockError::Held {
                    dir: dir.to_path_buf(),
                    lock: path,
                    holder: (!holder.is_empty()).then(|| holder.to_string()),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        // Informational only: the lock, not the text, decides.
        let _ = file
            .set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "process {}", std::process::id()));
        Ok(DataDirLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        match DataDirLock::acquire(dir.path()) {
            Err(LockError::Held { holder, .. }) => {
                assert_eq!(holder, Some(format!("process {}", std::process::id())));
            }
            other => panic!("a second lock: {other:?}"),
        }
        drop(first);
        DataDirLock::acquire(dir.path()).expect("free again once the holder is gone");
    }
}
