//! The write path under pressure and failure (issue 9): SQLite's supervised
//! writer, abandoned requests, bounded queues, and each of the five
//! failures an adversarial run found, each with a test that fails without
//! its fix.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tidesync_client::ErrorCode;
use tidesync_store::{Store, StoreError};
use tidesync_store_sqlite::{SqliteOptions, SqliteStore};
use tidesync_testkit::*;

/// The server on a SQLite store this test keeps a handle on.
pub(crate) async fn sqlite_app(
    options: SqliteOptions,
    tweak: impl FnOnce(&mut tidesync::config::ServeArgs),
) -> (TestApp, Arc<SqliteStore>, TestDb) {
    let tdb = TestDb::new(Db::Sqlite).await;
    let store = Arc::new(SqliteStore::open(&tdb.url, options).expect("open"));
    let mut args = test_args(&tdb);
    tweak(&mut args);
    let app = spawn_with_store(args, store.clone() as Arc<dyn Store>).await;
    (app, store, tdb)
}

fn space(op: &str) -> (String, Value) {
    let id = new_id();
    let c = change(
        op,
        &id,
        "space",
        "create",
        json!({"name": op}),
        &at(0),
        "dev",
    );
    (id, c)
}

/// Holds the writer inside a job until the returned sender fires (or 20 s).
async fn hold_writer(store: &Arc<SqliteStore>) -> std::sync::mpsc::Sender<()> {
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let (started, running) = tokio::sync::oneshot::channel::<()>();
    let s = store.clone();
    tokio::spawn(async move {
        let _ = s
            .write(move |_| {
                let _ = started.send(());
                let _ = wait.recv_timeout(Duration::from_secs(20));
                Ok(())
            })
            .await;
    });
    running.await.expect("the holding job started");
    release
}

async fn live_ids(app: &TestApp, token: &str) -> Vec<String> {
    let all = pull_everything(&app.client(token), "checker", None, None, "live ids").await;
    all.live().keys().map(|k| (*k).clone()).collect()
}

/// A panic inside a write job fails that request alone (500, logged); the
/// writer goes on and the next push succeeds.
async fn a_panicking_write_job_fails_alone_and_the_next_push_succeeds() {
    let (app, store, _tdb) = sqlite_app(SqliteOptions::default(), |_| {}).await;
    let token = app.register("panic@example.com").await;
    let boom = store
        .write(|_| -> Result<(), StoreError> { panic!("injected into a write job") })
        .await;
    assert!(matches!(boom, Err(StoreError::Internal(_))), "{boom:?}");
    let (id, c) = space("after-the-panic");
    let data = app.sync(&token, "dev", Value::Null, vec![c]).await;
    assert_eq!(data["acknowledged"][0]["success"], json!(true), "{data}");
    assert_eq!(live_ids(&app, &token).await, vec![id]);
    let health = app.get("/health", None).await;
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(health.body["writer"]["panics"], json!(1));
    assert_eq!(health.body["writer"]["alive"], json!(true));
    app.stop().await;
}

