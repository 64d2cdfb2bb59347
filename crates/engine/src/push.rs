//! A push as a state machine: it asks for the rows it needs ([`Need`]), is
//! fed them ([`Loaded`]), and ends in a [`Plan`] for the backend to execute
//! in the same transaction.
//!
//! ```text
//! let mut push = Push::new(user, input, limits);
//! loop {
//!     while let Some(need) = push.need() {  // view, locate, lock + batch, cascade children
//!         push.feed(backend.load(need)?)?;
//!     }
//!     let plan = push.finish()?;            // rows to write, counters, acks, the page to read
//!     backend.write(&plan)?;
//!     match plan.again { None => break respond, Some(again) => commit; push = Push::resume(user, again) }
//! }
//! let output = plan.respond(backend.page(plan.page.clone())?);   // no echo, forced records
//! ```
//!
//! A push runs in one transaction unless it outgrows the backend's
//! [`PushLimits`]: then each transaction ends in a step that commits what
//! it did, and the push goes on in the next (see [`Plan::again`]).

mod plan;
pub(crate) mod types;

pub use plan::Plan;
pub(crate) use types::Carried;
pub use types::{Again, Loaded, LogRow, Need, PushInput, PushLimits, StepSize};

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::Value;
use tidesync_protocol::merge::clamp_timestamp;
use tidesync_protocol::sync::{Ack, Change, ChangeInput};
use tidesync_protocol::{RecordId, Role, ScopeId, UserId};

use crate::apply::Batch;
use crate::page::{self, needs_first_since};
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
    limits: PushLimits,
    /// What earlier transactions of this push answered.
    carried: Carried,
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
    /// The ids of the last load asked for, in order (its answer says how
    /// many of them it looked up).
    asked: Vec<RecordId>,
    /// This transaction ends before change `pos`: its loads reached
    /// [`PushLimits::run_bytes`].
    run_ends: bool,
}

/// Every record id a change targets or refers to, target first.
fn change_ids(c: &Change) -> impl Iterator<Item = RecordId> + '_ {
    let refs = c
        .entity
        .references()
        .iter()
        .filter_map(|r| match c.data.fields.get(r.field) {
            Some(Value::String(s)) => s.parse::<RecordId>().ok(),
            _ => None,
        });
    std::iter::once(c.id).chain(refs)
}

/// The ids `changes[from..]` target or refer to, after `first`, in the
/// order they need them, each once, but for those in `skip`.
fn ids_of(
    changes: &[ChangeInput],
    from: usize,
    skip: &HashSet<RecordId>,
    first: Vec<RecordId>,
) -> Vec<RecordId> {
    let mut seen: HashSet<RecordId> = first.iter().copied().collect();
    let rest = changes[from.min(changes.len())..]
        .iter()
        .filter_map(|c| match c {
            ChangeInput::Valid(c) => Some(c),
            ChangeInput::Invalid { .. } => None,
        })
        .flat_map(change_ids)
        .filter(|id| !skip.contains(id) && seen.insert(*id));
    first.into_iter().chain(rest).collect()
}

impl Push {
    pub fn new(user: UserId, input: PushInput, limits: PushLimits) -> Push {
        Push {
            user,
            acks: Vec::with_capacity(input.changes.len()),
            logs: Vec::with_capacity(input.changes.len()),
            input,
            limits,
            carried: Carried::default(),
            stage: Stage::View,
            view: None,
            located: HashMap::new(),
            batch: None,
            answered: HashMap::new(),
            pos: 0,
            replayed: Vec::new(),
            known: Vec::new(),
            asked: Vec::new(),
            run_ends: false,
        }
    }

    /// The next transaction of a push whose last one ended in a step.
    pub fn resume(user: UserId, again: Again) -> Push {
        Push {
            carried: again.carried,
            ..Push::new(user, again.input, again.limits)
        }
    }

    /// The device the push comes from.
    pub fn device_id(&self) -> &str {
        &self.input.device_id
    }

