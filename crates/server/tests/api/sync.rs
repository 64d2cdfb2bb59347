//! The sync protocol's rules, each shown over HTTP on both backends.

use serde_json::{json, Value};

use tidesync_testkit::*;

fn acks(data: &Value) -> &Vec<Value> {
    data["acknowledged"].as_array().expect("acknowledged")
}

fn item<'a>(data: &'a Value, id: &str) -> Option<&'a Value> {
    data["serverUpdates"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == json!(id))
}

fn count(data: &Value) -> usize {
    records_by_id(&data["serverUpdates"]).len()
}

/// A space, a category in it and an item in that, created by `device`.
async fn seed(app: &TestApp, token: &str, device: &str) -> (String, String, String, Value) {
    let (s, c, i) = (new_id(), new_id(), new_id());
    let data = app
        .sync(
            token,
            device,
            Value::Null,
            vec![
                change("op-s", &s, "space", "create", json!({"name": "Personal"}), &at(0), device),
                change("op-c", &c, "category", "create", json!({"spaceId": s, "name": "Movies"}), &at(1), device),
                change(
                    "op-i",
                    &i,
                    "item",
                    "create",
                    json!({"title": "Watch Inception", "type": "movie", "movieId": "27205",
                           "notes": "with Ann", "spaceId": s, "categoryId": c, "isCompleted": false}),
                    &at(2),
                    device,
                ),
            ],
        )
        .await;
    for a in acks(&data) {
        assert_eq!(a["success"], json!(true), "{a}");
    }
    (s, c, i, data)
}

