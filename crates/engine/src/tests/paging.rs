//! Pages: bounded by count and by bytes, exact across pages.

use std::collections::BTreeSet;

use serde_json::json;
use tidesync_protocol::cursor::CursorStart;

use super::mem::MemDb;
use super::*;

fn db_with_items(n: u128, notes_len: usize) -> MemDb {
    let mut db = MemDb::default();
    let notes = "n".repeat(notes_len);
    let changes = (0..n)
        .map(|i| {
            change(
                &format!("c{i}"),
                100 + i,
                "item",
                "create",
                json!({"title": "t", "notes": notes}),
                1,
            )
        })
        .collect();
    db.push("writer", CursorStart::Scratch, changes);
    db
}

/// Pulls page after page; returns the ids in order and the page sizes.
fn pull_all(
    db: &MemDb,
    limit: usize,
    max_bytes: usize,
) -> (Vec<tidesync_protocol::RecordId>, Vec<usize>) {
    let (mut cursor, mut got, mut sizes) = (CursorStart::Scratch, vec![], vec![]);
    for _ in 0..1000 {
        let out = db.pull(cursor, limit, max_bytes);
        sizes.push(out.records.len());
        got.extend(out.records.iter().map(|r| r.id));
        cursor = CursorStart::Version(out.cursor);
        if !out.has_more {
            return (got, sizes);
        }
    }
    panic!("no end of pages");
}

#[test]
fn pages_by_count_cover_everything_once() {
    let db = db_with_items(25, 10);
    let (got, sizes) = pull_all(&db, 10, usize::MAX);
    assert_eq!(sizes, vec![10, 10, 5]);
    assert_eq!(got.len(), 25);
    assert_eq!(got.iter().collect::<BTreeSet<_>>().len(), 25);
}

#[test]
fn pages_by_bytes_cover_everything_once() {
    // Records of ~10 kB each, pages of at most ~35 kB: three per page.
    let db = db_with_items(10, 10_000);
    let budget = 3 * (10_000 + 400);
    let (got, sizes) = pull_all(&db, 5000, budget);
    assert!(sizes.iter().all(|n| *n <= 3 && *n >= 1), "{sizes:?}");
    assert_eq!(got.len(), 10);
    assert_eq!(got.iter().collect::<BTreeSet<_>>().len(), 10);
    // A budget smaller than one record still makes progress.
    let (got, sizes) = pull_all(&db, 5000, 1);
    assert_eq!(sizes, vec![1; 10]);
    assert_eq!(got.len(), 10);
}

#[test]
fn a_push_page_is_bounded_by_bytes_too() {
    let mut db = db_with_items(10, 10_000);
    let out = db
        .push_with(
            "reader",
            CursorStart::Version(0),
            vec![change("x", 1, "space", "create", json!({"name": "s"}), 2)],
            5000,
            25_000,
        )
        .unwrap();
    assert!(out.has_more);
    assert_eq!(out.records.len(), 2);
    assert_eq!(out.cursor, 2);
    assert_eq!(out.head, 11);
}
