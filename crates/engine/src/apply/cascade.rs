//! The cascade of a delete: a deleted record deletes its live children in
//! its scope (every record whose `x-parent` reference leads to it: a
//! space's categories and items, a category's items), level by level,
//! loading each level first.
//!
//! With a step limit, the cascade first asks how many live descendants
//! there are (up to the limit and one). More than the limit, and this run
//! of the push ends in a [`Step`]: up to the limit of them, leaves first,
//! deleted in a transaction of their own; then the push runs again, until
//! what is left fits in one transaction with the delete itself. Each step
//! only deletes what the delete would delete, so the end state is the one
//! the atomic cascade reaches; what differs is that a pull between steps
//! sees part of the children deleted before their parent.

use std::collections::{BTreeMap, HashMap, HashSet};

use tidesync_protocol::entity::{EntityType, Model};
use tidesync_protocol::merge::{self, Version};
use tidesync_protocol::time::Millis;
use tidesync_protocol::{RecordId, ScopeId};

use super::Batch;
use crate::push::types::Need;
use crate::record::{RecordWrite, StoredRecord};
use crate::EngineError;

/// A delete spreading to the children of its record, one level at a time.
pub(super) struct Cascade {
    pub(super) scope: ScopeId,
    pub(super) version: Version,
    /// Parents whose live children are deleted next.
    pub(super) frontier: Vec<RecordId>,
    /// Whether its size is known to fit in one transaction (or need not).
    pub(super) probed: bool,
}

/// A part of a large cascade, committed alone before the push runs again.
#[derive(Debug)]
pub struct Step {
    scope: ScopeId,
    version: Version,
    /// Descendants to delete, leaves first, as stored.
    records: Vec<StoredRecord>,
}

impl Batch {
    pub fn cascading(&self) -> bool {
        self.cascade.is_some()
    }

