//! The sync statements of the PostgreSQL backend, once (accounts:
//! `accounts.rs`, members: `members.rs`).

use sqlx::postgres::{PgConnection, PgRow};
use sqlx::Row;
use tidesync_engine::page::FirstSince;
use tidesync_engine::{
    LogRow, Page, PageQuery, PulledRecord, RecordWrite, ScopeView, StoredRecord, View,
};
use tidesync_protocol::entity::EntityType;
use tidesync_protocol::merge;
use tidesync_protocol::time::Millis;
use tidesync_protocol::uuid::Uuid;
use tidesync_protocol::{RecordId, Role, ScopeId, UserId};
use tidesync_store::StoreError;

use crate::error::db;
use crate::stmt;

pub(crate) fn entity(s: &str) -> Result<EntityType, StoreError> {
    EntityType::parse(s).ok_or_else(|| StoreError::Corrupt(format!("record kind {s:?}")))
}

pub fn role(s: &str) -> Result<Role, StoreError> {
    Role::parse(s).ok_or_else(|| StoreError::Corrupt(format!("role {s:?}")))
}

fn uuids(ids: &[RecordId]) -> Vec<Uuid> {
    ids.iter().map(RecordId::as_uuid).collect()
}

pub(crate) fn scope_ids(scopes: &[ScopeId]) -> Vec<i64> {
    scopes.iter().map(|s| s.get()).collect()
}

/// The user's memberships with each scope's counter; `None` when the user
/// (and so their personal scope) no longer exists.
pub async fn view(c: &mut PgConnection, user: UserId) -> Result<Option<View>, StoreError> {
    let rows = stmt::query(
        "SELECT s.id, m.role, s.space_id, s.version, s.collected FROM members m
         JOIN scopes s ON s.id = m.scope_id WHERE m.user_id = $1",
    )
    .bind(user.as_uuid())
    .fetch_all(c)
    .await
    .map_err(db)?;
    let (mut scopes, mut personal) = (Vec::new(), None);
    for r in &rows {
        let id = ScopeId::new(r.try_get("id").map_err(db)?);
        let role = role(r.try_get("role").map_err(db)?)?;
        let space: Option<Uuid> = r.try_get("space_id").map_err(db)?;
        if space.is_none() && role == Role::Owner {
            personal = Some(id);
        }
        scopes.push(ScopeView {
            id,
            role,
            space: space.map(RecordId::from_uuid),
            head: r.try_get("version").map_err(db)?,
            collected: r.try_get("collected").map_err(db)?,
        });
    }
    Ok(personal.map(|personal| View {
        user,
        personal,
        scopes,
    }))
}

pub async fn locate(
    c: &mut PgConnection,
    ids: &[RecordId],
    scopes: &[ScopeId],
) -> Result<Vec<(RecordId, ScopeId)>, StoreError> {
    let rows: Vec<(Uuid, i64)> = stmt::query_as(
        "SELECT id, scope_id FROM records WHERE scope_id = ANY($1) AND id = ANY($2)",
    )
    .bind(scope_ids(scopes))
    .bind(uuids(ids))
    .fetch_all(c)
    .await
    .map_err(db)?;
    Ok(rows
        .into_iter()
        .map(|(id, s)| (RecordId::from_uuid(id), ScopeId::new(s)))
        .collect())
}

/// Takes the scopes' row locks in ascending order (so two pushes never
/// deadlock) and reads each counter and the user's role under the lock.
/// The lock serialises the scope's writers, so versions are handed out in
/// commit order.
pub async fn lock(
    c: &mut PgConnection,
    user: UserId,
    scopes: &[ScopeId],
) -> Result<Vec<(ScopeId, i64, Role)>, StoreError> {
    let rows: Vec<(i64, i64, Option<String>)> = stmt::query_as(
        "SELECT s.id, s.version, m.role FROM scopes s
         LEFT JOIN members m ON m.scope_id = s.id AND m.user_id = $2
         WHERE s.id = ANY($1) ORDER BY s.id FOR UPDATE OF s",
    )
    .bind(scope_ids(scopes))
    .bind(user.as_uuid())
    .fetch_all(c)
    .await
    .map_err(db)?;
    rows.into_iter()
        .map(|(s, v, r)| {
            let r = match r {
                Some(r) => role(&r)?,
                None => Role::Removed,
            };
            Ok((ScopeId::new(s), v, r))
        })
        .collect()
}

pub async fn set_heads(c: &mut PgConnection, heads: &[(ScopeId, i64)]) -> Result<(), StoreError> {
    if heads.is_empty() {
        return Ok(());
    }
    stmt::query(
        "UPDATE scopes SET version = h.v FROM UNNEST($1::int8[], $2::int8[]) AS h(id, v)
         WHERE scopes.id = h.id",
    )
    .bind(heads.iter().map(|(s, _)| s.get()).collect::<Vec<_>>())
    .bind(heads.iter().map(|(_, v)| *v).collect::<Vec<_>>())
    .execute(c)
    .await
    .map_err(db)?;
    Ok(())
}