async fn original_curl_example_works(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let token = app.register("curl@example.com").await;
    let res = app
        .sync_raw(
            &token,
            json!({"deviceId": "test-device", "lastSyncTimestamp": "2025-01-01T00:00:00.000Z", "changes": []}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body["success"], json!(true));
    let d = &res.body["data"];
    assert_eq!(d["acknowledged"], json!([]));
    assert_eq!(
        d["serverUpdates"],
        json!({"spaces": [], "categories": [], "items": []})
    );
    assert!(d["syncTimestamp"].is_string());
    assert_eq!(d["hasMore"], json!(false));
    app.stop().await;
}

async fn other_device_receives_exactly_the_new_changes(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let token = app.register("two@example.com").await;
    let (s, c, i, first) = seed(&app, &token, "A").await;
    // The creating device gets no echo of its own writes.
    assert_eq!(count(&first), 0, "{first}");

    let b = app.sync(&token, "B", Value::Null, vec![]).await;
    let recs = records_by_id(&b["serverUpdates"]);
    assert_eq!(recs.len(), 3);
    let it = &recs[&i];
    assert_eq!(it["title"], json!("Watch Inception"));
    assert_eq!(it["categoryId"], json!(c));
    assert_eq!(it["spaceId"], json!(s));
    assert_eq!(it["deviceId"], json!("A"));
    assert_eq!(it["createdAt"], json!(at(2)));
    assert_eq!(it["deletedAt"], Value::Null);
    assert_eq!(it["priority"], Value::Null, "unset fields are null");
    let me = app.get("/api/auth/me", Some(&token)).await;
    assert_eq!(it["userId"], me.body["data"]["user"]["id"]);
    let cursor_b = b["syncTimestamp"].clone();

    // Nothing new: nothing returned.
    let again = app.sync(&token, "B", cursor_b.clone(), vec![]).await;
    assert_eq!(count(&again), 0);
    assert_eq!(again["syncTimestamp"], cursor_b);

    app.sync(
        &token,
        "A",
        first["syncTimestamp"].clone(),
        vec![change(
            "op-u",
            &i,
            "item",
            "update",
            json!({"isCompleted": true}),
            &at(10),
            "A",
        )],
    )
    .await;
    let next = app.sync(&token, "B", cursor_b, vec![]).await;
    let recs = records_by_id(&next["serverUpdates"]);
    assert_eq!(
        recs.keys().collect::<Vec<_>>(),
        vec![&i],
        "exactly the changed item"
    );
    assert_eq!(recs[&i]["isCompleted"], json!(true));
    assert_eq!(recs[&i]["updatedAt"], json!(at(10)));
    let last = app
        .sync(&token, "B", next["syncTimestamp"].clone(), vec![])
        .await;
    assert_eq!(count(&last), 0);
    app.stop().await;
}

async fn field_updates_keep_other_fields(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let token = app.register("fields@example.com").await;
    let (_, _, i, first) = seed(&app, &token, "A").await;
    app.sync(
        &token,
        "A",
        first["syncTimestamp"].clone(),
        vec![change(
            "op-u",
            &i,
            "item",
            "update",
            json!({"title": "Watch Inception again"}),
            &at(5),
            "A",
        )],
    )
    .await;
    let all = app.sync(&token, "B", Value::Null, vec![]).await;
    let it = item(&all, &i).unwrap();
    assert_eq!(it["title"], json!("Watch Inception again"));
    assert_eq!(it["notes"], json!("with Ann"));
    assert_eq!(it["movieId"], json!("27205"));
    assert_eq!(it["isCompleted"], json!(false));
    app.stop().await;
}

async fn concurrent_edits_of_different_fields_both_survive(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let token = app.register("merge@example.com").await;
    let (_, _, i, first) = seed(&app, &token, "A").await;
    let cursor = first["syncTimestamp"].clone();
    // Both devices edited offline from the same state; B's edit is older.
    let a = app
        .sync(
            &token,
            "A",
            cursor.clone(),
            vec![change(
                "op-a",
                &i,
                "item",
                "update",
                json!({"title": "New title"}),
                &at(20),
                "A",
            )],
        )
        .await;
    assert_eq!(acks(&a)[0]["conflict"], Value::Null);
    let b = app
        .sync(
            &token,
            "B",
            cursor,
            vec![change(
                "op-b",
                &i,
                "item",
                "update",
                json!({"notes": "New notes"}),
                &at(10),
                "B",
            )],
        )
        .await;
    assert_eq!(acks(&b)[0]["success"], json!(true));
    assert_eq!(
        acks(&b)[0]["conflict"],
        Value::Null,
        "different fields do not conflict"
    );
    // B gets the merged record: A's change happened since B's cursor.
    let merged = item(&b, &i).expect("B receives the merged record");
    assert_eq!(merged["title"], json!("New title"));
    assert_eq!(merged["notes"], json!("New notes"));
    let a2 = app
        .sync(&token, "A", a["syncTimestamp"].clone(), vec![])
        .await;
    assert_eq!(item(&a2, &i).unwrap(), merged, "both devices converge");
    app.stop().await;
}

async fn an_older_write_loses_and_gets_the_server_state(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let token = app.register("older@example.com").await;
    let (_, _, i, first) = seed(&app, &token, "A").await;
    let cursor = first["syncTimestamp"].clone();
    let a = app
        .sync(
            &token,
            "A",
            cursor.clone(),
            vec![change(
                "op-a",
                &i,
                "item",
                "update",
                json!({"title": "Newer"}),
                &at(20),
                "A",
            )],
        )
        .await;
    let b = app
        .sync(
            &token,
            "B",
            a["syncTimestamp"].clone(),
            vec![change(
                "op-b",
                &i,
                "item",
                "update",
                json!({"title": "Older", "notes": "B notes"}),
                &at(10),
                "B",
            )],
        )
        .await;
    let ack = &acks(&b)[0];
    assert_eq!(ack["success"], json!(true));
    assert_eq!(ack["conflict"], json!(true));
    let it = item(&b, &i).expect("the loser receives the server state");
    assert_eq!(it["title"], json!("Newer"));
    assert_eq!(it["notes"], json!("B notes"), "the field it won is kept");

    // A tie on the timestamp is decided by deviceId, the same on every server.
    let t = app
        .sync(
            &token,
            "Z",
            b["syncTimestamp"].clone(),
            vec![change(
                "op-z",
                &i,
                "item",
                "update",
                json!({"title": "Z wins the tie"}),
                &at(20),
                "Z",
            )],
        )
        .await;
    assert_eq!(acks(&t)[0]["conflict"], Value::Null);
    let all = app.sync(&token, "C", Value::Null, vec![]).await;
    assert_eq!(item(&all, &i).unwrap()["title"], json!("Z wins the tie"));
    app.stop().await;
}

async fn deletes_win_cascade_and_propagate(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let token = app.register("delete@example.com").await;
    let (s, c, i, first) = seed(&app, &token, "A").await;
    let b0 = app.sync(&token, "B", Value::Null, vec![]).await;

    let d = app
        .sync(
            &token,
            "A",
            first["syncTimestamp"].clone(),
            vec![change(
                "op-d",
                &s,
                "space",
                "delete",
                Value::Null,
                &at(30),
                "A",
            )],
        )
        .await;
    assert_eq!(acks(&d)[0]["success"], json!(true));
    // The cascaded children were changed by the server: A receives them.
    let recs = records_by_id(&d["serverUpdates"]);
    assert!(recs.contains_key(&c) && recs.contains_key(&i), "{d}");

    // B receives every tombstone.
    let b1 = app
        .sync(&token, "B", b0["syncTimestamp"].clone(), vec![])
        .await;
    let recs = records_by_id(&b1["serverUpdates"]);
    assert_eq!(recs.len(), 3);
    for id in [&s, &c, &i] {
        assert_eq!(recs[id]["deletedAt"], json!(at(30)), "{id}");
    }

    // A later update does not revive the record.
    let u = app
        .sync(
            &token,
            "B",
            b1["syncTimestamp"].clone(),
            vec![change(
                "op-u",
                &i,
                "item",
                "update",
                json!({"title": "revive?"}),
                &at(40),
                "B",
            )],
        )
        .await;
    assert_eq!(acks(&u)[0]["conflict"], json!(true));
    assert_eq!(
        item(&u, &i).unwrap()["deletedAt"],
        json!(at(30)),
        "tombstone returned"
    );

    // A child created under a deleted parent is stored deleted.
    let orphan = new_id();
    let o = app
        .sync(
            &token,
            "B",
            u["syncTimestamp"].clone(),
            vec![change(
                "op-o",
                &orphan,
                "item",
                "create",
                json!({"title": "late", "categoryId": c}),
                &at(41),
                "B",
            )],
        )
        .await;
    assert_eq!(acks(&o)[0]["success"], json!(true));
    assert_eq!(acks(&o)[0]["conflict"], json!(true));
    assert!(item(&o, &orphan).unwrap()["deletedAt"].is_string());

    // Deleting twice is a duplicate success.
    let twice = app
        .sync(
            &token,
            "B",
            o["syncTimestamp"].clone(),
            vec![change(
                "op-d2",
                &i,
                "item",
                "delete",
                Value::Null,
                &at(50),
                "B",
            )],
        )
        .await;
    assert_eq!(acks(&twice)[0]["success"], json!(true));
    assert_eq!(acks(&twice)[0]["duplicate"], json!(true));
    // ... and the device gets the server's tombstone (the earlier deletedAt).
    assert_eq!(
        item(&twice, &i).expect("tombstone returned")["deletedAt"],
        json!(at(30))
    );

    // A from-scratch pull has no tombstones.
    let fresh = app.sync(&token, "C", Value::Null, vec![]).await;
    assert_eq!(count(&fresh), 0, "{fresh}");
    let init = app.get("/api/sync/initial", Some(&token)).await;
    assert_eq!(init.body["data"]["items"], json!([]));
    app.stop().await;
}

async fn deleting_a_category_deletes_its_items_only(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let token = app.register("cat@example.com").await;
    let (s, c, i, first) = seed(&app, &token, "A").await;
    let other = new_id();
    let r = app
        .sync(
            &token,
            "A",
            first["syncTimestamp"].clone(),
            vec![
                change(
                    "op-x",
                    &other,
                    "item",
                    "create",
                    json!({"title": "in the space only", "spaceId": s}),
                    &at(3),
                    "A",
                ),
                change("op-dc", &c, "category", "delete", Value::Null, &at(4), "A"),
            ],
        )
        .await;
    let all = app
        .sync(&token, "B", r["syncTimestamp"].clone(), vec![])
        .await;
    assert_eq!(count(&all), 0);
    let fresh = app.sync(&token, "B", Value::Null, vec![]).await;
    let live = records_by_id(&fresh["serverUpdates"]);
    assert!(live.contains_key(&s) && live.contains_key(&other));
    assert!(!live.contains_key(&c) && !live.contains_key(&i));
    app.stop().await;
}

async fn retries_have_exactly_one_effect(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let token = app.register("retry@example.com").await;
    let (_, _, i, first) = seed(&app, &token, "A").await;
    let cursor = first["syncTimestamp"].clone();
    let batch = vec![
        change(
            "op-1",
            &i,
            "item",
            "update",
            json!({"title": "first edit"}),
            &at(10),
            "A",
        ),
        change(
            "op-2",
            &i,
            "item",
            "update",
            json!({"notes": "n2", "rating": 9}),
            &at(11),
            "A",
        ),
    ];
    let r1 = app.sync(&token, "A", cursor.clone(), batch.clone()).await;
    let r2 = app.sync(&token, "A", cursor.clone(), batch.clone()).await;
    let r3 = app.sync(&token, "A", cursor.clone(), batch.clone()).await;
    for r in [&r2, &r3] {
        for (a, orig) in acks(r).iter().zip(acks(&r1)) {
            assert_eq!(a["duplicate"], json!(true), "{a}");
            let mut a = a.clone();
            a.as_object_mut().unwrap().remove("duplicate");
            assert_eq!(&a, orig, "a retry returns the original ack");
        }
    }
    // A newer edit from another device, then the old batch is retried again:
    // the retried old update must not overwrite it (the original design's bug).
    app.sync(
        &token,
        "B",
        Value::Null,
        vec![change(
            "op-b",
            &i,
            "item",
            "update",
            json!({"title": "newest"}),
            &at(20),
            "B",
        )],
    )
    .await;
    let r4 = app.sync(&token, "A", cursor, batch).await;
    assert!(acks(&r4).iter().all(|a| a["duplicate"] == json!(true)));
    let all = app.sync(&token, "C", Value::Null, vec![]).await;
    let it = item(&all, &i).unwrap();
    assert_eq!(it["title"], json!("newest"));
    assert_eq!(it["notes"], json!("n2"));

    // One effect in the audit log too.
    let log = audit_log(&tdb, db).await;
    assert_eq!(log.iter().filter(|(op, ..)| op == "op-1").count(), 1);
    app.stop().await;
}

async fn users_are_isolated(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let alice = app.register("alice@example.com").await;
    let mallory = app.register("mallory@example.com").await;
    let (s, c, i, _) = seed(&app, &alice, "A").await;
    let unknown = new_id();

    let probe = |target: &str, op: &str, entity: &str| {
        change(
            &format!("m-{op}-{target}"),
            target,
            entity,
            op,
            json!({"title": "pwned", "name": "pwned"}),
            &at(100),
            "M",
        )
    };
    let m = app
        .sync(
            &mallory,
            "M",
            Value::Null,
            vec![
                probe(&i, "update", "item"),
                probe(&unknown, "update", "item"),
                probe(&s, "delete", "space"),
                probe(&unknown, "delete", "space"),
                change(
                    "m-ref",
                    &new_id(),
                    "item",
                    "create",
                    json!({"title": "x", "categoryId": c}),
                    &at(100),
                    "M",
                ),
            ],
        )
        .await;
    let a = acks(&m);
    // Someone else's id answers exactly like an id that does not exist.
    let strip = |v: &Value| {
        let mut v = v.clone();
        v.as_object_mut().unwrap().remove("operationId");
        v.as_object_mut().unwrap().remove("id");
        v
    };
    assert_eq!(strip(&a[0]), strip(&a[1]));
    assert_eq!(strip(&a[2]), strip(&a[3]));
    assert_eq!(a[0]["error"]["code"], json!("not_found"));
    assert_eq!(a[4]["error"]["code"], json!("unknown_reference"));
    assert_eq!(count(&m), 0, "nothing of Alice's is revealed");

    // Mallory creating her own record with Alice's id touches only hers.
    let mine = app
        .sync(
            &mallory,
            "M",
            m["syncTimestamp"].clone(),
            vec![change(
                "m-own",
                &i,
                "item",
                "create",
                json!({"title": "mine"}),
                &at(101),
                "M",
            )],
        )
        .await;
    assert_eq!(acks(&mine)[0]["success"], json!(true));
    let alice_view = app.sync(&alice, "A2", Value::Null, vec![]).await;
    assert_eq!(
        item(&alice_view, &i).unwrap()["title"],
        json!("Watch Inception")
    );
    assert_eq!(count(&alice_view), 3);
    let mallory_view = app.sync(&mallory, "M2", Value::Null, vec![]).await;
    assert_eq!(count(&mallory_view), 1);
    assert_eq!(item(&mallory_view, &i).unwrap()["title"], json!("mine"));
    app.stop().await;
}

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

async fn pulls_page_with_has_more(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let token = app.register("pages@example.com").await;
    let changes: Vec<Value> = (0..25)
        .map(|n| {
            change(
                &format!("p{n}"),
                &new_id(),
                "item",
                "create",
                json!({"title": format!("item {n}")}),
                &at(n),
                "A",
            )
        })
        .collect();
    app.sync(&token, "A", Value::Null, changes).await;

    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = Value::Null;
    let mut pages = vec![];
    loop {
        let res = app
            .sync_raw(
                &token,
                json!({"deviceId": "B", "lastSyncTimestamp": cursor, "limit": 10}),
            )
            .await;
        let d = &res.body["data"];
        pages.push(count(d));
        for id in records_by_id(&d["serverUpdates"]).keys() {
            assert!(seen.insert(id.clone()), "{id} returned twice");
        }
        cursor = d["syncTimestamp"].clone();
        if d["hasMore"] == json!(false) {
            break;
        }
        assert!(pages.len() < 10);
    }
    assert_eq!(pages, vec![10, 10, 5]);

    // The same through /api/sync/initial.
    let mut total = 0;
    let mut url = "/api/sync/initial?limit=10".to_string();
    for round in 0.. {
        let res = app.get(&url, Some(&token)).await;
        assert_eq!(res.status, 200, "{}", res.body);
        let d = &res.body["data"];
        total += d["items"].as_array().unwrap().len();
        if d["hasMore"] == json!(false) {
            break;
        }
        url = format!(
            "/api/sync/initial?limit=10&lastSyncTimestamp={}",
            d["syncTimestamp"].as_str().unwrap()
        );
        assert!(round < 10);
    }
    assert_eq!(total, 25);
    app.stop().await;
}

async fn external_data_and_server_fields_are_not_stored(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let token = app.register("ext@example.com").await;
    let id = new_id();
    let r = app.sync(&token, "A", Value::Null, vec![change("e1", &id, "item", "create",
        json!({"title": "Read Dune", "type": "book", "bookId": "OL27479W", "cover": "/dune.jpg",
               "author": "Herbert", "userId": new_id(), "createdAt": "1999-01-01T00:00:00.000Z"}),
        &at(0), "A")]).await;
    let ack = &acks(&r)[0];
    assert_eq!(ack["success"], json!(true));
    let mut ignored: Vec<String> = serde_json::from_value(ack["ignoredFields"].clone()).unwrap();
    ignored.sort();
    assert_eq!(ignored, vec!["author", "cover", "createdAt", "userId"]);
    let all = app.sync(&token, "B", Value::Null, vec![]).await;
    let it = item(&all, &id).unwrap();
    assert!(it.get("cover").is_none() && it.get("author").is_none());
    assert_eq!(it["bookId"], json!("OL27479W"));
    assert_eq!(it["createdAt"], json!(at(0)));
    let me = app.get("/api/auth/me", Some(&token)).await;
    assert_eq!(it["userId"], me.body["data"]["user"]["id"]);
    app.stop().await;
}

async fn future_timestamps_are_clamped(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let token = app.register("skew@example.com").await;
    let (_, _, i, first) = seed(&app, &token, "A").await;
    // A device whose clock says 2099.
    let r = app
        .sync(
            &token,
            "Broken",
            first["syncTimestamp"].clone(),
            vec![change(
                "f1",
                &i,
                "item",
                "update",
                json!({"title": "from the future"}),
                "2099-01-01T00:00:00.000Z",
                "Broken",
            )],
        )
        .await;
    assert_eq!(acks(&r)[0]["success"], json!(true));
    // A correct device editing a moment later wins, as it should.
    let now = tidesync_protocol::time::to_iso(tidesync_protocol::time::now_millis() + 2_000);
    let ok = app
        .sync(
            &token,
            "Good",
            Value::Null,
            vec![change(
                "f2",
                &i,
                "item",
                "update",
                json!({"title": "from now"}),
                &now,
                "Good",
            )],
        )
        .await;
    assert_eq!(acks(&ok)[0]["conflict"], Value::Null, "{ok}");
    let all = app.sync(&token, "C", Value::Null, vec![]).await;
    let it = item(&all, &i).unwrap();
    assert_eq!(it["title"], json!("from now"));
    assert!(it["updatedAt"].as_str().unwrap() < "2099", "{it}");
    app.stop().await;
}

async fn the_writer_gets_no_echo_unless_something_else_changed(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let token = app.register("echo@example.com").await;
    let (_, _, i, first) = seed(&app, &token, "A").await;
    let a_cursor = first["syncTimestamp"].clone();
    let r = app
        .sync(
            &token,
            "A",
            a_cursor.clone(),
            vec![change(
                "e1",
                &i,
                "item",
                "update",
                json!({"notes": "mine"}),
                &at(10),
                "A",
            )],
        )
        .await;
    assert_eq!(count(&r), 0, "own write applied as sent: no echo");
    // B changes another field; A, still at its old cursor, writes again: A
    // must now receive the record, which carries B's change.
    app.sync(
        &token,
        "B",
        Value::Null,
        vec![change(
            "e2",
            &i,
            "item",
            "update",
            json!({"title": "B title"}),
            &at(11),
            "B",
        )],
    )
    .await;
    let r2 = app
        .sync(
            &token,
            "A",
            r["syncTimestamp"].clone(),
            vec![change(
                "e3",
                &i,
                "item",
                "update",
                json!({"order": 3}),
                &at(12),
                "A",
            )],
        )
        .await;
    let it = item(&r2, &i).expect("record changed by someone else since A's cursor");
    assert_eq!(it["title"], json!("B title"));
    assert_eq!(it["order"], json!(3));
    app.stop().await;
}

async fn legacy_date_cursors_are_a_best_effort_start(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let token = app.register("legacy@example.com").await;
    // Dates are server receive time, whatever the records' client timestamps.
    let before = tidesync_protocol::time::to_iso(tidesync_protocol::time::now_millis() - 60_000);
    seed(&app, &token, "A").await;
    let old_client = app.sync(&token, "Old", json!(before), vec![]).await;
    assert_eq!(count(&old_client), 3);
    let exact = old_client["syncTimestamp"].as_str().unwrap();
    assert!(
        exact.starts_with("v1."),
        "the cursor returned is exact: {exact}"
    );
    let future = app
        .sync(&token, "Old", json!("2099-01-01T00:00:00.000Z"), vec![])
        .await;
    assert_eq!(count(&future), 0);
    assert_eq!(future["syncTimestamp"], old_client["syncTimestamp"]);
    app.stop().await;
}

/// `(operation_id, device_id, entity_type, operation, changes, ack)` rows.
async fn audit_log(
    tdb: &TestDb,
    db: Db,
) -> Vec<(
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
)> {
    use sqlx::Connection;
    let sql = "SELECT operation_id, device_id, entity_type, operation, changes, ack FROM sync_log ORDER BY server_time, operation_id";
    match db {
        Db::Sqlite => {
            let c =
                rusqlite::Connection::open(tidesync_store::sqlite_file(&tdb.url).unwrap()).unwrap();
            let mut st = c.prepare(sql).unwrap();
            let rows = st
                .query_map([], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                })
                .unwrap();
            rows.collect::<Result<_, _>>().unwrap()
        }
        Db::Postgres => {
            let mut c = sqlx::PgConnection::connect(&tdb.url).await.unwrap();
            sqlx::query_as(sql).fetch_all(&mut c).await.unwrap()
        }
    }
}

