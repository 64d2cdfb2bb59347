//! What bounds a data export (issue: exports of huge records held hundreds
//! of MiB): pages of at most about 1 MiB read only as fast as the client
//! reads, a client that stops reading cut after EXPORT_IDLE_TIMEOUT, and
//! at most MAX_EXPORTS exports at once (MAX_EXPORTS_PER_SPACE of one shared
//! space), beyond which the answer says when to retry.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tidesync::config::{parse_duration, ServeArgs};
use tidesync_client::protocol::Role;
use tidesync_testkit::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

backend_tests!(
    big_records_export_whole_and_only_as_fast_as_the_client_reads,
    exports_beyond_the_server_and_space_limits_are_told_to_retry,
    a_client_that_stops_reading_is_cut_after_the_idle_timeout,
);

/// Items of about 222 KB each (4-byte characters: 200 KB of notes, 20 KB
/// of description), 13 MiB in all: more than the socket buffers, hyper's
/// and the export's own buffers hold together, so a client that stops
/// reading stops the export midway.
const ITEMS: usize = 60;
const PER_PUSH: usize = 20;

fn notes(n: usize) -> String {
    format!("{n:05}{}", "😀".repeat(50_000 - 5))
}

struct Shared {
    owner: String,
    member: String,
    /// A user with nothing shared: only the server-wide limit applies.
    other: String,
    space: String,
    items: Vec<String>,
}

/// An owner's space shared with a member, holding ITEMS big items.
async fn big_shared_space(app: &TestApp) -> Shared {
    let owner = app.user("owner@example.com").await;
    let member = app.register("member@example.com").await;
    let other = app.register("other@example.com").await;
    let o_tok = owner.token().unwrap().to_owned();
    let space = new_id();
    app.sync(
        &o_tok,
        "o",
        Value::Null,
        vec![change(
            "s",
            &space,
            "space",
            "create",
            json!({"name": "Big"}),
            &at(0),
            "o",
        )],
    )
    .await;
    share(
        &owner,
        &app.client(&member),
        space.parse().unwrap(),
        Role::Editor,
    )
    .await
    .unwrap();
    let items: Vec<String> = (0..ITEMS).map(|_| new_id()).collect();
    let description = "😀".repeat(5_000);
    for (b, chunk) in items.chunks(PER_PUSH).enumerate() {
        let changes = chunk
            .iter()
            .enumerate()
            .map(|(k, id)| {
                let n = b * PER_PUSH + k;
                change(
                    &format!("i{n}"),
                    id,
                    "item",
                    "create",
                    json!({"title": format!("Big {n}"), "spaceId": space,
                           "description": description, "notes": notes(n)}),
                    &at(1),
                    "o",
                )
            })
            .collect();
        let out = app.sync(&o_tok, "o", Value::Null, changes).await;
        assert!(
            out["acknowledged"]
                .as_array()
                .unwrap()
                .iter()
                .all(|a| a["success"] == true),
            "{}",
            out["acknowledged"]
        );
    }
    Shared {
        owner: o_tok,
        member,
        other,
        space,
        items,
    }
}

async fn spawn_configured(tdb: &TestDb, tweak: impl FnOnce(&mut ServeArgs)) -> TestApp {
    let mut args = test_args(tdb);
    tweak(&mut args);
    spawn_with(args).await
}

/// An export whose client reads the head of the response and then nothing:
/// a small receive buffer, so the server's writes soon wait. Returns the
/// connection and what was read of it.
async fn stalled_export(app: &TestApp, token: &str) -> (TcpStream, Vec<u8>) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    let addr = app.base.trim_start_matches("http://").parse().unwrap();
    let mut s = socket.connect(addr).await.unwrap();
    s.write_all(
        format!(
            "GET /api/auth/me/export HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
             Authorization: Bearer {token}\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut head = [0u8; 512];
    let n = s.read(&mut head).await.unwrap();
    let start = head[..n].to_vec();
    assert!(
        start.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&start)
    );
    (s, start)
}