pub async fn first_since(
    c: &mut PgConnection,
    scopes: &[ScopeId],
    since: Millis,
) -> Result<FirstSince, StoreError> {
    let rows: Vec<(i64, i64)> = stmt::query_as(
        "SELECT scope_id, MIN(version) FROM records
         WHERE scope_id = ANY($1) AND server_time >= $2 GROUP BY scope_id",
    )
    .bind(scope_ids(scopes))
    .bind(since)
    .fetch_all(c)
    .await
    .map_err(db)?;
    Ok(rows
        .into_iter()
        .map(|(s, v)| (ScopeId::new(s), v))
        .collect())
}

pub async fn load_acks(
    c: &mut PgConnection,
    user: UserId,
    ops: &[String],
) -> Result<Vec<(String, String)>, StoreError> {
    if ops.is_empty() {
        return Ok(vec![]);
    }
    stmt::query_as(
        "SELECT operation_id, ack FROM sync_log WHERE user_id = $1 AND operation_id = ANY($2)",
    )
    .bind(user.as_uuid())
    .bind(ops)
    .fetch_all(c)
    .await
    .map_err(db)
}

const STORED: &str = "scope_id, id, kind, version, data, clocks, created_by";

/// A pulled record from a row with the page's named columns.
pub(crate) fn pulled_from(row: &PgRow) -> Result<PulledRecord, StoreError> {
    Ok(PulledRecord {
        id: RecordId::from_uuid(row.try_get("id").map_err(db)?),
        entity: entity(row.try_get("kind").map_err(db)?)?,
        version: row.try_get("version").map_err(db)?,
        data: row.try_get("data").map_err(db)?,
        created_at: row.try_get("created_at").map_err(db)?,
        updated_at: row.try_get("updated_at").map_err(db)?,
        deleted_at: row.try_get("deleted_at").map_err(db)?,
        device_id: row.try_get("device_id").map_err(db)?,
        created_by: UserId::from_uuid(row.try_get("created_by").map_err(db)?),
    })
}

fn stored_from(row: &PgRow) -> Result<StoredRecord, StoreError> {
    let state = merge::decode_state(
        row.try_get("data").map_err(db)?,
        row.try_get("clocks").map_err(db)?,
    )
    .map_err(StoreError::Corrupt)?;
    Ok(StoredRecord {
        scope: ScopeId::new(row.try_get("scope_id").map_err(db)?),
        id: RecordId::from_uuid(row.try_get("id").map_err(db)?),
        entity: entity(row.try_get("kind").map_err(db)?)?,
        version: row.try_get("version").map_err(db)?,
        state,
        created_by: UserId::from_uuid(row.try_get("created_by").map_err(db)?),
    })
}

pub async fn load_records(
    c: &mut PgConnection,
    ids: &[RecordId],
    scopes: &[ScopeId],
) -> Result<Vec<StoredRecord>, StoreError> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    stmt::query(sqlx::AssertSqlSafe(format!(
        "SELECT {STORED} FROM records WHERE scope_id = ANY($1) AND id = ANY($2)"
    )))
    .bind(scope_ids(scopes))
    .bind(uuids(ids))
    .fetch_all(c)
    .await
    .map_err(db)?
    .iter()
    .map(stored_from)
    .collect()
}

/// The live children of a cascade level, in one scope: one query per parent
/// column, so each runs on its own index; items reached through an already
/// loaded space are not read again.
pub async fn children(
    c: &mut PgConnection,
    scope: ScopeId,
    spaces: &[RecordId],
    categories: &[RecordId],
    loaded_spaces: &[RecordId],
) -> Result<Vec<StoredRecord>, StoreError> {
    let mut out = Vec::new();
    if !spaces.is_empty() {
        let rows = stmt::query(sqlx::AssertSqlSafe(format!(
            "SELECT {STORED} FROM records
             WHERE scope_id = $1 AND space_id = ANY($2) AND deleted_at IS NULL"
        )))
        .bind(scope.get())
        .bind(uuids(spaces))
        .fetch_all(&mut *c)
        .await
        .map_err(db)?;
        for r in &rows {
            out.push(stored_from(r)?);
        }
    }
    if !categories.is_empty() {
        let rows = stmt::query(sqlx::AssertSqlSafe(format!(
            "SELECT {STORED} FROM records
             WHERE scope_id = $1 AND category_id = ANY($2) AND deleted_at IS NULL
               AND (space_id IS NULL OR NOT (space_id = ANY($3)))"
        )))
        .bind(scope.get())
        .bind(uuids(categories))
        .bind(uuids(loaded_spaces))
        .fetch_all(&mut *c)
        .await
        .map_err(db)?;
        for r in &rows {
            out.push(stored_from(r)?);
        }
    }
    Ok(out)
}

