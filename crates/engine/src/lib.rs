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
pub mod page;
mod push;
pub mod record;
mod working;

#[cfg(test)]
mod tests;

pub use page::{Page, PageBuilder, PageQuery};
pub use push::{Loaded, LogRow, Need, Plan, Push, PushInput};
pub use record::{PulledRecord, RecordWrite, StoredRecord};

use tidesync_protocol::sync::Ack;

/// Why the engine cannot go on with a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineError {
    /// The client's cursor is ahead of the server (a restored database, or
    /// a cursor from elsewhere): it must pull from scratch.
    CursorAhead,
    /// A stored row cannot be read back.
    Corrupt(String),
    /// The driver broke the need/feed protocol (a bug in a backend).
    Protocol(&'static str),
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineError::CursorAhead => f.write_str("the cursor is ahead of this server"),
            EngineError::Corrupt(m) => write!(f, "corrupt data: {m}"),
            EngineError::Protocol(m) => write!(f, "engine misuse: {m}"),
        }
    }
}

impl std::error::Error for EngineError {}

/// What a sync answers, before it is written as JSON.
#[derive(Debug)]
pub struct SyncOutput {
    pub acks: Vec<Ack>,
    pub records: Vec<PulledRecord>,
    /// The version the returned cursor stands for.
    pub cursor: i64,
    pub has_more: bool,
    /// The user's latest committed version after this request.
    pub head: i64,
    /// This request committed at least one change (other devices may be poked).
    pub wrote: bool,
}

impl SyncOutput {
    /// A pull's answer: a page and no acks.
    pub fn pulled(page: Page, head: i64) -> SyncOutput {
        SyncOutput {
            acks: vec![],
            records: page.records,
            cursor: page.cursor,
            has_more: page.has_more,
            head,
            wrote: false,
        }
    }
}
