//! Pages: bounded by count and by bytes, exact across pages.

use std::collections::BTreeSet;

use serde_json::json;
use tidesync_protocol::cursor::CursorStart;

use super::mem::MemDb;
use super::*;

fn db_with_items(n: u128, notes_len: usize) -> MemDb {
    let mut db = MemDb::new();
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
        cursor = CursorStart::At(out.cursor);
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
            CursorStart::personal(0),
            vec![change("x", 1, "space", "create", json!({"name": "s"}), 2)],
            5000,
            25_000,
        )
        .unwrap();
    assert!(out.has_more);
    assert_eq!(out.records.len(), 2);
    assert_eq!(out.cursor.personal, 2);
    assert_eq!(out.wrote.values().copied().collect::<Vec<_>>(), vec![11]);
}

#[test]
fn records_a_push_must_send_back_share_the_page_budget_and_the_rest_follow() {
    // Ten items of ~10 kB, all pulled (head 10); then stale updates to each,
    // which lose: each ack is a conflict and its record must be sent back.
    let mut db = db_with_items(10, 10_000);
    let stale = (0..10)
        .map(|i| {
            change(
                &format!("u{i}"),
                100 + i,
                "item",
                "update",
                json!({"notes": "old"}),
                0,
            )
        })
        .collect();
    let budget = 3 * (10_000 + 400);
    // (From a device that has not received them: concurrent writes.)
    let out = db
        .push_with("stale", CursorStart::personal(0), stale, 5000, budget)
        .unwrap();
    assert!(out.acks.iter().all(|a| a.success && a.conflict));
    let bytes: usize = out.records.iter().map(|r| r.size()).sum();
    assert!(bytes <= budget, "{bytes} bytes of records");
    assert!(out.has_more, "the records that did not fit follow");
    let mut got: BTreeSet<_> = out.records.iter().map(|r| r.id).collect();
    // Following pulls bring every conflicted record, each page in budget.
    let mut cursor = CursorStart::At(out.cursor);
    for _ in 0..20 {
        let page = db.pull(cursor, 5000, budget);
        let bytes: usize = page.records.iter().map(|r| r.size()).sum();
        assert!(page.records.len() <= 1 || bytes <= budget);
        got.extend(page.records.iter().map(|r| r.id));
        cursor = CursorStart::At(page.cursor);
        if !page.has_more {
            break;
        }
    }
    assert_eq!(got.len(), 10, "every conflicted record reached the device");
}
