//! The OpenAPI components of a schema: a record per collection with its
//! properties' keywords (all nullable) and the server's keys, and the
//! `serverUpdates` object of one array per plural.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::schema::{openapi_components, record_component_name, Schema, NOTES_JSON};

fn components(schema: &Schema) -> BTreeMap<String, Value> {
    openapi_components(schema).into_iter().collect()
}

#[test]
fn component_names_are_the_collection_capitalised() {
    assert_eq!(record_component_name("note"), "NoteRecord");
    assert_eq!(record_component_name("checkItem"), "CheckItemRecord");
}

#[test]
fn the_notes_schema_gives_a_record_per_collection_and_their_arrays() {
    let schema = Schema::parse(NOTES_JSON).unwrap();
    let c = components(&schema);
    let names: Vec<&str> = c.keys().map(|k| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "CheckItemRecord",
            "NoteRecord",
            "NotebookRecord",
            "ServerUpdates"
        ]
    );
    let updates = &c["ServerUpdates"];
    for (plural, record) in [
        ("notebooks", "NotebookRecord"),
        ("notes", "NoteRecord"),
        ("checkItems", "CheckItemRecord"),
    ] {
        assert_eq!(updates["properties"][plural]["type"], "array");
        assert_eq!(
            updates["properties"][plural]["items"]["$ref"],
            format!("#/components/schemas/{record}")
        );
        assert!(updates["required"]
            .as_array()
            .unwrap()
            .contains(&json!(plural)));
    }
    let note = &c["NoteRecord"];
    assert_eq!(note["type"], "object");
    let props = &note["properties"];
    assert_eq!(
        props["body"],
        json!({"type": ["string", "null"], "maxLength": 20000})
    );
    assert_eq!(
        props["rank"],
        json!({"type": ["number", "null"], "minimum": 0})
    );
    assert_eq!(
        props["labels"],
        json!({"type": ["array", "null"], "items": {"type": "string", "maxLength": 32}, "maxItems": 20})
    );
    assert_eq!(props["notebookId"]["format"], "uuid");
    assert!(props["notebookId"]["description"]
        .as_str()
        .unwrap()
        .contains("parent notebook"));
    assert_eq!(
        c["NotebookRecord"]["properties"]["color"]["enum"],
        json!(["red", "green", "blue", null])
    );
    // The properties in file order, then the server's keys; all present.
    let keys: Vec<&str> = props
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    let required: Vec<&str> = note["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut sorted_keys = keys.clone();
    sorted_keys.sort();
    let mut sorted_required = required.clone();
    sorted_required.sort();
    assert_eq!(sorted_keys, sorted_required);
    for k in [
        "id",
        "userId",
        "createdAt",
        "updatedAt",
        "deletedAt",
        "deviceId",
    ] {
        assert!(required.contains(&k), "{k} not in {required:?}");
    }
    assert_eq!(props["deletedAt"]["type"], json!(["string", "null"]));
    assert_eq!(props["createdAt"]["format"], "date-time");
    assert_eq!(required.len(), 6 + 6);
}

#[test]
fn the_builtin_schema_gives_the_bucket_list_and_keeps_unions() {
    let c = components(Schema::builtin());
    let updates = &c["ServerUpdates"]["properties"];
    for p in ["spaces", "categories", "items"] {
        assert!(updates[p].is_object(), "{p}");
    }
    let item = &c["ItemRecord"]["properties"];
    assert_eq!(
        item["priority"]["type"],
        json!(["number", "string", "null"])
    );
    assert_eq!(item["title"]["maxLength"], 500);
    assert!(c["SpaceRecord"]["description"]
        .as_str()
        .unwrap()
        .starts_with("An organisational container"));
}
