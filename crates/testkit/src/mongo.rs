//! Deterministic fake `mongoexport` files of the original Node.js/MongoDB
//! server, for `tidesync import mongo` (tests and bench; no real data).
//!
//! Every form the importer must read is present: users.json and
//! categories.json are JSON arrays, the others one document per line;
//! canonical Extended JSON (`{"$date": {"$numberLong": …}}`,
//! `{"$numberInt": …}`) and relaxed (`{"$date": "ISO"}`) both appear.
//! Items carry numeric movieIds and string booleans (cast), external
//! metadata (stripped) and tombstones. With `anomalies`, exactly one of
//! each: a line that is not JSON, an item with a dangling categoryId, an
//! item of an unknown owner, an item without its required title, a synclog
//! without operationId.
//!
//! Passwords: each user's is `legacy-pass-<i % 2>`. Hashing 10,000 users
//! with bcrypt would take minutes, so the two hashes are computed once per
//! run (cost 10, as bcryptjs's default, fixed salts) and reused, written
//! with the `$2a$`, `$2b$` and `$2y$` prefixes in turn (bcrypt's three
//! names for the same algorithm on such passwords).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use serde_json::{json, Value};
use tidesync_protocol::time::{to_iso, Millis};

use crate::Rng;

#[derive(Clone, Debug)]
pub struct MongoFixture {
    pub users: usize,
    /// Spaces, categories and items per user (at least 4).
    pub records_per_user: usize,
    /// The first record's createdAt; everything else is later.
    pub base: Millis,
    pub seed: u64,
    pub anomalies: bool,
}

/// One generated record, as the tests check it after the import.
#[derive(Clone, Debug)]
pub struct FixtureRecord {
    pub id: String,
    pub kind: &'static str,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub deleted_at: Option<Millis>,
    pub device_id: String,
}

#[derive(Clone, Debug)]
pub struct FixtureUser {
    pub object_id: String,
    pub email: String,
    pub password: String,
    /// The valid records (what the import must store).
    pub records: Vec<FixtureRecord>,
    /// The operation ids of its valid synclogs.
    pub operation_ids: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub struct Generated {
    pub users: Vec<FixtureUser>,
    /// Valid documents per collection (users, spaces, categories, items,
    /// synclogs): what a first import imports.
    pub valid: [u64; 5],
    /// Invalid ones, per collection.
    pub invalid: [u64; 5],
}

pub const PASSWORDS: [&str; 2] = ["legacy-pass-0", "legacy-pass-1"];

fn hashes() -> Vec<String> {
    PASSWORDS
        .iter()
        .enumerate()
        .map(|(i, p)| {
            bcrypt::hash_with_salt(p, 10, [i as u8 + 1; 16])
                .expect("bcrypt")
                .format_for_version(bcrypt::Version::TwoB)
        })
        .collect()
}

fn canonical(ms: Millis) -> Value {
    json!({"$date": {"$numberLong": ms.to_string()}})
}

fn relaxed(ms: Millis) -> Value {
    json!({"$date": to_iso(ms)})
}

fn oid(hex: &str) -> Value {
    json!({"$oid": hex})
}

/// A collection file, written document by document.
struct Out {
    w: BufWriter<File>,
    array: bool,
    n: u64,
}

impl Out {
    fn create(dir: &Path, name: &str, array: bool) -> io::Result<Out> {
        let mut w = BufWriter::new(File::create(dir.join(name))?);
        if array {
            w.write_all(b"[")?;
        }
        Ok(Out { w, array, n: 0 })
    }

    fn doc(&mut self, v: &Value) -> io::Result<()> {
        self.raw(&v.to_string())
    }

    fn raw(&mut self, text: &str) -> io::Result<()> {
        if self.array && self.n > 0 {
            self.w.write_all(b",")?;
        }
        self.n += 1;
        self.w.write_all(text.as_bytes())?;
        self.w.write_all(b"\n")
    }

