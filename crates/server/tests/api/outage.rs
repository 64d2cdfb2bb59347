//! Database outages: requests fail fast with 503 and store nothing; the
//! server recovers by itself when the database is back; nothing is lost.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::helpers::*;

/// A TCP proxy to PostgreSQL that the test can cut and restore.
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (c, l) = (cut.clone(), links.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if c.load(Ordering::SeqCst) {
                    continue; // dropped: the database is "down"
                }
                let target = target.clone();
                l.lock().unwrap().push(tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                }));
            }
        });
        Proxy { port, cut, links }
    }

    /// Drops every open connection and refuses new ones.
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// `scheme://user@host:port/db?q` with host:port replaced.
fn via(url: &str, port: u16) -> String {
    let start = url
        .find('@')
        .map(|i| i + 1)
        .unwrap_or_else(|| url.find("://").unwrap() + 3);
    let end = start + url[start..].find('/').unwrap();
    format!("{}127.0.0.1:{port}{}", &url[..start], &url[end..])
}

fn host_port(url: &str) -> String {
    let start = url
        .find('@')
        .map(|i| i + 1)
        .unwrap_or_else(|| url.find("://").unwrap() + 3);
    let end = start + url[start..].find('/').unwrap();
    let hp = &url[start..end];
    if hp.contains(':') {
        hp.to_owned()
    } else {
        format!("{hp}:5432")
    }
}

fn batch(n: usize) -> (Vec<Value>, BTreeMap<String, String>) {
    let mut changes = vec![];
    let mut titles = BTreeMap::new();
    for k in 0..3 {
        let id = new_id();
        let title = format!("b{n} k{k}");
        changes.push(change(
            &format!("out-{n}-{k}"),
            &id,
            "item",
            "create",
            json!({"title": title}),
            &at(n as i64),
            "D",
        ));
        titles.insert(id, title);
    }
    (changes, titles)
}

async fn live_titles(app: &TestApp, token: &str) -> BTreeMap<String, Value> {
    let d = app.sync(token, "checker", Value::Null, vec![]).await;
    records_by_id(&d["serverUpdates"])
        .into_iter()
        .map(|(id, r)| (id, r["title"].clone()))
        .collect()
}

/// PostgreSQL: the connection is cut mid-traffic, then restored.
/// SQLite: another process holds the write lock past the busy timeout.
async fn database_outage_gives_503s_and_recovers(db: Db) {
    match db {
        Db::Postgres => postgres_outage(db).await,
        Db::Sqlite => locked_sqlite(db).await,
    }
}

async fn postgres_outage(db: Db) {
    let tdb = TestDb::new(db).await;
    let proxy = Proxy::start(host_port(&tdb.url)).await;
    let mut args = test_args(&tdb);
    args.database.database_url = via(&tdb.url, proxy.port);
    let app = spawn_with(args).await;
    let token = app.register("outage@example.com").await;

    let mut acked: BTreeMap<String, String> = BTreeMap::new();
    let mut pending: Vec<(Vec<Value>, BTreeMap<String, String>)> = vec![];
    let mut saw_503 = 0;
    for n in 0..30 {
        if n == 10 {
            proxy.cut();
        }
        if n == 20 {
            proxy.restore();
        }
        let (changes, titles) = batch(n);
        let res = app
            .sync_raw(&token, json!({"deviceId": "D", "lastSyncTimestamp": null, "changes": changes.clone(), "limit": 1}))
            .await;
        match res.status.as_u16() {
            200 => {
                for a in res.body["data"]["acknowledged"].as_array().unwrap() {
                    assert_eq!(a["success"], json!(true));
                }
                acked.extend(titles);
            }
            503 => {
                assert_eq!(res.code(), "database_unavailable", "{}", res.body);
                assert!(res.headers.contains_key("retry-after"));
                saw_503 += 1;
                pending.push((changes, titles));
            }
            // The auth check needs the database too: a 503 there, never a 401.
            other => panic!("batch {n}: unexpected {other}: {}", res.body),
        }
        if n == 12 {
            let h = app.get("/health", None).await;
            assert_eq!(h.status, 503);
            assert_eq!(h.body["database"], json!("unavailable"));
        }
    }
    assert!(
        saw_503 >= 5,
        "the cut should have failed requests ({saw_503})"
    );
    assert_eq!(
        app.get("/health", None).await.status,
        200,
        "recovered without a restart"
    );

    // Nothing failed was stored; every acknowledged batch is there.
    let live = live_titles(&app, &token).await;
    for (_, titles) in &pending {
        for id in titles.keys() {
            assert!(!live.contains_key(id), "a 503 request was stored");
        }
    }
    for (id, title) in &acked {
        assert_eq!(live.get(id), Some(&json!(title)), "acknowledged {id} lost");
    }
    // The client retries what failed: everything converges.
    for (changes, titles) in pending {
        app.sync(&token, "D", Value::Null, changes).await;
        acked.extend(titles);
    }
    let live = live_titles(&app, &token).await;
    assert_eq!(live.len(), acked.len());
    app.stop().await;
}

async fn locked_sqlite(db: Db) {
    use sqlx::Connection;
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let token = app.register("locked@example.com").await;
    let (first, first_titles) = batch(0);
    app.sync(&token, "D", Value::Null, first).await;

    // Another process holds the write lock longer than the busy timeout.
    let mut locker = sqlx::SqliteConnection::connect(&tdb.url).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut locker)
        .await
        .unwrap();
    let (blocked, blocked_titles) = batch(1);
    let res = app
        .sync_raw(
            &token,
            json!({"deviceId": "D", "lastSyncTimestamp": null, "changes": blocked.clone()}),
        )
        .await;
    res.assert_error(503, "database_unavailable");
    assert_eq!(res.headers["retry-after"], "1");
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    drop(locker);

    // Back by itself; the failed request left nothing behind, and its retry applies once.
    let live = live_titles(&app, &token).await;
    assert!(blocked_titles.keys().all(|id| !live.contains_key(id)));
    assert!(first_titles.keys().all(|id| live.contains_key(id)));
    let retry = app.sync(&token, "D", Value::Null, blocked).await;
    assert!(retry["acknowledged"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["success"] == json!(true) && a["duplicate"].is_null()));
    assert_eq!(live_titles(&app, &token).await.len(), 6);
    app.stop().await;
}

backend_tests!(database_outage_gives_503s_and_recovers);
