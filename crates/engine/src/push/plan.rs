//! The end of a push: [`Push::finish`] turns the applied batch into a
//! [`Plan`], and [`Plan::respond`] into the answer once the page is read.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use tidesync_protocol::cursor::Positions;
use tidesync_protocol::sync::Ack;
use tidesync_protocol::{RecordId, ScopeId};

use super::{Again, LogRow, Push, Stage};
use crate::apply::Batch;
use crate::page::{Page, PageQuery};
use crate::record::{PulledRecord, RecordWrite, StoredRecord};
use crate::{EngineError, SyncOutput};

/// Merges counters written, keeping the highest of each scope.
fn merge_heads(into: &mut BTreeMap<ScopeId, i64>, heads: &BTreeMap<ScopeId, i64>) {
    for (s, v) in heads {
        let e = into.entry(*s).or_insert(*v);
        *e = (*e).max(*v);
    }
}

impl Push {
    /// The plan, once [`Push::need`] has returned `None`.
    pub fn finish(mut self) -> Result<Plan, EngineError> {
        if !matches!(self.stage, Stage::Done) && self.need().is_some() {
            return Err(EngineError::Protocol(
                "finish called before every need was fed",
            ));
        }
        let b = self.batch.take().ok_or(EngineError::Protocol("no batch"))?;
        if let Some(e) = b.failed {
            return Err(e);
        }
        let now = self.input.now;
        let live_only = self.input.cursor.is_scratch();
        let mut carried = std::mem::take(&mut self.carried);
        let empty_page = PageQuery {
            personal: b.personal(),
            ranges: vec![],
            limit: 0,
            max_bytes: 0,
        };
        // A step of a cascade: its rows alone; the transaction's changes run
        // again in the next one.
        if let Some((heads, upserts)) = b.step_writes(now)? {
            if live_only {
                // A from-scratch page holds no tombstones: owed.
                carried
                    .owed
                    .extend(upserts.iter().map(|w| (w.scope, w.id, w.version)));
            }
            carried.as_sent = b.earlier;
            merge_heads(&mut carried.wrote, &heads);
            return Ok(Plan::step(heads, upserts, vec![], empty_page, {
                Again {
                    input: self.input,
                    limits: self.limits,
                    carried,
                }
            }));
        }
        let upserts: Vec<RecordWrite> = b
            .dirty
            .iter()
            .map(|id| b.get(id).expect("dirty records are held").to_write(now))
            .collect();
        let force = force(&b, &self.replayed, live_only);
        let heads = b.written_heads();
        // The loads reached their budget: commit this transaction's changes
        // with their logs; the next goes on with the changes left.
        if self.run_ends {
            carried.acks.append(&mut self.acks);
            let mut as_sent = b.earlier.clone();
            as_sent.extend(b.as_sent.iter().map(|(id, exact)| (*id, *exact)));
            carried.as_sent = as_sent;
            carried.owed.extend(
                force
                    .iter()
                    .filter_map(|id| b.get(id))
                    .map(|r| (r.scope, r.id, r.version)),
            );
            merge_heads(&mut carried.wrote, &heads);
            let rest = self.input.changes.split_off(self.pos);
            self.input.changes = rest;
            return Ok(Plan::step(heads, upserts, self.logs, empty_page, {
                Again {
                    input: self.input,
                    limits: self.limits,
                    carried,
                }
            }));
        }
        // No echo: written exactly as sent, by this transaction or an
        // earlier one (whose verdict this one's replaces).
        let mut as_sent = b.earlier.clone();
        as_sent.extend(b.as_sent.iter().map(|(id, exact)| (*id, *exact)));
        let exclude: HashSet<RecordId> = as_sent
            .into_iter()
            .filter(|(_, exact)| *exact)
            .map(|(id, _)| id)
            .collect();
        let forced: Vec<(ScopeId, PulledRecord)> = force
            .iter()
            .filter_map(|id| b.get(id))
            .map(|r| {
                let shown = r.to_write(now).to_pulled();
                (r.scope, shown.as_read_in(r.scope != b.personal()))
            })
            .collect();
        let owed = carried
            .owed
            .into_iter()
            .filter(|(_, id, _)| !force.contains(id) && !exclude.contains(id))
            .collect();
        let mut acks = carried.acks;
        acks.append(&mut self.acks);
        let mut wrote = carried.wrote;
        merge_heads(&mut wrote, &heads);
        let (ranges, removed_spaces) = b.ranges_after_writes();
        Ok(Plan {
            heads,
            upserts,
            logs: self.logs,
            acks,
            page: PageQuery {
                personal: b.personal(),
                ranges,
                limit: self.input.limit,
                max_bytes: self.input.max_page_bytes,
            },
            removed_spaces,
            exclude,
            forced,
            owed,
            wrote,
            again: None,
        })
    }
}

