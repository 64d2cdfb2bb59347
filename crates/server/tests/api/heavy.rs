//! Heavy but legal requests: what one user's large records cost the
//! server and every other user (issue 19). Each response and each writer
//! job is bounded by bytes, not by what the client sends.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tidesync_store_sqlite::SqliteOptions;
use tidesync_testkit::*;

use crate::writer::{push_body, sqlite_app};

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
    // Device B, which has not received them (its writes are concurrent with
    // A's creates) and whose clock is a day behind, edits every note: every
    // write loses.
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
            json!({"deviceId": "B", "lastSyncTimestamp": null, "changes": stale}),
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

/// `n` big items of `user`, created in pushes of 10 (3 MB each); their ids.
async fn big_items(app: &TestApp, token: &str, n: usize) -> Vec<String> {
    let ids: Vec<String> = (0..n).map(|_| new_id()).collect();
    let notes = big_notes();
    for (b, chunk) in ids.chunks(10).enumerate() {
        let creates = chunk
            .iter()
            .enumerate()
            .map(|(k, id)| {
                let data = json!({"title": "big", "notes": notes});
                change(
                    &format!("c{b}-{k}"),
                    id,
                    "item",
                    "create",
                    data,
                    &at(10),
                    "A",
                )
            })
            .collect();
        assert!(created(&app.sync(token, "A", Value::Null, creates).await));
    }
    ids
}

/// A one-field update of each item: a small request that rewrites them all.
fn retitle(ids: &[String], ts: i64) -> Vec<Value> {
    ids.iter()
        .enumerate()
        .map(|(k, id)| {
            let data = json!({"title": format!("t{k}")});
            change(&format!("t{k}"), id, "item", "update", data, &at(ts), "A")
        })
        .collect()
}

/// A small push that rewrites many big records commits in steps of
/// `PUSH_STEP_BYTES`: same acks, and a retry finds every operation done.
async fn a_push_beyond_its_step_bytes_commits_in_steps(db: Db) {
    let tdb = TestDb::new(db).await;
    let mut args = test_args(&tdb);
    args.push_step_bytes = 1024 * 1024;
    let app = spawn_with(args).await;
    let token = app.register("steps@example.com").await;
    let ids = big_items(&app, &token, 40).await;
    let before = pull_everything(&app.client(&token), "B", None, Some(1000), "before").await;
    let body =
        json!({"deviceId": "A", "lastSyncTimestamp": before.cursor, "changes": retitle(&ids, 20)});
    let res = app.sync_raw(&token, body.clone()).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let acks = res.body["data"]["acknowledged"].as_array().unwrap().clone();
    assert_eq!(acks.len(), 40);
    assert!(acks
        .iter()
        .all(|a| a["success"] == json!(true) && a["duplicate"].is_null()));
    // Written exactly as sent: nothing is echoed.
    assert!(res.body["data"]["serverUpdates"]["items"]
        .as_array()
        .unwrap()
        .is_empty());
    let again = app.sync_raw(&token, body).await;
    let acks = again.body["data"]["acknowledged"].as_array().unwrap();
    assert!(
        acks.iter().all(|a| a["duplicate"] == json!(true)),
        "{acks:?}"
    );
    let after = pull_everything(
        &app.client(&token),
        "B",
        Some(&before.cursor),
        None,
        "after",
    )
    .await;
    assert_eq!(after.by_id.len(), 40);
    for (k, id) in ids.iter().enumerate() {
        assert_eq!(after.by_id[id]["title"], json!(format!("t{k}")));
    }
    app.stop().await;
}

