//! Configuration: command-line flags, then environment variables (a `.env`
//! file is read first), then defaults. Nothing is required.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/tidesync.db";

/// Each default of a flag, written once: the flags (`default_value`) and
/// [`ServeArgs::with_database`] / [`DatabaseArgs::new`] read these; the
/// backends' tuning is in `tidesync_store::defaults`. Durations are the
/// text a flag takes (`parse_duration`).
pub mod defaults {
    pub const PORT: u16 = 5000;
    pub const HOST: &str = "0.0.0.0";
    pub const JWT_EXPIRE: &str = "7d";
    pub const MAX_BODY_BYTES: usize = 5 * 1024 * 1024;
    pub const MAX_CHANGES_PER_SYNC: u32 = 1000;
    pub const MAX_CLOCK_SKEW: &str = "5m";
    pub const RATE_LIMIT_PER_MINUTE: u32 = 100;
    pub const AUTH_RATE_LIMIT_PER_MINUTE: u32 = 10;
    pub const HEALTH_RATE_LIMIT_PER_MINUTE: u32 = 600;
    pub const INVITATIONS_PER_HOUR: u32 = 20;
    pub const PENDING_INVITATIONS_PER_SPACE: u32 = 50;
    pub const REQUEST_TIMEOUT: &str = "30s";
    pub const HEADER_READ_TIMEOUT: &str = "10s";
    pub const MAX_CONNECTIONS: usize = 10_000;
    pub const SHUTDOWN_TIMEOUT: &str = "10s";
    pub const MAX_PAGE_BYTES: u64 = 4 * 1024 * 1024;
    pub const EXPORT_IDLE_TIMEOUT: &str = "30s";
    pub const MAX_EXPORTS: u32 = 4;
    pub const MAX_EXPORTS_PER_SPACE: u32 = 2;
    pub const HISTORY_RETENTION: &str = "90d";
    pub const LOG_RETENTION: &str = "180d";
    pub const GC_INTERVAL: &str = "1h";
    /// `tidesync_store::defaults::ACQUIRE_TIMEOUT` and `IDLE_TX_TIMEOUT`
    /// as flag text (a test checks they agree).
    pub const DB_ACQUIRE_TIMEOUT: &str = "5s";
    pub const DB_IDLE_TX_TIMEOUT: &str = "10s";
}

/// A default duration's text, parsed.
fn default_duration(text: &str) -> Duration {
    parse_duration(text).expect("a default duration parses")
}

#[derive(Parser, Debug)]
#[command(
    name = "tidesync",
    version,
    about = "Offline-first sync backend: clients push operations, pull what changed.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

// Parsed once at start: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP server (the default when no subcommand is given).
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseArgs),
    /// Remove history older than the retention horizons once, and exit
    /// (the server also does it every GC_INTERVAL).
    Gc(GcArgs),
    /// Copy the SQLite database to FILE, consistently, while the server runs
    /// (PostgreSQL: use pg_dump, see docs/OPERATIONS.md).
    Backup(BackupArgs),
    /// Put a backup made by `tidesync backup` in place of the SQLite
    /// database, and make every device resync once (see forget-cursors).
    /// The server must be stopped.
    Restore(BackupArgs),
    /// After restoring a database by other means (pg_restore): make every
    /// device's cursor stale, so that each device resyncs once (409
    /// resync_required) rather than miss changes. Then start the servers.
    ForgetCursors(DatabaseArgs),
    /// Import another server's data (see docs/MIGRATING.md).
    Import(ImportArgs),
    /// Check a data-model schema file, or print the one the server runs
    /// (docs/SCHEMA.md).
    #[command(subcommand)]
    Schema(SchemaCommand),
}

#[derive(Subcommand, Debug, Clone)]
pub enum SchemaCommand {
    /// Report every problem of a schema file, one per line with its JSON
    /// path; exit 1 when there is any.
    Check {
        /// The schema file (JSON).
        file: PathBuf,
    },
    /// Print the schema the server runs: the SCHEMA file's, checked, or
    /// the built-in bucket list.
    Print {
        /// The schema file `serve` would run (as `serve --schema`).
        #[arg(long, env = "SCHEMA")]
        schema: Option<PathBuf>,
    },
}

#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    #[command(subcommand)]
    pub source: ImportSource,
}

