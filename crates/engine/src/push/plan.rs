//! The end of a push: [`Push::finish`] turns the applied batch into a
//! [`Plan`], and [`Plan::respond`] into the answer once the page is read.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use tidesync_protocol::sync::Ack;
use tidesync_protocol::{RecordId, ScopeId};

use super::{Again, LogRow, Push, Stage};
use crate::page::{Page, PageQuery};
use crate::record::{PulledRecord, RecordWrite, StoredRecord};
use crate::{EngineError, SyncOutput};

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
        if let Some((heads, upserts)) = b.step_writes(now)? {
            let mut stepped = self.stepped;
            if live_only {
                stepped.extend(upserts.iter().map(|w| w.id));
            }
            return Ok(Plan {
                heads,
                upserts,
                logs: vec![],
                acks: vec![],
                page: PageQuery {
                    personal: b.personal(),
                    ranges: vec![],
                    limit: 0,
                    max_bytes: 0,
                },
                removed_spaces: vec![],
                exclude: HashSet::new(),
                forced: vec![],
                again: Some(Again {
                    input: self.input,
                    stepped,
                }),
            });
        }
        let upserts: Vec<RecordWrite> = b
            .dirty
            .iter()
            .map(|id| b.get(id).expect("dirty records are held").to_write(now))
            .collect();
        let exclude: HashSet<RecordId> = b
            .as_sent
            .iter()
            .filter(|(_, exact)| **exact)
            .map(|(id, _)| *id)
            .collect();
        // Where a write lost or was merged, the device must get the server's
        // state even when the record did not change. On a from-scratch page
        // (no tombstones) a device that sent operations about a record still
        // must learn that it is deleted: by this request (cascades) or before
        // this replay arrived.
        let mut force: BTreeSet<RecordId> = b.conflicted.iter().copied().collect();
        if live_only {
            force.extend(b.dirty.iter().chain(&self.replayed).filter(|id| {
                b.get(id).is_some_and(StoredRecord::is_deleted) && !exclude.contains(id)
            }));
        }
        let mut forced: Vec<(ScopeId, PulledRecord)> = force
            .iter()
            .filter_map(|id| b.get(id))
            .map(|r| {
                let shown = r.to_write(now).to_pulled();
                (r.scope, shown.as_read_in(r.scope != b.personal()))
            })
            .collect();
        // What earlier steps deleted, unless forced above already.
        forced.extend(self.sent.into_iter().filter(|(_, r)| {
            r.deleted_at.is_some() && !exclude.contains(&r.id) && !force.contains(&r.id)
        }));
        let heads = b.written_heads();
        let (ranges, removed_spaces) = b.ranges_after_writes();
        Ok(Plan {
            heads,
            upserts,
            logs: self.logs,
            acks: self.acks,
            page: PageQuery {
                personal: b.personal(),
                ranges,
                limit: self.input.limit,
                max_bytes: self.input.max_page_bytes,
            },
            removed_spaces,
            exclude,
            forced,
            again: None,
        })
    }
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
    /// A step of a large cascade (see [`crate::PushInput::cascade_step`]):
    /// write `upserts` and `heads`, commit, and run the
    /// push again ([`Push::resume`]) in a new transaction. It has no acks,
    /// logs or page.
    pub again: Option<Again>,
}

impl Plan {
    pub fn wrote(&self) -> bool {
        !self.heads.is_empty()
    }

    /// The answer, from the page read after the writes. Forced records
    /// share the page's byte budget: one that does not fit is left to the
    /// following pulls, by moving the cursor of its scope back to just
    /// before its version (with a floor at the old position, so that no
    /// tombstone already sent is asked for again) and saying `has_more`.
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
                continue;
            }
            // Not listed: the scope is moving in, and its next page starts
            // from the beginning anyway.
            let Some(at) = positions.get(scope, personal) else {
                continue;
            };
            if at >= f.version {
                let floor = positions.floor(scope, personal).unwrap_or(0).max(at);
                positions.set(scope, personal, f.version - 1);
                positions.set_floor(scope, personal, floor);
            }
            has_more = true;
        }
        SyncOutput {
            acks: self.acks,
            records,
            cursor: positions,
            has_more,
            removed_spaces: self.removed_spaces,
            wrote: self.heads,
        }
    }
}
