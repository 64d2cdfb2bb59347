//! One test per rule of docs/SYNC_PROTOCOL.md §5–§7, on the engine alone.

use serde_json::{json, Value};
use tidesync_protocol::cursor::CursorStart;
use tidesync_protocol::sync::OpErrorCode;

use super::mem::{ids, MemDb, NOW, SKEW};
use super::*;
use crate::{EngineError, Need};

const SCRATCH: CursorStart = CursorStart::Scratch;

/// A space (1), a category in it (2), an item in both (3), pushed by dev-a.
fn seeded() -> MemDb {
    let mut db = MemDb::new();
    let out = db.push(
        "dev-a",
        SCRATCH,
        vec![
            change("op-1", 1, "space", "create", json!({"name": "Home"}), 0),
            change(
                "op-2",
                2,
                "category",
                "create",
                json!({"name": "Movies", "spaceId": id(1).to_string()}),
                1,
            ),
            change(
                "op-3",
                3,
                "item",
                "create",
                json!({"title": "Inception", "spaceId": id(1).to_string(), "categoryId": id(2).to_string()}),
                2,
            ),
        ],
    );
    assert!(out.acks.iter().all(|a| a.success), "{:?}", out.acks);
    assert_eq!(db.head(), 3);
    db
}

#[test]
fn creates_get_consecutive_versions_and_reach_other_devices() {
    let db = seeded();
    assert_eq!(
        [1, 2, 3].map(|n| db.record(n).version),
        [1, 2, 3],
        "one version per record, in order"
    );
    let out = db.pull(SCRATCH, 100, usize::MAX);
    assert_eq!(ids(&out.records), vec![id(1), id(2), id(3)]);
    assert_eq!((out.cursor.personal, out.has_more), (3, false));
    assert!(db
        .pull(version_cursor(3), 100, usize::MAX)
        .records
        .is_empty());
}

#[test]
fn the_writer_gets_no_echo_unless_something_else_changed() {
    let mut db = seeded();
    // dev-a's own creates were not echoed to it.
    let out = db.push(
        "dev-a",
        version_cursor(3),
        vec![change(
            "op-4",
            3,
            "item",
            "update",
            json!({"notes": "n"}),
            10,
        )],
    );
    assert!(out.records.is_empty(), "exactly as sent: no echo");
    // dev-b changes the item; dev-a, still at 3, writes another field: both
    // changes are news to dev-a, so the record comes back.
    db.push(
        "dev-b",
        version_cursor(4),
        vec![change_by(
            "op-5",
            3,
            "item",
            "update",
            json!({"title": "T2"}),
            11,
            "dev-b",
        )],
    );
    let out = db.push(
        "dev-a",
        version_cursor(4),
        vec![change(
            "op-6",
            3,
            "item",
            "update",
            json!({"isCompleted": true}),
            12,
        )],
    );
    assert_eq!(ids(&out.records), vec![id(3)]);
}

#[test]
fn updates_touch_only_the_fields_sent_and_different_fields_both_survive() {
    let mut db = seeded();
    db.push(
        "dev-a",
        version_cursor(3),
        vec![change(
            "a",
            3,
            "item",
            "update",
            json!({"notes": "from a"}),
            20,
        )],
    );
    let out = db.push(
        "dev-b",
        version_cursor(3),
        vec![change_by(
            "b",
            3,
            "item",
            "update",
            json!({"isCompleted": true}),
            10,
            "dev-b",
        )],
    );
    assert!(!out.acks[0].conflict, "different fields do not conflict");
    assert_eq!(db.field(3, "notes"), json!("from a"));
    assert_eq!(db.field(3, "isCompleted"), json!(true));
    assert_eq!(db.field(3, "title"), json!("Inception"));
}

#[test]
fn an_older_write_of_a_field_loses_and_brings_the_server_state() {
    let mut db = seeded();
    db.push(
        "dev-a",
        version_cursor(3),
        vec![change(
            "a",
            3,
            "item",
            "update",
            json!({"title": "new"}),
            20,
        )],
    );
    // dev-b had not received dev-a's write (its cursor is before it): the
    // two are concurrent, and the later timestamp wins.
    let out = db.push(
        "dev-b",
        version_cursor(3),
        vec![change_by(
            "b",
            3,
            "item",
            "update",
            json!({"title": "old", "notes": "kept"}),
            10,
            "dev-b",
        )],
    );
    let ack = &out.acks[0];
    assert!(ack.success && ack.conflict, "{ack:?}");
    assert_eq!(db.field(3, "title"), json!("new"));
    assert_eq!(
        db.field(3, "notes"),
        json!("kept"),
        "the newer field is applied"
    );
    assert_eq!(
        ids(&out.records),
        vec![id(3)],
        "the server state comes back"
    );
}

