//! The history statements of the SQLite backend: garbage collection, the
//! cursor reset after a restore, and the user's export (issue 14). Split
//! from `sql.rs` and `write.rs`, which hold the sync path.

use rusqlite::{params, params_from_iter, Connection};
use tidesync_engine::history::{GcPlan, OldTombstone};
use tidesync_protocol::time::Millis;
use tidesync_protocol::ScopeId;
use tidesync_store::{ExportPage, ExportQuery, StoreError};

use crate::error::driver;
use crate::sql::{marks, pulled_from, CHUNK, PULLED};

/// Up to `limit` tombstones written before `before`: the rows history
/// collection asks for ([`GcNeed::OldTombstones`]), keyed by rowid.
pub fn old_tombstones(
    c: &Connection,
    before: Millis,
    limit: usize,
) -> Result<Vec<OldTombstone<i64>>, StoreError> {
    let mut st = c
        .prepare_cached(
            "SELECT rowid, scope_id, version FROM records
             WHERE deleted_at IS NOT NULL AND server_time < ? LIMIT ?",
        )
        .map_err(driver)?;
    let rows = st
        .query_map(params![before, limit as i64], |r| {
            Ok(OldTombstone {
                key: r.get(0)?,
                scope: ScopeId::new(r.get(1)?),
                version: r.get(2)?,
            })
        })
        .map_err(driver)?;
    rows.collect::<rusqlite::Result<_>>().map_err(driver)
}

/// Applies one batch's plan (in the writer's transaction). Returns the
/// `sync_log` rows removed.
pub fn apply_gc(c: &Connection, plan: &GcPlan<i64>) -> Result<u64, StoreError> {
    let mut raise = c
        .prepare_cached("UPDATE scopes SET collected = MAX(collected, ?) WHERE id = ?")
        .map_err(driver)?;
    for (scope, v) in &plan.raise {
        raise.execute(params![v, scope.get()]).map_err(driver)?;
    }
    for chunk in plan.tombstones.chunks(CHUNK) {
        let sql = format!(
            "DELETE FROM records WHERE rowid IN ({})",
            marks(chunk.len())
        );
        c.prepare_cached(&sql)
            .map_err(driver)?
            .execute(params_from_iter(chunk))
            .map_err(driver)?;
    }
    let logs = c
        .prepare_cached(
            "DELETE FROM sync_log WHERE rowid IN
                 (SELECT rowid FROM sync_log WHERE server_time < ? LIMIT ?)",
        )
        .map_err(driver)?
        .execute(params![plan.log_before, plan.log_limit as i64])
        .map_err(driver)?;
    Ok(logs as u64)
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
