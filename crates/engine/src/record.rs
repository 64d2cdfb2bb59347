//! Records as the engine sees them: loaded with their merge state, written
//! back as rows, and read by pulls as JSON text.

use serde_json::Value;
use tidesync_protocol::entity::EntityType;
use tidesync_protocol::merge::{self, RecordState};
use tidesync_protocol::time::Millis;
use tidesync_protocol::{RecordId, ScopeId, UserId};

/// The field that names a record's sharing root (see [`StoredRecord::root_id`]).
pub fn root_field(entity: EntityType) -> Option<&'static str> {
    entity
        .parents()
        .find(|r| r.target.is_shareable())
        .map(|r| r.field)
}

/// The field stored as `parent_id` (see [`StoredRecord::parent_id`]).
pub fn parent_field(entity: EntityType) -> Option<&'static str> {
    entity
        .parents()
        .find(|r| !r.target.is_shareable())
        .map(|r| r.field)
}

/// A record as stored, with its merge state: what a push loads.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRecord {
    pub scope: ScopeId,
    pub id: RecordId,
    pub entity: EntityType,
    /// Its version in its scope's counter.
    pub version: i64,
    pub state: RecordState,
    /// The user who created it (the record's `userId`).
    pub created_by: UserId,
    /// The size of its fields as stored when it was loaded: what loading,
    /// rewriting or deleting it costs (budgets of [`crate::PushLimits`]);
    /// 0 for a state this push made.
    pub bytes: usize,
}

impl StoredRecord {
    /// A record read without its content, for a cascade that deletes it:
    /// its fields are only its parent references, from the `root_id` and
    /// `parent_id` columns (what a tombstone keeps; see
    /// [`StoredRecord::root_id`]); `clocks` is the stored JSON, `bytes` the
    /// stored size of its fields.
    #[allow(clippy::too_many_arguments)]
    pub fn light(
        scope: ScopeId,
        id: RecordId,
        entity: EntityType,
        version: i64,
        root_id: Option<RecordId>,
        parent_id: Option<RecordId>,
        clocks: &str,
        created_by: UserId,
        bytes: usize,
    ) -> Result<StoredRecord, String> {
        let mut fields = serde_json::Map::new();
        for (field, value) in [
            (root_field(entity), root_id),
            (parent_field(entity), parent_id),
        ] {
            if let (Some(field), Some(v)) = (field, value) {
                fields.insert(field.into(), Value::String(v.to_string()));
            }
        }
        let data = Value::Object(fields).to_string();
        Ok(StoredRecord {
            scope,
            id,
            entity,
            version,
            state: merge::decode_state(&data, clocks)?,
            created_by,
            bytes,
        })
    }

    /// The id a reference field holds, if it holds one.
    pub fn reference(&self, field: &str) -> Option<RecordId> {
        self.state
            .fields
            .get(field)
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
    }

    /// The sharing root the record names: its first `x-parent` reference
    /// to a `shareable` collection (a category's or an item's `spaceId`).
    /// Stored as `root_id`. `None` for a root itself, for a personal record,
    /// and for a record that reaches its root only through a parent (a
    /// check item, through its note): such a record follows its parent.
    pub fn root_id(&self) -> Option<RecordId> {
        root_field(self.entity).and_then(|f| self.reference(f))
    }

    /// Its first `x-parent` reference to a collection that is not a root
    /// (an item's `categoryId`, a check item's `noteId`). Stored as
    /// `parent_id`: a cascade from that record finds it by this column.
    pub fn parent_id(&self) -> Option<RecordId> {
        parent_field(self.entity).and_then(|f| self.reference(f))
    }

    /// The records this one hangs under (a cascade from any reaches it).
    pub fn parents(&self) -> impl Iterator<Item = RecordId> + '_ {
        self.entity
            .parents()
            .filter_map(|r| self.reference(r.field))
    }

    pub fn is_deleted(&self) -> bool {
        self.state.deleted.is_some()
    }

    /// The row to store for this record at its current version.
    pub fn to_write(&self, server_time: Millis) -> RecordWrite {
        let last = self.state.last();
        let data = serde_json::to_string(&self.state.fields).expect("fields serialize");
        RecordWrite {
            scope: self.scope,
            created_by: self.created_by,
            id: self.id,
            entity: self.entity,
            version: self.version,
            root_id: self.root_id(),
            parent_id: self.parent_id(),
            clocks: merge::encode_clocks(&self.state),
            created_at: self.state.created_at(),
            updated_at: last.ts,
            deleted_at: self.state.deleted_at(),
            device_id: last.device.clone(),
            server_time,
            data,
        }
    }
}

/// One row of `records` to insert or replace, every column precomputed so a
/// backend only binds them.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordWrite {
    pub scope: ScopeId,
    pub id: RecordId,
    pub entity: EntityType,
    pub version: i64,
    /// See [`StoredRecord::root_id`].
    pub root_id: Option<RecordId>,
    /// See [`StoredRecord::parent_id`].
    pub parent_id: Option<RecordId>,
    /// JSON object of the entity's fields.
    pub data: String,
    /// JSON of the version that last wrote each field (see `merge`).
    pub clocks: String,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub deleted_at: Option<Millis>,
    pub device_id: String,
    /// The server's clock when this version was written.
    pub server_time: Millis,
    pub created_by: UserId,
}

impl RecordWrite {
    /// The record as a pull would read it back.
    pub fn to_pulled(&self) -> PulledRecord {
        PulledRecord {
            id: self.id,
            entity: self.entity,
            version: self.version,
            data: self.data.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            deleted_at: self.deleted_at,
            device_id: self.device_id.clone(),
            created_by: self.created_by,
        }
    }
}

/// A record as a pull returns it: what the response needs, nothing more.
#[derive(Clone, Debug, PartialEq)]
pub struct PulledRecord {
    pub id: RecordId,
    pub entity: EntityType,
    pub version: i64,
    /// JSON object of the entity's fields, copied to the response as text.
    pub data: String,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub deleted_at: Option<Millis>,
    pub device_id: String,
    pub created_by: UserId,
}

impl PulledRecord {
    /// The server-owned fields a response writes beside `data`.
    pub fn meta(&self) -> tidesync_protocol::sync::RecordMeta<'_> {
        tidesync_protocol::sync::RecordMeta {
            id: self.id,
            user_id: self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
            deleted_at: self.deleted_at,
            device_id: &self.device_id,
        }
    }

    /// The record as a member reads it: in a shared scope, `deviceId` is
    /// empty, since device labels ("Ada's iPhone") are private to the user
    /// who names their devices.
    pub fn as_read_in(mut self, shared: bool) -> PulledRecord {
        if shared {
            self.device_id.clear();
        }
        self
    }

    /// What this record costs a page: its JSON text and its metadata.
    pub fn size(&self) -> usize {
        self.data.len() + self.device_id.len() + RECORD_OVERHEAD
    }
}

/// Bytes a record's metadata and field names add in a response.
pub const RECORD_OVERHEAD: usize = 256;
