//! Backups of the SQLite database, and putting one back.
//!
//! `backup` runs `VACUUM INTO` on a connection of its own: one read
//! transaction, so the copy is the database as of one commit, while the
//! server goes on writing (WAL). `restore` refuses while any server has the
//! database open: each `SqliteStore` holds a shared lock on `<db>.lock`
//! from open to close, and restore needs it exclusively.
//!
//! Errors are meant for an operator at a prompt: each says what is wrong
//! and what to do, in one line.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
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
    if !db.exists() {
        return Err(StoreError::Config(format!(
            "{} does not exist: nothing to back up (set DATABASE_URL to the server's database)",
            db.display()
        )));
    }
    if let Some(dir) = dest
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.is_dir())
    {
        return Err(StoreError::Config(format!(
            "cannot write {}: the folder {} does not exist",
            dest.display(),
            dir.display()
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

/// Checks that `file` is a sound tidesync database; returns its size.
fn check(file: &Path) -> Result<u64, StoreError> {
    let meta = std::fs::metadata(file).map_err(|e| {
        StoreError::Config(if e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "{} does not exist: give the path of a file written by `tidesync backup`",
                file.display()
            )
        } else {
            format!("cannot read {}: {e}", file.display())
        })
    })?;
    if !meta.is_file() {
        return Err(StoreError::Config(format!(
            "{} is not a file: give the path of a file written by `tidesync backup`",
            file.display()
        )));
    }
    let not_ours = |e: rusqlite::Error| {
        StoreError::Config(format!(
            "{} is not a readable SQLite database ({e}): give the path of a file written by `tidesync backup`",
            file.display()
        ))
    };
    let c =
        Connection::open_with_flags(file, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(not_ours)?;
    let ok: String = c
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(not_ours)?;
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
    Ok(meta.len())
}

/// What a restore is doing, for a progress display.
#[derive(Clone, Copy, Debug)]
pub enum RestoreStep {
    /// Copying the backup beside the database.
    Copying { done: u64, total: u64 },
    /// Migrating the copy and making every cursor stale.
    Preparing,
}

/// The backup copied to `tmp`, migrated, with every cursor made stale.
fn prepare(
    src: &Path,
    tmp: &Path,
    total: u64,
    progress: &mut dyn FnMut(RestoreStep),
) -> Result<(), StoreError> {
    copy(src, tmp, total, progress).map_err(|e| io("cannot copy to", tmp, e))?;
    progress(RestoreStep::Preparing);
    {
        // Devices may hold cursors past the backup: they must resync, not
        // trust positions that the restored history will reuse.
        let c = crate::open_connection(tmp, std::time::Duration::from_secs(5))?;
        crate::migrate::run(&c)?;
        crate::history::forget_cursors(&c)?;
        c.close().map_err(|(_, e)| driver(e))?;
    }
    File::open(tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| io("cannot sync", tmp, e))
}

/// Bytes copied between two progress reports.
const COPY_CHUNK: usize = 4 << 20;

fn copy(
    src: &Path,
    dest: &Path,
    total: u64,
    progress: &mut dyn FnMut(RestoreStep),
) -> std::io::Result<()> {
    let mut from = File::open(src)?;
    let mut to = File::create(dest)?;
    let mut buf = vec![0u8; COPY_CHUNK];
    let mut done = 0u64;
    progress(RestoreStep::Copying { done, total });
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        to.write_all(&buf[..n])?;
        done += n as u64;
        progress(RestoreStep::Copying { done, total });
    }
}

/// Replaces `db` with the backup `src`, migrated to this version, with
/// every device's cursor made stale (`Store::forget_cursors`). Refuses
/// while a server has `db` open. The old file's write-ahead log goes with it.
/// On a fresh machine the database's folder is created (private, as the
/// server creates it).
pub fn restore(src: &Path, db: &Path) -> Result<(), StoreError> {
    restore_with(src, db, &mut |_| {})
}

/// [`restore`], telling `progress` what it is doing.
pub fn restore_with(
    src: &Path,
    db: &Path,
    progress: &mut dyn FnMut(RestoreStep),
) -> Result<(), StoreError> {
    let total = check(src)?;
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        tidesync_store::create_private_dir(dir)
            .map_err(|e| io("cannot create the folder", dir, e))?;
    }
    let lock = open_lock(db)?;
    lock.try_lock().map_err(|_| {
        StoreError::Config(format!("{} is in use: stop the server first", db.display()))
    })?;
    let tmp = {
        let mut name = db.as_os_str().to_owned();
        name.push(".restoring");
        PathBuf::from(name)
    };
    if let Err(e) = prepare(src, &tmp, total, progress) {
        // Nothing was replaced: leave no half-made copy behind either.
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
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
