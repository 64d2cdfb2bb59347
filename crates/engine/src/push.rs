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

mod plan;
mod types;

pub use plan::Plan;
pub use types::{Again, Loaded, LogRow, Need, PushInput};

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;
use tidesync_protocol::entity::Kind;
use tidesync_protocol::merge::clamp_timestamp;
use tidesync_protocol::sync::{Ack, ChangeInput};
use tidesync_protocol::{RecordId, Role, ScopeId, UserId};

use crate::apply::Batch;
use crate::page::{self, needs_first_since};
use crate::record::PulledRecord;
use crate::view::View;
use crate::EngineError;

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
    /// Records earlier steps of this push deleted, kept for a from-scratch
    /// cursor (whose page has no tombstones) until they are asked for.
    stepped: Vec<RecordId>,
    /// Those tombstones, as read back, with their scope.
    sent: Vec<(ScopeId, PulledRecord)>,
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
            stepped: Vec::new(),
            sent: Vec::new(),
        }
    }

    /// The next run of a push whose last run ended in a step.
    pub fn resume(user: UserId, again: Again) -> Push {
        Push {
            stepped: again.stepped,
            ..Push::new(user, again.input)
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
                batch.step_limit = self.input.cascade_step;
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
            (Stage::Apply, Loaded::Sent(records)) => {
                let personal = self.batch.as_ref().expect("applying").personal();
                self.sent = records
                    .into_iter()
                    .map(|(scope, r)| (scope, r.as_read_in(scope != personal)))
                    .collect();
                Ok(())
            }
            (Stage::Apply, Loaded::Descendants(records)) => {
                self.batch
                    .as_mut()
                    .expect("applying")
                    .add_descendants(records);
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
            // A failure ends the push; a step of a cascade ends this run.
            if batch.failed.is_some() || batch.step.is_some() {
                return None;
            }
            if let Some(need) = batch.cascade_step() {
                return Some(need);
            }
            if batch.cascading() {
                continue;
            }
            let Some(change) = self.input.changes.get(self.pos).cloned() else {
                return self.load_stepped();
            };
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

    /// After the last change: the tombstones earlier steps wrote, if the
    /// device must be sent them. Read as a pull reads them (no merge state
    /// to decode), since they are only sent.
    fn load_stepped(&mut self) -> Option<Need> {
        if self.stepped.is_empty() {
            return None;
        }
        let mut ids = std::mem::take(&mut self.stepped);
        ids.sort_unstable();
        ids.dedup();
        Some(Need::Sent {
            ids,
            scopes: self.known.clone(),
        })
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
}
