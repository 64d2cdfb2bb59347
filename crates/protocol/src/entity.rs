//! The synced collections as the server runs them: a [`Model`] loaded from
//! a [`Schema`] (the built-in bucket list unless the server is given
//! another), and [`EntityType`], a cheap handle to one of its collections.
//!
//! The server stores the user's own words and relationships only; external
//! data (a movie's poster, a book's cover) never is, only its id.

use std::collections::BTreeMap;

use serde_json::Value;

pub mod cast;
mod model;

pub use model::{EntityType, Model, Reference};

use crate::schema::RecordError;

pub const NAME_MAX: usize = 200;
pub const TITLE_MAX: usize = 500;
pub const DESCRIPTION_MAX: usize = 5_000;
pub const NOTES_MAX: usize = 50_000;
pub const TAGS_MAX: usize = 100;
pub const TAG_MAX: usize = 64;

/// Keys the server owns. Sent inside `data` they are ignored, never trusted.
pub const SERVER_FIELDS: &[&str] = &[
    "id",
    "_id",
    "userId",
    "createdAt",
    "updatedAt",
    "deletedAt",
    "deviceId",
    "version",
    "__v",
];

/// The fields of one operation after validation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ValidData {
    pub fields: BTreeMap<String, Value>,
    /// Keys that were sent but are not stored (not in the model, or server-owned).
    pub ignored: Vec<String>,
    /// Fields whose value was cast to the field's type (see [`cast`]); the
    /// ack lists them as `coercedFields`.
    pub coerced: Vec<String>,
}

/// A validation failure, naming the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid(pub String);

/// Parses a UUID in canonical text form (8-4-4-4-12 hex digits, any case);
/// returns it lower-cased.
pub fn parse_uuid(s: &str) -> Option<uuid::Uuid> {
    let b = s.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    uuid::Uuid::parse_str(s).ok()
}

/// Validates an operation's `data` for `entity` by its model's schema
/// ([`Schema::validate_record`](crate::schema::Schema::validate_record)).
/// On create, required fields must be present; on update, any subset may be.
pub fn validate_data(
    entity: EntityType,
    data: &serde_json::Map<String, Value>,
    is_create: bool,
) -> Result<ValidData, Invalid> {
    entity
        .model()
        .schema()
        .validate_record(entity.as_str(), data, is_create)
        .map_err(|e: RecordError| Invalid(e.to_string()))
}

#[cfg(test)]
mod tests;
