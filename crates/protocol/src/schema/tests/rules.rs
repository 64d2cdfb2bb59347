//! One failing document per rule of `docs/SCHEMA.md`, each asserting the
//! problem's JSON path and kind. Documents are the notes example with one
//! change, so each test shows the one thing that breaks it.

use serde_json::{json, Value};

use crate::schema::{ProblemKind as P, Schema, SchemaProblem};

const NOTES: &str = include_str!("../../../schema/notes.json");

fn notes() -> Value {
    serde_json::from_str(NOTES).unwrap()
}

/// The problems of the notes example after `change`.
fn problems(change: impl FnOnce(&mut Value)) -> Vec<SchemaProblem> {
    let mut doc = notes();
    change(&mut doc);
    Schema::parse(&doc.to_string()).expect_err("the document should not check")
}

/// Asserts the document has exactly this one problem.
fn only(change: impl FnOnce(&mut Value), path: &str, kind: P) {
    let found = problems(change);
    assert_eq!(
        found,
        vec![SchemaProblem {
            path: path.into(),
            kind
        }],
        "{found:#?}"
    );
}

fn prop<'a>(doc: &'a mut Value, collection: &str, name: &str) -> &'a mut Value {
    &mut doc["collections"][collection]["properties"][name]
}

const WRONG_NUMBER: P = P::WrongType {
    expected: "a number",
    found: "a string",
};

#[test]
fn the_notes_example_checks() {
    let s = Schema::parse(NOTES).unwrap();
    let names: Vec<&str> = s.collections.keys().map(String::as_str).collect();
    assert_eq!(names, ["checkItem", "note", "notebook"]);
    let note = s.collection("note").unwrap();
    // File order, not alphabetical.
    let props: Vec<&str> = note.properties.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        props,
        ["notebookId", "body", "pinned", "dueAt", "rank", "labels"]
    );
    assert_eq!(
        note.parents().collect::<Vec<_>>(),
        [("notebookId", "notebook")]
    );
    assert!(s.collection("notebook").unwrap().shareable);
    assert_eq!(s.by_plural("checkItems").unwrap().0, "checkItem");
}

#[test]
fn parents_come_first() {
    assert_eq!(
        Schema::parse(NOTES).unwrap().parents_first(),
        ["notebook", "note", "checkItem"]
    );
    assert_eq!(
        Schema::builtin().parents_first(),
        ["space", "category", "item"]
    );
}

#[test]
fn printing_reads_back_the_same_schema() {
    for text in [NOTES, crate::schema::BUILTIN_JSON] {
        let s = Schema::parse(text).unwrap();
        assert_eq!(Schema::parse(&s.to_json_pretty()).unwrap(), s);
    }
}

#[test]
fn a_problem_reads_path_then_message() {
    let p = problems(|d| *prop(d, "note", "rank") = json!({"type": "number", "minimum": "0"}));
    assert_eq!(
        p[0].to_string(),
        "/collections/note/properties/rank/minimum: must be a number, not a string"
    );
    let p = Schema::parse("[]").unwrap_err();
    assert_eq!(
        p[0].to_string(),
        "(document): must be an object, not an array"
    );
}

#[test]
fn every_problem_is_reported_in_document_order() {
    let found = problems(|d| {
        prop(d, "note", "rank")["minimum"] = json!("0");
        prop(d, "note", "body")["maxLenght"] = json!(5);
        d["collections"]["checkItem"]["required"] = json!(["noteId", "txt"]);
    });
    let paths: Vec<&str> = found.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/collections/checkItem/required/1",
            "/collections/note/properties/body/maxLenght",
            "/collections/note/properties/rank/minimum",
        ]
    );
}

#[test]
fn not_json() {
    let p = Schema::parse("{\"collections\": ").unwrap_err();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].path, "");
    assert!(matches!(p[0].kind, P::NotJson(_)), "{p:?}");
}

#[test]
fn duplicate_keys_are_reported_not_dropped() {
    let text = NOTES.replacen(
        "\"pinned\": { \"type\": \"boolean\" },",
        "\"pinned\": { \"type\": \"boolean\" }, \"body\": { \"type\": \"boolean\" },",
        1,
    );
    assert_eq!(
        Schema::parse(&text).unwrap_err(),
        [SchemaProblem {
            path: "/collections/note/properties/body".into(),
            kind: P::DuplicateKey
        }]
    );
}