/// One statement for the whole batch: columns as arrays, `UNNEST` to rows.
pub async fn save_records(c: &mut PgConnection, recs: &[RecordWrite]) -> Result<(), StoreError> {
    if recs.is_empty() {
        return Ok(());
    }
    stmt::query(
        "INSERT INTO records (scope_id, id, kind, version, space_id, category_id, data, clocks,
                              created_at, updated_at, deleted_at, device_id, server_time, created_by)
         SELECT * FROM UNNEST($1::int8[], $2::uuid[], $3::text[], $4::int8[], $5::uuid[], $6::uuid[],
                              $7::text[], $8::text[], $9::int8[], $10::int8[], $11::int8[],
                              $12::text[], $13::int8[], $14::uuid[])
         ON CONFLICT (scope_id, id) DO UPDATE SET
            kind = excluded.kind, version = excluded.version, space_id = excluded.space_id,
            category_id = excluded.category_id, data = excluded.data, clocks = excluded.clocks,
            created_at = excluded.created_at, updated_at = excluded.updated_at,
            deleted_at = excluded.deleted_at, device_id = excluded.device_id,
            server_time = excluded.server_time",
    )
    .bind(recs.iter().map(|r| r.scope.get()).collect::<Vec<_>>())
    .bind(recs.iter().map(|r| r.id.as_uuid()).collect::<Vec<_>>())
    .bind(recs.iter().map(|r| r.entity.as_str()).collect::<Vec<_>>())
    .bind(recs.iter().map(|r| r.version).collect::<Vec<_>>())
    .bind(
        recs.iter()
            .map(|r| r.space_id.map(|s| s.as_uuid()))
            .collect::<Vec<_>>(),
    )
    .bind(
        recs.iter()
            .map(|r| r.category_id.map(|s| s.as_uuid()))
            .collect::<Vec<_>>(),
    )
    .bind(recs.iter().map(|r| r.data.as_str()).collect::<Vec<_>>())
    .bind(recs.iter().map(|r| r.clocks.as_str()).collect::<Vec<_>>())
    .bind(recs.iter().map(|r| r.created_at).collect::<Vec<_>>())
    .bind(recs.iter().map(|r| r.updated_at).collect::<Vec<_>>())
    .bind(recs.iter().map(|r| r.deleted_at).collect::<Vec<_>>())
    .bind(recs.iter().map(|r| r.device_id.as_str()).collect::<Vec<_>>())
    .bind(recs.iter().map(|r| r.server_time).collect::<Vec<_>>())
    .bind(recs.iter().map(|r| r.created_by.as_uuid()).collect::<Vec<_>>())
    .execute(c)
    .await
    .map_err(db)?;
    Ok(())
}

pub async fn insert_logs(
    c: &mut PgConnection,
    user: UserId,
    logs: &[LogRow],
) -> Result<(), StoreError> {
    if logs.is_empty() {
        return Ok(());
    }
    stmt::query(
        "INSERT INTO sync_log (user_id, operation_id, device_id, entity_type, entity_id,
                               operation, changes, ack, client_time, server_time)
         SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                                  $7::text[], $8::text[], $9::int8[], $10::int8[])",
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
    .execute(c)
    .await
    .map_err(db)?;
    Ok(())
}

/// A page, range by range, each cut by bytes in the query itself so that
/// PostgreSQL never sends more than a page: a row is sent while the bytes
/// before it are within the budget, and the first two rows always (the
/// second tells the engine the page is full when the first alone exceeds
/// the budget). Lengths come from the stored sizes (`octet_length`),
/// without decompressing the text.
pub async fn page(c: &mut PgConnection, q: PageQuery) -> Result<Page, StoreError> {
    let max_bytes = q.max_bytes.min(i64::MAX as usize) as i64;
    let mut b = q.builder();
    let ranges = b.ranges().to_vec();
    for (i, r) in ranges.iter().enumerate() {
        let n = b.begin(i);
        if r.after >= r.upto {
            continue;
        }
        let budget = max_bytes.saturating_sub(b.bytes() as i64);
        let rows = stmt::query(
            "SELECT id, kind, version, data, created_at, updated_at, deleted_at, device_id, created_by
             FROM (
                 SELECT *, sum(len) OVER (ORDER BY version) - len AS before,
                        row_number() OVER (ORDER BY version) AS n
                 FROM (SELECT id, kind, version, data, created_at, updated_at, deleted_at,
                              device_id, created_by,
                              octet_length(data) + octet_length(device_id) + $7 AS len
                       FROM records
                       WHERE scope_id = $1 AND version > $2 AND version <= $3
                         AND (NOT $4 OR deleted_at IS NULL)
                       ORDER BY version LIMIT $5) page
             ) cut
             WHERE n <= 2 OR before <= $6
             ORDER BY version",
        )
        .bind(r.scope.get())
        .bind(r.after)
        .bind(r.upto)
        .bind(r.live_only)
        .bind(n as i64)
        .bind(budget)
        .bind(tidesync_engine::record::RECORD_OVERHEAD as i64)
        .fetch_all(&mut *c)
        .await
        .map_err(db)?;
        for row in &rows {
            let rec = pulled_from(row)?;
            if !b.offer(rec) {
                break;
            }
        }
        if b.done() {
            break;
        }
    }
    Ok(b.finish())
}
