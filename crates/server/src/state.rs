use std::sync::Arc;

use tidesync_store::Store;

use crate::auth::{AuthCache, Tokens};
use crate::limits::RateLimiter;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub tokens: Arc<Tokens>,
    /// A real Argon2 hash of a random password: login verifies against it when
    /// the email is unknown, so both failures take the same time.
    pub dummy_hash: Arc<String>,
    pub sync: SyncLimits,
    pub auth_cache: Arc<AuthCache>,
    pub notifier: Arc<crate::notify::Notifier>,
    /// True when the backend announces no changes itself (SQLite): the push
    /// handler pokes this instance's subscribers directly.
    pub announce_locally: bool,
    /// Turns true when shutdown begins: open event streams end at once.
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// When the database last answered /health (see routes::health).
    pub health_ok: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
    pub limits: Arc<Limits>,
}

pub struct Limits {
    /// Per user (authenticated) or per client IP.
    pub general: RateLimiter,
    /// Login and register, per client IP and per email.
    pub auth: RateLimiter,
    pub trust_proxy: bool,
}

#[derive(Clone, Copy, Debug)]
pub struct SyncLimits {
    pub max_changes: usize,
    /// Longest long-poll wait: under REQUEST_TIMEOUT, which would cut it.
    pub max_wait: std::time::Duration,
    pub max_clock_skew_ms: i64,
}
