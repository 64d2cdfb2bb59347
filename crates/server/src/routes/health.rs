use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::AppState;

/// A database that does not answer within this counts as down.
const PING_TIMEOUT: Duration = Duration::from_secs(2);
const OK_REUSE: Duration = Duration::from_secs(1);

/// `/health`: 200 when the database answers and the backend can take work
/// (SQLite: the writer is alive, its queue is not full and it is not stuck),
/// else 503; with the writer's state on SQLite.
#[utoipa::path(
    get,
    path = "/health",
    tag = "meta",
    description = "Not an envelope: `{success, status, version, database, backend}`, and \
        `writer` (its queue and restarts) on SQLite. Not rate limited.",
    responses(
        (status = 200, description = "Healthy", body = Object),
        (status = 503, description = "The database or the writer is unavailable", body = Object),
    )
)]
pub async fn health(State(state): State<AppState>) -> Response {
    // Not rate limited: a healthy answer is reused for a second so that a
    // flood of probes cannot occupy the database. A failure is never reused,
    // so recovery shows at once.
    let recent = state.health_ok.lock().ok().and_then(|h| {
        h.as_ref()
            .filter(|(at, _)| at.elapsed() < OK_REUSE)
            .map(|(_, h)| h.clone())
    });
    let health = match recent {
        Some(h) => h,
        None => {
            let h = tokio::time::timeout(PING_TIMEOUT, state.store.health())
                .await
                .unwrap_or_default();
            if let Ok(mut slot) = state.health_ok.lock() {
                *slot = h.ok().then(|| (Instant::now(), h.clone()));
            }
            h
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
    if let Some(w) = &health.writer {
        body["writer"] = json!({
            "alive": w.alive,
            "queueDepth": w.queue_depth,
            "queueCapacity": w.queue_capacity,
            "queuedBytes": w.queued_bytes,
            "queueBytesCapacity": w.queue_bytes_capacity,
            "busyMs": w.busy_for.map(|d| d.as_millis() as u64),
            "restarts": w.restarts,
            "panics": w.panics,
        });
    }
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}