async fn the_sync_log_audits_every_applied_operation(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let token = app.register("audit@example.com").await;
    let (_, _, i, first) = seed(&app, &token, "A").await;
    app.sync(
        &token,
        "B",
        first["syncTimestamp"].clone(),
        vec![
            change(
                "a-u",
                &i,
                "item",
                "update",
                json!({"title": "t2", "poster": "x"}),
                &at(9),
                "B",
            ),
            change(
                "a-bad",
                &new_id(),
                "item",
                "update",
                json!({"title": "t3"}),
                &at(9),
                "B",
            ),
        ],
    )
    .await;
    let log = audit_log(&tdb, db).await;
    let ops: Vec<&str> = log.iter().map(|r| r.0.as_str()).collect();
    for op in ["op-s", "op-c", "op-i", "a-u", "a-bad"] {
        assert!(ops.contains(&op), "{op} missing from {ops:?}");
    }
    let u = log.iter().find(|r| r.0 == "a-u").unwrap();
    assert_eq!(u.1, "B");
    assert_eq!(u.2.as_deref(), Some("item"));
    assert_eq!(u.3.as_deref(), Some("update"));
    let sent: Value = serde_json::from_str(&u.4).unwrap();
    assert_eq!(sent, json!({"title": "t2"}));
    let outcome: Value = serde_json::from_str(&u.5).unwrap();
    assert_eq!(outcome["success"], json!(true));
    let bad = log.iter().find(|r| r.0 == "a-bad").unwrap();
    let outcome: Value = serde_json::from_str(&bad.5).unwrap();
    assert_eq!(outcome["error"]["code"], json!("not_found"));
    app.stop().await;
}