/// The export as `token` sees it: status, headers, the body when 200.
async fn try_export(app: &TestApp, token: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let res = app
        .http
        .get(app.url("/api/auth/me/export"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let (status, headers) = (res.status().as_u16(), res.headers().clone());
    let bytes = res.bytes().await.expect("the whole body");
    let body = serde_json::from_slice(&bytes).expect("one JSON document");
    (status, headers, body)
}

#[track_caller]
fn assert_retry_later(got: &(u16, reqwest::header::HeaderMap, Value), status: u16, code: &str) {
    let (s, headers, body) = got;
    assert_eq!(
        (*s, body["error"]["code"].as_str()),
        (status, Some(code)),
        "{body}"
    );
    let wait: u64 = headers[reqwest::header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait >= 1, "Retry-After: {wait}");
}

/// Retries an export refused for now until it runs (within `bound`).
async fn export_when_free(app: &TestApp, token: &str, bound: Duration) -> Value {
    let start = Instant::now();
    loop {
        let (status, _, body) = try_export(app, token).await;
        match status {
            200 => return body,
            429 | 503 if start.elapsed() < bound => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            _ => panic!("still {status} after {:?}: {body}", start.elapsed()),
        }
    }
}

fn items_by_id(doc: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for r in doc["data"]["items"].as_array().expect("items") {
        let id = r["id"].as_str().unwrap().to_owned();
        assert!(out.insert(id.clone(), r.clone()).is_none(), "{id} twice");
    }
    out
}

async fn big_records_export_whole_and_only_as_fast_as_the_client_reads(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let s = big_shared_space(&app).await;

    // The client reads the head, then pauses.
    let (mut stalled, mut raw) = stalled_export(&app, &s.member).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Meanwhile an item that sorts last is written: the export has not
    // read that far (it reads as the client reads), so it will have it. A
    // server that read ahead of its client would not.
    let last = "ffffffff-ffff-4fff-bfff-ffffffffffff";
    app.sync(
        &s.owner,
        "o",
        Value::Null,
        vec![change(
            "late",
            last,
            "item",
            "create",
            json!({"title": "Late", "spaceId": s.space, "notes": notes(ITEMS)}),
            &at(2),
            "o",
        )],
    )
    .await;

    tokio::time::timeout(Duration::from_secs(60), stalled.read_to_end(&mut raw))
        .await
        .expect("the export ends")
        .unwrap();
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("the response head");
    let body = &raw[head_end + 4..];
    assert!(body.ends_with(b"0\r\n\r\n"), "the chunked body is complete");
    let doc = dechunk(body);
    let doc: Value = serde_json::from_slice(&doc).expect("one JSON document");

    // Every record once, text intact (4-byte characters and all), across
    // pages of about 1 MiB: about four of these items each.
    let items = items_by_id(&doc);
    assert_eq!(items.len(), ITEMS + 1);
    for (n, id) in s.items.iter().enumerate() {
        let r = &items[id];
        assert_eq!(r["title"], format!("Big {n}"));
        assert_eq!(r["notes"], json!(notes(n)));
        assert_eq!(r["description"].as_str().unwrap().chars().count(), 5_000);
    }
    assert_eq!(items[last]["title"], "Late");
    assert_eq!(doc["data"]["spaces"].as_array().unwrap().len(), 1);

    // A shutdown midway aborts the body: it never ends as if complete.
    let mut res = app
        .http
        .get(app.url("/api/auth/me/export"))
        .bearer_auth(&s.owner)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.chunk().await.unwrap().expect("a first chunk");
    let mut app = app;
    app.signal_shutdown();
    let end = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match res.chunk().await {
                Ok(Some(_)) => continue,
                Ok(None) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    })
    .await
    .expect("the body ends");
    assert!(end.is_err(), "the body ended as if complete");
    app.stop().await;
}

/// The body of a `Transfer-Encoding: chunked` response.
fn dechunk(mut s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = s
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a chunk size");
        let size = std::str::from_utf8(&s[..eol]).expect("ASCII chunk size");
        let size = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
        if size == 0 {
            return out;
        }
        let data = &s[eol + 2..];
        out.extend_from_slice(&data[..size]);
        s = &data[size + 2..];
    }
}

async fn exports_beyond_the_server_and_space_limits_are_told_to_retry(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let s = big_shared_space(&app).await;
    app.stop().await;

    // One export per server: the owner's runs (stalled), the unrelated
    // user is told to come back, and comes back once it is gone.
    let app = spawn_configured(&tdb, |a| a.max_exports = 1).await;
    let (stalled, _) = stalled_export(&app, &s.owner).await;
    assert_retry_later(&try_export(&app, &s.other).await, 503, "busy");
    // One per user stays: 429.
    assert_retry_later(&try_export(&app, &s.owner).await, 429, "rate_limited");
    drop(stalled);
    let doc = export_when_free(&app, &s.other, Duration::from_secs(10)).await;
    assert_eq!(doc["success"], true);
    app.stop().await;

    // One export per shared space, two per server: the member waits for
    // the owner's export of their space; the unrelated user does not.
    let app = spawn_configured(&tdb, |a| {
        a.max_exports = 2;
        a.max_exports_per_space = 1;
    })
    .await;
    let (stalled, _) = stalled_export(&app, &s.owner).await;
    let refused = try_export(&app, &s.member).await;
    assert_retry_later(&refused, 503, "busy");
    assert!(refused.2["error"]["message"]
        .as_str()
        .unwrap()
        .contains("shared space"));
    let (status, _, doc) = try_export(&app, &s.other).await;
    assert_eq!((status, doc["success"].clone()), (200, json!(true)));
    drop(stalled);
    let doc = export_when_free(&app, &s.member, Duration::from_secs(10)).await;
    assert_eq!(items_by_id(&doc).len(), ITEMS);
    app.stop().await;
}

async fn a_client_that_stops_reading_is_cut_after_the_idle_timeout(db: Db) {
    let tdb = TestDb::new(db).await;
    let idle = parse_duration("1s").unwrap();
    let app = spawn_configured(&tdb, |a| a.export_idle_timeout = idle).await;
    let s = big_shared_space(&app).await;

    let started = Instant::now();
    let (mut stalled, _) = stalled_export(&app, &s.member).await;
    // Running: a second export of the same user is refused…
    assert_retry_later(&try_export(&app, &s.member).await, 429, "rate_limited");
    // …until the stalled one is cut, which frees its place.
    let doc = export_when_free(&app, &s.member, Duration::from_secs(10)).await;
    assert!(started.elapsed() >= idle, "{:?}", started.elapsed());
    assert_eq!(items_by_id(&doc).len(), ITEMS);

    // The stalled client finds its connection closed, the body cut short.
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stalled.read_to_end(&mut raw))
        .await
        .expect("the cut connection reaches its end");
    let complete = read.is_ok() && raw.ends_with(b"0\r\n\r\n");
    assert!(!complete, "the stalled export was not cut");
    app.stop().await;
}
