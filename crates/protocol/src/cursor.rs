//! The pull cursor (`syncTimestamp` on the wire): an opaque string that the
//! client sends back as `lastSyncTimestamp`.
//!
//! Today it holds one position: the user's version counter, assigned in commit
//! order. It is written `v1.u.<n>`: a format tag, then (scope, position) pairs,
//! so that scopes shared between users can be added as further pairs without
//! breaking clients, which only ever store and return the string.

use serde_json::Value;

use crate::time::{epoch_millis, parse_iso, Millis};

/// Where a pull starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CursorStart {
    /// No cursor: everything live, no tombstones.
    Scratch,
    /// An exact position from an earlier response.
    Version(i64),
    /// A date, as older clients send: a best-effort start at that moment of
    /// *server* time; the cursor returned from then on is exact.
    Since(Millis),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidCursor(pub String);

const PREFIX: &str = "v1.";

pub fn encode(version: i64) -> String {
    format!("{PREFIX}u.{version}")
}

pub fn parse(v: Option<&Value>) -> Result<CursorStart, InvalidCursor> {
    match v {
        None | Some(Value::Null) => Ok(CursorStart::Scratch),
        Some(Value::String(s)) => parse_str(s),
        // Milliseconds since the epoch: what some clients store.
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(epoch_millis)
            .map(CursorStart::Since)
            .ok_or_else(|| {
                InvalidCursor(
                    "a numeric lastSyncTimestamp must be epoch milliseconds from 0 to 253402300799999"
                        .into(),
                )
            }),
        Some(_) => Err(InvalidCursor(
            "lastSyncTimestamp must be a string from syncTimestamp, a date, or null".into(),
        )),
    }
}

pub fn parse_str(s: &str) -> Result<CursorStart, InvalidCursor> {
    if s.is_empty() {
        return Ok(CursorStart::Scratch);
    }
    if let Some(rest) = s.strip_prefix(PREFIX) {
        let mut parts = rest.split('.');
        let parsed = match (parts.next(), parts.next(), parts.next()) {
            (Some("u"), Some(n), None)
                if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) =>
            {
                n.parse::<i64>().ok()
            }
            _ => None,
        };
        return parsed.map(CursorStart::Version).ok_or_else(|| {
            InvalidCursor("lastSyncTimestamp is not a cursor this server issued".into())
        });
    }
    parse_iso(s).map(CursorStart::Since).ok_or_else(|| {
        InvalidCursor("lastSyncTimestamp is neither a cursor nor an ISO-8601 date".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip() {
        assert_eq!(parse_str(&encode(42)), Ok(CursorStart::Version(42)));
        assert_eq!(parse_str(&encode(0)), Ok(CursorStart::Version(0)));
    }

    #[test]
    fn legacy_forms() {
        assert_eq!(parse(None), Ok(CursorStart::Scratch));
        assert_eq!(parse(Some(&Value::Null)), Ok(CursorStart::Scratch));
        assert_eq!(parse(Some(&json!(""))), Ok(CursorStart::Scratch));
        assert_eq!(
            parse(Some(&json!("2025-01-01T00:00:00.000Z"))),
            Ok(CursorStart::Since(1_735_689_600_000))
        );
        assert_eq!(
            parse(Some(&json!(1_735_689_600_000i64))),
            Ok(CursorStart::Since(1_735_689_600_000))
        );
    }

    #[test]
    fn garbage_is_rejected() {
        for bad in [
            json!("v1.u."),
            json!("v1.u.-3"),
            json!("v1.u.12.x"),
            json!("v1.q.12"),
            json!("v1.u.99999999999999999999999"),
            json!("v2.u.1"),
            json!("hello"),
            json!(-5),
            json!(253_402_300_800_000i64),
            json!(1.5),
            json!(true),
            json!({"u": 1}),
        ] {
            assert!(parse(Some(&bad)).is_err(), "{bad}");
        }
    }
}
