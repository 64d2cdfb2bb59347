use std::sync::Arc;

use tidesync_store::Store;

use crate::auth::Authenticator;
use crate::limits::Limits;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
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
    /// The last healthy answer of the store and when (see routes::health).
    pub health_ok: Arc<std::sync::Mutex<Option<(std::time::Instant, tidesync_store::Health)>>>,
    pub limits: Arc<Limits>,
    /// How many invitations to shared spaces may be sent.
    pub invite_limits: tidesync_store::InviteLimits,
    /// Users with a data export streaming (routes::export).
    pub exports: Arc<crate::routes::export::Exports>,
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
