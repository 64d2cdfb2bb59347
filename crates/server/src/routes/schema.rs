//! `GET /api/schema`: the data model the server runs, in the schema format
//! of docs/SCHEMA.md. Today always the built-in bucket list (a test proves it
//! the same model as `protocol/src/entity.rs`, which the engine validates
//! with); serving another schema is the next step of issue 21.

use std::sync::LazyLock;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tidesync_protocol::schema::Schema;

/// Printed once: the document never changes while the server runs.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| Schema::builtin().to_json_pretty());

#[utoipa::path(
    get,
    path = "/api/schema",
    tag = "meta",
    description = "The data model this server runs (docs/SCHEMA.md): its collections, each a JSON \
        Schema object schema with tidesync's keywords (`plural`, `shareable`, `x-references`, \
        `x-parent`, `x-cast`). As is: no envelope.",
    responses((status = 200, description = "The schema document", content_type = "application/json", body = Object))
)]
pub async fn schema() -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        DOCUMENT.as_str(),
    )
        .into_response()
}
