//! Revocation reaches open requests: a long-poll, a stream and a stream
//! ticket are bound to the token that opened them. Logout, password change
//! and account deletion end them within ~2 s; a pending long-poll answers
//! `401`, never data written after the revocation; other tokens go on.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tidesync_client::{Client, ErrorCode};
use tidesync_testkit::*;

use crate::realtime::{create, Events};

/// How soon an open request must notice its token's revocation.
const PROMPTLY: Duration = Duration::from_secs(2);

/// A long-poll of `device` from `cursor`, in the background: its status,
/// body and when it answered.
fn long_poll(
    app: &TestApp,
    token: &str,
    device: &str,
    cursor: &Value,
) -> tokio::task::JoinHandle<(u16, Value, Instant)> {
    let req = app
        .http
        .post(app.url("/api/sync"))
        .bearer_auth(token)
        .json(&json!({"deviceId": device, "lastSyncTimestamp": cursor, "waitSeconds": 20}));
    tokio::spawn(async move {
        let res = req.send().await.expect("long-poll sent");
        let status = res.status().as_u16();
        let body = res.json::<Value>().await.expect("a JSON answer");
        (status, body, Instant::now())
    })
}

async fn answer(poll: tokio::task::JoinHandle<(u16, Value, Instant)>) -> (u16, Value, Instant) {
    tokio::time::timeout(Duration::from_secs(25), poll)
        .await
        .expect("the long-poll answered")
        .unwrap()
}

#[track_caller]
fn assert_revoked((status, body, at): &(u16, Value, Instant), since: Instant) {
    assert_eq!(*status, 401, "{body}");
    assert_eq!(body["error"]["code"], json!("unauthorized"), "{body}");
    assert!(
        at.duration_since(since) < PROMPTLY,
        "answered {:?} after the revocation",
        at.duration_since(since)
    );
}

/// Waits until the stream ends; when it ended.
async fn ended(mut s: Events) -> Instant {
    assert_eq!(s.next_change().await, None, "the stream ended, no event");
    Instant::now()
}

/// Give requests a moment to start waiting, so that the path exercised is
/// the one of a request already open when the revocation commits.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

async fn a_logout_ends_the_tokens_long_poll_and_stream_only(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let t1 = app.register("out@example.com").await;
    let t2 = app
        .api
        .login("out@example.com", PASSWORD)
        .await
        .unwrap()
        .token;
    let cursor = app.sync(&t1, "B", Value::Null, vec![]).await["syncTimestamp"].clone();
    let revoked = long_poll(&app, &t1, "B", &cursor);
    let other = long_poll(&app, &t2, "C", &cursor);
    let revoked_stream = Events::open(&app, &t1, "B", None).await;
    let mut other_stream = Events::open(&app, &t2, "C", None).await;
    settle().await;

    app.client(&t1).logout().await.unwrap();
    let out = Instant::now();
    // Written just after the logout: the revoked long-poll must not get it.
    let (id, c) = create("after logout", "A");
    let pushed = app.sync(&t2, "A", Value::Null, vec![c]).await;

    assert_revoked(&answer(revoked).await, out);
    let gone = ended(revoked_stream).await;
    assert!(gone.duration_since(out) < PROMPTLY, "{:?}", gone - out);
    // The user's other token goes on: its long-poll and stream get the write.
    let (status, body, _) = answer(other).await;
    assert_eq!(status, 200, "{body}");
    assert!(records_by_id(&body["data"]["serverUpdates"]).contains_key(&id));
    assert_eq!(
        json!(other_stream.next_change().await.expect("a poke")),
        pushed["syncTimestamp"]
    );
    app.me_fails(&t1).await;
    app.stop().await;
}

async fn a_password_change_ends_every_older_long_poll_and_stream(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let t1 = app.register("pw@example.com").await;
    let t2 = app
        .api
        .login("pw@example.com", PASSWORD)
        .await
        .unwrap()
        .token;
    let cursor = app.sync(&t1, "B", Value::Null, vec![]).await["syncTimestamp"].clone();
    let polls = [
        long_poll(&app, &t1, "B", &cursor),
        long_poll(&app, &t2, "C", &cursor),
    ];
    let stream = Events::open(&app, &t2, "C", None).await;
    settle().await;

    let fresh = app
        .client(&t1)
        .change_password(PASSWORD, "a new password")
        .await
        .unwrap()
        .token;
    let changed = Instant::now();
    let (_, c) = create("after the change", "A");
    app.sync(&fresh, "A", Value::Null, vec![c]).await;

    for poll in polls {
        assert_revoked(&answer(poll).await, changed);
    }
    let gone = ended(stream).await;
    assert!(gone.duration_since(changed) < PROMPTLY);
    app.me_fails(&t2).await;
    app.client(&fresh).me().await.expect("the new token works");
    app.stop().await;
}

