//! Bounded history (issue 14): tombstones past the retention horizon are
//! collected; a device whose cursor is older gets 409 `resync_required`,
//! and the documented reaction (keep the outbox, drop the server copy,
//! initial sync, push the outbox) loses nothing and resurrects nothing.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tidesync_store::GcHorizon;
use tidesync_testkit::*;

use crate::binary::{serve, BIN};

backend_tests!(
    a_stale_device_resyncs_without_loss_or_resurrection,
    the_server_collects_history_on_its_own,
    gc_subcommand_collects_and_stale_cursors_must_resync,
);

fn item(op: &str, id: &str, title: &str, space: &str, secs: i64, dev: &str) -> Value {
    change(
        op,
        id,
        "item",
        "create",
        json!({"title": title, "spaceId": space}),
        &at(secs),
        dev,
    )
}

fn live_titles(records: &std::collections::BTreeMap<String, Value>) -> Vec<(String, String)> {
    let mut out: Vec<_> = records
        .iter()
        .filter(|(_, r)| !is_deleted(r) && r["title"].is_string())
        .map(|(id, r)| (id.clone(), r["title"].as_str().unwrap().to_owned()))
        .collect();
    out.sort();
    out
}

fn acks_by_op(data: &Value) -> std::collections::BTreeMap<String, Value> {
    data["acknowledged"]
        .as_array()
        .expect("acknowledged")
        .iter()
        .map(|a| (a["operationId"].as_str().unwrap().to_owned(), a.clone()))
        .collect()
}

/// A collection "90 days later": every tombstone so far is past the
/// horizon; `sync_log` is kept (its retention is longer), as by default.
fn later() -> GcHorizon {
    let now = tidesync_protocol::time::now_millis() + 91 * 86_400_000;
    GcHorizon {
        tombstones_before: now - 90 * 86_400_000,
        log_before: 0,
        now,
    }
}

