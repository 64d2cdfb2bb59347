use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use tidesync_protocol::error::ErrorBody;

use crate::state::AppState;

/// A database that does not answer within this counts as down.
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a healthy answer of the store is reused.
const REUSE: Duration = Duration::from_secs(1);

/// `/health`: 200 when the database answers and the backend can take work
/// (SQLite: the writer is alive, its queue is not full and it is not stuck),
/// else 503; with the writer's state on SQLite.
#[utoipa::path(
    get,
    path = "/health",
    tag = "meta",
    description = "Not an envelope: `{success, status, version, database, backend}`, and \
        `writer` (its queue and restarts) on SQLite. A healthy answer is reused for a second. \
        Limited per client IP by `HEALTH_RATE_LIMIT_PER_MINUTE` (600 by default), not by the \
        API's limit.",
    responses(
        (status = 200, description = "Healthy", body = Object),
        (status = 503, description = "The database or the writer is unavailable", body = Object),
        (status = 429, description = "`rate_limited`: over the per-IP limit of /health", body = ErrorBody),
    )
)]
pub async fn health(State(state): State<AppState>) -> Response {
    // One request at a time asks the store; those that arrive meanwhile
    // wait and take its answer, and a healthy answer serves for a second.
    // So a flood of probes costs the database at most one query in flight,
    // even while it is down and each probe waits for its timeout; and a
    // failure is not kept, so recovery shows at the next probe.
    let arrived = Instant::now();
    let health = {
        let mut last = state.health.lock().await;
        let usable = last
            .as_ref()
            .filter(|(answered, h)| *answered >= arrived || (h.ok() && answered.elapsed() < REUSE));
        match usable {
            Some((_, h)) => h.clone(),
            None => {
                let h = tokio::time::timeout(PING_TIMEOUT, state.store.health())
                    .await
                    .unwrap_or_default();
                *last = Some((Instant::now(), h.clone()));
                h
            }
        }
    };
    let ok = health.ok();
    let word = |b: bool| if b { "ok" } else { "unavailable" };
    let mut body = json!({
        "success": ok,
        "status": word(ok),
        "version": env!("CARGO_PKG_VERSION"),
        "database": word(health.database),
        "backend": state.store.backend().name(),
    });
    // What the backend tells about its workers (SQLite: `writer`).
    for (key, value) in health.details {
        body[key] = value;
    }
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}
