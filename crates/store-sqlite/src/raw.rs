//! The write path's own statements without the engine, the writer thread or
//! a server: the storage limit the bench compares a push with (issue 9:
//! "measured through the same driver as the push path").

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;
use tidesync_engine::{LogRow, RecordWrite};
use tidesync_protocol::{ScopeId, UserId};
use tidesync_store::StoreError;

use crate::error::driver;

/// A write connection with the server's settings (WAL, synchronous=FULL).
pub fn open(file: &Path) -> Result<Connection, StoreError> {
    crate::open_connection(file, Duration::from_secs(5))
}

/// The personal scope of `user`, where its unshared records live.
pub fn personal_scope(c: &Connection, user: UserId) -> Result<ScopeId, StoreError> {
    let id: i64 = c
        .query_row(
            "SELECT scope_id FROM members m JOIN scopes s ON s.id = m.scope_id
             WHERE m.user_id = ? AND s.space_id IS NULL",
            [user.to_string()],
            |r| r.get(0),
        )
        .map_err(driver)?;
    Ok(ScopeId::new(id))
}

/// One transaction as the writer commits a push: the records, their log
/// rows and the scope's new counter, with the same statements.
pub fn commit(
    c: &Connection,
    user: UserId,
    records: &[RecordWrite],
    logs: &[LogRow],
    head: (ScopeId, i64),
) -> Result<(), StoreError> {
    c.execute_batch("BEGIN IMMEDIATE").map_err(driver)?;
    let r = crate::write::save_records(c, records)
        .and_then(|_| crate::write::insert_logs(c, user, logs))
        .and_then(|_| crate::write::set_heads(c, &[head]));
    match r {
        Ok(()) => c.execute_batch("COMMIT").map_err(driver),
        Err(e) => {
            let _ = c.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}
