//! Building the router and running the server until shutdown.

use std::future::Future;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use hyper_util::server::graceful::GracefulShutdown;
use tidesync_store::Store;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::Service;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::Instrument;

use crate::auth::{hash_password, AuthCache, Tokens};
use crate::config::{data_dir, Secret, ServeArgs};
use crate::error::ApiError;
use crate::limits::{rate_limit, RateLimiter};
use crate::routes;
use crate::state::{AppState, Limits, SyncLimits};

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A configured server, connected to its database and ready to serve.
pub struct App {
    router: Router,
    store: Arc<dyn Store>,
    shutdown_timeout: Duration,
    header_read_timeout: Duration,
    max_connections: usize,
    stopping: tokio::sync::watch::Sender<bool>,
}

impl App {
    /// Connects to the database, applies migrations and prepares the routes.
    pub async fn build(args: &ServeArgs) -> Result<App, StartError> {
        let store = tidesync_store::connect(&args.database.database_url).await?;
        store.migrate().await?;
        let secret = match &args.jwt_secret {
            Some(s) => s.clone(),
            None => load_or_create_secret(&data_dir(&args.database.database_url))?,
        };
        let tokens = Tokens::new(secret.expose().as_bytes(), args.jwt_expire);
        let dummy_hash = hash_password(random_hex(16))
            .await
            .map_err(|e| StartError::Other(e.to_string()))?;
        let (stopping, stopping_rx) = tokio::sync::watch::channel(false);
        let notifier: Arc<crate::notify::Notifier> = Arc::default();
        // PostgreSQL announces every instance's commits (LISTEN/NOTIFY):
        // relay them to this instance's streams and long-polls.
        let notes = store.change_notes();
        let announce_locally = notes.is_none();
        if let Some(mut notes) = notes {
            let notifier = notifier.clone();
            tokio::spawn(async move {
                use tokio::sync::broadcast::error::RecvError;
                loop {
                    match notes.recv().await {
                        Ok(n) => notifier.publish(
                            n.user,
                            crate::notify::Poke {
                                version: n.version,
                                device: n.device,
                            },
                        ),
                        Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => return,
                    }
                }
            });
        }
        let state = AppState {
            store: store.clone(),
            tokens: Arc::new(tokens),
            dummy_hash: Arc::new(dummy_hash),
            auth_cache: Arc::new(AuthCache::new(Duration::from_secs(5))),
            health_ok: Arc::default(),
            notifier,
            announce_locally,
            stopping: stopping_rx,
            limits: Arc::new(Limits {
                general: RateLimiter::new(args.rate_limit_per_minute),
                auth: RateLimiter::new(args.auth_rate_limit_per_minute),
                trust_proxy: args.trust_proxy,
            }),
            sync: SyncLimits {
                max_changes: args.max_changes_per_sync as usize,
                max_wait: args.request_timeout.saturating_sub(Duration::from_secs(5)),
                max_clock_skew_ms: args.max_clock_skew.as_millis() as i64,
            },
        };
        let router = router(state, args)?;
        Ok(App {
            router,
            store,
            stopping,
            shutdown_timeout: args.shutdown_timeout,
            header_read_timeout: args.header_read_timeout,
            max_connections: args.max_connections.max(1),
        })
    }

    /// The database handle, for tests that need to take it away.
    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight
    /// requests finish (bounded by the shutdown timeout) and closes the database.
    ///
    /// Our own accept loop rather than `axum::serve`, for the connection-level
    /// bounds it does not offer: at most `max_connections` open connections
    /// (further clients wait in the kernel's backlog), and a header-read
    /// timeout that also closes idle keep-alive connections.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        // HTTP/1.1 only: hyper's header-read timer bounds slow and idle HTTP/1
        // connections, but an HTTP/2 client answering pings could hold one
        // open forever. Clients and proxies in front speak HTTP/1.1 to us.
        let mut builder = ConnBuilder::new(TokioExecutor::new()).http1_only();
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout);
        let slots = Arc::new(Semaphore::new(self.max_connections));
        let graceful = GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                p = slots.clone().acquire_owned() => p.expect("semaphore never closed"),
                _ = &mut shutdown => break,
            };
            let (stream, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(conn) => conn,
                    Err(e) => {
                        // Out of file descriptors, usually: back off, don't spin.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let router = self.router.clone();
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                router.clone().call(req)
            });
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            let conn = graceful.watch(conn.into_owned());
            tokio::spawn(async move {
                let _ = conn.await;
                drop(permit);
            });
        }
        drop(listener);
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = self.stopping.send(true);
        if tokio::time::timeout(self.shutdown_timeout, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("shutdown timeout reached; dropping remaining requests");
        }
        self.store.close().await;
        tracing::info!("database closed");
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] tidesync_store::StoreError),
    #[error("{0}")]
    Other(String),
}