#[test]
fn document_level_rules() {
    only(|d| d["version"] = json!(2), "/version", P::UnknownKeyword);
    only(
        |d| {
            d.as_object_mut().unwrap().remove("collections");
        },
        "",
        P::Missing("collections"),
    );
    only(
        |d| d["collections"] = json!({}),
        "/collections",
        P::NoCollections,
    );
    only(
        |d| d["collections"] = json!([]),
        "/collections",
        P::WrongType {
            expected: "an object",
            found: "an array",
        },
    );
}

#[test]
fn names_are_identifiers() {
    only(
        |d| {
            let c = d["collections"].as_object_mut().unwrap();
            let v = c.remove("checkItem").unwrap();
            c.insert("check-item".into(), v);
        },
        "/collections/check-item",
        P::NotIdentifier,
    );
    only(
        |d| {
            let p = d["collections"]["note"]["properties"]
                .as_object_mut()
                .unwrap();
            p.insert("2nd".into(), json!({"type": "string"}));
        },
        "/collections/note/properties/2nd",
        P::NotIdentifier,
    );
    only(
        |d| d["collections"]["note"]["plural"] = json!("all notes"),
        "/collections/note/plural",
        P::NotIdentifier,
    );
}

#[test]
fn plurals() {
    only(
        |d| {
            d["collections"]["note"]
                .as_object_mut()
                .unwrap()
                .remove("plural");
        },
        "/collections/note",
        P::Missing("plural"),
    );
    only(
        |d| d["collections"]["note"]["plural"] = json!(2),
        "/collections/note/plural",
        P::WrongType {
            expected: "a string",
            found: "a number",
        },
    );
    only(
        |d| d["collections"]["note"]["plural"] = json!("hasMore"),
        "/collections/note/plural",
        P::ReservedPlural,
    );
    // Collections are read in name order: checkItem, note, notebook.
    only(
        |d| d["collections"]["notebook"]["plural"] = json!("notes"),
        "/collections/notebook/plural",
        P::PluralTaken("note".into()),
    );
    only(
        |d| d["collections"]["notebook"]["plural"] = json!("note"),
        "/collections/notebook/plural",
        P::PluralIsCollection("note".into()),
    );
}

#[test]
fn collection_keywords() {
    only(
        |d| d["collections"]["notebook"]["shareable"] = json!("yes"),
        "/collections/notebook/shareable",
        P::WrongType {
            expected: "true or false",
            found: "a string",
        },
    );
    only(
        |d| d["collections"]["note"]["type"] = json!("array"),
        "/collections/note/type",
        P::CollectionNotObject,
    );
    only(
        |d| d["collections"]["note"]["additionalProperties"] = json!(false),
        "/collections/note/additionalProperties",
        P::UnknownKeyword,
    );
    only(
        |d| {
            d["collections"]["note"]
                .as_object_mut()
                .unwrap()
                .remove("properties");
        },
        "/collections/note",
        P::Missing("properties"),
    );
    // An explicit "type": "object" and annotations are fine.
    let mut doc = notes();
    doc["collections"]["note"]["type"] = json!("object");
    doc["collections"]["note"]["description"] = json!("A note in a notebook.");
    doc["title"] = json!("Notes");
    assert!(Schema::parse(&doc.to_string()).is_ok());
}

#[test]
fn server_owned_keys_are_not_properties() {
    for key in [
        "id",
        "_id",
        "userId",
        "createdAt",
        "updatedAt",
        "deletedAt",
        "deviceId",
        "version",
    ] {
        only(
            |d| {
                let p = d["collections"]["note"]["properties"]
                    .as_object_mut()
                    .unwrap();
                p.insert(key.into(), json!({"type": "string"}));
            },
            &format!("/collections/note/properties/{key}"),
            P::ServerOwnedKey,
        );
    }
}

#[test]
fn required() {
    only(
        |d| d["collections"]["checkItem"]["required"] = json!(["noteId", "txt"]),
        "/collections/checkItem/required/1",
        P::RequiredUnknown,
    );
    only(
        |d| d["collections"]["checkItem"]["required"] = json!(["noteId", "text", "noteId"]),
        "/collections/checkItem/required/2",
        P::ListedTwice,
    );
    // A property with a problem of its own is still declared: one problem, not two.
    only(
        |d| *prop(d, "checkItem", "text") = json!("string"),
        "/collections/checkItem/properties/text",
        P::WrongType {
            expected: "an object",
            found: "a string",
        },
    );
    only(
        |d| d["collections"]["checkItem"]["required"] = json!("text"),
        "/collections/checkItem/required",
        P::WrongType {
            expected: "an array of property names",
            found: "a string",
        },
    );
}

