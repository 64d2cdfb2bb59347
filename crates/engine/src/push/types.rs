//! What a push is given, what it asks for and is fed, and the log rows it
//! writes.

use std::collections::{BTreeMap, HashMap};

use tidesync_protocol::cursor::CursorStart;
use tidesync_protocol::entity::EntityType;
use tidesync_protocol::sync::{Ack, ChangeInput};
use tidesync_protocol::time::Millis;
use tidesync_protocol::{RecordId, Role, ScopeId};

use crate::page::FirstSince;
use crate::record::StoredRecord;
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
}

/// How much one transaction of a push may do: the backend's own settings
/// (never a request's). Beyond them the transaction ends in a step
/// ([`crate::Plan::again`]): what it did commits alone, and the push goes
/// on in a new one ([`crate::Push::resume`]), so that one large request
/// does not hold a single writer (SQLite's), and the memory of its loads,
/// for its whole length. `Default`: no limit, one transaction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PushLimits {
    /// A cascade whose live descendants are more than this many records,
    /// or more than this many bytes as stored, deletes them in steps of at
    /// most that much before the delete itself. `None`: atomic.
    pub cascade_step: Option<StepSize>,
    /// Most bytes of stored records one transaction loads (and so may
    /// rewrite). Once its loads reach them, the transaction ends before the
    /// next change that needs more, and the push goes on with the changes
    /// left. `None`: no limit.
    pub run_bytes: Option<usize>,
}

/// A step of a large cascade: at most this many records and bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepSize {
    pub records: usize,
    pub bytes: usize,
}

/// What a push whose transaction ended in a step goes on from
/// ([`crate::Push::resume`]).
#[derive(Clone, Debug)]
pub struct Again {
    /// The changes still to apply (all of them after a cascade's step,
    /// which applies none).
    pub(crate) input: PushInput,
    pub(crate) limits: PushLimits,
    pub(crate) carried: Carried,
}

/// What the earlier transactions of a push answered and owe the device.
#[derive(Clone, Debug, Default)]
pub(crate) struct Carried {
    /// Their acks, in order.
    pub acks: Vec<Ack>,
    /// Per record they wrote: written exactly as the device sent it (no
    /// echo). A later transaction's verdict replaces it.
    pub as_sent: HashMap<RecordId, bool>,
    /// Records the device must receive, as `(scope, id, version)`: those
    /// whose write lost or was merged, and, for a from-scratch cursor, the
    /// tombstones they wrote. The answer sends them by its page or by
    /// moving its cursor back before them.
    pub owed: Vec<(ScopeId, RecordId, i64)>,
    /// The scopes they wrote, with their new counters.
    pub wrote: BTreeMap<ScopeId, i64>,
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
    /// scopes (see [`Need::Records`] for `max_bytes`); and, for a date
    /// cursor, per scope the smallest version written at or after this
    /// server time.
    Batch {
        lock: Vec<ScopeId>,
        operation_ids: Vec<String>,
        ids: Vec<RecordId>,
        scopes: Vec<ScopeId>,
        first_since: Option<Millis>,
        max_bytes: Option<usize>,
    },
    /// Records by id, in these scopes, looked up in the order of `ids`
    /// (the order the changes need them). With `max_bytes`, the backend
    /// may stop once the records it loaded hold that many bytes as stored,
    /// and answers how many of `ids` (a prefix, at least one) it looked up.
    Records {
        ids: Vec<RecordId>,
        scopes: Vec<ScopeId>,
        max_bytes: Option<usize>,
    },
    /// Live records of `scope` whose `root_id` is one of `roots`, and those
    /// whose `parent_id` is one of `parents` unless their `root_id` is one
    /// of `loaded_roots` (read already): a cascade, one level at a time,
    /// each row read once (for the bucket list: the categories and items of
    /// deleted spaces, the items of deleted categories). Every one of them
    /// is deleted, so their content need not be loaded
    /// ([`StoredRecord::light`]): only what a tombstone keeps, and each
    /// one's size as stored.
    Children {
        scope: ScopeId,
        roots: Vec<RecordId>,
        parents: Vec<RecordId>,
        loaded_roots: Vec<RecordId>,
    },
    /// Up to `limit` live descendants in `scope` of the record `root`,
    /// leaves first: collection by collection in the order of `kinds`
    /// (every collection that is not a sharing root, children before their
    /// parents: items, then categories), the live records of that
    /// collection whose `root_id` is `root`, or whose `parent_id` is `root`
    /// or a live descendant of it of a collection of `inner` (those that
    /// have children: categories). Asked before a cascade when
    /// [`PushLimits::cascade_step`] is set, to learn whether it fits in one
    /// step. Like [`Need::Children`], loaded without content.
    Descendants {
        scope: ScopeId,
        root: RecordId,
        kinds: Vec<EntityType>,
        inner: Vec<EntityType>,
        limit: usize,
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
        /// How many of the ids asked for were looked up (see [`Need::Records`]).
        looked_up: usize,
    },
    Records {
        records: Vec<StoredRecord>,
        looked_up: usize,
    },
    /// Records a cascade deletes: their content need not be loaded (a
    /// tombstone keeps only references, [`StoredRecord::light`]).
    Children(Vec<StoredRecord>),
    Descendants(Vec<StoredRecord>),
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
