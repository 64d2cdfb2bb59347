//! What `Store::import_user` takes and answers: one user of another system
//! (the original Node.js/MongoDB server) with their records and applied
//! operations, imported in one transaction.

use std::collections::HashSet;

use tidesync_protocol::entity::EntityType;
use tidesync_protocol::RecordId;

pub use tidesync_engine::import::{ImportedLog, ImportedRecord, ImportedUser};

/// What happened to the user's account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportedAccount {
    Created,
    /// The id exists already: the account (and its hash) is left alone.
    AlreadyPresent,
    /// Another account has this email: nothing of the user was imported.
    EmailTaken,
}

/// What one `import_user` stored. Records and logs that exist already (by
/// id in the user's scopes, by operation id) are left alone and counted as
/// present, so a second import of the same data changes nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportOutcome {
    pub account: ImportedAccount,
    /// Inserted, per entity: spaces, categories, items.
    pub inserted: [u64; 3],
    pub present: [u64; 3],
    pub logs_inserted: u64,
    pub logs_present: u64,
}

impl ImportOutcome {
    pub fn new(account: ImportedAccount) -> ImportOutcome {
        ImportOutcome {
            account,
            inserted: [0; 3],
            present: [0; 3],
            logs_inserted: 0,
            logs_present: 0,
        }
    }

    /// Keeps the records to insert (those whose id is not `present` in the
    /// user's scopes) and counts both kinds, per entity.
    pub fn split_records(
        &mut self,
        records: Vec<ImportedRecord>,
        present: &HashSet<RecordId>,
    ) -> Vec<ImportedRecord> {
        let (old, new): (Vec<_>, Vec<_>) =
            records.into_iter().partition(|r| present.contains(&r.id));
        for r in &old {
            self.present[entity_index(r.entity)] += 1;
        }
        for r in &new {
            self.inserted[entity_index(r.entity)] += 1;
        }
        new
    }

    /// The log rows to insert (operations not `logged` yet) and counts both
    /// kinds.
    pub fn split_logs(
        &mut self,
        logs: &[ImportedLog],
        logged: &HashSet<String>,
    ) -> Vec<tidesync_engine::LogRow> {
        let rows: Vec<_> = logs
            .iter()
            .filter(|l| !logged.contains(&l.operation_id))
            .map(|l| l.to_row())
            .collect();
        self.logs_present = (logs.len() - rows.len()) as u64;
        self.logs_inserted = rows.len() as u64;
        rows
    }
}

/// The index of an entity in [`ImportOutcome`]'s arrays.
pub fn entity_index(e: EntityType) -> usize {
    // The built-in's order, parents first: space, category, item.
    e.index()
}
