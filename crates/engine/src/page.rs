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
                // Moving in: everything, tombstones too, since the device
                // may hold records of this space from before (its owner's
                // devices, when it was first shared): it needs them all.
                None => (0, false, false, Some(0), s.head),
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
mod tests {
    use super::*;
    use tidesync_protocol::entity::EntityType;
    use tidesync_protocol::{Role, UserId};

    use crate::view::ScopeView;

    const P: ScopeId = ScopeId::new(1);
    const S: ScopeId = ScopeId::new(5);

    fn row(version: i64, data_len: usize) -> PulledRecord {
        PulledRecord {
            id: RecordId::from_uuid(tidesync_protocol::uuid::Uuid::from_u128(version as u128)),
            entity: EntityType::Item,
            version,
            data: "x".repeat(data_len),
            created_at: 0,
            updated_at: 0,
            deleted_at: None,
            device_id: String::new(),
            created_by: UserId::from_uuid(tidesync_protocol::uuid::Uuid::nil()),
        }
    }

    fn one(limit: usize, max_bytes: usize) -> PageQuery {
        PageQuery {
            personal: P,
            ranges: vec![ScopeRange {
                scope: P,
                after: 0,
                upto: 100,
                live_only: false,
                listed: true,
                needs_after: Some(0),
                floor: 0,
            }],
            limit,
            max_bytes,
        }
    }

    #[test]
    fn a_page_stops_at_the_limit_and_points_at_its_last_record() {
        let mut b = one(3, usize::MAX).builder();
        assert_eq!(b.begin(0), 4);
        assert!(b.offer(row(4, 10)));
        assert!(b.offer(row(7, 10)));
        assert!(b.offer(row(9, 10)));
        assert!(!b.offer(row(12, 10)));
        let p = b.finish();
        assert_eq!(p.records.len(), 3);
        assert!(p.has_more);
        assert_eq!(p.positions, Positions::personal(9));
    }

    #[test]
    fn a_page_that_ends_early_points_at_the_top() {
        let mut b = one(3, usize::MAX).builder();
        b.begin(0);
        assert!(b.offer(row(4, 10)));
        let p = b.finish();
        assert!(!p.has_more);
        assert_eq!(p.positions, Positions::personal(100));
    }

    #[test]
    fn a_page_is_bounded_by_bytes_but_always_takes_one_record() {
        let big = 10_000;
        let mut b = one(1000, big + 300).builder();
        b.begin(0);
        assert!(b.offer(row(1, big)));
        assert!(
            !b.offer(row(2, 10)),
            "the second record would pass the budget"
        );
        let p = b.finish();
        assert_eq!((p.records.len(), p.has_more), (1, true));
        assert_eq!(p.positions.personal, 1);
        let mut b = one(1000, 10).builder();
        b.begin(0);
        assert!(b.offer(row(5, big)), "one record, however large");
        assert!(!b.offer(row(6, 1)));
    }

    fn view(removed: bool) -> View {
        let mut v = View::personal(UserId::random(), P, 9);
        v.scopes.push(ScopeView {
            id: S,
            role: if removed { Role::Removed } else { Role::Editor },
            space: Some(RecordId::from_uuid(
                tidesync_protocol::uuid::Uuid::from_u128(77),
            )),
            head: 4,
            collected: 0,
        });
        v
    }

    #[test]
    fn pages_run_across_scopes_and_a_scope_moves_in_whole() {
        // The cursor knows only the personal scope: the shared one moves in.
        let plan = super::plan(
            &CursorStart::personal(9),
            &view(false),
            &FirstSince::new(),
            3,
            usize::MAX,
        )
        .unwrap();
        let r = &plan.page.ranges;
        assert_eq!((r[0].scope, r[0].after, r[0].listed), (P, 9, true));
        assert_eq!(
            (r[1].scope, r[1].after, r[1].listed, r[1].live_only),
            (S, 0, false, false)
        );
        // Two of the shared scope's four rows fit: its position is the second.
        let mut b = plan.page.clone().builder();
        b.begin(0);
        b.begin(1);
        assert!(b.offer(row(1, 1)) && b.offer(row(2, 1)) && b.offer(row(3, 1)));
        assert!(!b.offer(row(4, 1)));
        let p = b.finish();
        // Part-way through the move-in: the floor (the head it began at) says
        // the device needs no tombstone up to 4.
        assert_eq!(p.positions.encode(), "v1.u.9.s5.3f4");
        // Not reached at all: a moving-in scope stays out of the cursor.
        let mut b = super::plan(
            &CursorStart::personal(0),
            &view(false),
            &FirstSince::new(),
            1,
            usize::MAX,
        )
        .unwrap()
        .page
        .builder();
        b.begin(0);
        assert!(b.offer(row(1, 1)));
        assert!(!b.offer(row(2, 1)));
        assert_eq!(b.finish().positions.encode(), "v1.u.1");
    }

