//! The one test suite every backend passes, written against [`Store`].
//!
//! A backend's tests call [`backend_suite!`](crate::backend_suite) with an
//! async expression that opens a fresh, migrated store (and a guard that
//! removes its database when dropped).

use std::sync::Arc;

use serde_json::{json, Value};
use tidesync_protocol::cursor::CursorStart;
use tidesync_protocol::sync::{parse_change, ChangeInput};
use tidesync_protocol::time::now_millis;
use tidesync_protocol::{RecordId, UserId};

use crate::{NewUser, PullInput, PushInput, Store, StoreError, SyncOutput};

pub mod history;
pub mod import;
pub mod locking;
pub mod sharing;

/// Generates one `#[tokio::test]` per suite test for a backend.
#[macro_export]
macro_rules! backend_suite {
    ($open:expr) => {
        $crate::backend_suite!(@tests $open;
            accounts_round_trip,
            emails_are_unique,
            revoking_needs_a_live_user,
            pushes_number_versions_in_commit_order,
            pulls_page_by_count_and_bytes,
            cascades_load_each_level_with_indexes,
            a_category_delete_reaches_items_that_also_name_a_space,
            cursors_ahead_and_users_gone_are_refused,
            deleting_a_user_removes_everything,
            concurrent_pushes_of_one_user_serialise,
            sharing::sharing_moves_the_space_in_whole_and_members_write_to_it,
            sharing::viewers_and_former_members_are_refused_and_removed_members_drop_the_space,
            sharing::only_owners_manage_members_and_non_members_get_404,
            sharing::deleting_an_owner_hands_shared_spaces_on,
            history::old_tombstones_are_collected_and_stale_cursors_must_resync,
            history::the_sync_log_is_pruned_past_its_horizon,
            import::importing_twice_changes_nothing,
            import::imported_records_pull_in_change_order_with_their_dates,
            import::a_legacy_date_cursor_gets_exactly_what_changed_after_it,
            import::imported_operations_answer_duplicate_and_later_pushes_merge,
            import::an_imported_hash_is_upgraded_without_revoking_tokens,
            locking::members_newer_than_a_space_write_to_it_beside_its_owner,
        );
    };
    (@tests $open:expr; $($($path:ident)::+),* $(,)?) => {
        $(
            $crate::backend_suite!(@one $open; $($path)::+);
        )*
    };
    (@one $open:expr; $name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let Some((store, _guard)) = $open.await else { return };
            $crate::testsuite::$name(&store).await;
            store.close().await;
        }
    };
    (@one $open:expr; $module:ident :: $name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let Some((store, _guard)) = $open.await else { return };
            $crate::testsuite::$module::$name(&store).await;
            store.close().await;
        }
    };
}

pub async fn new_user(store: &dyn Store, email: &str) -> UserId {
    let id = UserId::random();
    store
        .create_user(NewUser {
            id,
            email: email.into(),
            name: "Suite".into(),
            password_hash: "$argon2id$not-a-real-hash".into(),
            created_at: now_millis(),
        })
        .await
        .expect("create user");
    id
}

/// The user's personal counter.
pub async fn head(store: &dyn Store, user: UserId) -> Result<i64, StoreError> {
    let v = store.view(user).await?;
    Ok(v.get(v.personal).map_or(0, |s| s.head))
}

pub fn rid(n: u128) -> RecordId {
    RecordId::from_uuid(tidesync_protocol::uuid::Uuid::from_u128(n))
}

pub fn change(op: &str, n: u128, entity: &str, operation: &str, data: Value) -> ChangeInput {
    parse_change(
        &json!({"operationId": op, "id": rid(n).to_string(), "entityType": entity,
                "operation": operation, "data": data,
                "timestamp": "2025-01-01T00:00:00.000Z"}),
        "suite-device",
    )
}

pub fn input(cursor: CursorStart, changes: Vec<ChangeInput>) -> PushInput {
    PushInput {
        device_id: "suite-device".into(),
        cursor,
        changes,
        limit: 1000,
        max_page_bytes: 4 << 20,
        now: now_millis(),
        max_skew: 300_000,
    }
}

pub async fn push(store: &dyn Store, user: UserId, changes: Vec<ChangeInput>) -> SyncOutput {
    let head = head(store, user).await.expect("head");
    let out = store
        .push(user, input(CursorStart::personal(head), changes), 100)
        .await
        .expect("push");
    assert!(out.acks.iter().all(|a| a.success), "{:?}", out.acks);
    out
}

pub(crate) fn pull_input(cursor: CursorStart, limit: usize, max_bytes: usize) -> PullInput {
    PullInput {
        cursor,
        limit,
        max_bytes,
    }
}

