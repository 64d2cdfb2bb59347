//! The tidesync sync algorithm as a pure planner, with no I/O.
//!
//! Backends (SQLite, PostgreSQL) only load what the engine asks for and
//! execute the plan it returns, in one transaction. Everything that decides
//! what a sync does lives here, so every rule can be tested without a
//! database: merges, no echo, cascades, deletes win, replays of stored
//! acks, per-operation errors, the clock-skew clamp, paging.
//!
//! Why the cursor is exact: a push runs under the user's write lock and
//! numbers every record it writes with the next values of the user's
//! counter (see [`Push::new`]), so version order is commit order; a pull
//! reads the committed counter first and returns `cursor < version <= head`
//! ([`page::plan_pull`]). See `docs/ARCHITECTURE.md`.

mod apply;
pub mod history;
pub mod import;
pub mod members;
pub mod page;
mod pull;
mod push;
pub mod record;
pub mod view;
mod working;

#[cfg(test)]
mod tests;

pub use page::{Page, PageBuilder, PageQuery, PullPlan, ScopeRange};
pub use pull::{Pull, PullInput, PullLoaded, PullNeed};
pub use push::{Again, Loaded, LogRow, Need, Plan, Push, PushInput, PushLimits, StepSize};
pub use record::{PulledRecord, RecordWrite, StoredRecord};
pub use view::{ScopeView, View};

use std::collections::BTreeMap;

use tidesync_protocol::cursor::Positions;
use tidesync_protocol::sync::Ack;
use tidesync_protocol::{RecordId, ScopeId};

/// Why the engine cannot go on with a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineError {
    /// The client's cursor is ahead of the server (a restored database, or
    /// a cursor from elsewhere): it must pull from scratch.
    CursorAhead,
    /// The cursor is older than the history the server keeps (a deletion it
    /// needs was collected): the client must resync from scratch.
    ResyncRequired,
    /// A stored row cannot be read back.
    Corrupt(String),
    /// The driver broke the need/feed protocol (a bug in a backend).
    Protocol(&'static str),
    /// A record's scope changed between locating it and locking (a space was
    /// shared meanwhile): roll back and run the push again.
    Retry,
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineError::CursorAhead => f.write_str("the cursor is ahead of this server"),
            EngineError::ResyncRequired => f.write_str("the cursor is older than the kept history"),
            EngineError::Corrupt(m) => write!(f, "corrupt data: {m}"),
            EngineError::Protocol(m) => write!(f, "engine misuse: {m}"),
            EngineError::Retry => f.write_str("a record moved to another scope meanwhile; retry"),
        }
    }
}

impl std::error::Error for EngineError {}

/// What a sync answers, before it is written as JSON.
#[derive(Debug)]
pub struct SyncOutput {
    pub acks: Vec<Ack>,
    pub records: Vec<PulledRecord>,
    /// The cursor to return.
    pub cursor: Positions,
    pub has_more: bool,
    /// Shared spaces the user was removed from: their records must go.
    pub removed_spaces: Vec<RecordId>,
    /// The scopes this request wrote, with their new counters (other
    /// devices of their members may be poked).
    pub wrote: BTreeMap<ScopeId, i64>,
}

impl SyncOutput {
    /// A pull's answer: a page and no acks.
    pub fn pulled(page: Page, removed_spaces: Vec<RecordId>) -> SyncOutput {
        SyncOutput {
            acks: vec![],
            records: page.records,
            cursor: page.positions,
            has_more: page.has_more,
            removed_spaces,
            wrote: BTreeMap::new(),
        }
    }
}
