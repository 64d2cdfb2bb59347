//! One operation's `data` checked against a collection of the schema: the
//! schema's counterpart of [`crate::entity::validate_data`], with the same
//! result type and the same rules, so the engine can switch to it.
//!
//! A value goes through three steps: the cast (`x-cast` only, as the
//! original's Mongoose schemas cast), the type (one of the property's
//! types), then the bounds (`maxLength`, `minimum`, `format`, …) on the cast
//! value, which also normalise UUIDs and date-times.

use std::fmt;

use serde_json::{Map, Number, Value};

use super::{Format, Property, Schema, Type};
use crate::data::{parse_uuid, ValidData, SERVER_FIELDS};
use crate::entity::cast::{self, Cast};
use crate::time::{parse_iso, to_iso};

/// Why an operation's `data` was refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RecordError {
    #[error("{0:?} is not a collection of this schema")]
    UnknownCollection(String),
    /// Displayed `field: problem`, as [`crate::entity::Invalid`] is.
    #[error("{field}: {problem}")]
    Field {
        field: String,
        problem: FieldProblem,
    },
}

/// What is wrong with one field's value.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum FieldProblem {
    /// Not of the property's type, even after the cast; the text says what
    /// is accepted.
    #[error("{0}")]
    WrongType(Expected),
    #[error("is required to create a {0}")]
    Missing(String),
    #[error("is required and cannot be null")]
    Null,
    #[error("must not be empty")]
    Blank,
    #[error("must be at most {0} characters")]
    TooLong(u64),
    #[error("must be at least {0}")]
    BelowMinimum(Number),
    #[error("must be at most {0}")]
    AboveMaximum(Number),
    #[error("must be one of {}", list(.0))]
    NotInEnum(Vec<Value>),
    /// A reference that is not a UUID; names the referenced collection.
    #[error("must be the UUID of a {0}")]
    NotReference(String),
    #[error("must be a UUID")]
    NotUuid,
    #[error("must be an RFC 3339 date-time with an offset, within years 0000-9999")]
    NotDateTime,
    #[error("must have at most {0} items")]
    TooManyItems(u64),
    #[error("item {index}: {problem}")]
    Item {
        index: usize,
        problem: Box<FieldProblem>,
    },
}

/// What a property accepts, as a refusal says it (`must be a number or a
/// numeric string`); derived from the property, so it is never stale.
#[derive(Clone, Debug, PartialEq)]
pub struct Expected(Box<Property>);

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("must be ")?;
        let p = &self.0;
        if let [t] = p.types[..] {
            return f.write_str(&single(p, t));
        }
        let parts: Vec<String> = p
            .types
            .iter()
            .map(|t| match (t, p.max_length) {
                (Type::String, Some(n)) => format!("a string of at most {n} characters"),
                _ => noun(*t).0.to_owned(),
            })
            .collect();
        f.write_str(&parts.join(" or "))
    }
}

/// The refusal for a property of one type.
fn single(p: &Property, t: Type) -> String {
    let text = match (t, p.format, p.cast) {
        (Type::String, Some(Format::Uuid), _) => "a UUID string",
        (Type::String, Some(Format::DateTime), true) => {
            "an ISO-8601 date-time string or epoch milliseconds"
        }
        (Type::String, Some(Format::DateTime), false) => "an RFC 3339 date-time string",
        (Type::String, None, true) => "a string (a number or a boolean is cast to one)",
        (Type::Number, _, true) => "a number or a numeric string",
        (Type::Integer, _, true) => "an integer or a numeric string",
        (Type::Boolean, _, true) => {
            "true, false, \"true\", \"false\", 1, 0, \"1\", \"0\", \"yes\" or \"no\""
        }
        (Type::Boolean, _, false) => "true or false",
        (Type::Array, _, _) => {
            let items = p.items.as_deref();
            let nouns = items.map_or("values".to_owned(), |i| {
                i.types
                    .iter()
                    .map(|t| noun(*t).1)
                    .collect::<Vec<_>>()
                    .join(" or ")
            });
            let cast = match items {
                Some(i) if i.cast && i.types == [Type::String] => {
                    " (numbers and booleans are cast to strings)"
                }
                Some(i) if i.cast && i.types.len() == 1 => " (cast as each item's type)",
                _ => "",
            };
            return format!("an array of {nouns}{cast}");
        }
        (t, _, _) => noun(t).0,
    };
    text.to_owned()
}

