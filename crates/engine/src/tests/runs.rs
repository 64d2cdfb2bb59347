//! A push beyond its load budget (`PushLimits::run_bytes`) commits in
//! several transactions: the same acks and the same end state as in one,
//! with every transaction's loads bounded.

use std::collections::BTreeMap;

use serde_json::json;
use tidesync_protocol::cursor::CursorStart;
use tidesync_protocol::sync::ChangeInput;
use tidesync_protocol::RecordId;

use super::mem::MemDb;
use super::*;
use crate::{PulledRecord, PushLimits, SyncOutput};

const ITEMS: u128 = 20;
const NOTES: usize = 1_000;

/// A space and 20 items of ~1 kB each, all pulled (head 21).
fn seeded(run_bytes: Option<usize>) -> MemDb {
    let mut db = MemDb::new();
    let s = id(1).to_string();
    let mut changes = vec![change("s", 1, "space", "create", json!({"name": "S"}), 0)];
    for i in 0..ITEMS {
        changes.push(change(
            &format!("c{i}"),
            100 + i,
            "item",
            "create",
            json!({"title": "t", "notes": "n".repeat(NOTES), "spaceId": s}),
            1,
        ));
    }
    let out = db.push("seed", CursorStart::Scratch, changes);
    assert!(out.acks.iter().all(|a| a.success));
    db.limits = PushLimits {
        run_bytes,
        ..PushLimits::default()
    };
    db
}

/// Updates of every item (some stale: they lose), a create, and the delete
/// of one item, by device `dev-b`.
fn batch() -> Vec<ChangeInput> {
    let mut v: Vec<ChangeInput> = (0..ITEMS)
        .map(|i| {
            let secs = if i % 3 == 0 { 0 } else { 5 };
            change_by(
                &format!("u{i}"),
                100 + i,
                "item",
                "update",
                json!({"notes": format!("edit {i}")}),
                secs,
                "dev-b",
            )
        })
        .collect();
    v.push(change_by(
        "new",
        500,
        "item",
        "create",
        json!({"title": "new", "spaceId": id(1).to_string()}),
        6,
        "dev-b",
    ));
    v.push(change_by(
        "del",
        105,
        "item",
        "delete",
        json!(null),
        7,
        "dev-b",
    ));
    v
}

/// The answer and every page after it, by id (later pages replacing).
fn received(db: &MemDb, out: &SyncOutput) -> BTreeMap<RecordId, PulledRecord> {
    let mut got: BTreeMap<RecordId, PulledRecord> =
        out.records.iter().map(|r| (r.id, r.clone())).collect();
    let (mut cursor, mut more) = (CursorStart::At(out.cursor.clone()), out.has_more);
    while more {
        let page = db.pull(cursor, 1000, usize::MAX);
        got.extend(page.records.iter().map(|r| (r.id, r.clone())));
        cursor = CursorStart::At(page.cursor);
        more = page.has_more;
    }
    got
}

fn contents(db: &MemDb) -> BTreeMap<RecordId, (String, Option<i64>)> {
    db.rows
        .values()
        .map(|r| (r.id, (r.data.clone(), r.deleted_at)))
        .collect()
}

#[test]
fn a_push_beyond_its_load_budget_commits_in_runs_with_the_same_result() {
    // From a device that has not received the items (concurrent writes:
    // the stale ones lose), and from scratch.
    for cursor in [version_cursor(0), CursorStart::Scratch] {
        let mut whole = seeded(None);
        let one = whole.push("dev-b", cursor.clone(), batch());
        assert_eq!(whole.run_loads.len(), 1);

        let budget = 3 * NOTES;
        let mut db = seeded(Some(budget));
        let runs = db.push("dev-b", cursor.clone(), batch());
        assert!(db.steps >= 5, "{} transactions", db.steps + 1);
        // Each transaction loads at most its budget and one record more.
        for loaded in &db.run_loads {
            assert!(*loaded <= budget + NOTES + 200, "{:?}", db.run_loads);
        }
        assert_eq!(runs.acks, one.acks);
        assert!(one.acks.iter().filter(|a| a.conflict).count() >= 6);
        assert_eq!(contents(&db), contents(&whole));
        // The device ends with what the one-transaction answer gave it,
        // whether sent now or owed to the next pulls.
        let want = received(&whole, &one);
        let got = received(&db, &runs);
        for (id, r) in &want {
            assert_eq!(got.get(id).map(|g| &g.data), Some(&r.data), "{id}");
        }
    }
}

#[test]
fn what_another_device_writes_between_runs_is_merged() {
    let mut db = seeded(Some(3 * NOTES));
    db.between_steps = Some(Box::new(|db: &mut MemDb| {
        if !db.has(900) {
            let c = change_by(
                "other",
                900,
                "item",
                "create",
                json!({"title": "between"}),
                6,
                "dev-c",
            );
            let cursor = CursorStart::personal(db.head());
            // (The hook's own push runs without the budget.)
            let limits = std::mem::take(&mut db.limits);
            db.push("dev-c", cursor, vec![c]);
            db.limits = limits;
        }
    }));
    let out = db.push("dev-b", version_cursor(21), batch());
    assert!(db.steps > 0);
    assert!(out.acks.iter().all(|a| a.success));
    assert!(db.has(900));
    // The other device's record reaches this device too.
    assert!(received(&db, &out).contains_key(&id(900)));
}