#[test]
fn types() {
    let rank = "/collections/note/properties/rank";
    only(
        |d| {
            prop(d, "note", "rank")
                .as_object_mut()
                .unwrap()
                .remove("type");
        },
        rank,
        P::Missing("type"),
    );
    only(
        |d| prop(d, "note", "rank")["type"] = json!("float"),
        &format!("{rank}/type"),
        P::UnknownType("float".into()),
    );
    only(
        |d| prop(d, "note", "rank")["type"] = json!("object"),
        &format!("{rank}/type"),
        P::UnknownType("object".into()),
    );
    only(
        |d| prop(d, "note", "rank")["type"] = json!(["number", "null"]),
        &format!("{rank}/type/1"),
        P::NullType,
    );
    only(
        |d| prop(d, "note", "rank")["type"] = json!([]),
        &format!("{rank}/type"),
        P::NoType,
    );
    only(
        |d| prop(d, "note", "rank")["type"] = json!(["number", "number"]),
        &format!("{rank}/type/1"),
        P::DuplicateType("number".into()),
    );
    only(
        |d| prop(d, "note", "rank")["type"] = json!(1),
        &format!("{rank}/type"),
        P::WrongType {
            expected: "a type name or an array of them",
            found: "a number",
        },
    );
}

#[test]
fn keyword_values_have_their_types() {
    let rank = "/collections/note/properties/rank";
    only(
        |d| prop(d, "note", "rank")["minimum"] = json!("0"),
        &format!("{rank}/minimum"),
        WRONG_NUMBER,
    );
    only(
        |d| prop(d, "note", "rank")["maximum"] = json!("9"),
        &format!("{rank}/maximum"),
        WRONG_NUMBER,
    );
    let negative = P::WrongType {
        expected: "a non-negative integer",
        found: "a number",
    };
    only(
        |d| prop(d, "note", "body")["maxLength"] = json!(-1),
        "/collections/note/properties/body/maxLength",
        negative.clone(),
    );
    only(
        |d| prop(d, "note", "labels")["maxItems"] = json!(2.5),
        "/collections/note/properties/labels/maxItems",
        negative,
    );
    // 5.0 is an integer in JSON Schema.
    let mut doc = notes();
    prop(&mut doc, "note", "labels")["maxItems"] = json!(5.0);
    let s = Schema::parse(&doc.to_string()).unwrap();
    assert_eq!(
        s.collections["note"].property("labels").unwrap().max_items,
        Some(5)
    );
    only(
        |d| prop(d, "note", "pinned")["x-cast"] = json!(1),
        "/collections/note/properties/pinned/x-cast",
        P::WrongType {
            expected: "true or false",
            found: "a number",
        },
    );
    only(
        |d| prop(d, "note", "body")["description"] = json!(["x"]),
        "/collections/note/properties/body/description",
        P::WrongType {
            expected: "a string",
            found: "an array",
        },
    );
    only(
        |d| prop(d, "note", "body")["minLength"] = json!(1),
        "/collections/note/properties/body/minLength",
        P::UnknownKeyword,
    );
}

#[test]
fn keywords_fit_the_type() {
    let p = "/collections/note/properties";
    only(
        |d| prop(d, "note", "rank")["maxLength"] = json!(3),
        &format!("{p}/rank/maxLength"),
        P::NotApplicable("string, without a format"),
    );
    only(
        |d| prop(d, "note", "dueAt")["maxLength"] = json!(10),
        &format!("{p}/dueAt/maxLength"),
        P::NotApplicable("string, without a format"),
    );
    only(
        |d| prop(d, "note", "body")["minimum"] = json!(3),
        &format!("{p}/body/minimum"),
        P::NotApplicable("number or integer"),
    );
    only(
        |d| prop(d, "note", "rank")["format"] = json!("uuid"),
        &format!("{p}/rank/format"),
        P::NotApplicable("string (and only string)"),
    );
    only(
        |d| prop(d, "note", "body")["items"] = json!({"type": "string"}),
        &format!("{p}/body/items"),
        P::NotApplicable("array"),
    );
    only(
        |d| prop(d, "note", "body")["maxItems"] = json!(3),
        &format!("{p}/body/maxItems"),
        P::NotApplicable("array"),
    );
    only(
        |d| prop(d, "note", "labels")["enum"] = json!([["a"]]),
        &format!("{p}/labels/enum"),
        P::NotApplicable("string, number, integer or boolean"),
    );
    only(
        |d| {
            prop(d, "note", "labels")
                .as_object_mut()
                .unwrap()
                .remove("items");
        },
        &format!("{p}/labels"),
        P::ArrayWithoutItems,
    );
    only(
        |d| prop(d, "note", "dueAt")["format"] = json!("email"),
        &format!("{p}/dueAt/format"),
        P::UnknownFormat("email".into()),
    );
    only(
        |d| prop(d, "note", "rank")["maximum"] = json!(-1),
        &format!("{p}/rank/minimum"),
        P::MinimumAboveMaximum,
    );
}

