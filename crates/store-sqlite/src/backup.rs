//! Backups of the SQLite database, and putting one back.
//!
//! `backup` runs `VACUUM INTO` on a connection of its own: one read
//! transaction, so the copy is the database as of one commit, while the
//! server goes on writing (WAL). `restore` refuses while any server has the
//! database open: each `SqliteStore` holds a shared lock on `<db>.lock`
//! from open to close, and restore needs it exclusively.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use tidesync_store::StoreError;

use crate::error::driver;

fn io(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Config(format!("{what} {}: {e}", path.display()))
}

/// The lock file of a database file.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

fn open_lock(db: &Path) -> Result<File, StoreError> {
    let path = lock_path(db);
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| io("cannot open", &path, e))
}

/// Held by an open store: restore cannot replace the file under it.
pub fn hold(db: &Path) -> Result<File, StoreError> {
    let f = open_lock(db)?;
    f.try_lock_shared().map_err(|_| {
        StoreError::Config(format!(
            "{} is being restored; try again when that is done",
            db.display()
        ))
    })?;
    Ok(f)
}

/// Writes a consistent copy of `db` to `dest` (which must not exist);
/// returns its size in bytes.
pub fn backup(db: &Path, dest: &Path) -> Result<u64, StoreError> {
    if dest.exists() {
        return Err(StoreError::Config(format!(
            "{} exists already; choose a new file",
            dest.display()
        )));
    }
    let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .map_err(|e| StoreError::Config(format!("cannot open {}: {e}", db.display())))?;
    c.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(driver)?;
    let target = dest
        .to_str()
        .ok_or_else(|| StoreError::Config("the backup path must be UTF-8".into()))?;
    c.execute("VACUUM INTO ?", [target]).map_err(driver)?;
    let size = std::fs::metadata(dest)
        .map_err(|e| io("cannot read", dest, e))?
        .len();
    File::open(dest)
        .and_then(|f| f.sync_all())
        .map_err(|e| io("cannot sync", dest, e))?;
    Ok(size)
}

/// Checks that `file` is a sound tidesync database.
fn check(file: &Path) -> Result<(), StoreError> {
    let c = Connection::open_with_flags(file, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| StoreError::Config(format!("cannot open {}: {e}", file.display())))?;
    let ok: String = c
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(driver)?;
    if ok != "ok" {
        return Err(StoreError::Corrupt(format!("{}: {ok}", file.display())));
    }
    let ours: Option<i64> = c
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_tidesync_migrations'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(driver)?;
    if ours.is_none() {
        return Err(StoreError::Config(format!(
            "{} is not a tidesync database",
            file.display()
        )));
    }
    Ok(())
}

/// Replaces `db` with the backup `src`, migrated to this version, with
/// every device's cursor made stale (`Store::forget_cursors`). Refuses
/// while a server has `db` open. The old file's write-ahead log goes with it.
pub fn restore(src: &Path, db: &Path) -> Result<(), StoreError> {
    check(src)?;
    let lock = open_lock(db)?;
    lock.try_lock().map_err(|_| {
        StoreError::Config(format!("{} is in use: stop the server first", db.display()))
    })?;
    let tmp = {
        let mut name = db.as_os_str().to_owned();
        name.push(".restoring");
        PathBuf::from(name)
    };
    std::fs::copy(src, &tmp).map_err(|e| io("cannot copy to", &tmp, e))?;
    {
        // Devices may hold cursors past the backup: they must resync, not
        // trust positions that the restored history will reuse.
        let c = crate::open_connection(&tmp, std::time::Duration::from_secs(5))?;
        crate::migrate::run(&c)?;
        crate::history::forget_cursors(&c)?;
        c.close().map_err(|(_, e)| driver(e))?;
    }
    File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| io("cannot sync", &tmp, e))?;
    for suffix in ["-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
    std::fs::rename(&tmp, db).map_err(|e| io("cannot replace", db, e))?;
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    drop(lock);
    Ok(())
}
