//! The declared data model: an app's collections, read from one JSON schema
//! document (issue 21; the format is in `docs/SCHEMA.md`).
//!
//! This module is the format only: [`Schema::parse`] checks a document and
//! reports every problem with its JSON path, [`Schema::validate_record`]
//! checks one operation's `data` against a collection, and
//! [`Schema::builtin`] is the original bucket list written in the format
//! (`crates/protocol/schema/bucket-list.json`). The server still runs the
//! hand-written model of [`crate::entity`]; the schema's tests prove the two
//! agree, so that the engine can switch to the schema without a change of
//! behaviour.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::{Number, Value};

mod check;
mod evolve;
mod json;
pub mod openapi;
mod print;
mod problem;
mod validate;

pub use evolve::{compare, ChangeKind, SchemaChange};
pub use openapi::{openapi_components, record_component_name, SERVER_UPDATES};
pub use problem::{ProblemKind, SchemaProblem};
pub use validate::{FieldProblem, RecordError};

/// The built-in default, embedded in the binary: the original's bucket list.
/// (`NOTES_JSON`, another app's model, is for tests and examples.)
pub const BUILTIN_JSON: &str = include_str!("../schema/bucket-list.json");
pub const NOTES_JSON: &str = include_str!("../schema/notes.json");

/// A checked schema document.
#[derive(Clone, Debug, PartialEq)]
pub struct Schema {
    /// `$schema`, an annotation kept for printing.
    pub dialect: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    /// By name: the `entityType` of their records.
    pub collections: BTreeMap<String, Collection>,
}

/// One collection: a JSON Schema object schema plus tidesync's keywords.
#[derive(Clone, Debug, PartialEq)]
pub struct Collection {
    pub title: Option<String>,
    pub description: Option<String>,
    /// The name of its array in `serverUpdates` (and in an initial-sync page).
    pub plural: String,
    /// A sharing root: its records can be shared with other accounts, and
    /// carry the records whose `x-parent` chain leads to them.
    pub shareable: bool,
    /// In file order: the order responses list a record's fields in.
    pub properties: Vec<(String, Property)>,
    /// Names of properties a create must set (see [`Schema::validate_record`]).
    pub required: Vec<String>,
}

/// A JSON type a property may hold. `null` is not one: every property that
/// is not required may be `null`, which clears it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    String,
    Number,
    /// A number without a fractional part (`1.0` is one, as in JSON Schema).
    Integer,
    Boolean,
    Array,
}

/// The string formats tidesync checks and normalises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Stored as `YYYY-MM-DDTHH:MM:SS.mmmZ`, UTC.
    DateTime,
    /// Canonical `8-4-4-4-12` text, stored lower-case.
    Uuid,
}

/// One property of a collection, or the `items` of an array property.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Property {
    pub title: Option<String>,
    pub description: Option<String>,
    /// One type, or a union (`["number", "string"]`), in file order.
    pub types: Vec<Type>,
    pub format: Option<Format>,
    /// In characters (Unicode scalar values), not bytes.
    pub max_length: Option<u64>,
    pub minimum: Option<Number>,
    pub maximum: Option<Number>,
    pub enumeration: Option<Vec<Value>>,
    pub items: Option<Box<Property>>,
    pub max_items: Option<u64>,
    /// `x-references`: the collection whose record's id this holds.
    pub references: Option<String>,
    /// `x-parent`: deleting the referenced record deletes this one.
    pub parent: bool,
    /// `x-cast`: values are cast to the type as the original's Mongoose
    /// schemas cast them (see [`crate::entity::cast`]).
    pub cast: bool,
}

impl Type {
    pub fn as_str(self) -> &'static str {
        match self {
            Type::String => "string",
            Type::Number => "number",
            Type::Integer => "integer",
            Type::Boolean => "boolean",
            Type::Array => "array",
        }
    }

    pub fn parse(s: &str) -> Option<Type> {
        Some(match s {
            "string" => Type::String,
            "number" => Type::Number,
            "integer" => Type::Integer,
            "boolean" => Type::Boolean,
            "array" => Type::Array,
            _ => return None,
        })
    }
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::DateTime => "date-time",
            Format::Uuid => "uuid",
        }
    }

    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "date-time" => Some(Format::DateTime),
            "uuid" => Some(Format::Uuid),
            _ => None,
        }
    }
}

impl Schema {
    /// Reads and checks a schema document. Every problem is reported, each
    /// with the JSON Pointer of where it is, in document order.
    pub fn parse(json: &str) -> Result<Schema, Vec<SchemaProblem>> {
        check::parse(json)
    }

    /// The original's bucket list (spaces → categories → items), the model
    /// a server runs when given no schema.
    pub fn builtin() -> &'static Schema {
        static BUILTIN: OnceLock<Schema> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            Schema::parse(BUILTIN_JSON).unwrap_or_else(|problems| {
                // A test parses the file, so this is a build that skipped them.
                panic!("the built-in schema does not check: {problems:?}")
            })
        })
    }

    pub fn collection(&self, name: &str) -> Option<&Collection> {
        self.collections.get(name)
    }

    /// The collection whose `plural` is `plural`.
    pub fn by_plural(&self, plural: &str) -> Option<(&str, &Collection)> {
        self.collections
            .iter()
            .find(|(_, c)| c.plural == plural)
            .map(|(n, c)| (n.as_str(), c))
    }

    /// The collections' names, each after the collections its `x-parent`s
    /// point to (ties by name): the order to apply a pull's records in, as
    /// spaces come before categories before items today.
    pub fn parents_first(&self) -> Vec<&str> {
        let mut placed: Vec<&str> = Vec::with_capacity(self.collections.len());
        while placed.len() < self.collections.len() {
            // A checked schema has no x-parent cycle, so one is always ready.
            let next = self
                .collections
                .iter()
                .find(|(name, c)| {
                    !placed.contains(&name.as_str())
                        && c.parents().all(|(_, target)| placed.contains(&target))
                })
                .map(|(name, _)| name.as_str())
                .expect("a checked schema has no x-parent cycle");
            placed.push(next);
        }
        placed
    }

    /// The document, pretty-printed: keywords in a fixed order, properties
    /// in the order of the file it was read from.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("a schema always serialises")
    }
}

impl Collection {
    pub fn property(&self, name: &str) -> Option<&Property> {
        self.properties
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p)
    }

    pub fn is_required(&self, name: &str) -> bool {
        self.required.iter().any(|r| r == name)
    }

    /// The properties that place a record: its `x-parent` references, in
    /// file order (what a tombstone keeps).
    pub fn parents(&self) -> impl Iterator<Item = (&str, &str)> {
        self.properties
            .iter()
            .filter(|(_, p)| p.parent)
            .filter_map(|(n, p)| p.references.as_deref().map(|target| (n.as_str(), target)))
    }
}

#[cfg(test)]
mod tests;
