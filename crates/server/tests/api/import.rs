//! `tidesync import mongo DIR` (issue 13), through the real binary, on
//! fixtures from the generator (`tidesync_testkit::mongo`): then the
//! original's users and devices carry on against the server as before.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};
use tidesync_protocol::time::{now_millis, to_iso, Millis};
use tidesync_testkit::mongo::{generate, FixtureRecord, Generated, MongoFixture};
use tidesync_testkit::*;

use crate::binary::BIN;

backend_tests! {
    backend: [
        imported_users_sign_in_and_their_devices_sync_on,
        a_second_import_changes_nothing,
    ],
    plain: [a_dry_run_writes_nothing_and_a_missing_export_fails],
}

const DAY: Millis = 86_400_000;

fn fixture(dir: &Path) -> Generated {
    generate(
        dir,
        &MongoFixture {
            users: 3,
            records_per_user: 14,
            // Recent, so that no retention horizon is involved.
            base: now_millis() - 20 * DAY,
            seed: 13,
            anomalies: true,
        },
    )
    .expect("fixtures")
}

fn import(url: &str, dir: &Path) -> String {
    import_with(url, dir, &[])
}

fn import_with(url: &str, dir: &Path, flags: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(["import", "mongo"])
        .arg(dir)
        .args(flags)
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "import failed:\n{text}");
    text
}

/// (imported, already present, skipped) of a summary line.
fn counts(summary: &str, collection: &str) -> (u64, u64, u64) {
    let line = summary
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{collection}:")))
        .unwrap_or_else(|| panic!("no {collection} line in:\n{summary}"));
    let n: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    (n[0], n[1], n[2])
}

const COLLECTIONS: [&str; 5] = ["users", "spaces", "categories", "items", "synclogs"];

fn changed_at(r: &FixtureRecord) -> Millis {
    r.updated_at.max(r.deleted_at.unwrap_or(0))
}

