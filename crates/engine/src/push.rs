//! A push as a state machine: it asks for the rows it needs ([`Need`]), is
//! fed them ([`Loaded`]), and ends in a [`Plan`] for the backend to execute
//! in the same transaction.
//!
//! ```text
//! let mut push = Push::new(user, input);
//! while let Some(need) = push.need() {     // view, locate, lock + batch, cascade children
//!     push.feed(backend.load(need)?)?;
//! }
//! let plan = push.finish()?;                // rows to write, counters, acks, the page to read
//! backend.write(&plan)?; let page = backend.page(plan.page.clone())?;
//! let output = plan.respond(page);          // no echo, forced records
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde_json::Value;
use tidesync_protocol::cursor::CursorStart;
use tidesync_protocol::entity::{EntityType, Kind};
use tidesync_protocol::merge::clamp_timestamp;
use tidesync_protocol::sync::{Ack, ChangeInput};
use tidesync_protocol::time::Millis;
use tidesync_protocol::{RecordId, Role, ScopeId, UserId};

use crate::apply::Batch;
use crate::page::{self, needs_first_since, FirstSince, Page, PageQuery};
use crate::record::{PulledRecord, RecordWrite, StoredRecord};
use crate::view::View;
use crate::{EngineError, SyncOutput};

/// What a push is given.
#[derive(Clone, Debug)]
pub struct PushInput {
    pub device_id: String,
    pub cursor: CursorStart,
    pub changes: Vec<ChangeInput>,
    pub limit: usize,
    /// Most bytes of record text in the page returned.
    pub max_page_bytes: usize,
    /// The server's clock for this request.
    pub now: Millis,
    /// Client timestamps further ahead than this are clamped to `now`.
    pub max_skew: Millis,
}

/// Rows the push needs before it can go on. Every list is deduplicated and sorted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Need {
    /// The user's memberships, with each scope's head and space.
    View,
    /// In which of these scopes each of these ids lives (only asked when
    /// the user has shared scopes: otherwise everything is personal).
    Locate {
        ids: Vec<RecordId>,
        scopes: Vec<ScopeId>,
    },
    /// First take the write locks of `lock`, in this order, and read each
    /// one's counter and the user's role in it under the lock. Then: stored
    /// acks of these operation ids; the records with these ids in these
    /// scopes; and, for a date cursor, per scope the smallest version
    /// written at or after this server time.
    Batch {
        lock: Vec<ScopeId>,
        operation_ids: Vec<String>,
        ids: Vec<RecordId>,
        scopes: Vec<ScopeId>,
        first_since: Option<Millis>,
    },
    /// More records by id, in these scopes (one a change needs that the
    /// batch did not name).
    Records {
        ids: Vec<RecordId>,
        scopes: Vec<ScopeId>,
    },
    /// Live records of `scope` whose `spaceId` is one of `spaces`, and those
    /// whose `categoryId` is one of `categories` unless their `spaceId` is
    /// one of `loaded_spaces` (read already): a cascade, one level at a
    /// time, each row read once.
    Children {
        scope: ScopeId,
        spaces: Vec<RecordId>,
        categories: Vec<RecordId>,
        loaded_spaces: Vec<RecordId>,
    },
}

/// The answer to a [`Need`].
#[derive(Clone, Debug)]
pub enum Loaded {
    View(View),
    Located(Vec<(RecordId, ScopeId)>),
    Batch {
        /// Per locked scope: its counter and the user's role, under the lock.
        locked: Vec<(ScopeId, i64, Role)>,
        /// (operation id, stored ack as JSON).
        acks: Vec<(String, String)>,
        records: Vec<StoredRecord>,
        first_since: FirstSince,
    },
    Records(Vec<StoredRecord>),
    Children(Vec<StoredRecord>),
}

enum Stage {
    View,
    Locate,
    Batch,
    Apply,
    Done,
}

pub struct Push {
    user: UserId,
    input: PushInput,
    stage: Stage,
    view: Option<View>,
    located: HashMap<RecordId, ScopeId>,
    batch: Option<Batch>,
    answered: HashMap<String, Ack>,
    acks: Vec<Ack>,
    logs: Vec<LogRow>,
    /// The next change to apply.
    pos: usize,
    /// Records targeted by replayed (duplicate) operations.
    replayed: Vec<RecordId>,
    /// Scopes to search for ids (every scope the user knows).
    known: Vec<ScopeId>,
}

/// One row of the sync log: the idempotency key, the answer, the audit trail.
#[derive(Clone, Debug, PartialEq)]
pub struct LogRow {
    pub operation_id: String,
    pub device_id: String,
    pub entity_type: Option<EntityType>,
    pub entity_id: Option<String>,
    pub operation: Option<tidesync_protocol::merge::OpKind>,
    /// JSON of the validated fields sent.
    pub changes: String,
    /// JSON of the ack returned.
    pub ack: String,
    pub client_time: Option<Millis>,
    pub server_time: Millis,
}

