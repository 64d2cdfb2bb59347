//! `GET /api/auth/me/export` (issue 14): all of a user's data, streamed,
//! their own and what is shared with them, nobody else's; tombstones when
//! asked.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use tidesync_client::protocol::Role;
use tidesync_testkit::*;

backend_tests!(the_export_has_all_of_the_users_data_and_nothing_else);

/// More than one store page (500) of items.
const ITEMS: usize = 1_100;

fn ids(doc: &Value, kind: &str) -> BTreeSet<String> {
    doc["data"][kind]
        .as_array()
        .unwrap_or_else(|| panic!("no {kind} in the export"))
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn export(app: &TestApp, token: &str, query: &str) -> (reqwest::header::HeaderMap, Value) {
    let res = app
        .http
        .get(app.url(&format!("/api/auth/me/export{query}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let headers = res.headers().clone();
    let bytes = res.bytes().await.unwrap();
    let doc = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "the export is not one JSON document ({e}): …{}",
            String::from_utf8_lossy(&bytes[bytes.len().saturating_sub(200)..])
        )
    });
    (headers, doc)
}

async fn the_export_has_all_of_the_users_data_and_nothing_else(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let carol = app.register("carol@example.com").await;
    let (a_tok, b_tok) = (alice.token().unwrap(), bob.token().unwrap());

    // Alice: a space, a category, ITEMS items, one of them deleted.
    let (space, cat) = (new_id(), new_id());
    let mut changes = vec![
        change(
            "s",
            &space,
            "space",
            "create",
            json!({"name": "Films"}),
            &at(0),
            "a",
        ),
        change(
            "c",
            &cat,
            "category",
            "create",
            json!({"name": "Sci-fi", "spaceId": space}),
            &at(1),
            "a",
        ),
    ];
    let items: Vec<String> = (0..ITEMS).map(|_| new_id()).collect();
    for (n, id) in items.iter().enumerate() {
        changes.push(change(
            &format!("i{n}"),
            id,
            "item",
            "create",
            json!({"title": format!("Film \"{n}\""), "spaceId": space, "categoryId": cat}),
            &at(2),
            "a",
        ));
    }
    changes.push(change(
        "d",
        &items[7],
        "item",
        "delete",
        Value::Null,
        &at(3),
        "a",
    ));
    let mut cursor = Value::Null;
    for chunk in changes.chunks(400) {
        cursor = app.sync(a_tok, "a", cursor, chunk.to_vec()).await["syncTimestamp"].clone();
    }

    // Bob shares a space with her (editor); Carol has data of her own.
    let shared = new_id();
    let bob_item = new_id();
    app.sync(
        b_tok,
        "b",
        Value::Null,
        vec![
            change(
                "bs",
                &shared,
                "space",
                "create",
                json!({"name": "Together"}),
                &at(0),
                "b",
            ),
            change(
                "bi",
                &bob_item,
                "item",
                "create",
                json!({"title": "Heat", "spaceId": shared}),
                &at(1),
                "b",
            ),
        ],
    )
    .await;
    let alice_id = alice.me().await.unwrap().id;
    share(&bob, &alice, shared.parse().unwrap(), Role::Editor)
        .await
        .unwrap();
    let carols = new_id();
    app.sync(
        &carol,
        "c",
        Value::Null,
        vec![change(
            "cs",
            &carols,
            "space",
            "create",
            json!({"name": "Mine"}),
            &at(0),
            "c",
        )],
    )
    .await;

    let (headers, doc) = export(&app, a_tok, "").await;
    assert!(headers[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(doc["success"], true);
    let data = &doc["data"];
    assert_eq!(data["account"]["email"], "alice@example.com");
    assert_eq!(data["account"]["id"], json!(alice_id));
    assert!(data["account"].get("passwordHash").is_none() && !doc.to_string().contains("argon2"));
    assert_eq!(
        data["memberships"],
        json!([{"spaceId": shared, "role": "editor"}])
    );
    assert_eq!(
        ids(&doc, "spaces"),
        BTreeSet::from([space.clone(), shared.clone()])
    );
    assert_eq!(ids(&doc, "categories"), BTreeSet::from([cat.clone()]));
    let mut want: BTreeSet<String> = items.iter().cloned().collect();
    want.remove(&items[7]);
    want.insert(bob_item.clone());
    assert_eq!(ids(&doc, "items"), want);
    // Records have the shape pulls give them, text intact.
    let first = doc["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == json!(items[0]))
        .unwrap();
    assert_eq!(first["title"], "Film \"0\"");
    assert_eq!(first["categoryId"], json!(cat));
    assert!(first["deletedAt"].is_null());

    // With tombstones: the deleted item too, marked.
    let (_, doc) = export(&app, a_tok, "?tombstones=true").await;
    assert_eq!(doc["data"]["tombstones"], true);
    let deleted: Vec<&Value> = doc["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !r["deletedAt"].is_null())
        .collect();
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["id"], json!(items[7]));
    assert_eq!(ids(&doc, "items").len(), ITEMS + 1);

    // Carol sees hers alone; no token, no export; a wrong parameter is named.
    let (_, doc) = export(&app, &carol, "").await;
    assert_eq!(ids(&doc, "spaces"), BTreeSet::from([carols]));
    assert!(ids(&doc, "items").is_empty());
    assert_eq!(doc["data"]["memberships"], json!([]));
    app.get("/api/auth/me/export", None)
        .await
        .assert_error(401, "unauthorized");
    let res = app
        .get("/api/auth/me/export?tombstones=maybe", Some(a_tok))
        .await;
    res.assert_error(400, "validation_failed");
    assert!(res.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("query"));
    // Compressed on request, and whole: the encoder polls the body once more
    // after its end (that used to panic and cut the stream short). The gzip
    // footer's ISIZE is the length of the plain document.
    let plain = app
        .http
        .get(app.url("/api/auth/me/export"))
        .bearer_auth(a_tok)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let res = app
        .http
        .get(app.url("/api/auth/me/export"))
        .bearer_auth(a_tok)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-encoding"], "gzip");
    let gz = res
        .bytes()
        .await
        .expect("the compressed export is complete");
    assert!(gz.len() > 8 && gz[..2] == [0x1f, 0x8b], "not gzip");
    let isize = u32::from_le_bytes(gz[gz.len() - 4..].try_into().unwrap());
    assert_eq!(
        isize as usize,
        plain.len(),
        "the gzip stream ends with its footer"
    );
    let _ = cursor;
    app.stop().await;
}
