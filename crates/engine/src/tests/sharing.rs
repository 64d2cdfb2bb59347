//! Shared spaces: scopes, roles, move-in and move-out, on the engine alone.

use serde_json::json;
use tidesync_protocol::cursor::{CursorStart, Positions};
use tidesync_protocol::sync::{ChangeInput, OpErrorCode};
use tidesync_protocol::{Role, ScopeId, UserId};

use super::mem::{alice, ids, user, MemDb};
use super::*;
use crate::{Need, SyncOutput};

fn bob() -> UserId {
    user(2)
}

fn carol() -> UserId {
    user(3)
}

fn as_user(
    db: &mut MemDb,
    u: UserId,
    cursor: CursorStart,
    changes: Vec<ChangeInput>,
) -> SyncOutput {
    db.push_as(u, "phone", cursor, changes, 1000, usize::MAX)
        .expect("push")
}

fn codes(out: &SyncOutput) -> Vec<Option<OpErrorCode>> {
    out.acks
        .iter()
        .map(|a| a.error.as_ref().map(|e| e.code))
        .collect()
}

/// Alice's space 1 with category 2 and item 3, shared with Bob as `role`.
fn shared(role: Role) -> (MemDb, ScopeId) {
    let mut db = MemDb::new();
    db.add_user(bob());
    db.add_user(carol());
    let s = id(1).to_string();
    db.push(
        "laptop",
        CursorStart::Scratch,
        vec![
            change(
                "s",
                1,
                "space",
                "create",
                json!({"name": "Movies to watch"}),
                0,
            ),
            change(
                "c",
                2,
                "category",
                "create",
                json!({"name": "Sci-fi", "spaceId": s}),
                1,
            ),
            change(
                "i",
                3,
                "item",
                "create",
                json!({"title": "Dune", "spaceId": s, "categoryId": id(2).to_string()}),
                2,
            ),
            change(
                "mine",
                9,
                "item",
                "create",
                json!({"title": "Alice only"}),
                3,
            ),
        ],
    );
    let scope = db.share(alice(), id(1), bob(), role);
    (db, scope)
}

fn at(personal: i64, shared: &[(ScopeId, i64)]) -> CursorStart {
    let mut p = Positions::personal(personal);
    p.shared.extend(shared.iter().copied());
    CursorStart::At(p)
}

#[test]
fn a_new_member_receives_the_whole_space_at_the_next_pull() {
    let (db, scope) = shared(Role::Editor);
    // Bob's device was up to date with his (empty) personal scope.
    let out = db.pull_as(bob(), CursorStart::personal(0), 100, usize::MAX);
    let mut got = ids(&out.records);
    got.sort();
    assert_eq!(
        got,
        vec![id(1), id(2), id(3)],
        "the space, its category and item; not Alice's own"
    );
    assert_eq!(out.cursor.shared.get(&scope), Some(&3));
    assert!(!out.has_more);
    // And nothing again once moved in.
    assert!(db
        .pull_as(bob(), CursorStart::At(out.cursor), 100, usize::MAX)
        .records
        .is_empty());
}

#[test]
fn device_labels_stay_out_of_shared_spaces() {
    let (db, _) = shared(Role::Viewer);
    let bobs = db.pull_as(bob(), CursorStart::personal(0), 100, usize::MAX);
    assert_eq!(bobs.records.len(), 3);
    assert!(bobs.records.iter().all(|r| r.device_id.is_empty()));
    // Alice's own records keep her device's label; the shared ones do not.
    let alices = db.pull(CursorStart::Scratch, 100, usize::MAX);
    for r in &alices.records {
        assert_eq!(r.device_id.is_empty(), r.id != id(9), "{r:?}");
    }
}

#[test]
fn the_owners_devices_keep_everything_when_a_space_is_first_shared() {
    let (db, scope) = shared(Role::Editor);
    // Alice's phone pulled everything before the share (personal head 4).
    let out = db.pull(CursorStart::personal(4), 100, usize::MAX);
    let mut got = ids(&out.records);
    got.sort();
    assert_eq!(
        got,
        vec![id(1), id(2), id(3)],
        "the moved records arrive again, through the space"
    );
    assert_eq!(out.cursor.personal, 4);
    assert_eq!(out.cursor.shared.get(&scope), Some(&3));
    // A from-scratch pull sees her own item and the shared space.
    let all = db.pull(CursorStart::Scratch, 100, usize::MAX);
    assert_eq!(all.records.len(), 4);
}