#[test]
fn enums() {
    let color = "/collections/notebook/properties/color/enum";
    only(
        |d| prop(d, "notebook", "color")["enum"] = json!([]),
        color,
        P::EmptyEnum,
    );
    only(
        |d| prop(d, "notebook", "color")["enum"] = json!(["red", 1]),
        &format!("{color}/1"),
        P::EnumValueOfWrongType,
    );
    only(
        |d| prop(d, "notebook", "color")["enum"] = json!(["red", "blue", "red"]),
        &format!("{color}/2"),
        P::ListedTwice,
    );
    only(
        |d| *prop(d, "note", "rank") = json!({"type": "number", "enum": [1, 1.0]}),
        "/collections/note/properties/rank/enum/1",
        P::ListedTwice,
    );
    only(
        |d| prop(d, "notebook", "color")["enum"] = json!("red"),
        color,
        P::WrongType {
            expected: "an array of values",
            found: "a string",
        },
    );
}

#[test]
fn references() {
    let nb = "/collections/note/properties/notebookId";
    only(
        |d| prop(d, "note", "notebookId")["x-references"] = json!("folder"),
        &format!("{nb}/x-references"),
        P::UnknownCollection,
    );
    only(
        |d| {
            prop(d, "note", "notebookId")
                .as_object_mut()
                .unwrap()
                .remove("format");
        },
        &format!("{nb}/x-references"),
        P::ReferenceNotUuid,
    );
    only(
        |d| prop(d, "note", "pinned")["x-parent"] = json!(true),
        "/collections/note/properties/pinned/x-parent",
        P::ParentWithoutReference,
    );
    only(
        |d| prop(d, "note", "labels")["items"]["x-references"] = json!("note"),
        "/collections/note/properties/labels/items/x-references",
        P::ReferenceInItems,
    );
    // A reference that is not a parent is fine, also to its own collection.
    let mut doc = notes();
    prop(&mut doc, "note", "seeAlso")
        .clone_from(&json!({"type": "string", "format": "uuid", "x-references": "note"}));
    let s = Schema::parse(&doc.to_string()).unwrap();
    assert_eq!(s.collections["note"].parents().count(), 1);
}

#[test]
fn casts() {
    only(
        |d| *prop(d, "note", "rank") = json!({"type": ["number", "string"], "x-cast": true}),
        "/collections/note/properties/rank/x-cast",
        P::CastOnUnion,
    );
    only(
        |d| prop(d, "note", "notebookId")["x-cast"] = json!(true),
        "/collections/note/properties/notebookId/x-cast",
        P::CastOnUuid,
    );
}

#[test]
fn parents_form_no_cycle() {
    // note → checkItem → note.
    only(
        |d| {
            *prop(d, "note", "firstItemId") = json!({"type": "string", "format": "uuid",
                "x-references": "checkItem", "x-parent": true});
        },
        "/collections/note/properties/firstItemId/x-parent",
        P::ParentCycle(vec!["checkItem".into(), "note".into(), "checkItem".into()]),
    );
    only(
        |d| {
            *prop(d, "note", "parentNoteId") = json!({"type": "string", "format": "uuid",
                "x-references": "note", "x-parent": true});
        },
        "/collections/note/properties/parentNoteId/x-parent",
        P::ParentCycle(vec!["note".into(), "note".into()]),
    );
}

#[test]
fn sharing_roots_do_not_nest() {
    only(
        |d| d["collections"]["note"]["shareable"] = json!(true),
        "/collections/note/properties/notebookId/x-parent",
        P::ShareableWithParent,
    );
}

#[test]
fn a_personal_collection_needs_no_parent() {
    // Neither shareable nor a child: its records stay in their author's
    // personal scope, as an item without space and category does today.
    let mut doc = notes();
    doc["collections"]["setting"] = json!({"plural": "settings",
        "properties": {"theme": {"type": "string", "enum": ["light", "dark"]}}});
    assert!(Schema::parse(&doc.to_string()).is_ok());
}