/// A type's noun, singular with its article and plural.
fn noun(t: Type) -> (&'static str, &'static str) {
    match t {
        Type::String => ("a string", "strings"),
        Type::Number => ("a number", "numbers"),
        Type::Integer => ("an integer", "integers"),
        Type::Boolean => ("a boolean", "booleans"),
        Type::Array => ("an array", "arrays"),
    }
}

fn list(values: &[Value]) -> String {
    values
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Schema {
    /// Validates an operation's `data` for `collection`: keys the server
    /// owns and keys that are not properties are ignored (and listed); each
    /// property's value is cast, type-checked and bounded; on create every
    /// required property must be present. The first problem, in key order,
    /// is the answer, as with [`crate::entity::validate_data`].
    pub fn validate_record(
        &self,
        collection: &str,
        data: &Map<String, Value>,
        is_create: bool,
    ) -> Result<ValidData, RecordError> {
        let c = self
            .collection(collection)
            .ok_or_else(|| RecordError::UnknownCollection(collection.to_owned()))?;
        let mut out = ValidData::default();
        for (key, value) in data {
            let Some(prop) = c
                .property(key)
                .filter(|_| !SERVER_FIELDS.contains(&key.as_str()))
            else {
                out.ignored.push(key.clone());
                continue;
            };
            let v = validate_value(prop, value, c.is_required(key)).map_err(|problem| {
                RecordError::Field {
                    field: key.clone(),
                    problem,
                }
            })?;
            if v.coerced {
                out.coerced.push(key.clone());
            }
            out.fields.insert(key.clone(), v.value);
        }
        // Sorted, so the ack does not depend on the JSON map's key order.
        out.coerced.sort();
        if is_create {
            // In property order, so the first missing one named is stable.
            for (name, _) in &c.properties {
                if c.is_required(name) && !out.fields.contains_key(name) {
                    return Err(RecordError::Field {
                        field: name.clone(),
                        problem: FieldProblem::Missing(collection.to_owned()),
                    });
                }
            }
        }
        Ok(out)
    }
}

/// Validates one property's value: `null` clears it unless it is required.
pub(super) fn validate_value(
    p: &Property,
    v: &Value,
    required: bool,
) -> Result<Cast, FieldProblem> {
    let null = |coerced| {
        if required {
            Err(FieldProblem::Null)
        } else {
            Ok(Cast {
                value: Value::Null,
                coerced,
            })
        }
    };
    if v.is_null() {
        return null(false);
    }
    let shaped =
        shape(p, v).ok_or_else(|| FieldProblem::WrongType(Expected(Box::new(p.clone()))))?;
    // A cast may produce null ("" for a number or a date).
    if shaped.value.is_null() {
        return null(shaped.coerced);
    }
    Ok(Cast {
        value: bounds(p, shaped.value, required)?,
        coerced: shaped.coerced,
    })
}

/// The cast (with `x-cast`) and the type check; `None` is a refusal. For an
/// array, each item is shaped by `items`, and an item may not be `null`.
fn shape(p: &Property, v: &Value) -> Option<Cast> {
    let cast = if p.cast {
        match p.types[..] {
            [Type::String] if p.format == Some(Format::DateTime) => cast::date(v)?,
            [Type::String] => cast::string(v)?,
            [Type::Number] | [Type::Integer] => cast::number(v)?,
            [Type::Boolean] => cast::boolean(v)?,
            // Mongoose's `castNonArrays`: one value stands for an array of it.
            [Type::Array] if !v.is_array() => Cast {
                value: Value::Array(vec![v.clone()]),
                coerced: true,
            },
            _ => Cast {
                value: v.clone(),
                coerced: false,
            },
        }
    } else {
        Cast {
            value: v.clone(),
            coerced: false,
        }
    };
    if cast.value.is_null() {
        return Some(cast);
    }
    if !p.types.iter().any(|t| is_of_type(&cast.value, *t)) {
        return None;
    }
    let Value::Array(elements) = &cast.value else {
        return Some(cast);
    };
    let items = p.items.as_deref()?;
    let mut coerced = cast.coerced;
    let mut out = Vec::with_capacity(elements.len());
    for e in elements {
        let c = shape(items, e).filter(|c| !c.value.is_null())?;
        coerced |= c.coerced;
        out.push(c.value);
    }
    Some(Cast {
        value: Value::Array(out),
        coerced,
    })
}

/// The bounds, on a shaped non-null value; returns it normalised.
fn bounds(p: &Property, v: Value, required: bool) -> Result<Value, FieldProblem> {
    let v = match v {
        Value::String(s) => Value::String(string_bounds(p, s, required)?),
        Value::Number(n) => {
            let x = n.as_f64();
            if let Some(min) = p.minimum.as_ref().filter(|m| x < m.as_f64()) {
                return Err(FieldProblem::BelowMinimum(min.clone()));
            }
            if let Some(max) = p.maximum.as_ref().filter(|m| x > m.as_f64()) {
                return Err(FieldProblem::AboveMaximum(max.clone()));
            }
            Value::Number(n)
        }
        Value::Array(elements) => {
            if let Some(max) = p.max_items.filter(|m| elements.len() as u64 > *m) {
                return Err(FieldProblem::TooManyItems(max));
            }
            let items = p
                .items
                .as_deref()
                .expect("shape checked an array has items");
            let mut out = Vec::with_capacity(elements.len());
            for (index, e) in elements.into_iter().enumerate() {
                out.push(
                    bounds(items, e, false).map_err(|problem| FieldProblem::Item {
                        index,
                        problem: Box::new(problem),
                    })?,
                );
            }
            Value::Array(out)
        }
        other => other,
    };
    if let Some(values) = &p.enumeration {
        if !values.iter().any(|e| same_value(e, &v)) {
            return Err(FieldProblem::NotInEnum(values.clone()));
        }
    }
    Ok(v)
}

fn string_bounds(p: &Property, s: String, required: bool) -> Result<String, FieldProblem> {
    match p.format {
        Some(Format::Uuid) => {
            return parse_uuid(&s)
                .map(|id| id.hyphenated().to_string())
                .ok_or_else(|| match &p.references {
                    Some(target) => FieldProblem::NotReference(target.clone()),
                    None => FieldProblem::NotUuid,
                });
        }
        Some(Format::DateTime) => {
            return parse_iso(&s).map(to_iso).ok_or(FieldProblem::NotDateTime);
        }
        None => {}
    }
    if let Some(max) = p.max_length.filter(|m| s.chars().count() as u64 > *m) {
        // In a union the limit is part of what the property accepts.
        return Err(if p.types.len() > 1 {
            FieldProblem::WrongType(Expected(Box::new(p.clone())))
        } else {
            FieldProblem::TooLong(max)
        });
    }
    if required && s.trim().is_empty() {
        return Err(FieldProblem::Blank);
    }
    Ok(s)
}

/// Whether `v` is of JSON Schema type `t` (`1.0` is an integer).
pub(super) fn is_of_type(v: &Value, t: Type) -> bool {
    match t {
        Type::String => v.is_string(),
        Type::Number => v.is_number(),
        Type::Integer => v
            .as_f64()
            .is_some_and(|x| x.fract() == 0.0 && v.is_number()),
        Type::Boolean => v.is_boolean(),
        Type::Array => v.is_array(),
    }
}

/// JSON Schema equality: numbers by value (`1` is `1.0`).
pub(super) fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}
