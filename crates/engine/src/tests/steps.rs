//! Large cascades in steps (`PushLimits::cascade_step`): each step commits
//! part of the children alone, and the end state is the atomic cascade's.

use std::collections::BTreeMap;

use serde_json::json;
use tidesync_protocol::cursor::CursorStart;
use tidesync_protocol::sync::ChangeInput;
use tidesync_protocol::RecordId;

use super::mem::MemDb;
use super::*;
use crate::{Need, RecordWrite, StepSize};

const SCRATCH: CursorStart = CursorStart::Scratch;
const SPACE: u128 = 1;

/// A space with 4 categories of 3 items each; odd items name only their
/// category (the cascade reaches them through it). 17 records.
fn tree() -> Vec<ChangeInput> {
    let s = id(SPACE).to_string();
    let mut changes = vec![change(
        "s",
        SPACE,
        "space",
        "create",
        json!({"name": "Big"}),
        0,
    )];
    for c in 0..4u128 {
        let cat = 100 + c;
        changes.push(change(
            &format!("c{c}"),
            cat,
            "category",
            "create",
            json!({"name": "C", "spaceId": s}),
            1,
        ));
        for i in 0..3u128 {
            let data = if i % 2 == 0 {
                json!({"title": "I", "categoryId": id(cat).to_string(), "spaceId": s})
            } else {
                json!({"title": "I", "categoryId": id(cat).to_string()})
            };
            changes.push(change(
                &format!("i{c}-{i}"),
                1000 + c * 10 + i,
                "item",
                "create",
                data,
                2,
            ));
        }
    }
    changes
}

/// Steps of at most `records` records, whatever their bytes.
fn by_count(records: usize) -> Option<StepSize> {
    Some(StepSize {
        records,
        bytes: usize::MAX,
    })
}

fn seeded(step: Option<usize>) -> MemDb {
    let mut db = MemDb::new();
    let out = db.push("dev-a", SCRATCH, tree());
    assert!(out.acks.iter().all(|a| a.success));
    db.limits.cascade_step = step.and_then(by_count);
    db
}

