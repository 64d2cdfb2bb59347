//! The sync algorithm, written once for both backends. Each backend supplies
//! the SQL through [`SyncTx`]; everything here runs inside one transaction.
//!
//! Why the cursor is exact: a write transaction first takes the user's write
//! lock (PostgreSQL: the user's row `FOR UPDATE`; SQLite: `BEGIN IMMEDIATE`,
//! the database's single writer), then numbers every record it writes with
//! the next values of the user's counter and stores the counter, all before
//! commit. Two writers of one user never interleave, so version order is
//! commit order. A pull reads the committed counter `S` first and returns only
//! rows with `cursor < version <= S`: every one of those is committed, and
//! anything committed later gets a version above `S` and so comes next time.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use serde_json::Value;
use tidesync_protocol::cursor::CursorStart;
use tidesync_protocol::entity::{EntityType, Kind};
use tidesync_protocol::merge::{self, clamp_timestamp, MergeError, OpKind, RecordState, Version};
use tidesync_protocol::sync::{Ack, Change, ChangeInput, OpError, OpErrorCode};
use tidesync_protocol::time::Millis;
use tidesync_protocol::UserId;
use uuid::Uuid;

use crate::StoreError;

/// A record as stored, with its merge state.
#[derive(Clone, Debug)]
pub struct StoredRecord {
    pub id: Uuid,
    pub entity: EntityType,
    pub version: i64,
    pub state: RecordState,
    pub server_time: Millis,
}

impl StoredRecord {
    pub fn reference(&self, field: &str) -> Option<Uuid> {
        self.state
            .fields
            .get(field)
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok())
    }

    pub fn space_id(&self) -> Option<Uuid> {
        self.reference("spaceId")
    }

    pub fn category_id(&self) -> Option<Uuid> {
        self.reference("categoryId")
    }

    pub fn data_json(&self) -> String {
        serde_json::to_string(&self.state.fields).expect("fields serialize")
    }

    fn to_pulled(&self) -> PulledRecord {
        let last = self.state.last();
        PulledRecord {
            id: self.id,
            entity: self.entity,
            version: self.version,
            data: self.data_json(),
            created_at: self.state.created_at(),
            updated_at: last.ts,
            deleted_at: self.state.deleted_at(),
            device_id: last.device.clone(),
        }
    }
}

/// A record as a pull returns it: what the response needs, nothing more.
#[derive(Clone, Debug)]
pub struct PulledRecord {
    pub id: Uuid,
    pub entity: EntityType,
    pub version: i64,
    /// JSON object of the entity's fields.
    pub data: String,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub deleted_at: Option<Millis>,
    pub device_id: String,
}

/// One row of the sync log (idempotency key and audit trail).
pub struct LogEntry<'a> {
    pub operation_id: &'a str,
    pub device_id: &'a str,
    pub entity_type: Option<&'a str>,
    pub entity_id: Option<String>,
    pub operation: Option<&'a str>,
    pub changes: String,
    pub ack: String,
    pub client_time: Option<Millis>,
    pub server_time: Millis,
}

pub struct PushInput {
    pub device_id: String,
    pub cursor: CursorStart,
    pub changes: Vec<ChangeInput>,
    pub limit: usize,
    /// The server's clock for this request.
    pub now: Millis,
    /// Client timestamps further ahead than this are clamped to `now`.
    pub max_skew: Millis,
}

pub struct SyncOutput {
    pub acks: Vec<Ack>,
    pub records: Vec<PulledRecord>,
    /// The version the returned cursor stands for.
    pub cursor: i64,
    pub has_more: bool,
    /// The user's latest committed version after this request.
    pub head: i64,
    /// This request committed at least one change (others may be poked).
    pub wrote: bool,
}

