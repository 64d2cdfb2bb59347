//! Storage for tidesync: one trait, two backends (SQLite embedded, PostgreSQL).
//!
//! Every SQL statement lives inside its backend module, so either backend can
//! change driver without touching the other or the server.

mod error;
mod postgres;
mod sqlite;
mod sqlite_writer;
pub mod sync;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use tidesync_protocol::time::Millis;
use tidesync_protocol::UserId;

pub use error::StoreError;
pub use postgres::PostgresStore;
pub use sqlite::{create_private_dir, SqliteStore};
pub use sync::{PulledRecord, PushInput, SyncOutput};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub created_at: Millis,
}

/// A user with the stored password hash, for login only.
#[derive(Clone)]
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
    pub token_generation: i64,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password_hash", &"<redacted>")
            .finish()
    }
}

/// What checking a token needs: the user, its token generation and the ids
/// of its revoked tokens that have not expired.
#[derive(Clone, Debug)]
pub struct AuthState {
    pub user: User,
    pub token_generation: i64,
    pub revoked: Vec<String>,
}

/// "The user's data is now at `version`, by `device`": announced by a backend
/// that can reach other server instances (PostgreSQL's LISTEN/NOTIFY).
#[derive(Clone, Debug)]
pub struct ChangeNote {
    pub user: UserId,
    pub version: i64,
    pub device: String,
}

pub struct NewUser {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub created_at: Millis,
}

/// The storage operations the server needs. Each method that writes runs in
/// exactly one transaction.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// Applies the embedded migrations that are not applied yet.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// A cheap round trip to the database.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Fails with [`StoreError::EmailTaken`] when the email is registered.
    async fn create_user(&self, user: NewUser) -> Result<User, StoreError>;

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError>;

    async fn credentials_by_email(&self, email: &str) -> Result<Option<Credentials>, StoreError>;

    async fn auth_state(&self, id: UserId, now: Millis) -> Result<Option<AuthState>, StoreError>;

    /// Records a token as revoked until `expires_at`; forgets expired ones.
    /// False when it was revoked already (a stream ticket used twice).
    async fn revoke_token(
        &self,
        user: UserId,
        jti: &str,
        expires_at: Millis,
        now: Millis,
    ) -> Result<bool, StoreError>;

    /// Sets a new password hash and bumps the token generation, which
    /// invalidates every token issued before. Returns the new generation.
    async fn change_password(&self, user: UserId, password_hash: &str) -> Result<i64, StoreError>;

    /// Deletes the user and everything it owns, for good.
    async fn delete_user(&self, user: UserId) -> Result<(), StoreError>;

    /// Applies a batch of changes and pulls, in one transaction (see [`sync`]).
    async fn push(&self, user: UserId, input: PushInput) -> Result<SyncOutput, StoreError>;

    /// Returns what changed after `cursor`, at most `limit` records.
    async fn pull(
        &self,
        user: UserId,
        cursor: tidesync_protocol::cursor::CursorStart,
        limit: usize,
    ) -> Result<SyncOutput, StoreError>;

    /// Changes committed through *any* instance sharing this database, when
    /// the backend can tell (PostgreSQL); `None` when only this process
    /// writes (SQLite), and the server announces its own changes.
    fn change_notes(&self) -> Option<tokio::sync::broadcast::Receiver<ChangeNote>> {
        None
    }

    /// Waits for in-flight queries and closes every connection.
    async fn close(&self);
}

/// Where a `sqlite:` URL keeps its database file, if it names one.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(PathBuf::from(path))
}

/// Opens the backend named by the URL scheme: `sqlite:` or `postgres(ql):`.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(url).await?))
    } else {
        Err(StoreError::Config(
            "DATABASE_URL must start with sqlite: or postgres://".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_file_from_url() {
        assert_eq!(
            sqlite_file("sqlite://data/tidesync.db"),
            Some(PathBuf::from("data/tidesync.db"))
        );
        assert_eq!(
            sqlite_file("sqlite:///tmp/x.db?mode=rwc"),
            Some(PathBuf::from("/tmp/x.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://localhost/x"), None);
    }
}
