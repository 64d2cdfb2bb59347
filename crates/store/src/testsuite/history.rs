//! The suite's bounded-history tests, with a clock the test sets: pushes
//! carry their own `now`, and the collector gets its horizon explicitly.

use std::sync::Arc;

use serde_json::json;
use tidesync_protocol::cursor::CursorStart;
use tidesync_protocol::time::Millis;

use super::{change, input, new_user, rid};
use crate::{GcHorizon, PullInput, Store, StoreError};

const DAY: Millis = 86_400_000;
const T0: Millis = 1_735_689_600_000;

fn pull(cursor: CursorStart) -> PullInput {
    PullInput {
        cursor,
        limit: 100,
        max_bytes: 1 << 20,
    }
}

async fn push_at(
    store: &Arc<dyn Store>,
    user: tidesync_protocol::UserId,
    now: Millis,
    changes: Vec<tidesync_protocol::sync::ChangeInput>,
) -> crate::SyncOutput {
    let mut i = input(CursorStart::Scratch, changes);
    i.now = now;
    store.push(user, i).await.expect("push")
}

pub async fn old_tombstones_are_collected_and_stale_cursors_must_resync(store: &Arc<dyn Store>) {
    let user = new_user(&**store, "old@example.com").await;
    push_at(
        store,
        user,
        T0,
        vec![
            change("s", 1, "space", "create", json!({"name": "S"})),
            change("i", 2, "item", "create", json!({"title": "gone soon"})),
            change("d", 2, "item", "delete", serde_json::Value::Null),
        ],
    )
    .await;
    push_at(
        store,
        user,
        T0 + 100 * DAY,
        vec![change("j", 3, "item", "create", json!({"title": "new"}))],
    )
    .await;
    let report = store
        .collect_garbage(GcHorizon {
            tombstones_before: T0 + 10 * DAY,
            log_before: T0 - DAY,
            now: T0 + 100 * DAY,
        })
        .await
        .unwrap();
    assert_eq!((report.tombstones, report.log_rows), (1, 0));
    // A device that last pulled before the deletion may have missed it.
    let r = store.pull(user, pull(CursorStart::personal(1))).await;
    assert!(matches!(r, Err(StoreError::ResyncRequired)), "{r:?}");
    let r = store
        .push(
            user,
            input(
                CursorStart::personal(1),
                vec![change("x", 4, "space", "create", json!({"name": "n"}))],
            ),
        )
        .await;
    assert!(
        matches!(r, Err(StoreError::ResyncRequired)),
        "refused before anything is applied: {r:?}"
    );
    // Its reaction: a from-scratch pull, which needs no tombstones.
    let fresh = store.pull(user, pull(CursorStart::Scratch)).await.unwrap();
    let mut ids: Vec<_> = fresh.records.iter().map(|r| r.id).collect();
    ids.sort();
    assert_eq!(ids, vec![rid(1), rid(3)]);
    // A device that had seen the deletion goes on.
    assert!(store
        .pull(user, pull(CursorStart::At(fresh.cursor.clone())))
        .await
        .is_ok());
    assert!(store
        .pull(user, pull(CursorStart::personal(3)))
        .await
        .is_ok());
    // The create of the collected item, retried by the stale device after
    // its resync: the log still knows it, so it does not come back.
    let retry = push_at(
        store,
        user,
        T0 + 101 * DAY,
        vec![change(
            "i",
            2,
            "item",
            "create",
            json!({"title": "gone soon"}),
        )],
    )
    .await;
    assert!(retry.acks[0].duplicate, "{:?}", retry.acks);
    let after = store.pull(user, pull(CursorStart::Scratch)).await.unwrap();
    assert!(
        after.records.iter().all(|r| r.id != rid(2)),
        "not resurrected"
    );
}