impl Push {
    pub fn new(user: UserId, input: PushInput) -> Push {
        Push {
            user,
            acks: Vec::with_capacity(input.changes.len()),
            logs: Vec::with_capacity(input.changes.len()),
            input,
            stage: Stage::View,
            view: None,
            located: HashMap::new(),
            batch: None,
            answered: HashMap::new(),
            pos: 0,
            replayed: Vec::new(),
            known: Vec::new(),
        }
    }

    /// What to load next; `None` when the plan is ready ([`Push::finish`]).
    pub fn need(&mut self) -> Option<Need> {
        match self.stage {
            Stage::View => Some(Need::View),
            Stage::Locate => Some(Need::Locate {
                ids: self.ids(),
                scopes: self.view().known(),
            }),
            Stage::Batch => Some(self.batch_need()),
            Stage::Done => None,
            Stage::Apply => {
                let need = self.advance();
                if need.is_none() {
                    self.stage = Stage::Done;
                }
                need
            }
        }
    }

    fn view(&self) -> &View {
        self.view.as_ref().expect("the view is loaded first")
    }

    /// Gives the push the rows it asked for.
    pub fn feed(&mut self, loaded: Loaded) -> Result<(), EngineError> {
        match (&self.stage, loaded) {
            (Stage::View, Loaded::View(view)) => {
                if view.get(view.personal).is_none() {
                    return Err(EngineError::Corrupt("the personal scope is missing".into()));
                }
                let shared = view.scopes.len() > 1;
                self.view = Some(view);
                self.stage = if shared { Stage::Locate } else { Stage::Batch };
                Ok(())
            }
            (Stage::Locate, Loaded::Located(located)) => {
                self.located = located.into_iter().collect();
                self.stage = Stage::Batch;
                Ok(())
            }
            (
                Stage::Batch,
                Loaded::Batch {
                    locked,
                    acks,
                    records,
                    first_since,
                },
            ) => {
                for (op, json) in acks {
                    let ack: Ack = serde_json::from_str(&json)
                        .map_err(|e| EngineError::Corrupt(format!("stored ack of {op:?}: {e}")))?;
                    self.answered.insert(op, ack);
                }
                let mut view = self.view.take().expect("view first");
                let mut base = BTreeMap::new();
                for (scope, head, role) in locked {
                    view.locked(scope, head, role);
                    base.insert(scope, head);
                }
                self.known = view.known();
                // The pull part of the push starts where the cursor says, in
                // every scope the user reads, against the counters under lock.
                let plan = page::plan(&self.input.cursor, &view, &first_since, 0, 0)?;
                let ids = self.ids();
                let mut batch =
                    Batch::new(self.user, view, base, plan.page.ranges, plan.removed_spaces);
                batch.looked_up(&ids);
                for r in records {
                    batch.add_loaded(r);
                }
                self.batch = Some(batch);
                self.stage = Stage::Apply;
                Ok(())
            }
            (Stage::Apply, Loaded::Records(records)) => {
                let batch = self.batch.as_mut().expect("applying");
                for r in records {
                    batch.add_loaded(r);
                }
                Ok(())
            }
            (Stage::Apply, Loaded::Children(records)) => {
                self.batch.as_mut().expect("applying").add_children(records);
                Ok(())
            }
            _ => Err(EngineError::Protocol("rows fed that were not asked for")),
        }
    }

