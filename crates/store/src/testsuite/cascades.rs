//! The suite's cascade tests: a deleted space or category deletes its
//! children at every level, and only the user's own.

use std::sync::Arc;

use serde_json::{json, Value};
use tidesync_protocol::cursor::CursorStart;
use tidesync_protocol::RecordId;

use super::{change, new_user, pull_input, push, rid};
use crate::Store;

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
