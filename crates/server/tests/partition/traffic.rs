//! Devices that push batches of creates in a loop over raw HTTP, and the
//! record of every answer, with the phase of the test it started and
//! ended in.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tidesync_testkit::{at, change, new_id, records_by_id};
use tokio::sync::watch;

/// The test's phases, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Warm,
    /// A's database link delayed and lossy.
    Degraded,
    /// A's database link cut.
    Cut,
    /// A's database link back.
    Restored,
}

/// Records per batch.
const BATCH: usize = 3;

/// One change of a batch: operation id, record id, title.
#[derive(Clone, Debug)]
pub struct Op {
    pub op: String,
    pub id: String,
    pub title: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 200, every ack `success` (how many were `duplicate`).
    Acked { duplicates: usize },
    /// 503 with its code and `Retry-After`.
    Unavailable { code: String },
}

/// One push and its answer.
#[derive(Clone, Debug)]
pub struct Sent {
    pub device: String,
    pub host: usize,
    pub started: Phase,
    pub ended: Phase,
    pub ops: Vec<Op>,
    pub outcome: Outcome,
    /// Since the phase it ended in began (for the report, not asserted).
    pub at: Duration,
    /// How long the answer took (for the report and failure messages).
    pub took: Duration,
}

/// A device of `user` on instance `host` (0 is A, 1 is B): what it has
/// seen, by record id (title), and its cursor.
pub struct Device {
    pub name: String,
    pub user: usize,
    pub host: usize,
    pub base: String,
    pub token: String,
    pub cursor: Option<String>,
    pub view: BTreeMap<String, String>,
    pub http: reqwest::Client,
    next: usize,
}

impl Device {
    pub fn new(name: &str, user: usize, host: usize, base: &str, token: &str) -> Device {
        Device {
            name: name.into(),
            user,
            host,
            base: base.into(),
            token: token.into(),
            cursor: None,
            view: BTreeMap::new(),
            http: reqwest::Client::new(),
            next: 0,
        }
    }

    fn batch(&mut self) -> Vec<Op> {
        (0..BATCH)
            .map(|_| {
                self.next += 1;
                Op {
                    op: format!("{}-{}", self.name, self.next),
                    id: new_id(),
                    title: format!("{}/{}", self.name, self.next),
                }
            })
            .collect()
    }

    /// Pushes `ops`; panics on anything but a 200 whose every ack
    /// succeeded or a 503 with `Retry-After` (then returns the code).
    pub async fn push(&mut self, ops: &[Op], timeout: Duration) -> Outcome {
        let changes: Vec<Value> = ops
            .iter()
            .map(|o| {
                change(
                    &o.op,
                    &o.id,
                    "item",
                    "create",
                    json!({"title": o.title}),
                    &at(1),
                    &self.name,
                )
            })
            .collect();
        let body =
            json!({"deviceId": self.name, "lastSyncTimestamp": self.cursor, "changes": changes});
        let started = Instant::now();
        let res = self
            .http
            .post(format!("{}/api/sync", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .timeout(timeout)
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "{}: no answer within {timeout:?} (after {:?}): {e}",
                    self.name,
                    started.elapsed()
                )
            });
        let status = res.status().as_u16();
        let retry_after = res
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = res.text().await.unwrap_or_default();
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{}: {status} with a non-JSON body: {text}", self.name));
        match status {
            200 => {
                let data = &v["data"];
                let acks = data["acknowledged"].as_array().expect("acknowledged");
                assert_eq!(acks.len(), ops.len(), "{}: {v}", self.name);
                assert!(
                    acks.iter().all(|a| a["success"] == json!(true)),
                    "{}: a change was refused: {v}",
                    self.name
                );
                let duplicates = acks
                    .iter()
                    .filter(|a| a["duplicate"] == json!(true))
                    .count();
                for o in ops {
                    self.view.insert(o.id.clone(), o.title.clone());
                }
                self.absorb(&data["serverUpdates"]);
                self.cursor = data["syncTimestamp"].as_str().map(str::to_owned);
                Outcome::Acked { duplicates }
            }
            503 => {
                let code = v["error"]["code"].as_str().unwrap_or("<none>").to_owned();
                assert!(
                    matches!(code.as_str(), "database_unavailable" | "timeout"),
                    "{}: 503 with code {code}: {v}",
                    self.name
                );
                let secs: u64 = retry_after
                    .as_deref()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| {
                        panic!("{}: 503 without a Retry-After of seconds: {v}", self.name)
                    });
                assert!(secs >= 1, "{}: Retry-After {secs}", self.name);
                Outcome::Unavailable { code }
            }
            other => panic!("{}: answered {other}: {v}", self.name),
        }
    }

    /// Records of a response's `serverUpdates`, into the device's view.
    pub fn absorb(&mut self, updates: &Value) {
        for (id, r) in records_by_id(updates) {
            let title = r["title"].as_str().unwrap_or_default().to_owned();
            self.view.insert(id, title);
        }
    }
}

/// Pushes new batches until a push that started after the link returned
/// is acknowledged; every answer is recorded.
pub async fn drive(
    mut dev: Device,
    phase: watch::Receiver<Phase>,
    since: watch::Receiver<Instant>,
    timeout: Duration,
) -> (Device, Vec<Sent>) {
    let mut sent = vec![];
    loop {
        let ops = dev.batch();
        let started = *phase.borrow();
        let t0 = Instant::now();
        let outcome = dev.push(&ops, timeout).await;
        let took = t0.elapsed();
        let ended = *phase.borrow();
        let done = started == Phase::Restored && matches!(outcome, Outcome::Acked { .. });
        if !matches!(outcome, Outcome::Acked { .. }) {
            // Retry-After is 1: wait as a client should.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        sent.push(Sent {
            device: dev.name.clone(),
            host: dev.host,
            started,
            ended,
            ops,
            outcome,
            at: since.borrow().elapsed(),
            took,
        });
        if done {
            return (dev, sent);
        }
    }
}
