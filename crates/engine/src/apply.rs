//! Applying one valid change to the working set: who may write where, the
//! merge, and (in `cascade`) the cascades of deletes.

mod cascade;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde_json::Value;
use tidesync_protocol::merge::{self, MergeError, OpKind, Version};
use tidesync_protocol::sync::{Ack, Change, OpError, OpErrorCode};
use tidesync_protocol::time::Millis;
use tidesync_protocol::{RecordId, Role, ScopeId, UserId};

use crate::page::ScopeRange;
use crate::push::types::PushLimits;
use crate::record::StoredRecord;
use crate::view::View;
use crate::working::Working;
use crate::EngineError;
use cascade::Cascade;
pub use cascade::Step;

/// The state of one push while its changes are applied.
pub struct Batch {
    user: UserId,
    /// Roles as read under the locks.
    view: View,
    /// Per readable scope: where the device's cursor is, and the head.
    ranges: Vec<ScopeRange>,
    removed_spaces: Vec<RecordId>,
    /// Per locked scope: the counter before this push, and the last version
    /// handed out.
    base: BTreeMap<ScopeId, i64>,
    next: BTreeMap<ScopeId, i64>,
    pub working: Working,
    /// Versions before this push, of the records that existed.
    prior: HashMap<RecordId, i64>,
    /// Ids already asked for (found or not): never asked again.
    looked_up: HashSet<RecordId>,
    /// Records to save, in the order their versions were first assigned.
    pub dirty: Vec<RecordId>,
    dirty_set: HashSet<RecordId>,
    /// Per record: every write by this push applied exactly as sent, to a
    /// record the device had seen (no echo).
    pub as_sent: HashMap<RecordId, bool>,
    pub conflicted: BTreeSet<RecordId>,
    cascade: Option<Cascade>,
    /// How much one transaction may do (see [`crate::PushLimits`]).
    pub limits: PushLimits,
    /// Bytes (as stored) of the records loaded so far.
    pub loaded_bytes: usize,
    /// Records earlier transactions of this push wrote, and whether exactly
    /// as the device sent them (their [`Batch::as_sent`]).
    pub earlier: HashMap<RecordId, bool>,
    /// A step of a large cascade, found too big to run whole: this run ends
    /// by committing it alone.
    pub step: Option<Step>,
    /// A failure that ends the push (a scope that should have been locked).
    pub failed: Option<EngineError>,
}

fn failure(c: &Change, code: OpErrorCode, message: impl Into<String>) -> Ack {
    Ack::rejected(
        Some(c.operation_id.clone()),
        Some(c.id.to_string()),
        OpError::new(code, message),
    )
}

fn forbidden(c: &Change, role: Role) -> Ack {
    let why = if role == Role::Removed {
        "you are no longer a member of this space"
    } else {
        "viewers cannot change this space"
    };
    failure(c, OpErrorCode::Forbidden, why)
}

impl Batch {
    /// `view` holds the roles and counters read under the locks; `base`
    /// the counters of the locked scopes.
    pub fn new(
        user: UserId,
        view: View,
        base: BTreeMap<ScopeId, i64>,
        ranges: Vec<ScopeRange>,
        removed_spaces: Vec<RecordId>,
    ) -> Batch {
        Batch {
            user,
            view,
            ranges,
            removed_spaces,
            next: base.clone(),
            base,
            working: Working::default(),
            prior: HashMap::new(),
            looked_up: HashSet::new(),
            dirty: Vec::new(),
            dirty_set: HashSet::new(),
            as_sent: HashMap::new(),
            conflicted: BTreeSet::new(),
            cascade: None,
            limits: PushLimits::default(),
            loaded_bytes: 0,
            earlier: HashMap::new(),
            step: None,
            failed: None,
        }
    }

    pub fn personal(&self) -> ScopeId {
        self.view.personal
    }

    pub fn get(&self, id: &RecordId) -> Option<&StoredRecord> {
        self.working.get(id)
    }

    /// Held, and in a scope the user reads.
    pub fn visible(&self, id: &RecordId) -> bool {
        self.working
            .get(id)
            .is_some_and(|r| self.role(r.scope).can_read())
    }

    fn role(&self, scope: ScopeId) -> Role {
        self.view.role(scope).unwrap_or(Role::Removed)
    }

    fn since(&self, scope: ScopeId) -> i64 {
        self.ranges
            .iter()
            .find(|r| r.scope == scope)
            .map_or(0, |r| r.after)
    }

    pub fn looked_up(&mut self, ids: &[RecordId]) {
        self.looked_up.extend(ids.iter().copied());
    }

    /// Ids asked for already (found or not).
    pub fn looked_up_ids(&self) -> &HashSet<RecordId> {
        &self.looked_up
    }

    pub fn add_loaded(&mut self, rec: StoredRecord) {
        let (id, version) = (rec.id, rec.version);
        self.loaded_bytes += rec.bytes;
        self.looked_up.insert(id);
        if self.working.add_loaded(rec) {
            self.prior.insert(id, version);
        }
    }

