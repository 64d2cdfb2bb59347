//! One error type for every call, and what a client should do about each.

use std::time::Duration;

use reqwest::StatusCode;
use tidesync_protocol::error::{ErrorBody, ErrorCode};

/// What a call can fail with.
///
/// * [`Error::Api`]: the server answered with its error shape
///   (`{"success": false, "error": {code, message}}`); branch on
///   [`ApiError::code`].
/// * [`Error::Transport`]: no complete answer (connection refused or reset,
///   timeout of the HTTP client). A push may or may not have been applied:
///   retry it unchanged, with the same `operationId`s.
/// * [`Error::Decode`]: an answer that is not what the API promises (a proxy's
///   HTML error page, a truncated body).
/// * [`Error::Protocol`]: a well-formed answer that breaks the protocol (for
///   example `hasMore` with a cursor that did not move).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Api(Box<ApiError>),
    #[error("transport: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("unexpected response ({status}): {reason}")]
    Decode { status: StatusCode, reason: String },
    #[error("protocol violation: {0}")]
    Protocol(String),
    #[error("invalid URL: {0}")]
    Url(String),
}

/// An error answered by the server.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    /// The `Retry-After` header, when the server sent one (429 and 503).
    pub retry_after: Option<Duration>,
    /// The `x-request-id` of the answer, to quote when reporting a problem.
    pub request_id: Option<String>,
}

/// What to do after a failed request, per `docs/SYNC_PROTOCOL.md` §9. In
/// every case keep the queue unchanged: only acks settle changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send the same request again (same `operationId`s), after `after`
    /// when the server said so, otherwise with your own backoff.
    Retry { after: Option<Duration> },
    /// The token is missing, expired or revoked: log in again.
    LogIn,
    /// The stored cursor is unusable: drop it, pull from scratch (`None`)
    /// and rebuild the synced data from that, then send the queue again.
    PullFromScratch,
    /// Too many changes or too many bytes: split the batch.
    SendSmallerBatches,
    /// The request itself is wrong (or the credentials are): retrying the
    /// same request fails the same way.
    Fix,
}

impl Error {
    /// The server's error, if it answered with one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) => Some(e),
            _ => None,
        }
    }

    pub fn code(&self) -> Option<ErrorCode> {
        self.api().map(|e| e.code)
    }

    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Api(e) => Some(e.status),
            Error::Decode { status, .. } => Some(*status),
            Error::Transport(e) => e.status(),
            _ => None,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        self.api().and_then(|e| e.retry_after)
    }

    /// Whether the request never reached the server (connection refused):
    /// then it certainly had no effect.
    pub fn is_connect(&self) -> bool {
        matches!(self, Error::Transport(e) if e.is_connect())
    }

    /// What §9 of the protocol says to do.
    pub fn action(&self) -> Action {
        match self {
            // Lost answers and garbled ones: the push may have been applied;
            // a retry with the same operation ids is safe either way.
            Error::Transport(_) | Error::Decode { .. } => Action::Retry { after: None },
            Error::Protocol(_) | Error::Url(_) => Action::Fix,
            Error::Api(e) => match e.code {
                ErrorCode::Unauthorized => Action::LogIn,
                ErrorCode::InvalidCursor | ErrorCode::ResyncRequired => Action::PullFromScratch,
                ErrorCode::PayloadTooLarge | ErrorCode::TooManyChanges => {
                    Action::SendSmallerBatches
                }
                code if code.is_retryable() => Action::Retry {
                    after: e.retry_after,
                },
                // A newer server's code: a 5xx is worth retrying, a 4xx is not.
                ErrorCode::Unknown if e.status.is_server_error() => Action::Retry {
                    after: e.retry_after,
                },
                _ => Action::Fix,
            },
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self.action(), Action::Retry { .. })
    }
}

impl From<ApiError> for Error {
    fn from(e: ApiError) -> Self {
        Error::Api(Box::new(e))
    }
}

/// `Retry-After` in seconds (the only form the server sends; an HTTP date
/// is not understood and ignored).
pub(crate) fn parse_retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

pub(crate) fn request_id(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The error of a non-2xx answer: the server's error shape when it is one,
/// a [`Error::Decode`] (with the start of the body) when it is not.
pub(crate) fn error_from_response(
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
) -> Error {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) => ApiError {
            status,
            code: b.error.code,
            message: b.error.message,
            retry_after: parse_retry_after(headers),
            request_id: request_id(headers),
        }
        .into(),
        Err(e) => Error::Decode {
            status,
            reason: format!("not an error body ({e}): {}", snippet(body)),
        },
    }
}

/// The start of a body, for error messages.
pub(crate) fn snippet(body: &[u8]) -> String {
    const MAX: usize = 300;
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX)]);
    if body.len() > MAX {
        format!("{text}… ({} bytes)", body.len())
    } else {
        text.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn an_error_body_becomes_an_api_error_with_retry_after() {
        let body = br#"{"success":false,"error":{"code":"rate_limited","message":"slow down"}}"#;
        let e = error_from_response(
            StatusCode::TOO_MANY_REQUESTS,
            &headers(&[("retry-after", "7"), ("x-request-id", "req-1")]),
            body,
        );
        let api = e.api().expect("api error");
        assert_eq!(api.code, ErrorCode::RateLimited);
        assert_eq!(api.message, "slow down");
        assert_eq!(api.retry_after, Some(Duration::from_secs(7)));
        assert_eq!(api.request_id.as_deref(), Some("req-1"));
        assert_eq!(
            e.action(),
            Action::Retry {
                after: Some(Duration::from_secs(7))
            }
        );
        assert_eq!(
            e.to_string(),
            "429 Too Many Requests rate_limited: slow down"
        );
    }

    #[test]
    fn each_request_error_maps_to_the_documented_action() {
        let cases = [
            (400, "validation_failed", Action::Fix),
            (400, "malformed_json", Action::Fix),
            (415, "unsupported_media_type", Action::Fix),
            (413, "payload_too_large", Action::SendSmallerBatches),
            (413, "too_many_changes", Action::SendSmallerBatches),
            (400, "invalid_cursor", Action::PullFromScratch),
            (401, "unauthorized", Action::LogIn),
            (401, "invalid_credentials", Action::Fix),
            (409, "email_taken", Action::Fix),
            (503, "database_unavailable", Action::Retry { after: None }),
            (503, "timeout", Action::Retry { after: None }),
            (500, "internal_error", Action::Retry { after: None }),
            (503, "some_future_code", Action::Retry { after: None }),
            (400, "another_future_code", Action::Fix),
        ];
        for (status, code, want) in cases {
            let body = format!(r#"{{"success":false,"error":{{"code":"{code}","message":"m"}}}}"#);
            let e = error_from_response(
                StatusCode::from_u16(status).unwrap(),
                &HeaderMap::new(),
                body.as_bytes(),
            );
            assert_eq!(e.action(), want, "{status} {code}");
        }
    }

    #[test]
    fn a_body_that_is_not_an_error_is_a_decode_error() {
        let e = error_from_response(
            StatusCode::BAD_GATEWAY,
            &headers(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")]),
            b"<html>bad gateway</html>",
        );
        match &e {
            Error::Decode { status, reason } => {
                assert_eq!(*status, StatusCode::BAD_GATEWAY);
                assert!(reason.contains("<html>bad gateway</html>"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(e.is_retryable());
        assert_eq!(e.retry_after(), None);
        let long = vec![b'x'; 1000];
        assert!(snippet(&long).ends_with("(1000 bytes)"));
    }
}
