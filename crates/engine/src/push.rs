//! A push as a state machine: it asks for the rows it needs ([`Need`]), is
//! fed them ([`Loaded`]), and ends in a [`Plan`] for the backend to execute
//! in the same transaction.
//!
//! ```text
//! let mut push = Push::new(input, head);       // head: the counter, under the user's write lock
//! while let Some(need) = push.need() {          // stored acks and records, then cascade children
//!     push.feed(backend.load(need)?)?;
//! }
//! let plan = push.finish();                     // rows to write, acks, the page to read
//! backend.write(&plan)?; let page = backend.page(plan.page)?;
//! let output = plan.respond(page);              // no echo, forced records
//! ```

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::Value;
use tidesync_protocol::cursor::CursorStart;
use tidesync_protocol::entity::{EntityType, Kind};
use tidesync_protocol::merge::clamp_timestamp;
use tidesync_protocol::sync::{Ack, ChangeInput};
use tidesync_protocol::time::Millis;
use tidesync_protocol::RecordId;

use crate::apply::Batch;
use crate::page::{needs_first_since, resolve, Page, PageQuery};
use crate::record::{PulledRecord, RecordWrite, StoredRecord};
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

/// Rows the push needs before it can go on. Every list is deduplicated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Need {
    /// The first load: stored acks of these operation ids; the records with
    /// these ids (the batch's targets and everything they refer to); and,
    /// for a date cursor, the smallest version written at or after this
    /// server time.
    Batch {
        operation_ids: Vec<String>,
        ids: Vec<RecordId>,
        first_since: Option<Millis>,
    },
    /// Live records whose `spaceId` is one of `spaces`, and live records
    /// whose `categoryId` is one of `categories` unless their `spaceId` is
    /// one of `loaded_spaces` (those were loaded already): a cascade, one
    /// level at a time, each row read once.
    Children {
        spaces: Vec<RecordId>,
        categories: Vec<RecordId>,
        loaded_spaces: Vec<RecordId>,
    },
}

/// The answer to a [`Need`].
#[derive(Clone, Debug)]
pub enum Loaded {
    Batch {
        /// (operation id, stored ack as JSON).
        acks: Vec<(String, String)>,
        records: Vec<StoredRecord>,
        first_since: Option<i64>,
    },
    Children(Vec<StoredRecord>),
}

enum Stage {
    Start,
    Apply,
    Done,
}

pub struct Push {
    input: PushInput,
    stage: Stage,
    batch: Batch,
    answered: HashMap<String, Ack>,
    acks: Vec<Ack>,
    logs: Vec<LogRow>,
    /// The next change to apply.
    pos: usize,
    /// Records targeted by replayed (duplicate) operations.
    replayed: Vec<RecordId>,
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
    /// A push for a user whose counter, read under the user's write lock, is `head`.
    pub fn new(input: PushInput, head: i64) -> Push {
        let batch = Batch::new(head);
        Push {
            acks: Vec::with_capacity(input.changes.len()),
            logs: Vec::with_capacity(input.changes.len()),
            input,
            stage: Stage::Start,
            batch,
            answered: HashMap::new(),
            pos: 0,
            replayed: Vec::new(),
        }
    }

