//! Applying one valid change to the working set, and the cascades of deletes.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::Value;
use tidesync_protocol::entity::{EntityType, Kind};
use tidesync_protocol::merge::{self, MergeError, OpKind, Version};
use tidesync_protocol::sync::{Ack, Change, OpError, OpErrorCode};
use tidesync_protocol::time::Millis;
use tidesync_protocol::RecordId;

use crate::push::Need;
use crate::record::StoredRecord;
use crate::working::Working;

/// The state of one push while its changes are applied.
pub struct Batch {
    /// The user's counter before this push.
    pub base: i64,
    /// The device's cursor, resolved.
    pub since: i64,
    /// The last version handed out.
    pub next: i64,
    pub working: Working,
    /// Versions before this push, of the records that existed.
    prior: HashMap<RecordId, i64>,
    /// Records to save, in the order their versions were first assigned.
    pub dirty: Vec<RecordId>,
    dirty_set: HashSet<RecordId>,
    /// Per record: every write by this push applied exactly as sent, to a
    /// record the device had seen (no echo).
    pub as_sent: HashMap<RecordId, bool>,
    pub conflicted: BTreeSet<RecordId>,
    cascade: Option<Cascade>,
}

/// A delete spreading to the children of its record, one level at a time.
struct Cascade {
    version: Version,
    /// Parents whose live children are deleted next.
    frontier: Vec<RecordId>,
}

fn failure(c: &Change, code: OpErrorCode, message: String) -> Ack {
    Ack::rejected(
        Some(c.operation_id.clone()),
        Some(c.id.to_string()),
        OpError::new(code, message),
    )
}

impl Batch {
    pub fn new(base: i64) -> Batch {
        Batch {
            base,
            since: 0,
            next: base,
            working: Working::default(),
            prior: HashMap::new(),
            dirty: Vec::new(),
            dirty_set: HashSet::new(),
            as_sent: HashMap::new(),
            conflicted: BTreeSet::new(),
            cascade: None,
        }
    }

    pub fn add_loaded(&mut self, rec: StoredRecord) {
        let (id, version) = (rec.id, rec.version);
        if self.working.add_loaded(rec) {
            self.prior.insert(id, version);
        }
    }

    /// Stores a new state of a record under the next version.
    fn store(&mut self, mut rec: StoredRecord) {
        self.next += 1;
        rec.version = self.next;
        if self.dirty_set.insert(rec.id) {
            self.dirty.push(rec.id);
        }
        self.working.put(rec);
    }

    /// Notes a write for the no-echo rule: `clean` when it took effect
    /// exactly as sent.
    fn mark(&mut self, id: RecordId, clean: bool) {
        let prior_known = self.prior.get(&id).is_none_or(|p| *p <= self.since);
        let e = self.as_sent.entry(id).or_insert(true);
        *e &= clean && prior_known;
    }

