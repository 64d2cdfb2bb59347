use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::AppState;

/// A database that does not answer within this counts as down.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn health(State(state): State<AppState>) -> Response {
    let db_ok = matches!(
        tokio::time::timeout(PING_TIMEOUT, state.store.ping()).await,
        Ok(Ok(()))
    );
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
