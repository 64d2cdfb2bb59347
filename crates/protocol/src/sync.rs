//! `POST /api/sync` and `GET /api/sync/initial`: request parsing with per-op
//! errors, acknowledgements, and the record shape of responses.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::cursor::{self, CursorStart};
use crate::entity::{parse_uuid, validate_data, EntityType, ValidData};
use crate::merge::OpKind;
use crate::time::{parse_iso, to_iso, Millis};

pub const DEFAULT_LIMIT: usize = 1_000;
pub const MAX_LIMIT: usize = 5_000;
pub const MAX_OPERATION_ID: usize = 128;
pub const MAX_DEVICE_ID: usize = 128;

/// One change after validation.
#[derive(Clone, Debug)]
pub struct Change {
    pub operation_id: String,
    pub id: uuid::Uuid,
    pub entity: EntityType,
    pub op: OpKind,
    pub data: ValidData,
    /// The client's time of the operation (unclamped); `None` = not sent.
    pub timestamp: Option<Millis>,
    pub device_id: String,
}

/// A change as parsed: valid, or rejected with an error for its ack.
#[derive(Clone, Debug)]
pub enum ChangeInput {
    Valid(Change),
    Invalid {
        operation_id: Option<String>,
        id: Option<String>,
        error: OpError,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpError {
    pub code: String,
    pub message: String,
}

impl OpError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        OpError {
            code: code.into(),
            message: message.into(),
        }
    }
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new("validation_failed", message)
    }
}

#[derive(Clone, Debug)]
pub struct SyncRequest {
    pub device_id: String,
    pub cursor: CursorStart,
    pub changes: Vec<ChangeInput>,
    pub limit: usize,
    /// Long-poll: with nothing new to return, wait up to this long for a change.
    pub wait_seconds: u64,
}

pub const MAX_WAIT_SECONDS: u64 = 60;

/// Errors that reject the whole request (nothing is applied).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestError {
    Validation(String),
    InvalidCursor(String),
    TooManyChanges(usize),
}

/// Parses `limit` (absent: the default).
pub fn parse_limit(v: Option<&Value>) -> Result<usize, RequestError> {
    match v {
        None | Some(Value::Null) => Ok(DEFAULT_LIMIT),
        Some(v) => match v.as_u64() {
            Some(n) if (1..=MAX_LIMIT as u64).contains(&n) => Ok(n as usize),
            _ => Err(RequestError::Validation(format!(
                "limit must be an integer from 1 to {MAX_LIMIT}"
            ))),
        },
    }
}

/// A client-chosen key (device or operation id): non-empty, bounded, and
/// free of control characters (PostgreSQL text cannot even hold NUL).
fn is_client_key(s: &str, max: usize) -> bool {
    !s.is_empty() && s.chars().count() <= max && !s.chars().any(char::is_control)
}

fn device_id(v: Option<&Value>, field: &str) -> Result<Option<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if is_client_key(s, MAX_DEVICE_ID) => Ok(Some(s.clone())),
        Some(_) => Err(format!(
            "{field} must be a non-empty string of at most {MAX_DEVICE_ID} characters, without control characters"
        )),
    }
}

pub fn parse_request(body: &Value, max_changes: usize) -> Result<SyncRequest, RequestError> {
    let obj = body
        .as_object()
        .ok_or_else(|| RequestError::Validation("the body must be a JSON object".into()))?;
    let device_id = device_id(obj.get("deviceId"), "deviceId")
        .map_err(RequestError::Validation)?
        .ok_or_else(|| RequestError::Validation("deviceId is required".into()))?;
    let cursor = cursor::parse(obj.get("lastSyncTimestamp"))
        .map_err(|e| RequestError::InvalidCursor(e.0))?;
    let limit = parse_limit(obj.get("limit"))?;
    let wait_seconds = match obj.get("waitSeconds") {
        None | Some(Value::Null) => 0,
        Some(v) => v
            .as_u64()
            .filter(|n| *n <= MAX_WAIT_SECONDS)
            .ok_or_else(|| {
                RequestError::Validation(format!(
                    "waitSeconds must be an integer from 0 to {MAX_WAIT_SECONDS}"
                ))
            })?,
    };
    let raw_changes = match obj.get("changes") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(a)) => a.as_slice(),
        Some(_) => return Err(RequestError::Validation("changes must be an array".into())),
    };
    if raw_changes.len() > max_changes {
        return Err(RequestError::TooManyChanges(max_changes));
    }
    let changes = raw_changes
        .iter()
        .map(|c| parse_change(c, &device_id))
        .collect();
    Ok(SyncRequest {
        device_id,
        cursor,
        changes,
        limit,
        wait_seconds,
    })
}

