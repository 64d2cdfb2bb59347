//! What is stored and logged: no external or server fields, clamped timestamps, the audit log.

use serde_json::{json, Value};

use tidesync_testkit::*;

use crate::sync::{acks, item, seed};

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

/// `(operation_id, device_id, entity_type, operation, changes, ack)` rows.
pub(crate) async fn audit_log(
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

backend_tests!(
    external_data_and_server_fields_are_not_stored,
    future_timestamps_are_clamped,
    the_sync_log_audits_every_applied_operation,
);
