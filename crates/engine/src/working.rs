//! The records a push has loaded or written, indexed by parent so that a
//! cascade finds each child without scanning.

use std::collections::{BTreeSet, HashMap, HashSet};

use tidesync_protocol::RecordId;

use crate::record::StoredRecord;

#[derive(Default, Debug)]
pub struct Working {
    records: HashMap<RecordId, StoredRecord>,
    /// Parent id → ids of working records that name it in an `x-parent`
    /// reference (a space's categories and items, a category's items).
    children: HashMap<RecordId, BTreeSet<RecordId>>,
    /// Parents whose stored children have been loaded already.
    loaded: HashSet<RecordId>,
    /// The sharing roots among them.
    loaded_roots: Vec<RecordId>,
}

impl Working {
    pub fn get(&self, id: &RecordId) -> Option<&StoredRecord> {
        self.records.get(id)
    }

    /// Inserts or replaces a record, keeping the parent index true.
    pub fn put(&mut self, rec: StoredRecord) {
        if let Some(old) = self.records.get(&rec.id) {
            for p in old.parents() {
                if let Some(set) = self.children.get_mut(&p) {
                    set.remove(&rec.id);
                }
            }
        }
        for p in rec.parents() {
            self.children.entry(p).or_default().insert(rec.id);
        }
        self.records.insert(rec.id, rec);
    }

    /// Adds a record read from the database unless the push already holds
    /// it: the working copy is the truth. True when added.
    pub fn add_loaded(&mut self, rec: StoredRecord) -> bool {
        if self.records.contains_key(&rec.id) {
            return false;
        }
        self.put(rec);
        true
    }

    /// The working records directly under `parent`, in id order.
    pub fn children_of(&self, parent: &RecordId) -> Vec<RecordId> {
        self.children
            .get(parent)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    pub fn children_loaded(&self, parent: &RecordId) -> bool {
        self.loaded.contains(parent)
    }

    pub fn mark_children_loaded(&mut self, parent: RecordId, is_root: bool) {
        if self.loaded.insert(parent) && is_root {
            self.loaded_roots.push(parent);
        }
    }

    pub fn loaded_roots(&self) -> &[RecordId] {
        &self.loaded_roots
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tidesync_protocol::entity::EntityType;
    use tidesync_protocol::merge::{RecordState, Version};

    fn id(n: u128) -> RecordId {
        RecordId::from_uuid(tidesync_protocol::uuid::Uuid::from_u128(n))
    }

    fn rec(n: u128, space: Option<u128>, category: Option<u128>) -> StoredRecord {
        let mut fields: std::collections::BTreeMap<String, serde_json::Value> =
            std::collections::BTreeMap::new();
        if let Some(s) = space {
            fields.insert("spaceId".into(), json!(id(s).to_string()));
        }
        if let Some(c) = category {
            fields.insert("categoryId".into(), json!(id(c).to_string()));
        }
        let v = Version {
            ts: 1,
            device: "d".into(),
            op: "o".into(),
        };
        StoredRecord {
            scope: tidesync_protocol::ScopeId::new(1),
            created_by: tidesync_protocol::UserId::from_uuid(tidesync_protocol::uuid::Uuid::nil()),
            id: id(n),
            entity: EntityType::Item,
            version: 1,
            state: RecordState {
                clocks: fields.keys().map(|k| (k.clone(), v.clone())).collect(),
                fields,
                created: v,
                deleted: None,
            },
            bytes: 0,
        }
    }

    #[test]
    fn the_index_follows_moves() {
        let mut w = Working::default();
        w.put(rec(10, Some(1), Some(2)));
        w.put(rec(11, Some(1), None));
        assert_eq!(w.children_of(&id(1)), vec![id(10), id(11)]);
        assert_eq!(w.children_of(&id(2)), vec![id(10)]);
        // Moved to another category: gone from the old one's children.
        w.put(rec(10, Some(1), Some(3)));
        assert_eq!(w.children_of(&id(2)), Vec::<RecordId>::new());
        assert_eq!(w.children_of(&id(3)), vec![id(10)]);
        // A stored copy never replaces the working one.
        assert!(!w.add_loaded(rec(10, Some(9), None)));
        assert_eq!(w.children_of(&id(3)), vec![id(10)]);
        assert!(w.add_loaded(rec(12, None, Some(3))));
        assert_eq!(w.children_of(&id(3)), vec![id(10), id(12)]);
    }
}
