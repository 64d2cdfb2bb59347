use thiserror::Error;

/// Storage failures, classified so the server can answer each one correctly:
/// `Unavailable` is transient (503, retry), the rest are permanent.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("email already registered")]
    EmailTaken,
    /// The client's cursor is ahead of the server (a restored database, or a
    /// cursor from elsewhere): it must pull from scratch.
    #[error("the cursor is ahead of this server; pull from scratch")]
    CursorAhead,
    /// The authenticated user was deleted meanwhile.
    #[error("the user no longer exists")]
    UserGone,
    #[error("configuration: {0}")]
    Config(String),
    #[error("corrupt data in the database: {0}")]
    Corrupt(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Internal(#[source] sqlx::Error),
    /// From the SQLite writer thread (rusqlite), classified like the rest.
    #[error("database {}: {message}", if *.transient { "unavailable" } else { "error" })]
    Driver { transient: bool, message: String },
}

impl StoreError {
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_)
                | StoreError::Driver {
                    transient: true,
                    ..
                }
        )
    }

    /// A copy for answering every push of a failed group commit (the sqlx
    /// errors inside other variants are not `Clone`).
    pub fn clone_shallow(&self) -> StoreError {
        StoreError::Driver {
            transient: self.is_unavailable(),
            message: self.to_string(),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if is_transient(&e) {
            StoreError::Unavailable(e)
        } else {
            StoreError::Internal(e)
        }
    }
}

/// True for failures that say nothing about the request and may pass: the
/// database is down, unreachable, busy, locked, read-only or full.
fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let Some(code) = db.code() else { return false };
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // SQLite's (extended) result code: BUSY, LOCKED, READONLY,
                // IOERR, FULL, CANTOPEN, PROTOCOL.
                let primary = code.parse::<i64>().map(|n| n & 0xff).unwrap_or(0);
                return matches!(primary, 5 | 6 | 8 | 10 | 13 | 14 | 15);
            }
            // PostgreSQL SQLSTATE: connection exceptions (08), insufficient
            // resources (53), operator intervention (57P: shutdown, cannot
            // connect now), and serialization failure / deadlock (40001/40P01).
            code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57P")
                || code == "40001"
                || code == "40P01"
        }
        _ => false,
    }
}
