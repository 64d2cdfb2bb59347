use std::sync::Arc;

use tidesync_store::Store;

use crate::auth::Authenticator;
use crate::limits::Limits;
use crate::session::Sessions;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The collections this server syncs: requests' `entityType`s and the
    /// arrays of `serverUpdates` (the built-in bucket list by default).
    pub model: tidesync_protocol::entity::Model,
    /// The model's schema as `GET /api/schema` prints it, printed once
    /// (the schema itself is `model.schema()`).
    pub schema_document: Arc<str>,
    pub store: Arc<dyn Store>,
    pub auth: Arc<Authenticator>,
    /// A real Argon2 hash of a random password: login verifies against it when
    /// the email is unknown, so both failures take the same time.
    pub dummy_hash: Arc<String>,
    /// Sync requests, long-polls and the pokes that wake them and streams.
    pub sessions: Arc<Sessions>,
    /// Turns true when shutdown begins: open event streams end at once.
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// The store's last answer to `/health` and when (see routes::health).
    pub health: Arc<tokio::sync::Mutex<Option<(std::time::Instant, tidesync_store::Health)>>>,
    pub limits: Arc<Limits>,
    /// How many invitations to shared spaces may be sent.
    pub invite_limits: tidesync_store::InviteLimits,
    /// The data exports streaming, and their limits (routes::export).
    pub exports: Arc<crate::exports::Exports>,
}
