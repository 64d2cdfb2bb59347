//! The history statements of the PostgreSQL backend: garbage collection,
//! the cursor reset after a restore, and the user's export (issue 14).
//! Split from `sql.rs`, which holds the sync path.

use sqlx::postgres::PgConnection;
use sqlx::Row;
use tidesync_engine::history::{GcPlan, OldTombstone};
use tidesync_protocol::time::Millis;
use tidesync_protocol::uuid::Uuid;
use tidesync_protocol::ScopeId;
use tidesync_store::{ExportPage, ExportQuery, StoreError};

use crate::error::db;
use crate::sql::{pulled_from, scope_ids};
use crate::stmt;

/// Up to `limit` tombstones written before `before`: the rows history
/// collection asks for ([`GcNeed::OldTombstones`]), keyed by scope and id.
pub async fn old_tombstones(
    c: &mut PgConnection,
    before: Millis,
    limit: usize,
) -> Result<Vec<OldTombstone<(i64, Uuid)>>, StoreError> {
    let rows: Vec<(i64, Uuid, i64)> = stmt::query_as(
        "SELECT scope_id, id, version FROM records
         WHERE deleted_at IS NOT NULL AND server_time < $1 LIMIT $2",
    )
    .bind(before)
    .bind(limit as i64)
    .fetch_all(&mut *c)
    .await
    .map_err(db)?;
    Ok(rows
        .into_iter()
        .map(|(scope, id, version)| OldTombstone {
            key: (scope, id),
            scope: ScopeId::new(scope),
            version,
        })
        .collect())
}

/// Applies one batch's plan in the caller's transaction: locks the scopes
/// whose tombstones it removes first (so no push of theirs interleaves).
/// Returns the `sync_log` rows removed.
pub async fn apply_gc(c: &mut PgConnection, plan: &GcPlan<(i64, Uuid)>) -> Result<u64, StoreError> {
    if !plan.raise.is_empty() {
        let scopes: Vec<i64> = plan.raise.iter().map(|(s, _)| s.get()).collect();
        stmt::query("SELECT id FROM scopes WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .bind(&scopes)
            .execute(&mut *c)
            .await
            .map_err(db)?;
        stmt::query(
            "DELETE FROM records r USING UNNEST($1::int8[], $2::uuid[]) AS g(scope_id, id)
             WHERE r.scope_id = g.scope_id AND r.id = g.id AND r.deleted_at IS NOT NULL",
        )
        .bind(plan.tombstones.iter().map(|(s, _)| *s).collect::<Vec<_>>())
        .bind(
            plan.tombstones
                .iter()
                .map(|(_, id)| *id)
                .collect::<Vec<_>>(),
        )
        .execute(&mut *c)
        .await
        .map_err(db)?;
        stmt::query(
            "UPDATE scopes SET collected = greatest(collected, h.v)
             FROM UNNEST($1::int8[], $2::int8[]) AS h(id, v) WHERE scopes.id = h.id",
        )
        .bind(&scopes)
        .bind(plan.raise.iter().map(|(_, v)| *v).collect::<Vec<_>>())
        .execute(&mut *c)
        .await
        .map_err(db)?;
    }
    let logs = stmt::query(
        "DELETE FROM sync_log WHERE ctid = ANY(ARRAY(
             SELECT ctid FROM sync_log WHERE server_time < $1 LIMIT $2))",
    )
    .bind(plan.log_before)
    .bind(plan.log_limit as i64)
    .execute(&mut *c)
    .await
    .map_err(db)?;
    Ok(logs.rows_affected())
}

/// See `Store::forget_cursors`.
pub async fn forget_cursors(c: &mut PgConnection) -> Result<u64, StoreError> {
    Ok(
        stmt::query("UPDATE scopes SET version = version + $1, collected = version + $1")
            .bind(tidesync_store::RESTORE_GAP)
            .execute(c)
            .await
            .map_err(db)?
            .rows_affected(),
    )
}

pub async fn forget_expired_tokens(c: &mut PgConnection, now: Millis) -> Result<u64, StoreError> {
    Ok(
        stmt::query("DELETE FROM revoked_tokens WHERE expires_at <= $1")
            .bind(now)
            .execute(c)
            .await
            .map_err(db)?
            .rows_affected(),
    )
}

/// The scopes' `collected` now: a push rechecks, after reading its page,
/// the scopes it did not lock, in case a collection committed meanwhile.
pub async fn collected(
    c: &mut PgConnection,
    scopes: &[ScopeId],
) -> Result<Vec<(ScopeId, i64)>, StoreError> {
    let rows: Vec<(i64, i64)> =
        stmt::query_as("SELECT id, collected FROM scopes WHERE id = ANY($1)")
            .bind(scope_ids(scopes))
            .fetch_all(c)
            .await
            .map_err(db)?;
    Ok(rows
        .into_iter()
        .map(|(s, v)| (ScopeId::new(s), v))
        .collect())
}

/// A page of the data export (see `Store::export`), cut by bytes in the
/// query itself as a pull's page is (`sql::page`): a row is sent while the
/// bytes up to and including it are within the budget, and the first row
/// always. Lengths come from the stored sizes (`octet_length`), without
/// decompressing the text, and the rows beyond the cut are counted, not
/// sent (`total`), so PostgreSQL never sends more than the page.
pub async fn export(
    c: &mut PgConnection,
    scopes: &[ScopeId],
    q: ExportQuery,
) -> Result<ExportPage, StoreError> {
    let (after_scope, after_id) = q
        .after
        .map_or((i64::MIN, Uuid::nil()), |(s, id)| (s.get(), id.as_uuid()));
    let rows = stmt::query(
        "SELECT scope_id, id, kind, version, data, created_at, updated_at, deleted_at, device_id,
                created_by, total
         FROM (
             SELECT *, sum(len) OVER (ORDER BY scope_id, id) AS upto,
                    row_number() OVER (ORDER BY scope_id, id) AS n,
                    count(*) OVER () AS total
             FROM (SELECT scope_id, id, kind, version, data, created_at, updated_at, deleted_at,
                          device_id, created_by,
                          octet_length(data) + octet_length(device_id) + $8 AS len
                   FROM records
                   WHERE scope_id = ANY($1) AND kind = $2 AND ($3 OR deleted_at IS NULL)
                     AND (scope_id, id) > ($4, $5)
                   ORDER BY scope_id, id LIMIT $6 + 1) page
         ) cut
         WHERE n = 1 OR (n <= $6 AND upto <= $7)
         ORDER BY scope_id, id",
    )
    .bind(scope_ids(scopes))
    .bind(q.kind.as_str())
    .bind(q.tombstones)
    .bind(after_scope)
    .bind(after_id)
    .bind(q.limit.min(i64::MAX as usize - 1) as i64)
    .bind(q.max_bytes.min(i64::MAX as usize) as i64)
    .bind(tidesync_engine::record::RECORD_OVERHEAD as i64)
    .fetch_all(c)
    .await
    .map_err(db)?;
    let mut page = ExportPage::default();
    for row in &rows {
        let total: i64 = row.try_get("total").map_err(db)?;
        page.more = total > rows.len() as i64;
        page.records.push((
            ScopeId::new(row.try_get("scope_id").map_err(db)?),
            pulled_from(row, q.kind.model())?,
        ));
    }
    Ok(page)
}
