//! What a sync answers: one ack per change, and records as JSON text.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::entity::{EntityType, Model};
use crate::ids::{RecordId, UserId};
use crate::time::{to_iso, Millis};

/// Why one change of a batch was rejected (permanently).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpErrorCode {
    ValidationFailed,
    NotFound,
    UnknownReference,
    /// A write into a shared space the user may not write to: a viewer, or
    /// a former member.
    Forbidden,
    /// A code this client version does not know (a newer server).
    #[serde(other)]
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OpError {
    pub code: OpErrorCode,
    pub message: String,
}

impl OpErrorCode {
    /// Every code the server sends (not `Unknown`, which only clients make).
    pub const ALL: &'static [OpErrorCode] = &[
        OpErrorCode::ValidationFailed,
        OpErrorCode::NotFound,
        OpErrorCode::UnknownReference,
        OpErrorCode::Forbidden,
    ];
}

// By hand from `ALL`: the derive would list `Unknown` (see ErrorCode).
impl utoipa::PartialSchema for OpErrorCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
        let names = Self::ALL.iter().map(|c| {
            serde_json::to_value(c)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        });
        let object = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(names))
            .description(Some(
                "Why one change of a batch was rejected (permanently).",
            ))
            .build();
        utoipa::openapi::RefOr::T(Schema::Object(object))
    }
}

impl ToSchema for OpErrorCode {}

impl OpError {
    pub fn new(code: OpErrorCode, message: impl Into<String>) -> Self {
        OpError {
            code,
            message: message.into(),
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(OpErrorCode::ValidationFailed, message)
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The answer for one change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ack {
    pub operation_id: Option<String>,
    pub id: Option<String>,
    pub success: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub duplicate: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub conflict: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<OpError>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored_fields: Vec<String>,
    /// Fields of `data` whose value was cast to the field's type before
    /// being stored (a number sent for a string field, `"true"` for a bool).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coerced_fields: Vec<String>,
}

impl Ack {
    pub fn applied(operation_id: &str, id: RecordId) -> Ack {
        Ack {
            operation_id: Some(operation_id.to_owned()),
            id: Some(id.to_string()),
            success: true,
            duplicate: false,
            conflict: false,
            error: None,
            ignored_fields: vec![],
            coerced_fields: vec![],
        }
    }

    pub fn rejected(operation_id: Option<String>, id: Option<String>, error: OpError) -> Ack {
        Ack {
            operation_id,
            id,
            success: false,
            duplicate: false,
            conflict: false,
            error: Some(error),
            ignored_fields: vec![],
            coerced_fields: vec![],
        }
    }
}

/// Records as written by [`write_record`], kept as JSON text so a pull never
/// builds a tree of values for them.
/// Each record is an object with every field of its entity type (`null`
/// when never set) plus `id`, `userId`, `createdAt`, `updatedAt`,
/// `deletedAt` (ISO-8601 or `null`) and `deviceId`; see docs/DATA_MODELS.md.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct ServerUpdates {
    #[schema(value_type = Vec<Object>)]
    pub spaces: Vec<Box<RawValue>>,
    #[schema(value_type = Vec<Object>)]
    pub categories: Vec<Box<RawValue>>,
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Box<RawValue>>,
}

impl ServerUpdates {
    pub fn push(&mut self, entity: EntityType, record: Box<RawValue>) {
        match entity.as_str() {
            "space" => self.spaces.push(record),
            "category" => self.categories.push(record),
            _ => self.items.push(record),
        }
    }

    pub fn len(&self) -> usize {
        self.spaces.len() + self.categories.len() + self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every record, spaces first (the order to apply them in).
    pub fn iter(&self) -> impl Iterator<Item = (EntityType, &RawValue)> {
        fn tagged(
            e: EntityType,
            v: &[Box<RawValue>],
        ) -> impl Iterator<Item = (EntityType, &RawValue)> {
            v.iter().map(move |r| (e, &**r))
        }
        tagged(EntityType::Space, &self.spaces)
            .chain(tagged(EntityType::Category, &self.categories))
            .chain(tagged(EntityType::Item, &self.items))
    }
}

/// `serverUpdates` as a server running `model` writes it: one array per
/// collection, named by its `plural`, parents first (for the built-in
/// exactly `spaces`, `categories`, `items`, which [`ServerUpdates`] reads).
#[derive(Debug)]
pub struct ModelUpdates {
    model: Model,
    /// By the collections' [`EntityType::index`].
    arrays: Vec<Vec<Box<RawValue>>>,
}

impl ModelUpdates {
    pub fn new(model: Model) -> ModelUpdates {
        ModelUpdates {
            model,
            arrays: model.collections().iter().map(|_| Vec::new()).collect(),
        }
    }

    /// Adds a record of `entity`, a collection of this model.
    pub fn push(&mut self, entity: EntityType, record: Box<RawValue>) {
        self.arrays[entity.index()].push(record);
    }

    pub fn len(&self) -> usize {
        self.arrays.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Serialize for ModelUpdates {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.arrays.len()))?;
        for (e, records) in self.model.collections().iter().zip(&self.arrays) {
            m.serialize_entry(e.plural(), records)?;
        }
        m.end()
    }
}

/// What the server writes for `POST /api/sync`: [`SyncResponse`] with the
/// arrays of its model.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncAnswer {
    pub acknowledged: Vec<Ack>,
    pub server_updates: ModelUpdates,
    pub sync_timestamp: String,
    pub has_more: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub removed_spaces: Vec<RecordId>,
}

/// What the server writes for `GET /api/sync/initial`: [`InitialPage`]
/// with the arrays of its model at top level.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InitialAnswer {
    #[serde(flatten)]
    pub updates: ModelUpdates,
    pub sync_timestamp: String,
    pub has_more: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub removed_spaces: Vec<RecordId>,
}