    fn finish(mut self) -> io::Result<()> {
        if self.array {
            self.w.write_all(b"]\n")?;
        }
        self.w.flush()
    }
}

const MINUTE: Millis = 60_000;

pub fn generate(dir: &Path, f: &MongoFixture) -> io::Result<Generated> {
    let mut rng = Rng::new(f.seed);
    let hashes = hashes();
    let [mut users, mut spaces, mut cats, mut items, mut logs] = [
        Out::create(dir, "users.json", true)?,
        Out::create(dir, "spaces.json", false)?,
        Out::create(dir, "categories.json", true)?,
        Out::create(dir, "items.json", false)?,
        Out::create(dir, "synclogs.json", false)?,
    ];
    let mut g = Generated::default();
    let per = f.records_per_user.max(4);
    for u in 0..f.users {
        let secs = (f.base / 1000) as u64 - 86_400;
        let object_id = format!(
            "{secs:08x}{:016x}",
            f.seed.wrapping_mul(1_000_003) + u as u64
        );
        let mut hash = hashes[u % 2].clone();
        hash.replace_range(2..3, ["a", "b", "y"][u % 3]);
        let created = f.base - 86_400_000 + u as Millis;
        users.doc(&json!({
            "_id": oid(&object_id), "email": format!("user{u}@example.com"),
            "name": format!("User {u}"), "password": hash,
            "createdAt": canonical(created), "updatedAt": canonical(created), "__v": {"$numberInt": "0"}
        }))?;
        g.valid[0] += 1;
        let device = format!("device-{u}-{}", rng.below(3));
        let mut user = FixtureUser {
            object_id: object_id.clone(),
            email: format!("user{u}@example.com"),
            password: PASSWORDS[u % 2].to_owned(),
            records: vec![],
            operation_ids: vec![],
        };
        let mut ops = vec![];
        let mut t = f.base + (u as Millis) * MINUTE;
        let mut next = |rng: &mut Rng, kind: &'static str, deleted: bool| {
            t += rng.between(1, 90) * MINUTE;
            let updated = t + rng.between(0, 3) * MINUTE;
            let r = FixtureRecord {
                id: rng.uuid(),
                kind,
                created_at: t,
                updated_at: updated,
                deleted_at: deleted.then_some(updated + 30 * MINUTE),
                device_id: device.clone(),
            };
            user.records.push(r.clone());
            r
        };
        // One space, two categories, then items; the date forms alternate.
        let dates = |r: &FixtureRecord, canon: bool| {
            let d = if canon { canonical } else { relaxed };
            (
                d(r.created_at),
                d(r.updated_at),
                r.deleted_at.map(d).unwrap_or(Value::Null),
            )
        };
        let space = next(&mut rng, "space", false);
        let (c, up, del) = dates(&space, u % 2 == 0);
        spaces.doc(
            &json!({"_id": space.id, "userId": oid(&object_id), "name": "Personal",
            "color": "#3366ff", "order": {"$numberInt": "0"}, "deviceId": space.device_id,
            "createdAt": c, "updatedAt": up, "deletedAt": del, "__v": 0}),
        )?;
        g.valid[1] += 1;
        let mut cat_ids = vec![];
        for k in 0..2 {
            let cat = next(&mut rng, "category", false);
            let (c, up, del) = dates(&cat, k == 0);
            let name = ["Movies", "Books"][k];
            cats.doc(
                &json!({"_id": cat.id, "userId": oid(&object_id), "spaceId": space.id,
                "name": name, "icon": "🎬", "deviceId": cat.device_id,
                "createdAt": c, "updatedAt": up, "deletedAt": del}),
            )?;
            g.valid[2] += 1;
            cat_ids.push(cat.id);
        }
        for k in 0..per - 3 {
            // At least one tombstone per user, then one in ten.
            let deleted = k == 1 || rng.chance(10);
            let item = next(&mut rng, "item", deleted);
            let (c, up, del) = dates(&item, k % 2 == 0);
            let mut doc = json!({"_id": item.id, "userId": oid(&object_id), "spaceId": space.id,
                "categoryId": cat_ids[k % 2], "title": format!("Watch film {k}"), "type": "movie",
                "isCompleted": if k % 5 == 0 { json!("true") } else { json!(false) },
                "tags": ["to-watch", k.to_string()], "deviceId": item.device_id,
                "createdAt": c, "updatedAt": up, "deletedAt": del});
            let o = doc.as_object_mut().expect("object");
            if k % 3 == 0 {
                o.insert("movieId".into(), json!(27205 + k));
            } else {
                o.insert("movieId".into(), json!((27205 + k).to_string()));
            }
            if k % 4 == 1 {
                o.insert("poster".into(), json!("/inception.jpg"));
                o.insert(
                    "movieDetails".into(),
                    json!({"overview": "A thief…", "rating": {"$numberDouble": "8.8"}}),
                );
            }
            if k % 7 == 2 {
                o.insert("order".into(), json!({"$numberLong": k.to_string()}));
            }
            items.doc(&doc)?;
            g.valid[3] += 1;
            if k % 2 == 0 {
                let op = format!("op-{}-{k}", object_id);
                logs.doc(&json!({"_id": oid(&format!("{:024x}", rng.next_u64() as u128)),
                    "userId": oid(&object_id), "deviceId": item.device_id, "entityType": "item",
                    "entityId": item.id, "operation": "create", "operationId": op,
                    "changes": {"title": format!("Watch film {k}")},
                    "timestamp": relaxed(item.created_at), "createdAt": canonical(item.created_at)}))?;
                g.valid[4] += 1;
                ops.push(op);
            }
        }
        if f.anomalies && u == 0 {
            items.raw("{\"_id\": \"not json")?;
            items.doc(
                &json!({"_id": rng.uuid(), "userId": oid(&object_id), "title": "dangling",
                "categoryId": rng.uuid(), "createdAt": relaxed(t), "updatedAt": relaxed(t)}),
            )?;
            items.doc(
                &json!({"_id": rng.uuid(), "userId": oid("ffffffffffffffffffffffff"),
                "title": "orphan", "createdAt": relaxed(t), "updatedAt": relaxed(t)}),
            )?;
            items.doc(
                &json!({"_id": rng.uuid(), "userId": oid(&object_id), "notes": "no title",
                "createdAt": relaxed(t), "updatedAt": relaxed(t)}),
            )?;
            logs.doc(
                &json!({"userId": oid(&object_id), "entityType": "item", "operation": "create",
                "timestamp": relaxed(t)}),
            )?;
            g.invalid[3] += 4;
            g.invalid[4] += 1;
        }
        user.operation_ids = ops;
        g.users.push(user);
    }
    for o in [users, spaces, cats, items, logs] {
        o.finish()?;
    }
    Ok(g)
}
