//! Reads a schema document into a [`Schema`], collecting every problem.
//!
//! The checker keeps going past a problem (a property with a bad keyword is
//! still read for its other keywords), so one `tidesync schema check` run
//! lists everything to fix; a schema is returned only when nothing is wrong.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Number, Value};

use super::json::{Json, Path};
use super::problem::{ProblemKind as P, SchemaProblem};
use super::{Collection, Format, Property, Schema, Type};
use crate::data::SERVER_FIELDS;

/// Keys an initial-sync page has beside the collections' arrays.
const PAGE_KEYS: &[&str] = &["syncTimestamp", "hasMore", "removedSpaces"];

pub(super) fn parse(text: &str) -> Result<Schema, Vec<SchemaProblem>> {
    let doc: Json = match serde_json::from_str(text) {
        Ok(doc) => doc,
        Err(e) => {
            return Err(vec![SchemaProblem {
                path: String::new(),
                kind: P::NotJson(e.to_string()),
            }])
        }
    };
    let mut c = Checker::default();
    let schema = c.document(&doc);
    if c.problems.is_empty() {
        Ok(schema)
    } else {
        Err(c.problems)
    }
}

#[derive(Default)]
struct Checker {
    problems: Vec<SchemaProblem>,
}

impl Checker {
    fn report(&mut self, path: &Path, kind: P) {
        self.problems.push(SchemaProblem {
            path: path.clone().into_string(),
            kind,
        });
    }

    fn wrong(&mut self, path: &Path, expected: &'static str, found: &Json) {
        self.report(
            path,
            P::WrongType {
                expected,
                found: found.kind(),
            },
        );
    }