fn router(state: AppState, args: &ServeArgs) -> Result<Router, StartError> {
    let limiter = middleware::from_fn_with_state(state.clone(), rate_limit);
    let mut router = Router::new()
        .route("/health", get(routes::health::health))
        .route("/", get(crate::demo::index))
        .route("/{file}", get(crate::demo::asset))
        .route("/api/auth/register", post(routes::auth::register))
        .route("/api/auth/login", post(routes::auth::login))
        .route(
            "/api/auth/me",
            get(routes::auth::me).delete(routes::auth::delete_account),
        )
        .route("/api/auth/logout", post(routes::auth::logout))
        .route("/api/auth/password", post(routes::auth::change_password))
        .route("/api/sync", post(routes::sync::sync))
        .route("/api/sync/initial", get(routes::sync::initial))
        .route("/api/sync/stream", get(routes::sync::stream))
        .route("/api/sync/stream-ticket", post(routes::sync::stream_ticket))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(args.max_body_bytes))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal("handler panicked".into()).into_response()
        }))
        .layer(limiter)
        .layer(middleware::from_fn_with_state(
            args.request_timeout,
            request_timeout,
        ));
    if let Some(origins) = &args.cors_origin {
        router = router.layer(cors(origins)?);
    }
    Ok(router
        // gzip or zstd when the client asks (Accept-Encoding): a pull of
        // thousands of records shrinks several times on slow mobile links.
        .layer(CompressionLayer::new())
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn(log_request))
        .with_state(state))
}

fn cors(origins: &str) -> Result<CorsLayer, StartError> {
    let allow = if origins.trim() == "*" {
        AllowOrigin::any()
    } else {
        let list = origins
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(|o| {
                HeaderValue::from_str(o)
                    .map_err(|_| StartError::Other(format!("CORS_ORIGIN: bad origin {o:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        AllowOrigin::list(list)
    };
    Ok(CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        // Listed explicitly: browsers do not accept `*` for Authorization.
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([REQUEST_ID.clone(), header::RETRY_AFTER])
        .max_age(Duration::from_secs(600)))
}

/// Bounds each request. Dropping the handler's future drops its open
/// transaction, which rolls back; a commit already under way may still
/// finish, which is why the answer says "retry" and not "nothing applied":
/// operation ids make the retry safe either way.
async fn request_timeout(
    axum::extract::State(limit): axum::extract::State<Duration>,
    req: Request,
    next: Next,
) -> Response {
    // Event streams are long-lived by design; they end on disconnect or revocation.
    if req.uri().path() == "/api/sync/stream" {
        return next.run(req).await;
    }
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => ApiError::Timeout.into_response(),
    }
}

/// Headers every response carries. Everything the API returns is private to
/// one user (or an error), so nothing may be cached by browsers or proxies.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// One log line per request (method, route, status, latency, request id), and
/// the request id echoed as `x-request-id`. The route is the matched pattern,
/// never the raw URL, so nothing a client puts in a path reaches the log.
async fn log_request(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "<unmatched>".to_owned());
    let span = tracing::info_span!("request", id = %request_id);
    let mut res = next.run(req).instrument(span).await;
    let status = res.status();
    let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(%method, %route, status = status.as_u16(), latency_ms, request_id = %request_id, "request");
    } else {
        tracing::info!(%method, %route, status = status.as_u16(), latency_ms, request_id = %request_id, "request");
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(REQUEST_ID.clone(), v);
    }
    res
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(&mut buf[..]);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads the generated JWT secret kept beside the database, or creates it
/// (mode 0600) on first start.
fn load_or_create_secret(dir: &Path) -> Result<Secret, StartError> {
    let path = dir.join("jwt_secret");
    let io_err = |what: &str, e: std::io::Error| {
        StartError::Other(format!("{what} {}: {e}", path.display()))
    };
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().len() >= 32 => return Ok(Secret::new(s.trim())),
        Ok(_) => {
            return Err(StartError::Other(format!(
                "{} is too short to be a secret; delete it or set JWT_SECRET",
                path.display()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("cannot read", e)),
    }
    tidesync_store::create_private_dir(dir).map_err(|e| io_err("cannot create folder for", e))?;
    let secret = random_hex(32);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(&path) {
        Ok(mut f) => {
            f.write_all(secret.as_bytes())
                .and_then(|_| f.sync_all())
                .map_err(|e| io_err("cannot write", e))?;
            tracing::info!(
                path = %path.display(),
                "JWT_SECRET not set: generated a random secret and saved it (mode 0600); tokens stay valid across restarts"
            );
            Ok(Secret::new(secret))
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_create_secret(dir),
        Err(e) => Err(io_err("cannot create", e)),
    }
}
