//! The cascade of a delete: a deleted space or category deletes its live
//! children in its scope, level by level, loading each level first.

use tidesync_protocol::entity::EntityType;
use tidesync_protocol::merge::{self, Version};
use tidesync_protocol::{RecordId, ScopeId};

use super::Batch;
use crate::push::Need;
use crate::record::StoredRecord;

/// A delete spreading to the children of its record, one level at a time.
pub(super) struct Cascade {
    pub(super) scope: ScopeId,
    pub(super) version: Version,
    /// Parents whose live children are deleted next.
    pub(super) frontier: Vec<RecordId>,
}

impl Batch {
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
                scope: cascade.scope,
                spaces,
                categories,
                loaded_spaces: self.working.loaded_spaces().to_vec(),
            });
        }
        let Cascade {
            scope,
            version,
            frontier,
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
                rec.state = merge::delete(&rec.state, &version).state;
                if rec.entity == EntityType::Category {
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
