//! Bad input over HTTP: each bad operation acked, remembered and skipped; a bad request refused whole.

use serde_json::{json, Value};

use tidesync_testkit::*;

use crate::sync::{acks, count, item, seed};

async fn every_bad_op_is_acked_remembered_and_skipped(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let token = app.register("bad@example.com").await;
    let (s, _, i, _) = seed(&app, &token, "A").await;
    let good = new_id();
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            change(
                "b1",
                "not-a-uuid",
                "item",
                "create",
                json!({"title": "x"}),
                &at(5),
                "A",
            ),
            "validation_failed",
            "id",
        ),
        (
            change(
                "b2",
                &new_id(),
                "note",
                "create",
                json!({"title": "x"}),
                &at(5),
                "A",
            ),
            "validation_failed",
            "entityType",
        ),
        (
            change(
                "b3",
                &new_id(),
                "item",
                "upsert",
                json!({"title": "x"}),
                &at(5),
                "A",
            ),
            "validation_failed",
            "operation",
        ),
        (
            change(
                "b4",
                &new_id(),
                "item",
                "create",
                json!({"notes": "no title"}),
                &at(5),
                "A",
            ),
            "validation_failed",
            "title",
        ),
        (
            change(
                "b5",
                &new_id(),
                "item",
                "create",
                // A number would be cast to a string; an object cannot be.
                json!({"title": {"text": "x"}}),
                &at(5),
                "A",
            ),
            "validation_failed",
            "title",
        ),
        (
            change(
                "b6",
                &new_id(),
                "item",
                "create",
                json!({"title": "x".repeat(501)}),
                &at(5),
                "A",
            ),
            "validation_failed",
            "title",
        ),
        (
            change(
                "b7",
                &new_id(),
                "category",
                "create",
                json!({"name": "no space"}),
                &at(5),
                "A",
            ),
            "validation_failed",
            "spaceId",
        ),
        (
            change(
                "b8",
                &new_id(),
                "item",
                "update",
                json!({"title": "x"}),
                &at(5),
                "A",
            ),
            "not_found",
            "item",
        ),
        (
            change("b9", &new_id(), "item", "delete", Value::Null, &at(5), "A"),
            "not_found",
            "item",
        ),
        (
            change(
                "b10",
                &new_id(),
                "category",
                "create",
                json!({"name": "c", "spaceId": new_id()}),
                &at(5),
                "A",
            ),
            "unknown_reference",
            "spaceId",
        ),
        (
            change(
                "b11",
                &new_id(),
                "item",
                "create",
                json!({"title": "t", "categoryId": s}),
                &at(5),
                "A",
            ),
            "unknown_reference",
            "categoryId",
        ),
        (
            change(
                "b12",
                &s,
                "item",
                "create",
                json!({"title": "t"}),
                &at(5),
                "A",
            ),
            "validation_failed",
            "space",
        ),
        (
            change(
                "b13",
                &i,
                "item",
                "update",
                // "yes" is cast to true (Mongoose); "maybe" is not a boolean.
                json!({"isCompleted": "maybe"}),
                &at(5),
                "A",
            ),
            "validation_failed",
            "isCompleted",
        ),
        (
            change(
                "b14",
                &i,
                "item",
                "update",
                json!({"title": "x"}),
                "tomorrow",
                "A",
            ),
            "validation_failed",
            "timestamp",
        ),
        (
            json!({"operationId": "b15", "id": new_id(), "entityType": "item", "operation": "create", "data": "title"}),
            "validation_failed",
            "data",
        ),
        (
            json!({"id": new_id(), "entityType": "item", "operation": "create", "data": {"title": "x"}}),
            "validation_failed",
            "operationId",
        ),
        (json!(17), "validation_failed", "object"),
    ];
    let mut batch: Vec<Value> = cases.iter().map(|c| c.0.clone()).collect();
    batch.push(change(
        "ok-1",
        &good,
        "item",
        "create",
        json!({"title": "still applied"}),
        &at(6),
        "A",
    ));
    let r = app.sync(&token, "A", Value::Null, batch.clone()).await;
    let a = acks(&r);
    assert_eq!(a.len(), cases.len() + 1);
    for (ack, (_, code, word)) in a.iter().zip(&cases) {
        assert_eq!(ack["success"], json!(false), "{ack}");
        assert_eq!(ack["error"]["code"], json!(code), "{ack}");
        let msg = ack["error"]["message"].as_str().unwrap();
        assert!(msg.contains(word), "{ack}: message should name {word:?}");
    }
    assert_eq!(
        a[cases.len()]["success"],
        json!(true),
        "a bad op does not stop the others"
    );

    // A retry gets the same answers (the queue can't wedge); the good op is not re-applied.
    let r2 = app.sync(&token, "A", Value::Null, batch).await;
    for (ack, orig) in acks(&r2).iter().zip(a) {
        assert_eq!(ack["success"], orig["success"]);
        assert_eq!(ack["error"], orig["error"]);
        if orig["operationId"].is_string() {
            assert_eq!(ack["duplicate"], json!(true), "{ack}");
        }
    }
    // Nothing of the rejected ops was stored.
    let all = app.sync(&token, "B", Value::Null, vec![]).await;
    assert_eq!(count(&all), 4, "{all}");
    assert!(item(&all, &good).is_some());
    app.stop().await;
}

