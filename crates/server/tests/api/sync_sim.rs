//! Whole-protocol checks over HTTP.
//!
//! * `randomized_devices_converge`: several offline devices of one user edit
//!   the same items with colliding and backward timestamps, lose responses,
//!   retry and resend, and page through small pulls. In the end every device
//!   must hold exactly the server's state, and the server's state must be the
//!   per-field last-writer-wins merge computed here, independently, from the
//!   operations the server acknowledged.
//!
//! Deterministic in what it sends (a seeded PRNG, seeds printed in every
//! assertion message). Its companion under concurrent writers is
//! `cursor_race.rs`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use reqwest::StatusCode;
use serde_json::{json, Map, Value};
use tidesync_testkit::*;

backend_tests! {
    backend: [randomized_devices_converge],
}

/// Pulls from `cursor` to the end as a device that sends no changes,
/// `limit` per page; the records by id, later pages replacing earlier ones.
async fn pull_to_end(
    app: &TestApp,
    token: &str,
    cursor: Option<&str>,
    limit: usize,
    context: &str,
) -> BTreeMap<String, Value> {
    pull_everything(&app.client(token), "observer", cursor, Some(limit), context)
        .await
        .by_id
}

// ---------------------------------------------------------------------------
// Test 1: randomized devices converge.
// ---------------------------------------------------------------------------

/// Seconds after `at(0)` of an ISO date-time a record carries.
fn secs_of(v: &Value) -> i64 {
    let ms = |s: &str| tidesync_client::protocol::time::parse_iso(s).expect("an ISO date-time");
    v.as_str()
        .map_or(i64::MIN / 2, |s| (ms(s) - ms(&at(0))) / 1000)
}

/// The item fields the simulation writes and compares.
const FIELDS: [&str; 4] = ["title", "notes", "order", "isCompleted"];
/// Seeds `SEED_BASE + 1 ..= SEED_BASE + SEED_COUNT`, each one user with its
/// own devices. Fixed so that failures replay: a run is fully determined by
/// its seed (set TIDESYNC_SIM_TRACE=1 to print every request and response).
const SEED_BASE: u64 = 0x7E5D_0000;
const SEED_COUNT: u64 = 48;
const ROUNDS: usize = 80;
const MAX_SYNC_PAGES: usize = 500;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OpKind {
    Create,
    Update,
    Delete,
}

/// (timestamp in seconds after `at(0)`, deviceId, operationId): the server's
/// merge order, compared the same way (integers, then bytewise strings).
type Version = (i64, String, String);

/// An operation as a device made it, kept for the independent merge model.
struct SentOp {
    item: String,
    kind: OpKind,
    fields: Map<String, Value>,
    version: Version,
}

struct Device {
    id: String,
    /// The device's copy of every record it knows, by id.
    local: BTreeMap<String, Value>,
    /// Changes not yet acknowledged, oldest first.
    queue: Vec<Value>,
    /// `null` or the last `syncTimestamp` received.
    cursor: Value,
    /// How far this device's clock is off (seconds, up to a day either
    /// way); each op adds jitter.
    clock_offset: i64,
    /// The newest timestamp the device has seen (its own writes and the
    /// `updatedAt` of every record it received), in seconds after `at(0)`:
    /// like `@tidesync/client`, it never writes a timestamp behind it (a
    /// hybrid logical clock), so an edit made after receiving another comes
    /// after it whatever the device's clock says.
    newest: i64,
    /// Per item, the last exchange about it that the device received (for
    /// failure messages).
    last_exchange: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct Stats {
    syncs: usize,
    requests: usize,
    dropped: usize,
    resent: usize,
    later_pages: usize,
    conflicts: usize,
    replayed_acks: usize,
    ops: usize,
    /// Operations whose device clock was behind what the device had seen.
    clock_behind: usize,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.syncs += o.syncs;
        self.requests += o.requests;
        self.dropped += o.dropped;
        self.resent += o.resent;
        self.later_pages += o.later_pages;
        self.conflicts += o.conflicts;
        self.replayed_acks += o.replayed_acks;
        self.ops += o.ops;
        self.clock_behind += o.clock_behind;
    }
}

