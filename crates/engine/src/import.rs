//! Records brought from another system (`tidesync import mongo`): how they
//! become rows, as a pure function the backends run under the user's lock.
//!
//! An imported record carries its own history (created, last changed,
//! deleted), so it is written as if one operation had made each of those
//! moments: every field is stamped with the record's `updatedAt`, so a later
//! push merges field by field against it (last writer wins) exactly as it
//! would against a record written through `/api/sync`.

use std::collections::BTreeMap;

use serde_json::Value;
use tidesync_protocol::entity::EntityType;
use tidesync_protocol::merge::{RecordState, Version};
use tidesync_protocol::sync::Ack;
use tidesync_protocol::time::Millis;
use tidesync_protocol::{RecordId, ScopeId, UserId};

use crate::push::LogRow;
use crate::record::{RecordWrite, StoredRecord};

/// The operation part of every imported version. Versions compare by
/// (timestamp, device, operation), so this only breaks a tie with a later
/// write of the same millisecond from the same device.
pub const IMPORT_OP: &str = "import";

/// A record as another system stored it, its fields already validated.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportedRecord {
    pub id: RecordId,
    pub entity: EntityType,
    pub fields: BTreeMap<String, Value>,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub deleted_at: Option<Millis>,
    /// The device of its last change.
    pub device_id: String,
}

impl ImportedRecord {
    /// When it last changed (its delete, if later than its last update):
    /// stored as its `server_time`, so that a device of the old system
    /// sending its last sync date gets exactly what changed after it.
    pub fn changed_at(&self) -> Millis {
        self.updated_at
            .max(self.created_at)
            .max(self.deleted_at.unwrap_or(Millis::MIN))
    }

    fn state(&self) -> RecordState {
        let v = |ts| Version {
            ts,
            device: self.device_id.clone(),
            op: IMPORT_OP.to_owned(),
        };
        let fields_at = v(self.updated_at.max(self.created_at));
        RecordState {
            clocks: self
                .fields
                .keys()
                .map(|k| (k.clone(), fields_at.clone()))
                .collect(),
            fields: self.fields.clone(),
            created: v(self.created_at),
            deleted: self.deleted_at.map(v),
        }
    }
}

/// A user to import, with everything of theirs.
#[derive(Clone)]
pub struct ImportedUser {
    pub id: UserId,
    pub email: String,
    pub name: String,
    /// The other system's hash, kept as is (bcrypt): verified at the first
    /// sign-in and replaced by an Argon2id hash then.
    pub password_hash: String,
    pub created_at: Millis,
    pub records: Vec<ImportedRecord>,
    pub logs: Vec<ImportedLog>,
}

impl std::fmt::Debug for ImportedUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportedUser")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("password_hash", &"<redacted>")
            .field("records", &self.records.len())
            .field("logs", &self.logs.len())
            .finish()
    }
}

/// An operation the other system applied, so that a retry of it is
/// answered `duplicate` instead of being applied again.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportedLog {
    pub operation_id: String,
    pub device_id: String,
    pub entity: Option<EntityType>,
    pub entity_id: Option<String>,
    pub operation: Option<tidesync_protocol::merge::OpKind>,
    /// JSON of the fields the operation sent (`{}` when unknown).
    pub changes: String,
    pub client_time: Option<Millis>,
    /// When the other system received it (kept for retention).
    pub received_at: Millis,
}

impl ImportedLog {
    /// The stored row. The other system answered an applied operation with
    /// `{id, success: true}` and kept no more of its answer, so that is the
    /// ack a retry gets back (with `duplicate: true`).
    pub fn to_row(&self) -> LogRow {
        let ack = Ack {
            operation_id: Some(self.operation_id.clone()),
            id: self.entity_id.clone(),
            success: true,
            duplicate: false,
            conflict: false,
            error: None,
            ignored_fields: vec![],
            coerced_fields: vec![],
        };
        LogRow {
            operation_id: self.operation_id.clone(),
            device_id: self.device_id.clone(),
            entity_type: self.entity,
            entity_id: self.entity_id.clone(),
            operation: self.operation,
            changes: self.changes.clone(),
            ack: serde_json::to_string(&ack).expect("ack serializes"),
            client_time: self.client_time,
            server_time: self.received_at,
        }
    }
}