pub async fn accounts_round_trip(store: &Arc<dyn Store>) {
    let id = new_user(&**store, "a@example.com").await;
    let u = store.user_by_id(id).await.unwrap().expect("user");
    assert_eq!(u.email, "a@example.com");
    let c = store
        .credentials_by_email("a@example.com")
        .await
        .unwrap()
        .expect("credentials");
    assert_eq!(c.user.id, id);
    assert_eq!(c.token_generation, 0);
    assert!(store
        .credentials_by_email("b@example.com")
        .await
        .unwrap()
        .is_none());
    let now = now_millis();
    assert!(store
        .revoke_token(id, "j1", now + 60_000, now)
        .await
        .unwrap());
    assert!(
        !store
            .revoke_token(id, "j1", now + 60_000, now)
            .await
            .unwrap(),
        "twice"
    );
    assert!(store.revoke_token(id, "old", now - 1, now).await.unwrap());
    let s = store.auth_state(id, now).await.unwrap().expect("state");
    assert_eq!(
        s.revoked,
        vec!["j1".to_owned()],
        "expired revocations are not listed"
    );
    assert_eq!(store.change_password(id, "$new").await.unwrap(), 1);
    let c = store
        .credentials_by_email("a@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((c.password_hash.as_str(), c.token_generation), ("$new", 1));
    assert!(matches!(
        store.change_password(UserId::random(), "$x").await,
        Err(StoreError::UserGone)
    ));
    assert!(store.health().await.ok());
}

pub async fn emails_are_unique(store: &Arc<dyn Store>) {
    new_user(&**store, "dup@example.com").await;
    let again = store
        .create_user(NewUser {
            id: UserId::random(),
            email: "dup@example.com".into(),
            name: "Other".into(),
            password_hash: "$h".into(),
            created_at: now_millis(),
        })
        .await;
    assert!(matches!(again, Err(StoreError::EmailTaken)), "{again:?}");
}

pub async fn revoking_needs_a_live_user(store: &Arc<dyn Store>) {
    let id = new_user(&**store, "gone@example.com").await;
    store.delete_user(id).await.unwrap();
    let now = now_millis();
    let r = store.revoke_token(id, "ticket", now + 60_000, now).await;
    assert!(matches!(r, Err(StoreError::UserGone)), "{r:?}");
}

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
            10,
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

pub async fn cascades_load_each_level_with_indexes(store: &Arc<dyn Store>) {
    let user = new_user(&**store, "c@example.com").await;
    let s = rid(1).to_string();
    let mut changes = vec![change("s", 1, "space", "create", json!({"name": "S"}))];
    for c in 0..40u128 {
        let cat = rid(100 + c).to_string();
        changes.push(change(
            &format!("c{c}"),
            100 + c,
            "category",
            "create",
            json!({"name": "C", "spaceId": s}),
        ));
        changes.push(change(
            &format!("a{c}"),
            1000 + c,
            "item",
            "create",
            json!({"title": "A", "spaceId": s, "categoryId": cat}),
        ));
        changes.push(change(
            &format!("b{c}"),
            2000 + c,
            "item",
            "create",
            json!({"title": "B", "categoryId": cat}),
        ));
    }
    // Someone else's data with the same parent ids is not touched.
    let other = new_user(&**store, "other@example.com").await;
    push(
        &**store,
        other,
        vec![change("s", 1, "space", "create", json!({"name": "Mine"}))],
    )
    .await;
    push(&**store, user, changes).await;
    let out = push(
        &**store,
        user,
        vec![change("d", 1, "space", "delete", Value::Null)],
    )
    .await;
    assert_eq!(
        out.wrote.values().copied().collect::<Vec<_>>(),
        vec![121 + 121]
    );
    let all = store
        .pull(user, pull_input(CursorStart::personal(0), 5000, 1 << 30))
        .await
        .unwrap();
    assert_eq!(all.records.len(), 121);
    assert!(all.records.iter().all(|r| r.deleted_at.is_some()));
    let theirs = store
        .pull(other, pull_input(CursorStart::Scratch, 10, 1 << 20))
        .await
        .unwrap();
    assert_eq!(theirs.records.len(), 1, "another user's space stays");
}

pub async fn a_category_delete_reaches_items_that_also_name_a_space(store: &Arc<dyn Store>) {
    let user = new_user(&**store, "cat@example.com").await;
    let (s, c) = (rid(1).to_string(), rid(2).to_string());
    push(
        &**store,
        user,
        vec![
            change("s", 1, "space", "create", json!({"name": "S"})),
            change(
                "c",
                2,
                "category",
                "create",
                json!({"name": "C", "spaceId": s}),
            ),
            change(
                "both",
                3,
                "item",
                "create",
                json!({"title": "B", "spaceId": s, "categoryId": c}),
            ),
            change(
                "cat",
                4,
                "item",
                "create",
                json!({"title": "C", "categoryId": c}),
            ),
            change(
                "space",
                5,
                "item",
                "create",
                json!({"title": "S", "spaceId": s}),
            ),
        ],
    )
    .await;
    push(
        &**store,
        user,
        vec![change("d", 2, "category", "delete", Value::Null)],
    )
    .await;
    let live = store
        .pull(user, pull_input(CursorStart::Scratch, 100, 1 << 20))
        .await
        .unwrap();
    let mut ids: Vec<RecordId> = live.records.iter().map(|r| r.id).collect();
    ids.sort();
    assert_eq!(
        ids,
        vec![rid(1), rid(5)],
        "the space and the item outside the category"
    );
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
            10,
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
            10,
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

pub async fn deleting_a_user_removes_everything(store: &Arc<dyn Store>) {
    let user = new_user(&**store, "del@example.com").await;
    push(
        &**store,
        user,
        vec![change("s", 1, "space", "create", json!({"name": "S"}))],
    )
    .await;
    let now = now_millis();
    store
        .revoke_token(user, "j", now + 1000, now)
        .await
        .unwrap();
    store.delete_user(user).await.unwrap();
    assert!(store.user_by_id(user).await.unwrap().is_none());
    assert!(store.auth_state(user, now).await.unwrap().is_none());
    // The email can be registered again, with nothing of the old account.
    let again = new_user(&**store, "del@example.com").await;
    let out = store
        .pull(again, pull_input(CursorStart::Scratch, 10, 1 << 20))
        .await
        .unwrap();
    assert!(out.records.is_empty());
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
                        .push(user, input(CursorStart::Scratch, vec![c]), 100)
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
