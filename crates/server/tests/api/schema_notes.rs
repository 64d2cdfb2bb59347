//! A server built with another schema than the built-in (issue 21): the
//! notes example of docs/SCHEMA.md (`crates/protocol/schema/notes.json`:
//! notebook, shareable → note → checkItem), over HTTP on both backends.
//! Validation by the schema's keywords, references that must exist,
//! cascades along `x-parent`, sharing a notebook like a space, and
//! `serverUpdates` with one array per plural.

use serde_json::{json, Value};
use tidesync_protocol::schema::Schema;
use tidesync_testkit::*;

const NOTES: &str = include_str!("../../../protocol/schema/notes.json");

async fn notes_app(tdb: &TestDb) -> TestApp {
    spawn_with_schema(tdb, Schema::parse(NOTES).expect("the notes schema checks")).await
}

fn create(op: &str, id: &str, entity: &str, data: Value, secs: i64, device: &str) -> Value {
    change(op, id, entity, "create", data, &at(secs), device)
}

fn ack(d: &Value, i: usize) -> &Value {
    &d["acknowledged"][i]
}

/// Every record of a `serverUpdates` of the notes schema, by id.
fn notes_by_id(updates: &Value) -> std::collections::BTreeMap<String, Value> {
    let mut out = std::collections::BTreeMap::new();
    for kind in ["notebooks", "notes", "checkItems"] {
        for r in updates[kind].as_array().into_iter().flatten() {
            out.insert(r["id"].as_str().unwrap().to_owned(), r.clone());
        }
    }
    out
}

/// A notebook with a note holding one check item, created by device A.
async fn seed(app: &TestApp, token: &str) -> (String, String, String, Value) {
    let (nb, n, ci) = (new_id(), new_id(), new_id());
    let d = app
        .sync(
            token,
            "A",
            Value::Null,
            vec![
                create(
                    "nb",
                    &nb,
                    "notebook",
                    json!({"title": "Work", "color": "red"}),
                    1,
                    "A",
                ),
                create(
                    "n",
                    &n,
                    "note",
                    json!({"notebookId": nb, "body": "Buy", "labels": ["home"], "rank": 1}),
                    2,
                    "A",
                ),
                create(
                    "ci",
                    &ci,
                    "checkItem",
                    json!({"noteId": n, "text": "milk"}),
                    3,
                    "A",
                ),
            ],
        )
        .await;
    for i in 0..3 {
        assert_eq!(ack(&d, i)["success"], json!(true), "{d}");
    }
    (nb, n, ci, d)
}