#[derive(Subcommand, Debug, Clone)]
pub enum ImportSource {
    /// Import the original Node.js/MongoDB server's users, spaces,
    /// categories, items and synclogs from mongoexport files in DIR
    /// (users.json, spaces.json, categories.json, items.json, synclogs.json;
    /// JSON arrays or one document per line, canonical or relaxed Extended
    /// JSON). Idempotent: what is already imported is left alone. Prints a
    /// summary; exits nonzero only when the import cannot run.
    Mongo(MongoImportArgs),
}

#[derive(Args, Debug, Clone)]
pub struct MongoImportArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The folder of the mongoexport files.
    pub dir: PathBuf,
    /// Read and check everything, report, and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Where the temporary files that group the documents by user go
    /// (about the size of the export; removed at the end). Default: the
    /// system's temporary folder.
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
}

/// How long history is kept (see docs/OPERATIONS.md, "Retention").
#[derive(Args, Debug, Clone)]
pub struct RetentionArgs {
    /// Tombstones older than this are removed; a device whose cursor is
    /// older gets 409 resync_required (s, m, h or d).
    #[arg(long, env = "HISTORY_RETENTION", default_value = defaults::HISTORY_RETENTION, value_parser = parse_duration)]
    pub history_retention: Duration,

    /// sync_log rows (operation ids and their answers) older than this are
    /// removed: a retry of an older operation is no longer recognised. At
    /// least HISTORY_RETENTION (s, m, h or d).
    #[arg(long, env = "LOG_RETENTION", default_value = defaults::LOG_RETENTION, value_parser = parse_duration)]
    pub log_retention: Duration,
}

#[derive(Args, Debug, Clone)]
pub struct GcArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub retention: RetentionArgs,
}

#[derive(Args, Debug, Clone)]
pub struct BackupArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The backup file (written by backup, which refuses to overwrite; read by restore).
    pub file: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct DatabaseArgs {
    /// Database to use: sqlite://PATH (embedded, the default) or postgres://USER@HOST/DB.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub database_url: String,

    /// PostgreSQL: a direct connection to the same database, not through a
    /// transaction pooler, for LISTEN (pokes from other instances) and
    /// migrations (their advisory lock). Unset: DATABASE_URL.
    #[arg(long, env = "LISTEN_DATABASE_URL", hide_env_values = true)]
    pub listen_database_url: Option<String>,

    /// PostgreSQL: connections in this instance's pool. Default: 4 per CPU
    /// core of this machine.
    #[arg(long, env = "DB_POOL_SIZE", default_value_t = default_pool_size(), value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub db_pool_size: u32,

    /// PostgreSQL: named (cached) prepared statements. Set to false behind
    /// PgBouncer in transaction mode older than 1.21, or without
    /// max_prepared_statements: statements are then unnamed.
    #[arg(long, env = "DB_NAMED_STATEMENTS", default_value_t = tidesync_store::defaults::NAMED_STATEMENTS, action = clap::ArgAction::Set)]
    pub db_named_statements: bool,

    /// PostgreSQL: longest a request waits for a connection of the pool
    /// (opening one included), then 503 database_unavailable (s, m, h or d).
    #[arg(long, env = "DB_ACQUIRE_TIMEOUT", default_value = defaults::DB_ACQUIRE_TIMEOUT, value_parser = parse_duration)]
    pub db_acquire_timeout: Duration,

    /// PostgreSQL: a transaction of this instance idle for longer is ended by
    /// PostgreSQL (idle_in_transaction_session_timeout, set per session),
    /// releasing its locks: bounds how long an instance cut off from the
    /// database in mid-push blocks other instances' pushes of the same user
    /// (s, m, h or d).
    #[arg(long, env = "DB_IDLE_TX_TIMEOUT", default_value = defaults::DB_IDLE_TX_TIMEOUT, value_parser = parse_duration)]
    pub db_idle_tx_timeout: Duration,
}

/// The PostgreSQL pool's default size (`tidesync_store::defaults::pool_size`).
pub fn default_pool_size() -> u32 {
    tidesync_store::defaults::pool_size()
}

