//! Parsing a sync request: request-level errors reject it whole; a bad
//! change never does, it becomes an [`ChangeInput::Invalid`] for its ack.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::cursor::{self, CursorStart};
use crate::entity::{parse_uuid, validate_data, EntityType, Model, ValidData};
use crate::ids::RecordId;
use crate::merge::OpKind;
use crate::time::{epoch_millis, parse_iso, Millis};

use super::response::OpError;

pub const DEFAULT_LIMIT: usize = 1_000;
pub const MAX_LIMIT: usize = 5_000;
pub const MAX_OPERATION_ID: usize = 128;
pub const MAX_DEVICE_ID: usize = 128;
pub const MAX_WAIT_SECONDS: u64 = 60;

/// One change after validation.
#[derive(Clone, Debug)]
pub struct Change {
    pub operation_id: String,
    pub id: RecordId,
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

impl ChangeInput {
    pub fn operation_id(&self) -> Option<&str> {
        match self {
            ChangeInput::Valid(c) => Some(&c.operation_id),
            ChangeInput::Invalid { operation_id, .. } => operation_id.as_deref(),
        }
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
    /// Bytes of JSON the changes took on the wire: what holding them costs.
    pub changes_bytes: usize,
}

/// Errors that reject the whole request (nothing is applied).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// Not JSON at all.
    Malformed(String),
    Validation(String),
    InvalidCursor(String),
    TooManyChanges(usize),
}

/// Parses `limit` (absent or `null`: the default).
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

/// Parses `waitSeconds` (absent or `null`: no wait).
pub fn parse_wait(v: Option<&Value>) -> Result<u64, RequestError> {
    match v {
        None | Some(Value::Null) => Ok(0),
        Some(v) => v
            .as_u64()
            .filter(|n| *n <= MAX_WAIT_SECONDS)
            .ok_or_else(|| {
                RequestError::Validation(format!(
                    "waitSeconds must be an integer from 0 to {MAX_WAIT_SECONDS}"
                ))
            }),
    }
}

/// A client-chosen key (device or operation id): non-empty, bounded, and
/// free of control characters (PostgreSQL text cannot even hold NUL).
pub fn is_client_key(s: &str, max: usize) -> bool {
    !s.is_empty() && s.chars().count() <= max && !s.chars().any(char::is_control)
}

/// A device id as the stream's query string and the sync body carry it.
pub fn parse_device_id(s: &str) -> Result<String, RequestError> {
    if is_client_key(s, MAX_DEVICE_ID) {
        Ok(s.to_owned())
    } else {
        Err(RequestError::Validation(device_id_rule("deviceId")))
    }
}

fn device_id_rule(field: &str) -> String {
    format!(
        "{field} must be a non-empty string of at most {MAX_DEVICE_ID} characters, without control characters"
    )
}

fn device_id(v: Option<&Value>, field: &str) -> Result<Option<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if is_client_key(s, MAX_DEVICE_ID) => Ok(Some(s.clone())),
        Some(_) => Err(device_id_rule(field)),
    }
}

/// The top level of the body. Small fields are read as values; `changes`
/// stays raw so each change is parsed exactly once, by [`parse_change`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    #[serde(default)]
    device_id: Option<Value>,
    #[serde(default)]
    last_sync_timestamp: Option<Value>,
    #[serde(default, borrow)]
    changes: Option<&'a RawValue>,
    #[serde(default)]
    limit: Option<Value>,
    #[serde(default)]
    wait_seconds: Option<Value>,
}

/// Parses the body of `POST /api/sync` from its bytes, for the built-in model.
pub fn parse_request(body: &[u8], max_changes: usize) -> Result<SyncRequest, RequestError> {
    parse_request_in(Model::builtin(), body, max_changes)
}