#[test]
fn an_editors_write_goes_to_the_space_once_whatever_the_members() {
    let (mut db, scope) = shared(Role::Editor);
    for n in 10..20 {
        let u = user(n);
        db.add_user(u);
        db.share(alice(), id(1), u, Role::Viewer);
    }
    let before_personal = db.head();
    let out = as_user(
        &mut db,
        bob(),
        at(0, &[(scope, 3)]),
        vec![change_by(
            "b1",
            3,
            "item",
            "update",
            json!({"notes": "in 4K"}),
            10,
            "phone",
        )],
    );
    assert!(out.acks[0].success, "{:?}", out.acks);
    assert_eq!(
        out.wrote.keys().copied().collect::<Vec<_>>(),
        vec![db.personal[&bob()], scope]
            .into_iter()
            .filter(|s| *s == scope)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        db.scope_head(scope),
        4,
        "one version in the space's counter"
    );
    assert_eq!(
        db.head(),
        before_personal,
        "Alice's personal counter untouched"
    );
    let rows_for_item = db.rows.values().filter(|r| r.id == id(3)).count();
    assert_eq!(rows_for_item, 1, "stored once, not per member");
    // Alice sees Bob's edit; Bob's own write is not echoed to him.
    assert!(out.records.is_empty());
    let alice_sees = db.pull(at(4, &[(scope, 3)]), 100, usize::MAX);
    assert_eq!(ids(&alice_sees.records), vec![id(3)]);
    assert_eq!(db.field(3, "notes"), json!("in 4K"));
}

#[test]
fn a_viewers_writes_are_forbidden_one_by_one_and_the_rest_proceeds() {
    let (mut db, scope) = shared(Role::Viewer);
    let s = id(1).to_string();
    let out = as_user(
        &mut db,
        bob(),
        at(0, &[(scope, 3)]),
        vec![
            change_by(
                "u",
                3,
                "item",
                "update",
                json!({"title": "mine now"}),
                10,
                "phone",
            ),
            change_by(
                "c",
                30,
                "item",
                "create",
                json!({"title": "x", "spaceId": s}),
                10,
                "phone",
            ),
            change_by("d", 1, "space", "delete", json!(null), 10, "phone"),
            change_by(
                "own",
                31,
                "space",
                "create",
                json!({"name": "Bob's"}),
                10,
                "phone",
            ),
        ],
    );
    use OpErrorCode::Forbidden;
    assert_eq!(
        codes(&out),
        vec![Some(Forbidden), Some(Forbidden), Some(Forbidden), None]
    );
    assert_eq!(db.field(3, "title"), json!("Dune"));
    assert!(!db.has(30));
    assert_eq!(db.scope_head(scope), 3, "nothing written to the space");
}

#[test]
fn only_the_owner_deletes_a_shared_space_and_the_cascade_reaches_everyone() {
    let (mut db, scope) = shared(Role::Editor);
    let out = as_user(
        &mut db,
        bob(),
        at(0, &[(scope, 3)]),
        vec![change_by(
            "d",
            1,
            "space",
            "delete",
            json!(null),
            10,
            "phone",
        )],
    );
    assert_eq!(codes(&out), vec![Some(OpErrorCode::Forbidden)]);
    // Bob may delete the category, though: editors change content.
    let out = as_user(
        &mut db,
        bob(),
        at(0, &[(scope, 3)]),
        vec![change_by(
            "dc",
            2,
            "category",
            "delete",
            json!(null),
            11,
            "phone",
        )],
    );
    assert!(out.acks[0].success);
    assert!(
        db.record(3).deleted_at.is_some(),
        "the cascade stays in the space's scope"
    );
    let out = db.push(
        "laptop",
        at(4, &[(scope, 5)]),
        vec![change("ds", 1, "space", "delete", json!(null), 12)],
    );
    assert!(out.acks[0].success);
    let bob_sees = db.pull_as(bob(), at(0, &[(scope, 5)]), 100, usize::MAX);
    assert_eq!(
        ids(&bob_sees.records),
        vec![id(1)],
        "the space's tombstone reaches the member"
    );
    assert!(bob_sees.records[0].deleted_at.is_some());
}

#[test]
fn non_members_see_nothing_and_learn_nothing() {
    let (mut db, _scope) = shared(Role::Editor);
    let out = as_user(
        &mut db,
        carol(),
        CursorStart::Scratch,
        vec![
            change_by(
                "u",
                3,
                "item",
                "update",
                json!({"title": "hijack"}),
                10,
                "tab",
            ),
            change_by(
                "r",
                40,
                "item",
                "create",
                json!({"title": "x", "spaceId": id(1).to_string()}),
                10,
                "tab",
            ),
        ],
    );
    assert_eq!(
        codes(&out),
        vec![
            Some(OpErrorCode::NotFound),
            Some(OpErrorCode::UnknownReference)
        ]
    );
    assert!(out.records.is_empty());
    // A guessed scope in a cursor is ignored: no records, no removal.
    let mut p = Positions::personal(0);
    p.shared.insert(ScopeId::new(4), 0);
    let out = db.pull_as(carol(), CursorStart::At(p), 100, usize::MAX);
    assert!(out.records.is_empty() && out.removed_spaces.is_empty());
}