async fn bad_requests_are_rejected_whole(db: Db) {
    let tdb = TestDb::new(db).await;
    let mut args = test_args(&tdb);
    args.max_changes_per_sync = 5;
    let app = spawn_with(args).await;
    let token = app.register("req@example.com").await;
    let one = || {
        vec![change(
            "r1",
            &new_id(),
            "space",
            "create",
            json!({"name": "x"}),
            &at(0),
            "A",
        )]
    };

    let res = app.sync_raw(&token, json!({"changes": one()})).await;
    res.assert_error(400, "validation_failed");
    assert!(res.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("deviceId"));
    for bad in [
        json!("garbage"),
        json!("v1.u.x"),
        json!({"a": 1}),
        json!(-4),
        json!("v9.u.1"),
    ] {
        let res = app
            .sync_raw(
                &token,
                json!({"deviceId": "A", "lastSyncTimestamp": bad, "changes": one()}),
            )
            .await;
        res.assert_error(400, "invalid_cursor");
    }
    let res = app
        .sync_raw(
            &token,
            json!({"deviceId": "A", "lastSyncTimestamp": "v1.u.999", "changes": []}),
        )
        .await;
    res.assert_error(400, "invalid_cursor");
    for limit in [json!(-1), json!(0), json!(5001), json!("10"), json!(1.5)] {
        let res = app
            .sync_raw(
                &token,
                json!({"deviceId": "A", "limit": limit, "changes": one()}),
            )
            .await;
        res.assert_error(400, "validation_failed");
    }
    let res = app
        .sync_raw(&token, json!({"deviceId": "A", "changes": {"op": 1}}))
        .await;
    res.assert_error(400, "validation_failed");
    let six: Vec<Value> = (0..6)
        .map(|n| {
            change(
                &format!("m{n}"),
                &new_id(),
                "space",
                "create",
                json!({"name": "x"}),
                &at(0),
                "A",
            )
        })
        .collect();
    let res = app
        .sync_raw(&token, json!({"deviceId": "A", "changes": six}))
        .await;
    res.assert_error(413, "too_many_changes");
    let res = app.post("/api/sync", None, json!({"deviceId": "A"})).await;
    res.assert_error(401, "unauthorized");
    let res = app
        .get("/api/sync/initial?lastSyncTimestamp=nonsense", Some(&token))
        .await;
    res.assert_error(400, "invalid_cursor");
    let res = app.get("/api/sync/initial?limit=-3", Some(&token)).await;
    res.assert_error(400, "validation_failed");

    // None of it stored anything.
    let all = app.sync(&token, "B", Value::Null, vec![]).await;
    assert_eq!(count(&all), 0);
    assert_eq!(all["syncTimestamp"], json!("v1.u.0"));
    app.stop().await;
}

backend_tests!(
    every_bad_op_is_acked_remembered_and_skipped,
    bad_requests_are_rejected_whole,
);
