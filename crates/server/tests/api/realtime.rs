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
        Events::open_at(&app.client, &app.base, token, device, last_id).await
    }

    async fn open_at(
        client: &reqwest::Client,
        base: &str,
        token: &str,
        device: &str,
        last_id: Option<&str>,
    ) -> Events {
        let mut req = client
            .get(format!("{base}/api/sync/stream?deviceId={device}"))
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

/// Two instances on one PostgreSQL: a push through A pokes a stream held on
/// B (LISTEN/NOTIFY), and B keeps serving after A is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_instances_poke_each_other() {
    if !postgres_enabled() {
        return;
    }
    use crate::binary::{Proc, BIN};
    let tdb = TestDb::new(Db::Postgres).await;
    let start = || {
        let mut p = Proc::start(
            std::process::Command::new(BIN)
                .env("DATABASE_URL", &tdb.url)
                .env("JWT_SECRET", TEST_SECRET)
                .env("PORT", "0")
                .env("HOST", "127.0.0.1")
                .env("RATE_LIMIT_PER_MINUTE", "100000")
                .env("AUTH_RATE_LIMIT_PER_MINUTE", "100000"),
        );
        let base = format!("http://{}", p.address());
        (p, base)
    };
    let (a, a_base) = start();
    let (b, b_base) = start();
    let client = reqwest::Client::new();
    let post = |base: String, token: Option<String>, path: &'static str, body: Value| {
        let client = client.clone();
        async move {
            let mut req = client.post(format!("{base}{path}")).json(&body);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let res = req.send().await.unwrap();
            assert!(res.status().is_success(), "{path}: {}", res.status());
            res.json::<Value>().await.unwrap()
        }
    };
    let reg = post(
        a_base.clone(),
        None,
        "/api/auth/register",
        json!({"email": "two@example.com", "password": "correct horse", "name": "Two"}),
    )
    .await;
    let token = reg["data"]["token"].as_str().unwrap().to_owned();

    let mut on_b = Events::open_at(&client, &b_base, &token, "B", None).await;
    let (_, c) = create("x1", "A");
    let pushed = post(
        a_base.clone(),
        Some(token.clone()),
        "/api/sync",
        json!({"deviceId": "A", "lastSyncTimestamp": null, "changes": [c]}),
    )
    .await;
    assert_eq!(
        json!(on_b.next_change().await.expect("poked across instances")),
        pushed["data"]["syncTimestamp"]
    );

    a.kill9();
    let (id, c) = create("x2", "B");
    post(
        b_base.clone(),
        Some(token.clone()),
        "/api/sync",
        json!({"deviceId": "B", "lastSyncTimestamp": null, "changes": [c]}),
    )
    .await;
    let all = post(
        b_base.clone(),
        Some(token.clone()),
        "/api/sync",
        json!({"deviceId": "C", "lastSyncTimestamp": null}),
    )
    .await;
    assert!(records_by_id(&all["data"]["serverUpdates"]).contains_key(&id));
    b.terminate();
}

/// For browsers' EventSource, which cannot send headers: a ticket opens the
/// stream once, expires, and is no access token (nor is a token a ticket).
async fn stream_tickets_are_single_use_and_not_tokens(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let token = app.register("ticket@example.com").await;
    let res = app
        .post("/api/sync/stream-ticket", Some(&token), json!({}))
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body["data"]["expiresIn"], json!(60));
    let ticket = res.body["data"]["ticket"].as_str().unwrap().to_owned();
    let open = |t: String| {
        app.client
            .get(app.url(&format!("/api/sync/stream?deviceId=B&ticket={t}")))
            .send()
    };
    let res = open(ticket.clone()).await.unwrap();
    assert_eq!(res.status(), 200);
    let mut events = Events {
        res,
        buf: String::new(),
    };
    let (_, c) = create("t1", "A");
    let pushed = app.sync(&token, "A", Value::Null, vec![c]).await;
    assert_eq!(
        json!(events.next_change().await.unwrap()),
        pushed["syncTimestamp"]
    );

    assert_eq!(
        open(ticket.clone()).await.unwrap().status(),
        401,
        "a ticket is single-use"
    );
    assert_eq!(
        open(token.clone()).await.unwrap().status(),
        401,
        "a token is not a ticket"
    );
    app.get("/api/auth/me", Some(&ticket))
        .await
        .assert_error(401, "unauthorized");
    let me = app.get("/api/auth/me", Some(&token)).await;
    let id = me.body["data"]["user"]["id"].as_str().unwrap().to_owned();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": id, "iat": now - 120, "exp": now - 60, "gen": 0, "jti": "old", "typ": "stream"}),
        &jsonwebtoken::EncodingKey::from_secret(TEST_SECRET.as_bytes()),
    )
    .unwrap();
    assert_eq!(
        open(expired).await.unwrap().status(),
        401,
        "an expired ticket"
    );
    let none = app
        .client
        .get(app.url("/api/sync/stream?deviceId=B"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    app.stop().await;
}

backend_tests!(
    stream_tickets_are_single_use_and_not_tokens,
    shutdown_ends_open_streams,
    streams_poke_other_devices_with_the_new_cursor,
    a_reconnect_behind_is_told_at_once,
    a_revoked_token_ends_its_stream,
    long_poll_returns_early_on_change_and_empty_on_timeout,
);
