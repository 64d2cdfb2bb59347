//! Timestamps travel as ISO-8601 strings and are stored as Unix milliseconds.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = i64;

pub fn now_millis() -> Millis {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as Millis
}

/// `2025-01-01T00:00:00.000Z`, the form JavaScript's `Date.toISOString()` produces.
pub fn to_iso(ms: Millis) -> String {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    match OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            milli
        ),
        // Out of the representable range: only reachable from corrupt data.
        Err(_) => "1970-01-01T00:00:00.000Z".to_string(),
    }
}

/// Parses an RFC 3339 / ISO-8601 date-time with an offset (`Z` or `+02:00`).
pub fn parse_iso(s: &str) -> Option<Millis> {
    if s.len() > 64 {
        return None;
    }
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as Millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_round_trip() {
        let ms = parse_iso("2025-01-01T00:00:00.000Z").unwrap();
        assert_eq!(ms, 1_735_689_600_000);
        assert_eq!(to_iso(ms), "2025-01-01T00:00:00.000Z");
        assert_eq!(to_iso(1_735_689_600_123), "2025-01-01T00:00:00.123Z");
        assert_eq!(parse_iso("2025-01-01T02:00:00+02:00"), Some(ms));
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(parse_iso("yesterday"), None);
        assert_eq!(parse_iso("2025-13-01T00:00:00Z"), None);
        assert_eq!(parse_iso(""), None);
    }
}