/// Validates one change. Never fails the request: a bad change becomes an
/// `Invalid` input that is acknowledged with its error.
pub fn parse_change(raw: &Value, request_device: &str) -> ChangeInput {
    let obj = raw.as_object();
    let operation_id = obj
        .and_then(|o| o.get("operationId"))
        .and_then(Value::as_str)
        .filter(|s| is_client_key(s, MAX_OPERATION_ID))
        .map(str::to_owned);
    // Echoed in the ack so the client can match it; never a control character.
    let id_str = obj
        .and_then(|o| o.get("id"))
        .and_then(Value::as_str)
        .map(|s| {
            s.chars()
                .filter(|c| !c.is_control())
                .take(64)
                .collect::<String>()
        });
    let invalid = |msg: String| ChangeInput::Invalid {
        operation_id: operation_id.clone(),
        id: id_str.clone(),
        error: OpError::validation(msg),
    };
    let Some(obj) = obj else {
        return invalid("each change must be an object".into());
    };
    if operation_id.is_none() {
        return invalid(format!(
            "operationId is required: a string of 1 to {MAX_OPERATION_ID} characters, without control characters"
        ));
    }
    let Some(id) = id_str.as_deref().and_then(parse_uuid) else {
        return invalid("id must be a UUID in canonical form".into());
    };
    let Some(entity) = obj
        .get("entityType")
        .and_then(Value::as_str)
        .and_then(EntityType::parse)
    else {
        return invalid("entityType must be space, category or item".into());
    };
    let op = match obj.get("operation").and_then(Value::as_str) {
        Some("create") => OpKind::Create,
        Some("update") => OpKind::Update,
        Some("delete") => OpKind::Delete,
        _ => return invalid("operation must be create, update or delete".into()),
    };
    let timestamp = match obj.get("timestamp") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match parse_iso(s) {
            Some(ms) => Some(ms),
            None => return invalid("timestamp must be an ISO-8601 date-time".into()),
        },
        Some(Value::Number(n)) => match n.as_i64() {
            Some(ms) if ms >= 0 => Some(ms),
            _ => return invalid("timestamp must be an ISO-8601 date-time".into()),
        },
        Some(_) => return invalid("timestamp must be an ISO-8601 date-time".into()),
    };
    let device_id = match device_id(obj.get("deviceId"), "deviceId") {
        Ok(d) => d.unwrap_or_else(|| request_device.to_owned()),
        Err(m) => return invalid(m),
    };
    let empty = Map::new();
    let data = match (obj.get("data"), op) {
        (Some(Value::Object(m)), _) => m,
        (None | Some(Value::Null), OpKind::Delete) => &empty,
        (None | Some(Value::Null), _) => return invalid("data must be an object".into()),
        (Some(_), _) => return invalid("data must be an object".into()),
    };
    let data = if op == OpKind::Delete {
        // A delete carries no fields; anything sent is ignored.
        ValidData {
            fields: Default::default(),
            ignored: data.keys().cloned().collect(),
        }
    } else {
        match validate_data(entity, data, op == OpKind::Create) {
            Ok(d) => d,
            Err(e) => return invalid(e.0),
        }
    };
    ChangeInput::Valid(Change {
        operation_id: operation_id.unwrap_or_default(),
        id,
        entity,
        op,
        data,
        timestamp,
        device_id,
    })
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The answer for one change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// Records as written by [`write_record`], kept as JSON text so a pull never
/// builds a tree of values for them.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ServerUpdates {
    pub spaces: Vec<Box<RawValue>>,
    pub categories: Vec<Box<RawValue>>,
    pub items: Vec<Box<RawValue>>,
}

impl ServerUpdates {
    pub fn push(&mut self, entity: EntityType, record: Box<RawValue>) {
        match entity {
            EntityType::Space => self.spaces.push(record),
            EntityType::Category => self.categories.push(record),
            EntityType::Item => self.items.push(record),
        }
    }

