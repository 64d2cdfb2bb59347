//! The operators' subcommands other than `serve` and `import`: `migrate`,
//! `gc`, `backup`, `restore`, `forget-cursors` and `schema`. Each ends with one log
//! line saying what it did; the long ones show progress on a terminal
//! (`progress.rs`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tidesync_store::{Store, StoreError};

use crate::config::{BackupArgs, DatabaseArgs, GcArgs};
use crate::db::DbOptions;

/// A store error as an operator reads it: a configuration problem is its
/// own message (it says what to do), without the "configuration:" prefix.
pub fn plain(e: StoreError) -> anyhow::Error {
    match e {
        StoreError::Config(m) => anyhow::anyhow!(m),
        e => e.into(),
    }
}

async fn open(db: &DatabaseArgs) -> anyhow::Result<Arc<dyn Store>> {
    let store = crate::db::connect(&db.database_url, &DbOptions::from_database(db))
        .await
        .map_err(plain)
        .context("opening the database")?;
    store.migrate().await.context("applying migrations")?;
    Ok(store)
}

pub async fn migrate(db: &DatabaseArgs) -> anyhow::Result<()> {
    let store = open(db).await?;
    store.close().await;
    tracing::info!(backend = store.backend().name(), "migrations applied");
    Ok(())
}

pub async fn gc(gc: &GcArgs) -> anyhow::Result<()> {
    let store = open(&gc.database).await?;
    let now = tidesync_protocol::time::now_millis();
    let bar = crate::progress::spinner("collecting history");
    let report = store
        .collect_garbage(gc.retention.horizon(now))
        .await
        .context("collecting history");
    bar.finish_and_clear();
    store.close().await;
    let report = report?;
    tracing::info!(
        tombstones = report.tombstones,
        log_rows = report.log_rows,
        revoked_tokens = report.revoked_tokens,
        "history collected"
    );
    Ok(())
}

pub async fn forget_cursors(db: &DatabaseArgs) -> anyhow::Result<()> {
    let store = open(db).await?;
    let scopes = store.forget_cursors().await.context("forgetting cursors");
    store.close().await;
    tracing::info!(scopes = scopes?, "every device will resync once");
    Ok(())
}

/// The SQLite file a URL names; PostgreSQL has its own tools.
fn sqlite_only(url: &str, what: &str) -> anyhow::Result<PathBuf> {
    tidesync_store::sqlite_file(url).ok_or_else(|| {
        anyhow::anyhow!(
            "`tidesync {what}` is for SQLite; for PostgreSQL use pg_dump / pg_restore (docs/OPERATIONS.md)"
        )
    })
}

/// Size of the database with its write-ahead log: about what a copy takes.
fn database_bytes(db: &Path) -> u64 {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    [db.to_path_buf(), PathBuf::from(wal)]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

pub async fn backup(b: &BackupArgs) -> anyhow::Result<()> {
    let db = sqlite_only(&b.database.database_url, "backup")?;
    let file = b.file.clone();
    let bytes = tokio::task::spawn_blocking(move || {
        let bar = crate::progress::bytes(database_bytes(&db), "backing up");
        // SQLite writes the copy in one statement: follow the file it grows.
        let done = Arc::new(AtomicBool::new(false));
        let watcher = (!bar.is_hidden()).then(|| {
            let (bar, done, file) = (bar.clone(), done.clone(), file.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    if let Ok(m) = std::fs::metadata(&file) {
                        bar.set_position(m.len());
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        });
        let r = crate::db::backup(&db, &file);
        done.store(true, Ordering::Relaxed);
        if let Some(w) = watcher {
            let _ = w.join();
        }
        bar.finish_and_clear();
        r
    })
    .await?
    .map_err(plain)?;
    tracing::info!(file = %b.file.display(), bytes, "backup written");
    Ok(())
}

pub async fn restore(b: &BackupArgs) -> anyhow::Result<()> {
    let db = sqlite_only(&b.database.database_url, "restore")?;
    let (src, to) = (b.file.clone(), db.clone());
    tokio::task::spawn_blocking(move || {
        let size = std::fs::metadata(&src).map_or(0, |m| m.len());
        let bar = crate::progress::bytes(size, "restoring");
        let r = crate::db::restore(&src, &to, &mut |step| match step {
            crate::db::RestoreStep::Copying { done, total } => {
                bar.set_length(total);
                bar.set_position(done);
            }
            crate::db::RestoreStep::Preparing => {
                bar.set_message("preparing the copy");
            }
        });
        bar.finish_and_clear();
        r
    })
    .await?
    .map_err(plain)?;
    tracing::info!(from = %b.file.display(), to = %db.display(), "database restored; start the server");
    Ok(())
}

/// `tidesync schema check FILE`: the file's problems on stdout, one per
/// line with its JSON path (all of them, so one run fixes everything), then
/// a one-line error; or one line saying it is valid.
pub fn schema_check(file: &Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    match tidesync_protocol::schema::Schema::parse(&text) {
        Ok(schema) => {
            let n = schema.collections.len();
            println!(
                "{}: valid, {n} collection{}",
                file.display(),
                if n == 1 { "" } else { "s" }
            );
            Ok(())
        }
        Err(problems) => {
            for p in &problems {
                println!("{p}");
            }
            anyhow::bail!(
                "{}: {} problem{} (each above, with its JSON path)",
                file.display(),
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            )
        }
    }
}

/// `tidesync schema print`: the schema the server runs (`SCHEMA`'s, checked,
/// or the built-in), as JSON.
pub fn schema_print(file: Option<&Path>) -> anyhow::Result<()> {
    let schema = crate::schema::load(file)?;
    println!("{}", schema.to_json_pretty());
    Ok(())
}