impl DatabaseArgs {
    pub fn new(database_url: impl Into<String>) -> Self {
        DatabaseArgs {
            database_url: database_url.into(),
            listen_database_url: None,
            db_pool_size: default_pool_size(),
            db_named_statements: tidesync_store::defaults::NAMED_STATEMENTS,
            db_acquire_timeout: default_duration(defaults::DB_ACQUIRE_TIMEOUT),
            db_idle_tx_timeout: default_duration(defaults::DB_IDLE_TX_TIMEOUT),
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// TCP port to listen on.
    #[arg(long, env = "PORT", default_value_t = defaults::PORT)]
    pub port: u16,

    /// Address to listen on.
    #[arg(long, env = "HOST", default_value = defaults::HOST)]
    pub host: String,

    #[command(flatten)]
    pub database: DatabaseArgs,

    /// The data model to serve: a schema file (docs/SCHEMA.md), checked at
    /// start. Unset: the built-in bucket list.
    #[arg(long, env = "SCHEMA")]
    pub schema: Option<PathBuf>,

    /// Start even when the schema changes in a way that breaks clients
    /// (a removed property, a tighter limit…); each change is logged.
    /// Otherwise such a start is refused (docs/SCHEMA.md, "Changing the
    /// schema of a running deployment").
    #[arg(long, env = "ALLOW_BREAKING_SCHEMA_CHANGES", default_value_t = false)]
    pub allow_breaking_schema_changes: bool,

    /// Secret that signs tokens (HS256). When unset, a random one is generated on
    /// first start and kept in `jwt_secret` beside the SQLite file (or in ./data/).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,

    /// How long a token stays valid: a number with s, m, h or d (e.g. 30m, 7d).
    #[arg(long, env = "JWT_EXPIRE", default_value = defaults::JWT_EXPIRE, value_parser = parse_duration)]
    pub jwt_expire: Duration,

    /// Origins allowed to call the API from a browser, comma-separated, or `*`.
    /// Unset: no cross-origin access.
    #[arg(long, env = "CORS_ORIGIN")]
    pub cors_origin: Option<String>,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = defaults::MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// Most changes accepted in one sync request; more get 413 too_many_changes.
    #[arg(long, env = "MAX_CHANGES_PER_SYNC", default_value_t = defaults::MAX_CHANGES_PER_SYNC, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_changes_per_sync: u32,

    /// Client timestamps further than this in the server's future are clamped
    /// to the server's time (s, m, h or d).
    #[arg(long, env = "MAX_CLOCK_SKEW", default_value = defaults::MAX_CLOCK_SKEW, value_parser = parse_duration)]
    pub max_clock_skew: Duration,

    /// Requests per minute per user (authenticated routes) or per client IP.
    #[arg(long, env = "RATE_LIMIT_PER_MINUTE", default_value_t = defaults::RATE_LIMIT_PER_MINUTE)]
    pub rate_limit_per_minute: u32,

    /// Login and register attempts per minute, per client IP and per email.
    #[arg(long, env = "AUTH_RATE_LIMIT_PER_MINUTE", default_value_t = defaults::AUTH_RATE_LIMIT_PER_MINUTE)]
    pub auth_rate_limit_per_minute: u32,

    /// `/health` requests per minute per client IP (load balancers and
    /// orchestrator probes stay far below it).
    #[arg(long, env = "HEALTH_RATE_LIMIT_PER_MINUTE", default_value_t = defaults::HEALTH_RATE_LIMIT_PER_MINUTE, value_parser = clap::value_parser!(u32).range(1..))]
    pub health_rate_limit_per_minute: u32,

    /// Invitations to shared spaces one user may send per hour (counted in
    /// the database, so across instances); beyond, 429 `rate_limited`.
    #[arg(long, env = "INVITATIONS_PER_HOUR", default_value_t = defaults::INVITATIONS_PER_HOUR, value_parser = clap::value_parser!(u32).range(1..))]
    pub invitations_per_hour: u32,

    /// Pending, unexpired invitations one space may have; beyond, 429.
    #[arg(long, env = "PENDING_INVITATIONS_PER_SPACE", default_value_t = defaults::PENDING_INVITATIONS_PER_SPACE, value_parser = clap::value_parser!(u32).range(1..))]
    pub pending_invitations_per_space: u32,

    /// Take the client IP from the last X-Forwarded-For entry. Set only behind
    /// a reverse proxy that appends it; otherwise clients could pick their IP.
    #[arg(long, env = "TRUST_PROXY", default_value_t = false)]
    pub trust_proxy: bool,

    /// Longest a request may take, body upload included; then 503 `timeout`
    /// and the request's transaction is rolled back.
    #[arg(long, env = "REQUEST_TIMEOUT", default_value = defaults::REQUEST_TIMEOUT, value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// Longest a client may take to send a request's headers, and longest an
    /// idle keep-alive connection stays open.
    #[arg(long, env = "HEADER_READ_TIMEOUT", default_value = defaults::HEADER_READ_TIMEOUT, value_parser = parse_duration)]
    pub header_read_timeout: Duration,

    /// Most connections open at once; further clients wait to be accepted.
    /// The process's open-file limit (ulimit -n) must allow it.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = defaults::MAX_CONNECTIONS)]
    pub max_connections: usize,

    /// On SIGINT/SIGTERM, how long in-flight requests may take to finish.
    #[arg(long, env = "SHUTDOWN_TIMEOUT", default_value = defaults::SHUTDOWN_TIMEOUT, value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// Most bytes of records in one page of a pull; a page stops at `limit`
    /// records or this, whichever comes first (`hasMore` says to go on).
    #[arg(long, env = "MAX_PAGE_BYTES", default_value_t = defaults::MAX_PAGE_BYTES, value_parser = clap::value_parser!(u64).range(1024..=1024 * 1024 * 1024))]
    pub max_page_bytes: u64,

    /// A data export whose client accepts no bytes of it for this long is
    /// cut: the connection closes and the export's memory is freed. The
    /// export's body is not bounded by REQUEST_TIMEOUT (s, m, h or d).
    #[arg(long, env = "EXPORT_IDLE_TIMEOUT", default_value = defaults::EXPORT_IDLE_TIMEOUT, value_parser = parse_duration)]
    pub export_idle_timeout: Duration,

    /// Most data exports streaming at once on this instance; beyond, 503
    /// `busy` with Retry-After.
    #[arg(long, env = "MAX_EXPORTS", default_value_t = defaults::MAX_EXPORTS, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_exports: u32,

    /// Most data exports at once that read one shared space (one per member
    /// exporting it); beyond, 503 `busy` with Retry-After.
    #[arg(long, env = "MAX_EXPORTS_PER_SPACE", default_value_t = defaults::MAX_EXPORTS_PER_SPACE, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_exports_per_space: u32,

    /// SQLite: most requests waiting for the writer; beyond, 503 `busy`.
    #[arg(long, env = "WRITER_QUEUE_DEPTH", default_value_t = tidesync_store::defaults::WRITER_QUEUE_DEPTH as u64, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub writer_queue_depth: u64,

    /// SQLite: most bytes of requests waiting for the writer; beyond, 503 `busy`.
    #[arg(long, env = "WRITER_QUEUE_BYTES", default_value_t = tidesync_store::defaults::WRITER_QUEUE_BYTES as u64, value_parser = clap::value_parser!(u64).range(1024..=16 * 1024 * 1024 * 1024))]
    pub writer_queue_bytes: u64,

    /// SQLite: most records one transaction of a cascading delete deletes;
    /// a larger one commits its children in steps of this many, with other
    /// requests' writes in between.
    #[arg(long, env = "CASCADE_STEP", default_value_t = tidesync_store::defaults::CASCADE_STEP as u64, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub cascade_step: u64,

    /// SQLite: most bytes (of records, as stored) one transaction of a
    /// cascading delete deletes; a larger one commits in steps.
    #[arg(long, env = "CASCADE_STEP_BYTES", default_value_t = tidesync_store::defaults::CASCADE_STEP_BYTES as u64, value_parser = clap::value_parser!(u64).range(1024..=16 * 1024 * 1024 * 1024))]
    pub cascade_step_bytes: u64,

    /// Most bytes (of stored records) one transaction of a push loads and
    /// may rewrite; a push that needs more commits in steps, other
    /// requests' writes in between.
    #[arg(long, env = "PUSH_STEP_BYTES", default_value_t = tidesync_store::defaults::PUSH_STEP_BYTES as u64, value_parser = clap::value_parser!(u64).range(1024..=16 * 1024 * 1024 * 1024))]
    pub push_step_bytes: u64,

    #[command(flatten)]
    pub retention: RetentionArgs,

    /// How often history past the retention horizons is collected.
    #[arg(long, env = "GC_INTERVAL", default_value = defaults::GC_INTERVAL, value_parser = parse_duration)]
    pub gc_interval: Duration,

    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464).
    /// Unset: no metrics. A separate address, so they are never public by
    /// accident.
    #[arg(long, env = "METRICS_ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
}

impl ServeArgs {
    /// The schema to serve: the `SCHEMA` file's, read and checked (every
    /// problem, each with its JSON path), or the built-in bucket list. Held
    /// once; the engine and stores take it at construction.
    pub fn load_schema(
        &self,
    ) -> Result<std::sync::Arc<tidesync_protocol::schema::Schema>, crate::schema::SchemaFileError>
    {
        crate::schema::load(self.schema.as_deref())
    }

