use std::time::Duration;

use thiserror::Error;
use tidesync_engine::EngineError;

/// Storage failures, classified so the server can answer each correctly:
/// `Unavailable` and `Busy` are transient (503, retry), the rest permanent.
/// Backends map their drivers' errors here; nothing of a driver leaks out.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database is down, unreachable, locked, read-only or full, or a
    /// serialization failure: retry the request.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Too much work is queued already (SQLite's writer): retry after the pause.
    #[error("too busy: {reason}")]
    Busy {
        reason: &'static str,
        retry_after: Duration,
    },
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
    Migrate(String),
    /// A bug or an unexpected database error; logged in full by the server.
    #[error("database error: {0}")]
    Internal(String),
}

impl StoreError {
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Busy { .. })
    }

    /// A copy of this error, for answering every job of a failed group commit.
    pub fn duplicate(&self) -> StoreError {
        match self {
            StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
            StoreError::Busy {
                reason,
                retry_after,
            } => StoreError::Busy {
                reason,
                retry_after: *retry_after,
            },
            StoreError::EmailTaken => StoreError::EmailTaken,
            StoreError::CursorAhead => StoreError::CursorAhead,
            StoreError::UserGone => StoreError::UserGone,
            StoreError::Config(m) => StoreError::Config(m.clone()),
            StoreError::Corrupt(m) => StoreError::Corrupt(m.clone()),
            StoreError::Migrate(m) => StoreError::Migrate(m.clone()),
            StoreError::Internal(m) => StoreError::Internal(m.clone()),
        }
    }
}

impl From<EngineError> for StoreError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::CursorAhead => StoreError::CursorAhead,
            EngineError::Corrupt(m) => StoreError::Corrupt(m),
            EngineError::Protocol(m) => StoreError::Internal(m.into()),
        }
    }
}
