//! Request decoding and validation of `POST /api/sync` bodies.
//!
//! Bytes -> `parse_request` (as the server reads them); then the invariants every valid
//! change must satisfy are checked again from the outside, and the cursor
//! encoding is checked to round-trip.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tidesync_protocol::cursor::{self, CursorStart};
use tidesync_protocol::sync::{self, ChangeInput, MAX_DEVICE_ID, MAX_OPERATION_ID};

/// The rule for client-chosen keys: 1..=max characters, no control character.
fn assert_client_key(what: &str, s: &str, max: usize) {
    let n = s.chars().count();
    assert!(
        (1..=max).contains(&n),
        "{what} of {n} characters accepted: {s:?}"
    );
    assert!(
        !s.chars().any(char::is_control),
        "{what} with a control character accepted: {s:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = sync::parse_request(data, 1000) {
        assert_client_key("request deviceId", &req.device_id, MAX_DEVICE_ID);
        assert!(
            (1..=sync::MAX_LIMIT).contains(&req.limit),
            "limit {} accepted",
            req.limit
        );
        assert!(req.changes.len() <= 1000);
        for input in &req.changes {
            let ChangeInput::Valid(change) = input else {
                continue;
            };
            for key in change.data.fields.keys() {
                assert!(
                    change.entity.field(key).is_some(),
                    "{:?} change stores unknown field {key:?}",
                    change.entity
                );
            }
            assert_client_key("operationId", &change.operation_id, MAX_OPERATION_ID);
            assert_client_key("change deviceId", &change.device_id, MAX_DEVICE_ID);
        }
    }

    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let field = value.get("lastSyncTimestamp");
    if let Ok(CursorStart::Version(n)) = cursor::parse(field) {
        let encoded = cursor::encode(n);
        assert_eq!(
            cursor::parse_str(&encoded),
            Ok(CursorStart::Version(n)),
            "cursor {n} encoded as {encoded:?} does not parse back"
        );
    }
});