/// The first answer to a losing write can be lost on the network; its retry
/// must still bring the server's state, or the device keeps the losing value.
async fn a_retried_losing_write_still_gets_the_server_state(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let token = app.register("lostack@example.com").await;
    let (_, _, i, first) = seed(&app, &token, "A").await;
    let cursor = first["syncTimestamp"].clone();
    app.sync(
        &token,
        "A",
        cursor.clone(),
        vec![change(
            "w-new",
            &i,
            "item",
            "update",
            json!({"title": "Newer"}),
            &at(20),
            "A",
        )],
    )
    .await;
    let losing = vec![change(
        "w-old",
        &i,
        "item",
        "update",
        json!({"title": "Older"}),
        &at(10),
        "B",
    )];
    let _lost_response = app.sync(&token, "B", cursor.clone(), losing.clone()).await;
    // B never saw that answer and retries with its old cursor... and with a
    // cursor that already covers the record: both must carry the server state.
    for c in [cursor, _lost_response["syncTimestamp"].clone()] {
        let retry = app.sync(&token, "B", c, losing.clone()).await;
        let ack = &acks(&retry)[0];
        assert_eq!(ack["duplicate"], json!(true));
        assert_eq!(ack["conflict"], json!(true));
        assert_eq!(
            item(&retry, &i).expect("server state resent")["title"],
            json!("Newer")
        );
    }
    app.stop().await;
}

