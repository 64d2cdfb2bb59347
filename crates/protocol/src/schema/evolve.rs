//! What changes between two schemas, and whether clients written for the
//! old one keep working with the new one (docs/SCHEMA.md, "Changing the
//! schema of a running deployment").
//!
//! **Additive**: everything an old client sends is still accepted, and
//! everything it receives still has the form it knows (a new collection or
//! optional property, a looser limit). **Breaking**: something an old client
//! sends may now be refused, or something it holds no longer exists or
//! means something else (a removed property, a changed type, a tighter
//! limit, a new required property).

use std::fmt;

use serde_json::{Number, Value};

use super::{Collection, Property, Schema, Type};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Additive,
    Breaking,
}

/// One difference, at the JSON Pointer of the new document (of the old one
/// for what was removed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaChange {
    pub path: String,
    pub kind: ChangeKind,
    /// What changed, for an operator: `maxLength 200 → 100 (tighter)`.
    pub what: String,
}

impl SchemaChange {
    pub fn is_breaking(&self) -> bool {
        self.kind == ChangeKind::Breaking
    }
}

impl fmt::Display for SchemaChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.what)
    }
}

/// Every difference that matters to clients between `old` and `new`, in
/// collection then file order. Annotations (`title`, `description`,
/// `$schema`) and the order of properties are not changes.
pub fn compare(old: &Schema, new: &Schema) -> Vec<SchemaChange> {
    let mut out = Changes(Vec::new());
    for (name, o) in &old.collections {
        let path = format!("/collections/{name}");
        match new.collections.get(name) {
            None => out.breaking(&path, "collection removed"),
            Some(n) => collection(&mut out, &path, o, n),
        }
    }
    for name in new.collections.keys() {
        if !old.collections.contains_key(name) {
            out.additive(&format!("/collections/{name}"), "new collection");
        }
    }
    out.0
}

struct Changes(Vec<SchemaChange>);

impl Changes {
    fn push(&mut self, path: &str, kind: ChangeKind, what: impl Into<String>) {
        self.0.push(SchemaChange {
            path: path.to_owned(),
            kind,
            what: what.into(),
        });
    }
    fn additive(&mut self, path: &str, what: impl Into<String>) {
        self.push(path, ChangeKind::Additive, what);
    }
    fn breaking(&mut self, path: &str, what: impl Into<String>) {
        self.push(path, ChangeKind::Breaking, what);
    }
}

fn collection(out: &mut Changes, path: &str, o: &Collection, n: &Collection) {
    if o.plural != n.plural {
        out.breaking(
            &format!("{path}/plural"),
            format!("plural {:?} → {:?}", o.plural, n.plural),
        );
    }
    if o.shareable != n.shareable {
        out.breaking(
            &format!("{path}/shareable"),
            format!("shareable {} → {}", o.shareable, n.shareable),
        );
    }
    for (name, op) in &o.properties {
        let p = format!("{path}/properties/{name}");
        match n.property(name) {
            None => out.breaking(&p, "property removed"),
            Some(np) => property(out, &p, op, np),
        }
    }
    for (name, _) in &n.properties {
        if o.property(name).is_some() {
            continue;
        }
        let p = format!("{path}/properties/{name}");
        if n.is_required(name) {
            out.breaking(&p, "new required property: creates without it are refused");
        } else {
            out.additive(&p, "new optional property");
        }
    }
    // A required property that is new is reported above, as new.
    for name in &n.required {
        if o.property(name).is_some() && !o.is_required(name) {
            out.breaking(
                &format!("{path}/required"),
                format!("{name:?} is now required"),
            );
        }
    }
    for name in &o.required {
        if n.property(name).is_some() && !n.is_required(name) {
            out.additive(
                &format!("{path}/required"),
                format!("{name:?} is no longer required"),
            );
        }
    }
}

