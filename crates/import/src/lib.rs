//! `tidesync import mongo`, the pure part: reading `mongoexport` files of
//! the original Node.js/MongoDB server ([`read`]), decoding Extended JSON
//! ([`ejson`]), and mapping each user's documents to what tidesync stores
//! ([`map`]), with the reason for every document left out ([`summary`]).
//! Storing is the store's (`Store::import_user`); grouping documents by
//! user is the caller's.

pub mod ejson;
pub mod map;
pub mod read;
pub mod summary;

use serde_json::Value;
use tidesync_protocol::entity::EntityType;
use tidesync_protocol::UserId;

/// The collections of the original, each exported to `<name>.json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Collection {
    Users,
    Spaces,
    Categories,
    Items,
    Synclogs,
}

impl Collection {
    /// In the order they are read and reported.
    pub const ALL: [Collection; 5] = [
        Collection::Users,
        Collection::Spaces,
        Collection::Categories,
        Collection::Items,
        Collection::Synclogs,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Collection::Users => "users",
            Collection::Spaces => "spaces",
            Collection::Categories => "categories",
            Collection::Items => "items",
            Collection::Synclogs => "synclogs",
        }
    }

    pub fn file_name(self) -> String {
        format!("{}.json", self.name())
    }

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn from_index(i: usize) -> Option<Collection> {
        Collection::ALL.get(i).copied()
    }

    /// The tidesync entity its documents become, for record collections.
    pub fn entity(self) -> Option<EntityType> {
        match self {
            Collection::Spaces => Some(EntityType::Space),
            Collection::Categories => Some(EntityType::Category),
            Collection::Items => Some(EntityType::Item),
            Collection::Users | Collection::Synclogs => None,
        }
    }

    pub fn of_entity(e: EntityType) -> Collection {
        // The import reads the built-in model's collections only.
        match e.as_str() {
            "space" => Collection::Spaces,
            "category" => Collection::Categories,
            _ => Collection::Items,
        }
    }
}

/// The ObjectId (hex) of the user a document belongs to: a user's own
/// `_id`, every other document's `userId`.
pub fn owner(c: Collection, doc: &Value) -> Option<String> {
    let key = if c == Collection::Users {
        "_id"
    } else {
        "userId"
    };
    ejson::object_id(doc.get(key)?)
}

/// Namespace of the user ids derived from ObjectIds (UUID v5).
const USER_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6f1c7d52_3b5e_4c1a_9e7a_2d4b8f0c9a11);

/// The tidesync id of the original's user with this ObjectId: a UUID v5 of
/// its hex, so every run (and every re-run) maps a user the same way.
pub fn user_id(object_id_hex: &str) -> UserId {
    UserId::from_uuid(uuid::Uuid::new_v5(
        &USER_NAMESPACE,
        object_id_hex.to_ascii_lowercase().as_bytes(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn user_ids_are_deterministic_and_distinct() {
        let a = user_id("65a1b2c3d4e5f60718293a4b");
        assert_eq!(a, user_id("65A1B2C3D4E5F60718293A4B"));
        assert_ne!(a, user_id("65a1b2c3d4e5f60718293a4c"));
        assert_eq!(a.as_uuid().get_version_num(), 5);
    }

    #[test]
    fn owners() {
        let oid = json!({"$oid": "65a1b2c3d4e5f60718293a4b"});
        assert!(owner(Collection::Users, &json!({"_id": oid})).is_some());
        assert!(owner(Collection::Items, &json!({"userId": oid})).is_some());
        assert!(owner(Collection::Items, &json!({"_id": oid})).is_none());
    }
}

#[cfg(test)]
mod map_tests;