/// What a pull needs, implemented by each backend on an open transaction.
/// All of it is scoped to one user.
#[async_trait]
pub trait SyncRead: Send {
    /// Reads the committed counter without locking.
    async fn user_version(&mut self, user: UserId) -> Result<Option<i64>, StoreError>;
    /// The smallest version written at or after `since` (server time).
    async fn first_version_since(
        &mut self,
        user: UserId,
        since: Millis,
    ) -> Result<Option<i64>, StoreError>;
    /// Records with `after < version <= upto`, by version, at most `limit`;
    /// tombstones left out when `live_only`.
    async fn changes(
        &mut self,
        user: UserId,
        after: i64,
        upto: i64,
        limit: usize,
        live_only: bool,
    ) -> Result<Vec<PulledRecord>, StoreError>;
}

/// What a push needs besides: the statements of a write transaction.
#[async_trait]
pub trait SyncTx: SyncRead {
    /// Takes the user's write lock; returns the counter (`None`: no such user).
    async fn lock_user(&mut self, user: UserId) -> Result<Option<i64>, StoreError>;
    /// Stored acks (JSON) of the operation ids that were seen before.
    async fn load_acks(
        &mut self,
        user: UserId,
        op_ids: &[&str],
    ) -> Result<HashMap<String, String>, StoreError>;
    async fn load_records(
        &mut self,
        user: UserId,
        ids: &[Uuid],
    ) -> Result<Vec<StoredRecord>, StoreError>;
    /// Records not deleted whose `spaceId` or `categoryId` is `parent`.
    async fn live_children(
        &mut self,
        user: UserId,
        parent: Uuid,
    ) -> Result<Vec<StoredRecord>, StoreError>;
    /// Inserts or replaces records (multi-row statements: one round trip per
    /// chunk, not per record).
    async fn save_records(
        &mut self,
        user: UserId,
        recs: &[&StoredRecord],
    ) -> Result<(), StoreError>;
    async fn insert_logs(
        &mut self,
        user: UserId,
        entries: &[LogEntry<'_>],
    ) -> Result<(), StoreError>;
    async fn set_user_version(&mut self, user: UserId, version: i64) -> Result<(), StoreError>;
}

/// Turns the client's cursor into a version, against the counter `current`.
async fn resolve_cursor(
    tx: &mut dyn SyncRead,
    user: UserId,
    cursor: CursorStart,
    current: i64,
) -> Result<i64, StoreError> {
    match cursor {
        CursorStart::Scratch => Ok(0),
        CursorStart::Version(v) if v > current => Err(StoreError::CursorAhead),
        CursorStart::Version(v) => Ok(v),
        CursorStart::Since(ms) => Ok(match tx.first_version_since(user, ms).await? {
            Some(v) => (v - 1).min(current),
            None => current,
        }),
    }
}

/// A pull without changes: no lock, no write. The caller commits (or just
/// ends) the transaction.
pub async fn pull(
    tx: &mut dyn SyncRead,
    user: UserId,
    cursor: CursorStart,
    limit: usize,
) -> Result<SyncOutput, StoreError> {
    let current = tx.user_version(user).await?.ok_or(StoreError::UserGone)?;
    let since = resolve_cursor(tx, user, cursor, current).await?;
    let live_only = cursor == CursorStart::Scratch;
    let mut records = tx
        .changes(user, since, current, limit + 1, live_only)
        .await?;
    let has_more = records.len() > limit;
    records.truncate(limit);
    let cursor = match records.last() {
        Some(last) if has_more => last.version,
        _ => current,
    };
    Ok(SyncOutput {
        acks: vec![],
        records,
        cursor,
        has_more,
        head: current,
        wrote: false,
    })
}

/// Applies a batch of changes in order, then pulls, inside the caller's
/// transaction; the caller commits before answering.
pub async fn push(
    tx: &mut dyn SyncTx,
    user: UserId,
    input: PushInput,
) -> Result<SyncOutput, StoreError> {
    let base = tx.lock_user(user).await?.ok_or(StoreError::UserGone)?;
    let since = resolve_cursor(tx, user, input.cursor, base).await?;

    let op_ids: Vec<&str> = input
        .changes
        .iter()
        .filter_map(|c| match c {
            ChangeInput::Valid(c) => Some(c.operation_id.as_str()),
            ChangeInput::Invalid { operation_id, .. } => operation_id.as_deref(),
        })
        .collect();
    let mut answered: HashMap<String, Ack> = HashMap::new();
    for (op, json) in tx.load_acks(user, &op_ids).await? {
        let ack: Ack = serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("stored ack: {e}")))?;
        answered.insert(op, ack);
    }

    // Everything the batch touches or refers to, in one query.
    let mut ids: Vec<Uuid> = Vec::new();
    for c in &input.changes {
        if let ChangeInput::Valid(c) = c {
            ids.push(c.id.as_uuid());
            for spec in c.entity.fields() {
                if let Kind::Ref(_) = spec.kind {
                    if let Some(Value::String(s)) = c.data.fields.get(spec.name) {
                        if let Ok(id) = Uuid::parse_str(s) {
                            ids.push(id);
                        }
                    }
                }
            }
        }
    }
    ids.sort_unstable();
    ids.dedup();
    let loaded = tx.load_records(user, &ids).await?;

    let mut batch = Batch {
        user,
        since,
        next: base,
        now: input.now,
        prior: loaded.iter().map(|r| (r.id, r.version)).collect(),
        working: loaded.into_iter().map(|r| (r.id, r)).collect(),
        dirty: Vec::new(),
        dirty_set: HashSet::new(),
        replayed: Vec::new(),
        as_sent: HashMap::new(),
        conflicted: HashSet::new(),
    };

    let mut acks = Vec::with_capacity(input.changes.len());
    let mut logs = Vec::with_capacity(input.changes.len());
    for change in &input.changes {
        let op_id = match change {
            ChangeInput::Valid(c) => Some(c.operation_id.as_str()),
            ChangeInput::Invalid { operation_id, .. } => operation_id.as_deref(),
        };
        if let Some(prev) = op_id.and_then(|op| answered.get(op)) {
            // The first answer may have been lost with its server state: a
            // retried write that lost must bring that state again.
            // (`duplicate` in a stored ack means a delete of a deleted record,
            // whose tombstone may differ from what the device wrote.)
            if let ChangeInput::Valid(c) = change {
                if batch.working.contains_key(&c.id.as_uuid()) {
                    if prev.conflict || prev.duplicate {
                        batch.conflicted.insert(c.id.as_uuid());
                    }
                    batch.replayed.push(c.id.as_uuid());
                }
            }
            acks.push(Ack {
                duplicate: true,
                ..prev.clone()
            });
            continue;
        }
        let (ack, entry) = match change {
            ChangeInput::Invalid {
                operation_id,
                id,
                error,
            } => {
                let ack = Ack {
                    operation_id: operation_id.clone(),
                    id: id.clone(),
                    success: false,
                    duplicate: false,
                    conflict: false,
                    error: Some(error.clone()),
                    ignored_fields: vec![],
                };
                let entry = operation_id.as_deref().map(|op| LogEntry {
                    operation_id: op,
                    device_id: &input.device_id,
                    entity_type: None,
                    entity_id: id.clone(),
                    operation: None,
                    changes: "{}".into(),
                    ack: serde_json::to_string(&ack).expect("ack serializes"),
                    client_time: None,
                    server_time: input.now,
                });
                (ack, entry)
            }
            ChangeInput::Valid(c) => {
                let ts =
                    clamp_timestamp(c.timestamp.unwrap_or(input.now), input.now, input.max_skew);
                let ack = batch.apply(tx, c, ts).await?;
                let entry = LogEntry {
                    operation_id: &c.operation_id,
                    device_id: &c.device_id,
                    entity_type: Some(c.entity.as_str()),
                    entity_id: Some(c.id.to_string()),
                    operation: Some(match c.op {
                        OpKind::Create => "create",
                        OpKind::Update => "update",
                        OpKind::Delete => "delete",
                    }),
                    changes: serde_json::to_string(&c.data.fields).expect("fields serialize"),
                    ack: serde_json::to_string(&ack).expect("ack serializes"),
                    client_time: c.timestamp,
                    server_time: input.now,
                };
                (ack, Some(entry))
            }
        };
        if let Some(entry) = entry {
            answered.insert(entry.operation_id.to_owned(), ack.clone());
            logs.push(entry);
        }
        acks.push(ack);
    }

    tx.insert_logs(user, &logs).await?;
    let dirty: Vec<&StoredRecord> = batch.dirty.iter().map(|id| &batch.working[id]).collect();
    tx.save_records(user, &dirty).await?;
    if batch.next != base {
        tx.set_user_version(user, batch.next).await?;
    }

    let live_only = input.cursor == CursorStart::Scratch;
    let mut records = tx
        .changes(user, since, batch.next, input.limit + 1, live_only)
        .await?;

    let has_more = records.len() > input.limit;
    records.truncate(input.limit);
    let cursor = match records.last() {
        Some(last) if has_more => last.version,
        _ => batch.next,
    };
    // No echo: a record this device wrote exactly as it sent, and that had no
    // other change since its cursor, is already in its local state.
    records.retain(|r| !batch.as_sent.get(&r.id).copied().unwrap_or(false));
    // Where a write lost or was merged, the device must get the server's state,
    // even when the record did not change. And tombstones this request made
    // (cascades) must reach it even on a from-scratch page, which has none.
    let mut force: Vec<&Uuid> = batch.conflicted.iter().collect();
    if live_only {
        // A device that sends operations about a record holds it: on a page
        // without tombstones it must still learn that the record is deleted,
        // whether this request deleted it (cascades) or someone did before
        // this replay arrived.
        force.extend(batch.dirty.iter().chain(&batch.replayed).filter(|id| {
            batch.working[*id].state.deleted.is_some()
                && !batch.as_sent.get(*id).copied().unwrap_or(false)
        }));
    }
    for id in force {
        if !records.iter().any(|r| r.id == *id) {
            records.push(batch.working[id].to_pulled());
        }
    }
    Ok(SyncOutput {
        acks,
        records,
        cursor,
        has_more,
        head: batch.next,
        wrote: batch.next != base,
    })
}

