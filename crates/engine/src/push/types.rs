//! What a push is given, what it asks for and is fed, and the log rows it
//! writes.

use tidesync_protocol::cursor::CursorStart;
use tidesync_protocol::entity::EntityType;
use tidesync_protocol::sync::ChangeInput;
use tidesync_protocol::time::Millis;
use tidesync_protocol::{RecordId, Role, ScopeId};

use crate::page::FirstSince;
use crate::record::{PulledRecord, StoredRecord};
use crate::view::View;

/// What a push is given.
#[derive(Clone, Debug)]
pub struct PushInput {
    pub device_id: String,
    pub cursor: CursorStart,
    pub changes: Vec<ChangeInput>,
    pub limit: usize,
    /// Most bytes of record text in the page returned.
    pub max_page_bytes: usize,
    /// The server's clock for this request.
    pub now: Millis,
    /// Client timestamps further ahead than this are clamped to `now`.
    pub max_skew: Millis,
    /// Most records one transaction of a cascade may delete; `None`: no
    /// limit, every cascade is atomic. Beyond it the push ends in a step
    /// ([`crate::Plan::again`]): a part of the cascade to commit alone
    /// before the push runs again, so that one large delete does not hold a
    /// single writer (SQLite's) for its whole length.
    pub cascade_step: Option<usize>,
}

/// What a push that ended in a step of a cascade goes on from
/// ([`crate::Push::resume`]): its input, and (for a from-scratch cursor) the
/// records its steps deleted, which the device must still be sent.
#[derive(Clone, Debug)]
pub struct Again {
    pub(crate) input: PushInput,
    pub(crate) stepped: Vec<RecordId>,
}

/// Rows the push needs before it can go on. Every list is deduplicated and sorted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Need {
    /// The user's memberships, with each scope's head and space.
    View,
    /// In which of these scopes each of these ids lives (only asked when
    /// the user has shared scopes: otherwise everything is personal).
    Locate {
        ids: Vec<RecordId>,
        scopes: Vec<ScopeId>,
    },
    /// First take the write locks of `lock`, in this order, and read each
    /// one's counter and the user's role in it under the lock. Then: stored
    /// acks of these operation ids; the records with these ids in these
    /// scopes; and, for a date cursor, per scope the smallest version
    /// written at or after this server time.
    Batch {
        lock: Vec<ScopeId>,
        operation_ids: Vec<String>,
        ids: Vec<RecordId>,
        scopes: Vec<ScopeId>,
        first_since: Option<Millis>,
    },
    /// More records by id, in these scopes (one a change needs that the
    /// batch did not name).
    Records {
        ids: Vec<RecordId>,
        scopes: Vec<ScopeId>,
    },
    /// Live records of `scope` whose `spaceId` is one of `spaces`, and those
    /// whose `categoryId` is one of `categories` unless their `spaceId` is
    /// one of `loaded_spaces` (read already): a cascade, one level at a
    /// time, each row read once.
    Children {
        scope: ScopeId,
        spaces: Vec<RecordId>,
        categories: Vec<RecordId>,
        loaded_spaces: Vec<RecordId>,
    },
    /// Up to `limit` live descendants in `scope` of the record `root` (a
    /// space when `space`, else a category), leaves first: every live item
    /// under it (by `spaceId`, or by `categoryId` through one of the
    /// space's live categories), then its live categories. Asked before a
    /// cascade when [`PushInput::cascade_step`] is set, to learn whether it
    /// fits in one step.
    Descendants {
        scope: ScopeId,
        root: RecordId,
        space: bool,
        limit: usize,
    },
    /// These records as a pull reads them, in these scopes: the tombstones
    /// earlier steps of this push wrote, which a device pushing from
    /// scratch must be sent (its page holds no tombstones).
    Sent {
        ids: Vec<RecordId>,
        scopes: Vec<ScopeId>,
    },
}

/// The answer to a [`Need`].
#[derive(Clone, Debug)]
pub enum Loaded {
    View(View),
    Located(Vec<(RecordId, ScopeId)>),
    Batch {
        /// Per locked scope: its counter and the user's role, under the lock.
        locked: Vec<(ScopeId, i64, Role)>,
        /// (operation id, stored ack as JSON).
        acks: Vec<(String, String)>,
        records: Vec<StoredRecord>,
        first_since: FirstSince,
    },
    Records(Vec<StoredRecord>),
    Children(Vec<StoredRecord>),
    Descendants(Vec<StoredRecord>),
    /// With the scope each was read in.
    Sent(Vec<(ScopeId, PulledRecord)>),
}

/// One row of the sync log: the idempotency key, the answer, the audit trail.
#[derive(Clone, Debug, PartialEq)]
pub struct LogRow {
    pub operation_id: String,
    pub device_id: String,
    pub entity_type: Option<EntityType>,
    pub entity_id: Option<String>,
    pub operation: Option<tidesync_protocol::merge::OpKind>,
    /// JSON of the validated fields sent.
    pub changes: String,
    /// JSON of the ack returned.
    pub ack: String,
    pub client_time: Option<Millis>,
    pub server_time: Millis,
}
