//! The reads of a cascade: each level's live children, and, before a
//! cascade that may be large, its live descendants up to a limit. Every
//! record read here is deleted, so none is read with its content (a
//! tombstone keeps only its references): `LIGHT` columns only.

use rusqlite::types::Value as Sql;
use rusqlite::Connection;
use tidesync_engine::StoredRecord;
use tidesync_protocol::entity::{EntityType, Model};
use tidesync_protocol::{RecordId, ScopeId};
use tidesync_store::StoreError;

use crate::sql::{by_chunks, light_rows, marks, text, LIGHT};

/// The live children of a cascade level, in one scope: the records of the
/// sharing roots `roots` (by `root_id`) and the children of `parents` (by
/// `parent_id`). Two queries, one per column, so each runs on its own
/// index (`records_by_root`, `records_by_parent`); an `OR` of both scanned
/// all of the scope's rows.
pub fn children(
    c: &Connection,
    model: Model,
    scope: ScopeId,
    (roots, parents): (&[RecordId], &[RecordId]),
    loaded_roots: &[RecordId],
) -> Result<Vec<StoredRecord>, StoreError> {
    let mut out = Vec::new();
    let s = [Sql::Integer(scope.get())];
    by_chunks(
        c,
        model,
        roots,
        (&s, &[]),
        |m| {
            format!(
                "SELECT {LIGHT} FROM records
                 WHERE scope_id = ? AND root_id IN ({m}) AND deleted_at IS NULL"
            )
        },
        light_rows,
        &mut out,
    )?;
    // Records already loaded through their root are not read again. The
    // list is short (the roots of this cascade), so it is bound whole.
    let skip: Vec<Sql> = loaded_roots.iter().map(|s| text(s.to_string())).collect();
    // (`NOT IN (NULL)` would be unknown for every row: no list, no condition.)
    let skip_clause = if skip.is_empty() {
        String::new()
    } else {
        format!(
            "AND (root_id IS NULL OR root_id NOT IN ({}))",
            marks(skip.len())
        )
    };
    by_chunks(
        c,
        model,
        parents,
        (&s, &skip),
        |m| {
            format!(
                "SELECT {LIGHT} FROM records
                 WHERE scope_id = ? AND parent_id IN ({m}) AND deleted_at IS NULL {skip_clause}"
            )
        },
        light_rows,
        &mut out,
    )?;
    Ok(out)
}

/// Up to `limit` live descendants of `root` in `scope`, leaves first (the
/// engine's `Need::Descendants`): collection by collection in the order of
/// `kinds` (items, then categories), those whose `root_id` is `root`, then
/// those (naming another root or none) whose `parent_id` is `root` or one
/// of its live descendants of an `inner` collection. Each part runs on
/// `records_by_root` or `records_by_parent`, and SQLite stops reading at
/// the limit.
pub fn descendants(
    c: &Connection,
    model: Model,
    scope: ScopeId,
    root: RecordId,
    (kinds, inner): (&[EntityType], &[EntityType]),
    limit: usize,
) -> Result<Vec<StoredRecord>, StoreError> {
    let mut out = Vec::new();
    let lim = |n: usize| Sql::Integer(i64::try_from(n).unwrap_or(i64::MAX));
    // The records children hang under: the root, and its live descendants
    // of the collections that have children (a space's categories).
    let inner_kinds: Vec<String> = (0..inner.len().max(1))
        .map(|i| format!("?{}", i + 5))
        .collect();
    let inner_kinds = inner_kinds.join(", ");
    // Down the `parent_id` chains only when a parent's parent can be
    // other than a root (not in the bucket list, nor the notes example):
    // each step of a large cascade asks again.
    let deep = inner
        .iter()
        .any(|k| k.parents().any(|r| !r.target.is_shareable()));
    let deeper = if deep {
        format!(
            "UNION
             SELECT r.id FROM up JOIN records r ON r.scope_id = ?1 AND r.parent_id = up.id
             WHERE r.deleted_at IS NULL AND r.kind IN ({inner_kinds})"
        )
    } else {
        String::new()
    };
    let sql = format!(
        // One index per term (an OR of both columns scanned the scope).
        "WITH RECURSIVE up(id) AS (
             SELECT ?2
             UNION
             SELECT id FROM records
             WHERE scope_id = ?1 AND root_id = ?2 AND deleted_at IS NULL
               AND kind IN ({inner_kinds})
             {deeper}
         )
         SELECT {LIGHT} FROM records
         WHERE scope_id = ?1 AND root_id = ?2 AND kind = ?3 AND deleted_at IS NULL
         UNION ALL
         SELECT {LIGHT} FROM records
         WHERE scope_id = ?1 AND kind = ?3 AND deleted_at IS NULL
           AND (root_id IS NULL OR root_id <> ?2)
           AND parent_id IN (SELECT id FROM up)
         LIMIT ?4"
    );
    for kind in kinds {
        if out.len() >= limit {
            break;
        }
        let mut args = vec![
            Sql::Integer(scope.get()),
            text(root.to_string()),
            text(kind.as_str()),
            lim(limit - out.len()),
        ];
        args.extend(inner.iter().map(|k| text(k.as_str())));
        if inner.is_empty() {
            args.push(Sql::Null);
        }
        light_rows(c, model, &sql, args, &mut out)?;
    }
    Ok(out)
}