/// A device pushing with no cursor (first sync after working offline) still
/// receives the tombstones its delete cascaded to.
async fn a_from_scratch_push_receives_its_cascade_tombstones(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let token = app.register("scratchdel@example.com").await;
    let (s, c, i, _) = seed(&app, &token, "A").await;
    let d = app
        .sync(
            &token,
            "A",
            Value::Null,
            vec![change(
                "sd",
                &s,
                "space",
                "delete",
                Value::Null,
                &at(30),
                "A",
            )],
        )
        .await;
    let recs = records_by_id(&d["serverUpdates"]);
    for id in [&c, &i] {
        assert!(
            recs.get(id).is_some_and(|r| r["deletedAt"].is_string()),
            "{id} tombstone missing: {d}"
        );
    }
    app.stop().await;
}

/// A device whose first sync (no cursor) is a retry of a create, when the
/// record was deleted meanwhile, must learn of the tombstone.
async fn a_from_scratch_replay_receives_the_tombstone(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let token = app.register("replay@example.com").await;
    let x = new_id();
    let create = vec![change(
        "a1",
        &x,
        "item",
        "create",
        json!({"title": "X"}),
        &at(1),
        "A",
    )];
    let _lost = app.sync(&token, "A", Value::Null, create.clone()).await;
    app.sync(
        &token,
        "B",
        Value::Null,
        vec![change("b1", &x, "item", "delete", Value::Null, &at(2), "B")],
    )
    .await;
    let retry = app.sync(&token, "A", Value::Null, create).await;
    assert_eq!(acks(&retry)[0]["duplicate"], json!(true));
    assert!(
        item(&retry, &x).expect("tombstone returned")["deletedAt"].is_string(),
        "{retry}"
    );
    app.stop().await;
}

