//! Operations (issue 14), through the real binary: `tidesync backup` while
//! writes go on and `tidesync restore` into a fresh server; Prometheus
//! metrics on their own address.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tidesync_client::{Client, EntityType, OpKind, SyncBody};
use tidesync_testkit::*;

use crate::binary::BIN;

backend_tests! {
    plain_async: [
        backup_under_load_restores_every_acknowledged_operation,
        metrics_are_served_on_their_own_address,
        metric_labels_come_from_closed_sets,
    ],
}

/// One push as the test saw it: its items, when it was sent and when
/// (whether) it was acknowledged.
struct Sent {
    items: Vec<String>,
    sent: Instant,
    acked: Option<Instant>,
}

async fn writer(
    client: Client,
    dev: String,
    log: Arc<Mutex<Vec<Sent>>>,
    stop: Arc<tokio::sync::Notify>,
) {
    let mut n = 0;
    loop {
        let items: Vec<String> = (0..5).map(|_| new_id()).collect();
        let changes = items
            .iter()
            .enumerate()
            .map(|(k, id)| {
                typed_change(
                    &format!("{dev}-{n}-{k}"),
                    id,
                    EntityType::Item,
                    OpKind::Create,
                    json!({"title": format!("{dev} {n} {k}")}),
                    &at(n),
                    &dev,
                )
            })
            .collect();
        let body = SyncBody {
            device_id: dev.clone(),
            changes,
            limit: Some(1),
            ..SyncBody::default()
        };
        let sent = Instant::now();
        let r = client
            .sync(&body)
            .await
            .unwrap_or_else(|e| panic!("{dev}: {e}"));
        assert!(
            r.acknowledged.iter().all(|a| a.success),
            "{:?}",
            r.acknowledged
        );
        log.lock().unwrap().push(Sent {
            items,
            sent,
            acked: Some(Instant::now()),
        });
        n += 1;
        tokio::select! {
            _ = stop.notified() => return,
            _ = tokio::task::yield_now() => {}
        }
    }
}