    /// Advances the cascade in progress by one level. Returns the children
    /// to load first, if the frontier's stored children are not loaded yet.
    pub fn cascade_step(&mut self) -> Option<Need> {
        let cascade = self.cascade.as_ref()?;
        if !cascade.probed {
            let root = cascade.frontier[0];
            let model = self
                .working
                .get(&root)
                .map_or_else(Model::builtin, |r| r.entity.model());
            // Children before their parents: the reverse of parents first.
            let kinds: Vec<EntityType> = model
                .collections()
                .iter()
                .rev()
                .filter(|e| !e.is_shareable())
                .copied()
                .collect();
            let inner = kinds.iter().filter(|e| e.has_children()).copied().collect();
            let records = self.limits.cascade_step.map_or(usize::MAX, |s| s.records);
            return Some(Need::Descendants {
                scope: cascade.scope,
                root,
                kinds,
                inner,
                limit: records.saturating_add(1),
            });
        }
        let (mut roots, mut parents) = (Vec::new(), Vec::new());
        for p in &cascade.frontier {
            if self.working.children_loaded(p) {
                continue;
            }
            match self.working.get(p).map(|r| r.entity) {
                Some(e) if e.is_shareable() => roots.push(*p),
                Some(e) if e.has_children() => parents.push(*p),
                _ => {}
            }
        }
        if !roots.is_empty() || !parents.is_empty() {
            return Some(Need::Children {
                scope: cascade.scope,
                roots,
                parents,
                loaded_roots: self.working.loaded_roots().to_vec(),
            });
        }
        let Cascade {
            scope,
            version,
            frontier,
            ..
        } = self.cascade.take().expect("checked above");
        let mut next = Vec::new();
        for parent in frontier {
            // The index holds the working truth: records moved away are not
            // listed, records moved here earlier in this push are.
            for id in self.working.children_of(&parent) {
                let Some(rec) = self.working.get(&id) else {
                    continue;
                };
                if rec.is_deleted() || rec.scope != scope {
                    continue;
                }
                let mut rec = rec.clone();
                let entity = rec.entity;
                rec.state = merge::delete(&rec.state, &version, &|f| entity.is_reference(f)).state;
                if rec.entity.has_children() {
                    next.push(id);
                }
                self.store(rec);
                self.mark(id, scope, false);
            }
        }
        if !next.is_empty() {
            self.cascade = Some(Cascade {
                scope,
                version,
                frontier: next,
                probed: true,
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
                let is_root = self
                    .working
                    .get(&p)
                    .is_some_and(|r| r.entity.is_shareable());
                self.working.mark_children_loaded(p, is_root);
            }
        }
    }

    /// The live descendants of the cascade's root, leaves first, up to the
    /// step's count and one. Within the step's count and bytes, the cascade
    /// runs whole; beyond either, the first that fit become this run's
    /// step (at least one), but for the records this push changed before
    /// the cascade and the categories those hang under: they are left to
    /// the run that ends the cascade, which sees this push's changes to
    /// them. Items all come before
    /// categories, so a category in the step has every live item under it
    /// in the step too: no step leaves a live item under a deleted category.
    pub fn add_descendants(&mut self, found: Vec<StoredRecord>) {
        let Some(c) = self.cascade.as_mut() else {
            return;
        };
        c.probed = true;
        let Some(size) = self.limits.cascade_step else {
            return;
        };
        let bytes: usize = found.iter().map(|r| r.bytes).sum();
        if found.len() <= size.records && bytes <= size.bytes {
            return;
        }
        // The longest prefix within both bounds, and at least one record.
        let mut total = 0;
        let limit = found
            .iter()
            .take(size.records)
            .take_while(|r| {
                total += r.bytes;
                total <= size.bytes
            })
            .count()
            .max(1);
        let changed = &self.dirty_set;
        // Their parents up the chain (a category; a note and its notebook
        // never, a root is not among the descendants).
        let parent_of: HashMap<RecordId, Option<RecordId>> =
            found.iter().map(|r| (r.id, r.parent_id())).collect();
        let mut blocked: HashSet<RecordId> = HashSet::new();
        for r in found.iter().filter(|r| changed.contains(&r.id)) {
            let mut up = r.parent_id();
            while let Some(p) = up {
                if !blocked.insert(p) {
                    break;
                }
                up = parent_of.get(&p).copied().flatten();
            }
        }
        let records: Vec<StoredRecord> = found
            .into_iter()
            .take(limit)
            .filter(|r| {
                !changed.contains(&r.id)
                    && !blocked.contains(&r.id)
                    && !r.is_deleted()
                    && r.scope == c.scope
            })
            .collect();
        // Nothing may go ahead alone (it all changed in this push, which is
        // bounded by the batch size): the cascade runs whole.
        if records.is_empty() {
            return;
        }
        self.step = Some(Step {
            scope: c.scope,
            version: c.version.clone(),
            records,
        });
    }

    /// The rows of this run's step, numbered after its scope's counter, and
    /// the scope's new counter; `None` when the run ends in no step.
    #[allow(clippy::type_complexity)]
    pub fn step_writes(
        &self,
        now: Millis,
    ) -> Result<Option<(BTreeMap<ScopeId, i64>, Vec<RecordWrite>)>, EngineError> {
        let Some(step) = self.step.as_ref() else {
            return Ok(None);
        };
        // The cascade's scope holds the record being deleted, which this
        // push wrote: it is locked.
        let mut v = *self.base.get(&step.scope).ok_or(EngineError::Protocol(
            "a step in a scope that is not locked",
        ))?;
        let rows = step
            .records
            .iter()
            .map(|r| {
                v += 1;
                StoredRecord {
                    version: v,
                    state: merge::delete(&r.state, &step.version, &|f| r.entity.is_reference(f))
                        .state,
                    ..r.clone()
                }
                .to_write(now)
            })
            .collect();
        Ok(Some((BTreeMap::from([(step.scope, v)]), rows)))
    }
}
