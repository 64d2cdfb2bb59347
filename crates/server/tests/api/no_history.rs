//! A member never receives what was deleted before they joined: a move-in
//! sends live records only, tombstones carry no content, and no member sees
//! another member's device labels (issue 19). The export follows the same
//! rules.

use serde_json::{json, Value};
use tidesync_client::protocol::Role;
use tidesync_testkit::*;

backend_tests!(a_member_never_receives_what_was_deleted_before_they_joined);

async fn export(app: &TestApp, token: &str) -> Value {
    let res = app
        .http
        .get(app.url("/api/auth/me/export?tombstones=true"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    serde_json::from_slice::<Value>(&res.bytes().await.unwrap()).unwrap()["data"].clone()
}

async fn a_member_never_receives_what_was_deleted_before_they_joined(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let (ada_tok, bob_tok) = (ada.token().unwrap(), bob.token().unwrap().to_owned());
    // Bob's device is up to date with his own (empty) data.
    let before = pull_everything(&bob, "bobs-phone", None, None, "before").await;
    let (space, secret, kept) = (new_id(), new_id(), new_id());
    let phone = "Ada's iPhone";
    let make = |op: &str, id: &str, kind: &str, data: Value| {
        change(op, id, kind, "create", data, &at(0), phone)
    };
    app.sync(
        ada_tok,
        phone,
        Value::Null,
        vec![
            make("s", &space, "space", json!({"name": "Party"})),
            make(
                "a",
                &secret,
                "item",
                json!({"title": "surprise party", "notes": "for C", "spaceId": space}),
            ),
            make(
                "b",
                &kept,
                "item",
                json!({"title": "cake", "spaceId": space}),
            ),
        ],
    )
    .await;
    let del = change("d", &secret, "item", "delete", Value::Null, &at(5), phone);
    app.sync(ada_tok, phone, Value::Null, vec![del]).await;
    share(&ada, &bob, space.parse().unwrap(), Role::Viewer)
        .await
        .unwrap();

    let shown = |r: &Value| r.to_string();
    // A pull from Bob's old cursor (a move-in) and one from scratch.
    for cursor in [Some(before.cursor.as_str()), None] {
        let got = pull_everything(&bob, "bobs-phone", cursor, None, "after").await;
        let ids: Vec<&String> = got.by_id.keys().collect();
        assert!(!got.by_id.contains_key(&secret), "{cursor:?}: {ids:?}");
        assert!(got.by_id.contains_key(&kept) && got.by_id.contains_key(&space));
        for r in got.by_id.values() {
            assert_eq!(r["deviceId"], json!(""), "a device label: {r}");
            assert!(!shown(r).contains("surprise"), "{r}");
        }
    }
    // The export: the old tombstone, if listed, says nothing of its content.
    let doc = export(&app, &bob_tok).await;
    for r in doc["items"].as_array().unwrap() {
        assert!(
            !shown(r).contains("surprise") && !shown(r).contains("for C"),
            "{r}"
        );
        assert!(!shown(r).contains(phone), "{r}");
    }
    // A delete after Bob joined reaches him, without its content.
    let late = pull_everything(&bob, "bobs-phone", None, None, "joined").await;
    let del = change("d2", &kept, "item", "delete", Value::Null, &at(9), phone);
    app.sync(ada_tok, phone, Value::Null, vec![del]).await;
    let next = pull_everything(&bob, "bobs-phone", Some(&late.cursor), None, "next").await;
    let tomb = &next.by_id[&kept];
    assert!(!tomb["deletedAt"].is_null());
    assert_eq!(tomb["title"], Value::Null, "{tomb}");
    assert_eq!(tomb["spaceId"], json!(space));
    // Ada's own device still sees its label on her personal records, and
    // the tombstone of what she deleted, without its content.
    let hers = pull_everything(&ada, phone, Some("v1.u.0"), None, "ada").await;
    assert_eq!(hers.by_id[&secret]["notes"], Value::Null);
    app.stop().await;
}
