//! The sync statements of the SQLite backend that write: records, log rows,
//! scope counters. The server runs them on the writer thread (`writer.rs`),
//! inside its transaction; `raw.rs` runs the same ones for the bench.

use rusqlite::types::Value as Sql;
use rusqlite::{params, params_from_iter, Connection};
use tidesync_engine::{LogRow, RecordWrite};
use tidesync_protocol::{ScopeId, UserId};
use tidesync_store::StoreError;

use crate::error::driver;
use crate::sql::{marks, text};

/// Rows per multi-row `INSERT`: under SQLite's 32,766 variables, and small
/// enough to keep statements cacheable.
const RECORD_ROWS: usize = 200;
const LOG_ROWS: usize = 250;

fn opt_text(s: Option<String>) -> Sql {
    s.map(Sql::Text).unwrap_or(Sql::Null)
}

pub fn set_heads(c: &Connection, heads: &[(ScopeId, i64)]) -> Result<(), StoreError> {
    let mut st = c
        .prepare_cached("UPDATE scopes SET version = ? WHERE id = ?")
        .map_err(driver)?;
    for (scope, v) in heads {
        st.execute(params![v, scope.get()]).map_err(driver)?;
    }
    Ok(())
}

pub fn save_records(c: &Connection, recs: &[RecordWrite]) -> Result<(), StoreError> {
    for chunk in recs.chunks(RECORD_ROWS) {
        let rows = vec![format!("({})", marks(14)); chunk.len()].join(", ");
        let sql = format!(
            "INSERT INTO records (scope_id, id, kind, version, root_id, parent_id, data, clocks,
                                  created_at, updated_at, deleted_at, device_id, server_time, created_by)
             VALUES {rows}
             ON CONFLICT (scope_id, id) DO UPDATE SET
                kind = excluded.kind, version = excluded.version, root_id = excluded.root_id,
                parent_id = excluded.parent_id, data = excluded.data, clocks = excluded.clocks,
                created_at = excluded.created_at, updated_at = excluded.updated_at,
                deleted_at = excluded.deleted_at, device_id = excluded.device_id,
                server_time = excluded.server_time"
        );
        let mut args: Vec<Sql> = Vec::with_capacity(chunk.len() * 14);
        for r in chunk {
            args.extend([
                Sql::Integer(r.scope.get()),
                text(r.id.to_string()),
                text(r.entity.as_str()),
                Sql::Integer(r.version),
                opt_text(r.root_id.map(|s| s.to_string())),
                opt_text(r.parent_id.map(|s| s.to_string())),
                text(r.data.as_str()),
                text(r.clocks.as_str()),
                Sql::Integer(r.created_at),
                Sql::Integer(r.updated_at),
                r.deleted_at.map(Sql::Integer).unwrap_or(Sql::Null),
                text(r.device_id.as_str()),
                Sql::Integer(r.server_time),
                text(r.created_by.to_string()),
            ]);
        }
        c.prepare_cached(&sql)
            .map_err(driver)?
            .execute(params_from_iter(args))
            .map_err(driver)?;
    }
    Ok(())
}

pub fn insert_logs(c: &Connection, user: UserId, logs: &[LogRow]) -> Result<(), StoreError> {
    for chunk in logs.chunks(LOG_ROWS) {
        let rows = vec![format!("({})", marks(10)); chunk.len()].join(", ");
        let sql = format!(
            "INSERT INTO sync_log (user_id, operation_id, device_id, entity_type, entity_id,
                                   operation, changes, ack, client_time, server_time)
             VALUES {rows}"
        );
        let mut args: Vec<Sql> = Vec::with_capacity(chunk.len() * 10);
        for l in chunk {
            args.extend([
                text(user.to_string()),
                text(l.operation_id.as_str()),
                text(l.device_id.as_str()),
                opt_text(l.entity_type.map(|e| e.as_str().to_owned())),
                opt_text(l.entity_id.clone()),
                opt_text(l.operation.map(|o| o.as_str().to_owned())),
                text(l.changes.as_str()),
                text(l.ack.as_str()),
                l.client_time.map(Sql::Integer).unwrap_or(Sql::Null),
                Sql::Integer(l.server_time),
            ]);
        }
        c.prepare_cached(&sql)
            .map_err(driver)?
            .execute(params_from_iter(args))
            .map_err(driver)?;
    }
    Ok(())
}
