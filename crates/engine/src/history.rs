//! History collection as a need/plan machine: which old tombstones and
//! `sync_log` rows go, in what batches, and how far each scope's
//! `collected` mark rises. Backends answer [`GcNeed`]s with rows and apply
//! [`GcPlan`]s, one transaction per plan; the decisions are made here once.
//!
//! Why `collected` rises to the highest version removed: a cursor at or
//! behind it may have missed a tombstone that is now gone, so such a device
//! must resync (`resync_required`) instead of trusting its local copy.

use std::collections::BTreeMap;

use tidesync_protocol::time::Millis;
use tidesync_protocol::ScopeId;

/// Rows removed per transaction, so collection never holds a lock long.
pub const GC_BATCH: usize = 5_000;

/// What a garbage collection removes: everything older than these moments
/// of server time.
#[derive(Clone, Copy, Debug)]
pub struct GcHorizon {
    /// Tombstones written before this are removed; cursors behind them
    /// then get `resync_required`.
    pub tombstones_before: Millis,
    /// `sync_log` rows received before this are removed: their operation
    /// ids are forgotten.
    pub log_before: Millis,
    /// Revoked tokens that expired before this are forgotten.
    pub now: Millis,
}

/// What one garbage collection removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    pub tombstones: u64,
    pub log_rows: u64,
    pub revoked_tokens: u64,
}

/// One old tombstone as a backend found it: `key` is whatever the backend
/// deletes it by (a rowid, a scope and id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OldTombstone<K> {
    pub key: K,
    pub scope: ScopeId,
    pub version: i64,
}

/// What the machine needs next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GcNeed {
    /// Up to `limit` tombstones written before `before`, in any order;
    /// answer with [`Collect::plan`].
    OldTombstones { before: Millis, limit: usize },
    /// Forget revoked tokens that expired before `now`; answer with
    /// [`Collect::tokens_forgotten`].
    ExpiredTokens { now: Millis },
    /// Nothing more: the report is final.
    Done(GcReport),
}

/// One transaction's work: delete these tombstones, raise these scopes'
/// `collected` (never lower it), and delete up to `log_limit` `sync_log`
/// rows received before `log_before`. A backend that locks scopes against
/// pushes locks `raise`'s scopes first, in this (ascending) order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GcPlan<K> {
    pub tombstones: Vec<K>,
    pub raise: Vec<(ScopeId, i64)>,
    pub log_before: Millis,
    pub log_limit: usize,
}

/// A garbage collection in progress. `Copy`, so a backend can plan inside
/// a job that runs on another thread (SQLite's writer).
#[derive(Clone, Copy, Debug)]
pub struct Collect {
    horizon: GcHorizon,
    batch: usize,
    report: GcReport,
    state: State,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Batches,
    Tokens,
    Done,
}

impl Collect {
    pub fn new(horizon: GcHorizon) -> Collect {
        Collect::with_batch(horizon, GC_BATCH)
    }

    /// With another batch size (tests; never 0).
    pub fn with_batch(horizon: GcHorizon, batch: usize) -> Collect {
        Collect {
            horizon,
            batch: batch.max(1),
            report: GcReport::default(),
            state: State::Batches,
        }
    }

    pub fn need(&self) -> GcNeed {
        match self.state {
            State::Batches => GcNeed::OldTombstones {
                before: self.horizon.tombstones_before,
                limit: self.batch,
            },
            State::Tokens => GcNeed::ExpiredTokens {
                now: self.horizon.now,
            },
            State::Done => GcNeed::Done(self.report),
        }
    }

    /// The plan for the tombstones found (at most the batch).
    pub fn plan<K>(&self, found: Vec<OldTombstone<K>>) -> GcPlan<K> {
        let mut highest: BTreeMap<ScopeId, i64> = BTreeMap::new();
        for t in &found {
            let h = highest.entry(t.scope).or_insert(t.version);
            *h = (*h).max(t.version);
        }
        GcPlan {
            tombstones: found.into_iter().map(|t| t.key).collect(),
            raise: highest.into_iter().collect(),
            log_before: self.horizon.log_before,
            log_limit: self.batch,
        }
    }

    /// A plan committed, having removed this many tombstones and log rows.
    /// Another batch follows while either was full.
    pub fn applied(&mut self, tombstones: u64, log_rows: u64) {
        self.report.tombstones += tombstones;
        self.report.log_rows += log_rows;
        let full = self.batch as u64;
        if tombstones < full && log_rows < full {
            self.state = State::Tokens;
        }
    }

    pub fn tokens_forgotten(&mut self, n: u64) {
        self.report.revoked_tokens += n;
        self.state = State::Done;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn horizon() -> GcHorizon {
        GcHorizon {
            tombstones_before: 100,
            log_before: 50,
            now: 200,
        }
    }

    fn t(key: u32, scope: i64, version: i64) -> OldTombstone<u32> {
        OldTombstone {
            key,
            scope: ScopeId::new(scope),
            version,
        }
    }

    #[test]
    fn each_scope_is_raised_to_the_highest_version_removed() {
        let c = Collect::new(horizon());
        let plan = c.plan(vec![t(1, 2, 7), t(2, 1, 3), t(3, 2, 9), t(4, 1, 1)]);
        assert_eq!(plan.tombstones, vec![1, 2, 3, 4]);
        assert_eq!(plan.raise, vec![(ScopeId::new(1), 3), (ScopeId::new(2), 9)]);
        assert_eq!((plan.log_before, plan.log_limit), (50, GC_BATCH));
    }

    #[test]
    fn batches_go_on_while_either_kind_was_full_then_tokens_then_done() {
        let mut c = Collect::with_batch(horizon(), 2);
        assert_eq!(
            c.need(),
            GcNeed::OldTombstones {
                before: 100,
                limit: 2
            }
        );
        c.applied(2, 0); // tombstones full: more may be left
        assert!(matches!(c.need(), GcNeed::OldTombstones { .. }));
        c.applied(1, 2); // log rows full
        assert!(matches!(c.need(), GcNeed::OldTombstones { .. }));
        c.applied(0, 1);
        assert_eq!(c.need(), GcNeed::ExpiredTokens { now: 200 });
        c.tokens_forgotten(4);
        assert_eq!(
            c.need(),
            GcNeed::Done(GcReport {
                tombstones: 3,
                log_rows: 3,
                revoked_tokens: 4
            })
        );
    }

    #[test]
    fn nothing_to_collect_ends_after_one_batch() {
        let mut c = Collect::new(horizon());
        let plan = c.plan::<u32>(vec![]);
        assert!(plan.tombstones.is_empty() && plan.raise.is_empty());
        c.applied(0, 0);
        assert_eq!(c.need(), GcNeed::ExpiredTokens { now: 200 });
    }

    #[test]
    fn a_zero_batch_is_one() {
        let c = Collect::with_batch(horizon(), 0);
        assert_eq!(
            c.need(),
            GcNeed::OldTombstones {
                before: 100,
                limit: 1
            }
        );
    }
}
