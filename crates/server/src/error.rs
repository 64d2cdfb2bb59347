//! The one place where failures become HTTP responses:
//! `{success:false, error:{code, message}}` with a stable `code`.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tidesync_protocol::error::{ErrorBody, ErrorCode, ErrorDetail};
use tidesync_store::StoreError;

#[derive(Clone, Debug, thiserror::Error)]
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
    #[error("the cursor is older than the history this server keeps: keep your outbox, drop your server copy, pull from scratch, then push the outbox")]
    ResyncRequired,
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the request took too long; retry it (retries are safe: operations apply once)")]
    Timeout,
    #[error("too many requests; retry later")]
    RateLimited(Duration),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("the database is unavailable; retry shortly")]
    Unavailable,
    /// Too much work queued (SQLite's writer): retry after the pause.
    #[error("the server is busy ({0}); retry shortly")]
    Busy(&'static str, Duration),
    /// Logged in full, answered as a bare 500: internals never reach a client.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Validation(_) => ErrorCode::ValidationFailed,
            ApiError::MalformedJson(_) => ErrorCode::MalformedJson,
            ApiError::UnsupportedMediaType(_) => ErrorCode::UnsupportedMediaType,
            ApiError::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            ApiError::InvalidCursor(_) => ErrorCode::InvalidCursor,
            ApiError::TooManyChanges(_) => ErrorCode::TooManyChanges,
            ApiError::EmailTaken => ErrorCode::EmailTaken,
            ApiError::ResyncRequired => ErrorCode::ResyncRequired,
            ApiError::InvalidCredentials => ErrorCode::InvalidCredentials,
            ApiError::Unauthorized(_) => ErrorCode::Unauthorized,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::Forbidden(_) => ErrorCode::Forbidden,
            ApiError::Conflict(_) => ErrorCode::Conflict,
            ApiError::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            ApiError::RateLimited(_) => ErrorCode::RateLimited,
            ApiError::Unavailable => ErrorCode::DatabaseUnavailable,
            ApiError::Busy(..) => ErrorCode::Busy,
            ApiError::Timeout => ErrorCode::Timeout,
            ApiError::Internal(_) => ErrorCode::InternalError,
        }
    }

    pub fn status(&self) -> StatusCode {
        status_of(self.code())
    }

    fn retry_after(&self) -> Option<u64> {
        let secs = |d: &Duration| d.as_secs_f64().ceil().max(1.0) as u64;
        match self {
            ApiError::Unavailable | ApiError::Timeout => Some(1),
            ApiError::RateLimited(wait) | ApiError::Busy(_, wait) => Some(secs(wait)),
            _ => None,
        }
    }
}

/// The HTTP status of each code: one table for the server and the docs.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::ValidationFailed | ErrorCode::MalformedJson | ErrorCode::InvalidCursor => {
            StatusCode::BAD_REQUEST
        }
        ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::PayloadTooLarge | ErrorCode::TooManyChanges => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::EmailTaken | ErrorCode::ResyncRequired | ErrorCode::Conflict => {
            StatusCode::CONFLICT
        }
        ErrorCode::InvalidCredentials | ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::DatabaseUnavailable | ErrorCode::Busy | ErrorCode::Timeout => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        ErrorCode::InternalError | ErrorCode::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(detail) => tracing::error!(error = %detail, "internal error"),
            ApiError::Unavailable => tracing::warn!("database unavailable"),
            ApiError::Busy(reason, _) => tracing::warn!(reason, "busy"),
            _ => {}
        }
        let body = ErrorBody {
            success: false,
            error: ErrorDetail {
                code: self.code(),
                message: self.to_string(),
            },
        };
        let mut res = (self.status(), axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after() {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let class = match &e {
            StoreError::Unavailable(_) | StoreError::Retry => Some("unavailable"),
            StoreError::Busy { .. } => Some("busy"),
            StoreError::Corrupt(_) => Some("corrupt"),
            StoreError::Internal(_) | StoreError::Migrate(_) | StoreError::Config(_) => {
                Some("internal")
            }
            _ => None,
        };
        if let Some(class) = class {
            crate::telemetry::database_error(class);
        }
        match e {
            StoreError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "database unavailable");
                ApiError::Unavailable
            }
            StoreError::Busy {
                reason,
                retry_after,
            } => ApiError::Busy(reason, retry_after),
            StoreError::EmailTaken => ApiError::EmailTaken,
            StoreError::ResyncRequired => ApiError::ResyncRequired,
            StoreError::CursorAhead => ApiError::InvalidCursor(
                "lastSyncTimestamp is ahead of this server; pull from scratch (null)".into(),
            ),
            StoreError::UserGone => ApiError::Unauthorized("invalid or expired token"),
            StoreError::NotFound(m) => ApiError::NotFound(m),
            StoreError::Forbidden(m) => ApiError::Forbidden(m),
            StoreError::Conflict(m) => ApiError::Conflict(m),
            StoreError::Invalid(m) => ApiError::Validation(m),
            StoreError::RateLimited(wait) => ApiError::RateLimited(wait),
            StoreError::Retry => ApiError::Unavailable,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_status_and_the_client_and_server_agree() {
        for code in ErrorCode::ALL {
            let s = status_of(*code);
            assert!(s.is_client_error() || s.is_server_error(), "{code}: {s}");
            assert_eq!(
                code.is_retryable(),
                s.is_server_error() || *code == ErrorCode::RateLimited,
                "{code}"
            );
        }
    }
}
