//! `GET /api/schema`: the data model the server runs, in the schema format
//! of docs/SCHEMA.md: the `SCHEMA` file's, or the built-in bucket list
//! (or the schema a test built the server with, `App::build_with_schema`).

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

#[utoipa::path(
    get,
    path = "/api/schema",
    tag = "meta",
    description = "The data model this server runs (docs/SCHEMA.md): its collections, each a JSON \
        Schema object schema with tidesync's keywords (`plural`, `shareable`, `x-references`, \
        `x-parent`, `x-cast`). As is: no envelope.",
    responses((status = 200, description = "The schema document", content_type = "application/json", body = Object))
)]
pub async fn schema(State(state): State<AppState>) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        state.schema_document.to_string(),
    )
        .into_response()
}
