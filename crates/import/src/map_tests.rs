//! Mapping one user's documents, as the original stored them.

use serde_json::{json, Value};
use tidesync_protocol::entity::EntityType;

use crate::map::{map_user, Source, UserDocs};
use crate::summary::Summary;
use crate::Collection;

const OWNER: &str = "65a1b2c3d4e5f60718293a4b";
const HASH: &str = "$2a$10$abcdefghijklmnopqrstuu5Kq5rY2o8cWcVYg0Zz9Qk1n5mGm8Ha2";
const SPACE: &str = "11111111-1111-4111-8111-111111111111";
const CAT: &str = "22222222-2222-4222-8222-222222222222";

fn docs(list: &[(Collection, Value)]) -> UserDocs {
    let mut d = UserDocs::default();
    for (i, (c, v)) in list.iter().enumerate() {
        d.push(
            *c,
            Source {
                doc: v.clone(),
                at: format!("{} line {}", c.file_name(), i + 1),
            },
        );
    }
    d
}

fn user() -> (Collection, Value) {
    (
        Collection::Users,
        json!({"_id": {"$oid": OWNER}, "email": " Ann@Example.com", "name": "Ann",
               "password": HASH, "createdAt": {"$date": "2024-05-01T00:00:00Z"}}),
    )
}

fn dated(mut v: Value, updated: &str) -> Value {
    let o = v.as_object_mut().unwrap();
    o.insert("userId".into(), json!({"$oid": OWNER}));
    o.insert("createdAt".into(), json!({"$date": "2025-01-01T00:00:00Z"}));
    o.insert("updatedAt".into(), json!({"$date": updated}));
    v
}

#[test]
fn records_are_validated_cast_and_stripped_like_a_push() {
    let mut sum = Summary::default();
    let u = map_user(
        OWNER,
        docs(&[
            user(),
            (
                Collection::Spaces,
                dated(
                    json!({"_id": SPACE, "name": "Home", "__v": 0}),
                    "2025-01-02T00:00:00Z",
                ),
            ),
            (
                Collection::Items,
                dated(
                    json!({"_id": "33333333-3333-4333-8333-333333333333", "spaceId": SPACE,
                           "title": "Watch Inception", "movieId": 27205, "isCompleted": "true",
                           "order": {"$numberInt": "2"}, "poster": "/p.jpg",
                           "movieDetails": {"overview": "…"}, "deviceId": "phone",
                           "completedAt": {"$date": {"$numberLong": "1735689600000"}}}),
                    "2025-01-03T00:00:00Z",
                ),
            ),
        ]),
        &mut sum,
    )
    .expect("imported");
    assert_eq!(u.id, crate::user_id(OWNER));
    assert_eq!(
        (u.email.as_str(), u.name.as_str(), u.password_hash.as_str()),
        ("ann@example.com", "Ann", HASH)
    );
    assert_eq!(u.records.len(), 2);
    let item = &u.records[1];
    assert_eq!(item.entity, EntityType::Item);
    assert_eq!(item.fields["movieId"], json!("27205"));
    assert_eq!(item.fields["isCompleted"], json!(true));
    assert_eq!(item.fields["order"], json!(2));
    assert_eq!(
        item.fields["completedAt"],
        json!("2025-01-01T00:00:00.000Z")
    );
    assert!(!item.fields.contains_key("poster") && !item.fields.contains_key("userId"));
    assert_eq!(item.device_id, "phone");
    assert_eq!(u.records[0].device_id, crate::map::UNKNOWN_DEVICE);
    assert_eq!(sum.stripped["items.poster"], 1);
    assert_eq!(sum.stripped["items.movieDetails"], 1);
    assert!(
        !sum.stripped.contains_key("spaces.__v"),
        "Mongoose's own keys are not reported"
    );
    assert_eq!(sum.cast["items.movieId"], 1);
    assert_eq!(sum.cast["items.isCompleted"], 1);
    assert!(sum.skipped.is_empty(), "{:?}", sum.skipped);
}

