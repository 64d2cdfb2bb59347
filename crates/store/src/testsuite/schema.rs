//! The schemas a deployment served: none at first, then the newest recorded.

use std::sync::Arc;

use crate::Store;

pub async fn the_newest_served_schema_is_remembered(store: &Arc<dyn Store>) {
    assert_eq!(store.served_schema().await.expect("read"), None);
    let first = tidesync_protocol::schema::BUILTIN_JSON;
    let second = tidesync_protocol::schema::NOTES_JSON;
    store
        .record_served_schema(first, 1_000)
        .await
        .expect("record");
    assert_eq!(
        store.served_schema().await.expect("read").as_deref(),
        Some(first)
    );
    // An older clock does not make an older schema: the newest recorded wins.
    store
        .record_served_schema(second, 500)
        .await
        .expect("record");
    assert_eq!(
        store.served_schema().await.expect("read").as_deref(),
        Some(second)
    );
}
