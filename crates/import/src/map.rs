//! One user's documents of the original → what tidesync stores: the
//! account, the records (validated and cast exactly as a push would do),
//! and the applied operations. Everything left out is counted in the
//! [`Summary`] with its reason.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Map, Value};
use tidesync_engine::import::{ImportedLog, ImportedRecord, ImportedUser};
use tidesync_protocol::auth::{normalize_email, normalize_name};
use tidesync_protocol::entity::{parse_uuid, validate_data, EntityType, SERVER_FIELDS};
use tidesync_protocol::merge::OpKind;
use tidesync_protocol::sync::{is_client_key, MAX_DEVICE_ID, MAX_OPERATION_ID};
use tidesync_protocol::time::Millis;
use tidesync_protocol::RecordId;

use crate::ejson;
use crate::summary::Summary;
use crate::Collection;

/// The device of a record or operation the original stored without one.
pub const UNKNOWN_DEVICE: &str = "import";

/// A document and where it was read ("items.json line 7").
#[derive(Clone, Debug)]
pub struct Source {
    pub doc: Value,
    pub at: String,
}

impl Source {
    fn example(&self) -> String {
        match self.doc.get("_id").map(|v| ejson::plain(v.clone())) {
            Some(Value::String(id)) => format!("{} _id {id}", self.at),
            _ => self.at.clone(),
        }
    }
}

/// Everything of one user, by collection.
#[derive(Clone, Debug, Default)]
pub struct UserDocs {
    pub by: [Vec<Source>; 5],
}

impl UserDocs {
    pub fn push(&mut self, c: Collection, s: Source) {
        self.by[c.index()].push(s);
    }

    fn take(&mut self, c: Collection) -> Vec<Source> {
        std::mem::take(&mut self.by[c.index()])
    }

    /// Leaves every document out for `reason`.
    fn skip_all(self, reason: &str, sum: &mut Summary) {
        for c in Collection::ALL {
            for s in &self.by[c.index()] {
                sum.skip(c, reason, || s.example());
            }
        }
    }
}

/// Why a user cannot be imported at all.
const NO_USER: &str = "unknown owner: no user has this userId";

/// Maps the documents of the user whose ObjectId is `owner`; `None` when
/// the user cannot be imported (then every document of theirs is counted
/// as skipped).
pub fn map_user(owner: &str, mut docs: UserDocs, sum: &mut Summary) -> Option<ImportedUser> {
    let mut users = docs.take(Collection::Users).into_iter();
    let Some(user_doc) = users.next() else {
        docs.skip_all(NO_USER, sum);
        return None;
    };
    for dup in users {
        sum.skip(Collection::Users, "duplicate _id", || dup.example());
    }
    let account = match account(owner, &user_doc.doc, sum) {
        Ok(a) => a,
        Err(why) => {
            sum.skip(Collection::Users, &why, || user_doc.example());
            docs.skip_all("owner skipped (their user document is invalid)", sum);
            return None;
        }
    };
    let mut records = Vec::new();
    let mut seen = HashSet::new();
    // Parents before children: the reference checks and the cascade need
    // the spaces, then the categories.
    let mut parents: HashMap<RecordId, (EntityType, Option<RecordId>, Option<Millis>)> =
        HashMap::new();
    for c in [
        Collection::Spaces,
        Collection::Categories,
        Collection::Items,
    ] {
        let entity = c.entity().expect("a record collection");
        for s in docs.take(c) {
            let mut r = match record(entity, &s.doc, sum) {
                Ok(r) => r,
                Err(why) => {
                    sum.skip(c, &why, || s.example());
                    continue;
                }
            };
            if let Err(why) = references(&mut r, &parents, sum) {
                sum.skip(c, why, || s.example());
                continue;
            }
            if !seen.insert(r.id) {
                sum.skip(c, "duplicate _id", || s.example());
                continue;
            }
            if entity != EntityType::Item {
                parents.insert(r.id, (entity, reference(&r, "spaceId"), r.deleted_at));
            }
            records.push(r);
        }
    }
    let mut logs = Vec::new();
    let mut ops = HashSet::new();
    for s in docs.take(Collection::Synclogs) {
        match log(&s.doc) {
            Ok(l) if ops.insert(l.operation_id.clone()) => logs.push(l),
            Ok(_) => sum.skip(Collection::Synclogs, "duplicate operationId", || {
                s.example()
            }),
            Err(why) => sum.skip(Collection::Synclogs, why, || s.example()),
        }
    }
    Some(ImportedUser {
        records,
        logs,
        ..account
    })
}

