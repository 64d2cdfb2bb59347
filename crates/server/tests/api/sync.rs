//! The sync protocol's rules, each shown over HTTP on both backends.

use serde_json::{json, Value};

use tidesync_testkit::*;

pub(crate) fn acks(data: &Value) -> &Vec<Value> {
    data["acknowledged"].as_array().expect("acknowledged")
}

pub(crate) fn item<'a>(data: &'a Value, id: &str) -> Option<&'a Value> {
    data["serverUpdates"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == json!(id))
}

pub(crate) fn count(data: &Value) -> usize {
    records_by_id(&data["serverUpdates"]).len()
}

/// A space, a category in it and an item in that, created by `device`.
pub(crate) async fn seed(
    app: &TestApp,
    token: &str,
    device: &str,
) -> (String, String, String, Value) {
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
    app.sync(
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
    // B had not received A's write (its cursor is from before it): the
    // two writes are concurrent, and the later timestamp wins.
    let b = app
        .sync(
            &token,
            "B",
            cursor.clone(),
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

    // A tie on the timestamp is decided by deviceId, the same on every
    // server (between concurrent writes: Z had not received A's either).
    let t = app
        .sync(
            &token,
            "Z",
            cursor.clone(),
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

/// The case: device B edits a note; device A, whose clock is a day
/// behind, pulls it, then edits the same field. A's edit came after B's: it
/// wins on both devices (it lost, silently, by its older timestamp).
async fn a_later_edit_wins_whatever_the_device_clock(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let token = app.register("clock@example.com").await;
    let (_, _, i, first) = seed(&app, &token, "A").await;
    let b = app
        .sync(
            &token,
            "B",
            first["syncTimestamp"].clone(),
            vec![change(
                "b1",
                &i,
                "item",
                "update",
                json!({"notes": "B's note"}),
                &at(100),
                "B",
            )],
        )
        .await;
    assert_eq!(acks(&b)[0]["success"], json!(true));
    // A pulls B's edit, then edits the note with its clock a day behind.
    let pulled = app
        .sync(&token, "A", first["syncTimestamp"].clone(), vec![])
        .await;
    assert_eq!(item(&pulled, &i).unwrap()["notes"], json!("B's note"));
    let a = app
        .sync(
            &token,
            "A",
            pulled["syncTimestamp"].clone(),
            vec![change(
                "a1",
                &i,
                "item",
                "update",
                json!({"notes": "A's later note"}),
                &at(100 - 86_400),
                "A",
            )],
        )
        .await;
    let ack = &acks(&a)[0];
    assert_eq!(ack["success"], json!(true));
    assert!(ack["conflict"].is_null(), "{ack}");
    // Both devices end with A's note.
    for (device, cursor) in [
        ("A", pulled["syncTimestamp"].clone()),
        ("B", b["syncTimestamp"].clone()),
    ] {
        let got = app.sync(&token, device, cursor, vec![]).await;
        let all = app.sync(&token, "fresh", Value::Null, vec![]).await;
        assert_eq!(
            item(&all, &i).unwrap()["notes"],
            json!("A's later note"),
            "{device}"
        );
        if let Some(r) = item(&got, &i) {
            assert_eq!(r["notes"], json!("A's later note"), "{device}");
        }
    }
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

backend_tests!(
    original_curl_example_works,
    other_device_receives_exactly_the_new_changes,
    field_updates_keep_other_fields,
    concurrent_edits_of_different_fields_both_survive,
    an_older_write_loses_and_gets_the_server_state,
    a_later_edit_wins_whatever_the_device_clock,
    the_writer_gets_no_echo_unless_something_else_changed,
);