struct Sim<'a> {
    app: &'a TestApp,
    token: String,
    seed: u64,
    rng: Rng,
    /// Shared logical clock (seconds after `at(0)`); ops use it with skew.
    clock: i64,
    devices: Vec<Device>,
    sent: BTreeMap<String, SentOp>,
    /// Per operation id: whether its ack said `success` (first ack seen;
    /// replays are checked against it).
    acked: HashMap<String, bool>,
    failures: Vec<String>,
    stats: Stats,
}

impl Sim<'_> {
    fn live_ids(&self, d: usize) -> Vec<String> {
        self.devices[d]
            .local
            .iter()
            .filter(|(_, r)| !is_deleted(r))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Makes an operation on device `d`: applies it to the local copy at once
    /// (optimistic UI) and queues it.
    fn make_op(&mut self, d: usize, item: String, kind: OpKind, fields: Map<String, Value>) {
        let raw = self.clock + self.devices[d].clock_offset + self.rng.between(-5, 5);
        let ts = raw.max(self.devices[d].newest + 1);
        if ts > raw {
            self.stats.clock_behind += 1;
        }
        self.devices[d].newest = ts;
        let device = self.devices[d].id.clone();
        let op_id = format!("s{:x}-{}-op{:04}", self.seed, device, self.sent.len());
        let operation = match kind {
            OpKind::Create => "create",
            OpKind::Update => "update",
            OpKind::Delete => "delete",
        };
        let ch = change(
            &op_id,
            &item,
            "item",
            operation,
            Value::Object(fields.clone()),
            &at(ts),
            &device,
        );
        let local = &mut self.devices[d].local;
        match kind {
            OpKind::Create => {
                let mut rec = json!({"id": item, "title": null, "notes": null, "order": null,
                                     "isCompleted": null, "deletedAt": null});
                for (k, v) in &fields {
                    rec[k] = v.clone();
                }
                local.insert(item.clone(), rec);
            }
            OpKind::Update => {
                let rec = local.get_mut(&item).expect("updated item is known");
                for (k, v) in &fields {
                    rec[k] = v.clone();
                }
            }
            OpKind::Delete => {
                local.get_mut(&item).expect("deleted item is known")["deletedAt"] = json!(at(ts));
            }
        }
        self.devices[d].queue.push(ch);
        self.stats.ops += 1;
        self.sent.insert(
            op_id.clone(),
            SentOp {
                item,
                kind,
                fields,
                version: (ts, device, op_id),
            },
        );
    }

    /// A non-empty random subset of [`FIELDS`] with fresh values (titles and
    /// notes name the operation; order and isCompleted collide on purpose).
    fn random_fields(&mut self) -> Map<String, Value> {
        let tag = format!("v{}", self.sent.len());
        let mask = 1 + self.rng.below(15);
        let mut m = Map::new();
        for (bit, f) in FIELDS.iter().enumerate() {
            if mask & (1 << bit) == 0 {
                continue;
            }
            let v = match *f {
                "title" => json!(format!("title {tag}")),
                "notes" if self.rng.chance(25) => Value::Null,
                "notes" => json!(format!("notes {tag}")),
                "order" => json!(self.rng.between(0, 9)),
                _ => json!(self.rng.chance(50)),
            };
            m.insert((*f).to_owned(), v);
        }
        m
    }

    async fn step(&mut self) {
        self.clock += 1;
        let d = self.rng.below(self.devices.len());
        let live = self.live_ids(d);
        let roll = self.rng.below(100);
        if roll < 30 {
            self.sync_device(d, true).await;
        } else if roll < 48 || live.is_empty() {
            let id = self.rng.uuid();
            let mut fields = Map::new();
            fields.insert(
                "title".into(),
                json!(format!("created {}", self.sent.len())),
            );
            if self.rng.chance(50) {
                fields.insert("order".into(), json!(self.rng.between(0, 9)));
            }
            self.make_op(d, id, OpKind::Create, fields);
        } else if roll < 90 {
            let id = live[self.rng.below(live.len())].clone();
            let fields = self.random_fields();
            self.make_op(d, id, OpKind::Update, fields);
        } else {
            let id = live[self.rng.below(live.len())].clone();
            self.make_op(d, id, OpKind::Delete, Map::new());
        }
    }

    /// One POST /api/sync; checks the acks line up with the changes sent and
    /// records each operation's outcome.
    async fn post(&mut self, body: &Value) -> Value {
        self.stats.requests += 1;
        let res = self.app.sync_raw(&self.token, body.clone()).await;
        assert_eq!(
            res.status,
            StatusCode::OK,
            "seed {:#x}: {body} -> {}",
            self.seed,
            res.body
        );
        let data = res.body["data"].clone();
        if std::env::var_os("TIDESYNC_SIM_TRACE").is_some() {
            eprintln!("seed {:#x}: {body}\n  -> {data}", self.seed);
        }
        let changes = body["changes"].as_array().expect("changes");
        let acks = data["acknowledged"].as_array().expect("acknowledged");
        assert_eq!(
            acks.len(),
            changes.len(),
            "seed {:#x}: one ack per change: {body} -> {data}",
            self.seed
        );
        for (c, a) in changes.iter().zip(acks) {
            let op = c["operationId"].as_str().expect("operationId");
            assert_eq!(
                (&a["operationId"], &a["id"]),
                (&c["operationId"], &c["id"]),
                "seed {:#x}: acks in the order of the changes",
                self.seed
            );
            let success = a["success"] == json!(true);
            match self.acked.get(op) {
                Some(&first) => {
                    self.stats.replayed_acks += 1;
                    assert_eq!(
                        a["duplicate"],
                        json!(true),
                        "seed {:#x}: {op} was acknowledged before; a replay must say duplicate: {a}",
                        self.seed
                    );
                    assert_eq!(
                        success, first,
                        "seed {:#x}: the replayed ack of {op} changed outcome: {a}",
                        self.seed
                    );
                }
                None => {
                    self.acked.insert(op.to_owned(), success);
                    if !success {
                        self.failures.push(format!("{c} -> {a}"));
                    }
                    if a["conflict"] == json!(true) {
                        self.stats.conflicts += 1;
                    }
                }
            }
        }
        data
    }

    /// Applies a response the device received: records replace local copies,
    /// settled operations leave the queue, the cursor moves.
    fn receive(&mut self, d: usize, data: &Value) {
        let dev = &mut self.devices[d];
        let received = records_by_id(&data["serverUpdates"]);
        for r in received.values() {
            dev.newest = dev.newest.max(secs_of(&r["updatedAt"]));
        }
        dev.local.extend(received);
        let settled: HashSet<&str> = data["acknowledged"]
            .as_array()
            .expect("acknowledged")
            .iter()
            .filter(|a| a["success"] == json!(true) || !a["error"].is_null())
            .filter_map(|a| a["operationId"].as_str())
            .collect();
        dev.queue
            .retain(|c| !settled.contains(c["operationId"].as_str().unwrap_or_default()));
        dev.cursor = data["syncTimestamp"].clone();
    }

    /// Remembers, per item the request wrote, what the device sent and got.
    fn note_exchange(&mut self, d: usize, body: &Value, data: &Value) {
        let returned = records_by_id(&data["serverUpdates"]);
        let acks = data["acknowledged"].as_array().expect("acknowledged");
        let changes = body["changes"].as_array().expect("changes");
        for (c, a) in changes.iter().zip(acks) {
            let id = c["id"].as_str().expect("id").to_owned();
            let note = format!(
                "request with lastSyncTimestamp {} answered {a} and {}",
                body["lastSyncTimestamp"],
                match returned.get(&id) {
                    Some(r) => format!("returned the record {r}"),
                    None => "did not return the record".to_owned(),
                }
            );
            self.devices[d].last_exchange.insert(id, note);
        }
    }

    /// Sends the device's whole queue with its cursor and follows `hasMore`.
    /// With `faults`, a request may be sent twice (the first answer lost) and
    /// an answer may be dropped (applied by the server, never seen by the
    /// device: queue and cursor stay, so the next sync retries). Answers to a
    /// first sync (no cursor yet) are lost more often: a device that retries
    /// its very first batch is where a from-scratch pull meets replayed
    /// operations.
    async fn sync_device(&mut self, d: usize, faults: bool) {
        self.stats.syncs += 1;
        let limit = [2, 3, 5, 1000][self.rng.below(4)];
        for page in 0..MAX_SYNC_PAGES {
            let dev = &self.devices[d];
            let body = json!({"deviceId": dev.id, "lastSyncTimestamp": dev.cursor,
                              "changes": dev.queue, "limit": limit});
            let mut data = self.post(&body).await;
            if faults && self.rng.chance(20) {
                self.stats.resent += 1;
                data = self.post(&body).await;
            }
            let drop_percent = if self.devices[d].cursor.is_null() {
                80
            } else {
                25
            };
            if faults && self.rng.chance(drop_percent) {
                self.stats.dropped += 1;
                return;
            }
            if page > 0 {
                self.stats.later_pages += 1;
            }
            self.note_exchange(d, &body, &data);
            self.receive(d, &data);
            // A missing hasMore must fail, not end the sync as "no more".
            let more = data["hasMore"]
                .as_bool()
                .unwrap_or_else(|| panic!("seed {:#x}: no boolean hasMore in {data}", self.seed));
            if !more {
                return;
            }
        }
        panic!(
            "seed {:#x}: {} still hasMore after {MAX_SYNC_PAGES} pages",
            self.seed, self.devices[d].id
        );
    }
}

