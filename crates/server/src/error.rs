//! The one place where failures become HTTP responses:
//! `{success:false, error:{code, message}}` with a stable `code`.

use axum::extract::rejection::JsonRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tidesync_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    MalformedJson(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    InvalidCursor(String),
    #[error("{0}")]
    TooManyChanges(String),
    #[error("this email is already registered")]
    EmailTaken,
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    NotFound(String),
    #[error("the request took too long; retry it (retries are safe: operations apply once)")]
    Timeout,
    #[error("too many requests; retry later")]
    RateLimited(std::time::Duration),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("the database is unavailable; retry shortly")]
    Unavailable,
    /// Logged in full, answered as a bare 500: internals never reach a client.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) | ApiError::MalformedJson(_) => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge(_) | ApiError::TooManyChanges(_) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::InvalidCursor(_) => StatusCode::BAD_REQUEST,
            ApiError::EmailTaken => StatusCode::CONFLICT,
            ApiError::InvalidCredentials | ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable | ApiError::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Validation(_) => "validation_failed",
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::InvalidCursor(_) => "invalid_cursor",
            ApiError::TooManyChanges(_) => "too_many_changes",
            ApiError::EmailTaken => "email_taken",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::RateLimited(_) => "rate_limited",
            ApiError::Unavailable => "database_unavailable",
            ApiError::Timeout => "timeout",
            ApiError::Internal(_) => "internal_error",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            ApiError::Internal(detail) => tracing::error!(error = %detail, "internal error"),
            ApiError::Unavailable => tracing::warn!("database unavailable"),
            _ => {}
        }
        let body = json!({
            "success": false,
            "error": { "code": self.code(), "message": self.to_string() },
        });
        let mut res = (status, axum::Json(body)).into_response();
        let retry_after = match &self {
            ApiError::Unavailable | ApiError::Timeout => Some(1),
            ApiError::RateLimited(wait) => Some(wait.as_secs_f64().ceil().max(1.0) as u64),
            _ => None,
        };
        if let Some(secs) = retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(inner) => {
                tracing::warn!(error = %inner, "database unavailable");
                ApiError::Unavailable
            }
            StoreError::Driver {
                transient: true,
                message,
            } => {
                tracing::warn!(error = %message, "database unavailable");
                ApiError::Unavailable
            }
            StoreError::EmailTaken => ApiError::EmailTaken,
            StoreError::CursorAhead => ApiError::InvalidCursor(
                "lastSyncTimestamp is ahead of this server; pull from scratch (null)".into(),
            ),
            StoreError::UserGone => ApiError::Unauthorized("invalid or expired token"),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<tidesync_protocol::auth::FieldError> for ApiError {
    fn from(e: tidesync_protocol::auth::FieldError) -> Self {
        ApiError::Validation(e.to_string())
    }
}

impl From<tidesync_protocol::sync::RequestError> for ApiError {
    fn from(e: tidesync_protocol::sync::RequestError) -> Self {
        use tidesync_protocol::sync::RequestError;
        match e {
            RequestError::Malformed(m) => ApiError::MalformedJson(m),
            RequestError::Validation(m) => ApiError::Validation(m),
            RequestError::InvalidCursor(m) => ApiError::InvalidCursor(m),
            RequestError::TooManyChanges(max) => ApiError::TooManyChanges(format!(
                "at most {max} changes per request; send the rest in further requests"
            )),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType(
                "expected a JSON body with Content-Type: application/json".into(),
            ),
            JsonRejection::JsonSyntaxError(e) => {
                ApiError::MalformedJson(format!("malformed JSON: {}", e.body_text()))
            }
            JsonRejection::JsonDataError(e) => ApiError::Validation(e.body_text()),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::PayloadTooLarge("request body is too large".into())
            }
            other => ApiError::MalformedJson(other.body_text()),
        }
    }
}
