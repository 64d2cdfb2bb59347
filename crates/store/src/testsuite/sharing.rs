//! The suite's shared-space tests: members, move-in, move-out, roles.

use std::sync::Arc;

use serde_json::{json, Value};
use tidesync_protocol::cursor::{CursorStart, Positions};
use tidesync_protocol::sync::parse_change;
use tidesync_protocol::sync::OpErrorCode;
use tidesync_protocol::{RecordId, Role, UserId};

use tidesync_protocol::time::now_millis;

use super::{change, input, new_user, push, rid, share_with};
use crate::{InviteLimits, MemberOp, PullInput, Store, StoreError, SyncOutput};

fn pull_from(cursor: CursorStart) -> PullInput {
    PullInput {
        cursor,
        limit: 1000,
        max_bytes: 1 << 30,
    }
}

fn ids(out: &SyncOutput) -> Vec<RecordId> {
    let mut v: Vec<RecordId> = out.records.iter().map(|r| r.id).collect();
    v.sort();
    v
}

/// Alice's space 1 (category 2, items 3 and 4) and her own item 9.
async fn alice_with_space(store: &Arc<dyn Store>) -> (UserId, UserId, UserId) {
    let alice = new_user(&**store, "alice@example.com").await;
    let bob = new_user(&**store, "bob@example.com").await;
    let carol = new_user(&**store, "carol@example.com").await;
    let s = rid(1).to_string();
    push(
        &**store,
        alice,
        vec![
            change("s", 1, "space", "create", json!({"name": "Movies"})),
            change(
                "c",
                2,
                "category",
                "create",
                json!({"name": "Sci-fi", "spaceId": s}),
            ),
            change(
                "i",
                3,
                "item",
                "create",
                json!({"title": "Dune", "categoryId": rid(2).to_string()}),
            ),
            change(
                "j",
                4,
                "item",
                "create",
                json!({"title": "Arrival", "spaceId": s}),
            ),
            change("mine", 9, "item", "create", json!({"title": "Alice only"})),
        ],
    )
    .await;
    (alice, bob, carol)
}

/// Invites to space 1, and the invitee accepts.
async fn add(
    store: &Arc<dyn Store>,
    by: UserId,
    email: &str,
    role: Role,
) -> Result<crate::MembersChanged, StoreError> {
    share_with(&**store, by, rid(1), email, role).await
}

async fn invite(
    store: &Arc<dyn Store>,
    by: UserId,
    email: &str,
    role: Role,
) -> Result<crate::InvitationChanged, StoreError> {
    store
        .invite(by, rid(1), email, role, InviteLimits::DEFAULT, now_millis())
        .await
}

pub async fn sharing_moves_the_space_in_whole_and_members_write_to_it(store: &Arc<dyn Store>) {
    let (alice, bob, _) = alice_with_space(store).await;
    let changed = add(store, alice, "bob@example.com", Role::Editor)
        .await
        .unwrap();
    let roles: Vec<(String, Role)> = changed
        .members
        .iter()
        .map(|m| (m.email.clone(), m.role))
        .collect();
    assert_eq!(
        roles,
        vec![
            ("alice@example.com".into(), Role::Owner),
            ("bob@example.com".into(), Role::Editor)
        ]
    );
    assert_eq!(
        changed.affected.len(),
        2,
        "both: the owner's devices move the space in too"
    );
    // Bob's device, up to date with his empty personal scope, moves in.
    let bob_in = store
        .pull(bob, pull_from(CursorStart::personal(0)))
        .await
        .unwrap();
    assert_eq!(ids(&bob_in), vec![rid(1), rid(2), rid(3), rid(4)]);
    assert_eq!(bob_in.cursor.shared.len(), 1);
    // Alice's device (it had pulled up to her head, 5) gets the same four
    // again through the new scope, and nothing is lost.
    let alice_in = store
        .pull(alice, pull_from(CursorStart::personal(5)))
        .await
        .unwrap();
    assert_eq!(ids(&alice_in), vec![rid(1), rid(2), rid(3), rid(4)]);
    let all = store
        .pull(alice, pull_from(CursorStart::Scratch))
        .await
        .unwrap();
    assert_eq!(all.records.len(), 5);
    // Bob edits an item of the space (later than it was written: an edit
    // in the same millisecond would come back, moved after it); Alice
    // receives it; Bob gets no echo.
    let edit = parse_change(
        &json!({"operationId": "b1", "id": rid(3).to_string(), "entityType": "item",
                "operation": "update", "data": {"notes": "IMAX"},
                "timestamp": "2025-01-01T00:00:05.000Z"}),
        "suite-device",
    );
    let out = store
        .push(
            bob,
            input(CursorStart::At(bob_in.cursor.clone()), vec![edit]),
        )
        .await
        .unwrap();
    assert!(
        out.acks[0].success && out.records.is_empty(),
        "{:?}",
        out.acks
    );
    let news = store
        .pull(alice, pull_from(CursorStart::At(alice_in.cursor)))
        .await
        .unwrap();
    assert_eq!(ids(&news), vec![rid(3)]);
    let item: Value = serde_json::from_str(&news.records[0].data).unwrap();
    assert_eq!(item["notes"], json!("IMAX"));
    assert_eq!(
        news.records[0].created_by, alice,
        "userId stays the creator's"
    );
    // Bob's own data is his: Alice sees none of it.
    push(
        &**store,
        bob,
        vec![change(
            "bs",
            20,
            "space",
            "create",
            json!({"name": "Bob's"}),
        )],
    )
    .await;
    let alice_all = store
        .pull(alice, pull_from(CursorStart::Scratch))
        .await
        .unwrap();
    assert!(!ids(&alice_all).contains(&rid(20)));
}

