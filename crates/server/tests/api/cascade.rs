//! A delete whose cascade is larger than `CASCADE_STEP` (SQLite) commits in
//! steps, so that one user's large delete does not hold the single writer,
//! and every other user's writes, for its whole length.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tidesync_store_sqlite::SqliteOptions;
use tidesync_testkit::*;

use crate::writer::{push_body, sqlite_app};

/// No live record names a parent that is not live.
fn orphans(live: &BTreeMap<&String, &Value>) -> Vec<String> {
    let gone = |r: &Value, f: &str| {
        r[f].as_str()
            .is_some_and(|p| !live.contains_key(&p.to_string()))
    };
    live.iter()
        .filter(|(_, r)| gone(r, "spaceId") || gone(r, "categoryId"))
        .map(|(id, _)| (*id).clone())
        .collect()
}

async fn a_large_cascade_commits_in_steps_with_other_users_writes_between() {
    let options = SqliteOptions {
        cascade_step: 4,
        ..SqliteOptions::default()
    };
    let (app, _store, _tdb) = sqlite_app(options, |_| {}).await;
    let owner = app.register("big@example.com").await;
    let other = app.register("other@example.com").await;
    // A space, 499 categories, 1,500 items (a third name only their category).
    let space = new_id();
    let cats: Vec<String> = (0..499).map(|_| new_id()).collect();
    let mut changes = vec![change(
        "s",
        &space,
        "space",
        "create",
        json!({"name": "Big"}),
        &at(0),
        "A",
    )];
    for (k, c) in cats.iter().enumerate() {
        changes.push(change(
            &format!("c{k}"),
            c,
            "category",
            "create",
            json!({"name": "C", "spaceId": space}),
            &at(1),
            "A",
        ));
    }
    for k in 0..1500 {
        let cat = &cats[k % cats.len()];
        let data = if k % 3 == 0 {
            json!({"title": "I", "categoryId": cat})
        } else {
            json!({"title": "I", "categoryId": cat, "spaceId": space})
        };
        changes.push(change(
            &format!("i{k}"),
            &new_id(),
            "item",
            "create",
            data,
            &at(2),
            "A",
        ));
    }
    for chunk in changes.chunks(1000) {
        let d = app.sync(&owner, "A", Value::Null, chunk.to_vec()).await;
        assert!(d["acknowledged"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["success"] == json!(true)));
    }

    let client = app.client(&owner);
    let delete = {
        let c = client.clone();
        let body = push_body(
            "A",
            vec![change(
                "del",
                &space,
                "space",
                "delete",
                Value::Null,
                &at(9),
                "A",
            )],
        );
        tokio::spawn(async move { c.sync(&body).await })
    };
    // A pull between steps sees part of the children deleted, never an
    // item left live under a deleted category.
    let deadline = Instant::now() + Duration::from_secs(60);
    let partial = loop {
        let all = pull_everything(&client, "checker", None, None, "between steps").await;
        let live = all.live();
        assert!(orphans(&live).is_empty(), "orphans: {:?}", orphans(&live));
        if live.len() < 2000 && live.contains_key(&space) {
            break live.len();
        }
        assert!(
            !delete.is_finished(),
            "the delete ended before a step was seen"
        );
        assert!(Instant::now() < deadline, "no step seen");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    // Another user's push commits while the delete is still under way.
    let c = change(
        "o",
        &new_id(),
        "space",
        "create",
        json!({"name": "Mine"}),
        &at(0),
        "B",
    );
    let d = app.sync(&other, "B", Value::Null, vec![c]).await;
    assert_eq!(d["acknowledged"][0]["success"], json!(true), "{d}");
    assert!(
        !delete.is_finished(),
        "the other user's push waited for the whole cascade (seen {partial} live)"
    );
    let done = delete.await.unwrap().expect("the delete");
    let ack = &done.acknowledged[0];
    assert!(ack.success && !ack.duplicate, "{ack:?}");
    let after = pull_everything(&client, "checker", None, None, "after").await;
    assert!(
        after.live().is_empty(),
        "everything is deleted: {}",
        after.live().len()
    );
    let mine = pull_everything(&app.client(&other), "B", None, None, "other").await;
    assert_eq!(mine.live().len(), 1);
    app.stop().await;
}

backend_tests! {
    plain_async: [
        a_large_cascade_commits_in_steps_with_other_users_writes_between,
    ],
}