/// `data` of a `POST /api/sync` answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncResponse {
    pub acknowledged: Vec<Ack>,
    pub server_updates: ServerUpdates,
    /// The cursor: send it back as `lastSyncTimestamp`. Opaque.
    pub sync_timestamp: String,
    /// More records are waiting: pull again with this cursor at once.
    pub has_more: bool,
    /// Shared spaces the user no longer belongs to: delete the local copies
    /// of each space and of every category and item in it. Absent when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_spaces: Vec<RecordId>,
}

/// `data` of a `GET /api/sync/initial` page: the records at top level, as
/// the original API had them.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InitialPage {
    #[schema(value_type = Vec<Object>)]
    pub spaces: Vec<Box<RawValue>>,
    #[schema(value_type = Vec<Object>)]
    pub categories: Vec<Box<RawValue>>,
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Box<RawValue>>,
    /// The cursor: send it back as `lastSyncTimestamp`. Opaque.
    pub sync_timestamp: String,
    /// More records are waiting: pull again with this cursor at once.
    pub has_more: bool,
    /// As in [`SyncResponse`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_spaces: Vec<RecordId>,
}

/// The metadata every record carries.
pub struct RecordMeta<'a> {
    pub id: RecordId,
    pub user_id: UserId,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub deleted_at: Option<Millis>,
    pub device_id: &'a str,
}

/// A record as responses show it: camelCase, every model field present
/// (`null` when never set), plus `id`, `userId`, `createdAt`, `updatedAt`,
/// `deletedAt` and `deviceId`. `data` is the stored JSON object of fields;
/// its values are copied through as text, never parsed into values. A
/// tombstone shows only its references (the fields that place it): the
/// rest is `null`, also for a tombstone stored before deletes erased its
/// content.
pub fn write_record(
    entity: EntityType,
    meta: &RecordMeta<'_>,
    data: &str,
) -> Result<Box<RawValue>, serde_json::Error> {
    let fields: HashMap<&str, &RawValue> = serde_json::from_str(data)?;
    let mut out = String::with_capacity(data.len() + 256);
    out.push('{');
    let deleted = meta.deleted_at.is_some();
    for &name in entity.fields() {
        // Field names are plain identifiers: nothing to escape.
        out.push('"');
        out.push_str(name);
        out.push_str("\":");
        let shown = !deleted || entity.is_reference(name);
        let value = fields.get(name).filter(|_| shown);
        out.push_str(value.map_or("null", |v| v.get()));
        out.push(',');
    }
    let _ = write!(
        out,
        r#""id":"{}","userId":"{}","createdAt":"{}","updatedAt":"{}","deletedAt":"#,
        meta.id,
        meta.user_id,
        to_iso(meta.created_at),
        to_iso(meta.updated_at),
    );
    match meta.deleted_at {
        Some(t) => {
            let _ = write!(out, r#""{}""#, to_iso(t));
        }
        None => out.push_str("null"),
    }
    out.push_str(r#","deviceId":"#);
    out.push_str(&serde_json::to_string(meta.device_id)?);
    out.push('}');
    RawValue::from_string(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn records_are_written_with_every_field() {
        let meta = RecordMeta {
            id: RecordId::from_uuid(uuid::Uuid::nil()),
            user_id: UserId::from_uuid(uuid::Uuid::nil()),
            created_at: 0,
            updated_at: 1_000,
            deleted_at: None,
            device_id: "dev \"1\"",
        };
        let raw = write_record(
            EntityType::Space,
            &meta,
            r#"{"name":"Home \u00e9","order":2.5}"#,
        )
        .unwrap();
        let v: Value = serde_json::from_str(raw.get()).unwrap();
        assert_eq!(v["name"], json!("Home é"));
        assert_eq!(v["order"], json!(2.5));
        assert_eq!(v["color"], Value::Null);
        assert_eq!(v["deletedAt"], Value::Null);
        assert_eq!(v["updatedAt"], json!("1970-01-01T00:00:01.000Z"));
        assert_eq!(v["deviceId"], json!("dev \"1\""));
        assert_eq!(v.as_object().unwrap().len(), 5 + 6);
        assert!(write_record(EntityType::Space, &meta, "not json").is_err());
    }

    #[test]
    fn a_tombstone_is_written_without_its_content() {
        let meta = RecordMeta {
            id: RecordId::from_uuid(uuid::Uuid::nil()),
            user_id: UserId::from_uuid(uuid::Uuid::nil()),
            created_at: 0,
            updated_at: 1_000,
            deleted_at: Some(1_000),
            device_id: "d",
        };
        let space = uuid::Uuid::from_u128(7).to_string();
        let data = json!({"spaceId": space, "title": "surprise party", "notes": "for C"});
        let raw = write_record(EntityType::Item, &meta, &data.to_string()).unwrap();
        let v: Value = serde_json::from_str(raw.get()).unwrap();
        assert_eq!(v["spaceId"], json!(space));
        assert_eq!(v["title"], Value::Null);
        assert_eq!(v["notes"], Value::Null);
        assert_eq!(v["deletedAt"], json!("1970-01-01T00:00:01.000Z"));
    }

    #[test]
    fn op_error_codes_are_snake_case_and_tolerant() {
        let e = OpError::new(OpErrorCode::UnknownReference, "x");
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"code": "unknown_reference", "message": "x"})
        );
        let later: OpError =
            serde_json::from_value(json!({"code": "from_the_future", "message": "no"})).unwrap();
        assert_eq!(later.code, OpErrorCode::Unknown);
    }
}
