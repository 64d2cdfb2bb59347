//! Pokes: a device's stream hears of other devices' changes at once, and a
//! long-poll returns as soon as there is something new.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tidesync_client::{Client, ErrorCode, EventStream, SyncBody};
use tidesync_testkit::*;

/// An open event stream, read event by event.
pub(crate) struct Events(pub(crate) EventStream);

impl Events {
    pub(crate) async fn open(
        app: &TestApp,
        token: &str,
        device: &str,
        last_id: Option<&str>,
    ) -> Events {
        Events::open_with(&app.client(token), device, last_id).await
    }

    pub(crate) async fn open_with(client: &Client, device: &str, last_id: Option<&str>) -> Events {
        let mut req = client.stream(device);
        if let Some(id) = last_id {
            req = req.last_event_id(id);
        }
        Events(req.open().await.expect("open the event stream"))
    }

    /// The cursor of the next `change` event, or None when the stream ends.
    pub(crate) async fn next_change(&mut self) -> Option<String> {
        let next = tokio::time::timeout(Duration::from_secs(20), self.0.next_event())
            .await
            .expect("no event within 20 s");
        match next {
            Some(Ok(ev)) => {
                assert_eq!(
                    self.0.last_event_id(),
                    Some(ev.sync_timestamp.as_str()),
                    "the event id is the cursor"
                );
                Some(ev.sync_timestamp)
            }
            // The server ending the stream mid-body reads as an error.
            Some(Err(_)) | None => None,
        }
    }
}

pub(crate) fn create(op: &str, device: &str) -> (String, Value) {
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
            app.http.clone(),
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
async fn postgres_instances_poke_each_other() {
    use crate::binary::serve;
    let tdb = TestDb::new(Db::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    let (a, a_base) = serve(&tdb, dir.path());
    let (b, b_base) = serve(&tdb, dir.path());
    let token = Client::new(&a_base)
        .unwrap()
        .register("two@example.com", PASSWORD, "Two")
        .await
        .unwrap()
        .token;
    let on_a = Client::new(&a_base).unwrap().with_token(&token);
    let on_b = Client::new(&b_base).unwrap().with_token(&token);
    let push = |device: &str, c: Value| SyncBody {
        device_id: device.into(),
        changes: vec![serde_json::from_value(c).unwrap()],
        ..SyncBody::default()
    };

    let mut stream_on_b = Events::open_with(&on_b, "B", None).await;
    let (_, c) = create("x1", "A");
    let pushed = on_a.sync(&push("A", c)).await.unwrap();
    assert_eq!(
        stream_on_b
            .next_change()
            .await
            .expect("poked across instances"),
        pushed.sync_timestamp
    );

    a.kill9();
    let (id, c) = create("x2", "B");
    on_b.sync(&push("B", c)).await.unwrap();
    let all = pull_everything(&on_b, "C", None, None, "on B").await;
    assert!(all.by_id.contains_key(&id));
    b.terminate();
}

/// For browsers' EventSource, which cannot send headers: a ticket opens the
/// stream once, expires, and is no access token (nor is a token a ticket).
async fn stream_tickets_are_single_use_and_not_tokens(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let token = app.register("ticket@example.com").await;
    // The wire shape, once.
    let res = app
        .post("/api/sync/stream-ticket", Some(&token), json!({}))
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body["data"]["expiresIn"], json!(60));
    let ticket = app.client(&token).stream_ticket().await.unwrap();
    assert_eq!(ticket.expires_in, 60);
    let ticket = ticket.ticket;
    // No token on this client: the ticket alone opens the stream.
    let open = |t: String| app.api.stream("B").ticket(t).open();
    let mut events = Events(
        open(ticket.clone())
            .await
            .expect("a ticket opens the stream"),
    );
    let (_, c) = create("t1", "A");
    let pushed = app.sync(&token, "A", Value::Null, vec![c]).await;
    assert_eq!(
        json!(events.next_change().await.unwrap()),
        pushed["syncTimestamp"]
    );

    // A ticket is single-use; a token is not a ticket.
    expect_api_error(open(ticket.clone()).await, 401, ErrorCode::Unauthorized);
    expect_api_error(open(token.clone()).await, 401, ErrorCode::Unauthorized);
    app.get("/api/auth/me", Some(&ticket))
        .await
        .assert_error(401, "unauthorized");
    let id = app.client(&token).me().await.unwrap().id.to_string();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": id, "iat": now - 120, "exp": now - 60, "gen": 0, "jti": "old", "typ": "stream"}),
        &jsonwebtoken::EncodingKey::from_secret(TEST_SECRET.as_bytes()),
    )
    .unwrap();
    expect_api_error(open(expired).await, 401, ErrorCode::Unauthorized);
    expect_api_error(
        app.api.stream("B").open().await,
        401,
        ErrorCode::Unauthorized,
    );
    app.stop().await;
}

backend_tests! {
    backend: [
        stream_tickets_are_single_use_and_not_tokens,
        shutdown_ends_open_streams,
        streams_poke_other_devices_with_the_new_cursor,
        a_reconnect_behind_is_told_at_once,
        a_revoked_token_ends_its_stream,
        long_poll_returns_early_on_change_and_empty_on_timeout,
    ],
    postgres_async: [postgres_instances_poke_each_other],
}
