//! The sync statements of the SQLite backend that read, once (writes:
//! `write.rs`, accounts: `accounts.rs`, members: `members.rs`). Readers and
//! the writer run the same functions on their own connections.

use rusqlite::types::Value as Sql;
use rusqlite::{params, params_from_iter, Connection};
use tidesync_engine::page::FirstSince;
use tidesync_engine::{Page, PageQuery, PulledRecord, ScopeView, StoredRecord, View};
use tidesync_protocol::entity::{EntityType, Model};
use tidesync_protocol::merge;
use tidesync_protocol::time::Millis;
use tidesync_protocol::{RecordId, Role, ScopeId, UserId};
use tidesync_store::StoreError;

use crate::error::driver;

/// Ids per `IN (…)` list: under SQLite's 32,766 variables, and small
/// enough to keep statements cacheable.
pub(crate) const CHUNK: usize = 500;

/// `n` anonymous placeholders. Not `?NNN`: SQLite resolves each numbered
/// name by a linear scan, which made binding a multi-row statement
/// quadratic (a third of push time, measured with perf in issue 5).
pub fn marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

pub fn text(s: impl Into<String>) -> Sql {
    Sql::Text(s.into())
}

fn corrupt(what: &str, v: &str) -> StoreError {
    StoreError::Corrupt(format!("bad {what} {v:?}"))
}

pub fn record_id(s: &str) -> Result<RecordId, StoreError> {
    s.parse().map_err(|_| corrupt("record id", s))
}

pub fn user_id(s: &str) -> Result<UserId, StoreError> {
    s.parse().map_err(|_| corrupt("user id", s))
}

pub(crate) use tidesync_store::roots_sql;

/// A stored `kind`: a collection of the store's model.
pub(crate) fn entity(model: Model, s: &str) -> Result<EntityType, StoreError> {
    model.collection(s).ok_or_else(|| corrupt("record kind", s))
}

pub fn role(s: &str) -> Result<Role, StoreError> {
    Role::parse(s).ok_or_else(|| corrupt("role", s))
}

pub(crate) fn scope_list(scopes: &[ScopeId]) -> Vec<Sql> {
    scopes.iter().map(|s| Sql::Integer(s.get())).collect()
}

/// The user's memberships with each scope's counter; `None` when the user
/// (and so their personal scope) no longer exists.
pub fn view(c: &Connection, user: UserId) -> Result<Option<View>, StoreError> {
    let mut st = c
        .prepare_cached(
            "SELECT s.id, m.role, s.space_id, s.version, s.collected,
                    coalesce(s.founder = m.user_id, 0)
             FROM members m JOIN scopes s ON s.id = m.scope_id WHERE m.user_id = ?",
        )
        .map_err(driver)?;
    let mut rows = st.query([user.to_string()]).map_err(driver)?;
    let (mut scopes, mut personal) = (Vec::new(), None);
    while let Some(r) = rows.next().map_err(driver)? {
        let id = ScopeId::new(r.get(0).map_err(driver)?);
        let role = role(&r.get::<_, String>(1).map_err(driver)?)?;
        let space = r
            .get::<_, Option<String>>(2)
            .map_err(driver)?
            .map(|s| record_id(&s))
            .transpose()?;
        if space.is_none() && role == Role::Owner {
            personal = Some(id);
        }
        scopes.push(ScopeView {
            id,
            role,
            space,
            head: r.get(3).map_err(driver)?,
            collected: r.get(4).map_err(driver)?,
            founder: r.get(5).map_err(driver)?,
        });
    }
    Ok(personal.map(|personal| View {
        user,
        personal,
        scopes,
    }))
}

/// In which of `scopes` each of `ids` lives.
pub fn locate(
    c: &Connection,
    ids: &[RecordId],
    scopes: &[ScopeId],
) -> Result<Vec<(RecordId, ScopeId)>, StoreError> {
    let mut out = Vec::new();
    for chunk in ids.chunks(CHUNK) {
        let sql = format!(
            "SELECT id, scope_id FROM records WHERE scope_id IN ({}) AND id IN ({})",
            marks(scopes.len()),
            marks(chunk.len())
        );
        let args = scope_list(scopes)
            .into_iter()
            .chain(chunk.iter().map(|id| text(id.to_string())));
        let mut st = c.prepare_cached(&sql).map_err(driver)?;
        let mut rows = st.query(params_from_iter(args)).map_err(driver)?;
        while let Some(r) = rows.next().map_err(driver)? {
            out.push((
                record_id(&r.get::<_, String>(0).map_err(driver)?)?,
                ScopeId::new(r.get(1).map_err(driver)?),
            ));
        }
    }
    Ok(out)
}

