//! The history statements of the SQLite backend: garbage collection, the
//! cursor reset after a restore, and the user's export (issue 14). Split
//! from `sql.rs` and `write.rs`, which hold the sync path.

use rusqlite::types::Value as Sql;
use rusqlite::{params, params_from_iter, Connection};
use tidesync_protocol::time::Millis;
use tidesync_protocol::ScopeId;
use tidesync_store::{ExportPage, ExportQuery, StoreError};

use crate::error::driver;
use crate::sql::{marks, pulled_from, scope_list, text, CHUNK};

/// One batch of garbage collection (see `Store::collect_garbage`): removes
/// up to `batch` old tombstones, raising each scope's `collected` to the
/// highest version removed, then up to `batch` old `sync_log` rows.
/// Returns (tombstones, log rows) removed.
pub fn collect_batch(
    c: &Connection,
    tombstones_before: Millis,
    log_before: Millis,
    batch: usize,
) -> Result<(u64, u64), StoreError> {
    let old: Vec<(i64, i64, i64)> = {
        let mut st = c
            .prepare_cached(
                "SELECT rowid, scope_id, version FROM records
                 WHERE deleted_at IS NOT NULL AND server_time < ? LIMIT ?",
            )
            .map_err(driver)?;
        let rows = st
            .query_map(params![tombstones_before, batch as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(driver)?;
        rows.collect::<rusqlite::Result<_>>().map_err(driver)?
    };
    let mut highest: std::collections::BTreeMap<i64, i64> = Default::default();
    for (_, scope, version) in &old {
        let h = highest.entry(*scope).or_insert(0);
        *h = (*h).max(*version);
    }
    let mut raise = c
        .prepare_cached("UPDATE scopes SET collected = MAX(collected, ?) WHERE id = ?")
        .map_err(driver)?;
    for (scope, v) in &highest {
        raise.execute(params![v, scope]).map_err(driver)?;
    }
    for chunk in old.chunks(CHUNK) {
        let sql = format!(
            "DELETE FROM records WHERE rowid IN ({})",
            marks(chunk.len())
        );
        c.prepare_cached(&sql)
            .map_err(driver)?
            .execute(params_from_iter(chunk.iter().map(|(rowid, _, _)| *rowid)))
            .map_err(driver)?;
    }
    let logs = c
        .prepare_cached(
            "DELETE FROM sync_log WHERE rowid IN
                 (SELECT rowid FROM sync_log WHERE server_time < ? LIMIT ?)",
        )
        .map_err(driver)?
        .execute(params![log_before, batch as i64])
        .map_err(driver)?;
    Ok((old.len() as u64, logs as u64))
}

/// See `Store::forget_cursors`.
pub fn forget_cursors(c: &Connection) -> Result<u64, StoreError> {
    let n = c
        .prepare_cached("UPDATE scopes SET version = version + ?1, collected = version + ?1")
        .map_err(driver)?
        .execute([tidesync_store::RESTORE_GAP])
        .map_err(driver)?;
    Ok(n as u64)
}

pub fn forget_expired_tokens(c: &Connection, now: Millis) -> Result<u64, StoreError> {
    Ok(
        c.prepare_cached("DELETE FROM revoked_tokens WHERE expires_at <= ?")
            .map_err(driver)?
            .execute([now])
            .map_err(driver)? as u64,
    )
}

/// A page of the data export (see `Store::export`): rows are stepped one
/// at a time and the first that does not fit ends the page (it is read, as
/// a pull's look-ahead row is, to learn that there is more), so neither
/// SQLite nor this process holds more than a page.
pub fn export(
    c: &Connection,
    scopes: &[ScopeId],
    q: ExportQuery,
) -> Result<ExportPage, StoreError> {
    let sql = format!(
        "SELECT scope_id, id, kind, version, data, created_at, updated_at, deleted_at, device_id, created_by
         FROM records
         WHERE scope_id IN ({}) AND kind = ? AND (? OR deleted_at IS NULL) AND (scope_id, id) > (?, ?)
         ORDER BY scope_id, id LIMIT ?",
        marks(scopes.len())
    );
    let (after_scope, after_id) = q.after.map_or((i64::MIN, String::new()), |(s, id)| {
        (s.get(), id.to_string())
    });
    let args = scope_list(scopes).into_iter().chain([
        text(q.kind.as_str()),
        Sql::Integer(q.tombstones as i64),
        Sql::Integer(after_scope),
        Sql::Text(after_id),
        Sql::Integer(q.limit.saturating_add(1).min(i64::MAX as usize) as i64),
    ]);
    let mut st = c.prepare_cached(&sql).map_err(driver)?;
    let mut rows = st.query(params_from_iter(args)).map_err(driver)?;
    let mut page = ExportPage::default();
    let mut bytes = 0usize;
    while let Some(row) = rows.next().map_err(driver)? {
        let rec = pulled_from(row, 1)?;
        if !q.fits(page.records.len(), bytes, rec.size()) {
            page.more = true;
            break;
        }
        bytes += rec.size();
        page.records
            .push((ScopeId::new(row.get(0).map_err(driver)?), rec));
    }
    Ok(page)
}
