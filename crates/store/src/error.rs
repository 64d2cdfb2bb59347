use std::time::Duration;

use thiserror::Error;
use tidesync_engine::members::Refusal;
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
    /// The cursor is older than the kept history: resync from scratch.
    #[error("the cursor is older than the history this server keeps; resync from scratch")]
    ResyncRequired,
    /// The authenticated user was deleted meanwhile.
    #[error("the user no longer exists")]
    UserGone,
    /// Not found, or not visible to this user (no existence oracle).
    #[error("{0}")]
    NotFound(String),
    /// Visible, but not this user's to do (a member who is not the owner).
    #[error("{0}")]
    Forbidden(String),
    /// The state makes the request impossible (already a member, ...).
    #[error("{0}")]
    Conflict(String),
    /// The request itself is wrong (a role that cannot be given, ...).
    #[error("{0}")]
    Invalid(String),
    /// Too many invitations: retry after the pause.
    #[error("too many invitations; retry later")]
    RateLimited(Duration),
    #[error("configuration: {0}")]
    Config(String),
    #[error("corrupt data in the database: {0}")]
    Corrupt(String),
    #[error("migration failed: {0}")]
    Migrate(String),
    /// A record's scope changed under the transaction (a space was shared
    /// meanwhile): the backend runs it again; never reaches a client.
    #[error("a space was shared meanwhile; the transaction must run again")]
    Retry,
    /// A bug or an unexpected database error; logged in full by the server.
    #[error("database error: {0}")]
    Internal(String),
}

impl StoreError {
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_) | StoreError::Busy { .. } | StoreError::Retry
        )
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
            StoreError::ResyncRequired => StoreError::ResyncRequired,
            StoreError::UserGone => StoreError::UserGone,
            StoreError::NotFound(m) => StoreError::NotFound(m.clone()),
            StoreError::Forbidden(m) => StoreError::Forbidden(m.clone()),
            StoreError::Conflict(m) => StoreError::Conflict(m.clone()),
            StoreError::Invalid(m) => StoreError::Invalid(m.clone()),
            StoreError::RateLimited(d) => StoreError::RateLimited(*d),
            StoreError::Config(m) => StoreError::Config(m.clone()),
            StoreError::Corrupt(m) => StoreError::Corrupt(m.clone()),
            StoreError::Migrate(m) => StoreError::Migrate(m.clone()),
            StoreError::Internal(m) => StoreError::Internal(m.clone()),
            StoreError::Retry => StoreError::Retry,
        }
    }
}

/// A refusal of the membership and invitation rules, as the store reports it.
impl From<Refusal> for StoreError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::NotFound(m) => StoreError::NotFound(m.into()),
            Refusal::Forbidden(m) => StoreError::Forbidden(m.into()),
            Refusal::Conflict(m) => StoreError::Conflict(m.into()),
            Refusal::Invalid(m) => StoreError::Invalid(m.into()),
            Refusal::RateLimited(ms) => {
                StoreError::RateLimited(Duration::from_millis(ms.max(0) as u64))
            }
        }
    }
}

impl From<EngineError> for StoreError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::CursorAhead => StoreError::CursorAhead,
            EngineError::ResyncRequired => StoreError::ResyncRequired,
            EngineError::Corrupt(m) => StoreError::Corrupt(m),
            EngineError::Protocol(m) => StoreError::Internal(m.into()),
            EngineError::Retry => StoreError::Retry,
        }
    }
}
