use super::*;
use serde_json::json;

fn obj(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[test]
fn create_requires_required_fields() {
    assert!(validate_data(EntityType::Space, &obj(json!({"color": "red"})), true).is_err());
    assert!(validate_data(EntityType::Space, &obj(json!({"color": "red"})), false).is_ok());
    let e = validate_data(EntityType::Category, &obj(json!({"name": "Movies"})), true).unwrap_err();
    assert!(e.0.contains("spaceId"), "{e:?}");
    assert!(validate_data(EntityType::Item, &obj(json!({"title": "  "})), true).is_err());
    assert!(validate_data(EntityType::Item, &obj(json!({"title": null})), false).is_err());
}

#[test]
fn unknown_and_server_fields_are_ignored_and_listed() {
    let v = validate_data(
        EntityType::Item,
        &obj(
            json!({"title": "Watch Inception", "movieId": "27205", "poster": "/x.jpg",
                    "rating": 8.8, "userId": "someone", "id": "x"}),
        ),
        true,
    )
    .unwrap();
    assert_eq!(v.fields.len(), 2);
    let mut ignored = v.ignored.clone();
    ignored.sort();
    assert_eq!(ignored, vec!["id", "poster", "rating", "userId"]);
}

#[test]
fn types_and_lengths_are_checked() {
    let bad = [
        json!({"title": {"text": "x"}}),
        json!({"title": ["x"]}),
        json!({"title": "x".repeat(TITLE_MAX + 1)}),
        json!({"isCompleted": "maybe"}),
        json!({"order": "first"}),
        json!({"tags": ["a", {}]}),
        json!({"tags": vec!["t"; TAGS_MAX + 1]}),
        json!({"completedAt": "last tuesday"}),
        json!({"categoryId": "not-a-uuid"}),
        json!({"categoryId": "{6ba7b810-9dad-11d1-80b4-00c04fd430c8}"}),
        json!({"priority": {"level": 1}}),
    ];
    for b in bad {
        assert!(
            validate_data(EntityType::Item, &obj(b.clone()), false).is_err(),
            "{b}"
        );
    }
    let v = validate_data(
        EntityType::Item,
        &obj(json!({"completedAt": "2025-01-01T02:00:00+02:00",
                    "categoryId": "6BA7B810-9DAD-11D1-80B4-00C04FD430C8",
                    "priority": "high", "tags": ["a"], "order": 1.5, "notes": null})),
        false,
    )
    .unwrap();
    assert_eq!(v.fields["completedAt"], json!("2025-01-01T00:00:00.000Z"));
    assert_eq!(
        v.fields["categoryId"],
        json!("6ba7b810-9dad-11d1-80b4-00c04fd430c8")
    );
    assert_eq!(v.fields["notes"], Value::Null);
}

#[test]
fn casts_are_stored_and_listed() {
    let v = validate_data(
        EntityType::Item,
        &obj(
            json!({"title": "Watch Inception", "movieId": 27205, "isCompleted": "true",
                    "order": "3", "completedAt": 1_735_689_600_000i64, "tags": [1, "a", true],
                    "bookId": "OL1W", "notes": null, "poster": 5}),
        ),
        true,
    )
    .unwrap();
    assert_eq!(v.fields["movieId"], json!("27205"));
    assert_eq!(v.fields["isCompleted"], json!(true));
    assert_eq!(v.fields["order"], json!(3));
    assert_eq!(v.fields["completedAt"], json!("2025-01-01T00:00:00.000Z"));
    assert_eq!(v.fields["tags"], json!(["1", "a", "true"]));
    // Sorted: data is a sorted map. Values sent in the field's type are not listed.
    assert_eq!(
        v.coerced,
        vec!["completedAt", "isCompleted", "movieId", "order", "tags"]
    );
    assert_eq!(v.ignored, vec!["poster"]);
    let plain = validate_data(
        EntityType::Space,
        &obj(json!({"name": "A", "order": 2})),
        true,
    )
    .unwrap();
    assert!(plain.coerced.is_empty());
}

#[test]
fn bounds_apply_to_the_cast_value() {
    // A single tag is wrapped into an array, then counted.
    let v = validate_data(EntityType::Item, &obj(json!({"tags": 7})), false).unwrap();
    assert_eq!(v.fields["tags"], json!(["7"]));
    assert_eq!(v.coerced, vec!["tags"]);
    let many: Vec<u32> = (0..=TAGS_MAX as u32).collect();
    assert!(validate_data(EntityType::Item, &obj(json!({"tags": many})), false).is_err());
    assert!(validate_data(EntityType::Item, &obj(json!({"tags": [null]})), false).is_err());
    assert!(validate_data(EntityType::Item, &obj(json!({"tags": [{}]})), false).is_err());
    // "" is null for a number or a date: fine to clear, and counted as cast.
    let v = validate_data(
        EntityType::Item,
        &obj(json!({"order": "", "completedAt": ""})),
        false,
    )
    .unwrap();
    assert_eq!(v.fields["order"], Value::Null);
    assert_eq!(v.fields["completedAt"], Value::Null);
    assert_eq!(v.coerced, vec!["completedAt", "order"]);
    // A required text field still must not be empty; a cast number is not.
    assert!(validate_data(EntityType::Space, &obj(json!({"name": ""})), true).is_err());
    let v = validate_data(EntityType::Space, &obj(json!({"name": 0})), true).unwrap();
    assert_eq!(v.fields["name"], json!("0"));
    // Dates outside years 0000-9999 stay refused, cast or not.
    assert!(validate_data(
        EntityType::Item,
        &obj(json!({"completedAt": 253_402_300_800_000i64})),
        false
    )
    .is_err());
}

#[test]
fn fields_the_original_does_not_cast_stay_strict() {
    for b in [
        // `type` is a closed vocabulary in the original (an enum).
        json!({"type": 5}),
        json!({"type": true}),
        // A ref is a UUID; no number or boolean casts to one.
        json!({"spaceId": 12}),
        json!({"categoryId": true}),
        // Number-or-label already takes numbers and strings as they are.
        json!({"priority": true}),
    ] {
        let e = validate_data(EntityType::Item, &obj(b.clone()), false).unwrap_err();
        assert!(
            e.0.starts_with(b.as_object().unwrap().keys().next().unwrap()),
            "{b}: {e:?}"
        );
    }
    let e =
        validate_data(EntityType::Item, &obj(json!({"movieId": {"id": 1}})), false).unwrap_err();
    assert_eq!(
        e.0,
        "movieId: must be a string (a number or a boolean is cast to one)"
    );
}

#[test]
fn uuid_must_be_canonical() {
    assert!(parse_uuid("550e8400-e29b-41d4-a716-446655440000").is_some());
    assert!(parse_uuid("550E8400-E29B-41D4-A716-446655440000").is_some());
    assert!(parse_uuid("550e8400e29b41d4a716446655440000").is_none());
    assert!(parse_uuid("urn:uuid:550e8400-e29b-41d4-a716-446655440000").is_none());
    assert!(parse_uuid("550e8400-e29b-41d4-a716-44665544000g").is_none());
    assert!(parse_uuid("").is_none());
}