fn text<'a>(doc: &'a Value, key: &str) -> Option<&'a str> {
    doc.get(key).and_then(Value::as_str)
}

/// A bcrypt hash in modular crypt form, as bcrypt and bcryptjs write it.
pub fn is_bcrypt(h: &str) -> bool {
    let b = h.as_bytes();
    b.len() == 60
        && (h.starts_with("$2a$") || h.starts_with("$2b$") || h.starts_with("$2y$"))
        && b[4].is_ascii_digit()
        && b[5].is_ascii_digit()
        && b[6] == b'$'
        && b[7..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'/')
}

fn account(owner: &str, doc: &Value, sum: &mut Summary) -> Result<ImportedUser, String> {
    let email = normalize_email(text(doc, "email").unwrap_or(""))
        .map_err(|e| format!("email {}", e.message))?;
    let hash = ["password", "passwordHash", "hashedPassword"]
        .iter()
        .find_map(|k| text(doc, k))
        .filter(|h| is_bcrypt(h))
        .ok_or("password is not a bcrypt hash ($2a$/$2b$/$2y$)")?;
    // The original required a name; one missing or unusable is taken from
    // the email rather than losing the account.
    let name = match text(doc, "name").map(normalize_name) {
        Some(Ok(n)) => n,
        _ => {
            sum.note_cast(Collection::Users, "name (from the email)");
            let local = email.split('@').next().unwrap_or("user");
            normalize_name(local).unwrap_or_else(|_| "user".into())
        }
    };
    let created_at = doc
        .get("createdAt")
        .and_then(ejson::date)
        .or_else(|| ejson::object_id_time(owner))
        .unwrap_or(0);
    Ok(ImportedUser {
        id: crate::user_id(owner),
        email,
        name,
        password_hash: hash.to_owned(),
        created_at,
        records: vec![],
        logs: vec![],
    })
}

fn device(doc: &Value) -> String {
    text(doc, "deviceId")
        .filter(|d| is_client_key(d, MAX_DEVICE_ID))
        .unwrap_or(UNKNOWN_DEVICE)
        .to_owned()
}

/// One space, category or item, its fields validated and cast as a push's.
fn record(entity: EntityType, doc: &Value, sum: &mut Summary) -> Result<ImportedRecord, String> {
    let c = Collection::of_entity(entity);
    let id = text(doc, "_id")
        .and_then(parse_uuid)
        .ok_or("_id is not a UUID string")?;
    let created = doc.get("createdAt").and_then(ejson::date);
    let updated = doc.get("updatedAt").and_then(ejson::date);
    let (created_at, updated_at) = match (created, updated) {
        (Some(c), Some(u)) => (c, u),
        (Some(t), None) | (None, Some(t)) => (t, t),
        (None, None) => return Err("no createdAt or updatedAt date".into()),
    };
    let deleted_at = match doc.get("deletedAt") {
        None | Some(Value::Null) => None,
        Some(v) => Some(ejson::date(v).ok_or("deletedAt is not a date")?),
    };
    let Some(obj) = doc.as_object() else {
        return Err("not an object".into());
    };
    let data: Map<String, Value> = obj
        .iter()
        .filter(|(k, _)| !SERVER_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), ejson::plain(v.clone())))
        .collect();
    let valid = validate_data(entity, &data, true).map_err(|e| format!("invalid: {}", e.0))?;
    for k in &valid.ignored {
        sum.strip(c, k);
    }
    for k in &valid.coerced {
        sum.note_cast(c, k);
    }
    Ok(ImportedRecord {
        id: RecordId::from_uuid(id),
        entity,
        fields: valid.fields,
        created_at,
        updated_at,
        deleted_at,
        device_id: device(doc),
    })
}

