//! Database outages: requests fail fast with 503 and store nothing; the
//! server recovers by itself when the database is back; nothing is lost.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tidesync_client::{ChangeBody, Client, EntityType, ErrorCode, OpKind, SyncBody};
use tidesync_testkit::*;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

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

fn batch(n: usize) -> (Vec<ChangeBody>, BTreeMap<String, String>) {
    let mut changes = vec![];
    let mut titles = BTreeMap::new();
    for k in 0..3 {
        let id = new_id();
        let title = format!("b{n} k{k}");
        changes.push(typed_change(
            &format!("out-{n}-{k}"),
            &id,
            EntityType::Item,
            OpKind::Create,
            json!({"title": title}),
            &at(n as i64),
            "D",
        ));
        titles.insert(id, title);
    }
    (changes, titles)
}

fn push(changes: Vec<ChangeBody>) -> SyncBody {
    SyncBody {
        device_id: "D".into(),
        changes,
        limit: Some(1),
        ..SyncBody::default()
    }
}

async fn live_titles(client: &Client) -> BTreeMap<String, Value> {
    pull_everything(client, "checker", None, None, "live titles")
        .await
        .by_id
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
    let client = app.user("outage@example.com").await;

    let mut acked: BTreeMap<String, String> = BTreeMap::new();
    let mut pending: Vec<(Vec<ChangeBody>, BTreeMap<String, String>)> = vec![];
    let mut saw_503 = 0;
    for n in 0..30 {
        if n == 10 {
            proxy.cut();
        }
        if n == 20 {
            proxy.restore();
        }
        let (changes, titles) = batch(n);
        match client.sync(&push(changes.clone())).await {
            Ok(r) => {
                assert!(r.acknowledged.iter().all(|a| a.success), "{r:?}");
                acked.extend(titles);
            }
            // The auth check needs the database too: a 503 there, never a 401.
            Err(e) => {
                let e = expect_api_error(Err::<(), _>(e), 503, ErrorCode::DatabaseUnavailable);
                assert!(e.retry_after.is_some(), "{e}: no Retry-After");
                saw_503 += 1;
                pending.push((changes, titles));
            }
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
    let live = live_titles(&client).await;
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
        let r = client.sync(&push(changes)).await.expect("retry");
        assert!(
            r.acknowledged.iter().all(|a| a.success && !a.duplicate),
            "a 503 request left nothing to replay: {r:?}"
        );
        acked.extend(titles);
    }
    let live = live_titles(&client).await;
    assert_eq!(live.len(), acked.len());
    for (id, title) in &acked {
        assert_eq!(live.get(id), Some(&json!(title)), "{id}");
    }
    app.stop().await;
}

async fn locked_sqlite(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let client = app.user("locked@example.com").await;
    let (first, first_titles) = batch(0);
    client.sync(&push(first)).await.unwrap();

    // Another process holds the write lock longer than the busy timeout.
    let locker =
        rusqlite::Connection::open(tidesync_store::sqlite_file(&tdb.url).unwrap()).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let (blocked, blocked_titles) = batch(1);
    let e = expect_api_error(
        client.sync(&push(blocked.clone())).await,
        503,
        ErrorCode::DatabaseUnavailable,
    );
    assert_eq!(e.retry_after, Some(std::time::Duration::from_secs(1)));
    locker.execute_batch("ROLLBACK").unwrap();
    drop(locker);

    // Back by itself; the failed request left nothing behind, and its retry applies once.
    let live = live_titles(&client).await;
    assert!(blocked_titles.keys().all(|id| !live.contains_key(id)));
    assert!(first_titles.keys().all(|id| live.contains_key(id)));
    let retry = client.sync(&push(blocked)).await.unwrap();
    assert!(retry.acknowledged.iter().all(|a| a.success && !a.duplicate));
    assert_eq!(live_titles(&client).await.len(), 6);
    app.stop().await;
}

backend_tests!(database_outage_gives_503s_and_recovers);
