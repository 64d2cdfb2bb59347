//! Each classification of `compare`: the notes example against itself with
//! one change, asserting the change's path and kind.

use serde_json::{json, Value};

use crate::schema::{compare, ChangeKind, Schema, SchemaChange, NOTES_JSON};

use ChangeKind::{Additive, Breaking};

fn notes() -> Value {
    serde_json::from_str(NOTES_JSON).unwrap()
}

fn parse(doc: &Value) -> Schema {
    Schema::parse(&doc.to_string()).unwrap_or_else(|p| panic!("{p:#?}"))
}

/// The changes from the notes example to it after `change`.
fn changes(change: impl FnOnce(&mut Value)) -> Vec<SchemaChange> {
    let old = notes();
    let mut new = old.clone();
    change(&mut new);
    compare(&parse(&old), &parse(&new))
}

/// `(path, kind)` of each change.
fn kinds(change: impl FnOnce(&mut Value)) -> Vec<(String, ChangeKind)> {
    changes(change)
        .into_iter()
        .map(|c| (c.path, c.kind))
        .collect()
}

fn one(change: impl FnOnce(&mut Value), path: &str, kind: ChangeKind) {
    assert_eq!(kinds(change), vec![(path.to_owned(), kind)]);
}

fn prop<'a>(doc: &'a mut Value, collection: &str, name: &str) -> &'a mut Value {
    &mut doc["collections"][collection]["properties"][name]
}

const BODY: &str = "/collections/note/properties/body";
const RANK: &str = "/collections/note/properties/rank";
const LABELS: &str = "/collections/note/properties/labels";
const COLOR: &str = "/collections/notebook/properties/color";

#[test]
fn the_same_schema_has_no_change_nor_have_annotations_or_order() {
    assert!(kinds(|_| {}).is_empty());
    let reordered = kinds(|d| {
        d["title"] = json!("Notes");
        prop(d, "note", "body")["description"] = json!("The text.");
        let props = d["collections"]["checkItem"]["properties"]
            .as_object_mut()
            .unwrap();
        let text = props.remove("text").unwrap();
        props.insert("text".into(), text);
    });
    assert!(reordered.is_empty(), "{reordered:?}");
}

#[test]
fn collections_added_are_additive_and_removed_breaking() {
    one(
        |d| {
            d["collections"]["tag"] =
                json!({"plural": "tags", "properties": {"name": {"type": "string"}}})
        },
        "/collections/tag",
        Additive,
    );
    one(
        |d| {
            d["collections"]
                .as_object_mut()
                .unwrap()
                .remove("checkItem");
        },
        "/collections/checkItem",
        Breaking,
    );
}

#[test]
fn a_collection_s_plural_and_shareable_are_fixed() {
    one(
        |d| d["collections"]["note"]["plural"] = json!("memos"),
        "/collections/note/plural",
        Breaking,
    );
    one(
        |d| d["collections"]["notebook"]["shareable"] = json!(false),
        "/collections/notebook/shareable",
        Breaking,
    );
}

#[test]
fn properties_new_optional_are_additive_removed_or_new_required_breaking() {
    one(
        |d| *prop(d, "note", "mood") = json!({"type": "string"}),
        "/collections/note/properties/mood",
        Additive,
    );
    one(
        |d| {
            d["collections"]["note"]["properties"]
                .as_object_mut()
                .unwrap()
                .remove("body");
        },
        BODY,
        Breaking,
    );
    let found = changes(|d| {
        *prop(d, "note", "mood") = json!({"type": "string"});
        d["collections"]["note"]["required"] = json!(["notebookId", "mood"]);
    });
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].path, "/collections/note/properties/mood");
    assert!(found[0].is_breaking());
    assert!(found[0].what.contains("required"), "{}", found[0]);
}

#[test]
fn required_added_is_breaking_and_dropped_additive() {
    one(
        |d| d["collections"]["note"]["required"] = json!(["notebookId", "body"]),
        "/collections/note/required",
        Breaking,
    );
    one(
        |d| d["collections"]["checkItem"]["required"] = json!(["noteId"]),
        "/collections/checkItem/required",
        Additive,
    );
}

#[test]
fn types_added_are_additive_removed_breaking_and_integer_widens_to_number() {
    one(
        |d| prop(d, "note", "rank")["type"] = json!(["number", "string"]),
        &format!("{RANK}/type"),
        Additive,
    );
    one(
        |d| prop(d, "note", "rank")["type"] = json!("integer"),
        &format!("{RANK}/type"),
        Breaking,
    );
    // integer → number: every integer is still a number.
    let mut doc = notes();
    prop(&mut doc, "note", "rank")["type"] = json!("integer");
    let found = compare(&parse(&doc), &parse(&notes()));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].kind, Additive);
    // A changed type: the old one removed (breaking), the new one added.
    let t = "/collections/note/properties/pinned/type".to_owned();
    assert_eq!(
        kinds(|d| *prop(d, "note", "pinned") = json!({"type": "string"})),
        vec![(t.clone(), Breaking), (t, Additive)]
    );
}

#[test]
fn formats_changed_added_or_removed_are_breaking() {
    one(
        |d| prop(d, "note", "dueAt")["format"] = json!("uuid"),
        "/collections/note/properties/dueAt/format",
        Breaking,
    );
    one(
        |d| {
            prop(d, "note", "dueAt")
                .as_object_mut()
                .unwrap()
                .remove("format");
        },
        "/collections/note/properties/dueAt/format",
        Breaking,
    );
}