/// The expected final state of one item from the acknowledged operations.
#[derive(Default)]
struct Expected {
    created: Option<Version>,
    fields: BTreeMap<String, (Version, Value)>,
    deleted: Option<Version>,
}

impl Expected {
    fn last(&self) -> Version {
        let mut last = self.created.clone().expect("every item was created");
        for v in self
            .fields
            .values()
            .map(|(v, _)| v)
            .chain(self.deleted.iter())
        {
            if *v > last {
                last = v.clone();
            }
        }
        last
    }
}

/// Per item, per field: the value of the applied op with the greatest
/// (timestamp, deviceId, operationId); deleted iff a delete applied, at the
/// earliest delete. A delete erases every field the simulation writes (none
/// of them is a reference), with its version: a tombstone keeps no content.
fn expected_state(
    sent: &BTreeMap<String, SentOp>,
    acked: &HashMap<String, bool>,
) -> BTreeMap<String, Expected> {
    let mut out: BTreeMap<String, Expected> = BTreeMap::new();
    for (op_id, op) in sent {
        if acked.get(op_id) != Some(&true) {
            continue;
        }
        let e = out.entry(op.item.clone()).or_default();
        match op.kind {
            OpKind::Delete => {
                if e.deleted.as_ref().is_none_or(|d| op.version < *d) {
                    e.deleted = Some(op.version.clone());
                }
            }
            OpKind::Create | OpKind::Update => {
                if op.kind == OpKind::Create && e.created.as_ref().is_none_or(|c| op.version < *c) {
                    e.created = Some(op.version.clone());
                }
                for (k, v) in &op.fields {
                    if e.fields.get(k).is_none_or(|(cur, _)| op.version > *cur) {
                        e.fields.insert(k.clone(), (op.version.clone(), v.clone()));
                    }
                }
            }
        }
    }
    for e in out.values_mut() {
        if e.deleted.is_some() {
            e.fields.clear();
        }
    }
    out
}