async fn a_stale_device_resyncs_without_loss_or_resurrection(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let token = app.register("alice@example.com").await;
    let (s, i1, i2, i3, i5, i6) = (new_id(), new_id(), new_id(), new_id(), new_id(), new_id());

    // The laptop creates everything, then goes offline with its cursor.
    let create_i5 = item("b-i5", &i5, "Tenet", &s, 5, "laptop");
    let laptop = app
        .sync(
            &token,
            "laptop",
            Value::Null,
            vec![
                change(
                    "b-s",
                    &s,
                    "space",
                    "create",
                    json!({"name": "Films"}),
                    &at(0),
                    "laptop",
                ),
                item("b-i1", &i1, "Dune", &s, 1, "laptop"),
                item("b-i2", &i2, "Arrival", &s, 2, "laptop"),
                item("b-i3", &i3, "Heat", &s, 3, "laptop"),
                create_i5.clone(),
            ],
        )
        .await;
    let stale_cursor = laptop["syncTimestamp"].clone();

    // The phone deletes two of them and edits another.
    let phone = pull_everything(&app.client(&token), "phone", None, None, "phone").await;
    assert_eq!(live_titles(&phone.by_id).len(), 4);
    let phone_after = app
        .sync(
            &token,
            "phone",
            json!(phone.cursor),
            vec![
                change("p-d1", &i1, "item", "delete", Value::Null, &at(10), "phone"),
                change("p-d5", &i5, "item", "delete", Value::Null, &at(11), "phone"),
                change(
                    "p-u2",
                    &i2,
                    "item",
                    "update",
                    json!({"title": "Arrival (2016)"}),
                    &at(12),
                    "phone",
                ),
            ],
        )
        .await;
    let phone_cursor = phone_after["syncTimestamp"].clone();
    assert!(phone_after["acknowledged"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["success"] == true));

    // 90 days pass; the history is collected.
    let report = app.store.collect_garbage(later()).await.unwrap();
    assert_eq!(report.tombstones, 2, "{report:?}");
    assert_eq!(report.log_rows, 0, "{report:?}");

    // The laptop comes back with its old cursor and an outbox: an edit, a
    // new item, a retry of its create of i5 (whose answer it never got),
    // and an edit of i1, deleted meanwhile. Refused whole: nothing applied.
    let outbox = vec![
        change(
            "b-u3",
            &i3,
            "item",
            "update",
            json!({"title": "Heat (1995)"}),
            &at(20),
            "laptop",
        ),
        item("b-i6", &i6, "Up", &s, 21, "laptop"),
        create_i5,
        change(
            "b-u1",
            &i1,
            "item",
            "update",
            json!({"title": "Dune, again"}),
            &at(22),
            "laptop",
        ),
    ];
    let res = app
        .sync_raw(
            &token,
            json!({"deviceId": "laptop", "lastSyncTimestamp": stale_cursor, "changes": outbox}),
        )
        .await;
    res.assert_error(409, "resync_required");
    // A cursor that saw every collected tombstone goes on as before.
    let phone_next = app.sync(&token, "phone", phone_cursor, vec![]).await;
    let seen = records_by_id(&phone_next["serverUpdates"]);
    assert!(
        seen.is_empty(),
        "the refused push applied something: {seen:?}"
    );
    // So does a pull-only request from the stale cursor: refused too.
    app.sync_raw(
        &token,
        json!({"deviceId": "laptop", "lastSyncTimestamp": stale_cursor, "changes": []}),
    )
    .await
    .assert_error(409, "resync_required");

    // The reaction: drop the server copy, initial sync, push the outbox.
    let fresh = app.client(&token).initial_all(None, Some(2)).await.unwrap();
    let copy = by_id(&fresh.updates);
    assert_eq!(
        live_titles(&copy),
        {
            let mut v = vec![
                (i2.clone(), "Arrival (2016)".to_owned()),
                (i3.clone(), "Heat".to_owned()),
            ];
            v.sort();
            v
        },
        "the fresh copy"
    );
    assert!(copy.contains_key(&s));
    let pushed = app
        .sync(&token, "laptop", json!(fresh.sync_timestamp), outbox)
        .await;
    let acks = acks_by_op(&pushed);
    assert_eq!(acks["b-u3"]["success"], true, "{acks:?}");
    assert_eq!(acks["b-i6"]["success"], true, "{acks:?}");
    // The retried create is recognised (sync_log outlives tombstones).
    assert_eq!(acks["b-i5"]["success"], true, "{acks:?}");
    assert_eq!(acks["b-i5"]["duplicate"], true, "{acks:?}");
    // The edit of a record deleted (and collected) meanwhile brings nothing back.
    assert_eq!(acks["b-u1"]["success"], false, "{acks:?}");
    assert_eq!(acks["b-u1"]["error"]["code"], "not_found", "{acks:?}");

    // Every device converges on the same live set, without i1 or i5.
    let want = {
        let mut v = vec![
            (i2.clone(), "Arrival (2016)".to_owned()),
            (i3.clone(), "Heat (1995)".to_owned()),
            (i6.clone(), "Up".to_owned()),
        ];
        v.sort();
        v
    };
    let scratch = pull_everything(&app.client(&token), "tablet", None, Some(2), "tablet").await;
    assert_eq!(live_titles(&scratch.by_id), want);
    let phone_end = app
        .sync(&token, "phone", phone_next["syncTimestamp"].clone(), vec![])
        .await;
    // The phone, which never needed a resync, receives the laptop's outbox
    // and nothing of what it deleted.
    let got = records_by_id(&phone_end["serverUpdates"]);
    assert_eq!(live_titles(&got), {
        let mut v = vec![
            (i3.clone(), "Heat (1995)".to_owned()),
            (i6.clone(), "Up".to_owned()),
        ];
        v.sort();
        v
    });
    assert!(!got.contains_key(&i1) && !got.contains_key(&i5), "{got:?}");
    app.stop().await;
}

