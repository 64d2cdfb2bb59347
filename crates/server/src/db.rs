//! Opening the backend a `DATABASE_URL` names. Each backend is a cargo
//! feature (`sqlite`, `postgres`; both on by default).

use std::sync::Arc;
use std::time::Duration;

use tidesync_protocol::entity::Model;
use tidesync_store::{defaults, Store, StoreError};

use crate::config::{DatabaseArgs, ServeArgs};

/// What the backends are tuned with, from the configuration.
#[derive(Clone, Debug)]
pub struct DbOptions {
    pub writer_queue_depth: usize,
    pub writer_queue_bytes: usize,
    /// SQLite: CASCADE_STEP and CASCADE_STEP_BYTES.
    pub cascade_step: usize,
    pub cascade_step_bytes: usize,
    /// PUSH_STEP_BYTES.
    pub push_step_bytes: usize,
    /// PostgreSQL: LISTEN_DATABASE_URL.
    pub listen_url: Option<String>,
    pub pool_size: u32,
    pub named_statements: bool,
    /// PostgreSQL: DB_ACQUIRE_TIMEOUT and DB_IDLE_TX_TIMEOUT.
    pub acquire_timeout: Duration,
    pub idle_tx_timeout: Duration,
    /// The collections the server syncs (the built-in bucket list unless
    /// it runs a declared schema).
    pub model: Model,
}

impl DbOptions {
    pub fn from_args(args: &ServeArgs) -> DbOptions {
        DbOptions {
            writer_queue_depth: args.writer_queue_depth as usize,
            writer_queue_bytes: args.writer_queue_bytes as usize,
            cascade_step: args.cascade_step as usize,
            cascade_step_bytes: args.cascade_step_bytes as usize,
            push_step_bytes: args.push_step_bytes as usize,
            ..DbOptions::from_database(&args.database)
        }
    }

    /// For the subcommands, which have only the database's settings.
    pub fn from_database(args: &DatabaseArgs) -> DbOptions {
        DbOptions {
            listen_url: args.listen_database_url.clone(),
            pool_size: args.db_pool_size,
            named_statements: args.db_named_statements,
            acquire_timeout: args.db_acquire_timeout,
            idle_tx_timeout: args.db_idle_tx_timeout,
            ..DbOptions::default()
        }
    }
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            writer_queue_depth: defaults::WRITER_QUEUE_DEPTH,
            writer_queue_bytes: defaults::WRITER_QUEUE_BYTES,
            cascade_step: defaults::CASCADE_STEP,
            cascade_step_bytes: defaults::CASCADE_STEP_BYTES,
            push_step_bytes: defaults::PUSH_STEP_BYTES,
            listen_url: None,
            pool_size: defaults::pool_size(),
            named_statements: defaults::NAMED_STATEMENTS,
            acquire_timeout: defaults::ACQUIRE_TIMEOUT,
            idle_tx_timeout: defaults::IDLE_TX_TIMEOUT,
            model: Model::builtin(),
        }
    }
}

pub use tidesync_store::sqlite_file;

/// Opens the backend named by the URL scheme: `sqlite:` or `postgres(ql):`.
pub async fn connect(url: &str, options: &DbOptions) -> Result<Arc<dyn Store>, StoreError> {
    let _ = options;
    if url.starts_with("sqlite:") {
        #[cfg(feature = "sqlite")]
        {
            let o = tidesync_store_sqlite::SqliteOptions {
                writer_queue_depth: options.writer_queue_depth,
                writer_queue_bytes: options.writer_queue_bytes,
                cascade_step: options.cascade_step,
                cascade_step_bytes: options.cascade_step_bytes,
                push_step_bytes: options.push_step_bytes,
                model: options.model,
                ..Default::default()
            };
            let url = url.to_owned();
            // Opening creates files and threads: not on the executor.
            let store = tokio::task::spawn_blocking(move || {
                tidesync_store_sqlite::SqliteStore::open(&url, o)
            })
            .await
            .map_err(|e| StoreError::Internal(e.to_string()))??;
            return Ok(Arc::new(store));
        }
        #[cfg(not(feature = "sqlite"))]
        return Err(StoreError::Config(
            "this tidesync was built without SQLite (cargo feature `sqlite`)".into(),
        ));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        #[cfg(feature = "postgres")]
        {
            let o = tidesync_store_postgres::PostgresOptions {
                max_connections: options.pool_size,
                acquire_timeout: options.acquire_timeout,
                direct_url: options.listen_url.clone(),
                named_statements: options.named_statements,
                push_step_bytes: options.push_step_bytes,
                idle_tx_timeout: Some(options.idle_tx_timeout),
                model: options.model,
            };
            return Ok(Arc::new(
                tidesync_store_postgres::PostgresStore::connect(url, o).await?,
            ));
        }
        #[cfg(not(feature = "postgres"))]
        return Err(StoreError::Config(
            "this tidesync was built without PostgreSQL (cargo feature `postgres`)".into(),
        ));
    }
    Err(StoreError::Config(
        "DATABASE_URL must start with sqlite: or postgres://".into(),
    ))
}

/// `tidesync backup`: a consistent copy of a SQLite database, taken while
/// the server runs.
pub fn backup(db: &std::path::Path, dest: &std::path::Path) -> Result<u64, StoreError> {
    #[cfg(feature = "sqlite")]
    return tidesync_store_sqlite::backup::backup(db, dest);
    #[cfg(not(feature = "sqlite"))]
    {
        let _ = (db, dest);
        Err(StoreError::Config(
            "this tidesync was built without SQLite".into(),
        ))
    }
}

#[cfg(feature = "sqlite")]
pub use tidesync_store_sqlite::backup::RestoreStep;

/// What a restore is doing, for a progress display.
#[cfg(not(feature = "sqlite"))]
#[derive(Clone, Copy, Debug)]
pub enum RestoreStep {
    Copying { done: u64, total: u64 },
    Preparing,
}

/// `tidesync restore`: puts a backup in place (creating the database's
/// folder on a fresh machine); refuses while a server has the database open.
pub fn restore(
    src: &std::path::Path,
    db: &std::path::Path,
    progress: &mut dyn FnMut(RestoreStep),
) -> Result<(), StoreError> {
    #[cfg(feature = "sqlite")]
    return tidesync_store_sqlite::backup::restore_with(src, db, progress);
    #[cfg(not(feature = "sqlite"))]
    {
        let _ = (src, db, progress);
        Err(StoreError::Config(
            "this tidesync was built without SQLite".into(),
        ))
    }
}
