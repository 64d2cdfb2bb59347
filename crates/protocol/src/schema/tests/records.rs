//! `validate_record` on the notes example: each keyword accepts what it
//! should, refuses what it should, naming the field.

use serde_json::{json, Map, Value};

use crate::schema::{FieldProblem as F, RecordError, Schema};

const NOTES: &str = include_str!("../../../schema/notes.json");
const NOTEBOOK_ID: &str = "6ba7b810-9dad-11d1-80b4-00c04fd430c8";

fn schema() -> Schema {
    let mut s = Schema::parse(NOTES).unwrap();
    // Keywords the notes example does not use, on a collection of its own.
    let extra = Schema::parse(
        r#"{"collections": {"counter": {"plural": "counters", "properties": {
            "count": {"type": "integer", "minimum": -5, "maximum": 10},
            "step": {"type": "integer", "x-cast": true},
            "level": {"type": "number", "enum": [1, 2.5]},
            "ref": {"type": "string", "format": "uuid"},
            "at": {"type": "string", "format": "date-time"},
            "flag": {"type": "boolean", "x-cast": true},
            "ids": {"type": "array", "items": {"type": "number", "x-cast": true}, "maxItems": 2},
            "size": {"type": ["integer", "string"], "maxLength": 3}
        }}}}"#,
    )
    .unwrap();
    s.collections.extend(extra.collections);
    s
}

