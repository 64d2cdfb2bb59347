//! The push's own statements, shaped for few round trips (issue 12): the
//! view with the personal lock, the batch's reads in one statement, and
//! every write of the plan in one statement.
//!
//! A lock and the reads that must see what its previous holder committed
//! cannot share a statement: under READ COMMITTED a statement reads from
//! the snapshot taken when it started, before it waited for the lock. So a
//! push is: view (+ personal lock), [lock], reads, writes, page.

use sqlx::postgres::PgConnection;
use sqlx::Row;
use tidesync_engine::{LogRow, RecordWrite, StoredRecord, View};
use tidesync_protocol::entity::{EntityType, Model};
use tidesync_protocol::{RecordId, Role, ScopeId, UserId};
use tidesync_store::StoreError;

use crate::error::db;
use crate::sql::{
    cut_at, role, scope_ids, stored_from, uuids, view_from_rows, UNCUT_IDS, VIEW_COLUMNS,
};
use crate::stmt;

/// The user's view, and the personal scope's write lock taken in the same
/// statement when that scope has the smallest id of the user's scopes
/// (always, unless the user joined a space created before their account):
/// locks are taken in ascending id order, so taking it first is then the
/// order a separate lock statement would use. Returns whether it is held.
/// The view itself is read before the lock (as a separate statement would
/// be): what must be current is read again under the lock ([`batch`]).
pub async fn view_locking(
    c: &mut PgConnection,
    user: UserId,
) -> Result<Option<(View, bool)>, StoreError> {
    let rows = stmt::query(sqlx::AssertSqlSafe(format!(
        "WITH v AS (
             SELECT {VIEW_COLUMNS} FROM members m JOIN scopes s ON s.id = m.scope_id
             WHERE m.user_id = $1
         ), p AS (
             SELECT id FROM scopes
             WHERE id IN (SELECT id FROM v WHERE space_id IS NULL AND role = 'owner')
               AND id <= ALL (SELECT id FROM v)
             FOR UPDATE
         )
         SELECT v.*, (SELECT count(*) FROM p) AS locked FROM v"
    )))
    .bind(user.as_uuid())
    .fetch_all(c)
    .await
    .map_err(db)?;
    let locked = match rows.first() {
        Some(r) => r.try_get::<i64, _>("locked").map_err(db)? > 0,
        None => false,
    };
    Ok(view_from_rows(user, &rows)?.map(|v| (v, locked)))
}

/// Takes the scopes' write locks, in ascending order (so two pushes never
/// deadlock). The lock serialises a scope's writers, so versions are handed
/// out in commit order.
pub async fn lock(c: &mut PgConnection, scopes: &[ScopeId]) -> Result<(), StoreError> {
    stmt::query("SELECT id FROM scopes WHERE id = ANY($1) ORDER BY id FOR UPDATE")
        .bind(scope_ids(scopes))
        .execute(c)
        .await
        .map_err(db)?;
    Ok(())
}

/// The batch's reads (see [`batch`]); the records part differs between
/// [`BATCH_WHOLE`] and [`BATCH_CUT`].
macro_rules! batch_reads {
    ($records:literal) => {
        concat!(
            "SELECT 0 AS tag, s.id AS scope_id, NULL::uuid AS id, NULL::text AS kind, s.version,
                    NULL::text AS data, NULL::text AS clocks, NULL::uuid AS created_by,
                    m.role AS op, NULL::text AS ack, s.collected, NULL::int8 AS ord
             FROM scopes s LEFT JOIN members m ON m.scope_id = s.id AND m.user_id = $1
             WHERE s.id = ANY($2)
             UNION ALL
             SELECT 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, l.operation_id, l.ack, NULL, NULL
             FROM UNNEST($3::text[]) AS o(op), LATERAL (
                 SELECT operation_id, ack FROM sync_log WHERE user_id = $1 AND operation_id = o.op
                 OFFSET 0) l
             UNION ALL
             ",
            $records
        )
    };
}

/// Every record asked for.
const BATCH_WHOLE: &str = batch_reads!(
    "SELECT 2, r.scope_id, r.id, r.kind, r.version, r.data, r.clocks, r.created_by,
            NULL, NULL, NULL, k.ord
     FROM UNNEST($5::uuid[]) WITH ORDINALITY AS k(id, ord), LATERAL (
         SELECT * FROM records WHERE scope_id = ANY($4) AND id = k.id OFFSET 0) r"
);

