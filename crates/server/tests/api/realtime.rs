//! Pokes: a device's stream hears of other devices' changes at once, and a
//! long-poll returns as soon as there is something new.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::*;

/// An open event stream, read event by event.
struct Events {
    res: reqwest::Response,
    buf: String,
}

impl Events {
    async fn open(app: &TestApp, token: &str, device: &str, last_id: Option<&str>) -> Events {
        let mut req = app
            .client
            .get(app.url(&format!("/api/sync/stream?deviceId={device}")))
            .bearer_auth(token);
        if let Some(id) = last_id {
            req = req.header("last-event-id", id);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        Events {
            res,
            buf: String::new(),
        }
    }

    /// The id of the next `change` event, or None when the stream ends.
    async fn next_change(&mut self) -> Option<String> {
        let deadline = Duration::from_secs(20);
        tokio::time::timeout(deadline, async {
            loop {
                while let Some(end) = self.buf.find("\n\n") {
                    let block: String = self.buf.drain(..end + 2).collect();
                    if block.lines().any(|l| l == "event: change") {
                        let id = block.lines().find_map(|l| l.strip_prefix("id: ")).unwrap();
                        return Some(id.to_owned());
                    }
                }
                match self.res.chunk().await {
                    Ok(Some(bytes)) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                    _ => return None,
                }
            }
        })
        .await
        .expect("no event within 20 s")
    }
}

fn create(op: &str, device: &str) -> (String, Value) {
    let id = new_id();
    let c = change(
        op,
        &id,
        "item",
        "create",
        json!({"title": op}),
        &at(0),
        device,
    );
    (id, c)
}

async fn streams_poke_other_devices_with_the_new_cursor(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let token = app.register("stream@example.com").await;
    let b_cursor = app.sync(&token, "B", Value::Null, vec![]).await["syncTimestamp"].clone();
    let mut a = Events::open(&app, &token, "A", None).await;
    let mut b = Events::open(&app, &token, "B", None).await;

    let (id, c) = create("s1", "A");
    let pushed = app.sync(&token, "A", Value::Null, vec![c]).await;
    let poke = b.next_change().await.expect("B is poked");
    assert_eq!(
        json!(poke),
        pushed["syncTimestamp"],
        "the poke carries the new cursor"
    );
    // Pulling from B's old cursor returns exactly the change, up to the poked cursor.
    let pulled = app.sync(&token, "B", b_cursor, vec![]).await;
    assert_eq!(
        records_by_id(&pulled["serverUpdates"])
            .into_keys()
            .collect::<Vec<_>>(),
        vec![id]
    );
    assert_eq!(pulled["syncTimestamp"], json!(poke));

    // A got nothing for its own change: its first event is B's later one.
    let (_, c) = create("s2", "B");
    let second = app
        .sync(&token, "B", pulled["syncTimestamp"].clone(), vec![c])
        .await;
    assert_eq!(
        json!(a.next_change().await.unwrap()),
        second["syncTimestamp"]
    );
    app.stop().await;
}

async fn a_reconnect_behind_is_told_at_once(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let token = app.register("behind@example.com").await;
    let old = app.sync(&token, "B", Value::Null, vec![]).await["syncTimestamp"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, c) = create("r1", "A");
    let now = app.sync(&token, "A", Value::Null, vec![c]).await["syncTimestamp"].clone();
    let mut b = Events::open(&app, &token, "B", Some(&old)).await;
    assert_eq!(json!(b.next_change().await.unwrap()), now);
    app.stop().await;
}

async fn a_revoked_token_ends_its_stream(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let token = app.register("endstream@example.com").await;
    let mut s = Events::open(&app, &token, "A", None).await;
    assert_eq!(
        app.post("/api/auth/logout", Some(&token), json!({}))
            .await
            .status,
        200
    );
    assert_eq!(s.next_change().await, None, "the stream ended");
    app.stop().await;
}

async fn long_poll_returns_early_on_change_and_empty_on_timeout(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let token = app.register("longpoll@example.com").await;
    let cursor = app.sync(&token, "B", Value::Null, vec![]).await["syncTimestamp"].clone();

    // Nothing happens: an empty answer after the wait.
    let t = Instant::now();
    let res = app
        .sync_raw(
            &token,
            json!({"deviceId": "B", "lastSyncTimestamp": cursor, "waitSeconds": 1}),
        )
        .await;
    assert_eq!(res.status, 200);
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "returned before the wait"
    );
    assert_eq!(records_by_id(&res.body["data"]["serverUpdates"]).len(), 0);

    // A change by another device ends the wait with that change.
    let waiting = {
        let (client, url, token, cursor) = (
            app.client.clone(),
            app.url("/api/sync"),
            token.clone(),
            cursor.clone(),
        );
        tokio::spawn(async move {
            let res = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"deviceId": "B", "lastSyncTimestamp": cursor, "waitSeconds": 20}))
                .send()
                .await
                .unwrap();
            res.json::<Value>().await.unwrap()
        })
    };
    // Give the request a moment to start waiting, so that the wake-up path is
    // the one exercised. Not needed for correctness: had the push come first,
    // the long-poll's own pull would return it, and the assertions hold alike.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (id, c) = create("lp1", "A");
    app.sync(&token, "A", Value::Null, vec![c]).await;
    let got = tokio::time::timeout(Duration::from_secs(15), waiting)
        .await
        .expect("the long-poll returned before its 20 s")
        .unwrap();
    assert!(
        records_by_id(&got["data"]["serverUpdates"]).contains_key(&id),
        "{got}"
    );

    let bad = app
        .sync_raw(&token, json!({"deviceId": "B", "waitSeconds": 61}))
        .await;
    bad.assert_error(400, "validation_failed");
    app.stop().await;
}

/// Open streams end when shutdown begins, so a SIGTERM does not wait for
/// SHUTDOWN_TIMEOUT on every connected device.
async fn shutdown_ends_open_streams(db: Db) {
    let tdb = TestDb::new(db).await;
    let mut args = test_args(&tdb);
    args.shutdown_timeout = Duration::from_secs(60);
    let app = spawn_with(args).await;
    let token = app.register("bye@example.com").await;
    let mut s = Events::open(&app, &token, "A", None).await;
    tokio::time::timeout(Duration::from_secs(20), app.stop())
        .await
        .expect("stopped without waiting for the stream");
    assert_eq!(s.next_change().await, None);
}

backend_tests!(
    shutdown_ends_open_streams,
    streams_poke_other_devices_with_the_new_cursor,
    a_reconnect_behind_is_told_at_once,
    a_revoked_token_ends_its_stream,
    long_poll_returns_early_on_change_and_empty_on_timeout,
);
