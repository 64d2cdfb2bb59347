//! The small builders tests share: changes, times, ids, records by id.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use tidesync_client::{ChangeBody, EntityType, OpKind, RecordId, ServerUpdates};

/// A change as clients send it, as JSON (so that tests can also send
/// changes no typed client would: wrong types, missing fields).
pub fn change(
    op_id: &str,
    id: &str,
    entity: &str,
    operation: &str,
    data: Value,
    timestamp: &str,
    device: &str,
) -> Value {
    json!({
        "operationId": op_id, "id": id, "entityType": entity, "operation": operation,
        "data": data, "timestamp": timestamp, "deviceId": device,
    })
}

/// The same as a typed [`ChangeBody`]; `data` must be an object or null.
pub fn typed_change(
    op_id: &str,
    id: &str,
    entity: EntityType,
    operation: OpKind,
    data: Value,
    timestamp: &str,
    device: &str,
) -> ChangeBody {
    let id: RecordId = id.parse().expect("a test record id is a UUID");
    let data = match data {
        Value::Null => None,
        Value::Object(m) => Some(m),
        other => panic!("data of a typed change must be an object or null, not {other}"),
    };
    ChangeBody::new(op_id, entity, operation, id, data)
        .at(timestamp)
        .by(device)
}

/// `2025-01-01T00:00:00.000Z` plus `secs` seconds: readable, ordered test times.
pub fn at(secs: i64) -> String {
    tidesync_protocol::time::to_iso(1_735_689_600_000 + secs * 1000)
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// All records of a sync response's `serverUpdates` (or an initial page), as
/// JSON, by id.
pub fn records_by_id(updates: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for kind in ["spaces", "categories", "items"] {
        for r in updates[kind].as_array().into_iter().flatten() {
            out.insert(r["id"].as_str().expect("record id").to_owned(), r.clone());
        }
    }
    out
}

/// Every record of typed updates, parsed, in the order sent (spaces first).
pub fn records(updates: &ServerUpdates) -> Vec<Value> {
    updates
        .iter()
        .map(|(_, raw)| serde_json::from_str(raw.get()).expect("a record is JSON"))
        .collect()
}

/// Typed updates parsed by id; a later copy of a record replaces an earlier one.
pub fn by_id(updates: &ServerUpdates) -> BTreeMap<String, Value> {
    records(updates)
        .into_iter()
        .map(|r| (r["id"].as_str().expect("record id").to_owned(), r))
        .collect()
}

pub fn is_deleted(rec: &Value) -> bool {
    !rec["deletedAt"].is_null()
}
