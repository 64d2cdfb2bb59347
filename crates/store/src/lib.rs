//! Storage for tidesync: the [`Store`] trait every backend implements, the
//! types it speaks, and (feature `testsuite`) the one test suite every
//! backend must pass. The backends live in their own crates
//! (`tidesync-store-sqlite`, `tidesync-store-postgres`); the sync algorithm
//! they execute lives in `tidesync-engine`.

mod error;
#[cfg(feature = "testsuite")]
pub mod testsuite;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use tidesync_protocol::cursor::CursorStart;
use tidesync_protocol::time::Millis;
use tidesync_protocol::UserId;

pub use error::StoreError;
pub use tidesync_engine::{PulledRecord, PushInput, SyncOutput};

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

/// A pull: from `cursor`, at most `limit` records and about `max_bytes` of them.
#[derive(Clone, Copy, Debug)]
pub struct PullInput {
    pub cursor: CursorStart,
    pub limit: usize,
    pub max_bytes: usize,
}

/// How the database and its workers are doing, for `/health`.
#[derive(Clone, Debug, Default)]
pub struct Health {
    /// A query answered.
    pub database: bool,
    /// SQLite's writer thread; `None` where writes need no worker.
    pub writer: Option<WriterHealth>,
}

impl Health {
    /// Whether the backend can take work now.
    pub fn ok(&self) -> bool {
        self.database && self.writer.as_ref().is_none_or(WriterHealth::can_take_work)
    }
}

#[derive(Clone, Debug, Default)]
pub struct WriterHealth {
    pub alive: bool,
    pub queue_depth: usize,
    pub queue_capacity: usize,
    pub queued_bytes: usize,
    pub queue_bytes_capacity: usize,
    /// How long the job in progress has been running.
    pub busy_for: Option<Duration>,
    /// Times the writer thread was restarted after a failure outside a job.
    pub restarts: u64,
    /// Jobs that panicked (each answered with an error; the writer went on).
    pub panics: u64,
}

/// A job running longer than this means the writer is stuck.
pub const WRITER_STUCK_AFTER: Duration = Duration::from_secs(30);

impl WriterHealth {
    pub fn can_take_work(&self) -> bool {
        self.alive
            && self.queue_depth < self.queue_capacity
            && self.busy_for.is_none_or(|d| d < WRITER_STUCK_AFTER)
    }
}

/// The storage operations the server needs. Each method that writes runs in
/// exactly one transaction.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// Applies the embedded migrations that are not applied yet.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// A cheap round trip to the database, and the state of any worker.
    async fn health(&self) -> Health;

    /// Fails with [`StoreError::EmailTaken`] when the email is registered.
    async fn create_user(&self, user: NewUser) -> Result<User, StoreError>;

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError>;

    async fn credentials_by_email(&self, email: &str) -> Result<Option<Credentials>, StoreError>;

    async fn auth_state(&self, id: UserId, now: Millis) -> Result<Option<AuthState>, StoreError>;

    /// Records a token as revoked until `expires_at`; forgets expired ones.
    /// False when it was revoked already (a stream ticket used twice);
    /// [`StoreError::UserGone`] when the user no longer exists.
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

    /// Applies a batch of changes and pulls, in one transaction.
    /// `cost` is what the request took on the wire, in bytes: what holding
    /// it in a queue costs.
    async fn push(
        &self,
        user: UserId,
        input: PushInput,
        cost: usize,
    ) -> Result<SyncOutput, StoreError>;

    /// Returns what changed after the cursor: one page.
    async fn pull(&self, user: UserId, input: PullInput) -> Result<SyncOutput, StoreError>;

    /// The user's committed counter.
    async fn head(&self, user: UserId) -> Result<i64, StoreError>;

    /// Changes committed through *any* instance sharing this database, when
    /// the backend can tell (PostgreSQL); `None` when only this process
    /// writes (SQLite), and the server announces its own changes.
    fn change_notes(&self) -> Option<tokio::sync::broadcast::Receiver<ChangeNote>> {
        None
    }

    /// Waits for in-flight work and closes every connection.
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

/// Creates a missing folder readable by its owner only: it will hold password
/// hashes, secrets and every user's data. An existing folder is left as it is.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
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