/// With the queue full, a push is refused at once with 503 `busy` and
/// Retry-After, /health says the writer cannot take work, and everything
/// recovers when the queue drains.
async fn a_full_writer_queue_answers_busy_with_retry_after() {
    let options = SqliteOptions {
        writer_queue_depth: 2,
        ..SqliteOptions::default()
    };
    let (app, store, _tdb) = sqlite_app(options, |_| {}).await;
    let token = app.register("busy@example.com").await;
    let release = hold_writer(&store).await;
    let client = app.client(&token);
    let mut queued = vec![];
    for n in 0..2 {
        let c = client.clone();
        queued.push(tokio::spawn(async move {
            let (_, ch) = space(&format!("queued-{n}"));
            c.sync(&push_body("dev", vec![ch])).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let health = app.get("/health", None).await;
    assert_eq!(
        health.status, 503,
        "a full queue cannot take work: {}",
        health.body
    );
    assert_eq!(health.body["writer"]["queueDepth"], json!(2));
    let t = Instant::now();
    let (_, ch) = space("overflow");
    let e = expect_api_error(
        client.sync(&push_body("dev", vec![ch])).await,
        503,
        ErrorCode::Busy,
    );
    assert_eq!(e.retry_after, Some(Duration::from_secs(1)));
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "refused without waiting"
    );
    release.send(()).unwrap();
    for q in queued {
        q.await.unwrap().expect("the queued pushes ran");
    }
    assert_eq!(app.get("/health", None).await.status, 200);
    app.stop().await;
}

/// A push whose request timed out before the writer reached it is not
/// applied (it used to commit later); its retry then applies it once.
async fn a_push_abandoned_in_the_queue_is_not_applied() {
    let (app, store, _tdb) = sqlite_app(SqliteOptions::default(), |a| {
        a.request_timeout = Duration::from_secs(1);
    })
    .await;
    let token = app.register("gone@example.com").await;
    let release = hold_writer(&store).await;
    let (id, c) = space("abandoned");
    let res = app
        .sync_raw(
            &token,
            json!({"deviceId": "dev", "lastSyncTimestamp": null, "changes": [c.clone()]}),
        )
        .await;
    res.assert_error(503, "timeout");
    release.send(()).unwrap();
    // The writer is free again: whatever was queued has run.
    store.write(|_| Ok(())).await.unwrap();
    assert!(live_ids(&app, &token).await.is_empty(), "not applied");
    let retry = app.sync(&token, "dev", Value::Null, vec![c]).await;
    let ack = &retry["acknowledged"][0];
    assert!(
        ack["success"] == json!(true) && ack["duplicate"].is_null(),
        "{ack}"
    );
    assert_eq!(live_ids(&app, &token).await, vec![id]);
    app.stop().await;
}

/// A push that times out while the database holds it is rolled back, on
/// both backends: the handler is reached (unlike a half-sent body), waits on
/// a lock held from outside, and its effect is gone when the lock goes.
async fn a_push_that_times_out_in_the_database_has_no_effect(db: Db) {
    let tdb = TestDb::new(db).await;
    let mut args = test_args(&tdb);
    args.request_timeout = Duration::from_secs(1);
    let app = spawn_with(args).await;
    let client = app.user("held@example.com").await;
    let token = client.token().unwrap().to_owned();
    let me = client.me().await.unwrap().id;
    let (id, c) = space("held");
    let body = json!({"deviceId": "dev", "lastSyncTimestamp": null, "changes": [c.clone()]});
    match db {
        Db::Sqlite => {
            // Another process holds the write lock: the writer waits in BEGIN.
            let file = tidesync_store::sqlite_file(&tdb.url).unwrap();
            let locker = rusqlite::Connection::open(file).unwrap();
            locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
            app.sync_raw(&token, body)
                .await
                .assert_error(503, "timeout");
            tokio::time::sleep(Duration::from_millis(1500)).await;
            locker.execute_batch("ROLLBACK").unwrap();
        }
        Db::Postgres => {
            // Another session holds the user's scope lock: the push waits in it.
            use sqlx::Connection;
            let personal = app.store.view(me).await.unwrap().personal;
            let mut locker = sqlx::PgConnection::connect(&tdb.url).await.unwrap();
            sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
            sqlx::query("SELECT 1 FROM scopes WHERE id = $1 FOR UPDATE")
                .bind(personal.get())
                .execute(&mut locker)
                .await
                .unwrap();
            app.sync_raw(&token, body)
                .await
                .assert_error(503, "timeout");
            tokio::time::sleep(Duration::from_millis(1500)).await;
            sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(live_ids(&app, &token).await.is_empty(), "rolled back");
    let retry = app.sync(&token, "dev", Value::Null, vec![c]).await;
    assert!(
        retry["acknowledged"][0]["duplicate"].is_null(),
        "applied now, for the first time"
    );
    assert_eq!(live_ids(&app, &token).await, vec![id]);
    app.stop().await;
}

/// Records of 300 kB each (50,000 control characters, escaped six times
/// over): a page of `limit=5000` stops at the byte budget instead of
/// building a response of hundreds of megabytes, and paging gets them all.
async fn pages_are_bounded_by_bytes_whatever_the_records_size(db: Db) {
    let tdb = TestDb::new(db).await;
    let mut args = test_args(&tdb);
    args.max_page_bytes = 2 * 1024 * 1024;
    let app = spawn_with(args).await;
    let token = app.register("huge@example.com").await;
    let notes = "\u{1}".repeat(50_000);
    for b in 0..3 {
        let changes: Vec<Value> = (0..10)
            .map(|k| {
                change(
                    &format!("big-{b}-{k}"),
                    &new_id(),
                    "item",
                    "create",
                    json!({"title": "big", "notes": notes}),
                    &at(0),
                    "dev",
                )
            })
            .collect();
        app.sync(&token, "dev", Value::Null, changes).await;
    }
    let res = app
        .http
        .get(app.url("/api/sync/initial?limit=5000"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let bytes = res.bytes().await.unwrap();
    let page: Value = serde_json::from_slice(&bytes).unwrap();
    let n = page["data"]["items"].as_array().unwrap().len();
    assert!(page["data"]["hasMore"] == json!(true), "cut before the end");
    assert!((1..30).contains(&n), "{n} records in one page");
    assert!(
        bytes.len() <= 2 * 1024 * 1024 + 400_000,
        "{} bytes",
        bytes.len()
    );
    let all = pull_everything(&app.client(&token), "dev", None, None, "all").await;
    assert_eq!(all.live().len(), 30, "paging gets every record");
    app.stop().await;
}

/// A stream ticket whose account was deleted meanwhile is a 401 (it was a
/// 500: the spent ticket's row failed its foreign key).
async fn a_stream_ticket_of_a_deleted_account_is_401(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let client = app.user("ticket@example.com").await;
    let ticket = client.stream_ticket().await.unwrap().ticket;
    client.delete_account(PASSWORD).await.unwrap();
    let res = app
        .get(
            &format!("/api/sync/stream?deviceId=d&ticket={ticket}"),
            None,
        )
        .await;
    res.assert_error(401, "unauthorized");
    app.stop().await;
}

/// A date the server would write back out of range is refused on the way
/// in (it was stored, then returned as "-001-12-31T00:01:00.000Z").
async fn dates_outside_years_0000_to_9999_are_refused(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let token = app.register("dates@example.com").await;
    let item = |op: &str, data: Value, ts: Value| {
        json!({"operationId": op, "id": new_id(), "entityType": "item", "operation": "create",
               "data": data, "timestamp": ts})
    };
    let data = app
        .sync(
            &token,
            "dev",
            Value::Null,
            vec![
                item(
                    "a",
                    json!({"title": "t", "completedAt": "0000-01-01T00:00:00+23:59"}),
                    json!(null),
                ),
                item(
                    "b",
                    json!({"title": "t"}),
                    json!("9999-12-31T23:59:59-00:01"),
                ),
                item("c", json!({"title": "t"}), json!(253_402_300_800_000i64)),
                item(
                    "d",
                    json!({"title": "t", "completedAt": "0000-01-01T23:59:00+23:59"}),
                    json!(null),
                ),
            ],
        )
        .await;
    let acks = data["acknowledged"].as_array().unwrap();
    for ack in &acks[..3] {
        assert_eq!(ack["error"]["code"], json!("validation_failed"), "{ack}");
    }
    assert_eq!(acks[3]["success"], json!(true), "{}", acks[3]);
    // What is stored comes back in a form the server accepts again.
    let all = pull_everything(&app.client(&token), "dev", None, None, "all").await;
    let stored = all.live().values().next().unwrap()["completedAt"].clone();
    assert_eq!(stored, json!("0000-01-01T00:00:00.000Z"));
    app.stop().await;
}

pub(crate) fn push_body(device: &str, changes: Vec<Value>) -> tidesync_client::SyncBody {
    serde_json::from_value(
        json!({"deviceId": device, "lastSyncTimestamp": null, "changes": changes}),
    )
    .expect("a sync body")
}

backend_tests! {
    backend: [
        a_push_that_times_out_in_the_database_has_no_effect,
        pages_are_bounded_by_bytes_whatever_the_records_size,
        a_stream_ticket_of_a_deleted_account_is_401,
        dates_outside_years_0000_to_9999_are_refused,
    ],
    plain_async: [
        a_panicking_write_job_fails_alone_and_the_next_push_succeeds,
        a_full_writer_queue_answers_busy_with_retry_after,
        a_push_abandoned_in_the_queue_is_not_applied,
    ],
}
