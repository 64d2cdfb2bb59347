use std::sync::Arc;

use tidesync_store::Store;

use crate::auth::Authenticator;
use crate::limits::Limits;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The data model served (`SCHEMA`, or the built-in), and as printed
    /// for `GET /api/schema`.
    pub schema: Arc<tidesync_protocol::schema::Schema>,
    pub schema_document: Arc<str>,
    pub store: Arc<dyn Store>,
    pub auth: Arc<Authenticator>,
    /// A real Argon2 hash of a random password: login verifies against it when
    /// the email is unknown, so both failures take the same time.
    pub dummy_hash: Arc<String>,
    pub sync: SyncLimits,
    pub notifier: Arc<crate::notify::Notifier>,
    /// True when the backend announces no changes itself (SQLite): the push
    /// handler pokes this instance's subscribers directly.
    pub announce_locally: bool,
    /// Turns true when shutdown begins: open event streams end at once.
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// The store's last answer to `/health` and when (see routes::health).
    pub health: Arc<tokio::sync::Mutex<Option<(std::time::Instant, tidesync_store::Health)>>>,
    pub limits: Arc<Limits>,
    /// How many invitations to shared spaces may be sent.
    pub invite_limits: tidesync_store::InviteLimits,
    /// The data exports streaming, and their limits (routes::export).
    pub exports: Arc<crate::routes::export::Exports>,
    /// Turns for the pulls of long-polls woken by a change: one write can
    /// wake many at once, and they must not take every database connection
    /// from other requests (routes::sync).
    pub woken_pulls: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    /// After a revocation (logout, password change, account deletion) has
    /// committed: this instance forgets the user's cached auth state at
    /// once, and, where the store announces nothing itself (SQLite), the
    /// user's open streams and long-polls recheck their tokens. On
    /// PostgreSQL the notice committed with the revocation does the same on
    /// every instance (app.rs).
    pub fn revoked(&self, user: tidesync_protocol::UserId) {
        self.auth.cache.invalidate(user);
        if self.announce_locally {
            self.notifier.revoked(user);
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct SyncLimits {
    pub max_changes: usize,
    /// Longest long-poll wait: under REQUEST_TIMEOUT, which would cut it.
    pub max_wait: std::time::Duration,
    pub max_clock_skew_ms: i64,
    /// Most bytes of records in one page.
    pub max_page_bytes: usize,
}