pub async fn the_sync_log_is_pruned_past_its_horizon(store: &Arc<dyn Store>) {
    let user = new_user(&**store, "log@example.com").await;
    push_at(
        store,
        user,
        T0,
        vec![change("a", 1, "space", "create", json!({"name": "A"}))],
    )
    .await;
    push_at(
        store,
        user,
        T0 + 30 * DAY,
        vec![change("b", 2, "space", "create", json!({"name": "B"}))],
    )
    .await;
    let report = store
        .collect_garbage(GcHorizon {
            tombstones_before: T0 - DAY,
            log_before: T0 + DAY,
            now: T0 + 30 * DAY,
        })
        .await
        .unwrap();
    assert_eq!((report.tombstones, report.log_rows), (0, 1));
    // "b" is remembered, "a" is forgotten: its retry is merged again, which
    // for the same operation on a live record changes nothing.
    let again = push_at(
        store,
        user,
        T0 + 31 * DAY,
        vec![
            change("a", 1, "space", "create", json!({"name": "A"})),
            change("b", 2, "space", "create", json!({"name": "B"})),
        ],
    )
    .await;
    assert!(!again.acks[0].duplicate && again.acks[0].success);
    assert!(again.acks[1].duplicate);
    assert!(again.wrote.is_empty(), "the same write again is no change");
}

/// The export's pages stop at `limit` records or `max_bytes` of record
/// text, the first record always taken, and say whether more follow: every
/// record comes exactly once, tombstones only when asked.
pub async fn exports_page_by_count_and_bytes(store: &Arc<dyn Store>) {
    use crate::ExportQuery;
    use tidesync_protocol::entity::EntityType;

    let user = new_user(&**store, "export@example.com").await;
    let notes = "n".repeat(20_000);
    // Half of the items in a space shared with another user (a scope of
    // its own), half personal: pages run on from one scope into the next.
    let mut changes = vec![change("s", 1, "space", "create", json!({"name": "S"}))];
    changes.extend((0..30u128).map(|i| {
        let data = if i % 2 == 0 {
            json!({"title": "t", "notes": notes, "spaceId": rid(1)})
        } else {
            json!({"title": "t", "notes": notes})
        };
        change(&format!("c{i}"), 100 + i, "item", "create", data)
    }));
    changes.push(change("g", 200, "item", "create", json!({"title": "gone"})));
    changes.push(change("d", 200, "item", "delete", serde_json::Value::Null));
    super::push(&**store, user, changes).await;
    new_user(&**store, "export-friend@example.com").await;
    super::share_with(
        &**store,
        user,
        rid(1),
        "export-friend@example.com",
        tidesync_protocol::Role::Editor,
    )
    .await
    .unwrap();
    for (tombstones, limit, max_bytes, expect_pages) in [
        (false, 7, 1 << 30, 5),
        (false, 1000, 3 * 20_400, 10),
        (false, 1000, 1, 30),
        (true, 1000, 1, 31),
    ] {
        let mut after = None;
        let mut seen = std::collections::BTreeSet::new();
        let (mut pages, mut scopes) = (0, std::collections::BTreeSet::new());
        loop {
            let page = store
                .export(
                    user,
                    ExportQuery {
                        kind: EntityType::Item,
                        tombstones,
                        after,
                        limit,
                        max_bytes,
                    },
                )
                .await
                .unwrap();
            pages += 1;
            assert!(!page.records.is_empty(), "an empty page");
            assert!(page.records.len() <= limit);
            let bytes: usize = page.records.iter().map(|(_, r)| r.size()).sum();
            assert!(
                page.records.len() == 1 || bytes <= max_bytes,
                "{bytes} > {max_bytes}"
            );
            for (scope, r) in &page.records {
                scopes.insert(*scope);
                assert!(seen.insert(r.id), "{:?} twice", r.id);
                assert_eq!(r.deleted_at.is_some(), r.id == rid(200));
            }
            after = page.records.last().map(|(s, r)| (*s, r.id));
            if !page.more {
                break;
            }
            assert!(pages < 100);
        }
        assert_eq!(seen.len(), if tombstones { 31 } else { 30 });
        assert_eq!(scopes.len(), 2);
        assert_eq!(
            pages, expect_pages,
            "limit {limit}, max_bytes {max_bytes}, tombstones {tombstones}"
        );
    }
    // Nothing of a kind: one empty page, and no more.
    let page = store
        .export(
            user,
            ExportQuery {
                kind: EntityType::Category,
                tombstones: true,
                after: None,
                limit: 10,
                max_bytes: 1 << 20,
            },
        )
        .await
        .unwrap();
    assert!(page.records.is_empty() && !page.more);
}
