//! Pages of changes: which versions a pull returns, and where it stops.
//!
//! A page covers, in each of the user's scopes (personal first, then shared
//! ones by id), the versions `after < version <= upto`, in version order,
//! and stops at `limit` records or `max_bytes` of record text, whichever
//! comes first, so a page of huge records is as bounded as a page of small
//! ones. One extra row read past the end says whether there is more.

use std::collections::BTreeMap;

use tidesync_protocol::cursor::{CursorStart, Positions};
use tidesync_protocol::time::Millis;
use tidesync_protocol::{RecordId, ScopeId};

use crate::record::PulledRecord;
use crate::view::View;
use crate::EngineError;

/// One scope's part of a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScopeRange {
    pub scope: ScopeId,
    pub after: i64,
    pub upto: i64,
    /// Tombstones left out (a from-scratch pull).
    pub live_only: bool,
    /// The scope was in the device's cursor (otherwise it is moving in, and
    /// stays out of the cursor until the device has started receiving it).
    pub listed: bool,
    /// The device needs every tombstone above this version (`None`: none at
    /// all, a from-scratch pull): if the scope's collected history reaches
    /// above it, the device must resync.
    pub needs_after: Option<i64>,
    /// The floor the returned cursor keeps while its position is below it
    /// (the head when a from-scratch or move-in pull began).
    pub floor: i64,
}

/// What the backend reads for a page: the ranges in order, into one builder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageQuery {
    pub personal: ScopeId,
    pub ranges: Vec<ScopeRange>,
    /// Most records in the page.
    pub limit: usize,
    /// Most bytes of record text (see [`PulledRecord::size`]); the first
    /// record is always taken, however large.
    pub max_bytes: usize,
}

impl PageQuery {
    pub fn builder(self) -> PageBuilder {
        PageBuilder {
            reached: vec![None; self.ranges.len()],
            query: self,
            current: None,
            records: Vec::new(),
            bytes: 0,
            more: false,
        }
    }
}

/// Collects a page from rows offered range by range in version order; the
/// backend stops reading a range as soon as [`PageBuilder::offer`] returns
/// false, so neither the database nor this process holds more than a page.
#[derive(Debug)]
pub struct PageBuilder {
    query: PageQuery,
    current: Option<usize>,
    /// Per range: the last version taken.
    reached: Vec<Option<i64>>,
    records: Vec<PulledRecord>,
    bytes: usize,
    more: bool,
}

impl PageBuilder {
    /// Starts range `i`; returns how many rows to read from it: one more
    /// than the room left, so a full page still learns whether there is more.
    pub fn begin(&mut self, i: usize) -> usize {
        self.current = Some(i);
        self.query.limit.saturating_sub(self.records.len()) + 1
    }

    /// Whether reading on is pointless: the page is full and known to have more.
    pub fn done(&self) -> bool {
        self.more
    }

    pub fn ranges(&self) -> &[ScopeRange] {
        &self.query.ranges
    }