async fn notes_sync_with_their_own_arrays_and_merge_per_field(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = notes_app(&tdb).await;
    let token = app.register("notes@example.com").await;
    let (nb, n, ci, _) = seed(&app, &token).await;

    // Another device pulls them, each in its collection's array, in the
    // schema's order, and no bucket-list array.
    let res = app
        .http
        .post(app.url("/api/sync"))
        .bearer_auth(&token)
        .json(&json!({"deviceId": "B", "lastSyncTimestamp": null}))
        .send()
        .await
        .unwrap();
    let text = res.text().await.unwrap();
    let pos = |k: &str| text.find(&format!("\"{k}\":")).unwrap_or(usize::MAX);
    assert!(
        pos("notebooks") < pos("notes") && pos("notes") < pos("checkItems"),
        "{text}"
    );
    assert!(pos("checkItems") < usize::MAX, "{text}");
    for absent in ["spaces", "categories", "items"] {
        assert_eq!(pos(absent), usize::MAX, "{text}");
    }
    let b0: Value = serde_json::from_str(&text).unwrap();
    let u = &b0["data"]["serverUpdates"];
    assert_eq!(u["notebooks"][0]["id"], json!(nb));
    assert_eq!(u["notebooks"][0]["color"], json!("red"));
    assert_eq!(u["notes"][0]["id"], json!(n));
    assert_eq!(u["notes"][0]["notebookId"], json!(nb));
    assert_eq!(u["notes"][0]["labels"], json!(["home"]));
    // Every property of the collection is listed, null when never set.
    assert_eq!(u["notes"][0]["dueAt"], Value::Null);
    assert_eq!(u["checkItems"][0]["id"], json!(ci));
    assert_eq!(u["checkItems"][0]["noteId"], json!(n));
    assert_eq!(u["checkItems"][0]["done"], Value::Null);
    let b_cursor = b0["data"]["syncTimestamp"].clone();

    // A changes the body, B concurrently pins it: both fields survive.
    let a1 = app
        .sync(
            &token,
            "A",
            Value::Null,
            vec![change(
                "u1",
                &n,
                "note",
                "update",
                json!({"body": "Buy bread"}),
                &at(10),
                "A",
            )],
        )
        .await;
    assert_eq!(ack(&a1, 0)["success"], json!(true), "{a1}");
    let b1 = app
        .sync(
            &token,
            "B",
            b_cursor,
            vec![change(
                "u2",
                &n,
                "note",
                "update",
                json!({"pinned": true, "dueAt": "2025-06-01T10:00:00+02:00"}),
                &at(11),
                "B",
            )],
        )
        .await;
    assert_eq!(ack(&b1, 0)["success"], json!(true), "{b1}");
    let all = app.sync(&token, "C", Value::Null, vec![]).await;
    let note = &notes_by_id(&all["serverUpdates"])[&n];
    assert_eq!(note["body"], json!("Buy bread"));
    assert_eq!(note["pinned"], json!(true));
    assert_eq!(note["dueAt"], json!("2025-06-01T08:00:00.000Z"));

    // The initial-sync pages hold the same arrays at top level.
    let page = app.get("/api/sync/initial", Some(token.as_str())).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.body["data"]["notebooks"].as_array().unwrap().len(), 1);
    assert_eq!(page.body["data"]["notes"].as_array().unwrap().len(), 1);
    assert_eq!(page.body["data"]["checkItems"].as_array().unwrap().len(), 1);
    assert!(page.body["data"].get("items").is_none(), "{}", page.body);

    // The server serves the schema it runs.
    let schema = app.get("/api/schema", None).await;
    assert_eq!(schema.status, 200);
    assert!(
        schema.body["collections"]["checkItem"].is_object(),
        "{}",
        schema.body
    );
    app.stop().await;
}

