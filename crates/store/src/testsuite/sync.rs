//! The suite's push and pull tests: versions in commit order, pages by count
//! and bytes, refused cursors and users, concurrent pushes of one user.

use std::sync::Arc;

use serde_json::{json, Value};
use tidesync_protocol::cursor::CursorStart;
use tidesync_protocol::UserId;

use super::{change, head, input, new_user, pull_input, push, rid};
use crate::{Store, StoreError};

pub async fn pushes_number_versions_in_commit_order(store: &Arc<dyn Store>) {
    let user = new_user(&**store, "v@example.com").await;
    let out = push(
        &**store,
        user,
        vec![
            change("s", 1, "space", "create", json!({"name": "S"})),
            change(
                "i",
                2,
                "item",
                "create",
                json!({"title": "I", "spaceId": rid(1).to_string()}),
            ),
        ],
    )
    .await;
    assert_eq!(out.wrote.values().copied().collect::<Vec<_>>(), vec![2]);
    assert!(out.records.is_empty(), "no echo");
    assert_eq!(head(&**store, user).await.unwrap(), 2);
    let page = store
        .pull(user, pull_input(CursorStart::Scratch, 10, 1 << 20))
        .await
        .unwrap();
    let versions: Vec<i64> = page.records.iter().map(|r| r.version).collect();
    assert_eq!(versions, vec![1, 2]);
    let item: Value = serde_json::from_str(&page.records[1].data).unwrap();
    assert_eq!(item["title"], json!("I"));
    // A replay writes nothing and keeps the counter.
    let again = store
        .push(
            user,
            input(
                CursorStart::personal(2),
                vec![change("i", 2, "item", "create", json!({"title": "I"}))],
            ),
        )
        .await
        .unwrap();
    assert!(again.acks[0].duplicate && again.wrote.is_empty());
    assert_eq!(head(&**store, user).await.unwrap(), 2);
}

pub async fn pulls_page_by_count_and_bytes(store: &Arc<dyn Store>) {
    let user = new_user(&**store, "p@example.com").await;
    let notes = "n".repeat(20_000);
    let changes = (0..30u128)
        .map(|i| {
            change(
                &format!("c{i}"),
                100 + i,
                "item",
                "create",
                json!({"title": "t", "notes": notes}),
            )
        })
        .collect();
    push(&**store, user, changes).await;
    for (limit, max_bytes, expect_pages) in [(7, 1 << 30, 5), (1000, 3 * 20_400, 10), (1000, 1, 30)]
    {
        let mut cursor = CursorStart::Scratch;
        let mut seen = std::collections::BTreeSet::new();
        let mut pages = 0;
        loop {
            let out = store
                .pull(user, pull_input(cursor, limit, max_bytes))
                .await
                .unwrap();
            pages += 1;
            assert!(
                !out.records.is_empty() || !out.has_more,
                "an empty page with more"
            );
            let bytes: usize = out.records.iter().map(|r| r.size()).sum();
            assert!(
                out.records.len() == 1 || bytes <= max_bytes,
                "{bytes} > {max_bytes}"
            );
            for r in &out.records {
                assert!(seen.insert(r.id), "{:?} twice", r.id);
            }
            cursor = CursorStart::At(out.cursor);
            if !out.has_more {
                break;
            }
            assert!(pages < 100);
        }
        assert_eq!(seen.len(), 30);
        assert_eq!(pages, expect_pages, "limit {limit}, max_bytes {max_bytes}");
    }
}

