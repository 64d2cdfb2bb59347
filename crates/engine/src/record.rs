//! Records as the engine sees them: loaded with their merge state, written
//! back as rows, and read by pulls as JSON text.

use serde_json::Value;
use tidesync_protocol::entity::EntityType;
use tidesync_protocol::merge::{self, RecordState};
use tidesync_protocol::time::Millis;
use tidesync_protocol::{RecordId, ScopeId, UserId};

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
    /// its fields are only its references, from the `space_id` and
    /// `category_id` columns (what a tombstone keeps); `clocks` is the
    /// stored JSON, `bytes` the stored size of its fields.
    #[allow(clippy::too_many_arguments)]
    pub fn light(
        scope: ScopeId,
        id: RecordId,
        entity: EntityType,
        version: i64,
        space_id: Option<RecordId>,
        category_id: Option<RecordId>,
        clocks: &str,
        created_by: UserId,
        bytes: usize,
    ) -> Result<StoredRecord, String> {
        let mut fields = serde_json::Map::new();
        for (name, value) in [("spaceId", space_id), ("categoryId", category_id)] {
            if let Some(v) = value.filter(|_| entity.is_reference(name)) {
                fields.insert(name.into(), Value::String(v.to_string()));
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

    fn reference(&self, field: &str) -> Option<RecordId> {
        self.state
            .fields
            .get(field)
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
    }

    pub fn space_id(&self) -> Option<RecordId> {
        self.reference("spaceId")
    }

    pub fn category_id(&self) -> Option<RecordId> {
        self.reference("categoryId")
    }

    /// The records this one hangs under (a cascade from either reaches it).
    pub fn parents(&self) -> impl Iterator<Item = RecordId> {
        self.space_id().into_iter().chain(self.category_id())
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
            space_id: self.space_id(),
            category_id: self.category_id(),
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
    pub space_id: Option<RecordId>,
    pub category_id: Option<RecordId>,
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
