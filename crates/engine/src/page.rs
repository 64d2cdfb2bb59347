//! Pages of changes: which versions a pull returns, and where it stops.
//!
//! A page covers `after < version <= upto` in version order and stops at
//! `limit` records or `max_bytes` of record text, whichever comes first, so
//! a page of huge records is as bounded as a page of small ones. One extra
//! row read past the end says whether there is more.

use tidesync_protocol::cursor::CursorStart;

use crate::record::PulledRecord;
use crate::EngineError;

/// What the backend reads for a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageQuery {
    pub after: i64,
    pub upto: i64,
    /// Most records in the page; the backend reads at most `limit + 1` rows.
    pub limit: usize,
    /// From scratch: tombstones are left out.
    pub live_only: bool,
    /// Most bytes of record text (see [`PulledRecord::size`]); the first
    /// record is always taken, however large.
    pub max_bytes: usize,
}

impl PageQuery {
    /// Rows to ask the database for: one more than a page, to see if there is more.
    pub fn rows(&self) -> usize {
        self.limit.saturating_add(1)
    }

    pub fn builder(self) -> PageBuilder {
        PageBuilder {
            query: self,
            records: Vec::new(),
            bytes: 0,
            more: false,
        }
    }
}

/// Collects a page from rows offered in version order; the backend stops
/// reading as soon as [`PageBuilder::offer`] returns false, so neither the
/// database nor this process holds more than one page.
#[derive(Debug)]
pub struct PageBuilder {
    query: PageQuery,
    records: Vec<PulledRecord>,
    bytes: usize,
    more: bool,
}

impl PageBuilder {
    /// Takes a row; false when the page is full (that row was not taken and
    /// marks that there is more).
    pub fn offer(&mut self, row: PulledRecord) -> bool {
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
        self.records.push(row);
        true
    }

    /// Bytes of record text taken so far.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn finish(self) -> Page {
        let cursor = match self.records.last() {
            Some(last) if self.more => last.version,
            _ => self.query.upto,
        };
        Page {
            records: self.records,
            has_more: self.more,
            cursor,
        }
    }
}

/// A finished page.
#[derive(Debug, Default)]
pub struct Page {
    pub records: Vec<PulledRecord>,
    pub has_more: bool,
    /// The position the returned cursor stands for: the last record's
    /// version when there is more, else the top of the range.
    pub cursor: i64,
}

/// Where a cursor starts, against the user's committed counter `head`.
/// `first_since` is the answer to [`needs_first_since`] for a date cursor:
/// the smallest version written at or after that moment, if any.
pub fn resolve(
    cursor: CursorStart,
    head: i64,
    first_since: Option<i64>,
) -> Result<i64, EngineError> {
    match cursor {
        CursorStart::Scratch => Ok(0),
        CursorStart::Version(v) if v > head => Err(EngineError::CursorAhead),
        CursorStart::Version(v) => Ok(v),
        CursorStart::Since(_) => Ok(match first_since {
            Some(v) => (v - 1).clamp(0, head),
            None => head,
        }),
    }
}

/// The server time a date cursor needs looked up, if it is one.
pub fn needs_first_since(cursor: CursorStart) -> Option<tidesync_protocol::time::Millis> {
    match cursor {
        CursorStart::Since(ms) => Some(ms),
        _ => None,
    }
}

/// A pull: the page to read for `cursor` against the committed `head`.
pub fn plan_pull(
    cursor: CursorStart,
    head: i64,
    first_since: Option<i64>,
    limit: usize,
    max_bytes: usize,
) -> Result<PageQuery, EngineError> {
    Ok(PageQuery {
        after: resolve(cursor, head, first_since)?,
        upto: head,
        limit,
        live_only: cursor == CursorStart::Scratch,
        max_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidesync_protocol::entity::EntityType;
    use tidesync_protocol::RecordId;

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
        }
    }

    fn query(limit: usize, max_bytes: usize) -> PageQuery {
        PageQuery {
            after: 0,
            upto: 100,
            limit,
            live_only: false,
            max_bytes,
        }
    }

    #[test]
    fn a_page_stops_at_the_limit_and_points_at_its_last_record() {
        let mut b = query(3, usize::MAX).builder();
        assert!(b.offer(row(4, 10)));
        assert!(b.offer(row(7, 10)));
        assert!(b.offer(row(9, 10)));
        assert!(!b.offer(row(12, 10)));
        let p = b.finish();
        assert_eq!(p.records.len(), 3);
        assert!(p.has_more);
        assert_eq!(p.cursor, 9);
    }

    #[test]
    fn a_page_that_ends_early_points_at_the_top() {
        let mut b = query(3, usize::MAX).builder();
        assert!(b.offer(row(4, 10)));
        let p = b.finish();
        assert!(!p.has_more);
        assert_eq!(p.cursor, 100);
        let p = query(3, 1).builder().finish();
        assert_eq!((p.records.len(), p.has_more, p.cursor), (0, false, 100));
    }

    #[test]
    fn a_page_is_bounded_by_bytes_but_always_takes_one_record() {
        let big = 10_000;
        let mut b = query(1000, big + 300).builder();
        assert!(b.offer(row(1, big)));
        assert!(
            !b.offer(row(2, 10)),
            "the second record would pass the budget"
        );
        let p = b.finish();
        assert_eq!((p.records.len(), p.has_more, p.cursor), (1, true, 1));

        let mut b = query(1000, 10).builder();
        assert!(b.offer(row(5, big)), "one record, however large");
        assert!(!b.offer(row(6, 1)));
        assert_eq!(b.finish().cursor, 5);
    }

    #[test]
    fn cursors_resolve_against_the_head() {
        assert_eq!(resolve(CursorStart::Scratch, 9, None), Ok(0));
        assert_eq!(resolve(CursorStart::Version(4), 9, None), Ok(4));
        assert_eq!(resolve(CursorStart::Version(9), 9, None), Ok(9));
        assert_eq!(
            resolve(CursorStart::Version(10), 9, None),
            Err(EngineError::CursorAhead)
        );
        // A date: just before the first version written since, or the head.
        assert_eq!(resolve(CursorStart::Since(5), 9, Some(6)), Ok(5));
        assert_eq!(resolve(CursorStart::Since(5), 9, Some(1)), Ok(0));
        assert_eq!(resolve(CursorStart::Since(5), 9, None), Ok(9));
        assert_eq!(needs_first_since(CursorStart::Since(5)), Some(5));
        assert_eq!(needs_first_since(CursorStart::Version(5)), None);
        let q = plan_pull(CursorStart::Scratch, 9, None, 10, 99).unwrap();
        assert!(q.live_only && q.after == 0 && q.upto == 9 && q.rows() == 11);
        assert!(
            !plan_pull(CursorStart::Version(3), 9, None, 10, 99)
                .unwrap()
                .live_only
        );
    }
}