    /// Stores a new state of a record under the next version of its scope.
    fn store(&mut self, mut rec: StoredRecord) {
        let Some(next) = self.next.get_mut(&rec.scope) else {
            // Its scope changed after the push located it (a space was
            // shared meanwhile): start over.
            self.failed.get_or_insert(EngineError::Retry);
            return;
        };
        *next += 1;
        rec.version = *next;
        if self.dirty_set.insert(rec.id) {
            self.dirty.push(rec.id);
        }
        self.working.put(rec);
    }

    /// Notes a write for the no-echo rule: `clean` when it took effect
    /// exactly as sent.
    fn mark(&mut self, id: RecordId, scope: ScopeId, clean: bool) {
        let since = self.since(scope);
        // A version after the cursor that an earlier transaction of this
        // push wrote exactly as sent is known to the device too.
        let prior_known =
            self.prior.get(&id).is_none_or(|p| *p <= since) || self.earlier.get(&id) == Some(&true);
        let e = self.as_sent.entry(id).or_insert(true);
        *e &= clean && prior_known;
    }

    /// The timestamp a write takes: a create or update of a record the
    /// device had received as it stands (its version is within the device's
    /// cursor, or this push made it) comes after everything in it, whatever
    /// the device's clock says, so it takes a timestamp after the record's
    /// newest one (true in the second place when it was moved). A write to
    /// a record changed since the cursor is concurrent with that change:
    /// per-field last-writer-wins by its own timestamp decides.
    fn causal(&self, c: &Change, ts: Millis) -> (Millis, bool) {
        if c.op == OpKind::Delete {
            return (ts, false);
        }
        let Some(rec) = self.working.get(&c.id) else {
            return (ts, false);
        };
        let since = self.since(rec.scope);
        let seen = self.prior.get(&c.id).is_none_or(|p| *p <= since)
            || self.earlier.get(&c.id) == Some(&true);
        let newest = rec.state.last().ts;
        if seen && since > 0 && ts <= newest && !rec.is_deleted() {
            (newest.saturating_add(1), true)
        } else {
            (ts, false)
        }
    }

    /// Records the change needs that were never asked for: those it
    /// targets or names (`ids`; a load may have stopped before them), then
    /// the parents a record keeps when only some of its references change
    /// (an item's category when only its `spaceId` does: the references
    /// must stay in one sharing root, [`Batch::check_one_root`]).
    pub fn missing_for(&self, c: &Change, ids: impl Iterator<Item = RecordId>) -> Vec<RecordId> {
        let mut missing: Vec<RecordId> = ids.filter(|id| !self.looked_up.contains(id)).collect();
        let refs = c.entity.references();
        if !missing.is_empty() || !refs.iter().any(|r| c.data.fields.contains_key(r.field)) {
            missing.dedup();
            return missing;
        }
        let Some(held) = self.working.get(&c.id) else {
            return missing;
        };
        refs.iter()
            .filter(|r| !r.target.is_shareable() && !c.data.fields.contains_key(r.field))
            .filter_map(|r| held.reference(r.field))
            .filter(|id| !self.looked_up.contains(id))
            .collect()
    }

    fn ref_in_change(c: &Change, field: &str) -> Option<Option<RecordId>> {
        c.data
            .fields
            .get(field)
            .map(|v| v.as_str().and_then(|s| s.parse().ok()))
    }