    #[test]
    fn a_removed_scope_in_the_cursor_is_dropped_with_a_removal() {
        let mut at = Positions::personal(9);
        at.shared.insert(S, 2);
        let plan = super::plan(
            &CursorStart::At(at.clone()),
            &view(true),
            &FirstSince::new(),
            10,
            100,
        )
        .unwrap();
        assert_eq!(
            plan.page.ranges.len(),
            1,
            "nothing read from the removed scope"
        );
        assert_eq!(plan.removed_spaces.len(), 1);
        let mut b = plan.page.builder();
        b.begin(0);
        assert_eq!(
            b.finish().positions.encode(),
            "v1.u.9",
            "and it leaves the cursor"
        );
        // A scope the user never belonged to is ignored: no oracle.
        let mut other = Positions::personal(9);
        other.shared.insert(ScopeId::new(99), 3);
        let plan = super::plan(
            &CursorStart::At(other),
            &view(false),
            &FirstSince::new(),
            10,
            100,
        )
        .unwrap();
        assert!(plan.removed_spaces.is_empty());
    }

    #[test]
    fn cursors_ahead_of_a_scope_are_refused() {
        let mut at = Positions::personal(9);
        at.shared.insert(S, 5);
        assert_eq!(
            super::plan(
                &CursorStart::At(at),
                &view(false),
                &FirstSince::new(),
                10,
                100
            ),
            Err(EngineError::CursorAhead)
        );
        assert_eq!(
            super::plan(
                &CursorStart::personal(10),
                &view(false),
                &FirstSince::new(),
                10,
                100
            ),
            Err(EngineError::CursorAhead)
        );
    }

    #[test]
    fn a_cursor_behind_the_collected_history_must_resync() {
        let mut v = view(false);
        v.scopes[0].collected = 5;
        let resync = |c: CursorStart| super::plan(&c, &v, &FirstSince::new(), 10, 100);
        assert_eq!(
            resync(CursorStart::personal(4)),
            Err(EngineError::ResyncRequired)
        );
        assert!(
            resync(CursorStart::personal(5)).is_ok(),
            "it saw every collected tombstone"
        );
        assert!(
            resync(CursorStart::Scratch).is_ok(),
            "a from-scratch pull needs no tombstones"
        );
        let mut first = FirstSince::new();
        first.insert(P, 3);
        assert_eq!(
            super::plan(&CursorStart::Since(0), &v, &first, 10, 100),
            Err(EngineError::ResyncRequired),
            "a date before the horizon too"
        );
    }

    #[test]
    fn a_pull_part_way_from_scratch_or_moving_in_is_not_stale() {
        let mut v = view(false);
        v.scopes[0].collected = 5;
        // From scratch: page one stops at 2, below what was collected.
        let plan =
            super::plan(&CursorStart::Scratch, &v, &FirstSince::new(), 2, usize::MAX).unwrap();
        let mut b = plan.page.builder();
        b.begin(0);
        assert!(b.offer(row(1, 1)) && b.offer(row(2, 1)));
        assert!(!b.offer(row(6, 1)));
        let next = b.finish().positions;
        assert_eq!(next.encode(), "v1.u.2f9");
        let plan = super::plan(
            &CursorStart::At(next.clone()),
            &v,
            &FirstSince::new(),
            2,
            usize::MAX,
        );
        assert!(plan.is_ok(), "the next page of a scratch pull: {plan:?}");
        assert!(!stale(&plan.unwrap().page, &[(P, 9)]));
        // A collection reaching above the floor: deletions the device needs.
        assert!(super::plan(
            &CursorStart::At(next.clone()),
            &{
                let mut v = v.clone();
                v.scopes[0].head = 20;
                v.scopes[0].collected = 10;
                v
            },
            &FirstSince::new(),
            2,
            usize::MAX
        )
        .is_err());
        // A floor above the head was not issued here.
        let mut ahead = next;
        ahead.personal_floor = Some(50);
        assert_eq!(
            super::plan(
                &CursorStart::At(ahead),
                &v,
                &FirstSince::new(),
                2,
                usize::MAX
            ),
            Err(EngineError::CursorAhead)
        );
        // Moving into a scope with collected history: the device may hold its
        // records from before, and cannot learn of deletions collected.
        let mut v = view(false);
        v.scopes[1].collected = 1;
        assert_eq!(
            super::plan(
                &CursorStart::personal(9),
                &v,
                &FirstSince::new(),
                2,
                usize::MAX
            ),
            Err(EngineError::ResyncRequired)
        );
    }

    #[test]
    fn a_date_cursor_starts_before_the_first_version_written_since() {
        let mut first = FirstSince::new();
        first.insert(P, 6);
        let plan = super::plan(&CursorStart::Since(5), &view(false), &first, 10, 100).unwrap();
        assert_eq!(plan.page.ranges[0].after, 5);
        assert_eq!(
            plan.page.ranges[1].after, 4,
            "nothing newer in that scope: its head"
        );
        let plan = super::plan(&CursorStart::Scratch, &view(false), &first, 10, 100).unwrap();
        assert!(plan.page.ranges.iter().all(|r| r.live_only && r.after == 0));
    }
}