    /// What to load next; `None` when the plan is ready ([`Push::finish`]).
    pub fn need(&mut self) -> Option<Need> {
        match self.stage {
            Stage::Start => Some(self.first_need()),
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

    /// Gives the push the rows it asked for.
    pub fn feed(&mut self, loaded: Loaded) -> Result<(), EngineError> {
        match (&self.stage, loaded) {
            (
                Stage::Start,
                Loaded::Batch {
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
                let since = resolve(self.input.cursor, self.batch.base, first_since)?;
                self.batch.since = since;
                for r in records {
                    self.batch.add_loaded(r);
                }
                self.stage = Stage::Apply;
                Ok(())
            }
            (Stage::Apply, Loaded::Children(records)) => {
                self.batch.add_children(records);
                Ok(())
            }
            _ => Err(EngineError::Protocol("rows fed that were not asked for")),
        }
    }

    fn first_need(&self) -> Need {
        let mut ops: Vec<String> = self
            .input
            .changes
            .iter()
            .filter_map(|c| c.operation_id().map(str::to_owned))
            .collect();
        ops.sort_unstable();
        ops.dedup();
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
        Need::Batch {
            operation_ids: ops,
            ids,
            first_since: needs_first_since(self.input.cursor),
        }
    }

    /// Applies changes (and cascades) until rows are missing or all are done.
    fn advance(&mut self) -> Option<Need> {
        loop {
            if let Some(need) = self.batch.cascade_step() {
                return Some(need);
            }
            if self.batch.cascading() {
                continue;
            }
            let change = self.input.changes.get(self.pos)?.clone();
            self.pos += 1;
            self.take(&change);
        }
    }

    /// One change: a replay of a stored answer, a rejection, or an effect.
    fn take(&mut self, change: &ChangeInput) {
        let op_id = change.operation_id();
        if let Some(prev) = op_id.and_then(|op| self.answered.get(op)) {
            // The first answer may have been lost with its server state: a
            // retried write that lost must bring that state again.
            // (`duplicate` in a stored ack means a delete of a deleted record,
            // whose tombstone may differ from what the device wrote.)
            if let ChangeInput::Valid(c) = change {
                if self.batch.working.contains(&c.id) {
                    if prev.conflict || prev.duplicate {
                        self.batch.conflicted.insert(c.id);
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
                let ack = self.batch.apply(c, ts);
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
        let b = &self.batch;
        let now = self.input.now;
        let live_only = self.input.cursor == CursorStart::Scratch;
        let upserts: Vec<RecordWrite> = b
            .dirty
            .iter()
            .map(|id| {
                b.working
                    .get(id)
                    .expect("dirty records are held")
                    .to_write(now)
            })
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
                b.working.get(id).is_some_and(StoredRecord::is_deleted) && !exclude.contains(id)
            }));
        }
        let forced = force
            .iter()
            .filter_map(|id| b.working.get(id))
            .map(|r| r.to_write(now).to_pulled())
            .collect();
        Ok(Plan {
            head: b.next,
            wrote: b.next != b.base,
            upserts,
            logs: self.logs,
            acks: self.acks,
            page: PageQuery {
                after: b.since,
                upto: b.next,
                limit: self.input.limit,
                live_only,
                max_bytes: self.input.max_page_bytes,
            },
            exclude,
            forced,
        })
    }
}

/// What a push does, for the backend to execute in its transaction: save
/// `upserts` and `logs`, set the user's counter to `head` if `wrote`, then
/// read `page` and hand it to [`Plan::respond`].
#[derive(Debug)]
pub struct Plan {
    pub head: i64,
    pub wrote: bool,
    pub upserts: Vec<RecordWrite>,
    pub logs: Vec<LogRow>,
    pub acks: Vec<Ack>,
    pub page: PageQuery,
    /// Records this device wrote exactly as it sent them: not echoed.
    exclude: HashSet<RecordId>,
    /// Records the device must receive even if the page does not hold them.
    forced: Vec<PulledRecord>,
}

impl Plan {
    /// The answer, from the page read after the writes.
    pub fn respond(self, page: Page) -> SyncOutput {
        let mut records = page.records;
        let in_page: HashSet<RecordId> = records.iter().map(|r| r.id).collect();
        records.retain(|r| !self.exclude.contains(&r.id));
        records.extend(self.forced.into_iter().filter(|f| !in_page.contains(&f.id)));
        SyncOutput {
            acks: self.acks,
            records,
            cursor: page.cursor,
            has_more: page.has_more,
            head: self.head,
            wrote: self.wrote,
        }
    }
}