    /// The defaults, as if no flag or variable were set, for `database_url`.
    /// Used by tests that build the server in-process.
    pub fn with_database(database_url: impl Into<String>) -> Self {
        use tidesync_store::defaults as store;
        ServeArgs {
            // Not the flags' defaults: a test server takes any free port on
            // the loopback interface only.
            port: 0,
            host: "127.0.0.1".into(),
            database: DatabaseArgs::new(database_url),
            schema: None,
            allow_breaking_schema_changes: false,
            jwt_secret: None,
            jwt_expire: default_duration(defaults::JWT_EXPIRE),
            cors_origin: None,
            log_format: LogFormat::Pretty,
            max_body_bytes: defaults::MAX_BODY_BYTES,
            shutdown_timeout: default_duration(defaults::SHUTDOWN_TIMEOUT),
            max_changes_per_sync: defaults::MAX_CHANGES_PER_SYNC,
            rate_limit_per_minute: defaults::RATE_LIMIT_PER_MINUTE,
            auth_rate_limit_per_minute: defaults::AUTH_RATE_LIMIT_PER_MINUTE,
            health_rate_limit_per_minute: defaults::HEALTH_RATE_LIMIT_PER_MINUTE,
            invitations_per_hour: defaults::INVITATIONS_PER_HOUR,
            pending_invitations_per_space: defaults::PENDING_INVITATIONS_PER_SPACE,
            trust_proxy: false,
            request_timeout: default_duration(defaults::REQUEST_TIMEOUT),
            header_read_timeout: default_duration(defaults::HEADER_READ_TIMEOUT),
            max_connections: defaults::MAX_CONNECTIONS,
            max_clock_skew: default_duration(defaults::MAX_CLOCK_SKEW),
            max_page_bytes: defaults::MAX_PAGE_BYTES,
            export_idle_timeout: default_duration(defaults::EXPORT_IDLE_TIMEOUT),
            max_exports: defaults::MAX_EXPORTS,
            max_exports_per_space: defaults::MAX_EXPORTS_PER_SPACE,
            writer_queue_depth: store::WRITER_QUEUE_DEPTH as u64,
            writer_queue_bytes: store::WRITER_QUEUE_BYTES as u64,
            cascade_step: store::CASCADE_STEP as u64,
            cascade_step_bytes: store::CASCADE_STEP_BYTES as u64,
            push_step_bytes: store::PUSH_STEP_BYTES as u64,
            retention: RetentionArgs {
                history_retention: default_duration(defaults::HISTORY_RETENTION),
                log_retention: default_duration(defaults::LOG_RETENTION),
            },
            gc_interval: default_duration(defaults::GC_INTERVAL),
            metrics_addr: None,
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// A secret string that never shows in `Debug` or `Display` output.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl std::str::FromStr for Secret {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() < 16 {
            return Err("must be at least 16 characters".into());
        }
        Ok(Secret(s.to_string()))
    }
}

/// Parses `90`, `90s`, `15m`, `12h` or `7d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c),
        _ => (s, 's'),
    };
    let n: u64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30s, 15m, 12h or 7d"))?;
    let secs = match unit {
        's' => Some(n),
        'm' => n.checked_mul(60),
        'h' => n.checked_mul(3600),
        'd' => n.checked_mul(86_400),
        _ => return Err(format!("{s:?}: unit must be s, m, h or d")),
    }
    .ok_or_else(|| format!("{s:?} is too long"))?;
    if secs == 0 {
        return Err("must be longer than zero".into());
    }
    Ok(Duration::from_secs(secs))
}

impl RetentionArgs {
    /// The horizons of a collection at `now` (server time, milliseconds).
    /// The log is kept at least as long as tombstones: a retried create of a
    /// record whose tombstone was collected must still be recognised.
    pub fn horizon(&self, now: i64) -> tidesync_store::GcHorizon {
        let ms = |d: Duration| d.as_millis().min(i64::MAX as u128) as i64;
        let log = self.log_retention.max(self.history_retention);
        tidesync_store::GcHorizon {
            tombstones_before: now.saturating_sub(ms(self.history_retention)),
            log_before: now.saturating_sub(ms(log)),
            now,
        }
    }
}

/// Folder for files that belong with the database (the generated JWT secret).
pub fn data_dir(database_url: &str) -> PathBuf {
    match tidesync_store::sqlite_file(database_url) {
        Some(file) => match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        },
        None => PathBuf::from("data"),
    }
}

#[cfg(test)]
mod tests;