/// While `job` (one user's big request) runs on SQLite's single writer, a
/// pull from `cursor` sees it part-done (`part_done` on what changed) and
/// another user's push commits before it ends: the writer ran it in steps.
async fn others_commit_between_steps<T: Send + 'static>(
    app: &TestApp,
    (owner, cursor): (&str, &str),
    other: &str,
    job: tokio::task::JoinHandle<T>,
    part_done: impl Fn(&Everything) -> bool,
) -> T {
    let client = app.client(owner);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let all = pull_everything(&client, "checker", Some(cursor), Some(1000), "between").await;
        if part_done(&all) {
            break;
        }
        assert!(
            !job.is_finished(),
            "the request ended before a step was seen"
        );
        assert!(Instant::now() < deadline, "no step seen");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let c = change(
        "o",
        &new_id(),
        "space",
        "create",
        json!({"name": "Mine"}),
        &at(0),
        "B",
    );
    let d = app.sync(other, "B", Value::Null, vec![c]).await;
    assert_eq!(d["acknowledged"][0]["success"], json!(true), "{d}");
    assert!(
        !job.is_finished(),
        "the other user's push waited for all steps"
    );
    job.await.unwrap()
}

/// A push that rewrites 40 records of 300 kB (12 MB for a 20 kB request)
/// held the writer for all of it in one job.
async fn another_users_push_commits_between_the_steps_of_a_big_push() {
    let options = SqliteOptions {
        push_step_bytes: 600 * 1024,
        ..SqliteOptions::default()
    };
    let (app, _store, _tdb) = sqlite_app(options, |_| {}).await;
    let owner = app.register("big@example.com").await;
    let other = app.register("other@example.com").await;
    let ids = big_items(&app, &owner, 40).await;
    let cursor = pull_everything(&app.client(&owner), "A", None, Some(1000), "all").await;
    let c = app.client(&owner);
    let body = push_body("A", retitle(&ids, 20));
    let push = tokio::spawn(async move { c.sync(&body).await });
    let done = others_commit_between_steps(&app, (&owner, &cursor.cursor), &other, push, |all| {
        (1..40).contains(&all.by_id.len())
    })
    .await
    .expect("the push");
    assert!(done.acknowledged.iter().all(|a| a.success));
    app.stop().await;
}

/// Deleting a space of 40 records of 300 kB: few records, but a cascade
/// steps by bytes too (`CASCADE_STEP_BYTES`; here one record per step).
async fn a_cascade_of_big_records_steps_by_bytes() {
    let options = SqliteOptions {
        cascade_step_bytes: 1024,
        ..SqliteOptions::default()
    };
    let (app, _store, _tdb) = sqlite_app(options, |_| {}).await;
    let owner = app.register("big@example.com").await;
    let other = app.register("other@example.com").await;
    let space = new_id();
    let s = change(
        "s",
        &space,
        "space",
        "create",
        json!({"name": "S"}),
        &at(0),
        "A",
    );
    assert!(created(&app.sync(&owner, "A", Value::Null, vec![s]).await));
    let notes = big_notes();
    for b in 0..4 {
        let items = (0..10)
            .map(|k| {
                let data = json!({"title": "big", "notes": notes, "spaceId": space});
                change(
                    &format!("i{b}-{k}"),
                    &new_id(),
                    "item",
                    "create",
                    data,
                    &at(1),
                    "A",
                )
            })
            .collect();
        assert!(created(&app.sync(&owner, "A", Value::Null, items).await));
    }
    let cursor = pull_everything(&app.client(&owner), "A", None, Some(1000), "all").await;
    let c = app.client(&owner);
    let del = change("d", &space, "space", "delete", Value::Null, &at(9), "A");
    let body = push_body("A", vec![del]);
    let delete = tokio::spawn(async move { c.sync(&body).await });
    let done = others_commit_between_steps(&app, (&owner, &cursor.cursor), &other, delete, |all| {
        // Some items deleted, the space not yet.
        !all.by_id.is_empty() && !all.by_id.contains_key(&space)
    })
    .await
    .expect("the delete");
    assert!(done.acknowledged[0].success);
    let after = pull_everything(&app.client(&owner), "A", None, None, "after").await;
    assert!(after.live().is_empty());
    app.stop().await;
}

backend_tests! {
    backend: [
        a_push_of_stale_updates_answers_within_the_page_budget,
        a_push_beyond_its_step_bytes_commits_in_steps,
    ],
    plain_async: [
        another_users_push_commits_between_the_steps_of_a_big_push,
        a_cascade_of_big_records_steps_by_bytes,
    ],
}