/// Pulls are compressed when the client accepts it, and only then.
async fn pulls_are_compressed_on_request(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let token = app.register("zip@example.com").await;
    let changes: Vec<Value> = (0..200)
        .map(|n| {
            change(
                &format!("z{n}"),
                &new_id(),
                "item",
                "create",
                json!({"title": format!("item {n}"), "notes": "same words again"}),
                &at(n),
                "A",
            )
        })
        .collect();
    app.sync(&token, "A", Value::Null, changes).await;
    let get = |enc: Option<&'static str>| {
        let mut req = app
            .http
            .get(app.url("/api/sync/initial"))
            .bearer_auth(&token);
        if let Some(e) = enc {
            req = req.header("accept-encoding", e);
        }
        req.send()
    };
    let plain = get(None).await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    let plain_len = plain.bytes().await.unwrap().len();
    for enc in ["gzip", "zstd"] {
        let res = get(Some(enc)).await.unwrap();
        assert_eq!(res.headers()["content-encoding"], enc);
        let len = res.bytes().await.unwrap().len();
        assert!(
            len * 3 < plain_len,
            "{enc}: {len} bytes vs {plain_len} plain"
        );
    }
    app.stop().await;
}

backend_tests!(
    pulls_are_compressed_on_request,
    original_curl_example_works,
    other_device_receives_exactly_the_new_changes,
    field_updates_keep_other_fields,
    concurrent_edits_of_different_fields_both_survive,
    an_older_write_loses_and_gets_the_server_state,
    deletes_win_cascade_and_propagate,
    deleting_a_category_deletes_its_items_only,
    retries_have_exactly_one_effect,
    users_are_isolated,
    every_bad_op_is_acked_remembered_and_skipped,
    bad_requests_are_rejected_whole,
    pulls_page_with_has_more,
    external_data_and_server_fields_are_not_stored,
    future_timestamps_are_clamped,
    the_writer_gets_no_echo_unless_something_else_changed,
    legacy_date_cursors_are_a_best_effort_start,
    the_sync_log_audits_every_applied_operation,
    a_retried_losing_write_still_gets_the_server_state,
    a_from_scratch_push_receives_its_cascade_tombstones,
    a_from_scratch_replay_receives_the_tombstone,
);
