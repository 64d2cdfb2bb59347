//! Retries have exactly one effect, and a retried write gets what it missed.

use serde_json::{json, Value};

use tidesync_testkit::*;

use crate::sync::{acks, item, seed};
use crate::sync_log::audit_log;

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

backend_tests!(
    retries_have_exactly_one_effect,
    a_retried_losing_write_still_gets_the_server_state,
    a_from_scratch_replay_receives_the_tombstone,
);
