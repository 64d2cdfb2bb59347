//! Heavy but legal requests: what one user's large records cost the
//! server and every other user (issue 19). Each response and each writer
//! job is bounded by bytes, not by what the client sends.

use serde_json::{json, Value};
use tidesync_testkit::*;

/// Notes of 50,000 control characters: 300 kB once escaped in JSON, the
/// largest an item's notes can be stored as.
fn big_notes() -> String {
    "\u{1}".repeat(50_000)
}

fn created(app_changes: &Value) -> bool {
    app_changes["acknowledged"]
        .as_array()
        .is_some_and(|a| a.iter().all(|a| a["success"] == json!(true)))
}

/// Stale updates to big records all lose, and each loser must get the
/// server's record back: the push's answer still holds at most
/// `MAX_PAGE_BYTES` of records (it held all of them: 171 MB for a 106 kB
/// push), and the following pulls bring the rest.
async fn a_push_of_stale_updates_answers_within_the_page_budget(db: Db) {
    let tdb = TestDb::new(db).await;
    let mut args = test_args(&tdb);
    args.max_page_bytes = 1024 * 1024;
    let app = spawn_with(args).await;
    let token = app.register("stale@example.com").await;
    let ids: Vec<String> = (0..12).map(|_| new_id()).collect();
    let notes = big_notes();
    let creates = ids
        .iter()
        .enumerate()
        .map(|(k, id)| {
            let data = json!({"title": "big", "notes": notes});
            change(&format!("c{k}"), id, "item", "create", data, &at(10), "A")
        })
        .collect();
    assert!(created(&app.sync(&token, "A", Value::Null, creates).await));
    let all = pull_everything(&app.client(&token), "B", None, Some(1000), "B's copy").await;
    assert_eq!(all.live().len(), 12);
    // Device B, a day behind, edits every note: every write loses.
    let stale = ids
        .iter()
        .enumerate()
        .map(|(k, id)| {
            let data = json!({"notes": "mine"});
            change(
                &format!("u{k}"),
                id,
                "item",
                "update",
                data,
                &at(-86_400),
                "B",
            )
        })
        .collect::<Vec<_>>();
    let res = app
        .sync_raw(
            &token,
            json!({"deviceId": "B", "lastSyncTimestamp": all.cursor, "changes": stale}),
        )
        .await;
    assert_eq!(res.status, 200);
    let data = &res.body["data"];
    let acks = data["acknowledged"].as_array().unwrap();
    assert!(
        acks.iter().all(|a| a["conflict"] == json!(true)),
        "{acks:?}"
    );
    let records = data["serverUpdates"]["items"].as_array().unwrap();
    let bytes: usize = records.iter().map(|r| r.to_string().len()).sum();
    assert!(
        bytes <= 1024 * 1024 + 300_000,
        "{bytes} bytes of records in {} records",
        records.len()
    );
    assert_eq!(data["hasMore"], json!(true), "the rest follows");
    let mut got: std::collections::BTreeSet<String> = records
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    let cursor = data["syncTimestamp"].as_str().unwrap().to_owned();
    let rest = pull_everything(&app.client(&token), "B", Some(&cursor), Some(1000), "rest").await;
    got.extend(rest.by_id.keys().cloned());
    assert_eq!(got.len(), 12, "every losing record reaches the device");
    assert!(rest
        .by_id
        .values()
        .all(|r| r["notes"].as_str() == Some(notes.as_str())));
    app.stop().await;
}

backend_tests! {
    backend: [
        a_push_of_stale_updates_answers_within_the_page_budget,
    ],
}