fn property(out: &mut Changes, path: &str, o: &Property, n: &Property) {
    let at = |k: &str| format!("{path}/{k}");
    for t in &o.types {
        // An integer is a number: `integer` widened to `number` loses nothing.
        let kept = n.types.contains(t) || (*t == Type::Integer && n.types.contains(&Type::Number));
        if !kept {
            out.breaking(
                &at("type"),
                format!("type {} no longer allowed", t.as_str()),
            );
        }
    }
    for t in &n.types {
        let had = o.types.contains(t) || (*t == Type::Integer && o.types.contains(&Type::Number));
        if !had {
            out.additive(&at("type"), format!("type {} now allowed", t.as_str()));
        }
    }
    if o.format != n.format {
        let f = |f: Option<super::Format>| f.map_or("none", |f| f.as_str());
        out.breaking(
            &at("format"),
            format!("format {} → {}", f(o.format), f(n.format)),
        );
    }
    upper_bound(out, &at("maxLength"), o.max_length, n.max_length);
    upper_bound(out, &at("maxItems"), o.max_items, n.max_items);
    number_bound(out, &at("minimum"), &o.minimum, &n.minimum, Bound::Lower);
    number_bound(out, &at("maximum"), &o.maximum, &n.maximum, Bound::Upper);
    enumeration(out, &at("enum"), &o.enumeration, &n.enumeration);
    if let (Some(oi), Some(ni)) = (&o.items, &n.items) {
        property(out, &at("items"), oi, ni);
    }
    if o.references != n.references {
        let r = |r: &Option<String>| r.clone().unwrap_or_else(|| "none".into());
        out.breaking(
            &at("x-references"),
            format!("x-references {} → {}", r(&o.references), r(&n.references)),
        );
    }
    if o.parent != n.parent {
        out.breaking(
            &at("x-parent"),
            format!("x-parent {} → {}", o.parent, n.parent),
        );
    }
    // Casting accepts more values than not casting, and stores the same.
    match (o.cast, n.cast) {
        (false, true) => out.additive(&at("x-cast"), "values are now cast"),
        (true, false) => out.breaking(&at("x-cast"), "values are no longer cast"),
        _ => {}
    }
}

/// `maxLength`, `maxItems`: larger or gone is looser.
fn upper_bound(out: &mut Changes, path: &str, o: Option<u64>, n: Option<u64>) {
    let key = path.rsplit('/').next().unwrap_or(path);
    match (o, n) {
        (Some(a), Some(b)) if b > a => out.additive(path, format!("{key} {a} → {b} (looser)")),
        (Some(a), Some(b)) if b < a => out.breaking(path, format!("{key} {a} → {b} (tighter)")),
        (Some(a), None) => out.additive(path, format!("{key} {a} removed")),
        (None, Some(b)) => out.breaking(path, format!("new {key} {b}")),
        _ => {}
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Bound {
    Lower,
    Upper,
}

fn number_bound(
    out: &mut Changes,
    path: &str,
    o: &Option<Number>,
    n: &Option<Number>,
    bound: Bound,
) {
    let key = path.rsplit('/').next().unwrap_or(path);
    let f = |n: &Number| n.as_f64().unwrap_or(f64::NAN);
    match (o, n) {
        (Some(a), Some(b)) if f(a) != f(b) => {
            let looser = match bound {
                Bound::Lower => f(b) < f(a),
                Bound::Upper => f(b) > f(a),
            };
            if looser {
                out.additive(path, format!("{key} {a} → {b} (looser)"));
            } else {
                out.breaking(path, format!("{key} {a} → {b} (tighter)"));
            }
        }
        (Some(a), None) => out.additive(path, format!("{key} {a} removed")),
        (None, Some(b)) => out.breaking(path, format!("new {key} {b}")),
        _ => {}
    }
}

/// Values compare as `enum` checks them: numbers by value (`1` is `1.0`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn enumeration(out: &mut Changes, path: &str, o: &Option<Vec<Value>>, n: &Option<Vec<Value>>) {
    match (o, n) {
        (Some(a), Some(b)) => {
            for v in a.iter().filter(|v| !b.iter().any(|w| same(v, w))) {
                out.breaking(path, format!("enum value {v} removed"));
            }
            for v in b.iter().filter(|v| !a.iter().any(|w| same(v, w))) {
                out.additive(path, format!("enum value {v} added"));
            }
        }
        (Some(_), None) => out.additive(path, "enum removed: any value of the type"),
        (None, Some(_)) => out.breaking(path, "new enum: only its values"),
        (None, None) => {}
    }
}