fn data(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn ok(collection: &str, v: Value) -> Map<String, Value> {
    let valid = schema()
        .validate_record(collection, &data(v.clone()), false)
        .unwrap_or_else(|e| panic!("{v} should pass: {e}"));
    valid.fields.into_iter().collect()
}

fn refused(collection: &str, v: Value) -> (String, F) {
    match schema().validate_record(collection, &data(v.clone()), false) {
        Err(RecordError::Field { field, problem }) => (field, problem),
        other => panic!("{v} should be refused, got {other:?}"),
    }
}

#[test]
fn a_valid_note_is_stored_normalised() {
    let valid = schema()
        .validate_record(
            "note",
            &data(
                json!({"notebookId": NOTEBOOK_ID.to_uppercase(), "body": "Buy milk",
                "pinned": true, "dueAt": "2026-12-07T23:00:00+01:00", "rank": 0,
                "labels": ["home"], "poster": "x.jpg", "userId": "someone"}),
            ),
            true,
        )
        .unwrap();
    assert_eq!(valid.fields["notebookId"], json!(NOTEBOOK_ID));
    assert_eq!(valid.fields["dueAt"], json!("2026-12-07T22:00:00.000Z"));
    assert_eq!(valid.ignored, ["poster", "userId"]);
    assert!(valid.coerced.is_empty());
}

#[test]
fn required_properties() {
    let e = schema()
        .validate_record("checkItem", &data(json!({"noteId": NOTEBOOK_ID})), true)
        .unwrap_err();
    assert_eq!(e.to_string(), "text: is required to create a checkItem");
    // On update any subset may be sent, but a required one never cleared or blank.
    assert!(ok("checkItem", json!({"done": true})).contains_key("done"));
    assert_eq!(
        refused("checkItem", json!({"text": null})),
        ("text".into(), F::Null)
    );
    assert_eq!(
        refused("checkItem", json!({"text": " \n"})),
        ("text".into(), F::Blank)
    );
    // An optional property may be null (cleared) or blank.
    assert_eq!(
        ok("note", json!({"body": null, "rank": null}))["body"],
        Value::Null
    );
    assert_eq!(ok("note", json!({"body": ""}))["body"], json!(""));
}

#[test]
fn unknown_collection() {
    assert_eq!(
        schema().validate_record("task", &Map::new(), true),
        Err(RecordError::UnknownCollection("task".into()))
    );
}

#[test]
fn types_without_cast_are_strict() {
    let (field, p) = refused("note", json!({"pinned": "true"}));
    assert_eq!(field, "pinned");
    assert_eq!(p.to_string(), "must be true or false");
    assert_eq!(
        refused("note", json!({"rank": "3"})).1.to_string(),
        "must be a number"
    );
    assert_eq!(
        refused("note", json!({"body": 5})).1.to_string(),
        "must be a string"
    );
    assert_eq!(
        refused("note", json!({"labels": "home"})).1.to_string(),
        "must be an array of strings"
    );
    assert_eq!(
        refused("note", json!({"labels": ["a", null]}))
            .1
            .to_string(),
        "must be an array of strings"
    );
}

#[test]
fn max_length_counts_characters() {
    assert!(ok("notebook", json!({"title": "é".repeat(120)})).contains_key("title"));
    assert_eq!(
        refused("notebook", json!({"title": "é".repeat(121)})),
        ("title".into(), F::TooLong(120))
    );
}

#[test]
fn enum_values() {
    assert_eq!(
        ok("notebook", json!({"color": "red"}))["color"],
        json!("red")
    );
    let (field, p) = refused("notebook", json!({"color": "Red"}));
    assert_eq!(field, "color");
    assert_eq!(p.to_string(), r#"must be one of "red", "green", "blue""#);
    // Numbers compare by value.
    assert_eq!(ok("counter", json!({"level": 1.0}))["level"], json!(1.0));
    assert!(matches!(
        refused("counter", json!({"level": 2})).1,
        F::NotInEnum(_)
    ));
}

#[test]
fn minimum_and_maximum() {
    assert_eq!(ok("note", json!({"rank": 0}))["rank"], json!(0));
    assert_eq!(
        refused("note", json!({"rank": -0.5})).1.to_string(),
        "must be at least 0"
    );
    assert_eq!(ok("counter", json!({"count": -5}))["count"], json!(-5));
    assert_eq!(
        refused("counter", json!({"count": 11})).1.to_string(),
        "must be at most 10"
    );
}

#[test]
fn integers() {
    assert_eq!(ok("counter", json!({"count": 3.0}))["count"], json!(3.0));
    assert_eq!(
        refused("counter", json!({"count": 3.5})).1.to_string(),
        "must be an integer"
    );
    // With x-cast, a numeric string is cast, and must still be whole.
    let valid = schema()
        .validate_record("counter", &data(json!({"step": "4"})), false)
        .unwrap();
    assert_eq!(
        (valid.fields["step"].clone(), valid.coerced),
        (json!(4), vec!["step".to_string()])
    );
    assert_eq!(
        refused("counter", json!({"step": "4.5"})).1.to_string(),
        "must be an integer or a numeric string"
    );
}

#[test]
fn formats() {
    assert_eq!(
        refused("note", json!({"notebookId": "not-a-uuid"})),
        ("notebookId".into(), F::NotReference("notebook".into()))
    );
    assert_eq!(
        refused("note", json!({"notebookId": 7})).1.to_string(),
        "must be a UUID string"
    );
    assert_eq!(refused("counter", json!({"ref": "x"})).1, F::NotUuid);
    assert_eq!(
        ok("counter", json!({"ref": NOTEBOOK_ID.to_uppercase()}))["ref"],
        json!(NOTEBOOK_ID)
    );
    // Without x-cast a date-time needs an offset; epoch numbers are refused.
    assert_eq!(
        refused("note", json!({"dueAt": "2026-12-07T10:00"})).1,
        F::NotDateTime
    );
    assert_eq!(
        refused("note", json!({"dueAt": 1_765_000_000_000i64}))
            .1
            .to_string(),
        "must be an RFC 3339 date-time string"
    );
    assert_eq!(
        refused("counter", json!({"at": "10000-01-01T00:00:00Z"})).1,
        F::NotDateTime
    );
}

#[test]
fn arrays() {
    assert_eq!(ok("note", json!({"labels": []}))["labels"], json!([]));
    assert_eq!(
        refused("note", json!({"labels": vec!["a"; 21]})).1,
        F::TooManyItems(20)
    );
    let (field, p) = refused("note", json!({"labels": ["ok", "x".repeat(33)]}));
    assert_eq!(field, "labels");
    assert_eq!(p.to_string(), "item 1: must be at most 32 characters");
    // Items with x-cast are cast one by one; an array with x-cast wraps a single value.
    let valid = schema()
        .validate_record("counter", &data(json!({"ids": ["1", 2]})), false)
        .unwrap();
    assert_eq!(valid.fields["ids"], json!([1, 2]));
    assert_eq!(valid.coerced, ["ids"]);
    assert_eq!(
        refused("counter", json!({"ids": 1})).1.to_string(),
        "must be an array of numbers (cast as each item's type)"
    );
}

#[test]
fn unions() {
    assert_eq!(ok("counter", json!({"size": 4}))["size"], json!(4));
    assert_eq!(ok("counter", json!({"size": "XL"}))["size"], json!("XL"));
    for v in [json!(4.5), json!("XXXL"), json!(true)] {
        assert_eq!(
            refused("counter", json!({ "size": v })).1.to_string(),
            "must be an integer or a string of at most 3 characters"
        );
    }
}

#[test]
fn boolean_cast_follows_mongoose() {
    let valid = schema()
        .validate_record("counter", &data(json!({"flag": "yes"})), false)
        .unwrap();
    assert_eq!(valid.fields["flag"], json!(true));
    assert_eq!(valid.coerced, ["flag"]);
    assert!(refused("counter", json!({"flag": "TRUE"}))
        .1
        .to_string()
        .starts_with("must be true, false"));
}