/// The records asked for while those before each, in order, hold less
/// than `$6` bytes.
const BATCH_CUT: &str = batch_reads!(
    "SELECT 2, x.scope_id, x.id, x.kind, x.version, x.data, x.clocks, x.created_by,
            NULL, NULL, NULL, x.ord
     FROM (SELECT k.ord, r.*, coalesce(sum(octet_length(r.data)) OVER (ORDER BY k.ord
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
           FROM UNNEST($5::uuid[]) WITH ORDINALITY AS k(id, ord), LATERAL (
               SELECT * FROM records WHERE scope_id = ANY($4) AND id = k.id OFFSET 0) r) x
     WHERE x.before < $6"
);

/// What a batch reads under its locks.
pub struct BatchRows {
    /// Per locked scope: its counter and the user's role.
    pub locked: Vec<(ScopeId, i64, Role)>,
    /// Per locked scope: its `collected`, which cannot move while locked.
    pub collected: Vec<(ScopeId, i64)>,
    pub acks: Vec<(String, String)>,
    pub records: Vec<StoredRecord>,
    /// How many of the ids asked for were looked up (see [`crate::sql::cut_at`]).
    pub looked_up: usize,
}

/// The batch's reads in one statement, run once `locked` are held: each
/// locked scope's counter, `collected` and the user's role; the stored acks
/// of `ops`; the records with `ids` in `scopes`, in the order of `ids` and,
/// with a byte budget, while the records before each are within it (sizes
/// as stored, `octet_length`, without reading the text). Rows are told
/// apart by `tag`.
///
/// Acks and records are probed key by key (`LATERAL`, which `OFFSET 0`
/// keeps from being flattened into a join): left to itself, the planner
/// prefers to scan all of a user's `sync_log` and records rather than do
/// 100 index probes whenever that user is most of the table, and the
/// scan's cost grows with the user's data (a 100-op push read 20 ms with
/// 10,000 records; BENCHMARKS.md, issue 12).
pub async fn batch(
    c: &mut PgConnection,
    model: Model,
    user: UserId,
    locked: &[ScopeId],
    ops: &[String],
    (ids, max_bytes): (&[RecordId], Option<usize>),
    scopes: &[ScopeId],
) -> Result<BatchRows, StoreError> {
    // A few ids cannot hold much: read them whole, without the window
    // that cuts by bytes (a round trip of the steady state is one id).
    let cut = max_bytes.filter(|_| ids.len() > UNCUT_IDS);
    let query = match cut {
        None => stmt::query(BATCH_WHOLE),
        Some(_) => stmt::query(BATCH_CUT),
    }
    .bind(user.as_uuid())
    .bind(scope_ids(locked))
    .bind(ops)
    .bind(scope_ids(scopes))
    .bind(uuids(ids));
    let query = match cut {
        None => query,
        Some(m) => query.bind(m.min(i64::MAX as usize) as i64),
    };
    let rows = query.fetch_all(c).await.map_err(db)?;
    let mut out = BatchRows {
        locked: Vec::new(),
        collected: Vec::new(),
        acks: Vec::new(),
        records: Vec::new(),
        looked_up: 0,
    };
    let mut read = Vec::new();
    for r in &rows {
        match r.try_get::<i32, _>("tag").map_err(db)? {
            0 => {
                let scope = ScopeId::new(r.try_get("scope_id").map_err(db)?);
                let role = match r.try_get::<Option<&str>, _>("op").map_err(db)? {
                    Some(s) => role(s)?,
                    None => Role::Removed,
                };
                out.locked
                    .push((scope, r.try_get("version").map_err(db)?, role));
                out.collected
                    .push((scope, r.try_get("collected").map_err(db)?));
            }
            1 => out
                .acks
                .push((r.try_get("op").map_err(db)?, r.try_get("ack").map_err(db)?)),
            _ => {
                let rec = stored_from(r, model)?;
                read.push((r.try_get::<i64, _>("ord").map_err(db)?, rec.bytes));
                out.records.push(rec);
            }
        }
    }
    out.looked_up = cut_at(ids.len(), cut, &read);
    // The engine expects the locked scopes in locking (ascending) order.
    out.locked.sort_by_key(|(s, _, _)| *s);
    Ok(out)
}

/// Everything a plan writes, in one statement: its log rows, its records
/// (`INSERT … ON CONFLICT DO UPDATE`, columns as arrays through `UNNEST`),
/// the new counters, and the change notices (`pg_notify`, delivered to
/// every listening instance if and when the transaction commits).
pub async fn write(
    c: &mut PgConnection,
    user: UserId,
    logs: &[LogRow],
    recs: &[RecordWrite],
    heads: &[(ScopeId, i64)],
    channel: &str,
    notes: &[String],
) -> Result<(), StoreError> {
    if logs.is_empty() && recs.is_empty() && heads.is_empty() && notes.is_empty() {
        return Ok(());
    }
    // Data-modifying CTEs run to completion whether or not they are read.
    stmt::query(
        "WITH logs AS (
             INSERT INTO sync_log (user_id, operation_id, device_id, entity_type, entity_id,
                                   operation, changes, ack, client_time, server_time)
             SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                                      $7::text[], $8::text[], $9::int8[], $10::int8[])
         ), recs AS (
             INSERT INTO records (scope_id, id, kind, version, root_id, parent_id, data,
                                  clocks, created_at, updated_at, deleted_at, device_id,
                                  server_time, created_by)
             SELECT * FROM UNNEST($11::int8[], $12::uuid[], $13::text[], $14::int8[],
                                  $15::uuid[], $16::uuid[], $17::text[], $18::text[],
                                  $19::int8[], $20::int8[], $21::int8[], $22::text[],
                                  $23::int8[], $24::uuid[])
             ON CONFLICT (scope_id, id) DO UPDATE SET
                kind = excluded.kind, version = excluded.version, root_id = excluded.root_id,
                parent_id = excluded.parent_id, data = excluded.data,
                clocks = excluded.clocks, created_at = excluded.created_at,
                updated_at = excluded.updated_at, deleted_at = excluded.deleted_at,
                device_id = excluded.device_id, server_time = excluded.server_time
         ), heads AS (
             UPDATE scopes SET version = h.v FROM UNNEST($25::int8[], $26::int8[]) AS h(id, v)
             WHERE scopes.id = h.id
         )
         SELECT pg_notify($27, p) FROM UNNEST($28::text[]) AS p",
    )
    .bind(user.as_uuid())
    .bind(
        logs.iter()
            .map(|l| l.operation_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        logs.iter()
            .map(|l| l.device_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        logs.iter()
            .map(|l| l.entity_type.map(EntityType::as_str))
            .collect::<Vec<_>>(),
    )
    .bind(
        logs.iter()
            .map(|l| l.entity_id.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(
        logs.iter()
            .map(|l| l.operation.map(|o| o.as_str()))
            .collect::<Vec<_>>(),
    )
    .bind(logs.iter().map(|l| l.changes.as_str()).collect::<Vec<_>>())
    .bind(logs.iter().map(|l| l.ack.as_str()).collect::<Vec<_>>())
    .bind(logs.iter().map(|l| l.client_time).collect::<Vec<_>>())
    .bind(logs.iter().map(|l| l.server_time).collect::<Vec<_>>())
    .bind(recs.iter().map(|r| r.scope.get()).collect::<Vec<_>>())
    .bind(recs.iter().map(|r| r.id.as_uuid()).collect::<Vec<_>>())
    .bind(recs.iter().map(|r| r.entity.as_str()).collect::<Vec<_>>())
    .bind(recs.iter().map(|r| r.version).collect::<Vec<_>>())
    .bind(
        recs.iter()
            .map(|r| r.root_id.map(|s| s.as_uuid()))
            .collect::<Vec<_>>(),
    )
    .bind(
        recs.iter()
            .map(|r| r.parent_id.map(|s| s.as_uuid()))
            .collect::<Vec<_>>(),
    )
    .bind(recs.iter().map(|r| r.data.as_str()).collect::<Vec<_>>())
    .bind(recs.iter().map(|r| r.clocks.as_str()).collect::<Vec<_>>())
    .bind(recs.iter().map(|r| r.created_at).collect::<Vec<_>>())
    .bind(recs.iter().map(|r| r.updated_at).collect::<Vec<_>>())
    .bind(recs.iter().map(|r| r.deleted_at).collect::<Vec<_>>())
    .bind(
        recs.iter()
            .map(|r| r.device_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(recs.iter().map(|r| r.server_time).collect::<Vec<_>>())
    .bind(
        recs.iter()
            .map(|r| r.created_by.as_uuid())
            .collect::<Vec<_>>(),
    )
    .bind(heads.iter().map(|(s, _)| s.get()).collect::<Vec<_>>())
    .bind(heads.iter().map(|(_, v)| *v).collect::<Vec<_>>())
    .bind(channel)
    .bind(notes)
    .execute(c)
    .await
    .map_err(db)?;
    Ok(())
}
