use std::io::Write;
use std::sync::{Arc, Once};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tidesync::config::{Secret, ServeArgs};
use tidesync::App;
use tidesync_store::Store;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const TEST_SECRET: &str = "test-secret-0123456789abcdef0123456789";
pub const PG_ENV: &str = "TIDESYNC_TEST_POSTGRES_URL";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Generates one test per backend for each listed `async fn name(db: Db)`.
/// The PostgreSQL variant returns early (after one notice on the terminal)
/// when TIDESYNC_TEST_POSTGRES_URL is not set.
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Db::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if $crate::helpers::postgres_enabled() {
                        super::$name($crate::helpers::Db::Postgres).await;
                    }
                }
            )*
        }
    };
}

/// Whether the PostgreSQL runs happen. When they don't, says so once on the
/// real stderr (libtest captures `eprintln!`, not direct writes).
pub fn postgres_enabled() -> bool {
    static NOTICE: Once = Once::new();
    let set = std::env::var(PG_ENV)
        .map(|v| !v.is_empty())
        .unwrap_or(false);
    if !set {
        NOTICE.call_once(|| {
            let _ = writeln!(
                std::io::stderr(),
                "NOTE: PostgreSQL tests skipped: {PG_ENV} is not set (e.g. postgres://postgres@127.0.0.1:5432/test)"
            );
        });
    }
    set
}

/// A database that exists for one test and is removed after it.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

impl TestDb {
    pub async fn new(db: Db) -> TestDb {
        match db {
            Db::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}/tidesync.db", dir.path().display());
                TestDb {
                    url,
                    _dir: Some(dir),
                    pg_name: None,
                }
            }
            Db::Postgres => {
                let admin = std::env::var(PG_ENV).expect("postgres url");
                let name = format!("tidesync_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = pg_admin(&admin).await;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                TestDb {
                    url: with_database(&admin, &name),
                    _dir: None,
                    pg_name: Some(name),
                }
            }
        }
    }

    /// Folder that holds the SQLite file (and the generated secret).
    pub fn dir(&self) -> Option<&std::path::Path> {
        self._dir.as_ref().map(|d| d.path())
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        let admin = std::env::var(PG_ENV).expect("postgres url");
        // Drop runs inside the test's runtime; use a runtime of our own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let mut conn = pg_admin(&admin).await;
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await;
            });
        })
        .join();
    }
}

async fn pg_admin(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("{PG_ENV} is set but PostgreSQL is unreachable: {e}"))
}

/// The same server URL with another database name.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{name}?{q}"),
        None => format!("{host_part}/{name}"),
    }
}

/// A running server on 127.0.0.1 with a port of its own.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Arc<dyn Store>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<std::io::Result<()>>>,
}

pub fn test_args(db: &TestDb) -> ServeArgs {
    let mut args = ServeArgs::with_database(&db.url);
    args.jwt_secret = Some(Secret::new(TEST_SECRET));
    // Tests of other features send many requests; the limits have their own tests.
    args.rate_limit_per_minute = 1_000_000;
    args.auth_rate_limit_per_minute = 1_000_000;
    args
}

pub async fn spawn_app(db: &TestDb) -> TestApp {
    spawn_with(test_args(db)).await
}

pub async fn spawn_with(args: ServeArgs) -> TestApp {
    let app = App::build(&args).await.expect("build app");
    let store = app.store();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(app.serve(listener, async move {
        let _ = rx.await;
    }));
    TestApp {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        store,
        shutdown: Some(tx),
        handle: Some(handle),
    }
}

/// A response read whole: status, headers and JSON body.
pub struct Res {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Res {
    /// The `error.code` of an error response.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("<none>")
    }

    /// Asserts an error response in the one shape: `{success:false, error:{code,message}}`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(self.body["success"], json!(false), "body: {}", self.body);
        assert_eq!(self.code(), code, "body: {}", self.body);
        assert!(
            self.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "error message missing: {}",
            self.body
        );
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Res {
        let res = req.send().await.expect("request failed");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!(
                    "non-JSON body ({status}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Res {
            status,
            headers,
            body,
        }
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Res {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Res {
        self.request(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Res {
        self.request(Method::POST, path, token, Some(body)).await
    }

    /// Registers a user and returns its token.
    pub async fn register(&self, email: &str) -> String {
        let res = self
            .post(
                "/api/auth/register",
                None,
                json!({"email": email, "password": "correct horse", "name": "Test User"}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "register: {}", res.body);
        res.body["data"]["token"]
            .as_str()
            .expect("token")
            .to_owned()
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        self.stop_inner().await;
    }

    async fn stop_inner(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.expect("server task").expect("server io");
        }
    }

    /// Sends the shutdown signal without waiting.
    pub fn signal_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    pub fn take_handle(&mut self) -> JoinHandle<std::io::Result<()>> {
        self.handle.take().expect("handle")
    }
}

/// A change as clients send it.
pub fn change(
    op_id: &str,
    id: &str,
    entity: &str,
    operation: &str,
    data: Value,
    timestamp: &str,
    device: &str,
) -> Value {
    json!({
        "operationId": op_id, "id": id, "entityType": entity, "operation": operation,
        "data": data, "timestamp": timestamp, "deviceId": device,
    })
}

/// `2025-01-01T00:00:00.000Z` plus `secs` seconds: readable, ordered test times.
pub fn at(secs: i64) -> String {
    tidesync_protocol::time::to_iso(1_735_689_600_000 + secs * 1000)
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl TestApp {
    /// `POST /api/sync`; asserts a 200 and returns `data`.
    pub async fn sync(
        &self,
        token: &str,
        device: &str,
        cursor: Value,
        changes: Vec<Value>,
    ) -> Value {
        let res = self
            .sync_raw(
                token,
                json!({"deviceId": device, "lastSyncTimestamp": cursor, "changes": changes}),
            )
            .await;
        assert_eq!(res.status, 200, "sync failed: {}", res.body);
        res.body["data"].clone()
    }

    pub async fn sync_raw(&self, token: &str, body: Value) -> Res {
        self.post("/api/sync", Some(token), body).await
    }
}

/// All records of a sync response (`serverUpdates` or an initial page), by id.
pub fn records_by_id(updates: &Value) -> std::collections::BTreeMap<String, Value> {
    let mut out = std::collections::BTreeMap::new();
    for kind in ["spaces", "categories", "items"] {
        for r in updates[kind].as_array().into_iter().flatten() {
            out.insert(r["id"].as_str().unwrap().to_owned(), r.clone());
        }
    }
    out
}
