//! The reads of a cascade: each level's live children, and, before a
//! cascade that may be large, its live descendants up to a limit.

use rusqlite::types::Value as Sql;
use rusqlite::Connection;
use tidesync_engine::{PulledRecord, StoredRecord};
use tidesync_protocol::{RecordId, ScopeId};
use tidesync_store::StoreError;

use crate::error::driver;
use crate::sql::{by_chunks, marks, pulled_from, stored_rows, text, PULLED, STORED};

/// The live children of a cascade level, in one scope. Two queries, one per
/// parent column, so each runs on its own index (`records_by_space`,
/// `records_by_category`); an `OR` of both scanned all of the scope's rows.
pub fn children(
    c: &Connection,
    scope: ScopeId,
    spaces: &[RecordId],
    categories: &[RecordId],
    loaded_spaces: &[RecordId],
) -> Result<Vec<StoredRecord>, StoreError> {
    let mut out = Vec::new();
    let s = [Sql::Integer(scope.get())];
    by_chunks(
        c,
        spaces,
        &s,
        &[],
        |m| {
            format!(
                "SELECT {STORED} FROM records
                 WHERE scope_id = ? AND space_id IN ({m}) AND deleted_at IS NULL"
            )
        },
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
    by_chunks(
        c,
        categories,
        &s,
        &skip,
        |m| {
            format!(
                "SELECT {STORED} FROM records
                 WHERE scope_id = ? AND category_id IN ({m}) AND deleted_at IS NULL {skip_clause}"
            )
        },
        &mut out,
    )?;
    Ok(out)
}

/// Up to `limit` live descendants of `root` in `scope`, leaves first (the
/// engine's `Need::Descendants`): items, then the space's categories. Each
/// part is one statement on `records_by_space` or `records_by_category`,
/// and SQLite stops reading at the limit.
pub fn descendants(
    c: &Connection,
    scope: ScopeId,
    root: RecordId,
    space: bool,
    limit: usize,
) -> Result<Vec<StoredRecord>, StoreError> {
    let mut out = Vec::new();
    let lim = |n: usize| Sql::Integer(i64::try_from(n).unwrap_or(i64::MAX));
    let args = |n: usize| vec![Sql::Integer(scope.get()), text(root.to_string()), lim(n)];
    if !space {
        stored_rows(
            c,
            &format!(
                "SELECT {STORED} FROM records
                 WHERE scope_id = ?1 AND category_id = ?2 AND deleted_at IS NULL LIMIT ?3"
            ),
            args(limit),
            &mut out,
        )?;
        return Ok(out);
    }
    // Items by their space, then those under one of its live categories
    // that name no space or another (the cascade reaches them too).
    stored_rows(
        c,
        &format!(
            "SELECT {STORED} FROM records
             WHERE scope_id = ?1 AND space_id = ?2 AND kind = 'item' AND deleted_at IS NULL
             UNION ALL
             SELECT {STORED} FROM records
             WHERE scope_id = ?1 AND kind = 'item' AND deleted_at IS NULL
               AND (space_id IS NULL OR space_id <> ?2)
               AND category_id IN (SELECT id FROM records
                                   WHERE scope_id = ?1 AND space_id = ?2
                                     AND kind = 'category' AND deleted_at IS NULL)
             LIMIT ?3"
        ),
        args(limit),
        &mut out,
    )?;
    if out.len() < limit {
        stored_rows(
            c,
            &format!(
                "SELECT {STORED} FROM records
                 WHERE scope_id = ?1 AND space_id = ?2 AND kind = 'category'
                   AND deleted_at IS NULL LIMIT ?3"
            ),
            args(limit - out.len()),
            &mut out,
        )?;
    }
    Ok(out)
}

/// These records as a pull reads them (the engine's `Need::Sent`).
pub fn sent(
    c: &Connection,
    ids: &[RecordId],
    scopes: &[ScopeId],
) -> Result<Vec<(ScopeId, PulledRecord)>, StoreError> {
    let mut out = Vec::with_capacity(ids.len());
    let in_scopes = marks(scopes.len());
    for chunk in ids.chunks(crate::sql::CHUNK) {
        let sql = format!(
            "SELECT scope_id, {PULLED} FROM records WHERE scope_id IN ({in_scopes}) AND id IN ({})",
            marks(chunk.len())
        );
        let mut args = crate::sql::scope_list(scopes);
        args.extend(chunk.iter().map(|id| text(id.to_string())));
        let mut st = c.prepare_cached(&sql).map_err(driver)?;
        let mut rows = st.query(rusqlite::params_from_iter(args)).map_err(driver)?;
        while let Some(row) = rows.next().map_err(driver)? {
            let scope = ScopeId::new(row.get(0).map_err(driver)?);
            out.push((scope, pulled_from(row, 1)?));
        }
    }
    Ok(out)
}
