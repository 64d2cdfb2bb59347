//! `Store::import_user` (issue 13): idempotent, versions in change order,
//! tombstones for old cursors, legacy date cursors, imported operation ids
//! answered as duplicates, and the bcrypt-to-Argon2id hash upgrade.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};
use tidesync_protocol::cursor::CursorStart;
use tidesync_protocol::entity::EntityType;
use tidesync_protocol::merge::OpKind;
use tidesync_protocol::sync::parse_change;
use tidesync_protocol::UserId;

use super::{input, pull_input, rid};
use crate::{
    ImportOutcome, ImportedAccount, ImportedLog, ImportedRecord, ImportedUser, NewUser, Store,
};

const DAY: i64 = 86_400_000;
const T0: i64 = 1_764_000_000_000;
const HASH: &str = "$2b$10$abcdefghijklmnopqrstuu5Kq5rY2o8cWcVYg0Zz9Qk1n5mGm8Ha2";

fn rec(
    n: u128,
    entity: EntityType,
    fields: Value,
    day: i64,
    deleted: Option<i64>,
) -> ImportedRecord {
    ImportedRecord {
        id: rid(n),
        entity,
        fields: serde_json::from_value::<BTreeMap<String, Value>>(fields).unwrap(),
        created_at: T0,
        updated_at: T0 + day * DAY,
        deleted_at: deleted.map(|d| T0 + d * DAY),
        device_id: "old-phone".into(),
    }
}

/// A space, a category in it, three items (one deleted on day 5), and an
/// applied operation.
fn sample(id: UserId, email: &str) -> ImportedUser {
    let space = rid(1).to_string();
    let cat = rid(2).to_string();
    ImportedUser {
        id,
        email: email.into(),
        name: "Imported".into(),
        password_hash: HASH.into(),
        created_at: T0 - DAY,
        records: vec![
            rec(
                10,
                EntityType::Item,
                json!({"title": "late", "spaceId": space}),
                4,
                None,
            ),
            rec(1, EntityType::Space, json!({"name": "Home"}), 0, None),
            rec(
                2,
                EntityType::Category,
                json!({"name": "Films", "spaceId": space}),
                1,
                None,
            ),
            rec(
                11,
                EntityType::Item,
                json!({"title": "gone", "categoryId": cat}),
                2,
                Some(5),
            ),
            rec(
                12,
                EntityType::Item,
                json!({"title": "mid", "movieId": "27205"}),
                3,
                None,
            ),
        ],
        logs: vec![ImportedLog {
            operation_id: "op-old-1".into(),
            device_id: "old-phone".into(),
            entity: Some(EntityType::Item),
            entity_id: Some(rid(12).to_string()),
            operation: Some(OpKind::Create),
            changes: r#"{"title":"mid"}"#.into(),
            client_time: Some(T0 + 3 * DAY),
            received_at: T0 + 3 * DAY,
        }],
    }
}

async fn everything(
    store: &dyn Store,
    user: UserId,
    cursor: CursorStart,
) -> Vec<(String, i64, bool)> {
    let out = store
        .pull(user, pull_input(cursor, 1000, 4 << 20))
        .await
        .expect("pull");
    out.records
        .iter()
        .map(|r| (r.id.to_string(), r.version, r.deleted_at.is_some()))
        .collect()
}