/// Pulls from `cursor` to the end; every record received, by id.
fn received(db: &MemDb, out: &crate::SyncOutput) -> BTreeMap<RecordId, crate::PulledRecord> {
    let mut got: BTreeMap<RecordId, crate::PulledRecord> =
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

fn delete_space() -> ChangeInput {
    change("del", SPACE, "space", "delete", json!(null), 9)
}

/// Each record's content, without the versions (which steps number apart).
fn contents(db: &MemDb) -> BTreeMap<RecordId, (String, Option<i64>, String)> {
    db.rows
        .values()
        .map(|r: &RecordWrite| (r.id, (r.data.clone(), r.deleted_at, r.clocks.clone())))
        .collect()
}

/// No live record hangs under a deleted one.
fn no_orphans(db: &MemDb) {
    let deleted = |p: Option<RecordId>| {
        p.is_some_and(|p| {
            db.rows
                .values()
                .any(|r| r.id == p && r.deleted_at.is_some())
        })
    };
    for r in db.rows.values().filter(|r| r.deleted_at.is_none()) {
        assert!(
            !deleted(r.root_id) && !deleted(r.parent_id),
            "{} is live under a deleted parent",
            r.id
        );
    }
}

#[test]
fn a_cascade_in_steps_ends_where_the_atomic_one_does() {
    let mut whole = seeded(None);
    let atomic = whole.push("dev-a", version_cursor(17), vec![delete_space()]);
    assert_eq!(whole.steps, 0);

    let mut db = seeded(Some(5));
    db.between_steps = Some(Box::new(|db: &mut MemDb| no_orphans(db)));
    let stepped = db.push("dev-a", version_cursor(17), vec![delete_space()]);
    // 16 descendants in steps of at most 5, until what is left fits in one
    // transaction with the delete: 5 + 5 + 5, then the last one and the space.
    assert_eq!(db.steps, 3);
    assert_eq!(contents(&db), contents(&whole));
    assert!(db.rows.values().all(|r| r.deleted_at.is_some()));
    assert_eq!(
        db.head(),
        17 + 17,
        "one new version per record, steps included"
    );
    assert_eq!(
        stepped.acks, atomic.acks,
        "the delete is answered as if atomic"
    );
    // The device's pull part starts at its cursor: it sees every tombstone,
    // the steps' too.
    assert_eq!(stepped.records.len(), atomic.records.len());
}

#[test]
fn steps_delete_leaves_before_their_categories() {
    let mut db = seeded(Some(5));
    let mut seen = Vec::new();
    db.between_steps = Some(Box::new(move |db: &mut MemDb| {
        no_orphans(db);
        let dead = db.rows.values().filter(|r| r.deleted_at.is_some()).count();
        seen.push(dead);
        assert!(dead <= seen.len() * 5, "a step deletes at most its limit");
    }));
    db.push("dev-a", version_cursor(17), vec![delete_space()]);
    // The first steps asked for descendants and got items first.
    let first = db
        .needs
        .iter()
        .find(|n| matches!(n, Need::Descendants { .. }))
        .cloned();
    assert!(
        matches!(
            first,
            Some(Need::Descendants {
                ref kinds,
                limit: 6,
                ..
            }) if kinds[..] == [
                tidesync_protocol::entity::EntityType::Item,
                tidesync_protocol::entity::EntityType::Category
            ]
        ),
        "{first:?}"
    );
}

#[test]
fn a_cascade_within_the_limit_runs_whole() {
    let mut db = seeded(Some(16));
    db.push("dev-a", version_cursor(17), vec![delete_space()]);
    assert_eq!(db.steps, 0);
    assert!(db.rows.values().all(|r| r.deleted_at.is_some()));
}

#[test]
fn a_category_cascade_steps_too() {
    let mut db = MemDb::new();
    let s = id(SPACE).to_string();
    let mut changes = vec![
        change("s", SPACE, "space", "create", json!({"name": "S"}), 0),
        change(
            "c",
            100,
            "category",
            "create",
            json!({"name": "C", "spaceId": s}),
            1,
        ),
    ];
    for i in 0..7u128 {
        changes.push(change(
            &format!("i{i}"),
            1000 + i,
            "item",
            "create",
            json!({"title": "I", "categoryId": id(100).to_string()}),
            2,
        ));
    }
    db.push("dev-a", SCRATCH, changes);
    db.limits.cascade_step = by_count(3);
    let out = db.push(
        "dev-a",
        version_cursor(9),
        vec![change("del", 100, "category", "delete", json!(null), 9)],
    );
    assert!(out.acks[0].success);
    assert_eq!(db.steps, 2, "3 + 3 items, then the last with the category");
    assert!(db
        .rows
        .values()
        .all(|r| r.deleted_at.is_some() == (r.id != id(SPACE))));
}

#[test]
fn what_other_devices_write_between_steps_is_cascaded_too() {
    let mut db = seeded(Some(5));
    let s = id(SPACE).to_string();
    let mut once = true;
    db.between_steps = Some(Box::new(move |db: &mut MemDb| {
        if std::mem::take(&mut once) {
            let head = db.head();
            let out = db.push(
                "dev-b",
                version_cursor(head),
                vec![change_by(
                    "late",
                    5000,
                    "item",
                    "create",
                    json!({"title": "Late", "spaceId": s}),
                    5,
                    "dev-b",
                )],
            );
            assert!(out.acks[0].success, "the space is not deleted yet");
        }
    }));
    db.push("dev-a", version_cursor(17), vec![delete_space()]);
    assert!(db.steps > 0);
    assert!(
        db.record(5000).deleted_at.is_some(),
        "the last run deletes it"
    );
    assert!(db.rows.values().all(|r| r.deleted_at.is_some()));
}

#[test]
fn records_the_push_changed_first_wait_for_the_last_run() {
    // The batch edits an item (and moves another to a new category) before
    // deleting the space: the steps leave those and their categories to the
    // run that ends the cascade, which applies the edits first.
    let mut whole = seeded(None);
    let mut db = seeded(Some(4));
    db.between_steps = Some(Box::new(|db: &mut MemDb| no_orphans(db)));
    let batch = || {
        vec![
            change("e", 1001, "item", "update", json!({"title": "Edited"}), 8),
            change(
                "m",
                1010,
                "item",
                "update",
                json!({"categoryId": id(102).to_string()}),
                8,
            ),
            delete_space(),
        ]
    };
    let atomic = whole.push("dev-a", version_cursor(17), batch());
    let stepped = db.push("dev-a", version_cursor(17), batch());
    assert!(db.steps > 0);
    assert_eq!(stepped.acks, atomic.acks);
    assert_eq!(contents(&db), contents(&whole));
}

#[test]
fn a_retried_delete_after_its_steps_is_a_duplicate() {
    let mut db = seeded(Some(5));
    db.push("dev-a", version_cursor(17), vec![delete_space()]);
    let head = db.head();
    let again = db.push("dev-a", version_cursor(head), vec![delete_space()]);
    assert!(again.acks[0].duplicate);
    assert_eq!(db.steps, 0);
    assert_eq!(db.head(), head, "nothing written twice");
}

#[test]
fn a_from_scratch_push_in_steps_receives_every_tombstone() {
    // A from-scratch page holds no tombstones: the device is sent those its
    // delete made, the earlier steps' included, by the answer or by the
    // pulls it says are owed (`hasMore`).
    let mut whole = seeded(None);
    let atomic = whole.push("dev-a", SCRATCH, vec![delete_space()]);
    let mut db = seeded(Some(5));
    let stepped = db.push("dev-a", SCRATCH, vec![delete_space()]);
    assert!(db.steps > 0);
    assert!(stepped.has_more, "the earlier steps' tombstones are owed");
    let atomic_ids: Vec<RecordId> = received(&whole, &atomic).into_keys().collect();
    assert!(atomic_ids.len() >= 16, "{:?}", atomic.records);
    let got = received(&db, &stepped);
    assert!(atomic_ids.iter().all(|id| got[id].deleted_at.is_some()));
}

#[test]
fn a_stepped_tombstone_the_batch_refers_to_is_sent_once() {
    // The batch names a category the steps delete (a create under it after
    // the space's delete): the last run holds it, deleted, and must send it
    // once in its answer.
    let batch = || {
        vec![
            delete_space(),
            change(
                "late",
                5000,
                "item",
                "create",
                json!({"title": "Late", "categoryId": id(100).to_string()}),
                10,
            ),
        ]
    };
    let mut whole = seeded(None);
    let atomic = whole.push("dev-a", SCRATCH, batch());
    let mut db = seeded(Some(5));
    let stepped = db.push("dev-a", SCRATCH, batch());
    assert!(db.steps > 0);
    let ids = super::mem::ids(&stepped.records);
    let unique: std::collections::BTreeSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "a record sent twice: {ids:?}");
    let a: Vec<RecordId> = received(&whole, &atomic).into_keys().collect();
    let b: Vec<RecordId> = received(&db, &stepped).into_keys().collect();
    assert_eq!(a, b);
}

