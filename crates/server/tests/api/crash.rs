//! Nothing acknowledged is lost when the server is killed (SIGKILL)
//! mid-traffic; a request the kill interrupted is all-or-nothing, and its
//! retry has exactly one effect.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::json;
use tidesync_client::{Client, EntityType, OpKind, SyncBody};
use tidesync_testkit::*;

use crate::binary::serve;

backend_tests!(acknowledged_operations_survive_sigkill);

const DEVICES: usize = 3;
const CRASHES: usize = 4;

/// One batch of creates, with the titles it sets.
#[derive(Clone)]
struct Batch {
    body: SyncBody,
    items: BTreeMap<String, String>,
}

#[derive(Default)]
struct Ledger {
    /// Item id → title, for every create the server acknowledged.
    acked: BTreeMap<String, String>,
    /// Sent while the server was alive, answer lost: in flight at the kill.
    interrupted: Vec<Batch>,
    /// Never reached a live server (connection refused, or sent once the
    /// killed process was gone): they must have had no effect.
    refused: Vec<Batch>,
}

/// The kill of one round: whether it began, and when the killed process
/// was certainly gone (reaped).
#[derive(Default)]
struct Kill {
    begun: OnceLock<()>,
    dead: OnceLock<Instant>,
}

impl Kill {
    /// When the server was gone, for a request that failed: it must have
    /// failed because of the kill.
    async fn gone(&self, dev: &str, e: &tidesync_client::Error) -> Instant {
        assert!(
            self.begun.get().is_some(),
            "{dev}: a request failed while the server was up: {e}"
        );
        for _ in 0..3000 {
            if let Some(t) = self.dead.get() {
                return *t;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the killed server was not reaped within 30 s");
    }
}

fn record_acks(ledger: &Mutex<Ledger>, batch: &Batch, acks: &[tidesync_client::Ack]) {
    let mut l = ledger.lock().unwrap();
    assert_eq!(acks.len(), batch.body.changes.len());
    for ack in acks {
        assert!(ack.success, "{ack:?}");
        let id = ack.id.clone().expect("ack id");
        l.acked.insert(id.clone(), batch.items[&id].clone());
    }
}

fn batch(dev: &str, round: usize, b: usize) -> Batch {
    let mut changes = vec![];
    let mut items = BTreeMap::new();
    for k in 0..5 {
        let id = new_id();
        let title = format!("r{round} {dev} b{b} k{k}");
        changes.push(typed_change(
            &format!("{dev}-r{round}-b{b}-k{k}"),
            &id,
            EntityType::Item,
            OpKind::Create,
            json!({"title": title}),
            &at(b as i64),
            dev,
        ));
        items.insert(id, title);
    }
    let body = SyncBody {
        device_id: dev.into(),
        changes,
        limit: Some(1),
        ..SyncBody::default()
    };
    Batch { body, items }
}

/// A device pushing new batches until the server dies under it.
async fn device(
    client: Client,
    n: usize,
    ledger: Arc<Mutex<Ledger>>,
    round: usize,
    kill: Arc<Kill>,
) {
    let dev = format!("dev-{n}");
    for b in 0..10_000 {
        let batch = batch(&dev, round, b);
        let sent = Instant::now();
        match client.sync(&batch.body).await {
            Ok(r) => record_acks(&ledger, &batch, &r.acknowledged),
            Err(e) => {
                let gone = kill.gone(&dev, &e).await;
                let mut l = ledger.lock().unwrap();
                if e.is_connect() || sent > gone {
                    l.refused.push(batch);
                } else {
                    l.interrupted.push(batch);
                }
                return;
            }
        }
    }
    panic!("{dev}: 10,000 batches and the server never died");
}

fn present(batch: &Batch, items: &BTreeMap<String, serde_json::Value>) -> usize {
    batch
        .items
        .keys()
        .filter(|id| items.contains_key(*id))
        .count()
}

async fn acknowledged_operations_survive_sigkill(db: Db) {
    let tdb = TestDb::new(db).await;
    let dir = tempfile::tempdir().unwrap();
    let (mut proc, mut base) = serve(&tdb, dir.path());
    let token = Client::new(&base)
        .unwrap()
        .register("crash@example.com", PASSWORD, "C")
        .await
        .unwrap()
        .token;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    for round in 0..CRASHES {
        let kill = Arc::new(Kill::default());
        let tasks: Vec<_> = (0..DEVICES)
            .map(|n| {
                // A client (connection pool) per device, as on real devices.
                let client = Client::new(&base).unwrap().with_token(&token);
                tokio::spawn(device(client, n, ledger.clone(), round, kill.clone()))
            })
            .collect();
        // A random moment, so kills land in every phase of a request.
        tokio::time::sleep(Duration::from_millis(150 + rng.below(400) as u64)).await;
        kill.begun.set(()).unwrap();
        proc.kill9();
        kill.dead.set(Instant::now()).unwrap();
        for t in tasks {
            t.await.unwrap();
        }
        (proc, base) = serve(&tdb, dir.path());

        let client = Client::new(&base).unwrap().with_token(&token);
        let items = pull_everything(&client, "checker", None, Some(5000), "after a kill")
            .await
            .by_id;
        let l = ledger.lock().unwrap();
        // No request is half-applied: each batch whose answer was lost is
        // entirely present or entirely absent.
        for batch in &l.interrupted {
            let n = present(batch, &items);
            assert!(
                n == 0 || n == batch.items.len(),
                "half-applied batch: {n}/{} (round {round})",
                batch.items.len()
            );
        }
        for batch in &l.refused {
            assert_eq!(present(batch, &items), 0, "a refused request was applied");
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
    // What was in flight may have been applied (its retry is then a replay
    // of every op) or not (then it applies now), never in part.
    let (interrupted, refused) = {
        let mut l = ledger.lock().unwrap();
        (
            std::mem::take(&mut l.interrupted),
            std::mem::take(&mut l.refused),
        )
    };
    assert!(
        !interrupted.is_empty(),
        "{CRASHES} kills, and none landed while a request was in flight ({} refused): \
         the test did not exercise an interrupted request",
        refused.len()
    );
    let client = Client::new(&base).unwrap().with_token(&token);
    let before = pull_everything(&client, "checker", None, Some(5000), "before retries")
        .await
        .by_id;
    let mut applied_before_kill = 0;
    for (batch, was_sent) in interrupted
        .iter()
        .map(|b| (b, true))
        .chain(refused.iter().map(|b| (b, false)))
    {
        let applied = present(batch, &before) == batch.items.len();
        applied_before_kill += usize::from(applied);
        let r = client.sync(&batch.body).await.expect("retry");
        for ack in &r.acknowledged {
            assert_eq!(
                ack.duplicate, applied,
                "a retry is a replay exactly when the lost request had been applied \
                 (in flight at the kill: {was_sent}): {ack:?}"
            );
        }
        record_acks(&ledger, batch, &r.acknowledged);
    }
    let items = pull_everything(&client, "checker", None, Some(5000), "at the end")
        .await
        .by_id;
    let l = ledger.lock().unwrap();
    eprintln!(
        "{db:?}: {} acknowledged creates; {CRASHES} kills interrupted {} requests in flight \
         ({applied_before_kill} of them committed before the kill), {} refused",
        l.acked.len(),
        interrupted.len(),
        refused.len()
    );
    let expected: BTreeSet<&String> = l.acked.keys().collect();
    let got: BTreeSet<&String> = items.keys().collect();
    assert_eq!(
        got, expected,
        "exactly the acknowledged items, no more, no fewer"
    );
    for (id, title) in &l.acked {
        assert_eq!(items[id]["title"], json!(title), "{id}");
    }
    assert!(
        l.acked.len() >= DEVICES * 5,
        "traffic was too small to mean anything"
    );
    drop(l);
    proc.terminate();
}
