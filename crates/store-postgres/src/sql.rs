//! The sync statements of the PostgreSQL backend, once (accounts:
//! `accounts.rs`, members: `members.rs`).

use sqlx::postgres::{PgConnection, PgRow};
use sqlx::Row;
use tidesync_engine::page::FirstSince;
use tidesync_engine::{Page, PageQuery, PulledRecord, ScopeView, StoredRecord, View};
use tidesync_protocol::entity::{EntityType, Model};
use tidesync_protocol::merge;
use tidesync_protocol::time::Millis;
use tidesync_protocol::uuid::Uuid;
use tidesync_protocol::{RecordId, Role, ScopeId, UserId};
use tidesync_store::StoreError;

use crate::error::db;
use crate::stmt;

/// A stored `kind`: a collection of the store's model.
pub(crate) fn entity(model: Model, s: &str) -> Result<EntityType, StoreError> {
    model
        .collection(s)
        .ok_or_else(|| StoreError::Corrupt(format!("record kind {s:?}")))
}

pub(crate) use tidesync_store::roots_sql;

pub fn role(s: &str) -> Result<Role, StoreError> {
    Role::parse(s).ok_or_else(|| StoreError::Corrupt(format!("role {s:?}")))
}

pub(crate) fn uuids(ids: &[RecordId]) -> Vec<Uuid> {
    ids.iter().map(RecordId::as_uuid).collect()
}

pub(crate) fn scope_ids(scopes: &[ScopeId]) -> Vec<i64> {
    scopes.iter().map(|s| s.get()).collect()
}

/// The columns of a view row (`m`: members, `s`: scopes); `founder`: the
/// user created the shared space (see `ScopeView::founder`).
pub(crate) const VIEW_COLUMNS: &str =
    "s.id, m.role, s.space_id, s.version, s.collected, coalesce(s.founder = m.user_id, false) AS founder";

/// The user's memberships with each scope's counter; `None` when the user
/// (and so their personal scope) no longer exists.
pub async fn view(c: &mut PgConnection, user: UserId) -> Result<Option<View>, StoreError> {
    let rows = stmt::query(sqlx::AssertSqlSafe(format!(
        "SELECT {VIEW_COLUMNS} FROM members m JOIN scopes s ON s.id = m.scope_id
         WHERE m.user_id = $1"
    )))
    .bind(user.as_uuid())
    .fetch_all(c)
    .await
    .map_err(db)?;
    view_from_rows(user, &rows)
}

