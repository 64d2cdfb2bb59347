//! Pulls: pages with hasMore, legacy date cursors, compression, and users isolated.

use serde_json::{json, Value};

use tidesync_testkit::*;

use crate::sync::{acks, count, item, seed};

async fn pulls_page_with_has_more(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let token = app.register("pages@example.com").await;
    let changes: Vec<Value> = (0..25)
        .map(|n| {
            change(
                &format!("p{n}"),
                &new_id(),
                "item",
                "create",
                json!({"title": format!("item {n}")}),
                &at(n),
                "A",
            )
        })
        .collect();
    app.sync(&token, "A", Value::Null, changes).await;

    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = Value::Null;
    let mut pages = vec![];
    loop {
        let res = app
            .sync_raw(
                &token,
                json!({"deviceId": "B", "lastSyncTimestamp": cursor, "limit": 10}),
            )
            .await;
        let d = &res.body["data"];
        pages.push(count(d));
        for id in records_by_id(&d["serverUpdates"]).keys() {
            assert!(seen.insert(id.clone()), "{id} returned twice");
        }
        cursor = d["syncTimestamp"].clone();
        if d["hasMore"] == json!(false) {
            break;
        }
        assert!(pages.len() < 10);
    }
    assert_eq!(pages, vec![10, 10, 5]);

    // The same through /api/sync/initial.
    let mut total = 0;
    let mut url = "/api/sync/initial?limit=10".to_string();
    for round in 0.. {
        let res = app.get(&url, Some(&token)).await;
        assert_eq!(res.status, 200, "{}", res.body);
        let d = &res.body["data"];
        total += d["items"].as_array().unwrap().len();
        if d["hasMore"] == json!(false) {
            break;
        }
        url = format!(
            "/api/sync/initial?limit=10&lastSyncTimestamp={}",
            d["syncTimestamp"].as_str().unwrap()
        );
        assert!(round < 10);
    }
    assert_eq!(total, 25);
    app.stop().await;
}

async fn legacy_date_cursors_are_a_best_effort_start(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let token = app.register("legacy@example.com").await;
    // Dates are server receive time, whatever the records' client timestamps.
    let before = tidesync_protocol::time::to_iso(tidesync_protocol::time::now_millis() - 60_000);
    seed(&app, &token, "A").await;
    let old_client = app.sync(&token, "Old", json!(before), vec![]).await;
    assert_eq!(count(&old_client), 3);
    let exact = old_client["syncTimestamp"].as_str().unwrap();
    assert!(
        exact.starts_with("v1."),
        "the cursor returned is exact: {exact}"
    );
    let future = app
        .sync(&token, "Old", json!("2099-01-01T00:00:00.000Z"), vec![])
        .await;
    assert_eq!(count(&future), 0);
    assert_eq!(future["syncTimestamp"], old_client["syncTimestamp"]);
    app.stop().await;
}

/// Pulls are compressed when the client accepts it, and only then.
async fn pulls_are_compressed_on_request(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let token = app.register("zip@example.com").await;
    let changes: Vec<Value> = (0..200)
        .map(|n| {
            change(
                &format!("z{n}"),
                &new_id(),
                "item",
                "create",
                json!({"title": format!("item {n}"), "notes": "same words again"}),
                &at(n),
                "A",
            )
        })
        .collect();
    app.sync(&token, "A", Value::Null, changes).await;
    let get = |enc: Option<&'static str>| {
        let mut req = app
            .http
            .get(app.url("/api/sync/initial"))
            .bearer_auth(&token);
        if let Some(e) = enc {
            req = req.header("accept-encoding", e);
        }
        req.send()
    };
    let plain = get(None).await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    let plain_len = plain.bytes().await.unwrap().len();
    for enc in ["gzip", "zstd"] {
        let res = get(Some(enc)).await.unwrap();
        assert_eq!(res.headers()["content-encoding"], enc);
        let len = res.bytes().await.unwrap().len();
        assert!(
            len * 3 < plain_len,
            "{enc}: {len} bytes vs {plain_len} plain"
        );
    }
    app.stop().await;
}

async fn users_are_isolated(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let alice = app.register("alice@example.com").await;
    let mallory = app.register("mallory@example.com").await;
    let (s, c, i, _) = seed(&app, &alice, "A").await;
    let unknown = new_id();

    let probe = |target: &str, op: &str, entity: &str| {
        change(
            &format!("m-{op}-{target}"),
            target,
            entity,
            op,
            json!({"title": "pwned", "name": "pwned"}),
            &at(100),
            "M",
        )
    };
    let m = app
        .sync(
            &mallory,
            "M",
            Value::Null,
            vec![
                probe(&i, "update", "item"),
                probe(&unknown, "update", "item"),
                probe(&s, "delete", "space"),
                probe(&unknown, "delete", "space"),
                change(
                    "m-ref",
                    &new_id(),
                    "item",
                    "create",
                    json!({"title": "x", "categoryId": c}),
                    &at(100),
                    "M",
                ),
            ],
        )
        .await;
    let a = acks(&m);
    // Someone else's id answers exactly like an id that does not exist.
    let strip = |v: &Value| {
        let mut v = v.clone();
        v.as_object_mut().unwrap().remove("operationId");
        v.as_object_mut().unwrap().remove("id");
        v
    };
    assert_eq!(strip(&a[0]), strip(&a[1]));
    assert_eq!(strip(&a[2]), strip(&a[3]));
    assert_eq!(a[0]["error"]["code"], json!("not_found"));
    assert_eq!(a[4]["error"]["code"], json!("unknown_reference"));
    assert_eq!(count(&m), 0, "nothing of Alice's is revealed");

    // Mallory creating her own record with Alice's id touches only hers.
    let mine = app
        .sync(
            &mallory,
            "M",
            m["syncTimestamp"].clone(),
            vec![change(
                "m-own",
                &i,
                "item",
                "create",
                json!({"title": "mine"}),
                &at(101),
                "M",
            )],
        )
        .await;
    assert_eq!(acks(&mine)[0]["success"], json!(true));
    let alice_view = app.sync(&alice, "A2", Value::Null, vec![]).await;
    assert_eq!(
        item(&alice_view, &i).unwrap()["title"],
        json!("Watch Inception")
    );
    assert_eq!(count(&alice_view), 3);
    let mallory_view = app.sync(&mallory, "M2", Value::Null, vec![]).await;
    assert_eq!(count(&mallory_view), 1);
    assert_eq!(item(&mallory_view, &i).unwrap()["title"], json!("mine"));
    app.stop().await;
}

backend_tests!(
    pulls_page_with_has_more,
    legacy_date_cursors_are_a_best_effort_start,
    pulls_are_compressed_on_request,
    users_are_isolated,
);
