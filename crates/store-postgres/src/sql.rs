//! The sync statements of the PostgreSQL backend, once (accounts: `accounts.rs`).

use sqlx::postgres::{PgConnection, PgRow};
use sqlx::Row;
use tidesync_engine::{LogRow, Page, PageQuery, PulledRecord, RecordWrite, StoredRecord};
use tidesync_protocol::entity::EntityType;
use tidesync_protocol::merge;
use tidesync_protocol::time::Millis;
use tidesync_protocol::uuid::Uuid;
use tidesync_protocol::{RecordId, UserId};
use tidesync_store::StoreError;

use crate::error::db;

fn entity(s: &str) -> Result<EntityType, StoreError> {
    EntityType::parse(s).ok_or_else(|| StoreError::Corrupt(format!("record kind {s:?}")))
}

fn uuids(ids: &[RecordId]) -> Vec<Uuid> {
    ids.iter().map(RecordId::as_uuid).collect()
}

pub async fn head(c: &mut PgConnection, user: UserId) -> Result<Option<i64>, StoreError> {
    sqlx::query_scalar("SELECT sync_version FROM users WHERE id = $1")
        .bind(user.as_uuid())
        .fetch_optional(c)
        .await
        .map_err(db)
}

/// The user's row lock: serialises this user's writers (and only them), so
/// versions are handed out in commit order.
pub async fn lock_user(c: &mut PgConnection, user: UserId) -> Result<Option<i64>, StoreError> {
    sqlx::query_scalar("SELECT sync_version FROM users WHERE id = $1 FOR UPDATE")
        .bind(user.as_uuid())
        .fetch_optional(c)
        .await
        .map_err(db)
}

pub async fn set_head(c: &mut PgConnection, user: UserId, version: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET sync_version = $2 WHERE id = $1")
        .bind(user.as_uuid())
        .bind(version)
        .execute(c)
        .await
        .map_err(db)?;
    Ok(())
}

pub async fn first_version_since(
    c: &mut PgConnection,
    user: UserId,
    since: Millis,
) -> Result<Option<i64>, StoreError> {
    sqlx::query_scalar("SELECT MIN(version) FROM records WHERE user_id = $1 AND server_time >= $2")
        .bind(user.as_uuid())
        .bind(since)
        .fetch_one(c)
        .await
        .map_err(db)
}

pub async fn load_acks(
    c: &mut PgConnection,
    user: UserId,
    ops: &[String],
) -> Result<Vec<(String, String)>, StoreError> {
    if ops.is_empty() {
        return Ok(vec![]);
    }
    sqlx::query_as(
        "SELECT operation_id, ack FROM sync_log WHERE user_id = $1 AND operation_id = ANY($2)",
    )
    .bind(user.as_uuid())
    .bind(ops)
    .fetch_all(c)
    .await
    .map_err(db)
}

fn stored_from(row: &PgRow) -> Result<StoredRecord, StoreError> {
    let state = merge::decode_state(
        row.try_get("data").map_err(db)?,
        row.try_get("clocks").map_err(db)?,
    )
    .map_err(StoreError::Corrupt)?;
    Ok(StoredRecord {
        id: RecordId::from_uuid(row.try_get("id").map_err(db)?),
        entity: entity(row.try_get("kind").map_err(db)?)?,
        version: row.try_get("version").map_err(db)?,
        state,
    })
}

pub async fn load_records(
    c: &mut PgConnection,
    user: UserId,
    ids: &[RecordId],
) -> Result<Vec<StoredRecord>, StoreError> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    sqlx::query(
        "SELECT id, kind, version, data, clocks FROM records WHERE user_id = $1 AND id = ANY($2)",
    )
    .bind(user.as_uuid())
    .bind(uuids(ids))
    .fetch_all(c)
    .await
    .map_err(db)?
    .iter()
    .map(stored_from)
    .collect()
}

