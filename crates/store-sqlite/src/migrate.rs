//! Embedded migrations, applied in order, each in the writer's transaction.
//!
//! Databases created by tidesync 0.1 recorded their migrations in sqlx's
//! `_sqlx_migrations` table; those versions count as applied here.

use rusqlite::{params, Connection, OptionalExtension};
use tidesync_store::StoreError;

use crate::error::driver;

/// (version, description, SQL). Versions only grow; a shipped file never changes.
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "users", include_str!("../migrations/0001_users.sql")),
    (2, "sync", include_str!("../migrations/0002_sync.sql")),
    (
        3,
        "account safety",
        include_str!("../migrations/0003_account_safety.sql"),
    ),
    (
        4,
        "shared spaces",
        include_str!("../migrations/0004_shared_spaces.sql"),
    ),
    (5, "history", include_str!("../migrations/0005_history.sql")),
    (
        6,
        "invitations",
        include_str!("../migrations/0006_invitations.sql"),
    ),
    (
        7,
        "scope founder",
        include_str!("../migrations/0007_scope_founder.sql"),
    ),
    (
        8,
        "generic records",
        include_str!("../migrations/0008_generic_records.sql"),
    ),
    (
        9,
        "served schemas",
        include_str!("../migrations/0009_served_schemas.sql"),
    ),
];

fn table_exists(c: &Connection, name: &str) -> Result<bool, StoreError> {
    c.query_row(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
        [name],
        |_| Ok(()),
    )
    .optional()
    .map(|r| r.is_some())
    .map_err(driver)
}

/// Applies what is missing; returns the versions applied now.
pub fn run(c: &Connection) -> Result<Vec<i64>, StoreError> {
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS _tidesync_migrations (
             version     INTEGER PRIMARY KEY NOT NULL,
             description TEXT    NOT NULL,
             applied_at  INTEGER NOT NULL
         ) STRICT",
    )
    .map_err(driver)?;
    if table_exists(c, "_sqlx_migrations")? {
        c.execute_batch(
            "INSERT OR IGNORE INTO _tidesync_migrations (version, description, applied_at)
             SELECT version, description, CAST(strftime('%s', installed_on) AS INTEGER) * 1000
             FROM _sqlx_migrations WHERE success",
        )
        .map_err(driver)?;
    }
    let latest: i64 = c
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM _tidesync_migrations",
            [],
            |r| r.get(0),
        )
        .map_err(driver)?;
    if let Some(known) = MIGRATIONS.last() {
        if latest > known.0 {
            return Err(StoreError::Migrate(format!(
                "the database is at migration {latest}, newer than this tidesync ({}): upgrade tidesync",
                known.0
            )));
        }
    }
    let mut applied = Vec::new();
    for (version, description, sql) in MIGRATIONS {
        if *version <= latest {
            continue;
        }
        c.execute_batch(sql)
            .map_err(|e| StoreError::Migrate(format!("{version} ({description}): {e}")))?;
        c.execute(
            "INSERT INTO _tidesync_migrations (version, description, applied_at) VALUES (?, ?, ?)",
            params![version, description, tidesync_protocol::time::now_millis()],
        )
        .map_err(driver)?;
        applied.push(*version);
    }
    Ok(applied)
}
