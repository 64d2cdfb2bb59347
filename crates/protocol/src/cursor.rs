//! The pull cursor (`syncTimestamp` on the wire): an opaque string that the
//! client sends back as `lastSyncTimestamp`.
//!
//! It holds one position per scope: `v1.u.<n>` for the user's personal
//! scope, then `.s<scope>.<n>` for each shared scope, in ascending scope
//! order. A user who shares nothing has `v1.u.<n>`, as before shared spaces
//! existed, so every cursor issued then still works. A position is a
//! version of that scope's counter, assigned in commit order.
//!
//! A position may carry a floor, `<n>f<floor>`: the device is part-way
//! through a from-scratch (or move-in) pull that began when the scope's
//! head was `floor`, so it needs no tombstone at or below it although its
//! position is lower (see history retention: such a device is not stale).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::scope::ScopeId;
use crate::time::{epoch_millis, parse_iso, Millis};

/// Where a pull starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CursorStart {
    /// No cursor: everything live, no tombstones.
    Scratch,
    /// Exact positions from an earlier response.
    At(Positions),
    /// A date, as older clients send: a best-effort start at that moment of
    /// *server* time; the cursor returned from then on is exact.
    Since(Millis),
}

impl CursorStart {
    /// A cursor of the personal scope only (`v1.u.<n>`).
    pub fn personal(n: i64) -> CursorStart {
        CursorStart::At(Positions::personal(n))
    }

    pub fn is_scratch(&self) -> bool {
        matches!(self, CursorStart::Scratch)
    }
}

/// The position in each scope a device has pulled up to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Positions {
    pub personal: i64,
    /// Shared scopes the device has started to receive.
    pub shared: BTreeMap<ScopeId, i64>,
    /// Floors above the position (see the module docs): the personal
    /// scope's, then shared scopes'. Absent means none.
    pub personal_floor: Option<i64>,
    pub shared_floors: BTreeMap<ScopeId, i64>,
}

impl Positions {
    pub fn personal(n: i64) -> Positions {
        Positions {
            personal: n,
            ..Positions::default()
        }
    }

    /// The floor in `scope`, if the cursor has one there.
    pub fn floor(&self, scope: ScopeId, personal: ScopeId) -> Option<i64> {
        if scope == personal {
            self.personal_floor
        } else {
            self.shared_floors.get(&scope).copied()
        }
    }

    /// Sets the floor in `scope`; kept only above the position.
    pub fn set_floor(&mut self, scope: ScopeId, personal: ScopeId, floor: i64) {
        let Some(at) = self.get(scope, personal) else {
            return;
        };
        let floor = (floor > at).then_some(floor);
        if scope == personal {
            self.personal_floor = floor;
        } else if let Some(f) = floor {
            self.shared_floors.insert(scope, f);
        } else {
            self.shared_floors.remove(&scope);
        }
    }

    /// The position in `scope`, given which scope is the personal one.
    pub fn get(&self, scope: ScopeId, personal: ScopeId) -> Option<i64> {
        if scope == personal {
            Some(self.personal)
        } else {
            self.shared.get(&scope).copied()
        }
    }

    pub fn set(&mut self, scope: ScopeId, personal: ScopeId, at: i64) {
        if scope == personal {
            self.personal = at;
        } else {
            self.shared.insert(scope, at);
        }
    }

    pub fn encode(&self) -> String {
        let with_floor = |n: i64, f: Option<i64>| match f {
            Some(f) if f > n => format!("{n}f{f}"),
            _ => n.to_string(),
        };
        let mut s = format!(
            "{PREFIX}u.{}",
            with_floor(self.personal, self.personal_floor)
        );
        for (scope, n) in &self.shared {
            let f = self.shared_floors.get(scope).copied();
            s.push_str(&format!(".s{scope}.{}", with_floor(*n, f)));
        }
        s
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidCursor(pub String);

const PREFIX: &str = "v1.";
/// Shared scopes a cursor may name: far above any real membership count,
/// low enough that parsing one costs nothing.
pub const MAX_SHARED_SCOPES: usize = 10_000;

/// `v1.u.<n>`: the cursor of a user with no shared scopes.
pub fn encode(version: i64) -> String {
    Positions::personal(version).encode()
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

fn number(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `<n>` or `<n>f<floor>` with the floor above `n`.
fn position(s: &str) -> Option<(i64, Option<i64>)> {
    match s.split_once('f') {
        None => Some((number(s)?, None)),
        Some((n, f)) => {
            let (n, f) = (number(n)?, number(f)?);
            (f > n).then_some((n, Some(f)))
        }
    }
}

fn positions(rest: &str) -> Option<Positions> {
    let mut parts = rest.split('.');
    if parts.next()? != "u" {
        return None;
    }
    let (n, floor) = position(parts.next()?)?;
    let mut p = Positions::personal(n);
    p.personal_floor = floor;
    while let Some(key) = parts.next() {
        let scope = ScopeId::new(number(key.strip_prefix('s')?)?);
        let (n, floor) = position(parts.next()?)?;
        if let Some(f) = floor {
            p.shared_floors.insert(scope, f);
        }
        // Ascending and unique, as this server writes them.
        if p.shared
            .keys()
            .next_back()
            .is_some_and(|last| *last >= scope)
            || p.shared.len() >= MAX_SHARED_SCOPES
        {
            return None;
        }
        p.shared.insert(scope, n);
    }
    Some(p)
}

pub fn parse_str(s: &str) -> Result<CursorStart, InvalidCursor> {
    if s.is_empty() {
        return Ok(CursorStart::Scratch);
    }
    if let Some(rest) = s.strip_prefix(PREFIX) {
        return positions(rest).map(CursorStart::At).ok_or_else(|| {
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
        assert_eq!(parse_str(&encode(42)), Ok(CursorStart::personal(42)));
        assert_eq!(parse_str("v1.u.0"), Ok(CursorStart::personal(0)));
        let mut p = Positions::personal(7);
        p.shared.insert(ScopeId::new(3), 12);
        p.shared.insert(ScopeId::new(40), 0);
        assert_eq!(p.encode(), "v1.u.7.s3.12.s40.0");
        assert_eq!(parse_str(&p.encode()), Ok(CursorStart::At(p)));
    }

    #[test]
    fn floors_round_trip_above_the_position_only() {
        let (u, s3) = (ScopeId::new(1), ScopeId::new(3));
        let mut p = Positions::personal(7);
        p.shared.insert(s3, 12);
        p.set_floor(u, u, 90);
        p.set_floor(s3, u, 12);
        assert_eq!(p.encode(), "v1.u.7f90.s3.12");
        p.set_floor(s3, u, 40);
        assert_eq!(p.encode(), "v1.u.7f90.s3.12f40");
        assert_eq!(parse_str(&p.encode()), Ok(CursorStart::At(p.clone())));
        assert_eq!((p.floor(u, u), p.floor(s3, u)), (Some(90), Some(40)));
        p.set_floor(u, u, 3);
        assert_eq!(p.encode(), "v1.u.7.s3.12f40");
        for bad in ["v1.u.7f7", "v1.u.7f3", "v1.u.7f", "v1.u.f7", "v1.u.7f8f9"] {
            assert!(parse_str(bad).is_err(), "{bad}");
        }
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
            json!("v1.u.1.s2"),
            json!("v1.u.1.s.2"),
            json!("v1.u.1.s2.5.s2.6"),
            json!("v1.u.1.s9.5.s2.6"),
            json!("v1.u.1.t2.5"),
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