/// The server's own periodic collection (GC_INTERVAL) with a short horizon.
async fn the_server_collects_history_on_its_own(db: Db) {
    let tdb = TestDb::new(db).await;
    let mut args = test_args(&tdb);
    args.retention.history_retention = Duration::from_secs(2);
    args.gc_interval = Duration::from_millis(200);
    let app = spawn_with(args).await;
    let token = app.register("alice@example.com").await;
    let (s, i) = (new_id(), new_id());
    let first = app
        .sync(
            &token,
            "laptop",
            Value::Null,
            vec![
                change(
                    "s",
                    &s,
                    "space",
                    "create",
                    json!({"name": "Films"}),
                    &at(0),
                    "laptop",
                ),
                item("i", &i, "Dune", &s, 1, "laptop"),
            ],
        )
        .await;
    let old = first["syncTimestamp"].clone();
    app.sync(
        &token,
        "phone",
        Value::Null,
        vec![change(
            "d",
            &i,
            "item",
            "delete",
            Value::Null,
            &at(2),
            "phone",
        )],
    )
    .await;
    let started = Instant::now();
    loop {
        let res = app
            .sync_raw(
                &token,
                json!({"deviceId": "laptop", "lastSyncTimestamp": old}),
            )
            .await;
        if res.status == 409 {
            res.assert_error(409, "resync_required");
            break;
        }
        assert_eq!(res.status, 200, "{}", res.body);
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the tombstone was not collected 30 s after a 2 s horizon"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Collected, not lost: the space is there, the item is not.
    let fresh = pull_everything(&app.client(&token), "laptop", None, None, "fresh").await;
    assert!(fresh.by_id.contains_key(&s));
    assert!(!fresh.by_id.contains_key(&i));
    app.stop().await;
}

/// `tidesync gc` on a stopped server's database, then the server again.
async fn gc_subcommand_collects_and_stale_cursors_must_resync(db: Db) {
    let tdb = TestDb::new(db).await;
    let dir = tempfile::tempdir().unwrap();
    let (proc, base) = serve(&tdb, dir.path());
    let api = tidesync_client::Client::new(&base).unwrap();
    let token = api
        .register("alice@example.com", PASSWORD, "Alice")
        .await
        .unwrap()
        .token;
    let http = reqwest::Client::new();
    let sync = |body: Value| {
        let req = http
            .post(format!("{base}/api/sync"))
            .bearer_auth(&token)
            .json(&body);
        async move {
            let res = req.send().await.unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    };
    let (s, i) = (new_id(), new_id());
    let (status, first) = sync(
        json!({"deviceId": "laptop", "lastSyncTimestamp": null, "changes": [
            change("s", &s, "space", "create", json!({"name": "Films"}), &at(0), "laptop"),
            item("i", &i, "Dune", &s, 1, "laptop"),
        ]}),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let (status, _) = sync(
        json!({"deviceId": "phone", "lastSyncTimestamp": null, "changes": [
            change("d", &i, "item", "delete", Value::Null, &at(2), "phone"),
        ]}),
    )
    .await;
    assert_eq!(status, 200);
    let (ok, _) = proc.terminate();
    assert!(ok);

    std::thread::sleep(Duration::from_millis(1100));
    let out = Command::new(BIN)
        .arg("gc")
        .current_dir(dir.path())
        .env("DATABASE_URL", &tdb.url)
        .env("HISTORY_RETENTION", "1s")
        .env("LOG_FORMAT", "json")
        .output()
        .unwrap();
    let log =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tidesync gc failed: {log}");
    let line = log
        .lines()
        .find(|l| l.contains("history collected"))
        .unwrap_or_else(|| panic!("no summary in: {log}"));
    assert!(
        line.contains("tombstones=1") || line.contains("\"tombstones\":1"),
        "{line}"
    );

    let (proc, base2) = serve(&tdb, dir.path());
    let res = reqwest::Client::new()
        .post(format!("{base2}/api/sync"))
        .bearer_auth(&token)
        .json(&json!({"deviceId": "laptop", "lastSyncTimestamp": first["data"]["syncTimestamp"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["success"], false);
    assert_eq!(body["error"]["code"], "resync_required", "{body}");
    let (ok, _) = proc.terminate();
    assert!(ok);
}
