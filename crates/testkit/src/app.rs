//! The server in this process, on a port of its own, and the raw HTTP
//! helpers for requests no client would send.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tidesync::config::{Secret, ServeArgs};
use tidesync::App;
use tidesync_client::{Client, ErrorCode};
use tidesync_store::Store;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::db::TestDb;

pub const TEST_SECRET: &str = "test-secret-0123456789abcdef0123456789";
/// The password of every user that [`TestApp::register`] creates.
pub const PASSWORD: &str = "correct horse";

/// A running server on 127.0.0.1.
pub struct TestApp {
    pub base: String,
    /// For raw requests (malformed bodies, odd headers).
    pub http: reqwest::Client,
    /// The typed client, signed in as nobody.
    pub api: Client,
    pub store: Arc<dyn Store>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<std::io::Result<()>>>,
}

/// The configuration tests start from: `db`, a fixed secret, and rate
/// limits out of the way (they have tests of their own).
pub fn test_args(db: &TestDb) -> ServeArgs {
    let mut args = ServeArgs::with_database(&db.url);
    args.jwt_secret = Some(Secret::new(TEST_SECRET));
    args.rate_limit_per_minute = 1_000_000;
    args.auth_rate_limit_per_minute = 1_000_000;
    args
}

pub async fn spawn_app(db: &TestDb) -> TestApp {
    spawn_with(test_args(db)).await
}

pub async fn spawn_with(args: ServeArgs) -> TestApp {
    serve(App::build(&args).await.expect("build app")).await
}

/// The server syncing the collections of `schema` (issue 21) instead of
/// the built-in bucket list.
pub async fn spawn_with_schema(db: &TestDb, schema: tidesync_protocol::schema::Schema) -> TestApp {
    serve(
        App::build_with_schema(&test_args(db), Arc::new(schema))
            .await
            .expect("build app"),
    )
    .await
}

/// The server on a store the test opened itself (to keep a handle on the
/// concrete backend, e.g. to hold or break SQLite's writer).
pub async fn spawn_with_store(args: ServeArgs, store: Arc<dyn Store>) -> TestApp {
    serve(
        App::build_with_store(&args, store)
            .await
            .expect("build app"),
    )
    .await
}

async fn serve(app: App) -> TestApp {
    let store = app.store();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(app.serve(listener, async move {
        let _ = rx.await;
    }));
    let base = format!("http://{addr}");
    TestApp {
        api: Client::new(&base).expect("client"),
        base,
        http: reqwest::Client::new(),
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

/// Asserts that a typed call failed with the server's error `code` and
/// `status`, with a message; returns the error.
#[track_caller]
pub fn expect_api_error<T: std::fmt::Debug>(
    r: Result<T, tidesync_client::Error>,
    status: u16,
    code: ErrorCode,
) -> tidesync_client::ApiError {
    match r {
        Err(tidesync_client::Error::Api(e)) => {
            assert_eq!(
                (e.status.as_u16(), e.code),
                (status, code),
                "wrong error: {e}"
            );
            assert!(!e.message.is_empty(), "error message missing: {e}");
            *e
        }
        other => panic!("expected {status} {code}, got {other:?}"),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The typed client signed in with `token`.
    pub fn client(&self, token: &str) -> Client {
        self.api.with_token(token)
    }

    /// Registers `email` (password [`PASSWORD`]); returns its signed-in client.
    pub async fn user(&self, email: &str) -> Client {
        let auth = self
            .api
            .register(email, PASSWORD, "Test User")
            .await
            .unwrap_or_else(|e| panic!("register {email}: {e}"));
        self.client(&auth.token)
    }

    /// Registers `email` and returns its token.
    pub async fn register(&self, email: &str) -> String {
        self.user(email).await.token().expect("token").to_owned()
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
        let mut req = self.http.request(method, self.url(path));
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

    /// `POST /api/sync` with JSON changes; asserts a 200 and returns `data`.
    /// The wire-level tests use this to see the exact JSON answered.
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

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        self.signal_shutdown();
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