    pub fn len(&self) -> usize {
        self.spaces.len() + self.categories.len() + self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncResponse {
    pub acknowledged: Vec<Ack>,
    pub server_updates: ServerUpdates,
    pub sync_timestamp: String,
    pub has_more: bool,
}

/// The metadata every record carries.
pub struct RecordMeta<'a> {
    pub id: uuid::Uuid,
    pub user_id: uuid::Uuid,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub deleted_at: Option<Millis>,
    pub device_id: &'a str,
}

/// A record as responses show it: camelCase, every model field present
/// (`null` when never set), plus `id`, `userId`, `createdAt`, `updatedAt`,
/// `deletedAt` and `deviceId`. `data` is the stored JSON object of fields;
/// its values are copied through as text, never parsed into values.
pub fn write_record(
    entity: EntityType,
    meta: &RecordMeta<'_>,
    data: &str,
) -> Result<Box<RawValue>, serde_json::Error> {
    let fields: HashMap<&str, &RawValue> = serde_json::from_str(data)?;
    let mut out = String::with_capacity(data.len() + 256);
    out.push('{');
    for spec in entity.fields() {
        // Field names are plain identifiers: nothing to escape.
        out.push('"');
        out.push_str(spec.name);
        out.push_str("\":");
        out.push_str(fields.get(spec.name).map_or("null", |v| v.get()));
        out.push(',');
    }
    let _ = write!(
        out,
        r#""id":"{}","userId":"{}","createdAt":"{}","updatedAt":"{}","deletedAt":"#,
        meta.id.hyphenated(),
        meta.user_id.hyphenated(),
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
    use serde_json::json;

    fn valid(v: Value) -> Change {
        match parse_change(&v, "dev-1") {
            ChangeInput::Valid(c) => c,
            ChangeInput::Invalid { error, .. } => panic!("{v}: {error:?}"),
        }
    }

    fn invalid(v: Value) -> OpError {
        match parse_change(&v, "dev-1") {
            ChangeInput::Valid(c) => panic!("{v} accepted: {c:?}"),
            ChangeInput::Invalid { error, .. } => error,
        }
    }

    #[test]
    fn the_original_clients_change_parses() {
        let c = valid(json!({
            "operationId": "op-1735689600000-0.123", "id": "550e8400-e29b-41d4-a716-446655440000",
            "entityType": "item", "operation": "create",
            "data": {"title": "Watch Inception", "type": "movie", "movieId": "27205", "isCompleted": false},
            "timestamp": "2025-01-01T00:00:00.000Z", "deviceId": "device-001"
        }));
        assert_eq!(c.device_id, "device-001");
        assert_eq!(c.timestamp, Some(1_735_689_600_000));
        assert_eq!(c.data.fields.len(), 4);
    }

    #[test]
    fn bad_changes_name_the_problem() {
        let base = json!({"operationId":"o","id":"550e8400-e29b-41d4-a716-446655440000",
                          "entityType":"space","operation":"create","data":{"name":"x"}});
        let with = |k: &str, v: Value| {
            let mut b = base.clone();
            b[k] = v;
            b
        };
        assert!(invalid(with("id", json!("123"))).message.contains("UUID"));
        assert!(invalid(with("entityType", json!("note")))
            .message
            .contains("entityType"));
        assert!(invalid(with("operation", json!("upsert")))
            .message
            .contains("operation"));
        assert!(invalid(with("operationId", json!("")))
            .message
            .contains("operationId"));
        assert!(invalid(with("operationId", json!("x".repeat(129))))
            .message
            .contains("operationId"));
        assert!(invalid(with("data", json!([1]))).message.contains("data"));
        assert!(invalid(with("operationId", json!("op\u{0}1")))
            .message
            .contains("operationId"));
        assert!(invalid(with("deviceId", json!("d\u{0}")))
            .message
            .contains("deviceId"));
        assert!(invalid(with("timestamp", json!("soon")))
            .message
            .contains("timestamp"));
        assert!(invalid(with("data", json!({"name": 3})))
            .message
            .contains("name"));
        assert_eq!(invalid(json!("nope")).code, "validation_failed");
    }

    #[test]
    fn records_are_written_with_every_field() {
        let meta = RecordMeta {
            id: uuid::Uuid::nil(),
            user_id: uuid::Uuid::nil(),
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
    fn request_level_errors() {
        assert!(matches!(
            parse_request(&json!([]), 10),
            Err(RequestError::Validation(_))
        ));
        assert!(matches!(
            parse_request(&json!({}), 10),
            Err(RequestError::Validation(_))
        ));
        assert!(matches!(
            parse_request(&json!({"deviceId":"d","lastSyncTimestamp":"garbage"}), 10),
            Err(RequestError::InvalidCursor(_))
        ));
        assert!(matches!(
            parse_request(&json!({"deviceId":"d","limit":-1}), 10),
            Err(RequestError::Validation(_))
        ));
        assert!(matches!(
            parse_request(&json!({"deviceId":"d","changes":vec![json!({}); 11]}), 10),
            Err(RequestError::TooManyChanges(10))
        ));
        let r = parse_request(&json!({"deviceId":"d","changes":[{}]}), 10).unwrap();
        assert!(matches!(r.changes[0], ChangeInput::Invalid { .. }));
        assert_eq!(r.limit, DEFAULT_LIMIT);
    }
}
