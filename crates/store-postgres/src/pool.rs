//! The pool: its options, connecting (with the listener), and the
//! transactions and connections every statement of this backend runs on.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tidesync_protocol::entity::Model;
use tidesync_store::{defaults, StoreError};
use tokio::sync::broadcast;

use crate::error::db;
use crate::{gate, listen, stmt, PostgresStore, Tx};

#[derive(Clone, Debug)]
pub struct PostgresOptions {
    pub max_connections: u32,
    /// How long a request waits for a free connection (then 503).
    pub acquire_timeout: Duration,
    /// A direct connection to the same database, never through a
    /// transaction pooler: LISTEN and the migrations' advisory lock are
    /// session state. `None`: the pool's URL.
    pub direct_url: Option<String>,
    /// Named, cached prepared statements. Off behind PgBouncer in
    /// transaction mode without `max_prepared_statements` (see `stmt.rs`).
    pub named_statements: bool,
    /// `idle_in_transaction_session_timeout` of the pool's sessions: an
    /// instance that loses the database in mid-transaction cannot release
    /// its row locks, so PostgreSQL must, or every other instance's push of
    /// that user waits until the link returns. `None`: the server's setting.
    pub idle_tx_timeout: Option<Duration>,
    /// Most bytes of stored records one transaction of a push loads: a push
    /// that needs more commits in several (PUSH_STEP_BYTES).
    pub push_step_bytes: usize,
    /// The collections records are of (the built-in bucket list unless the
    /// server runs a declared schema).
    pub model: Model,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            // The library's own, for tests and embedders; the server
            // defaults to `defaults::pool_size()` (DB_POOL_SIZE).
            max_connections: 16,
            acquire_timeout: defaults::ACQUIRE_TIMEOUT,
            direct_url: None,
            named_statements: defaults::NAMED_STATEMENTS,
            idle_tx_timeout: Some(defaults::IDLE_TX_TIMEOUT),
            push_step_bytes: defaults::PUSH_STEP_BYTES,
            model: Model::builtin(),
        }
    }
}

impl PostgresStore {
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<Self, StoreError> {
        let mut connect: PgConnectOptions = url.parse().map_err(db)?;
        if !options.named_statements {
            // Nothing to cache: every statement is unnamed (stmt.rs).
            connect = connect.statement_cache_capacity(0);
        }
        let mut pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout);
        // Session settings, one `SET` statement per new connection (not
        // startup options: PgBouncer refuses the `options` startup
        // parameter). Behind PgBouncer they land on one server connection;
        // its own idle_transaction_timeout covers the pooler's side
        // (docs/SCALING.md).
        let mut sets = Vec::new();
        if let Some(t) = options.idle_tx_timeout {
            sets.push(format!(
                "SET idle_in_transaction_session_timeout = {}",
                t.as_millis().max(1)
            ));
        }
        if options.named_statements {
            // Plan each named statement once: with PostgreSQL's default
            // (`auto`) it kept re-planning ours at every execution (their
            // array parameters make a custom plan look cheaper), which was
            // a fifth of the database's CPU in the steady state. Every
            // statement here is a key lookup or a range on an index whose
            // plan does not depend on the values.
            sets.push("SET plan_cache_mode = force_generic_plan".to_owned());
        }
        if !sets.is_empty() {
            let set = sets.join("; ");
            pool = pool.after_connect(move |conn, _| {
                let set = set.clone();
                Box::pin(async move {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(set))
                        .execute(conn)
                        .await?;
                    Ok(())
                })
            });
        }
        let pool = pool.connect_with(connect).await.map_err(db)?;
        let direct_url = options.direct_url.unwrap_or_else(|| url.to_owned());
        // Listening before serving: a stream opened once this returns hears
        // of every later commit, and a wrong LISTEN_DATABASE_URL fails here.
        let l = listen::listener(&direct_url).await.map_err(db)?;
        let (notes, _) = broadcast::channel(1024);
        tokio::spawn(listen::listen(
            l,
            direct_url.clone(),
            pool.clone(),
            notes.clone(),
        ));
        Ok(PostgresStore {
            pool,
            notes,
            direct_url,
            named: options.named_statements,
            gates: gate::Gates::default(),
            limits: tidesync_engine::PushLimits {
                cascade_step: None,
                run_bytes: Some(options.push_step_bytes.max(1)),
            },
            model: options.model,
        })
    }

    /// A transaction on a pooled connection (it owns the connection).
    /// Every statement of this backend runs in one: behind a transaction
    /// pooler only a transaction stays on one server connection, which an
    /// unnamed statement needs between its parse and its execution.
    pub(crate) async fn begin(&self) -> Result<Tx, StoreError> {
        Tx::begin(self.conn().await?, None).await.map_err(db)
    }

    /// `f` with this store's statement mode (stmt.rs).
    pub(crate) async fn scoped<F: std::future::Future>(&self, f: F) -> F::Output {
        stmt::scope(self.named, f).await
    }

    pub(crate) async fn conn(
        &self,
    ) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, StoreError> {
        let waited = std::time::Instant::now();
        let conn = self.pool.acquire().await.map_err(db);
        metrics::histogram!("tidesync_db_acquire_seconds", "pool" => "postgres")
            .record(waited.elapsed().as_secs_f64());
        let size = self.pool.size() as f64;
        metrics::gauge!("tidesync_db_pool_in_use", "pool" => "postgres")
            .set(size - self.pool.num_idle() as f64);
        metrics::gauge!("tidesync_db_pool_size", "pool" => "postgres").set(size);
        conn
    }
}