/// Runs one seed; returns its counters and a description of what diverged.
async fn run_simulation(app: &TestApp, seed: u64) -> (Stats, Option<String>) {
    let token = app.register(&format!("sim-{seed:x}@example.com")).await;
    let mut rng = Rng::new(seed);
    let device_count = 3 + rng.below(2);
    let devices = (0..device_count)
        .map(|i| Device {
            id: format!("dev-{}", (b'a' + i as u8) as char),
            local: BTreeMap::new(),
            queue: Vec::new(),
            cursor: Value::Null,
            // Half the devices are off by up to a day, the others by 30 s.
            clock_offset: if rng.below(2) == 0 {
                rng.between(-86_400, 86_400)
            } else {
                rng.between(-30, 30)
            },
            newest: i64::MIN / 2,
            last_exchange: BTreeMap::new(),
        })
        .collect();
    let mut sim = Sim {
        app,
        token,
        seed,
        rng,
        clock: 100,
        devices,
        sent: BTreeMap::new(),
        acked: HashMap::new(),
        failures: Vec::new(),
        stats: Stats::default(),
    };
    for _ in 0..ROUNDS {
        sim.step().await;
    }

    // Settle: every device pushes until its queue is empty (no more faults),
    // then, once nobody writes any more, every device pulls to the end.
    for d in 0..device_count {
        for _ in 0..5 {
            if sim.devices[d].queue.is_empty() {
                break;
            }
            sim.sync_device(d, false).await;
        }
        assert!(
            sim.devices[d].queue.is_empty(),
            "seed {seed:#x}: {} kept unacknowledged changes: {:?}",
            sim.devices[d].id,
            sim.devices[d].queue
        );
    }
    for d in 0..device_count {
        sim.sync_device(d, false).await;
    }

    let seed_ctx = format!("seed {seed:#x}");
    assert!(
        sim.failures.is_empty(),
        "{seed_ctx}: every operation is valid, yet some failed:\n{}",
        sim.failures.join("\n")
    );
    let unacked: Vec<&String> = sim
        .sent
        .keys()
        .filter(|op| !sim.acked.contains_key(*op))
        .collect();
    assert!(
        unacked.is_empty(),
        "{seed_ctx}: never acknowledged: {unacked:?}"
    );

    // The server's state: a from-scratch pull (live records; later pages may
    // carry tombstones) and a pull from version 0 (tombstones too).
    let scratch = pull_to_end(app, &sim.token, None, 4, &seed_ctx).await;
    let everything = pull_to_end(app, &sim.token, Some("v1.u.0"), 4, &seed_ctx).await;
    let live: BTreeMap<&String, &Value> =
        everything.iter().filter(|(_, r)| !is_deleted(r)).collect();
    let scratch_live: BTreeMap<&String, &Value> =
        scratch.iter().filter(|(_, r)| !is_deleted(r)).collect();
    assert_eq!(
        scratch_live, live,
        "{seed_ctx}: a from-scratch pull and a pull from version 0 disagree on the live records"
    );

    let mut problems = Vec::new();

    // (b) The server's state is the merge of what it acknowledged.
    let expected = expected_state(&sim.sent, &sim.acked);
    let server_ids: BTreeSet<&String> = everything.keys().collect();
    let expected_ids: BTreeSet<&String> = expected.keys().collect();
    if server_ids != expected_ids {
        problems.push(format!(
            "server ids {server_ids:?} != ids created {expected_ids:?}"
        ));
    }
    for (id, e) in &expected {
        let Some(rec) = everything.get(id) else {
            continue;
        };
        let last = e.last();
        let created = e.created.as_ref().expect("created");
        let mut want = json!({
            "deletedAt": e.deleted.as_ref().map(|v| at(v.0)),
            "createdAt": at(created.0),
            "updatedAt": at(last.0),
            "deviceId": last.1,
        });
        for f in FIELDS {
            want[f] = e
                .fields
                .get(f)
                .map(|(_, v)| v.clone())
                .unwrap_or(Value::Null);
        }
        for (k, v) in want.as_object().expect("object") {
            if rec[k] != *v {
                problems.push(format!(
                    "item {id}: server {k} = {}, the merge of the acknowledged ops gives {v} (record {rec})",
                    rec[k]
                ));
            }
        }
    }

    // (a) Every device holds the server's state.
    for dev in &sim.devices {
        let local_live: BTreeSet<&String> = dev
            .local
            .iter()
            .filter(|(_, r)| !is_deleted(r))
            .map(|(id, _)| id)
            .collect();
        let server_live: BTreeSet<&String> = live.keys().copied().collect();
        if local_live != server_live {
            problems.push(format!(
                "{}: live ids differ: only on the device {:?}, only on the server {:?}",
                dev.id,
                local_live.difference(&server_live).collect::<Vec<_>>(),
                server_live.difference(&local_live).collect::<Vec<_>>()
            ));
        }
        for (id, rec) in &dev.local {
            let Some(srv) = everything.get(id) else {
                problems.push(format!("{}: holds {id}, unknown to the server", dev.id));
                continue;
            };
            let keys: &[&str] = if is_deleted(rec) {
                &["deletedAt"]
            } else {
                &["title", "notes", "order", "isCompleted", "deletedAt"]
            };
            for k in keys {
                if rec[*k] != srv[*k] {
                    problems.push(format!(
                        "{}: item {id}: {k} is {} on the device, {} on the server; \
                         its last sync about it: {}",
                        dev.id,
                        rec[*k],
                        srv[*k],
                        dev.last_exchange.get(id).map_or("none", String::as_str)
                    ));
                }
            }
        }
    }
    let report = (!problems.is_empty()).then(|| {
        format!(
            "{seed_ctx} ({device_count} devices, {ROUNDS} rounds, {:?}):\n  {}",
            sim.stats,
            problems.join("\n  ")
        )
    });
    (sim.stats, report)
}