/// The counters of `scopes` and the user's role in each. On the writer this
/// runs inside SQLite's one write transaction, which is every scope's lock.
pub fn lock(
    c: &Connection,
    user: UserId,
    scopes: &[ScopeId],
) -> Result<Vec<(ScopeId, i64, Role)>, StoreError> {
    let sql = format!(
        "SELECT s.id, s.version, m.role FROM scopes s
         LEFT JOIN members m ON m.scope_id = s.id AND m.user_id = ?
         WHERE s.id IN ({}) ORDER BY s.id",
        marks(scopes.len())
    );
    let args = std::iter::once(text(user.to_string())).chain(scope_list(scopes));
    let mut st = c.prepare_cached(&sql).map_err(driver)?;
    let mut rows = st.query(params_from_iter(args)).map_err(driver)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(driver)? {
        let role = match r.get::<_, Option<String>>(2).map_err(driver)? {
            Some(s) => role(&s)?,
            None => Role::Removed,
        };
        out.push((
            ScopeId::new(r.get(0).map_err(driver)?),
            r.get(1).map_err(driver)?,
            role,
        ));
    }
    Ok(out)
}

/// Per scope, the smallest version written at or after `since` (server time).
pub fn first_since(
    c: &Connection,
    scopes: &[ScopeId],
    since: Millis,
) -> Result<FirstSince, StoreError> {
    let sql = format!(
        "SELECT scope_id, MIN(version) FROM records
         WHERE scope_id IN ({}) AND server_time >= ? GROUP BY scope_id",
        marks(scopes.len())
    );
    let args = scope_list(scopes).into_iter().chain([Sql::Integer(since)]);
    let mut st = c.prepare_cached(&sql).map_err(driver)?;
    let mut rows = st.query(params_from_iter(args)).map_err(driver)?;
    let mut out = FirstSince::new();
    while let Some(r) = rows.next().map_err(driver)? {
        out.insert(
            ScopeId::new(r.get(0).map_err(driver)?),
            r.get(1).map_err(driver)?,
        );
    }
    Ok(out)
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

/// The columns [`pulled_from`] reads (a macro, so that the page's
/// statement stays one constant string).
macro_rules! pulled_columns {
    () => {
        "id, kind, version, data, created_at, updated_at, deleted_at, device_id, created_by"
    };
}
pub(crate) const PULLED: &str = pulled_columns!();

pub(crate) const STORED: &str = "scope_id, id, kind, version, data, clocks, created_by";

/// The columns [`light_rows`] reads: a record without its content, and the
/// size of that content (`octet_length` reads it from the row's header,
/// without the overflow pages that hold a large record's text).
pub(crate) const LIGHT: &str =
    "scope_id, id, kind, version, root_id, parent_id, clocks, created_by, octet_length(data)";

pub(crate) fn stored_rows(
    c: &Connection,
    model: Model,
    sql: &str,
    args: Vec<Sql>,
    out: &mut Vec<StoredRecord>,
) -> Result<(), StoreError> {
    let mut st = c.prepare_cached(sql).map_err(driver)?;
    let mut rows = st.query(params_from_iter(args)).map_err(driver)?;
    while let Some(r) = rows.next().map_err(driver)? {
        let id: String = r.get(1).map_err(driver)?;
        let kind: String = r.get(2).map_err(driver)?;
        let data: String = r.get(4).map_err(driver)?;
        let clocks: String = r.get(5).map_err(driver)?;
        let by: String = r.get(6).map_err(driver)?;
        out.push(StoredRecord {
            scope: ScopeId::new(r.get(0).map_err(driver)?),
            id: record_id(&id)?,
            entity: entity(model, &kind)?,
            version: r.get(3).map_err(driver)?,
            state: merge::decode_state(&data, &clocks).map_err(StoreError::Corrupt)?,
            created_by: user_id(&by)?,
            bytes: data.len(),
        });
    }
    Ok(())
}

/// Records a cascade deletes, from rows with the [`LIGHT`] columns.
pub(crate) fn light_rows(
    c: &Connection,
    model: Model,
    sql: &str,
    args: Vec<Sql>,
    out: &mut Vec<StoredRecord>,
) -> Result<(), StoreError> {
    let mut st = c.prepare_cached(sql).map_err(driver)?;
    let mut rows = st.query(params_from_iter(args)).map_err(driver)?;
    while let Some(r) = rows.next().map_err(driver)? {
        let reference = |i: usize| -> Result<Option<RecordId>, StoreError> {
            r.get::<_, Option<String>>(i)
                .map_err(driver)?
                .map(|s| record_id(&s))
                .transpose()
        };
        let rec = StoredRecord::light(
            ScopeId::new(r.get(0).map_err(driver)?),
            record_id(&r.get::<_, String>(1).map_err(driver)?)?,
            entity(model, &r.get::<_, String>(2).map_err(driver)?)?,
            r.get(3).map_err(driver)?,
            reference(4)?,
            reference(5)?,
            &r.get::<_, String>(6).map_err(driver)?,
            user_id(&r.get::<_, String>(7).map_err(driver)?)?,
            r.get::<_, i64>(8).map_err(driver)?.max(0) as usize,
        )
        .map_err(StoreError::Corrupt)?;
        out.push(rec);
    }
    Ok(())
}

/// How rows become records: [`stored_rows`] or [`light_rows`].
pub(crate) type ReadRows =
    fn(&Connection, Model, &str, Vec<Sql>, &mut Vec<StoredRecord>) -> Result<(), StoreError>;

/// Runs `sql` (with `{m}` the marks of one chunk of `ids`) chunk by chunk,
/// binding `before`, the chunk, then `after`, and reads rows with `read`.
pub(crate) fn by_chunks(
    c: &Connection,
    model: Model,
    ids: &[RecordId],
    (before, after): (&[Sql], &[Sql]),
    sql: impl Fn(&str) -> String,
    read: ReadRows,
    out: &mut Vec<StoredRecord>,
) -> Result<(), StoreError> {
    for chunk in ids.chunks(CHUNK) {
        let mut args = before.to_vec();
        args.extend(chunk.iter().map(|id| text(id.to_string())));
        args.extend(after.iter().cloned());
        read(c, model, &sql(&marks(chunk.len())), args, out)?;
    }
    Ok(())
}

/// Ids per statement when a load has a byte budget: a load stops after
/// the chunk that reaches it, so it holds at most its budget and this many
/// records more.
const BUDGETED_CHUNK: usize = 16;

/// The records with these ids in these scopes, looked up in the order of
/// `ids`; with `max_bytes`, stops after the chunk whose records reach it
/// (the engine's `Need::Records`). Returns them and how many ids were
/// looked up.
pub fn load_records(
    c: &Connection,
    model: Model,
    ids: &[RecordId],
    scopes: &[ScopeId],
    max_bytes: Option<usize>,
) -> Result<(Vec<StoredRecord>, usize), StoreError> {
    let mut out = Vec::new();
    let in_scopes = marks(scopes.len());
    let sql = |m: &str| {
        format!("SELECT {STORED} FROM records WHERE scope_id IN ({in_scopes}) AND id IN ({m})")
    };
    let Some(max) = max_bytes else {
        let args = (&scope_list(scopes)[..], &[][..]);
        by_chunks(c, model, ids, args, sql, stored_rows, &mut out)?;
        return Ok((out, ids.len()));
    };
    let (mut bytes, mut looked_up) = (0, 0);
    for chunk in ids.chunks(BUDGETED_CHUNK) {
        if looked_up > 0 && bytes >= max {
            break;
        }
        let first = out.len();
        let args = (&scope_list(scopes)[..], &[][..]);
        by_chunks(c, model, chunk, args, sql, stored_rows, &mut out)?;
        bytes += out[first..].iter().map(|r| r.bytes).sum::<usize>();
        looked_up += chunk.len();
    }
    Ok((out, looked_up))
}

/// A pulled record from the columns `id, kind, version, data, created_at,
/// updated_at, deleted_at, device_id, created_by`, starting at `first`.
pub(crate) fn pulled_from(
    row: &rusqlite::Row,
    first: usize,
    model: Model,
) -> Result<PulledRecord, StoreError> {
    let col = |i: usize| first + i;
    let id: String = row.get(col(0)).map_err(driver)?;
    let kind: String = row.get(col(1)).map_err(driver)?;
    let by: String = row.get(col(8)).map_err(driver)?;
    Ok(PulledRecord {
        id: record_id(&id)?,
        entity: entity(model, &kind)?,
        version: row.get(col(2)).map_err(driver)?,
        data: row.get(col(3)).map_err(driver)?,
        created_at: row.get(col(4)).map_err(driver)?,
        updated_at: row.get(col(5)).map_err(driver)?,
        deleted_at: row.get(col(6)).map_err(driver)?,
        device_id: row.get(col(7)).map_err(driver)?,
        created_by: user_id(&by)?,
    })
}

/// Reads a page range by range, row by row, stopping as soon as it is full:
/// a page of huge records never has more than one of them in memory beyond
/// the page.
pub fn page(c: &Connection, model: Model, q: PageQuery) -> Result<Page, StoreError> {
    let mut st = c
        .prepare_cached(
            concat!(
                "SELECT ",
                pulled_columns!(),
                " FROM records
                 WHERE scope_id = ? AND version > ? AND version <= ? AND (? = 0 OR deleted_at IS NULL)
                 ORDER BY version LIMIT ?"
            ),
        )
        .map_err(driver)?;
    let mut b = q.builder();
    let ranges = b.ranges().to_vec();
    for (i, r) in ranges.iter().enumerate() {
        let n = b.begin(i);
        if r.after >= r.upto {
            continue;
        }
        let mut rows = st
            .query(params![
                r.scope.get(),
                r.after,
                r.upto,
                r.live_only as i64,
                n as i64
            ])
            .map_err(driver)?;
        while let Some(row) = rows.next().map_err(driver)? {
            let rec = pulled_from(row, 0, model)?;
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
