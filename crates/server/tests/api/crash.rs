//! Nothing acknowledged is lost when the server is killed (SIGKILL) mid-traffic.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use crate::binary::{Proc, BIN};
use crate::helpers::*;

const DEVICES: usize = 3;
const CRASHES: usize = 4;

fn start(tdb: &TestDb, dir: &std::path::Path) -> (Proc, String) {
    let mut proc = Proc::start(
        Command::new(BIN)
            .current_dir(dir)
            .env("DATABASE_URL", &tdb.url)
            .env("JWT_SECRET", TEST_SECRET)
            .env("PORT", "0")
            .env("HOST", "127.0.0.1")
            .env("RATE_LIMIT_PER_MINUTE", "100000000")
            .env("AUTH_RATE_LIMIT_PER_MINUTE", "100000000"),
    );
    let addr = proc.address();
    (proc, format!("http://{addr}"))
}

/// One batch of creates, with the titles it sets.
#[derive(Clone)]
struct Batch {
    changes: Vec<Value>,
    items: BTreeMap<String, String>,
}

#[derive(Default)]
struct Ledger {
    /// Item id → title, for every create the server acknowledged.
    acked: BTreeMap<String, String>,
    /// Batches sent whose answer never came (the crash ate it).
    unacked: Vec<Batch>,
}

async fn push(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    device: &str,
    batch: &Batch,
) -> Option<Value> {
    let res = client
        .post(format!("{base}/api/sync"))
        .bearer_auth(token)
        .json(&json!({"deviceId": device, "lastSyncTimestamp": null, "changes": batch.changes, "limit": 1}))
        .send()
        .await
        .ok()?;
    if res.status() != 200 {
        return None;
    }
    res.json::<Value>().await.ok()
}

fn record_acks(ledger: &Mutex<Ledger>, batch: &Batch, body: &Value) {
    let mut l = ledger.lock().unwrap();
    for ack in body["data"]["acknowledged"].as_array().unwrap() {
        assert_eq!(ack["success"], json!(true), "{ack}");
        let id = ack["id"].as_str().unwrap().to_owned();
        l.acked.insert(id.clone(), batch.items[&id].clone());
    }
}

/// A device pushing new batches until the server dies under it.
async fn device(base: String, token: String, n: usize, ledger: Arc<Mutex<Ledger>>, round: usize) {
    let client = reqwest::Client::new();
    let dev = format!("dev-{n}");
    for b in 0..10_000 {
        let mut batch = Batch {
            changes: vec![],
            items: BTreeMap::new(),
        };
        for k in 0..5 {
            let id = new_id();
            let title = format!("r{round} d{n} b{b} k{k}");
            batch.changes.push(change(
                &format!("{dev}-r{round}-b{b}-k{k}"),
                &id,
                "item",
                "create",
                json!({"title": title}),
                &at(b as i64),
                &dev,
            ));
            batch.items.insert(id, title);
        }
        match push(&client, &base, &token, &dev, &batch).await {
            Some(body) => record_acks(&ledger, &batch, &body),
            None => {
                ledger.lock().unwrap().unacked.push(batch);
                return;
            }
        }
    }
}

/// Every live item of the user, by id.
async fn all_items(base: &str, token: &str) -> BTreeMap<String, Value> {
    let client = reqwest::Client::new();
    let mut out = BTreeMap::new();
    let mut cursor = Value::Null;
    for _ in 0..1000 {
        let body: Value = client
            .post(format!("{base}/api/sync"))
            .bearer_auth(token)
            .json(&json!({"deviceId": "checker", "lastSyncTimestamp": cursor, "limit": 5000}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let d = &body["data"];
        for r in d["serverUpdates"]["items"].as_array().unwrap() {
            out.insert(r["id"].as_str().unwrap().to_owned(), r.clone());
        }
        cursor = d["syncTimestamp"].clone();
        if d["hasMore"] == json!(false) {
            return out;
        }
    }
    panic!("pull did not finish");
}

async fn acknowledged_operations_survive_sigkill(db: Db) {
    let tdb = TestDb::new(db).await;
    let dir = tempfile::tempdir().unwrap();
    let (mut proc, mut base) = start(&tdb, dir.path());
    let token =
        {
            let res: Value = reqwest::Client::new()
            .post(format!("{base}/api/auth/register"))
            .json(&json!({"email": "crash@example.com", "password": "correct horse", "name": "C"}))
            .send().await.unwrap().json().await.unwrap();
            res["data"]["token"].as_str().unwrap().to_owned()
        };
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..CRASHES {
        let tasks: Vec<_> = (0..DEVICES)
            .map(|n| {
                tokio::spawn(device(
                    base.clone(),
                    token.clone(),
                    n,
                    ledger.clone(),
                    round,
                ))
            })
            .collect();
        // A random moment, so kills land in every phase of a request.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(Duration::from_millis(150 + seed % 400)).await;
        proc.kill9();
        for t in tasks {
            t.await.unwrap();
        }
        (proc, base) = start(&tdb, dir.path());

        // No request is half-applied: each batch whose answer was lost is
        // entirely present or entirely absent.
        let items = all_items(&base, &token).await;
        let l = ledger.lock().unwrap();
        for batch in &l.unacked {
            let present = batch
                .items
                .keys()
                .filter(|id| items.contains_key(*id))
                .count();
            assert!(
                present == 0 || present == batch.items.len(),
                "half-applied batch: {present}/{}",
                batch.items.len()
            );
        }
        // Every acknowledged create is there, with its effect.
        for (id, title) in &l.acked {
            let got = items
                .get(id)
                .unwrap_or_else(|| panic!("acknowledged item {id} lost (round {round})"));
            assert_eq!(got["title"], json!(title));
        }
    }

    // Devices re-send what they never got an answer for: one effect each.
    let unacked = std::mem::take(&mut ledger.lock().unwrap().unacked);
    assert!(
        !unacked.is_empty(),
        "the kills should have interrupted requests"
    );
    let client = reqwest::Client::new();
    for batch in &unacked {
        let body = push(&client, &base, &token, "dev-retry", batch)
            .await
            .expect("retry");
        record_acks(&ledger, batch, &body);
    }
    let items = all_items(&base, &token).await;
    let l = ledger.lock().unwrap();
    eprintln!(
        "{db:?}: {} acknowledged creates, {} interrupted batches re-sent, {CRASHES} kills",
        l.acked.len(),
        unacked.len()
    );
    let expected: BTreeSet<&String> = l.acked.keys().collect();
    let got: BTreeSet<&String> = items.keys().collect();
    assert_eq!(
        got, expected,
        "exactly the acknowledged items, no more, no fewer"
    );
    assert!(
        l.acked.len() >= DEVICES * 5,
        "traffic was too small to mean anything"
    );
    drop(l);
    proc.terminate();
}

backend_tests!(acknowledged_operations_survive_sigkill);
