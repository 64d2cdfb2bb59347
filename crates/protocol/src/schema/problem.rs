//! What can be wrong with a schema document, and where.

use std::fmt;

/// One problem of a schema document, at a JSON Pointer (RFC 6901) into it:
/// `/collections/note/properties/rank/minimum: must be a number, not a string`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct SchemaProblem {
    /// `""` is the whole document.
    pub path: String,
    pub kind: ProblemKind,
}

impl fmt::Display for SchemaProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "(document)"
        } else {
            &self.path
        };
        write!(f, "{path}: {}", self.kind)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProblemKind {
    #[error("not a JSON document: {0}")]
    NotJson(String),
    #[error("must be {expected}, not {found}")]
    WrongType {
        expected: &'static str,
        found: &'static str,
    },
    #[error("this key appears more than once in its object")]
    DuplicateKey,
    #[error("is not a keyword tidesync knows (docs/SCHEMA.md lists them)")]
    UnknownKeyword,
    #[error("{0:?} is missing")]
    Missing(&'static str),
    #[error("declares no collection; a schema needs at least one")]
    NoCollections,
    #[error("must start with a letter, then letters, digits or \"_\", at most 64 in all")]
    NotIdentifier,
    #[error(
        "is a key the server owns on every record (id, _id, userId, createdAt, updatedAt, \
         deletedAt, deviceId, version, __v); name the property otherwise"
    )]
    ServerOwnedKey,
    #[error(
        "is a key an initial-sync page holds beside the collections' arrays \
         (syncTimestamp, hasMore, removedSpaces)"
    )]
    ReservedPlural,
    #[error("is also the plural of collection {0:?}")]
    PluralTaken(String),
    #[error(
        "is the name of collection {0:?}; an entityType and a serverUpdates array \
         would read alike"
    )]
    PluralIsCollection(String),
    #[error("a collection is an object schema: \"type\" may only be \"object\"")]
    CollectionNotObject,
    #[error("unknown type {0:?}; tidesync knows string, number, integer, boolean and array")]
    UnknownType(String),
    #[error(
        "\"null\" is not a type here: every property that is not required may be null \
         (null clears it)"
    )]
    NullType,
    #[error("must name at least one type")]
    NoType,
    #[error("type {0:?} is listed twice")]
    DuplicateType(String),
    #[error("applies only to a property of type {0}")]
    NotApplicable(&'static str),
    #[error("unknown format {0:?}; tidesync knows date-time and uuid")]
    UnknownFormat(String),
    #[error("is greater than maximum")]
    MinimumAboveMaximum,
    #[error("must list at least one value")]
    EmptyEnum,
    #[error("is listed twice")]
    ListedTwice,
    #[error("is not of the property's type")]
    EnumValueOfWrongType,
    #[error("a property of type array needs \"items\"")]
    ArrayWithoutItems,
    #[error("x-references and x-parent belong on a collection's own property, not inside items")]
    ReferenceInItems,
    #[error("names no collection of this schema")]
    UnknownCollection,
    #[error("x-parent needs x-references on the same property")]
    ParentWithoutReference,
    #[error(
        "a reference holds a record's id: its property needs \"type\": \"string\" and \
         \"format\": \"uuid\""
    )]
    ReferenceNotUuid,
    #[error("x-cast needs a single type: a union takes its values as they are")]
    CastOnUnion,
    #[error("x-cast cannot apply to a uuid: no number or boolean casts to a UUID")]
    CastOnUuid,
    #[error("x-parent makes a cycle ({}): a record cannot be its own ancestor", .0.join(" → "))]
    ParentCycle(Vec<String>),
    #[error(
        "a shareable collection is a sharing root and cannot have an x-parent \
         (sharing roots do not nest)"
    )]
    ShareableWithParent,
    #[error("names no property of this collection")]
    RequiredUnknown,
}