    /// What to load next; `None` when the plan is ready ([`Push::finish`]).
    pub fn need(&mut self) -> Option<Need> {
        match self.stage {
            Stage::View => Some(Need::View),
            Stage::Locate => Some(Need::Locate {
                ids: self.ids_from(0, &HashSet::new()),
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
                    looked_up,
                },
            ) => {
                for (op, json) in acks {
                    let ack: Ack = serde_json::from_str(&json)
                        .map_err(|e| EngineError::Corrupt(format!("stored ack of {op:?}: {e}")))?;
                    self.answered.insert(op, ack);
                }
                let mut view = self.view.take().expect("view first");
                let mut base = std::collections::BTreeMap::new();
                for (scope, head, role) in locked {
                    view.locked(scope, head, role);
                    base.insert(scope, head);
                }
                self.known = view.known();
                // The pull part of the push starts where the cursor says, in
                // every scope the user reads, against the counters under lock.
                let plan = page::plan(&self.input.cursor, &view, &first_since, 0, 0)?;
                let mut batch =
                    Batch::new(self.user, view, base, plan.page.ranges, plan.removed_spaces);
                batch.limits = self.limits;
                batch.earlier = std::mem::take(&mut self.carried.as_sent);
                self.take_loaded(&mut batch, records, looked_up)?;
                self.batch = Some(batch);
                self.stage = Stage::Apply;
                Ok(())
            }
            (Stage::Apply, Loaded::Records { records, looked_up }) => {
                let mut batch = self.batch.take().expect("applying");
                let fed = self.take_loaded(&mut batch, records, looked_up);
                self.batch = Some(batch);
                fed
            }
            (Stage::Apply, Loaded::Children(records)) => {
                self.batch.as_mut().expect("applying").add_children(records);
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

    /// Records loaded for the ids last asked for, of which `looked_up` (a
    /// prefix) were looked up: the others are asked again when needed.
    fn take_loaded(
        &mut self,
        batch: &mut Batch,
        records: Vec<crate::StoredRecord>,
        looked_up: usize,
    ) -> Result<(), EngineError> {
        let asked = std::mem::take(&mut self.asked);
        if looked_up > asked.len() || (looked_up == 0 && !asked.is_empty()) {
            return Err(EngineError::Protocol("looked up a wrong number of ids"));
        }
        batch.looked_up(&asked[..looked_up]);
        for r in records {
            batch.add_loaded(r);
        }
        Ok(())
    }

    /// The ids the changes from `from` on target or refer to, in the order
    /// they need them, each once, but for those in `skip`.
    fn ids_from(&self, from: usize, skip: &HashSet<RecordId>) -> Vec<RecordId> {
        ids_of(&self.input.changes, from, skip, vec![])
    }

    /// What is left of this transaction's load budget (the first record of
    /// a load is always read, so a transaction always makes progress).
    fn load_budget(&self, loaded: usize) -> Option<usize> {
        self.limits
            .run_bytes
            .map(|b| b.saturating_sub(loaded).max(1))
    }

    fn batch_need(&mut self) -> Need {
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
        let scopes = view.known();
        let ids = self.ids_from(0, &HashSet::new());
        self.asked = ids.clone();
        Need::Batch {
            lock: lock.into_iter().collect(),
            operation_ids: ops,
            ids,
            scopes,
            first_since: needs_first_since(&self.input.cursor),
            max_bytes: self.load_budget(0),
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
            let change = self.input.changes.get(self.pos).cloned()?;
            if let ChangeInput::Valid(c) = &change {
                let missing = batch.missing_for(c, change_ids(c));
                if !missing.is_empty() {
                    let loaded = batch.loaded_bytes;
                    if self.pos > 0 && self.limits.run_bytes.is_some_and(|b| loaded >= b) {
                        // Full: commit what this transaction did, go on anew.
                        self.run_ends = true;
                        return None;
                    }
                    // What this change misses first, then what the next ones
                    // need, as far as the budget goes.
                    let ids = ids_of(
                        &self.input.changes,
                        self.pos + 1,
                        batch.looked_up_ids(),
                        missing,
                    );
                    self.asked = ids.clone();
                    return Some(Need::Records {
                        ids,
                        scopes: self.known.clone(),
                        max_bytes: self.load_budget(loaded),
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
}