#[test]
fn a_removed_member_gets_a_removal_and_nothing_written_after() {
    let (mut db, scope) = shared(Role::Editor);
    let bob_cursor = db
        .pull_as(bob(), CursorStart::personal(0), 100, usize::MAX)
        .cursor;
    db.members.insert((scope, bob()), Role::Removed);
    db.push(
        "laptop",
        at(4, &[(scope, 3)]),
        vec![change(
            "late",
            3,
            "item",
            "update",
            json!({"notes": "secret"}),
            20,
        )],
    );
    let out = db.pull_as(bob(), CursorStart::At(bob_cursor.clone()), 100, usize::MAX);
    assert_eq!(out.removed_spaces, vec![id(1)]);
    assert!(out.records.is_empty(), "nothing written after the removal");
    assert!(
        !out.cursor.shared.contains_key(&scope),
        "the scope leaves the cursor"
    );
    // The same old cursor again (a lost answer): the removal again.
    let again = db.pull_as(bob(), CursorStart::At(bob_cursor), 100, usize::MAX);
    assert_eq!(again.removed_spaces, vec![id(1)]);
    // Pending writes of the removed member are refused as forbidden.
    let out = as_user(
        &mut db,
        bob(),
        at(0, &[(scope, 3)]),
        vec![change_by(
            "b",
            3,
            "item",
            "update",
            json!({"notes": "offline edit"}),
            15,
            "phone",
        )],
    );
    assert_eq!(codes(&out), vec![Some(OpErrorCode::Forbidden)]);
    // Re-added later: the device (which dropped its copies) moves in again.
    db.members.insert((scope, bob()), Role::Viewer);
    let out = db.pull_as(bob(), CursorStart::At(out.cursor), 100, usize::MAX);
    assert_eq!(out.records.len(), 3);
}

#[test]
fn records_do_not_move_between_scopes_and_categories_stay_in_their_space() {
    let (mut db, scope) = shared(Role::Editor);
    db.push(
        "laptop",
        at(4, &[(scope, 3)]),
        vec![change(
            "p",
            50,
            "space",
            "create",
            json!({"name": "Private"}),
            20,
        )],
    );
    let p = id(50).to_string();
    let out = db.push(
        "laptop",
        at(5, &[(scope, 3)]),
        vec![
            change(
                "mv",
                3,
                "item",
                "update",
                json!({"spaceId": p, "categoryId": null}),
                21,
            ),
            change(
                "mix",
                51,
                "item",
                "create",
                json!({"title": "t", "spaceId": p, "categoryId": id(2).to_string()}),
                22,
            ),
            // Only spaceId sent: the category it keeps must be in that space
            // (the engine loads it to check).
            change("keep", 3, "item", "update", json!({"spaceId": p}), 23),
        ],
    );
    use OpErrorCode::ValidationFailed;
    assert_eq!(
        codes(&out),
        vec![
            Some(ValidationFailed),
            Some(ValidationFailed),
            Some(ValidationFailed)
        ]
    );
    assert_eq!(db.field(3, "spaceId"), json!(id(1).to_string()));
}

#[test]
fn a_push_into_personal_data_locks_only_the_personal_scope() {
    let (mut db, _scope) = shared(Role::Editor);
    db.push(
        "laptop",
        CursorStart::personal(4),
        vec![change(
            "n",
            60,
            "item",
            "create",
            json!({"title": "solo"}),
            30,
        )],
    );
    let lock = db
        .needs
        .iter()
        .find_map(|n| match n {
            Need::Batch { lock, .. } => Some(lock.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(lock, vec![db.personal[&alice()]]);
}

#[test]
fn a_user_without_shared_scopes_is_never_asked_to_locate() {
    let mut db = MemDb::new();
    db.push(
        "d",
        CursorStart::Scratch,
        vec![change("a", 1, "space", "create", json!({"name": "n"}), 0)],
    );
    assert!(db.needs.iter().all(|n| !matches!(n, Need::Locate { .. })));
    assert_eq!(
        db.needs.len(),
        2,
        "the view, then the batch: {:?}",
        db.needs
    );
}