async fn imported_users_sign_in_and_their_devices_sync_on(db: Db) {
    let tdb = TestDb::new(db).await;
    let dir = tempfile::tempdir().unwrap();
    let g = fixture(dir.path());
    let summary = import(&tdb.url, dir.path());
    for (i, c) in COLLECTIONS.iter().enumerate() {
        assert_eq!(
            counts(&summary, c),
            (g.valid[i], 0, g.invalid[i]),
            "{c}:\n{summary}"
        );
    }
    for reason in [
        "items: not JSON",
        "items: dangling categoryId",
        "items: unknown owner",
        "items: invalid: title: is required",
        "synclogs: no usable operationId",
        "items.poster",
        "items.movieDetails",
        "items.movieId",
        "items.isCompleted",
    ] {
        assert!(
            summary.contains(reason),
            "summary lacks {reason:?}:\n{summary}"
        );
    }

    let app = spawn_app(&tdb).await;
    let u = &g.users[0];
    expect_api_error(
        app.api.login(&u.email, "not-the-password").await,
        401,
        tidesync_client::ErrorCode::InvalidCredentials,
    );
    let auth = app
        .api
        .login(&u.email, &u.password)
        .await
        .expect("old password");
    let hash = app
        .store
        .credentials_by_email(&u.email)
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    assert!(
        hash.starts_with("$argon2id$"),
        "rehashed at the first sign-in"
    );
    let token = app
        .api
        .login(&u.email, &u.password)
        .await
        .expect("again, on Argon2id")
        .token;
    assert!(
        app.client(&auth.token).me().await.is_ok(),
        "the first token stays valid"
    );
    let client = app.client(&token);

    // A new device: every live record, with the original's ids and dates.
    let fresh = pull_everything(&client, "new-device", None, None, "initial").await;
    let live: BTreeMap<&str, &FixtureRecord> = u
        .records
        .iter()
        .filter(|r| r.deleted_at.is_none())
        .map(|r| (r.id.as_str(), r))
        .collect();
    assert_eq!(fresh.by_id.len(), live.len());
    for (id, r) in &live {
        let got = &fresh.by_id[*id];
        assert_eq!(got["createdAt"], json!(to_iso(r.created_at)), "{got}");
        assert_eq!(got["updatedAt"], json!(to_iso(r.updated_at)), "{got}");
        assert_eq!(got["deviceId"], json!(r.device_id), "{got}");
    }
    let stripped = fresh
        .by_id
        .values()
        .all(|r| r.get("poster").is_none() && r.get("movieDetails").is_none());
    assert!(stripped, "external metadata is not served");
    assert!(
        fresh.by_id.values().any(|r| r["movieId"].is_string()),
        "movieIds are strings"
    );

    // An original device that last synced at `since`: exactly what changed
    // at or after it, tombstones included.
    let mut times: Vec<Millis> = u.records.iter().map(changed_at).collect();
    times.sort();
    let tomb = u
        .records
        .iter()
        .find(|r| r.deleted_at.is_some())
        .expect("a tombstone in the fixture");
    for since in [
        times[times.len() / 2],
        tomb.deleted_at.unwrap() - 60_000,
        times[0] - 1,
    ] {
        let iso = to_iso(since);
        let got = pull_everything(&client, "old-device", Some(&iso), None, "since").await;
        let want: Vec<&str> = u
            .records
            .iter()
            .filter(|r| changed_at(r) >= since)
            .map(|r| r.id.as_str())
            .collect();
        let mut got_ids: Vec<&str> = got.by_id.keys().map(String::as_str).collect();
        let mut want_sorted = want.clone();
        got_ids.sort();
        want_sorted.sort();
        assert_eq!(got_ids, want_sorted, "since {iso}");
    }
    let got = pull_everything(
        &client,
        "old-device",
        Some(&to_iso(tomb.deleted_at.unwrap() - 1)),
        None,
        "tomb",
    )
    .await;
    assert_eq!(
        got.by_id[&tomb.id]["deletedAt"],
        json!(to_iso(tomb.deleted_at.unwrap()))
    );

    // The original's queue retries an operation it had applied.
    let op = &u.operation_ids[0];
    let res = app
        .sync_raw(
            &token,
            json!({"deviceId": "old-device", "lastSyncTimestamp": null, "changes": [{
                "operationId": op, "id": new_id(), "entityType": "item", "operation": "create",
                "data": {"title": "again"}, "timestamp": to_iso(now_millis()), "deviceId": "old-device"}]}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let ack: &Value = &res.body["data"]["acknowledged"][0];
    assert_eq!(
        (ack["success"].clone(), ack["duplicate"].clone()),
        (json!(true), json!(true)),
        "{ack}"
    );
}

async fn a_second_import_changes_nothing(db: Db) {
    let tdb = TestDb::new(db).await;
    let dir = tempfile::tempdir().unwrap();
    let g = fixture(dir.path());
    import(&tdb.url, dir.path());
    let before = snapshot(&tdb, &g).await;
    let summary = import(&tdb.url, dir.path());
    for (i, c) in COLLECTIONS.iter().enumerate() {
        assert_eq!(
            counts(&summary, c),
            (0, g.valid[i], g.invalid[i]),
            "{c}:\n{summary}"
        );
    }
    assert!(summary.contains("nothing imported"), "{summary}");
    assert_eq!(snapshot(&tdb, &g).await, before);
}

type Snapshot = BTreeMap<String, (BTreeMap<String, Value>, String)>;

/// Every user's records, tombstones included, and cursor, through the API.
async fn snapshot(tdb: &TestDb, g: &Generated) -> Snapshot {
    let app = spawn_app(tdb).await;
    let mut all = BTreeMap::new();
    for u in &g.users {
        let token = app
            .api
            .login(&u.email, &u.password)
            .await
            .expect("login")
            .token;
        let got = pull_everything(
            &app.client(&token),
            "d",
            Some("1970-01-01T00:00:00.000Z"),
            None,
            "all",
        )
        .await;
        all.insert(u.email.clone(), (got.by_id, got.cursor));
    }
    app.stop().await;
    all
}

fn a_dry_run_writes_nothing_and_a_missing_export_fails() {
    let dir = tempfile::tempdir().unwrap();
    let g = fixture(dir.path());
    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/t.db", db.path().display());
    let summary = import_with(&url, dir.path(), &["--dry-run"]);
    assert!(summary.contains("dry run: nothing written"), "{summary}");
    for (i, c) in COLLECTIONS.iter().enumerate() {
        assert_eq!(
            counts(&summary, c),
            (g.valid[i], 0, g.invalid[i]),
            "{c}:\n{summary}"
        );
    }
    assert!(
        !db.path().join("t.db").exists(),
        "a dry run opens no database"
    );

    let out = Command::new(BIN)
        .args(["import", "mongo"])
        .arg(db.path().join("no-such-export"))
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot read"),
        "{out:?}"
    );
}