pub async fn cursors_ahead_and_users_gone_are_refused(store: &Arc<dyn Store>) {
    let user = new_user(&**store, "x@example.com").await;
    let r = store
        .pull(user, pull_input(CursorStart::personal(5), 10, 1 << 20))
        .await;
    assert!(matches!(r, Err(StoreError::CursorAhead)), "{r:?}");
    let r = store
        .push(
            user,
            input(
                CursorStart::personal(5),
                vec![change("a", 1, "space", "create", json!({"name": "n"}))],
            ),
        )
        .await;
    assert!(matches!(r, Err(StoreError::CursorAhead)), "{r:?}");
    assert_eq!(head(&**store, user).await.unwrap(), 0, "nothing applied");
    let ghost = UserId::random();
    let r = store
        .push(
            ghost,
            input(
                CursorStart::Scratch,
                vec![change("a", 1, "space", "create", json!({"name": "n"}))],
            ),
        )
        .await;
    assert!(matches!(r, Err(StoreError::UserGone)), "{r:?}");
    let r = store
        .pull(ghost, pull_input(CursorStart::Scratch, 10, 100))
        .await;
    assert!(matches!(r, Err(StoreError::UserGone)), "{r:?}");
    assert!(matches!(
        head(&**store, ghost).await,
        Err(StoreError::UserGone)
    ));
}

pub async fn concurrent_pushes_of_one_user_serialise(store: &Arc<dyn Store>) {
    let user = new_user(&**store, "conc@example.com").await;
    let tasks: Vec<_> = (0..8u128)
        .map(|t| {
            let store_ptr = store.clone();
            tokio::spawn(async move {
                for k in 0..10u128 {
                    let n = 10_000 + t * 100 + k;
                    let c = change(
                        &format!("t{t}-{k}"),
                        n,
                        "space",
                        "create",
                        json!({"name": "s"}),
                    );
                    store_ptr
                        .push(user, input(CursorStart::Scratch, vec![c]))
                        .await
                        .expect("push");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let out = store
        .pull(user, pull_input(CursorStart::Scratch, 1000, 1 << 30))
        .await
        .unwrap();
    let mut versions: Vec<i64> = out.records.iter().map(|r| r.version).collect();
    versions.sort();
    assert_eq!(
        versions,
        (1..=80).collect::<Vec<i64>>(),
        "unique, gap-free versions"
    );
}

/// Waits (10 s at most) for the first announcement `want` accepts, past
/// those it does not (other tests' on a shared database, gaps).
async fn announced(
    notes: &mut tokio::sync::broadcast::Receiver<crate::Announcement>,
    what: &str,
    mut want: impl FnMut(&crate::ChangeNote) -> bool,
) -> crate::ChangeNote {
    let deadline = std::time::Duration::from_secs(10);
    loop {
        match tokio::time::timeout(deadline, notes.recv()).await {
            Ok(Ok(crate::Announcement::Change(n))) if want(&n) => return n,
            Ok(Ok(_)) => {}
            other => panic!("no announcement of {what}: {other:?}"),
        }
    }
}

/// Every backend announces its commits itself, once durable: each scope a
/// push wrote at its new counter (with the device, so that device is not
/// poked about its own change), and a membership change on each affected
/// user's personal scope.
pub async fn commits_are_announced(store: &Arc<dyn Store>) {
    let user = new_user(&**store, "announce@example.com").await;
    let bob = new_user(&**store, "announce-bob@example.com").await;
    let mut notes = store.change_notes();
    let out = push(
        &**store,
        user,
        vec![
            change("s", 1, "space", "create", json!({"name": "S"})),
            change("t", 2, "space", "create", json!({"name": "T"})),
        ],
    )
    .await;
    let (&scope, &version) = out.wrote.iter().next().expect("the push wrote");
    // Stepped backends announce each step as it commits: up to the last.
    let last = announced(&mut notes, "the push", |n| {
        n.user == user && n.version == version
    })
    .await;
    assert_eq!(
        (last.scope, last.device.as_str(), last.membership),
        (scope, "suite-device", false)
    );
    super::share_with(
        &**store,
        user,
        rid(1),
        "announce-bob@example.com",
        tidesync_protocol::Role::Editor,
    )
    .await
    .expect("share");
    let bobs = store.view(bob).await.unwrap().personal;
    let m = announced(&mut notes, "bob's membership", |n| {
        n.user == bob && n.membership
    })
    .await;
    assert_eq!(m.scope, bobs, "on bob's personal scope");
}
