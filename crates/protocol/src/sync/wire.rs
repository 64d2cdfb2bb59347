//! Typed request bodies, as a client writes them. The server does not
//! deserialize through these (it parses leniently, so that one bad change
//! gets its own ack instead of failing the request; see `request.rs`), but
//! both sides agree on the shape here.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::entity::EntityType;
use crate::ids::RecordId;
use crate::merge::OpKind;

/// The body of `POST /api/sync`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncBody {
    /// Required: 1 to 128 characters, no control characters.
    #[schema(min_length = 1, max_length = 128)]
    pub device_id: String,
    /// The `syncTimestamp` of the previous answer; absent or `null`: from
    /// scratch. Older clients may send a date instead: an ISO-8601 date-time
    /// with offset (years 0000 to 9999) or a JSON integer of epoch
    /// milliseconds from 0 (1970) to 253402300799999 (9999-12-31); anything
    /// else is 400 `invalid_cursor`.
    #[schema(value_type = Option<String>)]
    pub last_sync_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<ChangeBody>,
    /// Records per page, 1 to 5000; absent or `null`: 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 5000)]
    pub limit: Option<usize>,
    /// Long-poll: with nothing to return, wait up to this many seconds
    /// (0 to 60) for a change; absent, `null` or 0: answer at once. If the
    /// token is revoked meanwhile (logout, password change, account
    /// deletion), the answer is `401 unauthorized`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 60)]
    pub wait_seconds: Option<u64>,
}

/// One change of a [`SyncBody`].
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangeBody {
    /// The client's key of this change, 1 to 128 characters without
    /// control characters: a retry with the same one answers `duplicate`.
    #[schema(min_length = 1, max_length = 128)]
    pub operation_id: String,
    pub id: RecordId,
    pub entity_type: EntityType,
    pub operation: OpKind,
    /// The record's fields (required for create and update; ignored for
    /// delete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub data: Option<Map<String, Value>>,
    /// When the client made the change: an ISO-8601 date-time with offset
    /// (years 0000 to 9999), or, sent as a JSON integer, epoch milliseconds
    /// from 0 to 253402300799999; absent or `null`: the server's time on
    /// arrival.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// As the body's `deviceId`; absent or `null`: the body's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 128)]
    pub device_id: Option<String>,
}

impl ChangeBody {
    pub fn new(
        operation_id: impl Into<String>,
        entity_type: EntityType,
        operation: OpKind,
        id: RecordId,
        data: Option<Map<String, Value>>,
    ) -> Self {
        ChangeBody {
            operation_id: operation_id.into(),
            id,
            entity_type,
            operation,
            data,
            timestamp: None,
            device_id: None,
        }
    }

    pub fn at(mut self, timestamp: impl Into<String>) -> Self {
        self.timestamp = Some(timestamp.into());
        self
    }

    pub fn by(mut self, device_id: impl Into<String>) -> Self {
        self.device_id = Some(device_id.into());
        self
    }
}

/// `data` of `POST /api/sync/stream-ticket`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamTicket {
    pub ticket: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

/// The `data` of an event-stream `change` event.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangeEvent {
    pub sync_timestamp: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::{parse_request, ChangeInput};
    use serde_json::json;

    #[test]
    fn a_typed_body_parses_on_the_server() {
        let id: RecordId = "550e8400-e29b-41d4-a716-446655440000".parse().unwrap();
        let body = SyncBody {
            device_id: "d1".into(),
            last_sync_timestamp: None,
            changes: vec![ChangeBody::new(
                "op-1",
                EntityType::Space,
                OpKind::Create,
                id,
                json!({"name": "Home"}).as_object().cloned(),
            )
            .at("2025-01-01T00:00:00.000Z")],
            limit: Some(10),
            wait_seconds: None,
        };
        let bytes = serde_json::to_vec(&body).unwrap();
        let req = parse_request(&bytes, 100).unwrap();
        assert_eq!(req.limit, 10);
        match &req.changes[0] {
            ChangeInput::Valid(c) => {
                assert_eq!(c.id, id);
                assert_eq!(c.device_id, "d1");
            }
            other => panic!("{other:?}"),
        }
    }
}