async fn each_keyword_of_the_schema_refuses_its_values(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = notes_app(&tdb).await;
    let token = app.register("keywords@example.com").await;
    let (nb, n, _, _) = seed(&app, &token).await;
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "notebook",
            json!({"title": "x".repeat(121)}),
            "title: must be at most 120 characters",
        ),
        (
            "notebook",
            json!({"title": "T", "color": "purple"}),
            "color: must be one of \"red\", \"green\", \"blue\"",
        ),
        (
            "note",
            json!({"notebookId": nb, "rank": -1}),
            "rank: must be at least 0",
        ),
        (
            "note",
            json!({"notebookId": nb, "labels": vec!["l"; 21]}),
            "labels: must have at most 20 items",
        ),
        (
            "note",
            json!({"notebookId": nb, "labels": ["ok", "y".repeat(33)]}),
            "labels: item 1: must be at most 32 characters",
        ),
        (
            "note",
            json!({"notebookId": "nope"}),
            "notebookId: must be the UUID of a notebook",
        ),
        (
            "note",
            json!({"notebookId": nb, "dueAt": "tomorrow"}),
            "dueAt: must be an RFC 3339 date-time with an offset, within years 0000-9999",
        ),
        (
            "note",
            json!({"notebookId": nb, "pinned": "yes"}),
            "pinned: must be true or false",
        ),
        (
            "note",
            json!({"body": "no notebook"}),
            "notebookId: is required to create a note",
        ),
        (
            "checkItem",
            json!({"noteId": n}),
            "text: is required to create a checkItem",
        ),
    ];
    let changes: Vec<Value> = cases
        .iter()
        .enumerate()
        .map(|(i, (entity, data, _))| {
            create(
                &format!("bad-{i}"),
                &new_id(),
                entity,
                data.clone(),
                20,
                "A",
            )
        })
        .collect();
    let d = app.sync(&token, "A", Value::Null, changes).await;
    for (i, (entity, _, message)) in cases.iter().enumerate() {
        let a = ack(&d, i);
        assert_eq!(a["success"], json!(false), "{entity} {i}: {a}");
        assert_eq!(a["error"]["code"], json!("validation_failed"), "{a}");
        assert_eq!(a["error"]["message"], json!(message), "{a}");
    }
    // A bucket-list type is no type of this server.
    let d = app
        .sync(
            &token,
            "A",
            Value::Null,
            vec![create(
                "it",
                &new_id(),
                "item",
                json!({"title": "x"}),
                21,
                "A",
            )],
        )
        .await;
    assert_eq!(
        ack(&d, 0)["error"]["message"],
        json!("entityType must be notebook, note or checkItem"),
        "{d}"
    );
    // A reference to no record: unknown_reference, nothing stored.
    let (ghost, orphan) = (new_id(), new_id());
    let d = app
        .sync(
            &token,
            "A",
            Value::Null,
            vec![
                create("o", &orphan, "note", json!({"notebookId": ghost}), 22, "A"),
                create(
                    "o2",
                    &new_id(),
                    "checkItem",
                    json!({"noteId": ghost, "text": "t"}),
                    22,
                    "A",
                ),
            ],
        )
        .await;
    assert_eq!(
        ack(&d, 0)["error"]["code"],
        json!("unknown_reference"),
        "{d}"
    );
    assert_eq!(
        ack(&d, 0)["error"]["message"],
        json!("notebookId: no notebook with this id")
    );
    assert_eq!(
        ack(&d, 1)["error"]["code"],
        json!("unknown_reference"),
        "{d}"
    );
    assert_eq!(
        ack(&d, 1)["error"]["message"],
        json!("noteId: no note with this id")
    );
    assert!(!notes_by_id(&d["serverUpdates"]).contains_key(&orphan));
    app.stop().await;
}

async fn deleting_a_notebook_cascades_to_its_notes_and_their_check_items(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = notes_app(&tdb).await;
    let token = app.register("cascade@example.com").await;
    let (nb, n, ci, _) = seed(&app, &token).await;
    // A second notebook's note stays.
    let (nb2, n2) = (new_id(), new_id());
    app.sync(
        &token,
        "A",
        Value::Null,
        vec![
            create("nb2", &nb2, "notebook", json!({"title": "Home"}), 4, "A"),
            create("n2", &n2, "note", json!({"notebookId": nb2}), 5, "A"),
        ],
    )
    .await;
    let b0 = app.sync(&token, "B", Value::Null, vec![]).await;
    assert_eq!(notes_by_id(&b0["serverUpdates"]).len(), 5);
    let d = app
        .sync(
            &token,
            "A",
            Value::Null,
            vec![change(
                "d",
                &nb,
                "notebook",
                "delete",
                Value::Null,
                &at(30),
                "A",
            )],
        )
        .await;
    assert_eq!(ack(&d, 0)["success"], json!(true), "{d}");
    // The other device receives every tombstone, each keeping its parent.
    let b1 = app
        .sync(&token, "B", b0["syncTimestamp"].clone(), vec![])
        .await;
    let recs = notes_by_id(&b1["serverUpdates"]);
    assert_eq!(recs.len(), 3, "{b1}");
    for id in [&nb, &n, &ci] {
        assert_eq!(recs[id]["deletedAt"], json!(at(30)), "{id}: {b1}");
    }
    assert_eq!(recs[&n]["notebookId"], json!(nb));
    assert_eq!(recs[&ci]["noteId"], json!(n));
    assert_eq!(
        recs[&ci]["text"],
        Value::Null,
        "a tombstone keeps only its references"
    );
    // A check item written under the deleted note is stored deleted.
    let late = new_id();
    let d = app
        .sync(
            &token,
            "A",
            Value::Null,
            vec![create(
                "late",
                &late,
                "checkItem",
                json!({"noteId": n, "text": "late"}),
                40,
                "A",
            )],
        )
        .await;
    assert_eq!(ack(&d, 0)["success"], json!(true), "{d}");
    assert!(is_deleted(&notes_by_id(&d["serverUpdates"])[&late]), "{d}");
    // The other notebook is untouched.
    let all = app.sync(&token, "C", Value::Null, vec![]).await;
    let live = notes_by_id(&all["serverUpdates"]);
    assert!(live.contains_key(&nb2) && live.contains_key(&n2), "{all}");
    assert!(!live.contains_key(&n), "from scratch: live records only");
    app.stop().await;
}