/// The state of one push while its changes are applied.
struct Batch {
    user: UserId,
    since: i64,
    /// The last version handed out.
    next: i64,
    now: Millis,
    /// Versions before this request, of the records that existed.
    prior: HashMap<Uuid, i64>,
    working: HashMap<Uuid, StoredRecord>,
    /// Records to save, in the order their versions were assigned.
    dirty: Vec<Uuid>,
    dirty_set: HashSet<Uuid>,
    /// Records targeted by replayed (duplicate) operations.
    replayed: Vec<Uuid>,
    /// Per record: every write by this request applied exactly as sent.
    as_sent: HashMap<Uuid, bool>,
    conflicted: HashSet<Uuid>,
}

fn failure(c: &Change, code: OpErrorCode, message: String) -> Ack {
    Ack {
        operation_id: Some(c.operation_id.clone()),
        id: Some(c.id.to_string()),
        success: false,
        duplicate: false,
        conflict: false,
        error: Some(OpError::new(code, message)),
        ignored_fields: vec![],
    }
}

impl Batch {
    fn store(&mut self, mut rec: StoredRecord) {
        self.next += 1;
        rec.version = self.next;
        rec.server_time = self.now;
        if self.dirty_set.insert(rec.id) {
            self.dirty.push(rec.id);
        }
        self.working.insert(rec.id, rec);
    }