/// Parses the body of `POST /api/sync` from its bytes; each change's
/// `entityType` names a collection of `model`.
pub fn parse_request_in(
    model: Model,
    body: &[u8],
    max_changes: usize,
) -> Result<SyncRequest, RequestError> {
    let body: Body<'_> = serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            RequestError::Validation(format!("the body must be a JSON object ({e})"))
        }
        _ => RequestError::Malformed(format!("malformed JSON: {e}")),
    })?;
    let device_id = device_id(body.device_id.as_ref(), "deviceId")
        .map_err(RequestError::Validation)?
        .ok_or_else(|| RequestError::Validation("deviceId is required".into()))?;
    let cursor = cursor::parse(body.last_sync_timestamp.as_ref())
        .map_err(|e| RequestError::InvalidCursor(e.0))?;
    let limit = parse_limit(body.limit.as_ref())?;
    let wait_seconds = parse_wait(body.wait_seconds.as_ref())?;
    let raw_changes: Vec<&RawValue> = match body.changes {
        None => vec![],
        Some(raw) if raw.get() == "null" => vec![],
        Some(raw) => serde_json::from_str(raw.get())
            .map_err(|_| RequestError::Validation("changes must be an array".into()))?,
    };
    if raw_changes.len() > max_changes {
        return Err(RequestError::TooManyChanges(max_changes));
    }
    let changes_bytes = raw_changes.iter().map(|r| r.get().len()).sum();
    let changes = raw_changes
        .iter()
        .map(|raw| {
            // Already known to be valid JSON: only its shape can be wrong.
            let v: Value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
            parse_change_in(model, &v, &device_id)
        })
        .collect();
    Ok(SyncRequest {
        device_id,
        cursor,
        changes,
        limit,
        wait_seconds,
        changes_bytes,
    })
}

/// Validates one change of the built-in model (see [`parse_change_in`]).
pub fn parse_change(raw: &Value, request_device: &str) -> ChangeInput {
    parse_change_in(Model::builtin(), raw, request_device)
}

/// Validates one change against `model`. Never fails the request: a bad
/// change becomes an `Invalid` input that is acknowledged with its error.
pub fn parse_change_in(model: Model, raw: &Value, request_device: &str) -> ChangeInput {
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
    let Some(operation_id) = operation_id.clone() else {
        return invalid(format!(
            "operationId is required: a string of 1 to {MAX_OPERATION_ID} characters, without control characters"
        ));
    };
    let Some(id) = id_str.as_deref().and_then(parse_uuid) else {
        return invalid("id must be a UUID in canonical form".into());
    };
    let Some(entity) = obj
        .get("entityType")
        .and_then(Value::as_str)
        .and_then(|name| model.collection(name))
    else {
        return invalid(format!("entityType must be {}", model.choices()));
    };
    let Some(op) = obj
        .get("operation")
        .and_then(Value::as_str)
        .and_then(OpKind::parse)
    else {
        return invalid("operation must be create, update or delete".into());
    };
    let timestamp_rule = "timestamp must be an ISO-8601 date-time with offset (years 0000 to 9999) or epoch milliseconds";
    let timestamp = match obj.get("timestamp") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match parse_iso(s) {
            Some(ms) => Some(ms),
            None => return invalid(timestamp_rule.into()),
        },
        Some(Value::Number(n)) => match n.as_i64().and_then(epoch_millis) {
            Some(ms) => Some(ms),
            None => return invalid(timestamp_rule.into()),
        },
        Some(_) => return invalid(timestamp_rule.into()),
    };
    let device_id = match device_id(obj.get("deviceId"), "deviceId") {
        Ok(d) => d.unwrap_or_else(|| request_device.to_owned()),
        Err(m) => return invalid(m),
    };
    let empty = Map::new();
    let data = match (obj.get("data"), op) {
        (Some(Value::Object(m)), _) => m,
        (None | Some(Value::Null), OpKind::Delete) => &empty,
        (_, _) => return invalid("data must be an object".into()),
    };
    let data = if op == OpKind::Delete {
        // A delete carries no fields; anything sent is ignored.
        ValidData {
            fields: Default::default(),
            ignored: data.keys().cloned().collect(),
            coerced: vec![],
        }
    } else {
        match validate_data(entity, data, op == OpKind::Create) {
            Ok(d) => d,
            Err(e) => return invalid(e.0),
        }
    };
    ChangeInput::Valid(Change {
        operation_id,
        id: RecordId::from_uuid(id),
        entity,
        op,
        data,
        timestamp,
        device_id,
    })
}

#[cfg(test)]
mod tests;