    /// Takes a row of the current range; false when the page is full (that
    /// row was not taken and marks that there is more).
    pub fn offer(&mut self, row: PulledRecord) -> bool {
        let Some(i) = self.current else {
            return false;
        };
        if self.more {
            return false;
        }
        let row = row.as_read_in(self.query.ranges[i].scope != self.query.personal);
        let size = row.size();
        let full = self.records.len() >= self.query.limit
            || (!self.records.is_empty() && self.bytes + size > self.query.max_bytes);
        if full {
            self.more = true;
            return false;
        }
        self.bytes += size;
        self.reached[i] = Some(row.version);
        self.records.push(row);
        true
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn finish(self) -> Page {
        let mut positions = Positions::default();
        // A range is complete unless the page stopped in it or before it.
        let stop = if self.more { self.current } else { None };
        for (i, r) in self.query.ranges.iter().enumerate() {
            let pos = match stop {
                Some(s) if i == s => self.reached[i].or(r.listed.then_some(r.after)),
                Some(s) if i > s => r.listed.then_some(r.after),
                _ => Some(r.upto),
            };
            let Some(pos) = pos else { continue };
            positions.set(r.scope, self.query.personal, pos);
            positions.set_floor(r.scope, self.query.personal, r.floor);
        }
        Page {
            records: self.records,
            has_more: self.more,
            positions,
        }
    }
}

/// A finished page.
#[derive(Debug, Default)]
pub struct Page {
    pub records: Vec<PulledRecord>,
    pub has_more: bool,
    /// The cursor to return.
    pub positions: Positions,
}

/// Per scope: the smallest version written at or after a date cursor's
/// moment (server time), for the scopes that have one.
pub type FirstSince = BTreeMap<ScopeId, i64>;

/// The server time a date cursor needs looked up, if it is one.
pub fn needs_first_since(cursor: &CursorStart) -> Option<Millis> {
    match cursor {
        CursorStart::Since(ms) => Some(*ms),
        _ => None,
    }
}

/// Whether a collection that committed while the page was read removed
/// tombstones the device needs: `collected` is each scope's value read
/// after the page (backends whose reads are not one snapshot recheck it).
pub fn stale(page: &PageQuery, collected: &[(ScopeId, i64)]) -> bool {
    page.ranges.iter().any(|r| {
        collected
            .iter()
            .any(|(s, c)| *s == r.scope && r.needs_after.is_some_and(|n| n < *c))
    })
}

/// A pull's plan: the page to read, and the shared spaces whose records
/// the device must drop (it was removed from them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullPlan {
    pub page: PageQuery,
    pub removed_spaces: Vec<RecordId>,
}

/// Where a cursor starts in each scope the user can read, against the
/// scopes' heads in `view`: the page ranges, and the removals.
pub fn plan(
    cursor: &CursorStart,
    view: &View,
    first_since: &FirstSince,
    limit: usize,
    max_bytes: usize,
) -> Result<PullPlan, EngineError> {
    let mut ranges = Vec::new();
    for s in view.readable() {
        // (start after, listed, live only, needs tombstones after, floor)
        let (after, listed, live_only, needs_after, floor) = match cursor {
            // Nothing held: no tombstone needed. Deletions of what this pull
            // sends come after the head it began at: its floor.
            CursorStart::Scratch => (0, false, true, None, s.head),
            CursorStart::Since(_) => {
                let after = first_since
                    .get(&s.id)
                    .map_or(s.head, |v| (v - 1).clamp(0, s.head));
                (after, true, false, Some(after), 0)
            }
            CursorStart::At(p) => match p.get(s.id, view.personal) {
                Some(v) if v > s.head => return Err(EngineError::CursorAhead),
                Some(v) => {
                    let floor = p.floor(s.id, view.personal).unwrap_or(0);
                    if floor > s.head {
                        return Err(EngineError::CursorAhead);
                    }
                    (v, true, false, Some(v.max(floor)), floor)
                }
                // Moving in. The devices of the user who shared the space
                // may hold its records from before: they need everything,
                // tombstones too. Anyone else's hold nothing of it, and get
                // its live records only: nothing of what was deleted before
                // they joined (as a from-scratch pull).
                None if s.founder => (0, false, false, Some(0), s.head),
                None => (0, false, true, None, s.head),
            },
        };
        // Tombstones up to `collected` are gone: a device that needs one of
        // them may hold a record deleted since.
        if needs_after.is_some_and(|n| n < s.collected) {
            return Err(EngineError::ResyncRequired);
        }
        ranges.push(ScopeRange {
            scope: s.id,
            after,
            upto: s.head,
            live_only,
            listed: listed || s.id == view.personal,
            needs_after,
            floor,
        });
    }
    let mut removed_spaces = Vec::new();
    if let CursorStart::At(p) = cursor {
        for scope in p.shared.keys() {
            if let Some(s) = view.get(*scope).filter(|s| !s.role.can_read()) {
                removed_spaces.extend(s.space);
            }
        }
    }
    Ok(PullPlan {
        page: PageQuery {
            personal: view.personal,
            ranges,
            limit,
            max_bytes,
        },
        removed_spaces,
    })
}

#[cfg(test)]
mod tests;