#[test]
fn ties_are_broken_by_device_then_operation() {
    let mut db = seeded();
    db.push(
        "dev-b",
        version_cursor(3),
        vec![change_by(
            "x",
            3,
            "item",
            "update",
            json!({"title": "b"}),
            30,
            "dev-b",
        )],
    );
    let out = db.push(
        "dev-a",
        version_cursor(3),
        vec![change("y", 3, "item", "update", json!({"title": "a"}), 30)],
    );
    assert!(out.acks[0].conflict, "same time, dev-a < dev-b: dev-b wins");
    assert_eq!(db.field(3, "title"), json!("b"));
}

#[test]
fn future_timestamps_are_clamped_to_the_servers_clock() {
    let mut db = seeded();
    let far = (NOW + SKEW + 60_000 - at(0)) / 1000;
    db.push(
        "dev-a",
        version_cursor(3),
        vec![change(
            "f",
            3,
            "item",
            "update",
            json!({"title": "future"}),
            far,
        )],
    );
    assert_eq!(db.record(3).updated_at, NOW, "clamped to now");
    // A write at a plausible later time still wins over the clamped one.
    let later = (NOW + 1_000 - at(0)) / 1000;
    let out = db.push(
        "dev-b",
        version_cursor(4),
        vec![change_by(
            "g",
            3,
            "item",
            "update",
            json!({"title": "later"}),
            later,
            "dev-b",
        )],
    );
    assert!(!out.acks[0].conflict);
    assert_eq!(db.field(3, "title"), json!("later"));
}

#[test]
fn a_space_delete_cascades_to_every_live_child_with_its_own_version() {
    let mut db = seeded();
    let out = db.push(
        "dev-a",
        version_cursor(3),
        vec![change("d", 1, "space", "delete", json!(null), 40)],
    );
    assert!(out.acks[0].success);
    for n in [1, 2, 3] {
        assert_eq!(db.record(n).deleted_at, Some(at(40)), "record {n}");
    }
    let versions: std::collections::BTreeSet<i64> = [1, 2, 3].map(|n| db.record(n).version).into();
    assert_eq!(versions.len(), 3, "each tombstone has its own version");
    // The space itself is not echoed; the cascaded tombstones are.
    assert_eq!(ids(&out.records), vec![id(2), id(3)]);
    // Another device receives all three tombstones.
    assert_eq!(db.pull(version_cursor(3), 100, usize::MAX).records.len(), 3);
}

#[test]
fn a_category_delete_deletes_its_items_only() {
    let mut db = seeded();
    db.push(
        "dev-a",
        version_cursor(3),
        vec![change(
            "i2",
            4,
            "item",
            "create",
            json!({"title": "Elsewhere", "spaceId": id(1).to_string()}),
            5,
        )],
    );
    db.push(
        "dev-a",
        version_cursor(4),
        vec![change("dc", 2, "category", "delete", json!(null), 40)],
    );
    assert!(db.record(2).deleted_at.is_some());
    assert!(db.record(3).deleted_at.is_some());
    assert!(db.record(4).deleted_at.is_none(), "not in the category");
    assert!(db.record(1).deleted_at.is_none(), "the space stays");
}

#[test]
fn a_cascade_follows_the_batchs_own_moves_and_creates() {
    let mut db = seeded();
    let s = id(1).to_string();
    let out = db.push(
        "dev-a",
        version_cursor(3),
        vec![
            // A new space, and the item moved out of space 1 and its category.
            change("s2", 9, "space", "create", json!({"name": "Other"}), 10),
            change(
                "mv",
                3,
                "item",
                "update",
                json!({"spaceId": id(9).to_string(), "categoryId": null}),
                11,
            ),
            // A new item created under space 1 in this very batch.
            change(
                "new",
                5,
                "item",
                "create",
                json!({"title": "Fresh", "spaceId": s}),
                12,
            ),
            change("del", 1, "space", "delete", json!(null), 13),
        ],
    );
    assert!(out.acks.iter().all(|a| a.success), "{:?}", out.acks);
    assert!(
        db.record(2).deleted_at.is_some(),
        "category under the space"
    );
    assert!(
        db.record(5).deleted_at.is_some(),
        "created earlier in the batch"
    );
    assert!(
        db.record(3).deleted_at.is_none(),
        "moved away earlier in the batch"
    );
}