#[test]
fn bad_documents_are_skipped_with_their_reason() {
    let mut sum = Summary::default();
    let item = |id: &str, extra: Value| {
        let mut v = dated(json!({"_id": id, "title": "t"}), "2025-01-02T00:00:00Z");
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        (Collection::Items, v)
    };
    let u = map_user(
        OWNER,
        docs(&[
            user(),
            (Collection::Spaces, dated(json!({"_id": SPACE, "name": "Home", "deletedAt": {"$date": "2025-01-05T00:00:00Z"}}), "2025-01-05T00:00:00Z")),
            (Collection::Categories, dated(json!({"_id": CAT, "name": "Films", "spaceId": SPACE}), "2025-01-02T00:00:00Z")),
            item("44444444-4444-4444-8444-444444444444", json!({"categoryId": CAT})),
            item("55555555-5555-4555-8555-555555555555", json!({"categoryId": "66666666-6666-4666-8666-666666666666"})),
            item("not-a-uuid", json!({})),
            item("77777777-7777-4777-8777-777777777777", json!({"title": ""})),
            item("44444444-4444-4444-8444-444444444444", json!({})),
            item("88888888-8888-4888-8888-888888888888", json!({"isCompleted": "maybe"})),
            (Collection::Synclogs, json!({"userId": {"$oid": OWNER}, "operationId": "op-1", "timestamp": {"$date": "2025-01-02T00:00:00Z"}})),
            (Collection::Synclogs, json!({"userId": {"$oid": OWNER}, "operationId": "op-1", "timestamp": {"$date": "2025-01-02T00:00:00Z"}})),
            (Collection::Synclogs, json!({"userId": {"$oid": OWNER}, "timestamp": {"$date": "2025-01-02T00:00:00Z"}})),
        ]),
        &mut sum,
    )
    .expect("the user is kept");
    let reasons: Vec<_> = sum
        .skipped
        .iter()
        .map(|(k, s)| (k.as_str(), s.count))
        .collect();
    assert_eq!(
        reasons,
        vec![
            ("items: _id is not a UUID string", 1),
            ("items: dangling categoryId: no category of this user has that id", 1),
            ("items: duplicate _id", 1),
            ("items: invalid: isCompleted: must be true, false, \"true\", \"false\", 1, 0, \"1\", \"0\", \"yes\" or \"no\"", 1),
            ("items: invalid: title: must not be empty", 1),
            ("synclogs: duplicate operationId", 1),
            ("synclogs: no usable operationId (a retry of it could not be recognised)", 1),
        ],
        "{:#?}",
        sum.skipped
    );
    // Under a deleted space: the category and its item are imported deleted.
    assert_eq!(u.records.len(), 3);
    assert!(u.records.iter().all(|r| r.deleted_at.is_some()));
    assert_eq!(sum.cascaded, 2);
    assert_eq!(u.logs.len(), 1);
    assert_eq!(sum.counts[Collection::Items.index()].skipped, 5);
}

#[test]
fn documents_without_a_usable_owner_are_skipped_whole() {
    let mut sum = Summary::default();
    let item = (
        Collection::Items,
        dated(json!({"_id": SPACE, "title": "t"}), "2025-01-02T00:00:00Z"),
    );
    assert!(map_user(OWNER, docs(std::slice::from_ref(&item)), &mut sum).is_none());
    assert_eq!(
        sum.skipped["items: unknown owner: no user has this userId"].count,
        1
    );
    let mut bad_user = user();
    bad_user.1["password"] = json!("plaintext!");
    let mut sum = Summary::default();
    assert!(map_user(OWNER, docs(&[bad_user, item]), &mut sum).is_none());
    assert_eq!(sum.counts[Collection::Users.index()].skipped, 1);
    assert_eq!(sum.counts[Collection::Items.index()].skipped, 1);
    assert!(sum
        .skipped
        .keys()
        .any(|k| k.starts_with("users: password is not a bcrypt hash")));
}
