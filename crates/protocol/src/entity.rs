//! The synced collections as the server runs them: a [`Model`] loaded from
//! a [`Schema`] (the built-in bucket list unless the server is given
//! another), and [`EntityType`], a cheap handle to one of its collections.
//!
//! The server stores the user's own words and relationships only; external
//! data (a movie's poster, a book's cover) never is, only its id.

use serde_json::Value;

pub mod cast;
mod model;

pub use model::{EntityType, Model, Reference};

pub use crate::data::{parse_uuid, ValidData, SERVER_FIELDS};
use crate::schema::RecordError;

pub const NAME_MAX: usize = 200;
pub const TITLE_MAX: usize = 500;
pub const DESCRIPTION_MAX: usize = 5_000;
pub const NOTES_MAX: usize = 50_000;
pub const TAGS_MAX: usize = 100;
pub const TAG_MAX: usize = 64;

/// A validation failure, naming the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid(pub String);

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
