//! A record's data as validated, shared by the hand-written model's names
//! ([`crate::entity`]) and the declared schema ([`crate::schema`]), so that
//! neither imports the other for them.

use std::collections::BTreeMap;

use serde_json::Value;

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
    /// Fields whose value was cast to the field's type (see [`crate::entity::cast`]); the
    /// ack lists them as `coercedFields`.
    pub coerced: Vec<String>,
}

/// Parses a UUID in canonical text form (8-4-4-4-12 hex digits, any case);
/// returns it lower-cased.
pub fn parse_uuid(s: &str) -> Option<uuid::Uuid> {
    let b = s.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    uuid::Uuid::parse_str(s).ok()
}