#[test]
fn lengths_and_counts_larger_or_removed_are_additive_smaller_or_new_breaking() {
    let ml = format!("{BODY}/maxLength");
    one(
        |d| prop(d, "note", "body")["maxLength"] = json!(30000),
        &ml,
        Additive,
    );
    one(
        |d| prop(d, "note", "body")["maxLength"] = json!(100),
        &ml,
        Breaking,
    );
    one(
        |d| {
            prop(d, "note", "body")
                .as_object_mut()
                .unwrap()
                .remove("maxLength");
        },
        &ml,
        Additive,
    );
    one(
        |d| prop(d, "checkItem", "text")["maxLength"] = json!(499),
        "/collections/checkItem/properties/text/maxLength",
        Breaking,
    );
    let mi = format!("{LABELS}/maxItems");
    one(
        |d| prop(d, "note", "labels")["maxItems"] = json!(21),
        &mi,
        Additive,
    );
    one(
        |d| prop(d, "note", "labels")["maxItems"] = json!(5),
        &mi,
        Breaking,
    );
    // A limit where there was none.
    let mut doc = notes();
    prop(&mut doc, "note", "body")
        .as_object_mut()
        .unwrap()
        .remove("maxLength");
    let found = compare(&parse(&doc), &parse(&notes()));
    assert_eq!(
        found
            .iter()
            .map(|c| (&c.path[..], c.kind))
            .collect::<Vec<_>>(),
        vec![(&ml[..], Breaking)]
    );
}

#[test]
fn bounds_lower_minimum_or_higher_maximum_are_additive_the_reverse_breaking() {
    let min = format!("{RANK}/minimum");
    let max = format!("{RANK}/maximum");
    one(
        |d| prop(d, "note", "rank")["minimum"] = json!(-1),
        &min,
        Additive,
    );
    one(
        |d| prop(d, "note", "rank")["minimum"] = json!(0.5),
        &min,
        Breaking,
    );
    // 0 and 0.0 are one bound.
    assert!(kinds(|d| prop(d, "note", "rank")["minimum"] = json!(0.0)).is_empty());
    one(
        |d| {
            prop(d, "note", "rank")
                .as_object_mut()
                .unwrap()
                .remove("minimum");
        },
        &min,
        Additive,
    );
    one(
        |d| prop(d, "note", "rank")["maximum"] = json!(100),
        &max,
        Breaking,
    );
    let mut with_max = notes();
    prop(&mut with_max, "note", "rank")["maximum"] = json!(100);
    let up = |to: Value| {
        let mut doc = with_max.clone();
        prop(&mut doc, "note", "rank")["maximum"] = to;
        compare(&parse(&with_max), &parse(&doc))
    };
    assert_eq!(up(json!(101))[0].kind, Additive);
    assert_eq!(up(json!(99))[0].kind, Breaking);
}

#[test]
fn enum_values_added_are_additive_removed_breaking() {
    let e = format!("{COLOR}/enum");
    one(
        |d| prop(d, "notebook", "color")["enum"] = json!(["red", "green", "blue", "pink"]),
        &e,
        Additive,
    );
    one(
        |d| prop(d, "notebook", "color")["enum"] = json!(["red", "blue"]),
        &e,
        Breaking,
    );
    one(
        |d| {
            prop(d, "notebook", "color")
                .as_object_mut()
                .unwrap()
                .remove("enum");
        },
        &e,
        Additive,
    );
    one(
        |d| prop(d, "note", "body")["enum"] = json!(["a", "b"]),
        &format!("{BODY}/enum"),
        Breaking,
    );
    // Both at once: one change each.
    assert_eq!(
        kinds(|d| prop(d, "notebook", "color")["enum"] = json!(["red", "green", "pink"])),
        vec![(e.clone(), Breaking), (e, Additive)]
    );
}

#[test]
fn array_items_are_compared_as_properties() {
    one(
        |d| prop(d, "note", "labels")["items"]["maxLength"] = json!(64),
        &format!("{LABELS}/items/maxLength"),
        Additive,
    );
    one(
        |d| prop(d, "note", "labels")["items"]["maxLength"] = json!(8),
        &format!("{LABELS}/items/maxLength"),
        Breaking,
    );
}

#[test]
fn references_parents_and_casts() {
    let nb = "/collections/note/properties/notebookId";
    // x-parent dropped: the note no longer goes with its notebook.
    one(
        |d| {
            prop(d, "note", "notebookId")
                .as_object_mut()
                .unwrap()
                .remove("x-parent");
        },
        &format!("{nb}/x-parent"),
        Breaking,
    );
    // Another target (a second shareable collection to point to).
    assert_eq!(
        kinds(|d| {
            d["collections"]["folder"] = json!({"plural": "folders", "shareable": true,
                "properties": {"name": {"type": "string"}}});
            prop(d, "note", "notebookId")["x-references"] = json!("folder");
        }),
        vec![
            (format!("{nb}/x-references"), Breaking),
            ("/collections/folder".to_owned(), Additive)
        ]
    );
    one(
        |d| prop(d, "note", "rank")["x-cast"] = json!(true),
        &format!("{RANK}/x-cast"),
        Additive,
    );
    let mut cast = notes();
    prop(&mut cast, "note", "rank")["x-cast"] = json!(true);
    let found = compare(&parse(&cast), &parse(&notes()));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].path, format!("{RANK}/x-cast"));
    assert_eq!(found[0].kind, Breaking);
}

#[test]
fn each_change_reads_as_its_path_and_what() {
    let c = &changes(|d| prop(d, "note", "body")["maxLength"] = json!(100))[0];
    assert_eq!(
        c.to_string(),
        "/collections/note/properties/body/maxLength: maxLength 20000 → 100 (tighter)"
    );
}