/// Records the device must get the server's state of, even when the record
/// did not change: where a write lost or was merged; and, on a from-scratch
/// page (no tombstones), records a device sent operations about that are
/// deleted (by this request's cascades, or before a replay arrived).
fn force(b: &Batch, replayed: &[RecordId], live_only: bool) -> BTreeSet<RecordId> {
    let exact = |id: &RecordId| b.as_sent.get(id) == Some(&true);
    let mut force: BTreeSet<RecordId> = b.conflicted.iter().copied().collect();
    if live_only {
        force.extend(
            b.dirty
                .iter()
                .chain(replayed)
                .filter(|id| b.get(id).is_some_and(StoredRecord::is_deleted) && !exact(id)),
        );
    }
    force
}

/// What a push does, for the backend to execute in its transaction: save
/// `logs` and `upserts`, set each scope in `heads` to its counter, then read
/// `page` and hand it to [`Plan::respond`] (unless the plan is a step:
/// [`Plan::again`]).
#[derive(Debug)]
pub struct Plan {
    /// The scopes written, with their new counters.
    pub heads: BTreeMap<ScopeId, i64>,
    pub upserts: Vec<RecordWrite>,
    pub logs: Vec<LogRow>,
    pub acks: Vec<Ack>,
    pub page: PageQuery,
    pub removed_spaces: Vec<RecordId>,
    /// Records this device wrote exactly as it sent them: not echoed.
    exclude: HashSet<RecordId>,
    /// Records the device must receive even if the page does not hold them,
    /// with their scope.
    forced: Vec<(ScopeId, PulledRecord)>,
    /// Records earlier transactions of the push owe the device, as
    /// `(scope, id, version)`: sent by the page, or by moving the cursor
    /// back before them.
    owed: Vec<(ScopeId, RecordId, i64)>,
    /// Every scope the push wrote, in all its transactions.
    wrote: BTreeMap<ScopeId, i64>,
    /// A step (see [`crate::PushLimits`]): write `upserts`, `logs` and
    /// `heads`, commit, and run the push again ([`crate::Push::resume`]) in
    /// a new transaction. It has no acks and no page: the last
    /// transaction answers for all.
    pub again: Option<Again>,
}

/// Moves the cursor of `scope` back to just before `version`, so that the
/// next pulls bring that record; its floor keeps the old position, below
/// which the device needs no tombstone (so no resync is asked for).
fn owe(positions: &mut Positions, personal: ScopeId, scope: ScopeId, version: i64) {
    // Not listed: the scope is moving in, and its next page starts from
    // the beginning anyway.
    let Some(at) = positions.get(scope, personal) else {
        return;
    };
    if at >= version {
        let floor = positions.floor(scope, personal).unwrap_or(0).max(at);
        positions.set(scope, personal, version - 1);
        positions.set_floor(scope, personal, floor);
    }
}

impl Plan {
    fn step(
        heads: BTreeMap<ScopeId, i64>,
        upserts: Vec<RecordWrite>,
        logs: Vec<LogRow>,
        page: PageQuery,
        again: Again,
    ) -> Plan {
        Plan {
            wrote: heads.clone(),
            heads,
            upserts,
            logs,
            acks: vec![],
            page,
            removed_spaces: vec![],
            exclude: HashSet::new(),
            forced: vec![],
            owed: vec![],
            again: Some(again),
        }
    }

    pub fn wrote(&self) -> bool {
        !self.heads.is_empty()
    }

    /// The answer, from the page read after the writes. Forced records
    /// share the page's byte budget: one that does not fit, like one an
    /// earlier transaction owes, is left to the following pulls by moving
    /// the cursor of its scope back before it, with `has_more`.
    pub fn respond(self, page: Page) -> SyncOutput {
        let Page {
            mut records,
            mut positions,
            mut has_more,
        } = page;
        let personal = self.page.personal;
        let in_page: HashSet<RecordId> = records.iter().map(|r| r.id).collect();
        records.retain(|r| !self.exclude.contains(&r.id));
        let mut bytes: usize = records.iter().map(PulledRecord::size).sum();
        for (scope, f) in self.forced {
            if in_page.contains(&f.id) {
                continue;
            }
            if records.is_empty() || bytes + f.size() <= self.page.max_bytes {
                bytes += f.size();
                records.push(f);
            } else {
                owe(&mut positions, personal, scope, f.version);
                has_more = true;
            }
        }
        for (scope, id, version) in self.owed {
            if !in_page.contains(&id) {
                owe(&mut positions, personal, scope, version);
                has_more = true;
            }
        }
        SyncOutput {
            acks: self.acks,
            records,
            cursor: positions,
            has_more,
            removed_spaces: self.removed_spaces,
            wrote: self.wrote,
        }
    }
}