    /// Applies one valid change at timestamp `ts` (clamped already).
    pub fn apply(&mut self, c: &Change, ts: Millis) -> Ack {
        let v = Version {
            ts,
            device: c.device_id.clone(),
            op: c.operation_id.clone(),
        };
        let existing = match self.working.get(&c.id) {
            Some(r) if r.entity != c.entity => {
                return if c.op == OpKind::Create {
                    failure(
                        c,
                        OpErrorCode::ValidationFailed,
                        format!("id is already used by a {}", r.entity.as_str()),
                    )
                } else {
                    failure(
                        c,
                        OpErrorCode::NotFound,
                        format!("no {} with this id", c.entity.as_str()),
                    )
                };
            }
            other => other,
        };

        // References must name the user's own records of the right type.
        let mut parent_deleted = false;
        for spec in c.entity.fields() {
            let Kind::Ref(target) = spec.kind else {
                continue;
            };
            let Some(Value::String(s)) = c.data.fields.get(spec.name) else {
                continue;
            };
            let parent = s
                .parse::<RecordId>()
                .ok()
                .and_then(|id| self.working.get(&id));
            match parent {
                Some(p) if p.entity == target => parent_deleted |= p.is_deleted(),
                _ => {
                    return failure(
                        c,
                        OpErrorCode::UnknownReference,
                        format!("{}: no {} with this id", spec.name, target.as_str()),
                    )
                }
            }
        }

        let state = existing.map(|r| &r.state);
        let mut out = match merge::apply(state, c.op, &c.data.fields, &v) {
            Ok(out) => out,
            Err(MergeError::NotFound) => {
                return failure(
                    c,
                    OpErrorCode::NotFound,
                    format!("no {} with this id", c.entity.as_str()),
                )
            }
        };
        // A child written under a deleted parent is stored deleted.
        if parent_deleted && out.state.deleted.is_none() {
            out.state = merge::delete(&out.state, &v).state;
            out.changed = true;
            out.conflict = true;
        }
        if out.changed {
            self.store(StoredRecord {
                id: c.id,
                entity: c.entity,
                version: 0,
                state: out.state,
            });
        }
        // A delete of a deleted record keeps the earlier tombstone, which the
        // device (having written its own) must receive, like a conflict.
        let differs = out.conflict || out.already_deleted;
        self.mark(c.id, !differs);
        if differs {
            self.conflicted.insert(c.id);
        }
        if c.op == OpKind::Delete && out.changed && c.entity != EntityType::Item {
            self.cascade = Some(Cascade {
                version: v,
                frontier: vec![c.id],
            });
        }
        Ack {
            duplicate: out.already_deleted,
            conflict: out.conflict,
            ignored_fields: c.data.ignored.clone(),
            ..Ack::applied(&c.operation_id, c.id)
        }
    }

    pub fn cascading(&self) -> bool {
        self.cascade.is_some()
    }

    /// Advances the cascade in progress by one level. Returns the children
    /// to load first, if the frontier's stored children are not loaded yet.
    pub fn cascade_step(&mut self) -> Option<Need> {
        let cascade = self.cascade.as_ref()?;
        let (mut spaces, mut categories) = (Vec::new(), Vec::new());
        for p in &cascade.frontier {
            if self.working.children_loaded(p) {
                continue;
            }
            match self.working.get(p).map(|r| r.entity) {
                Some(EntityType::Space) => spaces.push(*p),
                Some(EntityType::Category) => categories.push(*p),
                _ => {}
            }
        }
        if !spaces.is_empty() || !categories.is_empty() {
            return Some(Need::Children {
                spaces,
                categories,
                loaded_spaces: self.working.loaded_spaces().to_vec(),
            });
        }
        let Cascade { version, frontier } = self.cascade.take().expect("checked above");
        let mut next = Vec::new();
        for parent in frontier {
            // The index holds the working truth: records moved away are not
            // listed, records moved here earlier in this push are.
            for id in self.working.children_of(&parent) {
                let Some(rec) = self.working.get(&id) else {
                    continue;
                };
                if rec.is_deleted() {
                    continue;
                }
                let mut rec = rec.clone();
                rec.state = merge::delete(&rec.state, &version).state;
                if rec.entity == EntityType::Category {
                    next.push(id);
                }
                self.store(rec);
                self.mark(id, false);
            }
        }
        if !next.is_empty() {
            self.cascade = Some(Cascade {
                version,
                frontier: next,
            });
        }
        None
    }

    /// Children loaded for the frontier of the cascade in progress.
    pub fn add_children(&mut self, records: Vec<StoredRecord>) {
        for r in records {
            self.add_loaded(r);
        }
        if let Some(c) = &self.cascade {
            for p in c.frontier.clone() {
                let is_space = self
                    .working
                    .get(&p)
                    .is_some_and(|r| r.entity == EntityType::Space);
                self.working.mark_children_loaded(p, is_space);
            }
        }
    }
}