#[test]
fn a_cascade_of_big_records_steps_by_bytes_too() {
    // Few records, but big ones: a step holds at most `bytes` of them.
    let big = |db: &mut MemDb| {
        let changes = (0..6u128)
            .map(|i| {
                change(
                    &format!("big{i}"),
                    3000 + i,
                    "item",
                    "update",
                    json!({"notes": "n".repeat(1_000)}),
                    3,
                )
            })
            .collect::<Vec<_>>();
        let ids: Vec<u128> = (0..6).map(|i| 3000 + i).collect();
        let creates = ids
            .iter()
            .map(|n| {
                change(
                    &format!("c{n}"),
                    *n,
                    "item",
                    "create",
                    json!({"title": "B", "spaceId": id(SPACE).to_string()}),
                    3,
                )
            })
            .collect();
        db.push("dev-a", version_cursor(17), creates);
        db.push("dev-a", version_cursor(23), changes);
    };
    let mut whole = seeded(None);
    big(&mut whole);
    let atomic = whole.push("dev-a", version_cursor(29), vec![delete_space()]);
    let mut db = seeded(None);
    big(&mut db);
    db.limits.cascade_step = Some(StepSize {
        records: 1000,
        bytes: 2_500,
    });
    db.between_steps = Some(Box::new(|db: &mut MemDb| no_orphans(db)));
    let stepped = db.push("dev-a", version_cursor(29), vec![delete_space()]);
    assert!(db.steps >= 2, "{} steps", db.steps);
    assert_eq!(stepped.acks, atomic.acks);
    assert_eq!(contents(&db), contents(&whole));
    // Tombstones keep no content: a cascade never loaded the notes.
    assert!(db.rows.values().all(|r| !r.data.contains("nnn")));
}