pub async fn importing_twice_changes_nothing(store: &Arc<dyn Store>) {
    let id = UserId::random();
    let first = store
        .import_user(sample(id, "imp@example.com"))
        .await
        .unwrap();
    assert_eq!(
        first,
        ImportOutcome {
            account: ImportedAccount::Created,
            inserted: [1, 1, 3],
            present: [0, 0, 0],
            logs_inserted: 1,
            logs_present: 0,
        }
    );
    let c = store
        .credentials_by_email("imp@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((c.user.id, c.password_hash.as_str()), (id, HASH));
    assert_eq!(c.user.created_at, T0 - DAY);
    let before = everything(&**store, id, CursorStart::personal(0)).await;
    let again = store
        .import_user(sample(id, "imp@example.com"))
        .await
        .unwrap();
    assert_eq!(
        again,
        ImportOutcome {
            account: ImportedAccount::AlreadyPresent,
            inserted: [0, 0, 0],
            present: [1, 1, 3],
            logs_inserted: 0,
            logs_present: 1,
        }
    );
    assert_eq!(
        everything(&**store, id, CursorStart::personal(0)).await,
        before
    );
    assert_eq!(super::head(&**store, id).await.unwrap(), 5);

    // Another account with that email: nothing of this one is written.
    let other = UserId::random();
    let taken = store
        .import_user(sample(other, "imp@example.com"))
        .await
        .unwrap();
    assert_eq!(taken.account, ImportedAccount::EmailTaken);
    assert!(store.user_by_id(other).await.unwrap().is_none());
}

pub async fn imported_records_pull_in_change_order_with_their_dates(store: &Arc<dyn Store>) {
    let id = UserId::random();
    store
        .import_user(sample(id, "order@example.com"))
        .await
        .unwrap();
    // Versions follow the last change: space (day 0), category (1),
    // "mid" (3), "late" (4), the deleted item (deleted on day 5).
    let all = everything(&**store, id, CursorStart::personal(0)).await;
    let want: Vec<_> = [(1, false), (2, false), (12, false), (10, false), (11, true)]
        .iter()
        .enumerate()
        .map(|(i, (n, d))| (rid(*n).to_string(), i as i64 + 1, *d))
        .collect();
    assert_eq!(all, want, "an old cursor gets the tombstone too");
    let scratch = everything(&**store, id, CursorStart::Scratch).await;
    assert_eq!(scratch.len(), 4, "from scratch: live records only");
    let out = store
        .pull(id, pull_input(CursorStart::Scratch, 1000, 4 << 20))
        .await
        .unwrap();
    let mid = out.records.iter().find(|r| r.id == rid(12)).unwrap();
    assert_eq!((mid.created_at, mid.updated_at), (T0, T0 + 3 * DAY));
    assert_eq!(mid.device_id, "old-phone");
    assert_eq!(mid.created_by, id);
    let data: Value = serde_json::from_str(&mid.data).unwrap();
    assert_eq!(data["movieId"], "27205");
}

pub async fn a_legacy_date_cursor_gets_exactly_what_changed_after_it(store: &Arc<dyn Store>) {
    let id = UserId::random();
    store
        .import_user(sample(id, "since@example.com"))
        .await
        .unwrap();
    let since = |day: i64| CursorStart::Since(T0 + day * DAY);
    let ids = |v: Vec<(String, i64, bool)>| v.into_iter().map(|r| r.0).collect::<Vec<_>>();
    assert_eq!(
        ids(everything(&**store, id, since(3)).await),
        vec![
            rid(12).to_string(),
            rid(10).to_string(),
            rid(11).to_string()
        ]
    );
    assert_eq!(
        ids(everything(&**store, id, since(5)).await),
        vec![rid(11).to_string()],
        "the delete of day 5 is the only change since"
    );
    assert!(everything(&**store, id, since(6)).await.is_empty());
}

pub async fn imported_operations_answer_duplicate_and_later_pushes_merge(store: &Arc<dyn Store>) {
    let id = UserId::random();
    store
        .import_user(sample(id, "dup-op@example.com"))
        .await
        .unwrap();
    let at = |op: &str, title: &str, ts: i64| {
        parse_change(
            &json!({"operationId": op, "id": rid(12).to_string(), "entityType": "item",
                    "operation": "update", "data": {"title": title},
                    "timestamp": tidesync_protocol::time::to_iso(ts)}),
            "new-phone",
        )
    };
    // From a device that had not received the imported records: its
    // writes are concurrent with them, and timestamps decide.
    let out = store
        .push(
            id,
            input(
                CursorStart::personal(0),
                vec![
                    at("op-old-1", "retried", T0 + 9 * DAY),
                    at("op-older", "older", T0 + 2 * DAY),
                ],
            ),
        )
        .await
        .unwrap();
    assert!(
        out.acks[0].duplicate && out.acks[0].success,
        "{:?}",
        out.acks[0]
    );
    assert!(
        out.acks[1].conflict,
        "older than the imported updatedAt: {:?}",
        out.acks[1]
    );
    let out = store
        .push(
            id,
            input(
                CursorStart::personal(0),
                vec![at("op-new", "newer", T0 + 4 * DAY)],
            ),
        )
        .await
        .unwrap();
    assert!(out.acks[0].success && !out.acks[0].conflict);
    let out = store
        .pull(id, pull_input(CursorStart::Scratch, 1000, 4 << 20))
        .await
        .unwrap();
    let rec = out
        .records
        .iter()
        .find(|r| r.id == rid(12))
        .expect("pulled");
    let data: Value = serde_json::from_str(&rec.data).unwrap();
    assert_eq!(
        (data["title"].as_str(), data["movieId"].as_str()),
        (Some("newer"), Some("27205"))
    );
}

pub async fn an_imported_hash_is_upgraded_without_revoking_tokens(store: &Arc<dyn Store>) {
    let id = UserId::random();
    store
        .create_user(NewUser {
            id,
            email: "bcrypt@example.com".into(),
            name: "B".into(),
            password_hash: HASH.into(),
            created_at: T0,
        })
        .await
        .unwrap();
    assert!(!store
        .upgrade_password_hash(id, "$2b$other", "$argon2id$x")
        .await
        .unwrap());
    assert!(store
        .upgrade_password_hash(id, HASH, "$argon2id$x")
        .await
        .unwrap());
    let c = store
        .credentials_by_email("bcrypt@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (c.password_hash.as_str(), c.token_generation),
        ("$argon2id$x", 0)
    );
    assert!(!store
        .upgrade_password_hash(UserId::random(), HASH, "$argon2id$y")
        .await
        .unwrap());
}