    fn mark(&mut self, id: Uuid, clean: bool) {
        let prior_known = self.prior.get(&id).is_none_or(|p| *p <= self.since);
        let e = self.as_sent.entry(id).or_insert(true);
        *e &= clean && prior_known;
    }

    async fn apply(
        &mut self,
        tx: &mut dyn SyncTx,
        c: &Change,
        ts: Millis,
    ) -> Result<Ack, StoreError> {
        let v = Version {
            ts,
            device: c.device_id.clone(),
            op: c.operation_id.clone(),
        };
        let existing = match self.working.get(&c.id.as_uuid()) {
            Some(r) if r.entity != c.entity => {
                return Ok(if c.op == OpKind::Create {
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
                });
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
            let parent = Uuid::parse_str(s).ok().and_then(|id| self.working.get(&id));
            match parent {
                Some(p) if p.entity == target => parent_deleted |= p.state.deleted.is_some(),
                _ => {
                    return Ok(failure(
                        c,
                        OpErrorCode::UnknownReference,
                        format!("{}: no {} with this id", spec.name, target.as_str()),
                    ))
                }
            }
        }

        let mut out = match merge::apply(existing.map(|r| &r.state), c.op, &c.data.fields, &v) {
            Ok(out) => out,
            Err(MergeError::NotFound) => {
                return Ok(failure(
                    c,
                    OpErrorCode::NotFound,
                    format!("no {} with this id", c.entity.as_str()),
                ))
            }
        };
        // A child written under a deleted parent is stored deleted.
        if parent_deleted && out.state.deleted.is_none() {
            out.state = merge::delete(&out.state, &v).state;
            out.changed = true;
            out.conflict = true;
        }
        if out.changed {
            let rec = StoredRecord {
                id: c.id.as_uuid(),
                entity: c.entity,
                version: 0,
                state: out.state,
                server_time: self.now,
            };
            self.store(rec);
        }
        // A delete of a deleted record keeps the earlier tombstone, which the
        // device (having written its own) must receive, like a conflict.
        let differs = out.conflict || out.already_deleted;
        self.mark(c.id.as_uuid(), !differs);
        if differs {
            self.conflicted.insert(c.id.as_uuid());
        }
        if c.op == OpKind::Delete && out.changed && c.entity != EntityType::Item {
            self.cascade(tx, c.id.as_uuid(), &v).await?;
        }
        Ok(Ack {
            operation_id: Some(c.operation_id.clone()),
            id: Some(c.id.to_string()),
            success: true,
            duplicate: out.already_deleted,
            conflict: out.conflict,
            error: None,
            ignored_fields: c.data.ignored.clone(),
        })
    }

    /// Soft-deletes everything under a deleted space or category, each child
    /// with a version of its own so the tombstones propagate.
    async fn cascade(
        &mut self,
        tx: &mut dyn SyncTx,
        root: Uuid,
        v: &Version,
    ) -> Result<(), StoreError> {
        let mut parents = vec![root];
        while let Some(parent) = parents.pop() {
            let mut children: Vec<Uuid> = Vec::new();
            for child in tx.live_children(self.user, parent).await? {
                children.push(child.id);
                if !self.working.contains_key(&child.id) {
                    self.prior.insert(child.id, child.version);
                    self.working.insert(child.id, child);
                }
            }
            // Children created earlier in this batch are not in the database yet.
            children.extend(
                self.working
                    .values()
                    .filter(|r| r.space_id() == Some(parent) || r.category_id() == Some(parent))
                    .map(|r| r.id),
            );
            children.sort_unstable();
            children.dedup();
            for id in children {
                let rec = &self.working[&id];
                // The working copy is the truth: skip children deleted or moved meanwhile.
                let still_child =
                    rec.space_id() == Some(parent) || rec.category_id() == Some(parent);
                if rec.state.deleted.is_some() || !still_child {
                    continue;
                }
                let mut rec = rec.clone();
                rec.state = merge::delete(&rec.state, v).state;
                if rec.entity == EntityType::Category {
                    parents.push(id);
                }
                self.store(rec);
                self.mark(id, false);
            }
        }
        Ok(())
    }
}