async fn an_account_deletion_ends_its_long_polls_and_streams(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let t1 = app.register("bye@example.com").await;
    let cursor = app.sync(&t1, "B", Value::Null, vec![]).await["syncTimestamp"].clone();
    let poll = long_poll(&app, &t1, "B", &cursor);
    let stream = Events::open(&app, &t1, "C", None).await;
    settle().await;

    app.client(&t1).delete_account(PASSWORD).await.unwrap();
    let deleted = Instant::now();
    assert_revoked(&answer(poll).await, deleted);
    let gone = ended(stream).await;
    assert!(gone.duration_since(deleted) < PROMPTLY);
    app.stop().await;
}

/// A ticket lives no longer than the token that minted it, and neither
/// does the stream it opened; another token's ticket is not affected.
async fn a_stream_ticket_dies_with_the_token_that_minted_it(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let t1 = app.register("tk@example.com").await;
    let t2 = app
        .api
        .login("tk@example.com", PASSWORD)
        .await
        .unwrap()
        .token;
    let ticket = |t: &str| {
        let c = app.client(t);
        async move { c.stream_ticket().await.unwrap().ticket }
    };
    let (k1, k2, k3) = (ticket(&t1).await, ticket(&t1).await, ticket(&t2).await);
    let opened = Events(app.api.stream("B").ticket(k1).open().await.unwrap());
    settle().await;

    app.client(&t1).logout().await.unwrap();
    let out = Instant::now();
    let gone = ended(opened).await;
    assert!(gone.duration_since(out) < PROMPTLY, "{:?}", gone - out);
    expect_api_error(
        app.api.stream("B").ticket(k2).open().await,
        401,
        ErrorCode::Unauthorized,
    );
    // A ticket of the other token opens a stream that hears of changes.
    let mut other = Events(app.api.stream("C").ticket(k3).open().await.unwrap());
    let (_, c) = create("after", "A");
    let pushed = app.sync(&t2, "A", Value::Null, vec![c]).await;
    assert_eq!(
        json!(other.next_change().await.expect("a poke")),
        pushed["syncTimestamp"]
    );
    app.stop().await;
}

/// Two instances on one PostgreSQL: a logout through A ends the token's
/// long-poll and stream held on B (the revocation notice travels with the
/// logout's commit), while another token's long-poll on B gets a write.
async fn postgres_a_logout_through_one_instance_ends_requests_on_another() {
    let tdb = TestDb::new(Db::Postgres).await;
    let a = spawn_app(&tdb).await;
    let b = spawn_app(&tdb).await;
    let t1 = a.register("two@example.com").await;
    let t2 = a
        .api
        .login("two@example.com", PASSWORD)
        .await
        .unwrap()
        .token;
    let cursor = b.sync(&t1, "B", Value::Null, vec![]).await["syncTimestamp"].clone();
    let revoked = long_poll(&b, &t1, "B", &cursor);
    let other = long_poll(&b, &t2, "C", &cursor);
    let stream = Events::open(&b, &t1, "D", None).await;
    settle().await;

    a.client(&t1).logout().await.unwrap();
    let out = Instant::now();
    let (id, c) = create("after logout", "A");
    a.sync(&t2, "A", Value::Null, vec![c]).await;

    assert_revoked(&answer(revoked).await, out);
    let gone = ended(stream).await;
    assert!(gone.duration_since(out) < PROMPTLY, "{:?}", gone - out);
    let (status, body, _) = answer(other).await;
    assert_eq!(status, 200, "{body}");
    assert!(records_by_id(&body["data"]["serverUpdates"]).contains_key(&id));
    // B refuses the token at once too: its cached state went with the notice.
    b.me_fails(&t1).await;
    a.stop().await;
    b.stop().await;
}

trait MeFails {
    async fn me_fails(&self, token: &str);
}

impl MeFails for TestApp {
    async fn me_fails(&self, token: &str) {
        expect_api_error(
            Client::new(&self.base)
                .unwrap()
                .with_token(token)
                .me()
                .await,
            401,
            ErrorCode::Unauthorized,
        );
    }
}

backend_tests! {
    backend: [
        a_logout_ends_the_tokens_long_poll_and_stream_only,
        a_password_change_ends_every_older_long_poll_and_stream,
        an_account_deletion_ends_its_long_polls_and_streams,
        a_stream_ticket_dies_with_the_token_that_minted_it,
    ],
    postgres_async: [postgres_a_logout_through_one_instance_ends_requests_on_another],
}
