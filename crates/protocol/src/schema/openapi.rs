//! A schema as OpenAPI 3.1 (JSON Schema 2020-12) components: one record
//! schema per collection, as responses show records, and the
//! `serverUpdates` object with one array of them per `plural`. The server
//! puts them in the document it serves (`/api/openapi.json`).

use serde_json::{json, Map, Value};

use super::{Collection, Property, Schema};

/// The name of the `serverUpdates` component.
pub const SERVER_UPDATES: &str = "ServerUpdates";

/// The component of a collection's records: `note` → `NoteRecord`.
pub fn record_component_name(collection: &str) -> String {
    let mut chars = collection.chars();
    let first = chars.next().map(|c| c.to_ascii_uppercase());
    first
        .into_iter()
        .chain(chars)
        .chain("Record".chars())
        .collect()
}

/// `(name, schema)` of each component, records by collection name, then
/// [`SERVER_UPDATES`]. References are `#/components/schemas/…`.
pub fn openapi_components(schema: &Schema) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = schema
        .collections
        .iter()
        .map(|(name, c)| (record_component_name(name), record(name, c)))
        .collect();
    let arrays: Map<String, Value> = schema
        .collections
        .iter()
        .map(|(name, c)| (c.plural.clone(), array_of(name)))
        .collect();
    let plurals: Vec<&str> = schema
        .collections
        .values()
        .map(|c| c.plural.as_str())
        .collect();
    out.push((
        SERVER_UPDATES.to_owned(),
        json!({
            "type": "object",
            "description": "The records changed since the cursor, one array per collection \
                (its `plural`), parents before children; each record as its collection's \
                component shows it.",
            "properties": arrays,
            "required": plurals,
        }),
    ));
    out
}

/// `{"type": "array", "items": {"$ref": …}}` of a collection's records.
pub fn array_of(collection: &str) -> Value {
    json!({
        "type": "array",
        "items": {"$ref": format!("#/components/schemas/{}", record_component_name(collection))},
    })
}

/// The keys every record carries besides its properties, as responses
/// write them (`protocol::sync::write_record`).
fn server_keys() -> [(&'static str, Value); 6] {
    let at = |what: &str| json!({"type": "string", "format": "date-time", "description": what});
    [
        (
            "id",
            json!({"type": "string", "format": "uuid", "description": "The record's id, chosen by the client that created it."}),
        ),
        (
            "userId",
            json!({"type": "string", "format": "uuid", "description": "Its author."}),
        ),
        ("createdAt", at("When it was created (server time, UTC).")),
        ("updatedAt", at("When it last changed (server time, UTC).")),
        (
            "deletedAt",
            json!({"type": ["string", "null"], "format": "date-time",
                   "description": "When it was deleted: a tombstone; `null` while it lives."}),
        ),
        (
            "deviceId",
            json!({"type": "string", "description": "The device of its newest write."}),
        ),
    ]
}

fn record(name: &str, c: &Collection) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (p, prop) in &c.properties {
        properties.insert(p.clone(), nullable(property(prop)));
        required.push(Value::String(p.clone()));
    }
    for (k, v) in server_keys() {
        properties.insert(k.to_owned(), v);
        required.push(Value::String(k.to_owned()));
    }
    let mut description = format!(
        "A {name} record as responses show it: every property of the collection (`null` when \
         never set or cleared) and the keys the server owns. A tombstone (`deletedAt` set) \
         shows only its `x-parent` references; the rest is `null`."
    );
    if let Some(d) = &c.description {
        description = format!("{d}\n\n{description}");
    }
    let mut out = Map::new();
    if let Some(t) = &c.title {
        out.insert("title".into(), json!(t));
    }
    out.insert("description".into(), json!(description));
    out.insert("type".into(), json!("object"));
    out.insert("properties".into(), Value::Object(properties));
    out.insert("required".into(), Value::Array(required));
    Value::Object(out)
}

/// A property's JSON Schema keywords (tidesync's `x-` keywords become
/// words of the description).
fn property(p: &Property) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(t) = &p.title {
        m.insert("title".into(), json!(t));
    }
    let mut description = p.description.clone();
    if let Some(target) = &p.references {
        let what = if p.parent {
            format!("The id of its parent {target}: deleting that deletes this.")
        } else {
            format!("The id of a {target}.")
        };
        description = Some(match description {
            Some(d) => format!("{d} {what}"),
            None => what,
        });
    }
    if let Some(d) = description {
        m.insert("description".into(), json!(d));
    }
    let types: Vec<&str> = p.types.iter().map(|t| t.as_str()).collect();
    m.insert(
        "type".into(),
        match types[..] {
            [one] => json!(one),
            _ => json!(types),
        },
    );
    if let Some(f) = p.format {
        m.insert("format".into(), json!(f.as_str()));
    }
    if let Some(n) = p.max_length {
        m.insert("maxLength".into(), json!(n));
    }
    if let Some(n) = &p.minimum {
        m.insert("minimum".into(), json!(n));
    }
    if let Some(n) = &p.maximum {
        m.insert("maximum".into(), json!(n));
    }
    if let Some(values) = &p.enumeration {
        m.insert("enum".into(), json!(values));
    }
    if let Some(items) = &p.items {
        m.insert("items".into(), Value::Object(property(items)));
    }
    if let Some(n) = p.max_items {
        m.insert("maxItems".into(), json!(n));
    }
    m
}

/// Any property of a record may be `null` in a response (never set,
/// cleared, or a tombstone's content).
fn nullable(mut m: Map<String, Value>) -> Value {
    if let Some(t) = m.get_mut("type") {
        *t = match t.take() {
            Value::Array(mut a) => {
                a.push(json!("null"));
                Value::Array(a)
            }
            one => json!([one, "null"]),
        };
    }
    if let Some(Value::Array(values)) = m.get_mut("enum") {
        values.push(Value::Null);
    }
    Value::Object(m)
}
