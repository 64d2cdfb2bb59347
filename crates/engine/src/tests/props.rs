//! Property: the same operations on existing records, delivered in any
//! order, split into any batches, with any duplicates, each push in one
//! transaction or in many (tiny load budgets, cascades in steps), leave the
//! server in the same state (fields, deletion, creation times).

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{json, Value};
use tidesync_protocol::cursor::CursorStart;
use tidesync_protocol::sync::ChangeInput;

use super::mem::MemDb;
use super::*;
use crate::{PushLimits, StepSize};

const SPACE: u128 = 1;
const CATEGORY: u128 = 2;
const ITEMS: [u128; 3] = [10, 11, 12];

fn seed() -> Vec<ChangeInput> {
    let mut v = vec![
        change("s", SPACE, "space", "create", json!({"name": "S"}), 0),
        change(
            "c",
            CATEGORY,
            "category",
            "create",
            json!({"name": "C", "spaceId": id(SPACE).to_string()}),
            0,
        ),
    ];
    for i in ITEMS {
        v.push(change(
            &format!("i{i}"),
            i,
            "item",
            "create",
            json!({"title": "t", "spaceId": id(SPACE).to_string(), "categoryId": id(CATEGORY).to_string()}),
            0,
        ));
    }
    v
}

fn op() -> impl Strategy<Value = (u8, u8, u8, i64, u8)> {
    // (target, kind, field, seconds, device)
    (0u8..5, 0u8..10, 0u8..3, 1i64..50, 0u8..3)
}

fn to_change(n: usize, (target, kind, field, secs, dev): (u8, u8, u8, i64, u8)) -> ChangeInput {
    let device = format!("dev-{dev}");
    let op = format!("op-{n}");
    let (rec, entity) = match target {
        0 => (SPACE, "space"),
        1 => (CATEGORY, "category"),
        t => (ITEMS[(t - 2) as usize], "item"),
    };
    if kind == 0 {
        return change_by(&op, rec, entity, "delete", Value::Null, secs, &device);
    }
    let name = match (entity, field) {
        ("item", 0) => "title",
        ("item", 1) => "notes",
        ("item", _) => "order",
        (_, 0) => "name",
        (_, 1) => "description",
        _ => "order",
    };
    let value = if name == "order" {
        json!(n)
    } else {
        json!(format!("v{n}"))
    };
    change_by(
        &op,
        rec,
        entity,
        "update",
        json!({ name: value }),
        secs,
        &device,
    )
}

/// Fields, deleted or not, and createdAt of every record.
fn state(db: &MemDb) -> BTreeMap<u128, (String, bool, i64)> {
    [SPACE, CATEGORY]
        .into_iter()
        .chain(ITEMS)
        .map(|n| {
            let r = db.record(n);
            (n, (r.data.clone(), r.deleted_at.is_some(), r.created_at))
        })
        .collect()
}

fn deliver(ops: &[ChangeInput], order: &[usize], cuts: &[usize], limits: PushLimits) -> MemDb {
    let mut db = MemDb::new();
    db.push("seed", CursorStart::Scratch, seed());
    db.limits = limits;
    let mut batch = Vec::new();
    for (k, &i) in order.iter().enumerate() {
        batch.push(ops[i % ops.len()].clone());
        // Concurrent operations: sent from a cursor before all of them (a
        // device that had received a record's state would have its write
        // come after it, whatever the order of delivery).
        if cuts.contains(&k) {
            db.push("d", CursorStart::personal(0), std::mem::take(&mut batch));
        }
    }
    if !batch.is_empty() {
        db.push("d", CursorStart::personal(0), batch);
    }
    db
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn any_delivery_order_converges(
        raw in prop::collection::vec(op(), 1..25),
        shuffle in prop::collection::vec(any::<u32>(), 1..25),
        dups in prop::collection::vec(any::<u16>(), 0..10),
        cuts_a in prop::collection::vec(0usize..40, 0..6),
        cuts_b in prop::collection::vec(0usize..40, 0..6),
        run_bytes in prop::option::of(1usize..400),
        step in prop::option::of(1usize..4),
    ) {
        let ops: Vec<ChangeInput> = raw.iter().enumerate().map(|(n, o)| to_change(n, *o)).collect();
        let in_order: Vec<usize> = (0..ops.len()).collect();
        // Another order, with some operations delivered twice.
        let mut keyed: Vec<(u32, usize)> = in_order
            .iter()
            .map(|&i| (shuffle[i % shuffle.len()], i))
            .collect();
        keyed.sort();
        let mut other: Vec<usize> = keyed.into_iter().map(|(_, i)| i).collect();
        other.extend(dups.iter().map(|d| *d as usize % ops.len()));
        let a = deliver(&ops, &in_order, &cuts_a, PushLimits::default());
        let limits = PushLimits {
            run_bytes,
            cascade_step: step.map(|records| StepSize { records, bytes: 150 }),
        };
        let b = deliver(&ops, &other, &cuts_b, limits);
        prop_assert_eq!(state(&a), state(&b));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Edits of one field, each made by a device (its clock off by up to a
    /// day either way) that had received the one before: the last one wins,
    /// whatever the clocks say.
    #[test]
    fn an_edit_made_after_the_one_before_it_wins_whatever_the_clocks(
        edits in prop::collection::vec((0u8..4, -86_400i64..86_400), 1..12),
    ) {
        let mut db = MemDb::new();
        db.push("seed", CursorStart::Scratch, seed());
        let item = ITEMS[0];
        for (n, (dev, skew)) in edits.iter().enumerate() {
            // It pulled everything, then wrote (clamped like any write
            // further ahead than the server allows).
            let cursor = CursorStart::personal(db.head());
            let c = change_by(
                &format!("e{n}"),
                item,
                "item",
                "update",
                json!({"title": format!("edit {n}")}),
                100 + *skew,
                &format!("dev-{dev}"),
            );
            let out = db.push(&format!("dev-{dev}"), cursor, vec![c]);
            prop_assert!(out.acks[0].success && !out.acks[0].conflict, "{:?}", out.acks);
        }
        let last = edits.len() - 1;
        prop_assert_eq!(db.field(item, "title"), json!(format!("edit {last}")));
    }
}
