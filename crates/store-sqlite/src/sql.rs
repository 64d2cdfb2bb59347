//! The sync statements of the SQLite backend, once (accounts: `accounts.rs`).
//! Readers and the writer run the same functions on their own connections.

use rusqlite::types::Value as Sql;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use tidesync_engine::{LogRow, PageBuilder, PageQuery, PulledRecord, RecordWrite, StoredRecord};
use tidesync_protocol::entity::EntityType;
use tidesync_protocol::merge;
use tidesync_protocol::time::Millis;
use tidesync_protocol::{RecordId, UserId};
use tidesync_store::StoreError;

use crate::error::driver;

/// Ids per `IN (…)` list, and rows per multi-row `INSERT`: under SQLite's
/// 32,766 variables, and small enough to keep statements cacheable.
const CHUNK: usize = 500;
const RECORD_ROWS: usize = 200;
const LOG_ROWS: usize = 250;

/// `n` anonymous placeholders. Not `?NNN`: SQLite resolves each numbered
/// name by a linear scan, which made binding a multi-row statement
/// quadratic (a third of push time, measured with perf in issue 5).
fn marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

fn text(s: impl Into<String>) -> Sql {
    Sql::Text(s.into())
}

fn opt_text(s: Option<String>) -> Sql {
    s.map(Sql::Text).unwrap_or(Sql::Null)
}

fn corrupt(what: &str, v: &str) -> StoreError {
    StoreError::Corrupt(format!("bad {what} {v:?}"))
}

fn record_id(s: &str) -> Result<RecordId, StoreError> {
    s.parse().map_err(|_| corrupt("record id", s))
}

fn entity(s: &str) -> Result<EntityType, StoreError> {
    EntityType::parse(s).ok_or_else(|| corrupt("record kind", s))
}

/// The user's counter. On the writer it is read under the user's write lock:
/// the writer holds SQLite's one write transaction (`BEGIN IMMEDIATE`).
pub fn head(c: &Connection, user: UserId) -> Result<Option<i64>, StoreError> {
    c.prepare_cached("SELECT sync_version FROM users WHERE id = ?")
        .map_err(driver)?
        .query_row([user.to_string()], |r| r.get(0))
        .optional()
        .map_err(driver)
}

pub fn set_head(c: &Connection, user: UserId, version: i64) -> Result<(), StoreError> {
    c.prepare_cached("UPDATE users SET sync_version = ? WHERE id = ?")
        .map_err(driver)?
        .execute(params![version, user.to_string()])
        .map_err(driver)?;
    Ok(())
}

pub fn first_version_since(
    c: &Connection,
    user: UserId,
    since: Millis,
) -> Result<Option<i64>, StoreError> {
    c.prepare_cached("SELECT MIN(version) FROM records WHERE user_id = ? AND server_time >= ?")
        .map_err(driver)?
        .query_row(params![user.to_string(), since], |r| r.get(0))
        .map_err(driver)
}