    /// The object's entries, each duplicate key reported.
    fn object<'a>(&mut self, v: &'a Json, path: &Path) -> Option<&'a [(String, Json)]> {
        let Json::Object(entries) = v else {
            self.wrong(path, "an object", v);
            return None;
        };
        let mut seen = BTreeSet::new();
        for (k, _) in entries {
            if !seen.insert(k.as_str()) {
                self.report(&path.join(k), P::DuplicateKey);
            }
        }
        Some(entries)
    }

    fn string<'a>(&mut self, v: &'a Json, path: &Path) -> Option<&'a str> {
        match v {
            Json::String(s) => Some(s),
            other => {
                self.wrong(path, "a string", other);
                None
            }
        }
    }

    fn boolean(&mut self, v: &Json, path: &Path) -> Option<bool> {
        match v {
            Json::Bool(b) => Some(*b),
            other => {
                self.wrong(path, "true or false", other);
                None
            }
        }
    }

    fn number(&mut self, v: &Json, path: &Path) -> Option<Number> {
        match v {
            Json::Number(n) => Some(n.clone()),
            other => {
                self.wrong(path, "a number", other);
                None
            }
        }
    }

    fn count(&mut self, v: &Json, path: &Path) -> Option<u64> {
        match v {
            Json::Number(n) if n.as_u64().is_some() => n.as_u64(),
            // JSON Schema allows `5.0` for a non-negative integer.
            Json::Number(n)
                if n.as_f64()
                    .is_some_and(|x| x >= 0.0 && x.fract() == 0.0 && x < 2e53) =>
            {
                n.as_f64().map(|x| x as u64)
            }
            other => {
                self.wrong(path, "a non-negative integer", other);
                None
            }
        }
    }

    fn identifier(&mut self, name: &str, path: &Path) -> bool {
        let ok = is_identifier(name);
        if !ok {
            self.report(path, P::NotIdentifier);
        }
        ok
    }

    fn document(&mut self, doc: &Json) -> Schema {
        let root = Path::root();
        let mut schema = Schema {
            dialect: None,
            title: None,
            description: None,
            collections: BTreeMap::new(),
        };
        let Some(entries) = self.object(doc, &root) else {
            return schema;
        };
        let mut collections = None;
        for (k, v) in entries {
            let path = root.join(k);
            match k.as_str() {
                "collections" => collections = Some((v, path)),
                "$schema" => schema.dialect = self.string(v, &path).map(str::to_owned),
                "title" => schema.title = self.string(v, &path).map(str::to_owned),
                "description" => schema.description = self.string(v, &path).map(str::to_owned),
                _ => self.report(&path, P::UnknownKeyword),
            }
        }
        let Some((collections, path)) = collections else {
            self.report(&root, P::Missing("collections"));
            return schema;
        };
        let Some(entries) = self.object(collections, &path) else {
            return schema;
        };
        if entries.is_empty() {
            self.report(&path, P::NoCollections);
        }
        // Names first: a reference may point to a collection declared later.
        let names: BTreeSet<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
        for (name, v) in entries {
            let cpath = path.join(name);
            self.identifier(name, &cpath);
            if let Some(c) = self.collection(v, &cpath, &names) {
                schema.collections.entry(name.clone()).or_insert(c);
            }
        }
        self.plurals(&schema, &path);
        self.cycles(&schema, &path);
        schema
    }

    fn collection(&mut self, v: &Json, path: &Path, names: &BTreeSet<&str>) -> Option<Collection> {
        let entries = self.object(v, path)?;
        let mut c = Collection {
            title: None,
            description: None,
            plural: String::new(),
            shareable: false,
            properties: Vec::new(),
            required: Vec::new(),
        };
        let (mut plural, mut properties, mut required) = (None, None, None);
        for (k, v) in entries {
            let kpath = path.join(k);
            match k.as_str() {
                "plural" => plural = Some((v, kpath)),
                "properties" => properties = Some((v, kpath)),
                "required" => required = Some((v, kpath)),
                "shareable" => c.shareable = self.boolean(v, &kpath).unwrap_or(false),
                "title" => c.title = self.string(v, &kpath).map(str::to_owned),
                "description" => c.description = self.string(v, &kpath).map(str::to_owned),
                "type" => {
                    if !matches!(v, Json::String(s) if s == "object") {
                        self.report(&kpath, P::CollectionNotObject);
                    }
                }
                _ => self.report(&kpath, P::UnknownKeyword),
            }
        }
        match plural {
            Some((v, ppath)) => {
                if let Some(p) = self.string(v, &ppath) {
                    if self.identifier(p, &ppath) && PAGE_KEYS.contains(&p) {
                        self.report(&ppath, P::ReservedPlural);
                    }
                    c.plural = p.to_owned();
                }
            }
            None => self.report(path, P::Missing("plural")),
        }
        match &properties {
            Some((v, ppath)) => {
                for (name, v) in self.object(v, ppath).unwrap_or_default() {
                    let prop_path = ppath.join(name);
                    // `_id` is no identifier either; the server's ownership is the reason to give.
                    if SERVER_FIELDS.contains(&name.as_str()) {
                        self.report(&prop_path, P::ServerOwnedKey);
                    } else {
                        self.identifier(name, &prop_path);
                    }
                    if let Some(p) = self.property(v, &prop_path, Some(names)) {
                        if p.parent && c.shareable {
                            self.report(&prop_path.join("x-parent"), P::ShareableWithParent);
                        }
                        if c.property(name).is_none() {
                            c.properties.push((name.clone(), p));
                        }
                    }
                }
            }
            None => self.report(path, P::Missing("properties")),
        }
        // Names as declared, also of properties with problems of their own:
        // without readable properties every required name would look unknown.
        if let Some((Json::Object(declared), _)) = &properties {
            let declared: Vec<&str> = declared.iter().map(|(n, _)| n.as_str()).collect();
            if let Some((v, rpath)) = required {
                self.required(v, &rpath, &declared, &mut c);
            }
        }
        Some(c)
    }

    fn required(&mut self, v: &Json, path: &Path, declared: &[&str], c: &mut Collection) {
        let Json::Array(names) = v else {
            self.wrong(path, "an array of property names", v);
            return;
        };
        for (i, n) in names.iter().enumerate() {
            let npath = path.join(i);
            let Some(name) = self.string(n, &npath) else {
                continue;
            };
            if c.is_required(name) {
                self.report(&npath, P::ListedTwice);
            } else if !declared.contains(&name) {
                self.report(&npath, P::RequiredUnknown);
            } else {
                c.required.push(name.to_owned());
            }
        }
    }

    /// A property; `names` is `Some` for a collection's own property (where
    /// references may be), `None` for an array's `items`.
    fn property(
        &mut self,
        v: &Json,
        path: &Path,
        names: Option<&BTreeSet<&str>>,
    ) -> Option<Property> {
        let entries = self.object(v, path)?;
        let mut p = Property::default();
        // Where each keyword was, for the checks that need all of them.
        let mut at: BTreeMap<&str, Path> = BTreeMap::new();
        let mut enum_values: Option<&[Json]> = None;
        let mut types_ok = false;
        for (k, v) in entries {
            let kpath = path.join(k);
            match k.as_str() {
                "type" => types_ok = self.types(v, &kpath, &mut p.types),
                "format" => {
                    if let Some(s) = self.string(v, &kpath) {
                        p.format = Format::parse(s);
                        if p.format.is_none() {
                            self.report(&kpath, P::UnknownFormat(s.to_owned()));
                        }
                    }
                }
                "maxLength" => p.max_length = self.count(v, &kpath),
                "maxItems" => p.max_items = self.count(v, &kpath),
                "minimum" => p.minimum = self.number(v, &kpath),
                "maximum" => p.maximum = self.number(v, &kpath),
                "enum" => match v {
                    Json::Array(a) => {
                        if a.is_empty() {
                            self.report(&kpath, P::EmptyEnum);
                        }
                        enum_values = Some(a);
                    }
                    other => self.wrong(&kpath, "an array of values", other),
                },
                "items" => p.items = self.property(v, &kpath, None).map(Box::new),
                "x-references" | "x-parent" if names.is_none() => {
                    self.report(&kpath, P::ReferenceInItems);
                    continue;
                }
                "x-references" => {
                    if let Some(s) = self.string(v, &kpath) {
                        if !names.is_some_and(|n| n.contains(s)) {
                            self.report(&kpath, P::UnknownCollection);
                        }
                        p.references = Some(s.to_owned());
                    }
                }
                "x-parent" => p.parent = self.boolean(v, &kpath).unwrap_or(false),
                "x-cast" => p.cast = self.boolean(v, &kpath).unwrap_or(false),
                "title" => p.title = self.string(v, &kpath).map(str::to_owned),
                "description" => p.description = self.string(v, &kpath).map(str::to_owned),
                _ => {
                    self.report(&kpath, P::UnknownKeyword);
                    continue;
                }
            }
            at.insert(keyword(k), kpath);
        }
        if !at.contains_key("type") {
            self.report(path, P::Missing("type"));
        }
        if types_ok {
            self.applicability(&p, &at, path);
        }
        if let (Some(values), Some(epath)) = (enum_values, at.get("enum")) {
            p.enumeration = Some(self.enum_values(values, epath, &p.types, types_ok));
        }
        if let (Some(min), Some(max)) = (&p.minimum, &p.maximum) {
            if min.as_f64() > max.as_f64() {
                self.report(&at["minimum"], P::MinimumAboveMaximum);
            }
        }
        if p.parent && !at.contains_key("x-references") {
            self.report(&at["x-parent"], P::ParentWithoutReference);
        }
        if let Some(rpath) = at.get("x-references") {
            if types_ok && (p.types != [Type::String] || p.format != Some(Format::Uuid)) {
                self.report(rpath, P::ReferenceNotUuid);
            }
        }
        if p.cast {
            if p.types.len() > 1 {
                self.report(&at["x-cast"], P::CastOnUnion);
            } else if p.format == Some(Format::Uuid) {
                self.report(&at["x-cast"], P::CastOnUuid);
            }
        }
        Some(p)
    }

    /// Reads `type`; whether it named only known types.
    fn types(&mut self, v: &Json, path: &Path, out: &mut Vec<Type>) -> bool {
        let names: Vec<(&Json, Path)> = match v {
            Json::String(_) => vec![(v, path.clone())],
            Json::Array(a) => {
                if a.is_empty() {
                    self.report(path, P::NoType);
                    return false;
                }
                a.iter()
                    .enumerate()
                    .map(|(i, t)| (t, path.join(i)))
                    .collect()
            }
            other => {
                self.wrong(path, "a type name or an array of them", other);
                return false;
            }
        };
        let mut ok = true;
        for (t, tpath) in names {
            let Some(name) = self.string(t, &tpath) else {
                ok = false;
                continue;
            };
            match Type::parse(name) {
                Some(t) if out.contains(&t) => {
                    self.report(&tpath, P::DuplicateType(name.to_owned()));
                }
                Some(t) => out.push(t),
                None if name == "null" => {
                    self.report(&tpath, P::NullType);
                    ok = false;
                }
                None => {
                    self.report(&tpath, P::UnknownType(name.to_owned()));
                    ok = false;
                }
            }
        }
        ok
    }

    /// Each type-specific keyword must fit one of the property's types.
    fn applicability(&mut self, p: &Property, at: &BTreeMap<&str, Path>, path: &Path) {
        let has = |t: Type| p.types.contains(&t);
        let numeric = has(Type::Number) || has(Type::Integer);
        let rules: [(&str, bool, &'static str); 7] = [
            // A format fixes the form (and the stored length) itself.
            (
                "maxLength",
                has(Type::String) && p.format.is_none(),
                "string, without a format",
            ),
            (
                "format",
                p.types == [Type::String],
                "string (and only string)",
            ),
            ("minimum", numeric, "number or integer"),
            ("maximum", numeric, "number or integer"),
            ("items", has(Type::Array), "array"),
            ("maxItems", has(Type::Array), "array"),
            (
                "enum",
                !has(Type::Array),
                "string, number, integer or boolean",
            ),
        ];
        for (keyword, fits, types) in rules {
            if let Some(kpath) = at.get(keyword) {
                if !fits {
                    self.report(kpath, P::NotApplicable(types));
                }
            }
        }
        if has(Type::Array) && !at.contains_key("items") {
            self.report(path, P::ArrayWithoutItems);
        }
    }

    fn enum_values(
        &mut self,
        values: &[Json],
        path: &Path,
        types: &[Type],
        types_ok: bool,
    ) -> Vec<Value> {
        let mut out: Vec<Value> = Vec::with_capacity(values.len());
        for (i, v) in values.iter().enumerate() {
            let value = v.to_value();
            let vpath = path.join(i);
            if types_ok
                && !types
                    .iter()
                    .any(|t| super::validate::is_of_type(&value, *t))
            {
                self.report(&vpath, P::EnumValueOfWrongType);
            } else if out.iter().any(|o| super::validate::same_value(o, &value)) {
                self.report(&vpath, P::ListedTwice);
            }
            out.push(value);
        }
        out
    }

    /// Plurals are distinct, and none is another collection's name.
    fn plurals(&mut self, schema: &Schema, path: &Path) {
        let mut by_plural: BTreeMap<&str, &str> = BTreeMap::new();
        for (name, c) in &schema.collections {
            if c.plural.is_empty() {
                continue;
            }
            let ppath = path.join(name).join("plural");
            if let Some(other) = by_plural.get(c.plural.as_str()) {
                self.report(&ppath, P::PluralTaken((*other).to_owned()));
            } else {
                by_plural.insert(&c.plural, name);
            }
            if c.plural != *name && schema.collections.contains_key(&c.plural) {
                self.report(&ppath, P::PluralIsCollection(c.plural.clone()));
            }
        }
    }

    /// The `x-parent` graph between collections has no cycle. Each cycle is
    /// reported once, at the `x-parent` that closes it.
    fn cycles(&mut self, schema: &Schema, path: &Path) {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            OnStack,
            Done,
        }
        let mut marks: BTreeMap<&str, Mark> = schema
            .collections
            .keys()
            .map(|n| (n.as_str(), Mark::New))
            .collect();
        for start in schema.collections.keys() {
            if marks[start.as_str()] != Mark::New {
                continue;
            }
            // Depth-first, iteratively: (collection, index of its next parent edge).
            let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
            marks.insert(start, Mark::OnStack);
            while let Some((name, next)) = stack.last().copied() {
                let edges: Vec<(&str, &str)> = schema.collections[name].parents().collect();
                let Some(&(prop, target)) = edges.get(next) else {
                    marks.insert(name, Mark::Done);
                    stack.pop();
                    continue;
                };
                stack.last_mut().expect("not empty").1 += 1;
                match marks.get(target).copied() {
                    Some(Mark::New) => {
                        marks.insert(target, Mark::OnStack);
                        stack.push((target, 0));
                    }
                    Some(Mark::OnStack) => {
                        let from = stack.iter().position(|(n, _)| *n == target).unwrap_or(0);
                        let mut chain: Vec<String> =
                            stack[from..].iter().map(|(n, _)| (*n).to_owned()).collect();
                        chain.push(target.to_owned());
                        let ppath = path
                            .join(name)
                            .join("properties")
                            .join(prop)
                            .join("x-parent");
                        self.report(&ppath, P::ParentCycle(chain));
                    }
                    // Done, or an unknown collection (reported already).
                    _ => {}
                }
            }
        }
    }
}

/// The `&'static str` of a known keyword, for the `at` map.
fn keyword(k: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "type",
        "format",
        "maxLength",
        "maxItems",
        "minimum",
        "maximum",
        "enum",
        "items",
        "x-references",
        "x-parent",
        "x-cast",
        "title",
        "description",
    ];
    KNOWN.iter().find(|n| **n == k).copied().unwrap_or("")
}

/// A letter, then letters, digits or `_`; at most 64 characters. Names end
/// up in URLs, SQL values and generated TypeScript, where this is safe.
fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    s.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
