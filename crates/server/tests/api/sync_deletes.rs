//! Deletes win and cascade, and their tombstones reach every device, over HTTP on both backends.

use serde_json::{json, Value};

use tidesync_testkit::*;

use crate::sync::{acks, count, item, seed};

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

backend_tests!(
    deletes_win_cascade_and_propagate,
    deleting_a_category_deletes_its_items_only,
    a_from_scratch_push_receives_its_cascade_tombstones,
);
