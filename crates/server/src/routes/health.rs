use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::AppState;

/// A database that does not answer within this counts as down.
const PING_TIMEOUT: Duration = Duration::from_secs(2);
const OK_REUSE: Duration = Duration::from_secs(1);

pub async fn health(State(state): State<AppState>) -> Response {
    // /health is not rate limited: a success is reused for a second so that a
    // flood of probes cannot occupy the database pool. A failure is never
    // reused, so recovery shows at once.
    let recent = state
        .health_ok
        .lock()
        .map(|t| t.is_some_and(|t| t.elapsed() < OK_REUSE))
        .unwrap_or(false);
    let db_ok = recent
        || matches!(
            tokio::time::timeout(PING_TIMEOUT, state.store.ping()).await,
            Ok(Ok(()))
        );
    if !recent {
        if let Ok(mut t) = state.health_ok.lock() {
            *t = db_ok.then(std::time::Instant::now);
        }
    }
    let (status, word) = if db_ok {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    (
        status,
        axum::Json(json!({
            "success": db_ok,
            "status": word,
            "version": env!("CARGO_PKG_VERSION"),
            "database": word,
            "backend": state.store.backend().name(),
        })),
    )
        .into_response()
}
