//! Write locks taken in either order of scope ids: a member whose account
//! (so whose personal scope) is newer than a shared space, writing into it
//! and into their own data at once, beside the owner, whose personal scope
//! is older than the space.

use std::sync::Arc;

use serde_json::json;
use tidesync_protocol::cursor::CursorStart;
use tidesync_protocol::{Role, UserId};

use super::{change, input, new_user, push, rid, share_with};
use crate::{PullInput, Store};

/// One push of `user`: an item into space 1 and one of their own.
async fn push_both(store: Arc<dyn Store>, user: UserId, tag: String, n: u128) {
    let space = rid(1).to_string();
    let out = store
        .push(
            user,
            input(
                CursorStart::Scratch,
                vec![
                    change(
                        &format!("{tag}-s"),
                        n,
                        "item",
                        "create",
                        json!({"title": "shared", "spaceId": space}),
                    ),
                    change(
                        &format!("{tag}-p"),
                        n + 1,
                        "item",
                        "create",
                        json!({"title": "own"}),
                    ),
                ],
            ),
        )
        .await
        .expect("push");
    assert!(out.acks.iter().all(|a| a.success), "{:?}", out.acks);
}

pub async fn members_newer_than_a_space_write_to_it_beside_its_owner(store: &Arc<dyn Store>) {
    let alice = new_user(&**store, "alice@example.com").await;
    let bob = new_user(&**store, "bob@example.com").await;
    push(
        &**store,
        alice,
        vec![change("s", 1, "space", "create", json!({"name": "Movies"}))],
    )
    .await;
    // Sharing gives the space a scope of its own, newer than both accounts.
    share_with(&**store, alice, rid(1), "bob@example.com", Role::Editor)
        .await
        .expect("share");
    // Dave's account, and so his personal scope, is newer than the space's.
    let dave = new_user(&**store, "dave@example.com").await;
    share_with(&**store, alice, rid(1), "dave@example.com", Role::Editor)
        .await
        .expect("add dave");
    let mut tasks = Vec::new();
    for k in 0..6u128 {
        for (who, user) in [("a", alice), ("d", dave)] {
            let n = 1_000 + k * 10 + if who == "a" { 0 } else { 2 };
            let tag = format!("{who}{k}");
            tasks.push(tokio::spawn(push_both(store.clone(), user, tag, n)));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Bob has no data of his own: all he reads is the space's scope, whose
    // versions are unique and gap-free (the space, then 12 items).
    let all = |user| {
        store.pull(
            user,
            PullInput {
                cursor: CursorStart::Scratch,
                limit: 1000,
                max_bytes: 1 << 30,
            },
        )
    };
    let bobs = all(bob).await.unwrap();
    let mut versions: Vec<i64> = bobs.records.iter().map(|r| r.version).collect();
    versions.sort();
    assert_eq!(versions, (1..=13).collect::<Vec<i64>>());
    // Each keeps their own items: 6 for Dave; Alice's 6 beside the 13 shared.
    assert_eq!(all(dave).await.unwrap().records.len(), 13 + 6);
    assert_eq!(all(alice).await.unwrap().records.len(), 13 + 6);
}
