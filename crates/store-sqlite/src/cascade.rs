//! The reads of a cascade: each level's live children, and, before a
//! cascade that may be large, its live descendants up to a limit. Every
//! record read here is deleted, so none is read with its content (a
//! tombstone keeps only its references): `LIGHT` columns only.

use rusqlite::types::Value as Sql;
use rusqlite::Connection;
use tidesync_engine::StoredRecord;
use tidesync_protocol::{RecordId, ScopeId};
use tidesync_store::StoreError;

use crate::sql::{by_chunks, light_rows, marks, text, LIGHT};

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
        (&s, &[]),
        |m| {
            format!(
                "SELECT {LIGHT} FROM records
                 WHERE scope_id = ? AND space_id IN ({m}) AND deleted_at IS NULL"
            )
        },
        light_rows,
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
        (&s, &skip),
        |m| {
            format!(
                "SELECT {LIGHT} FROM records
                 WHERE scope_id = ? AND category_id IN ({m}) AND deleted_at IS NULL {skip_clause}"
            )
        },
        light_rows,
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
        light_rows(
            c,
            &format!(
                "SELECT {LIGHT} FROM records
                 WHERE scope_id = ?1 AND category_id = ?2 AND deleted_at IS NULL LIMIT ?3"
            ),
            args(limit),
            &mut out,
        )?;
        return Ok(out);
    }
    // Items by their space, then those under one of its live categories
    // that name no space or another (the cascade reaches them too).
    light_rows(
        c,
        &format!(
            "SELECT {LIGHT} FROM records
             WHERE scope_id = ?1 AND space_id = ?2 AND kind = 'item' AND deleted_at IS NULL
             UNION ALL
             SELECT {LIGHT} FROM records
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
        light_rows(
            c,
            &format!(
                "SELECT {LIGHT} FROM records
                 WHERE scope_id = ?1 AND space_id = ?2 AND kind = 'category'
                   AND deleted_at IS NULL LIMIT ?3"
            ),
            args(limit - out.len()),
            &mut out,
        )?;
    }
    Ok(out)
}
