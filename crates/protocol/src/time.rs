//! Timestamps travel as ISO-8601 strings and are stored as Unix milliseconds.
//!
//! Only instants from `0000-01-01T00:00:00.000Z` to `9999-12-31T23:59:59.999Z`
//! are accepted: the range the `YYYY-MM-DDTHH:MM:SS.mmmZ` form can write, so
//! every date the server stores can be sent back to it.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = i64;

/// `0000-01-01T00:00:00.000Z`.
pub const MIN_MILLIS: Millis = -62_167_219_200_000;
/// `9999-12-31T23:59:59.999Z`.
pub const MAX_MILLIS: Millis = 253_402_300_799_999;

pub fn now_millis() -> Millis {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as Millis
}

/// `2025-01-01T00:00:00.000Z`, the form JavaScript's `Date.toISOString()` produces.
pub fn to_iso(ms: Millis) -> String {
    let ms = ms.clamp(MIN_MILLIS, MAX_MILLIS);
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
        // Unreachable after the clamp.
        Err(_) => "1970-01-01T00:00:00.000Z".to_string(),
    }
}

/// Parses an RFC 3339 / ISO-8601 date-time with an offset (`Z` or `+02:00`)
/// whose UTC instant lies in the accepted range.
pub fn parse_iso(s: &str) -> Option<Millis> {
    if s.len() > 64 {
        return None;
    }
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    let ms = (t.unix_timestamp_nanos() / 1_000_000) as Millis;
    in_range(ms).then_some(ms)
}

pub fn in_range(ms: Millis) -> bool {
    (MIN_MILLIS..=MAX_MILLIS).contains(&ms)
}

/// Epoch milliseconds as clients send them (never before 1970).
pub fn epoch_millis(ms: i64) -> Option<Millis> {
    (0..=MAX_MILLIS).contains(&ms).then_some(ms)
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

    #[test]
    fn the_range_ends_are_exact() {
        assert_eq!(to_iso(MIN_MILLIS), "0000-01-01T00:00:00.000Z");
        assert_eq!(to_iso(MAX_MILLIS), "9999-12-31T23:59:59.999Z");
        assert_eq!(parse_iso("0000-01-01T00:00:00.000Z"), Some(MIN_MILLIS));
        assert_eq!(parse_iso("9999-12-31T23:59:59.999Z"), Some(MAX_MILLIS));
        // Written by the server as "-001-12-31T00:01:00.000Z" before the bound.
        assert_eq!(parse_iso("0000-01-01T00:00:00+23:59"), None);
        assert_eq!(parse_iso("9999-12-31T23:59:59-00:01"), None);
        assert_eq!(epoch_millis(MAX_MILLIS + 1), None);
        assert_eq!(epoch_millis(-1), None);
    }

    #[test]
    fn every_accepted_date_is_written_back_parseable() {
        for s in [
            "0000-01-01T23:59:00+23:59",
            "1969-12-31T23:59:59.999Z",
            "9999-12-31T23:59:59+00:00",
            "2024-02-29T12:00:00.5+05:30",
        ] {
            let ms = parse_iso(s).unwrap_or_else(|| panic!("{s}"));
            assert_eq!(parse_iso(&to_iso(ms)), Some(ms), "{s}");
        }
    }
}
