//! Engine tests: every rule, through an in-memory backend that drives the
//! engine exactly as the real ones do (need → load → feed, plan → write →
//! page → respond), with no database.

mod mem;
mod paging;
mod props;
mod rules;
mod runs;
mod sharing;
mod steps;

use serde_json::{json, Value};
use tidesync_protocol::cursor::CursorStart;
use tidesync_protocol::sync::{parse_change, ChangeInput};
use tidesync_protocol::RecordId;

/// `2025-01-01T00:00:00.000Z` plus `secs` seconds.
pub fn at(secs: i64) -> i64 {
    1_735_689_600_000 + secs * 1000
}

pub fn id(n: u128) -> RecordId {
    RecordId::from_uuid(tidesync_protocol::uuid::Uuid::from_u128(n))
}

/// A change as a client sends it, parsed as the server parses it.
pub fn change(
    op: &str,
    n: u128,
    entity: &str,
    operation: &str,
    data: Value,
    secs: i64,
) -> ChangeInput {
    change_by(op, n, entity, operation, data, secs, "dev-a")
}

pub fn change_by(
    op: &str,
    n: u128,
    entity: &str,
    operation: &str,
    data: Value,
    secs: i64,
    device: &str,
) -> ChangeInput {
    let raw = json!({
        "operationId": op, "id": id(n).to_string(), "entityType": entity,
        "operation": operation, "data": data,
        "timestamp": tidesync_protocol::time::to_iso(at(secs)), "deviceId": device,
    });
    parse_change(&raw, device)
}

pub fn version_cursor(v: i64) -> CursorStart {
    CursorStart::personal(v)
}