/// A view from rows with [`VIEW_COLUMNS`]' names.
pub(crate) fn view_from_rows(user: UserId, rows: &[PgRow]) -> Result<Option<View>, StoreError> {
    let (mut scopes, mut personal) = (Vec::new(), None);
    for r in rows {
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
            founder: r.try_get("founder").map_err(db)?,
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
        "SELECT r.id, r.scope_id FROM UNNEST($2::uuid[]) AS k(id), LATERAL (
             SELECT id, scope_id FROM records WHERE scope_id = ANY($1) AND id = k.id OFFSET 0) r",
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

const STORED: &str = "scope_id, id, kind, version, data, clocks, created_by";

/// A pulled record from a row with the page's named columns.
pub(crate) fn pulled_from(row: &PgRow, model: Model) -> Result<PulledRecord, StoreError> {
    Ok(PulledRecord {
        id: RecordId::from_uuid(row.try_get("id").map_err(db)?),
        entity: entity(model, row.try_get("kind").map_err(db)?)?,
        version: row.try_get("version").map_err(db)?,
        data: row.try_get("data").map_err(db)?,
        created_at: row.try_get("created_at").map_err(db)?,
        updated_at: row.try_get("updated_at").map_err(db)?,
        deleted_at: row.try_get("deleted_at").map_err(db)?,
        device_id: row.try_get("device_id").map_err(db)?,
        created_by: UserId::from_uuid(row.try_get("created_by").map_err(db)?),
    })
}

pub(crate) fn stored_from(row: &PgRow, model: Model) -> Result<StoredRecord, StoreError> {
    let data: &str = row.try_get("data").map_err(db)?;
    let state = merge::decode_state(data, row.try_get("clocks").map_err(db)?)
        .map_err(StoreError::Corrupt)?;
    Ok(StoredRecord {
        scope: ScopeId::new(row.try_get("scope_id").map_err(db)?),
        id: RecordId::from_uuid(row.try_get("id").map_err(db)?),
        entity: entity(model, row.try_get("kind").map_err(db)?)?,
        version: row.try_get("version").map_err(db)?,
        state,
        created_by: UserId::from_uuid(row.try_get("created_by").map_err(db)?),
        bytes: data.len(),
    })
}

/// The columns [`light_from`] reads: a record a cascade deletes, without
/// its content (`octet_length` comes from the stored size, without
/// reading the text).
const LIGHT: &str = "scope_id, id, kind, version, root_id, parent_id, clocks, created_by, \
                     octet_length(data) AS bytes";

fn light_from(row: &PgRow, model: Model) -> Result<StoredRecord, StoreError> {
    let reference = |name: &str| -> Result<Option<RecordId>, StoreError> {
        Ok(row
            .try_get::<Option<Uuid>, _>(name)
            .map_err(db)?
            .map(RecordId::from_uuid))
    };
    StoredRecord::light(
        ScopeId::new(row.try_get("scope_id").map_err(db)?),
        RecordId::from_uuid(row.try_get("id").map_err(db)?),
        entity(model, row.try_get("kind").map_err(db)?)?,
        row.try_get("version").map_err(db)?,
        reference("root_id")?,
        reference("parent_id")?,
        row.try_get("clocks").map_err(db)?,
        UserId::from_uuid(row.try_get("created_by").map_err(db)?),
        row.try_get::<i32, _>("bytes").map_err(db)?.max(0) as usize,
    )
    .map_err(StoreError::Corrupt)
}

/// Probed id by id, as the push's reads (`push::batch`, which says why),
/// in the order of `ids` and, with a byte budget, while the records before
/// each are within it. Returns them and how many ids were looked up.
pub async fn load_records(
    c: &mut PgConnection,
    model: Model,
    ids: &[RecordId],
    scopes: &[ScopeId],
    max_bytes: Option<usize>,
) -> Result<(Vec<StoredRecord>, usize), StoreError> {
    if ids.is_empty() {
        return Ok((vec![], 0));
    }
    // As the batch's reads: a few ids are read whole.
    let cut = max_bytes.filter(|_| ids.len() > UNCUT_IDS);
    let query = match cut {
        None => stmt::query(sqlx::AssertSqlSafe(format!(
            "SELECT k.ord, r.* FROM UNNEST($2::uuid[]) WITH ORDINALITY AS k(id, ord), LATERAL (
                 SELECT {STORED} FROM records WHERE scope_id = ANY($1) AND id = k.id OFFSET 0) r"
        ))),
        Some(_) => stmt::query(sqlx::AssertSqlSafe(format!(
            "SELECT * FROM (
                 SELECT k.ord, r.*, coalesce(sum(octet_length(r.data)) OVER (ORDER BY k.ord
                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
                 FROM UNNEST($2::uuid[]) WITH ORDINALITY AS k(id, ord), LATERAL (
                     SELECT {STORED} FROM records WHERE scope_id = ANY($1) AND id = k.id OFFSET 0) r
             ) x WHERE x.before < $3"
        ))),
    }
    .bind(scope_ids(scopes))
    .bind(uuids(ids));
    let query = match cut {
        None => query,
        Some(m) => query.bind(m.min(i64::MAX as usize) as i64),
    };
    let rows = query.fetch_all(c).await.map_err(db)?;
    let (mut out, mut read) = (Vec::with_capacity(rows.len()), Vec::new());
    for r in &rows {
        let rec = stored_from(r, model)?;
        read.push((r.try_get::<i64, _>("ord").map_err(db)?, rec.bytes));
        out.push(rec);
    }
    let looked_up = cut_at(ids.len(), cut, &read);
    Ok((out, looked_up))
}

/// The live children of a cascade level, in one scope: the records of the
/// sharing roots `roots` (by `root_id`) and the children of `parents` (by
/// `parent_id`), one query per column so each runs on its own index;
/// records reached through an already loaded root are not read again.
pub async fn children(
    c: &mut PgConnection,
    model: Model,
    scope: ScopeId,
    (roots, parents): (&[RecordId], &[RecordId]),
    loaded_roots: &[RecordId],
) -> Result<Vec<StoredRecord>, StoreError> {
    let mut out = Vec::new();
    if !roots.is_empty() {
        let rows = stmt::query(sqlx::AssertSqlSafe(format!(
            "SELECT {LIGHT} FROM records
             WHERE scope_id = $1 AND root_id = ANY($2) AND deleted_at IS NULL"
        )))
        .bind(scope.get())
        .bind(uuids(roots))
        .fetch_all(&mut *c)
        .await
        .map_err(db)?;
        for r in &rows {
            out.push(light_from(r, model)?);
        }
    }
    if !parents.is_empty() {
        let rows = stmt::query(sqlx::AssertSqlSafe(format!(
            "SELECT {LIGHT} FROM records
             WHERE scope_id = $1 AND parent_id = ANY($2) AND deleted_at IS NULL
               AND (root_id IS NULL OR NOT (root_id = ANY($3)))"
        )))
        .bind(scope.get())
        .bind(uuids(parents))
        .bind(uuids(loaded_roots))
        .fetch_all(&mut *c)
        .await
        .map_err(db)?;
        for r in &rows {
            out.push(light_from(r, model)?);
        }
    }
    Ok(out)
}

/// A page, range by range, each cut by bytes in the query itself so that
/// PostgreSQL never sends more than a page: a row is sent while the bytes
/// before it are within the budget, and the first two rows always (the
/// second tells the engine the page is full when the first alone exceeds
/// the budget). Lengths come from the stored sizes (`octet_length`),
/// without decompressing the text.
pub async fn page(c: &mut PgConnection, model: Model, q: PageQuery) -> Result<Page, StoreError> {
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
            let rec = pulled_from(row, model)?;
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

/// Ids read whole, whatever the byte budget: so few cannot hold much more
/// than it (records are bounded by the model), and the byte cut's window
/// costs a round trip of the steady state (one id) 15% of its throughput.
pub(crate) const UNCUT_IDS: usize = 16;

/// How many of `asked` ids a budgeted read looked up, from the records it
/// returned with their position (1-based) in `asked`: all, unless the
/// records reached the budget, and then those up to the last one returned
/// (a record after it, if any, was cut; an id after it that names no
/// record is asked again, which costs little).
pub(crate) fn cut_at(asked: usize, max_bytes: Option<usize>, read: &[(i64, usize)]) -> usize {
    let total: usize = read.iter().map(|(_, bytes)| bytes).sum();
    match max_bytes {
        Some(max) if total >= max => read
            .iter()
            .map(|(ord, _)| *ord as usize)
            .max()
            .unwrap_or(asked)
            .clamp(1, asked.max(1)),
        _ => asked,
    }
}