/// Random offline devices of one user, faulty network, skewed clocks (half
/// the devices off by up to a day either way, the others by up to 30 s, plus
/// 5 s of jitter per operation, so writes collide and arrive out of order;
/// each device's timestamps never go behind what it has seen, as the SDK's):
/// all devices converge on the server's state, and that state is the
/// per-field last-writer-wins merge (deletes win) of the acknowledged
/// operations — so an edit a device made after receiving another wins over
/// it, even from a clock a day behind. Every seed runs; the failure lists
/// each seed that diverged, with the last exchange the device had about each
/// differing item.
async fn randomized_devices_converge(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let mut total = Stats::default();
    let mut diverged = Vec::new();
    for seed in (1..=SEED_COUNT).map(|i| SEED_BASE + i) {
        let (stats, report) = run_simulation(&app, seed).await;
        total.add(&stats);
        diverged.extend(report);
    }
    assert!(
        diverged.is_empty(),
        "{db:?}: {} of {SEED_COUNT} seeds diverged:\n{}",
        diverged.len(),
        diverged.join("\n")
    );
    // The runs are deterministic; these guard against the simulation quietly
    // no longer exercising what it is for.
    let exercised = [
        ("dropped responses", total.dropped),
        ("resent requests", total.resent),
        ("replayed acks", total.replayed_acks),
        ("conflicts", total.conflicts),
        ("later pages", total.later_pages),
        (
            "device clocks behind what they had seen",
            total.clock_behind,
        ),
    ];
    for (what, n) in exercised {
        assert!(n > 0, "{SEED_COUNT} seeds: no {what} in {total:?}");
    }
    app.stop().await;
}
