//! Mongoose-compatible casts over HTTP: what the original stored through its
//! schemas (a numeric `movieId` as a string, `"true"` as `true`) is stored,
//! returned and acknowledged the same way here.

use serde_json::{json, Value};

use tidesync_testkit::*;

fn acks(data: &Value) -> &Vec<Value> {
    data["acknowledged"].as_array().expect("acknowledged")
}

async fn scalars_are_cast_stored_and_returned_cast(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let token = app.register("casts@example.com").await;
    let (space, item) = (new_id(), new_id());
    let data = app
        .sync(
            &token,
            "A",
            Value::Null,
            vec![
                change("c-s", &space, "space", "create", json!({"name": "Personal", "order": "2"}), &at(0), "A"),
                change(
                    "c-i",
                    &item,
                    "item",
                    "create",
                    json!({"title": "Watch Inception", "type": "movie", "movieId": 27205,
                           "spaceId": space, "isCompleted": "true", "completedAt": 1_735_689_605_000i64,
                           "tags": [2010, "sci-fi"], "poster": "/inception.jpg"}),
                    &at(1),
                    "A",
                ),
            ],
        )
        .await;
    let a = acks(&data);
    assert_eq!(a[0]["success"], json!(true), "{}", a[0]);
    assert_eq!(a[0]["coercedFields"], json!(["order"]), "{}", a[0]);
    assert_eq!(a[1]["success"], json!(true), "{}", a[1]);
    assert_eq!(
        a[1]["coercedFields"],
        json!(["completedAt", "isCompleted", "movieId", "tags"]),
        "{}",
        a[1]
    );
    // ignoredFields is unaffected by casting.
    assert_eq!(a[1]["ignoredFields"], json!(["poster"]));

    // Another device receives the cast values.
    let b = app.sync(&token, "B", Value::Null, vec![]).await;
    let recs = records_by_id(&b["serverUpdates"]);
    let it = &recs[&item];
    assert_eq!(it["movieId"], json!("27205"));
    assert_eq!(it["isCompleted"], json!(true));
    assert_eq!(it["completedAt"], json!(at(5)));
    assert_eq!(it["tags"], json!(["2010", "sci-fi"]));
    assert_eq!(it["type"], json!("movie"));
    assert_eq!(recs[&space]["order"], json!(2));
    // And so does a first sync through GET /api/sync/initial.
    let initial = app.get("/api/sync/initial", Some(&token)).await;
    assert_eq!(initial.status, 200, "{}", initial.body);
    let recs = records_by_id(&initial.body["data"]);
    assert_eq!(recs[&item]["movieId"], json!("27205"));

    // An update casts too; a field sent in its own type is not listed.
    let up = app
        .sync(
            &token,
            "B",
            b["syncTimestamp"].clone(),
            vec![change(
                "c-u",
                &item,
                "item",
                "update",
                json!({"isCompleted": "false", "notes": "with Ann", "bookId": false}),
                &at(10),
                "B",
            )],
        )
        .await;
    let ack = &acks(&up)[0];
    assert_eq!(ack["success"], json!(true), "{ack}");
    assert_eq!(
        ack["coercedFields"],
        json!(["bookId", "isCompleted"]),
        "{ack}"
    );
    let a2 = app
        .sync(&token, "A", data["syncTimestamp"].clone(), vec![])
        .await;
    let it = &records_by_id(&a2["serverUpdates"])[&item];
    assert_eq!(it["isCompleted"], json!(false));
    assert_eq!(it["bookId"], json!("false"));
    assert_eq!(it["movieId"], json!("27205"), "untouched by the update");
    app.stop().await;
}

async fn a_retry_returns_the_stored_ack_with_its_coerced_fields(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let token = app.register("casts-retry@example.com").await;
    let item = new_id();
    let op = change(
        "r-1",
        &item,
        "item",
        "create",
        json!({"title": 1984, "bookId": 12345}),
        &at(0),
        "A",
    );
    let first = app.sync(&token, "A", Value::Null, vec![op.clone()]).await;
    let again = app.sync(&token, "A", Value::Null, vec![op]).await;
    let (a, b) = (&acks(&first)[0], &acks(&again)[0]);
    assert_eq!(a["coercedFields"], json!(["bookId", "title"]), "{a}");
    assert_eq!(b["duplicate"], json!(true), "{b}");
    assert_eq!(b["coercedFields"], a["coercedFields"], "{b}");
    let all = app.sync(&token, "B", Value::Null, vec![]).await;
    let it = &records_by_id(&all["serverUpdates"])[&item];
    assert_eq!(it["title"], json!("1984"));
    assert_eq!(it["bookId"], json!("12345"));
    app.stop().await;
}

async fn values_mongoose_cannot_cast_are_rejected_per_op(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let token = app.register("casts-bad@example.com").await;
    let good = new_id();
    let bad: Vec<(Value, &str)> = vec![
        (json!({"title": "x", "movieId": {"id": 27205}}), "movieId"),
        (json!({"title": ["Watch Inception"]}), "title"),
        (json!({"title": "x", "isCompleted": "maybe"}), "isCompleted"),
        (json!({"title": "x", "order": "abc"}), "order"),
        (json!({"title": "x", "completedAt": true}), "completedAt"),
        (json!({"title": "x", "type": 5}), "type"),
    ];
    let mut batch: Vec<Value> = bad
        .iter()
        .enumerate()
        .map(|(n, (d, _))| {
            change(
                &format!("x-{n}"),
                &new_id(),
                "item",
                "create",
                d.clone(),
                &at(0),
                "A",
            )
        })
        .collect();
    batch.push(change(
        "x-ok",
        &good,
        "item",
        "create",
        json!({"title": "still applied", "movieId": 1}),
        &at(1),
        "A",
    ));
    let r = app.sync(&token, "A", Value::Null, batch).await;
    let a = acks(&r);
    for (ack, (_, field)) in a.iter().zip(&bad) {
        assert_eq!(ack["success"], json!(false), "{ack}");
        assert_eq!(ack["error"]["code"], json!("validation_failed"), "{ack}");
        let msg = ack["error"]["message"].as_str().unwrap();
        assert!(msg.contains(field), "{ack}: should name {field}");
        assert!(ack.get("coercedFields").is_none(), "{ack}");
    }
    assert_eq!(a[bad.len()]["success"], json!(true));
    // Nothing of the rejected ops was stored: only the good item exists.
    let all = app.sync(&token, "B", Value::Null, vec![]).await;
    let recs = records_by_id(&all["serverUpdates"]);
    assert_eq!(recs.keys().collect::<Vec<_>>(), vec![&good], "{all}");
    assert_eq!(recs[&good]["movieId"], json!("1"));
    app.stop().await;
}

backend_tests!(
    scalars_are_cast_stored_and_returned_cast,
    a_retry_returns_the_stored_ack_with_its_coerced_fields,
    values_mongoose_cannot_cast_are_rejected_per_op
);