/// The rows for `records` (those not stored yet) in the user's personal
/// `scope` whose counter is at `head`: versions `head + 1 …` in order of
/// when each record last changed (then id), so that version order follows
/// the old system's change order and a date cursor maps to a version.
/// Returns the rows and the new head.
pub fn plan(
    scope: ScopeId,
    user: UserId,
    head: i64,
    records: &[ImportedRecord],
) -> (Vec<RecordWrite>, i64) {
    let mut order: Vec<&ImportedRecord> = records.iter().collect();
    order.sort_by_key(|r| (r.changed_at(), r.id));
    let mut version = head;
    let rows = order
        .into_iter()
        .map(|r| {
            version += 1;
            StoredRecord {
                scope,
                id: r.id,
                entity: r.entity,
                version,
                state: r.state(),
                created_by: user,
                bytes: 0,
            }
            .to_write(r.changed_at())
        })
        .collect();
    (rows, version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tidesync_protocol::merge::{self, OpKind};

    fn rec(n: u128, updated: Millis, deleted: Option<Millis>) -> ImportedRecord {
        ImportedRecord {
            id: RecordId::from_uuid(tidesync_protocol::uuid::Uuid::from_u128(n)),
            entity: EntityType::Item,
            fields: serde_json::from_value(json!({"title": format!("t{n}")})).unwrap(),
            created_at: 1_000,
            updated_at: updated,
            deleted_at: deleted,
            device_id: "dev-old".into(),
        }
    }

    #[test]
    fn versions_follow_change_order_and_server_time_is_the_last_change() {
        let recs = [
            rec(1, 5_000, None),
            rec(2, 2_000, Some(9_000)),
            rec(3, 3_000, None),
        ];
        let (rows, head) = plan(ScopeId::new(7), UserId::random(), 10, &recs);
        assert_eq!(head, 13);
        let order: Vec<_> = rows.iter().map(|r| (r.version, r.server_time)).collect();
        assert_eq!(order, vec![(11, 3_000), (12, 5_000), (13, 9_000)]);
        let tomb = &rows[2];
        assert_eq!(tomb.deleted_at, Some(9_000));
        assert_eq!(tomb.updated_at, 9_000);
        assert_eq!(tomb.created_at, 1_000);
        assert_eq!(tomb.device_id, "dev-old");
    }

    #[test]
    fn a_later_push_merges_per_field_against_updated_at() {
        let (rows, _) = plan(ScopeId::new(1), UserId::random(), 0, &[rec(1, 5_000, None)]);
        let state = merge::decode_state(&rows[0].data, &rows[0].clocks).unwrap();
        let write = |ts: Millis| Version {
            ts,
            device: "new".into(),
            op: "o".into(),
        };
        let title = serde_json::from_value(json!({"title": "x"})).unwrap();
        let older = merge::apply(Some(&state), OpKind::Update, &title, &write(4_999), &|_| {
            false
        })
        .unwrap();
        assert!(older.conflict && !older.changed);
        let newer = merge::apply(Some(&state), OpKind::Update, &title, &write(5_001), &|_| {
            false
        })
        .unwrap();
        assert!(newer.changed);
        assert_eq!(newer.state.fields["title"], json!("x"));
    }

    #[test]
    fn an_imported_operation_acks_as_applied() {
        let log = ImportedLog {
            operation_id: "op-1".into(),
            device_id: "d".into(),
            entity: Some(EntityType::Item),
            entity_id: Some("550e8400-e29b-41d4-a716-446655440000".into()),
            operation: Some(OpKind::Create),
            changes: "{}".into(),
            client_time: Some(5),
            received_at: 6,
        };
        let row = log.to_row();
        let ack: Ack = serde_json::from_str(&row.ack).unwrap();
        assert!(ack.success && !ack.duplicate);
        assert_eq!(ack.operation_id.as_deref(), Some("op-1"));
        assert_eq!(row.server_time, 6);
    }
}