fn tidesync(args: &[&str], dir: &std::path::Path, url: &str) -> (bool, String) {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("DATABASE_URL", url)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

async fn backup_under_load_restores_every_acknowledged_operation() {
    let tdb = TestDb::sqlite();
    let dir = tdb.dir().unwrap().to_owned();
    let (proc, base) = crate::binary::serve(&tdb, &dir);
    let api = Client::new(&base).unwrap();
    let token = api
        .register("alice@example.com", PASSWORD, "Alice")
        .await
        .unwrap()
        .token;
    let alice = api.with_token(&token);
    let watcher = pull_everything(&alice, "watcher", None, None, "watcher").await;

    let log = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(tokio::sync::Notify::new());
    let tasks: Vec<_> = (0..3)
        .map(|d| {
            tokio::spawn(writer(
                alice.clone(),
                format!("dev{d}"),
                log.clone(),
                stop.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(800)).await;

    let file = dir.join("backup.db");
    let began = Instant::now();
    let (ok, out) = {
        let (dir, url, file) = (dir.clone(), tdb.url.clone(), file.clone());
        tokio::task::spawn_blocking(move || {
            tidesync(&["backup", file.to_str().unwrap()], &dir, &url)
        })
        .await
        .unwrap()
    };
    let ended = Instant::now();
    assert!(ok, "backup failed: {out}");
    // Refused: the file exists; and restore refuses while the server runs.
    let (ok, out) = tidesync(&["backup", file.to_str().unwrap()], &dir, &tdb.url);
    assert!(!ok && out.contains("exists"), "{out}");
    let (ok, out) = tidesync(&["restore", file.to_str().unwrap()], &dir, &tdb.url);
    assert!(!ok && out.contains("in use"), "{out}");

    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.notify_waiters();
    for t in tasks {
        // notify_waiters wakes only those waiting: a writer mid-push ends
        // at its next turn, woken again here.
        while !t.is_finished() {
            stop.notify_waiters();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        t.await.unwrap();
    }
    let (ok, _) = proc.terminate();
    assert!(ok);
    let log = std::mem::take(&mut *log.lock().unwrap());
    let before: Vec<&Sent> = log.iter().filter(|s| s.acked.unwrap() < began).collect();
    let after: Vec<&Sent> = log.iter().filter(|s| s.sent > ended).collect();
    assert!(
        before.len() >= 3 && !after.is_empty(),
        "the load did not straddle the backup: {} before, {} after",
        before.len(),
        after.len()
    );

    // A fresh server from the backup.
    let fresh = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/tidesync.db", fresh.path().display());
    let (ok, out) = tidesync(&["restore", file.to_str().unwrap()], fresh.path(), &url);
    assert!(ok, "restore failed: {out}");
    let (proc, base) = Proc::serve(&mut Proc::command(
        std::path::Path::new(BIN),
        fresh.path(),
        &url,
        TEST_SECRET,
    ));
    let alice = Client::new(&base).unwrap().with_token(&token);
    let all = pull_everything(&alice, "tablet", None, Some(500), "restored").await;
    let present: BTreeSet<&String> = all.by_id.keys().collect();
    for s in &before {
        for id in &s.items {
            assert!(
                present.contains(id),
                "acknowledged before the backup, lost: {id}"
            );
        }
    }
    for s in &after {
        for id in &s.items {
            assert!(
                !present.contains(id),
                "sent after the backup, yet in it: {id}"
            );
        }
    }
    let sent: BTreeSet<&String> = log.iter().flat_map(|s| &s.items).collect();
    assert!(
        present.iter().all(|id| sent.contains(id)),
        "records nobody sent"
    );
    // Each push is all or nothing in the copy.
    for s in &log {
        let n = s.items.iter().filter(|id| present.contains(id)).count();
        assert!(n == 0 || n == s.items.len(), "a push half in the backup");
    }

    // Devices resume: an old cursor must resync once, then syncing goes on.
    let res = alice
        .sync(&SyncBody {
            device_id: "watcher".into(),
            last_sync_timestamp: Some(watcher.cursor.clone()),
            ..SyncBody::default()
        })
        .await;
    expect_api_error(res, 409, tidesync_client::ErrorCode::ResyncRequired);
    let copy = alice.initial_all(None, None).await.unwrap();
    assert_eq!(by_id(&copy.updates).len(), present.len());
    let id = new_id();
    let r = alice
        .sync(&SyncBody {
            device_id: "watcher".into(),
            last_sync_timestamp: Some(copy.sync_timestamp.clone()),
            changes: vec![typed_change(
                "after-restore",
                &id,
                EntityType::Item,
                OpKind::Create,
                json!({"title": "after the restore"}),
                &at(0),
                "watcher",
            )],
            ..SyncBody::default()
        })
        .await
        .unwrap();
    assert!(r.acknowledged[0].success, "{:?}", r.acknowledged);
    let next = pull_everything(&alice, "tablet", Some(&all.cursor), None, "tablet").await;
    assert_eq!(
        next.by_id.get(&id).map(|r| r["title"].clone()),
        Some(json!("after the restore"))
    );
    let (ok, _) = proc.terminate();
    assert!(ok);
}

/// The value of the first sample of `name` whose labels include every one
/// of `labels` (`key="value"`).
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            (l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
                && labels.iter().all(|x| l.contains(x))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

async fn metrics_are_served_on_their_own_address() {
    let tdb = TestDb::sqlite();
    let dir = tdb.dir().unwrap().to_owned();
    let mut cmd = Proc::command(std::path::Path::new(BIN), &dir, &tdb.url, TEST_SECRET);
    cmd.env("METRICS_ADDR", "127.0.0.1:0");
    let mut proc = Proc::start(&mut cmd);
    let line = proc.wait_for("metrics at /metrics");
    let v: Value = serde_json::from_str(&line).unwrap();
    let metrics = format!(
        "http://{}/metrics",
        v["fields"]["address"].as_str().unwrap()
    );
    let base = format!("http://{}", proc.address());

    let api = Client::new(&base).unwrap();
    let token = api
        .register("alice@example.com", PASSWORD, "Alice")
        .await
        .unwrap()
        .token;
    assert!(api
        .login("alice@example.com", "wrong password")
        .await
        .is_err());
    let alice = api.with_token(&token);
    let (i, dev) = (new_id(), "laptop");
    let create = typed_change(
        "op-1",
        &i,
        EntityType::Item,
        OpKind::Create,
        json!({"title": "Dune"}),
        &at(0),
        dev,
    );
    let bad = typed_change(
        "op-2",
        &new_id(),
        EntityType::Item,
        OpKind::Create,
        // Not castable to a string (a number would be).
        json!({"title": {"text": 7}}),
        &at(0),
        dev,
    );
    for _ in 0..2 {
        alice
            .sync(&SyncBody {
                device_id: dev.into(),
                changes: vec![create.clone(), bad.clone()],
                ..SyncBody::default()
            })
            .await
            .unwrap();
    }

    let http = reqwest::Client::new();
    let res = http.get(&metrics).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = res.text().await.unwrap();
    let has = |name: &str, labels: &[&str]| {
        sample(&text, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in:\n{text}"))
    };
    assert_eq!(
        has(
            "tidesync_http_requests_total",
            &[
                r#"route="/api/sync""#,
                r#"method="POST""#,
                r#"status="200""#
            ]
        ),
        2.0
    );
    assert_eq!(
        has(
            "tidesync_http_requests_total",
            &[r#"route="/api/auth/login""#, r#"status="401""#]
        ),
        1.0
    );
    assert_eq!(
        has("tidesync_push_operations_total", &[r#"outcome="applied""#]),
        1.0
    );
    assert_eq!(
        has(
            "tidesync_push_operations_total",
            &[r#"outcome="duplicate""#]
        ),
        1.0
    );
    assert_eq!(
        has(
            "tidesync_push_operations_total",
            &[r#"outcome="rejected""#, r#"code="validation_failed""#]
        ),
        2.0
    );
    assert_eq!(has("tidesync_sign_in_failures_total", &[]), 1.0);
    assert!(
        has(
            "tidesync_http_request_duration_seconds_count",
            &[r#"route="/api/sync""#]
        ) >= 2.0
    );
    assert!(has("tidesync_writer_job_seconds_count", &[]) >= 2.0);
    has("tidesync_writer_queue_depth", &[]);
    // Not on the public address.
    let res = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let (ok, _) = proc.terminate();
    assert!(ok);
}

/// The binary with metrics on: (process, API base, metrics URL).
fn serve_with_metrics(tdb: &TestDb) -> (Proc, String, String) {
    let dir = tdb.dir().unwrap().to_owned();
    let mut cmd = Proc::command(std::path::Path::new(BIN), &dir, &tdb.url, TEST_SECRET);
    cmd.env("METRICS_ADDR", "127.0.0.1:0");
    let mut proc = Proc::start(&mut cmd);
    let line = proc.wait_for("metrics at /metrics");
    let v: Value = serde_json::from_str(&line).unwrap();
    let metrics = format!(
        "http://{}/metrics",
        v["fields"]["address"].as_str().unwrap()
    );
    let base = format!("http://{}", proc.address());
    (proc, base, metrics)
}

/// Invented methods and paths add no series: methods outside HTTP's
/// standard ones are `other`, unknown routes `unmatched`. And a flood of
/// `/health` asks the database at most about once a second.
async fn metric_labels_come_from_closed_sets() {
    let tdb = TestDb::sqlite();
    let (proc, base, metrics) = serve_with_metrics(&tdb);
    let http = reqwest::Client::new();
    let scrape = || async {
        http.get(&metrics)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let odd = |i: usize| reqwest::Method::from_bytes(format!("INVENTED{i}").as_bytes()).unwrap();
    // A server that has answered one probe, and never an unknown path or
    // method: the flood's first requests add their few fixed series (the
    // `unmatched` and `other` counters) once, within the bound.
    http.get(format!("{base}/health")).send().await.unwrap();
    let before = scrape().await;
    let probes = |text: &str| {
        sample(
            text,
            "tidesync_db_acquire_seconds_count",
            &[r#"pool="sqlite-readers""#],
        )
        .unwrap_or(0.0)
    };
    let started = Instant::now();
    for i in 1..=300 {
        let path = if i % 2 == 0 {
            "/health".to_owned()
        } else {
            format!("/made-up/{i}")
        };
        let res = http
            .request(odd(i), format!("{base}{path}"))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_client_error(), "{path}: {}", res.status());
    }
    // A flood of /health, 20 at a time.
    for _ in 0..10 {
        let mut all = tokio::task::JoinSet::new();
        for _ in 0..20 {
            all.spawn(http.get(format!("{base}/health")).send());
        }
        while let Some(res) = all.join_next().await {
            assert_eq!(res.unwrap().unwrap().status(), 200);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let after = scrape().await;
    assert!(
        after.len() <= before.len() + 1024,
        "the exposition grew from {} to {} bytes",
        before.len(),
        after.len()
    );
    assert!(!after.contains("INVENTED") && !after.contains("made-up"));
    let count = |t: &str, labels: &[&str]| sample(t, "tidesync_http_requests_total", labels);
    assert_eq!(
        count(&after, &[r#"route="unmatched""#, r#"method="other""#]),
        Some(150.0),
        "{after}"
    );
    assert_eq!(
        count(&after, &[r#"route="/health""#, r#"method="other""#]),
        Some(150.0)
    );
    let asked = probes(&after) - probes(&before);
    assert!(
        asked <= seconds.ceil() + 1.0,
        "the database was asked {asked} times in {seconds:.1} s of /health"
    );
    let (ok, _) = proc.terminate();
    assert!(ok);
}