#[test]
fn a_cascade_loads_each_level_once_and_each_row_once() {
    let mut db = MemDb::new();
    let s = id(1).to_string();
    let mut changes = vec![change("s", 1, "space", "create", json!({"name": "Big"}), 0)];
    for c in 0..50u128 {
        changes.push(change(
            &format!("c{c}"),
            100 + c,
            "category",
            "create",
            json!({"name": "C", "spaceId": s}),
            1,
        ));
        for i in 0..4u128 {
            // Half the items also name the space, so level 1 and level 2 both see them.
            let data = if i % 2 == 0 {
                json!({"title": "I", "categoryId": id(100 + c).to_string(), "spaceId": s})
            } else {
                json!({"title": "I", "categoryId": id(100 + c).to_string()})
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
    db.push("dev-a", SCRATCH, changes);
    assert_eq!(db.head(), 251);
    db.push(
        "dev-a",
        version_cursor(251),
        vec![change("del", 1, "space", "delete", json!(null), 9)],
    );
    let levels: Vec<&Need> = db
        .needs
        .iter()
        .filter(|n| matches!(n, Need::Children { .. }))
        .collect();
    assert_eq!(
        levels.len(),
        2,
        "space level, then category level: {levels:?}"
    );
    assert!(matches!(levels[1], Need::Children { parents, .. } if parents.len() == 50));
    // The space itself (batch load), then 50 categories + 100 items, then the
    // 100 items named only by their category: 251 rows, each once.
    assert_eq!(db.rows_loaded, 251);
    assert_eq!(db.head(), 251 + 251, "one new version per record");
    assert!(db.rows.values().all(|r| r.deleted_at.is_some()));
}

#[test]
fn deletes_win_over_later_updates_and_creates() {
    let mut db = seeded();
    db.push(
        "dev-a",
        version_cursor(3),
        vec![change("d", 3, "item", "delete", json!(null), 40)],
    );
    let out = db.push(
        "dev-b",
        version_cursor(3),
        vec![
            change_by(
                "u",
                3,
                "item",
                "update",
                json!({"title": "zombie"}),
                50,
                "dev-b",
            ),
            change_by(
                "c",
                3,
                "item",
                "create",
                json!({"title": "again"}),
                51,
                "dev-b",
            ),
        ],
    );
    assert!(
        out.acks.iter().all(|a| a.success && a.conflict),
        "{:?}",
        out.acks
    );
    assert_eq!(db.record(3).deleted_at, Some(at(40)), "stays deleted");
    assert_eq!(ids(&out.records), vec![id(3)], "the tombstone comes back");
}

#[test]
fn a_delete_erases_the_content_of_the_record_and_of_what_it_cascades_to() {
    let mut db = seeded();
    db.push(
        "dev-a",
        version_cursor(3),
        vec![change("d", 1, "space", "delete", json!(null), 40)],
    );
    let data = |n| serde_json::from_str::<Value>(&db.record(n).data).unwrap();
    assert_eq!(data(1), json!({}));
    assert_eq!(data(2), json!({"spaceId": id(1).to_string()}));
    assert_eq!(
        data(3),
        json!({"spaceId": id(1).to_string(), "categoryId": id(2).to_string()})
    );
    // A late update to the tombstone stores nothing of what it says.
    db.push(
        "dev-b",
        version_cursor(3),
        vec![change_by(
            "u",
            3,
            "item",
            "update",
            json!({"title": "zombie", "notes": "secret"}),
            50,
            "dev-b",
        )],
    );
    assert_eq!(db.field(3, "title"), Value::Null);
    assert_eq!(db.field(3, "notes"), Value::Null);
}

#[test]
fn deleting_a_deleted_record_is_a_duplicate_that_keeps_the_earliest_delete() {
    let mut db = seeded();
    db.push(
        "dev-a",
        version_cursor(3),
        vec![change("d1", 3, "item", "delete", json!(null), 40)],
    );
    let out = db.push(
        "dev-b",
        version_cursor(4),
        vec![change_by(
            "d2",
            3,
            "item",
            "delete",
            json!(null),
            45,
            "dev-b",
        )],
    );
    let ack = &out.acks[0];
    assert!(ack.success && ack.duplicate, "{ack:?}");
    assert_eq!(db.record(3).deleted_at, Some(at(40)));
    assert_eq!(ids(&out.records), vec![id(3)]);
}

#[test]
fn a_child_written_under_a_deleted_parent_is_stored_deleted() {
    let mut db = seeded();
    db.push(
        "dev-a",
        version_cursor(3),
        vec![change("dc", 2, "category", "delete", json!(null), 40)],
    );
    let out = db.push(
        "dev-b",
        version_cursor(3),
        vec![change_by(
            "late",
            7,
            "item",
            "create",
            json!({"title": "Dune", "categoryId": id(2).to_string()}),
            50,
            "dev-b",
        )],
    );
    assert!(out.acks[0].success && out.acks[0].conflict);
    assert_eq!(db.record(7).deleted_at, Some(at(50)));
}

#[test]
fn an_operation_id_has_one_effect_whatever_comes_with_it() {
    let mut db = seeded();
    let first = db.push(
        "dev-a",
        version_cursor(3),
        vec![change(
            "u",
            3,
            "item",
            "update",
            json!({"title": "once"}),
            20,
        )],
    );
    let head = db.head();
    // The same id again, even with other content, in a batch and twice in it.
    let again = db.push(
        "dev-a",
        version_cursor(3),
        vec![
            change("u", 3, "item", "update", json!({"title": "twice"}), 30),
            change("u", 3, "item", "update", json!({"title": "thrice"}), 31),
        ],
    );
    assert_eq!(db.head(), head, "nothing written");
    assert_eq!(db.field(3, "title"), json!("once"));
    for ack in &again.acks {
        assert!(ack.duplicate);
        assert_eq!(
            tidesync_protocol::sync::Ack {
                duplicate: false,
                ..ack.clone()
            },
            first.acks[0]
        );
    }
    // Within one batch too: the second use of an id is a replay of the first.
    let out = db.push(
        "dev-a",
        version_cursor(head),
        vec![
            change("w", 3, "item", "update", json!({"notes": "1"}), 40),
            change("w", 3, "item", "update", json!({"notes": "2"}), 41),
        ],
    );
    assert!(!out.acks[0].duplicate && out.acks[1].duplicate);
    assert_eq!(db.field(3, "notes"), json!("1"));
}

#[test]
fn a_write_made_after_its_device_received_the_value_wins_whatever_its_clock() {
    let mut db = seeded();
    // dev-b edits the title at 20 s.
    db.push(
        "dev-b",
        version_cursor(3),
        vec![change_by(
            "b",
            3,
            "item",
            "update",
            json!({"title": "B"}),
            20,
            "dev-b",
        )],
    );
    // dev-a, whose clock is a day behind, pulled that (cursor 4), then
    // edits the same field: its write came after, and wins.
    let out = db.push(
        "dev-a",
        version_cursor(4),
        vec![change(
            "a",
            3,
            "item",
            "update",
            json!({"title": "A"}),
            -86_400,
        )],
    );
    let ack = &out.acks[0];
    assert!(ack.success && !ack.conflict, "{ack:?}");
    assert_eq!(db.field(3, "title"), json!("A"));
    // Its timestamp moved just after what it overwrote; the device is sent
    // the record, whose updatedAt it did not write.
    assert_eq!(db.record(3).updated_at, at(20) + 1);
    assert_eq!(ids(&out.records), vec![id(3)]);
    // A later concurrent write (a cursor before dev-a's) still goes by its
    // own timestamp: dev-c, at 30 s, wins; at 10 s it would lose.
    db.push(
        "dev-c",
        version_cursor(4),
        vec![change_by(
            "c",
            3,
            "item",
            "update",
            json!({"title": "C"}),
            30,
            "dev-c",
        )],
    );
    assert_eq!(db.field(3, "title"), json!("C"));
}

#[test]
fn a_retried_write_that_lost_brings_the_server_state_again() {
    let mut db = seeded();
    db.push(
        "dev-a",
        version_cursor(3),
        vec![change(
            "new",
            3,
            "item",
            "update",
            json!({"title": "new"}),
            20,
        )],
    );
    let lost = vec![change_by(
        "old",
        3,
        "item",
        "update",
        json!({"title": "old"}),
        10,
        "dev-b",
    )];
    // (Concurrent: dev-b's cursor is before dev-a's write.)
    let first = db.push("dev-b", version_cursor(3), lost.clone());
    assert!(first.acks[0].conflict);
    // The answer was lost; the retry (same cursor) must bring the record again.
    let retry = db.push("dev-b", version_cursor(3), lost);
    assert!(retry.acks[0].duplicate && retry.acks[0].conflict);
    assert_eq!(ids(&retry.records), vec![id(3)]);
}

#[test]
fn bad_operations_get_their_own_ack_and_never_stop_the_batch() {
    let mut db = seeded();
    let out = db.push(
        "dev-a",
        version_cursor(3),
        vec![
            change("v", 10, "item", "create", json!({"title": "   "}), 1),
            change("nf", 11, "item", "update", json!({"title": "x"}), 1),
            change(
                "ur",
                12,
                "item",
                "create",
                json!({"title": "x", "categoryId": id(99).to_string()}),
                1,
            ),
            change(
                "wrong-ref-type",
                13,
                "item",
                "create",
                json!({"title": "x", "categoryId": id(1).to_string()}),
                1,
            ),
            change("type", 1, "item", "create", json!({"title": "x"}), 1),
            change("type-u", 1, "item", "update", json!({"title": "x"}), 1),
            change("ok", 14, "item", "create", json!({"title": "fine"}), 1),
        ],
    );
    let codes: Vec<Option<OpErrorCode>> = out
        .acks
        .iter()
        .map(|a| a.error.as_ref().map(|e| e.code))
        .collect();
    use OpErrorCode::*;
    assert_eq!(
        codes,
        vec![
            Some(ValidationFailed),
            Some(NotFound),
            Some(UnknownReference),
            Some(UnknownReference),
            Some(ValidationFailed),
            Some(NotFound),
            None
        ]
    );
    assert!(db.has(14));
    // Remembered: a retry gets the same answer, even once the record exists.
    db.push(
        "dev-a",
        version_cursor(db.head()),
        vec![change(
            "mk",
            11,
            "item",
            "create",
            json!({"title": "now"}),
            2,
        )],
    );
    let again = db.push(
        "dev-a",
        version_cursor(db.head()),
        vec![change("nf", 11, "item", "update", json!({"title": "x"}), 1)],
    );
    assert!(again.acks[0].duplicate && !again.acks[0].success);
    assert_eq!(again.acks[0].error.as_ref().unwrap().code, NotFound);
}

#[test]
fn a_from_scratch_push_receives_the_tombstones_it_caused() {
    let mut db = seeded();
    let out = db.push(
        "dev-c",
        SCRATCH,
        vec![change_by(
            "d",
            1,
            "space",
            "delete",
            json!(null),
            40,
            "dev-c",
        )],
    );
    // A from-scratch page has no tombstones, but the cascade's must come,
    // and the space's too: it changed after this device's cursor (never).
    assert_eq!(ids(&out.records), vec![id(1), id(2), id(3)]);
    // And a replay of an operation on a record deleted since brings its tombstone.
    let out = db.push(
        "dev-d",
        SCRATCH,
        vec![change_by(
            "d",
            1,
            "space",
            "delete",
            json!(null),
            40,
            "dev-c",
        )],
    );
    assert!(out.acks[0].duplicate);
    assert_eq!(ids(&out.records), vec![id(1)]);
}

#[test]
fn a_cursor_ahead_of_the_server_is_refused_before_anything_is_applied() {
    let mut db = seeded();
    let err = db
        .push_with(
            "dev-a",
            version_cursor(99),
            vec![change("x", 20, "space", "create", json!({"name": "n"}), 1)],
            10,
            usize::MAX,
        )
        .unwrap_err();
    assert_eq!(err, EngineError::CursorAhead);
    assert_eq!(db.head(), 3);
    assert!(!db.has(20));
}

#[test]
fn a_date_cursor_starts_before_the_first_version_written_since() {
    let db = seeded();
    // Every seeded row was written at NOW (server time): a date before it
    // covers them all, a date after none.
    let out = db.pull(CursorStart::Since(NOW - 1), 100, usize::MAX);
    assert_eq!(out.records.len(), 3);
    let out = db.pull(CursorStart::Since(NOW + 1), 100, usize::MAX);
    assert!(out.records.is_empty());
    assert_eq!(out.cursor.personal, 3, "exact from then on");
}

#[test]
fn feeding_what_was_not_asked_for_is_an_error_not_a_panic() {
    let input = || crate::PushInput {
        device_id: "d".into(),
        cursor: SCRATCH,
        changes: vec![],
        limit: 10,
        max_page_bytes: 100,
        now: NOW,
        max_skew: SKEW,
    };
    let limits = crate::PushLimits::default();
    let mut push = crate::Push::new(super::mem::alice(), input(), limits);
    assert!(push.feed(crate::Loaded::Children(vec![])).is_err());
    let push = crate::Push::new(super::mem::alice(), input(), limits);
    assert!(
        push.finish().is_err(),
        "finish before the first need is fed"
    );
}