/// The live children of a cascade level: one query per parent column, so
/// each runs on its own index; items reached through an already loaded
/// space are not read again.
pub async fn children(
    c: &mut PgConnection,
    user: UserId,
    spaces: &[RecordId],
    categories: &[RecordId],
    loaded_spaces: &[RecordId],
) -> Result<Vec<StoredRecord>, StoreError> {
    let mut out = Vec::new();
    if !spaces.is_empty() {
        let rows = sqlx::query(
            "SELECT id, kind, version, data, clocks FROM records
             WHERE user_id = $1 AND space_id = ANY($2) AND deleted_at IS NULL",
        )
        .bind(user.as_uuid())
        .bind(uuids(spaces))
        .fetch_all(&mut *c)
        .await
        .map_err(db)?;
        for r in &rows {
            out.push(stored_from(r)?);
        }
    }
    if !categories.is_empty() {
        let rows = sqlx::query(
            "SELECT id, kind, version, data, clocks FROM records
             WHERE user_id = $1 AND category_id = ANY($2) AND deleted_at IS NULL
               AND (space_id IS NULL OR NOT (space_id = ANY($3)))",
        )
        .bind(user.as_uuid())
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
pub async fn save_records(
    c: &mut PgConnection,
    user: UserId,
    recs: &[RecordWrite],
) -> Result<(), StoreError> {
    if recs.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO records (user_id, id, kind, version, space_id, category_id, data, clocks,
                              created_at, updated_at, deleted_at, device_id, server_time)
         SELECT $1, * FROM UNNEST($2::uuid[], $3::text[], $4::int8[], $5::uuid[], $6::uuid[],
                                  $7::text[], $8::text[], $9::int8[], $10::int8[], $11::int8[],
                                  $12::text[], $13::int8[])
         ON CONFLICT (user_id, id) DO UPDATE SET
            kind = excluded.kind, version = excluded.version, space_id = excluded.space_id,
            category_id = excluded.category_id, data = excluded.data, clocks = excluded.clocks,
            created_at = excluded.created_at, updated_at = excluded.updated_at,
            deleted_at = excluded.deleted_at, device_id = excluded.device_id,
            server_time = excluded.server_time",
    )
    .bind(user.as_uuid())
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
    .bind(
        recs.iter()
            .map(|r| r.device_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(recs.iter().map(|r| r.server_time).collect::<Vec<_>>())
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
    sqlx::query(
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

/// A page, cut by bytes in the query itself so that PostgreSQL never sends
/// more than a page: a row is sent while the bytes before it are within the
/// budget, and the first two rows always (the second tells the engine the
/// page is full when the first alone exceeds the budget). Lengths come from
/// the stored sizes (`octet_length`), without decompressing the text.
pub async fn page(c: &mut PgConnection, user: UserId, q: PageQuery) -> Result<Page, StoreError> {
    let rows = sqlx::query(
        "SELECT id, kind, version, data, created_at, updated_at, deleted_at, device_id FROM (
             SELECT *, sum(len) OVER (ORDER BY version) - len AS before,
                    row_number() OVER (ORDER BY version) AS n
             FROM (SELECT id, kind, version, data, created_at, updated_at, deleted_at, device_id,
                          octet_length(data) + octet_length(device_id) + $7 AS len
                   FROM records
                   WHERE user_id = $1 AND version > $2 AND version <= $3
                     AND (NOT $4 OR deleted_at IS NULL)
                   ORDER BY version LIMIT $5) page
         ) cut
         WHERE n <= 2 OR before <= $6
         ORDER BY version",
    )
    .bind(user.as_uuid())
    .bind(q.after)
    .bind(q.upto)
    .bind(q.live_only)
    .bind(q.rows() as i64)
    .bind(q.max_bytes.min(i64::MAX as usize) as i64)
    .bind(tidesync_engine::record::RECORD_OVERHEAD as i64)
    .fetch_all(c)
    .await
    .map_err(db)?;
    let mut b = q.builder();
    for r in &rows {
        let rec = PulledRecord {
            id: RecordId::from_uuid(r.try_get("id").map_err(db)?),
            entity: entity(r.try_get("kind").map_err(db)?)?,
            version: r.try_get("version").map_err(db)?,
            data: r.try_get("data").map_err(db)?,
            created_at: r.try_get("created_at").map_err(db)?,
            updated_at: r.try_get("updated_at").map_err(db)?,
            deleted_at: r.try_get("deleted_at").map_err(db)?,
            device_id: r.try_get("device_id").map_err(db)?,
        };
        if !b.offer(rec) {
            break;
        }
    }
    Ok(b.finish())
}