pub async fn viewers_and_former_members_are_refused_and_removed_members_drop_the_space(
    store: &Arc<dyn Store>,
) {
    let (alice, bob, _) = alice_with_space(store).await;
    add(store, alice, "bob@example.com", Role::Viewer)
        .await
        .unwrap();
    let cursor = store
        .pull(bob, pull_from(CursorStart::personal(0)))
        .await
        .unwrap()
        .cursor;
    let try_write = |c: Positions| {
        input(
            CursorStart::At(c),
            vec![
                change("v1", 4, "item", "update", json!({"title": "mine"})),
                change("v2", 30, "space", "create", json!({"name": "ok"})),
            ],
        )
    };
    let out = store.push(bob, try_write(cursor.clone())).await.unwrap();
    assert_eq!(
        out.acks[0].error.as_ref().map(|e| e.code),
        Some(OpErrorCode::Forbidden)
    );
    assert!(out.acks[1].success, "the rest of the batch proceeds");
    // Removed: the next pull tells the device to drop the space, and nothing after.
    store
        .change_members(alice, rid(1), MemberOp::Remove { member: bob })
        .await
        .unwrap();
    push(
        &**store,
        alice,
        vec![change(
            "late",
            4,
            "item",
            "update",
            json!({"notes": "after"}),
        )],
    )
    .await;
    let out = store
        .pull(bob, pull_from(CursorStart::At(cursor.clone())))
        .await
        .unwrap();
    assert_eq!(out.removed_spaces, vec![rid(1)]);
    // Only Bob's own space (created above) comes: nothing of Alice's.
    assert_eq!(ids(&out), vec![rid(30)]);
    assert!(out.cursor.shared.is_empty());
    let out = store
        .push(
            bob,
            input(
                CursorStart::At(cursor),
                vec![change("v3", 4, "item", "update", json!({"title": "x"}))],
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        out.acks[0].error.as_ref().map(|e| e.code),
        Some(OpErrorCode::Forbidden)
    );
    assert_eq!(out.removed_spaces, vec![rid(1)]);
    let members = store.members(bob, rid(1)).await;
    assert!(
        matches!(members, Err(StoreError::NotFound(_))),
        "a former member sees nothing"
    );
}

pub async fn only_owners_manage_members_and_non_members_get_404(store: &Arc<dyn Store>) {
    let (alice, bob, carol) = alice_with_space(store).await;
    assert!(matches!(
        store.members(carol, rid(1)).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        invite(store, carol, "bob@example.com", Role::Editor).await,
        Err(StoreError::NotFound(_))
    ));
    invite(store, alice, "nobody@example.com", Role::Editor)
        .await
        .expect("an email without an account is invited like any other");
    assert!(matches!(
        invite(store, alice, "bob@example.com", Role::Owner).await,
        Err(StoreError::Invalid(_))
    ));
    add(store, alice, "bob@example.com", Role::Editor)
        .await
        .unwrap();
    assert!(matches!(
        invite(store, alice, "bob@example.com", Role::Viewer).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        invite(store, bob, "carol@example.com", Role::Viewer).await,
        Err(StoreError::Forbidden(_))
    ));
    let leave = store
        .change_members(alice, rid(1), MemberOp::Remove { member: alice })
        .await;
    assert!(
        matches!(leave, Err(StoreError::Conflict(_))),
        "the owner cannot leave"
    );
    store
        .change_members(
            alice,
            rid(1),
            MemberOp::SetRole {
                member: bob,
                role: Role::Viewer,
            },
        )
        .await
        .unwrap();
    let m = store
        .change_members(alice, rid(1), MemberOp::Transfer { to: bob })
        .await
        .unwrap();
    let roles: Vec<(UserId, Role)> = m.members.iter().map(|m| (m.user, m.role)).collect();
    assert_eq!(roles, vec![(bob, Role::Owner), (alice, Role::Editor)]);
    // Alice may leave now; Bob, the owner, sees one member left.
    store
        .change_members(alice, rid(1), MemberOp::Remove { member: alice })
        .await
        .unwrap();
    let left = store.members(bob, rid(1)).await.unwrap();
    assert_eq!(left.len(), 1);
}

pub async fn deleting_an_owner_hands_shared_spaces_on(store: &Arc<dyn Store>) {
    let (alice, bob, carol) = alice_with_space(store).await;
    add(store, alice, "carol@example.com", Role::Viewer)
        .await
        .unwrap();
    add(store, alice, "bob@example.com", Role::Editor)
        .await
        .unwrap();
    store.delete_user(alice).await.unwrap();
    let m = store.members(carol, rid(1)).await.unwrap();
    let roles: Vec<(UserId, Role)> = m.iter().map(|m| (m.user, m.role)).collect();
    assert_eq!(
        roles,
        vec![(bob, Role::Owner), (carol, Role::Viewer)],
        "the editor inherits"
    );
    let out = store
        .pull(bob, pull_from(CursorStart::Scratch))
        .await
        .unwrap();
    assert_eq!(
        ids(&out),
        vec![rid(1), rid(2), rid(3), rid(4)],
        "the space's records stay; Alice's own are gone"
    );
}
