pub mod auth;
pub mod export;
pub mod health;
pub mod invitations;
pub mod openapi;
pub mod schema;
pub mod spaces;
pub mod stream;
pub mod sync;
mod views;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tidesync_protocol::error::Envelope;

use crate::error::ApiError;

/// A JSON body parsed straight into `T`, with our error shape: a wrong
/// content type is 415, bad JSON 400 `malformed_json`, a wrong shape 400
/// `validation_failed` naming the field.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let JsonBytes(bytes) = JsonBytes::from_request(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => ApiError::Validation(if path == "." {
                inner.to_string()
            } else {
                format!("{path}: {inner}")
            }),
            _ => ApiError::MalformedJson(format!("malformed JSON: {inner}")),
        }
    })
}

/// An optional JSON body: none at all (empty, with or without a JSON
/// content type) is `T::default()`; anything else is read as [`ApiJson`].
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if req.headers().contains_key(axum::http::header::CONTENT_TYPE) {
            let JsonBytes(bytes) = JsonBytes::from_request(req, state).await?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(OptionalJson(T::default()));
            }
            return parse_json(&bytes).map(OptionalJson);
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::MalformedJson(e.body_text()))?;
        if bytes.is_empty() {
            Ok(OptionalJson(T::default()))
        } else {
            Err(ApiError::UnsupportedMediaType(
                "expected no body, or a JSON body with Content-Type: application/json".into(),
            ))
        }
    }
}

/// A request body with a JSON content type, as bytes, for parsers that
/// read it themselves (the sync body: one bad change must not fail it).
pub struct JsonBytes(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType(
                "expected a JSON body with Content-Type: application/json".into(),
            ));
        }
        axum::body::Bytes::from_request(req, state)
            .await
            .map(JsonBytes)
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge("request body is too large".into())
                } else {
                    ApiError::MalformedJson(e.body_text())
                }
            })
    }
}

/// `application/json`, or a `+json` type (`application/problem+json`),
/// as axum's `Json` accepts.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(ct) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A query string parsed into `T`, with our error shape.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(q)
            .map(ApiQuery)
            .map_err(|e| ApiError::Validation(format!("query string: {e}")))
    }
}

/// The success envelope, serialized straight to the body: records held as
/// raw JSON text go to the socket as they are.
pub fn ok<T: Serialize>(status: StatusCode, data: T) -> Response {
    (status, axum::Json(Envelope::ok(data))).into_response()
}

pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
