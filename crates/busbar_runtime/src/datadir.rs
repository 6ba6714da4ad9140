//! The data directory's files: who holds it (an exclusive lock), how the database comes to be
//! (created whole, or refused when damaged), who may read it (owner only), and whether the
//! files the store writes are still the ones on disk.
//!
//! - `lock` holds the pid of the broker that has the directory, under an exclusive `flock`:
//!   a second broker (another `busbar dev`, or `busbar dlq` while one runs) is refused with that
//!   pid. The kernel drops the lock when the process ends, however it ends.
//! - `busbar.db` is created under a temporary name, given its schema, and renamed into place, so
//!   an existing `busbar.db` is always a database busbar wrote: an empty or damaged one is
//!   refused (with what to do), never taken for an empty broker.
//! - The directory is created 0700 and every file in it is 0600 (SQLite gives the WAL and the
//!   shared-memory file the database's mode).
//! - [`Identity`]: the device and inode of `busbar.db` and `busbar.db-wal` as opened. SQLite
//!   keeps writing to the files it has open; if one is deleted or replaced, commits go to a
//!   file no one will read again. The store compares the paths' identity after each commit.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::store::StoreError;

/// The database file in a data directory.
pub const DATABASE: &str = "busbar.db";
/// The lock file in a data directory.
pub const LOCK: &str = "lock";

/// The exclusive hold on a data directory; released when dropped (or when the process ends).
#[derive(Debug)]
pub(crate) struct Lock {
    _file: File,
}

/// Creates `dir` (0700) if needed and takes its lock, writing this process's pid into it.
pub(crate) fn lock(dir: &Path) -> Result<Lock, StoreError> {
    create_private_dir(dir)?;
    let path = dir.join(LOCK);
    let mut file = private_options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| failed(&path, "open", &e))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(StoreError::Locked {
                dir: dir.display().to_string(),
                pid: text.trim().parse().ok(),
            });
        }
        Err(e) => return Err(failed(&path, "lock", &std::io::Error::from(e))),
    }
    let written = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()));
    written.map_err(|e| failed(&path, "write", &e))?;
    Ok(Lock { _file: file })
}

/// Which process holds the lock of `dir`, if one does (`Some(None)`: held, pid unreadable).
pub fn lock_holder(dir: &Path) -> Option<Option<u32>> {
    let mut file = File::open(dir.join(LOCK)).ok()?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockShared) {
        Ok(()) => None,
        Err(_) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            Some(text.trim().parse().ok())
        }
    }
}

fn failed(path: &Path, what: &str, e: &std::io::Error) -> StoreError {
    StoreError::Failed(format!("cannot {what} {}: {e}", path.display()))
}

fn private_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| failed(dir, "create", &e))
}

/// Makes `path` readable by its owner only, if it exists.
pub(crate) fn make_private(path: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::metadata(path) {
            Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| failed(path, "restrict the permissions of", &e))?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// The database of `dir`: created whole when there is none (`init` gives it its schema, on a
/// temporary file renamed into place), refused when it is not a regular, non-empty file.
pub(crate) fn database(
    dir: &Path,
    init: impl FnOnce(&Path) -> Result<(), StoreError>,
) -> Result<PathBuf, StoreError> {
    let path = dir.join(DATABASE);
    match std::fs::symlink_metadata(&path) {
        Ok(m) if !m.is_file() => Err(StoreError::Damaged(format!(
            "{} is not a regular file: move it away (or delete it) to start afresh",
            path.display()
        ))),
        Ok(m) if m.len() == 0 => Err(StoreError::Damaged(format!(
            "{} is empty (0 bytes): busbar creates it whole, so it was truncated or replaced, and what it held is gone from it. Restore it from a copy, or move the data directory away (or delete it) to start afresh",
            path.display()
        ))),
        Ok(_) => Ok(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let fresh = dir.join(format!("{DATABASE}.new"));
            for leftover in ["", "-wal", "-shm", "-journal"] {
                let _ = std::fs::remove_file(format!("{}{leftover}", fresh.display()));
            }
            private_options()
                .write(true)
                .create_new(true)
                .open(&fresh)
                .map_err(|e| failed(&fresh, "create", &e))?;
            init(&fresh)?;
            std::fs::rename(&fresh, &path).map_err(|e| failed(&path, "create", &e))?;
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(path)
        }
        Err(e) => Err(failed(&path, "read", &e)),
    }
}

/// The device and inode of the database and its WAL as the store opened them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Identity {
    database: (PathBuf, Option<(u64, u64)>),
    wal: (PathBuf, Option<(u64, u64)>),
}

fn file_id(path: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        std::fs::metadata(path).ok().map(|_| (0, 0))
    }
}

impl Identity {
    /// The files at `database` and its WAL now (call once the connection has both open).
    pub fn of(database: &Path) -> Identity {
        let wal = PathBuf::from(format!("{}-wal", database.display()));
        Identity {
            database: (database.to_path_buf(), file_id(database)),
            wal: (wal.clone(), file_id(&wal)),
        }
    }

    /// The database's path.
    pub fn database(&self) -> &Path {
        &self.database.0
    }

    /// Whether the files at the paths are still the ones opened: `Err` says which is not
    /// (the database, or its WAL) and what became of it.
    pub fn check(&self) -> Result<(), Changed> {
        for (wal, (path, id)) in [(false, &self.database), (true, &self.wal)] {
            let now = file_id(path);
            if now != *id {
                let what = if now.is_none() { "was deleted" } else { "was replaced" };
                return Err(Changed { wal, what: format!("{} {what}", path.display()) });
            }
        }
        Ok(())
    }
}

/// A file of the store that is no longer the one on disk.
#[derive(Clone, Debug)]
pub(crate) struct Changed {
    /// The WAL (else the database itself).
    pub wal: bool,
    /// `PATH was deleted` or `PATH was replaced`.
    pub what: String,
}
