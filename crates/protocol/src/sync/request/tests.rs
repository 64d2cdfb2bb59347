use super::*;
use crate::sync::OpErrorCode;
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

fn parse(v: Value, max: usize) -> Result<SyncRequest, RequestError> {
    parse_request(v.to_string().as_bytes(), max)
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
    assert!(
        invalid(with("timestamp", json!("0000-01-01T00:00:00+23:59")))
            .message
            .contains("0000 to 9999")
    );
    assert!(invalid(with("timestamp", json!(253_402_300_800_000i64)))
        .message
        .contains("timestamp"));
    // A number would be cast to a string (Mongoose); an array is not.
    assert!(invalid(with("data", json!({"name": [3]})))
        .message
        .contains("name"));
    assert_eq!(invalid(json!("nope")).code, OpErrorCode::ValidationFailed);
}

#[test]
fn request_level_errors() {
    assert!(matches!(
        parse(json!([]), 10),
        Err(RequestError::Validation(_))
    ));
    assert!(matches!(
        parse(json!({}), 10),
        Err(RequestError::Validation(_))
    ));
    assert!(matches!(
        parse_request(b"{\"deviceId\": ", 10),
        Err(RequestError::Malformed(_))
    ));
    assert!(matches!(
        parse(json!({"deviceId":"d","lastSyncTimestamp":"garbage"}), 10),
        Err(RequestError::InvalidCursor(_))
    ));
    assert!(matches!(
        parse(json!({"deviceId":"d","limit":-1}), 10),
        Err(RequestError::Validation(_))
    ));
    assert!(matches!(
        parse(json!({"deviceId":"d","changes":{"a":1}}), 10),
        Err(RequestError::Validation(m)) if m.contains("changes")
    ));
    assert!(matches!(
        parse(json!({"deviceId":"d","changes":vec![json!({}); 11]}), 10),
        Err(RequestError::TooManyChanges(10))
    ));
    let r = parse(json!({"deviceId":"d","changes":[{}, 5, null]}), 10).unwrap();
    assert_eq!(r.changes.len(), 3);
    assert!(r
        .changes
        .iter()
        .all(|c| matches!(c, ChangeInput::Invalid { .. })));
    assert_eq!(r.limit, DEFAULT_LIMIT);
    let r = parse(
        json!({"deviceId":"d","changes":null,"limit":null,"waitSeconds":null}),
        10,
    )
    .unwrap();
    assert!(r.changes.is_empty());
    assert_eq!(r.wait_seconds, 0);
}