    /// Applies one valid change at timestamp `ts` (clamped already).
    pub fn apply(&mut self, c: &Change, ts: Millis) -> Ack {
        let (ts, after_seen) = self.causal(c, ts);
        let v = Version {
            ts,
            device: c.device_id.clone(),
            op: c.operation_id.clone(),
        };
        let personal = self.view.personal;
        let existing = self.working.get(&c.id).map(|r| (r.scope, r.entity));
        if let Some((scope, entity)) = existing {
            let role = self.role(scope);
            if !role.can_write() {
                return forbidden(c, role);
            }
            if entity != c.entity {
                return if c.op == OpKind::Create {
                    failure(
                        c,
                        OpErrorCode::ValidationFailed,
                        format!("id is already used by a {}", entity.as_str()),
                    )
                } else {
                    failure(
                        c,
                        OpErrorCode::NotFound,
                        format!("no {} with this id", c.entity.as_str()),
                    )
                };
            }
            if c.op == OpKind::Delete
                && entity.is_shareable()
                && scope != personal
                && role != Role::Owner
            {
                return failure(
                    c,
                    OpErrorCode::Forbidden,
                    "only the owner can delete a shared space",
                );
            }
        }

        // References must name records the user can see, of the right type,
        // in a scope the user may write to. The record lands in their scope.
        let mut parent_deleted = false;
        let mut dest: Option<ScopeId> = None;
        for r in c.entity.references() {
            let target = r.target;
            let Some(Value::String(s)) = c.data.fields.get(r.field) else {
                continue;
            };
            let parent = s
                .parse::<RecordId>()
                .ok()
                .and_then(|id| self.working.get(&id));
            let p = match parent {
                Some(p) if p.entity == target && self.role(p.scope).can_read() => p,
                Some(p) if p.entity == target => return forbidden(c, self.role(p.scope)),
                _ => {
                    return failure(
                        c,
                        OpErrorCode::UnknownReference,
                        format!("{}: no {} with this id", r.field, target.as_str()),
                    )
                }
            };
            if !self.role(p.scope).can_write() {
                return forbidden(c, self.role(p.scope));
            }
            // A child written under a deleted parent is deleted too; a
            // reference that is no parent only needs its record to exist.
            parent_deleted |= r.parent && p.is_deleted();
            // All references lie in one scope (check_one_root); the first
            // (an item's spaceId) decides.
            dest.get_or_insert(p.scope);
        }
        if let Some(ack) = self.check_one_root(c) {
            return ack;
        }
        let scope = match (existing, dest) {
            (Some((scope, _)), Some(d)) if d != scope => {
                return failure(
                    c,
                    OpErrorCode::ValidationFailed,
                    "cannot move a record between spaces that are shared differently; \
                     create it anew in the other space",
                )
            }
            (Some((scope, _)), _) => scope,
            (None, Some(d)) => d,
            (None, None) => personal,
        };

        let state = self.working.get(&c.id).map(|r| &r.state);
        let keep = |f: &str| c.entity.is_reference(f);
        let mut out = match merge::apply(state, c.op, &c.data.fields, &v, &keep) {
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
            out.state = merge::delete(&out.state, &v, &keep).state;
            out.changed = true;
            out.conflict = true;
        }
        if out.changed {
            let created_by = self.working.get(&c.id).map_or(self.user, |r| r.created_by);
            self.store(StoredRecord {
                scope,
                id: c.id,
                entity: c.entity,
                version: 0,
                state: out.state,
                created_by,
                bytes: 0,
            });
        }
        // A delete of a deleted record keeps the earlier tombstone, which the
        // device (having written its own) must receive, like a conflict; so
        // must a write whose timestamp was moved after what it overwrote.
        let differs = out.conflict || out.already_deleted || after_seen;
        self.mark(c.id, scope, !differs);
        if differs {
            self.conflicted.insert(c.id);
        }
        if c.op == OpKind::Delete && out.changed && c.entity.has_children() {
            self.cascade = Some(Cascade {
                scope,
                version: v,
                frontier: vec![c.id],
                probed: self.limits.cascade_step.is_none(),
            });
        }
        Ack {
            duplicate: out.already_deleted,
            conflict: out.conflict,
            ignored_fields: c.data.ignored.clone(),
            coerced_fields: c.data.coerced.clone(),
            ..Ack::applied(&c.operation_id, c.id)
        }
    }

    /// A record's references must all lie in one sharing root (checked
    /// when a change sends one, on the references after it): each leads to
    /// a root, the referenced record itself for a `shareable` collection,
    /// else the root that record names; these must agree (an item's
    /// category must belong to the item's space).
    fn check_one_root(&self, c: &Change) -> Option<Ack> {
        let refs = c.entity.references();
        if !refs.iter().any(|r| c.data.fields.contains_key(r.field)) {
            return None;
        }
        let held = self.working.get(&c.id);
        let mut first: Option<(&str, &str, Option<RecordId>)> = None;
        for r in refs {
            let sent = Self::ref_in_change(c, r.field);
            let Some(id) = sent.unwrap_or_else(|| held.and_then(|h| h.reference(r.field))) else {
                continue;
            };
            let root = if r.target.is_shareable() {
                Some(id)
            } else {
                // Not held: asked for and absent, so the record is gone;
                // nothing to compare.
                match self.working.get(&id) {
                    Some(target) => target.root_id(),
                    None => continue,
                }
            };
            let Some((first_field, root_name, first_root)) = first else {
                let root_name = if r.target.is_shareable() {
                    r.target.as_str()
                } else {
                    "sharing root"
                };
                first = Some((r.field, root_name, root));
                continue;
            };
            if root != first_root {
                return Some(failure(
                    c,
                    OpErrorCode::ValidationFailed,
                    format!(
                        "{}: the {} belongs to another {root_name} than {first_field}",
                        r.field,
                        r.target.as_str()
                    ),
                ));
            }
        }
        None
    }

    /// The scopes written, with their new counters.
    pub fn written_heads(&self) -> BTreeMap<ScopeId, i64> {
        self.next
            .iter()
            .filter(|(s, n)| self.base.get(s) != Some(n))
            .map(|(s, n)| (*s, *n))
            .collect()
    }

    /// The page ranges, their tops raised to what this push wrote, and the
    /// removals the device is owed.
    pub fn ranges_after_writes(&self) -> (Vec<ScopeRange>, Vec<RecordId>) {
        let ranges = self
            .ranges
            .iter()
            .map(|r| ScopeRange {
                upto: self.next.get(&r.scope).copied().unwrap_or(r.upto),
                ..*r
            })
            .collect();
        (ranges, self.removed_spaces.clone())
    }
}