pub fn load_acks(
    c: &Connection,
    user: UserId,
    ops: &[String],
) -> Result<Vec<(String, String)>, StoreError> {
    let mut out = Vec::new();
    for chunk in ops.chunks(CHUNK) {
        let sql = format!(
            "SELECT operation_id, ack FROM sync_log WHERE user_id = ? AND operation_id IN ({})",
            marks(chunk.len())
        );
        let args =
            std::iter::once(text(user.to_string())).chain(chunk.iter().map(|s| text(s.as_str())));
        let mut st = c.prepare_cached(&sql).map_err(driver)?;
        let rows = st
            .query_map(params_from_iter(args), |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(driver)?;
        for r in rows {
            out.push(r.map_err(driver)?);
        }
    }
    Ok(out)
}

const STORED: &str = "id, kind, version, data, clocks";

fn stored_rows(
    c: &Connection,
    sql: &str,
    args: Vec<Sql>,
    out: &mut Vec<StoredRecord>,
) -> Result<(), StoreError> {
    let mut st = c.prepare_cached(sql).map_err(driver)?;
    let mut rows = st.query(params_from_iter(args)).map_err(driver)?;
    while let Some(r) = rows.next().map_err(driver)? {
        let id: String = r.get(0).map_err(driver)?;
        let kind: String = r.get(1).map_err(driver)?;
        let data: String = r.get(3).map_err(driver)?;
        let clocks: String = r.get(4).map_err(driver)?;
        out.push(StoredRecord {
            id: record_id(&id)?,
            entity: entity(&kind)?,
            version: r.get(2).map_err(driver)?,
            state: merge::decode_state(&data, &clocks).map_err(StoreError::Corrupt)?,
        });
    }
    Ok(())
}

fn ids_in(
    c: &Connection,
    user: UserId,
    ids: &[RecordId],
    sql: impl Fn(&str) -> String,
    extra: &[Sql],
    out: &mut Vec<StoredRecord>,
) -> Result<(), StoreError> {
    for chunk in ids.chunks(CHUNK) {
        let mut args = vec![text(user.to_string())];
        args.extend(chunk.iter().map(|id| text(id.to_string())));
        args.extend(extra.iter().cloned());
        stored_rows(c, &sql(&marks(chunk.len())), args, out)?;
    }
    Ok(())
}

pub fn load_records(
    c: &Connection,
    user: UserId,
    ids: &[RecordId],
) -> Result<Vec<StoredRecord>, StoreError> {
    let mut out = Vec::with_capacity(ids.len());
    ids_in(
        c,
        user,
        ids,
        |m| format!("SELECT {STORED} FROM records WHERE user_id = ? AND id IN ({m})"),
        &[],
        &mut out,
    )?;
    Ok(out)
}

/// The live children of a cascade level. Two queries, one per parent
/// column, so each runs on its own index (`records_by_space`,
/// `records_by_category`); an `OR` of both scanned all of the user's rows.
pub fn children(
    c: &Connection,
    user: UserId,
    spaces: &[RecordId],
    categories: &[RecordId],
    loaded_spaces: &[RecordId],
) -> Result<Vec<StoredRecord>, StoreError> {
    let mut out = Vec::new();
    ids_in(
        c,
        user,
        spaces,
        |m| {
            format!(
                "SELECT {STORED} FROM records
                 WHERE user_id = ? AND space_id IN ({m}) AND deleted_at IS NULL"
            )
        },
        &[],
        &mut out,
    )?;
    // Items already loaded through their space are not read again. The
    // list is short (the spaces of this cascade), so it is bound whole.
    let skip: Vec<Sql> = loaded_spaces.iter().map(|s| text(s.to_string())).collect();
    // (`NOT IN (NULL)` would be unknown for every row: no list, no condition.)
    let skip_clause = if skip.is_empty() {
        String::new()
    } else {
        format!(
            "AND (space_id IS NULL OR space_id NOT IN ({}))",
            marks(skip.len())
        )
    };
    ids_in(
        c,
        user,
        categories,
        |m| {
            format!(
                "SELECT {STORED} FROM records
                 WHERE user_id = ? AND category_id IN ({m}) AND deleted_at IS NULL {skip_clause}"
            )
        },
        &skip,
        &mut out,
    )?;
    Ok(out)
}

pub fn save_records(c: &Connection, user: UserId, recs: &[RecordWrite]) -> Result<(), StoreError> {
    for chunk in recs.chunks(RECORD_ROWS) {
        let rows = vec![format!("({})", marks(13)); chunk.len()].join(", ");
        let sql = format!(
            "INSERT INTO records (user_id, id, kind, version, space_id, category_id, data, clocks,
                                  created_at, updated_at, deleted_at, device_id, server_time)
             VALUES {rows}
             ON CONFLICT (user_id, id) DO UPDATE SET
                kind = excluded.kind, version = excluded.version, space_id = excluded.space_id,
                category_id = excluded.category_id, data = excluded.data, clocks = excluded.clocks,
                created_at = excluded.created_at, updated_at = excluded.updated_at,
                deleted_at = excluded.deleted_at, device_id = excluded.device_id,
                server_time = excluded.server_time"
        );
        let mut args: Vec<Sql> = Vec::with_capacity(chunk.len() * 13);
        for r in chunk {
            args.extend([
                text(user.to_string()),
                text(r.id.to_string()),
                text(r.entity.as_str()),
                Sql::Integer(r.version),
                opt_text(r.space_id.map(|s| s.to_string())),
                opt_text(r.category_id.map(|s| s.to_string())),
                text(r.data.as_str()),
                text(r.clocks.as_str()),
                Sql::Integer(r.created_at),
                Sql::Integer(r.updated_at),
                r.deleted_at.map(Sql::Integer).unwrap_or(Sql::Null),
                text(r.device_id.as_str()),
                Sql::Integer(r.server_time),
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

/// Reads a page row by row, stopping as soon as it is full: a page of huge
/// records never has more than one of them in memory beyond the page.
pub fn page(
    c: &Connection,
    user: UserId,
    q: PageQuery,
) -> Result<tidesync_engine::Page, StoreError> {
    let mut st = c
        .prepare_cached(
            "SELECT id, kind, version, data, created_at, updated_at, deleted_at, device_id
             FROM records
             WHERE user_id = ? AND version > ? AND version <= ? AND (? = 0 OR deleted_at IS NULL)
             ORDER BY version LIMIT ?",
        )
        .map_err(driver)?;
    let mut rows = st
        .query(params![
            user.to_string(),
            q.after,
            q.upto,
            q.live_only as i64,
            q.rows() as i64
        ])
        .map_err(driver)?;
    let mut b: PageBuilder = q.builder();
    while let Some(r) = rows.next().map_err(driver)? {
        let id: String = r.get(0).map_err(driver)?;
        let kind: String = r.get(1).map_err(driver)?;
        let rec = PulledRecord {
            id: record_id(&id)?,
            entity: entity(&kind)?,
            version: r.get(2).map_err(driver)?,
            data: r.get(3).map_err(driver)?,
            created_at: r.get(4).map_err(driver)?,
            updated_at: r.get(5).map_err(driver)?,
            deleted_at: r.get(6).map_err(driver)?,
            device_id: r.get(7).map_err(driver)?,
        };
        if !b.offer(rec) {
            break;
        }
    }
    Ok(b.finish())
}
