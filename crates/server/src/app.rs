//! Building the router and running the server until shutdown.

use std::future::Future;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use hyper_util::server::graceful::GracefulShutdown;
use tidesync_protocol::entity::Model;
use tidesync_protocol::schema::Schema;
use tidesync_store::Store;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::Service;

use crate::auth::{AuthCache, Authenticator, Tokens};
use crate::config::{data_dir, Secret, ServeArgs};
use crate::db::DbOptions;
use crate::exports::{ExportLimits, Exports};
use crate::limits::{Limits, RateLimiter};
use crate::password::hash_password;
use crate::session::{Sessions, SyncLimits};
use crate::stall::{Guarded, StallLimit};
use crate::state::AppState;

/// A configured server, connected to its database and ready to serve.
pub struct App {
    router: Router,
    store: Arc<dyn Store>,
    shutdown_timeout: Duration,
    header_read_timeout: Duration,
    max_connections: usize,
    stopping: tokio::sync::watch::Sender<bool>,
    retention: crate::config::RetentionArgs,
    gc_interval: Duration,
}

impl App {
    /// Reads the schema, connects to the database, applies migrations,
    /// compares the schema with the one served before, and prepares the
    /// routes.
    pub async fn build(args: &ServeArgs) -> Result<App, StartError> {
        // Before the database: a broken schema file touches nothing.
        let schema = args.load_schema()?;
        Self::build_with_schema(args, schema).await
    }

    /// The same, syncing the collections of `schema` whatever `args` says
    /// (tests of another app's model).
    pub async fn build_with_schema(
        args: &ServeArgs,
        schema: Arc<Schema>,
    ) -> Result<App, StartError> {
        let model = Model::load((*schema).clone());
        let options = DbOptions {
            model,
            ..DbOptions::from_args(args)
        };
        let store = crate::db::connect(&args.database.database_url, &options).await?;
        Self::build_on(args, store, schema, model).await
    }

    /// The same on a store opened by the caller (tests that keep a handle on
    /// the concrete backend).
    pub async fn build_with_store(
        args: &ServeArgs,
        store: Arc<dyn Store>,
    ) -> Result<App, StartError> {
        let schema = args.load_schema()?;
        let model = Model::load((*schema).clone());
        Self::build_on(args, store, schema, model).await
    }

    /// `store` must have been opened with `model` (its option), the model
    /// of `schema`.
    async fn build_on(
        args: &ServeArgs,
        store: Arc<dyn Store>,
        schema: Arc<Schema>,
        model: Model,
    ) -> Result<App, StartError> {
        let store: Arc<dyn Store> = Arc::new(crate::traced::Traced(store));
        store.migrate().await?;
        if let Err(e) =
            crate::schema::evolve(&*store, &schema, args.allow_breaking_schema_changes).await
        {
            // Refused: nothing keeps the database open (SQLite's lock).
            store.close().await;
            return Err(e.into());
        }
        let secret = match &args.jwt_secret {
            Some(s) => s.clone(),
            None => load_or_create_secret(&data_dir(&args.database.database_url))?,
        };
        let tokens = Tokens::new(secret.expose().as_bytes(), args.jwt_expire);
        let dummy_hash = hash_password(random_hex(16))
            .await
            .map_err(|e| StartError::Other(e.to_string()))?;
        let (stopping, stopping_rx) = tokio::sync::watch::channel(false);
        let auth = Arc::new(Authenticator {
            tokens,
            cache: AuthCache::new(Duration::from_secs(5)),
            store: store.clone(),
        });
        let woken_pulls = match store.backend() {
            // Half of SQLite's 4 readers.
            tidesync_store::Backend::Sqlite => 2,
            tidesync_store::Backend::Postgres => (args.database.db_pool_size as usize / 2).max(1),
        };
        // Relays what the store announces to this instance's streams and
        // long-polls (session.rs).
        let sessions = Sessions::start(
            store.clone(),
            auth.clone(),
            SyncLimits {
                max_changes: args.max_changes_per_sync as usize,
                max_wait: args.request_timeout.saturating_sub(Duration::from_secs(5)),
                max_clock_skew_ms: args.max_clock_skew.as_millis() as i64,
                max_page_bytes: args.max_page_bytes as usize,
            },
            woken_pulls,
        );
        let state = AppState {
            model,
            schema_document: schema.to_json_pretty().into(),
            store: store.clone(),
            auth,
            sessions: Arc::new(sessions),
            dummy_hash: Arc::new(dummy_hash),
            health: Arc::default(),
            stopping: stopping_rx,
            exports: Arc::new(Exports::new(ExportLimits {
                max: args.max_exports as usize,
                per_space: args.max_exports_per_space as usize,
                idle: args.export_idle_timeout,
            })),
            limits: Arc::new(Limits {
                general: RateLimiter::new(args.rate_limit_per_minute),
                auth: RateLimiter::new(args.auth_rate_limit_per_minute),
                health: RateLimiter::new(args.health_rate_limit_per_minute),
                trust_proxy: args.trust_proxy,
            }),
            invite_limits: tidesync_store::InviteLimits {
                per_hour: args.invitations_per_hour,
                pending_per_space: args.pending_invitations_per_space,
            },
        };
        let router = crate::router::router(state, args)?;
        Ok(App {
            router,
            store,
            stopping,
            shutdown_timeout: args.shutdown_timeout,
            header_read_timeout: args.header_read_timeout,
            max_connections: args.max_connections.max(1),
            retention: args.retention.clone(),
            gc_interval: args.gc_interval,
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
        tokio::spawn(crate::background::collect_history(
            self.store.clone(),
            self.retention.clone(),
            self.gc_interval,
            self.stopping.subscribe(),
        ));
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
            // Off unless a route arms it (the export): see `stall`.
            let stall = StallLimit::default();
            let stream = Guarded::new(stream, stall.clone());
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req.extensions_mut().insert(stall.clone());
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
    #[error(transparent)]
    Router(#[from] crate::router::RouterError),
    #[error(transparent)]
    SchemaFile(#[from] crate::schema::SchemaFileError),
    #[error(transparent)]
    SchemaChange(#[from] crate::schema::SchemaChangeError),
    #[error("{0}")]
    Other(String),
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