async fn a_notebook_is_shared_like_a_space(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = notes_app(&tdb).await;
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let (nb, n, ci, _) = seed(&app, &alice).await;
    // A personal note of Alice's other notebook does not move.
    let (other, private) = (new_id(), new_id());
    app.sync(
        &alice,
        "A",
        Value::Null,
        vec![
            create("o", &other, "notebook", json!({"title": "Private"}), 4, "A"),
            create("p", &private, "note", json!({"notebookId": other}), 5, "A"),
        ],
    )
    .await;
    let res = app
        .post(
            &format!("/api/spaces/{nb}/members"),
            Some(alice.as_str()),
            json!({"email": "bob@example.com", "role": "editor"}),
        )
        .await;
    assert_eq!(res.status, 202, "{}", res.body);
    let invitation = res.body["data"]["invitation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .post(
            &format!("/api/invitations/{invitation}/accept"),
            Some(bob.as_str()),
            json!({}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    // Bob pulls the notebook, its note and its check item, nothing else.
    let b = app.sync(&bob, "bob-1", Value::Null, vec![]).await;
    let recs = notes_by_id(&b["serverUpdates"]);
    let mut ids: Vec<&String> = recs.keys().collect();
    ids.sort();
    let mut want = vec![&nb, &n, &ci];
    want.sort();
    assert_eq!(ids, want, "{b}");
    // An editor writes into it; Alice receives the write.
    let bobs = new_id();
    let d = app
        .sync(
            &bob,
            "bob-1",
            b["syncTimestamp"].clone(),
            vec![create(
                "b",
                &bobs,
                "checkItem",
                json!({"noteId": n, "text": "eggs"}),
                50,
                "bob-1",
            )],
        )
        .await;
    assert_eq!(ack(&d, 0)["success"], json!(true), "{d}");
    let a = app.sync(&alice, "A2", Value::Null, vec![]).await;
    let recs = notes_by_id(&a["serverUpdates"]);
    assert_eq!(recs[&bobs]["text"], json!("eggs"), "{a}");
    assert!(recs.contains_key(&private));
    // Bob cannot reach Alice's other notebook.
    let d = app
        .sync(
            &bob,
            "bob-1",
            Value::Null,
            vec![create(
                "x",
                &new_id(),
                "note",
                json!({"notebookId": other}),
                51,
                "bob-1",
            )],
        )
        .await;
    assert_eq!(
        ack(&d, 0)["error"]["code"],
        json!("unknown_reference"),
        "{d}"
    );
    app.stop().await;
}

backend_tests!(
    notes_sync_with_their_own_arrays_and_merge_per_field,
    each_keyword_of_the_schema_refuses_its_values,
    deleting_a_notebook_cascades_to_its_notes_and_their_check_items,
    a_notebook_is_shared_like_a_space,
);