    /// Every record id the batch targets or refers to.
    fn ids(&self) -> Vec<RecordId> {
        let mut ids: Vec<RecordId> = Vec::new();
        for c in &self.input.changes {
            let ChangeInput::Valid(c) = c else { continue };
            ids.push(c.id);
            for spec in c.entity.fields() {
                if let (Kind::Ref(_), Some(Value::String(s))) =
                    (spec.kind, c.data.fields.get(spec.name))
                {
                    ids.extend(s.parse::<RecordId>().ok());
                }
            }
        }
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    fn batch_need(&self) -> Need {
        let view = self.view();
        let mut ops: Vec<String> = self
            .input
            .changes
            .iter()
            .filter_map(|c| c.operation_id().map(str::to_owned))
            .collect();
        ops.sort_unstable();
        ops.dedup();
        // The personal scope is always locked: it serialises the user's
        // pushes, so concurrent retries of one batch see each other's acks.
        // Shared scopes are locked when the batch may write there. Ascending
        // order everywhere, so two pushes can't deadlock.
        let mut lock: BTreeSet<ScopeId> = BTreeSet::from([view.personal]);
        lock.extend(
            self.located
                .values()
                .filter(|s| view.role(**s).is_some_and(Role::can_write)),
        );
        Need::Batch {
            lock: lock.into_iter().collect(),
            operation_ids: ops,
            ids: self.ids(),
            scopes: view.known(),
            first_since: needs_first_since(&self.input.cursor),
        }
    }

    /// Applies changes (and cascades) until rows are missing or all are done.
    fn advance(&mut self) -> Option<Need> {
        loop {
            let batch = self.batch.as_mut().expect("applying");
            if batch.failed.is_some() {
                return None;
            }
            if let Some(need) = batch.cascade_step() {
                return Some(need);
            }
            if batch.cascading() {
                continue;
            }
            let change = self.input.changes.get(self.pos)?.clone();
            if let ChangeInput::Valid(c) = &change {
                let missing = batch.missing_for(c);
                if !missing.is_empty() {
                    batch.looked_up(&missing);
                    return Some(Need::Records {
                        ids: missing,
                        scopes: self.known.clone(),
                    });
                }
            }
            self.pos += 1;
            self.take(&change);
        }
    }

    /// One change: a replay of a stored answer, a rejection, or an effect.
    fn take(&mut self, change: &ChangeInput) {
        let batch = self.batch.as_mut().expect("applying");
        let op_id = change.operation_id();
        if let Some(prev) = op_id.and_then(|op| self.answered.get(op)) {
            // The first answer may have been lost with its server state: a
            // retried write that lost must bring that state again.
            // (`duplicate` in a stored ack means a delete of a deleted record,
            // whose tombstone may differ from what the device wrote.)
            if let ChangeInput::Valid(c) = change {
                if batch.visible(&c.id) {
                    if prev.conflict || prev.duplicate {
                        batch.conflicted.insert(c.id);
                    }
                    self.replayed.push(c.id);
                }
            }
            self.acks.push(Ack {
                duplicate: true,
                ..prev.clone()
            });
            return;
        }
        let now = self.input.now;
        let (ack, log) = match change {
            ChangeInput::Invalid {
                operation_id,
                id,
                error,
            } => {
                let ack = Ack::rejected(operation_id.clone(), id.clone(), error.clone());
                let log = operation_id.as_ref().map(|op| LogRow {
                    operation_id: op.clone(),
                    device_id: self.input.device_id.clone(),
                    entity_type: None,
                    entity_id: id.clone(),
                    operation: None,
                    changes: "{}".into(),
                    ack: serde_json::to_string(&ack).expect("ack serializes"),
                    client_time: None,
                    server_time: now,
                });
                (ack, log)
            }
            ChangeInput::Valid(c) => {
                let ts = clamp_timestamp(c.timestamp.unwrap_or(now), now, self.input.max_skew);
                let ack = batch.apply(c, ts);
                let log = LogRow {
                    operation_id: c.operation_id.clone(),
                    device_id: c.device_id.clone(),
                    entity_type: Some(c.entity),
                    entity_id: Some(c.id.to_string()),
                    operation: Some(c.op),
                    changes: serde_json::to_string(&c.data.fields).expect("fields serialize"),
                    ack: serde_json::to_string(&ack).expect("ack serializes"),
                    client_time: c.timestamp,
                    server_time: now,
                };
                (ack, Some(log))
            }
        };
        if let Some(log) = log {
            self.answered.insert(log.operation_id.clone(), ack.clone());
            self.logs.push(log);
        }
        self.acks.push(ack);
    }

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
        let forced = force
            .iter()
            .filter_map(|id| b.get(id))
            .map(|r| r.to_write(now).to_pulled())
            .collect();
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
        })
    }
}

/// What a push does, for the backend to execute in its transaction: save
/// `logs` and `upserts`, set each scope in `heads` to its counter, then read
/// `page` and hand it to [`Plan::respond`].
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
    /// Records the device must receive even if the page does not hold them.
    forced: Vec<PulledRecord>,
}

impl Plan {
    pub fn wrote(&self) -> bool {
        !self.heads.is_empty()
    }

    /// The answer, from the page read after the writes.
    pub fn respond(self, page: Page) -> SyncOutput {
        let mut records = page.records;
        let in_page: HashSet<RecordId> = records.iter().map(|r| r.id).collect();
        records.retain(|r| !self.exclude.contains(&r.id));
        records.extend(self.forced.into_iter().filter(|f| !in_page.contains(&f.id)));
        SyncOutput {
            acks: self.acks,
            records,
            cursor: page.positions,
            has_more: page.has_more,
            removed_spaces: self.removed_spaces,
            wrote: self.heads,
        }
    }
}