fn reference(r: &ImportedRecord, field: &str) -> Option<RecordId> {
    r.fields
        .get(field)
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
}

/// Checks that the record's references name records of this user read
/// before it, of the right kind; a live record under a deleted parent is
/// imported deleted, as tidesync's cascade would have left it.
fn references(
    r: &mut ImportedRecord,
    parents: &HashMap<RecordId, (EntityType, Option<RecordId>, Option<Millis>)>,
    sum: &mut Summary,
) -> Result<(), &'static str> {
    let mut parent_deleted: Option<Millis> = None;
    let mut note = |d: Option<Millis>| {
        if let Some(d) = d {
            parent_deleted = Some(parent_deleted.map_or(d, |p: Millis| p.min(d)));
        }
    };
    let space = reference(r, "spaceId");
    if let Some(s) = space {
        match parents.get(&s) {
            Some((e, _, d)) if *e == EntityType::Space => note(*d),
            _ => return Err("dangling spaceId: no space of this user has that id"),
        }
    }
    if let Some(cat) = reference(r, "categoryId") {
        match parents.get(&cat) {
            Some((e, cat_space, d)) if *e == EntityType::Category => {
                if space.is_some() && *cat_space != space {
                    return Err("categoryId names a category of another space");
                }
                note(*d);
            }
            _ => return Err("dangling categoryId: no category of this user has that id"),
        }
    }
    if let (None, Some(d)) = (r.deleted_at, parent_deleted) {
        r.deleted_at = Some(d.max(r.created_at));
        sum.cascaded += 1;
    }
    Ok(())
}

/// One applied operation of the original's `synclogs`.
fn log(doc: &Value) -> Result<ImportedLog, &'static str> {
    let operation_id = text(doc, "operationId")
        .filter(|o| is_client_key(o, MAX_OPERATION_ID))
        .ok_or("no usable operationId (a retry of it could not be recognised)")?;
    let client_time = doc.get("timestamp").and_then(ejson::date);
    let received_at = doc
        .get("createdAt")
        .and_then(ejson::date)
        .or(client_time)
        .or_else(|| {
            doc.get("_id")
                .and_then(ejson::object_id)
                .and_then(|h| ejson::object_id_time(&h))
        })
        .ok_or("no createdAt or timestamp date")?;
    let changes = match doc.get("changes").map(|v| ejson::plain(v.clone())) {
        Some(v @ Value::Object(_)) => v.to_string(),
        _ => "{}".into(),
    };
    let entity_id = match doc.get("entityId").map(|v| ejson::plain(v.clone())) {
        Some(Value::String(s)) if s.chars().count() <= 64 => Some(match parse_uuid(&s) {
            Some(u) => u.hyphenated().to_string(),
            None => s,
        }),
        _ => None,
    };
    Ok(ImportedLog {
        operation_id: operation_id.to_owned(),
        device_id: device(doc),
        entity: text(doc, "entityType").and_then(EntityType::parse),
        entity_id,
        operation: text(doc, "operation").and_then(OpKind::parse),
        changes,
        client_time,
        received_at,
    })
}

/// Counts of what [`map_user`] kept, per collection (for a dry run).
pub fn kept(u: &ImportedUser) -> BTreeMap<Collection, u64> {
    let mut m = BTreeMap::new();
    *m.entry(Collection::Users).or_default() += 1;
    for r in &u.records {
        *m.entry(Collection::of_entity(r.entity)).or_default() += 1;
    }
    *m.entry(Collection::Synclogs).or_default() += u.logs.len() as u64;
    m
}
