//! The history statements of the SQLite backend: garbage collection, the
//! cursor reset after a restore, and the user's export (issue 14). Split
//! from `sql.rs` and `write.rs`, which hold the sync path.

use rusqlite::{params, params_from_iter, Connection};
use tidesync_protocol::time::Millis;
use tidesync_protocol::ScopeId;
use tidesync_store::{ExportPage, ExportQuery, StoreError};

use crate::error::driver;
use crate::sql::{marks, pulled_from, CHUNK, PULLED};

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

/// A page of the data export (see `Store::export`): scope by scope in id
/// order, each an index range from where the last page ended (a seek, not
/// a scan from the scope's start, however far the export has come). Rows
/// are stepped one at a time and the first that does not fit ends the
/// page (it is read, as a pull's look-ahead row is, to learn that there is
/// more), so neither SQLite nor this process holds more than a page.
pub fn export(
    c: &Connection,
    scopes: &[ScopeId],
    q: ExportQuery,
) -> Result<ExportPage, StoreError> {
    let mut st = c
        .prepare_cached(&format!(
            "SELECT {PULLED} FROM records
             WHERE scope_id = ? AND id > ? AND kind = ? AND (? OR deleted_at IS NULL)
             ORDER BY id LIMIT ?"
        ))
        .map_err(driver)?;
    let mut scopes = scopes.to_vec();
    scopes.sort();
    let mut page = ExportPage::default();
    let mut bytes = 0usize;
    for scope in scopes {
        let after = match q.after {
            Some((s, _)) if s > scope => continue,
            Some((s, id)) if s == scope => id.to_string(),
            _ => String::new(),
        };
        // One row past the room left: a full page still learns whether
        // there is more.
        let room = q.limit.saturating_sub(page.records.len()).saturating_add(1);
        let mut rows = st
            .query(params![
                scope.get(),
                after,
                q.kind.as_str(),
                q.tombstones,
                room.min(i64::MAX as usize) as i64
            ])
            .map_err(driver)?;
        while let Some(row) = rows.next().map_err(driver)? {
            let rec = pulled_from(row, 0, q.kind.model())?;
            if !q.fits(page.records.len(), bytes, rec.size()) {
                page.more = true;
                return Ok(page);
            }
            bytes += rec.size();
            page.records.push((scope, rec));
        }
    }
    Ok(page)
}
