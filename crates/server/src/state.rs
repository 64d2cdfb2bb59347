use std::sync::Arc;

use tidesync_store::Store;

use crate::auth::Tokens;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub tokens: Arc<Tokens>,
    /// A real Argon2 hash of a random password: login verifies against it when
    /// the email is unknown, so both failures take the same time.
    pub dummy_hash: Arc<String>,
    pub sync: SyncLimits,
}

#[derive(Clone, Copy, Debug)]
pub struct SyncLimits {
    pub max_changes: usize,
    pub max_clock_skew_ms: i64,
}
