//! The randomized multi-device simulation, with several users sharing a
//! space: an owner and an editor (two devices each) and a viewer write,
//! sync, lose answers and retry in a seeded random order; at the end every
//! device holds exactly the server's state of the space, and the viewer's
//! writes were each refused.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use tidesync_client::protocol::Role;
use tidesync_testkit::*;

struct Device {
    name: String,
    token: String,
    cursor: Value,
    /// Records as this device holds them.
    local: BTreeMap<String, Value>,
    /// Operations not yet acknowledged, in order.
    outbox: Vec<Value>,
    writes: bool,
}

struct Sim {
    rng: Rng,
    app_base: String,
    http: reqwest::Client,
    devices: Vec<Device>,
    space: String,
    categories: Vec<String>,
    /// Every item id any device created.
    items: Vec<String>,
    ops: usize,
    lost: usize,
    forbidden: usize,
}

impl Sim {
    async fn post(&self, d: usize, body: &Value) -> Value {
        let res = self
            .http
            .post(format!("{}/api/sync", self.app_base))
            .bearer_auth(&self.devices[d].token)
            .json(body)
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 200);
        res.json::<Value>().await.expect("json")["data"].clone()
    }

    /// One round for device `d`: its outbox (if any) with its cursor, then
    /// pulls from that same cursor to the end. The pull brings the device's
    /// own writes too (a push leaves out what it wrote exactly as sent), so
    /// its copy can be compared with the server's, field by field.
    async fn sync(&mut self, d: usize, may_lose: bool) {
        let cursor = self.devices[d].cursor.clone();
        if !self.devices[d].outbox.is_empty() {
            let changes: Vec<Value> = self.devices[d].outbox.iter().take(50).cloned().collect();
            let sent = changes.len();
            let body = json!({"deviceId": self.devices[d].name, "lastSyncTimestamp": cursor,
                              "changes": changes, "limit": 1});
            let data = self.post(d, &body).await;
            if may_lose && self.rng.chance(20) {
                // The answer is lost: the device keeps its outbox and cursor.
                self.lost += 1;
                return;
            }
            for ack in data["acknowledged"].as_array().unwrap() {
                let code = &ack["error"]["code"];
                if *code == json!("forbidden") {
                    assert!(
                        !self.devices[d].writes,
                        "an editor's write was refused: {ack}"
                    );
                    self.forbidden += 1;
                } else {
                    assert!(
                        ack["success"] == json!(true) || *code == json!("not_found"),
                        "{ack}"
                    );
                }
            }
            self.devices[d].outbox.drain(..sent);
        }
        let mut cursor = cursor;
        for _ in 0..1000 {
            let limit = self.rng.between(1, 40);
            let body = json!({"deviceId": self.devices[d].name, "lastSyncTimestamp": cursor, "limit": limit});
            let data = self.post(d, &body).await;
            let dev = &mut self.devices[d];
            for kind in ["spaces", "categories", "items"] {
                for r in data["serverUpdates"][kind].as_array().unwrap() {
                    dev.local
                        .insert(r["id"].as_str().unwrap().to_owned(), r.clone());
                }
            }
            cursor = data["syncTimestamp"].clone();
            if data["hasMore"] == json!(false) {
                dev.cursor = cursor;
                return;
            }
        }
        panic!("no end of pages");
    }

    fn write(&mut self, d: usize) {
        let n = self.ops;
        self.ops += 1;
        let dev_name = self.devices[d].name.clone();
        let op = format!("{dev_name}-{n}");
        let ts = at(self.rng.between(0, 500));
        let c = if self.items.is_empty() || self.rng.chance(30) {
            let id = self.rng.uuid();
            self.items.push(id.clone());
            let cat = self.rng.pick(&self.categories).clone();
            change(
                &op,
                &id,
                "item",
                "create",
                json!({"title": format!("t{n}"), "spaceId": self.space, "categoryId": cat}),
                &ts,
                &dev_name,
            )
        } else {
            let id = self.rng.pick(&self.items).clone();
            if self.rng.chance(10) {
                change(&op, &id, "item", "delete", Value::Null, &ts, &dev_name)
            } else {
                let mut data = Map::new();
                match self.rng.below(3) {
                    0 => data.insert("title".into(), json!(format!("t{n}"))),
                    1 => data.insert("notes".into(), json!(format!("n{n}"))),
                    _ => data.insert("isCompleted".into(), json!(self.rng.chance(50))),
                };
                change(
                    &op,
                    &id,
                    "item",
                    "update",
                    Value::Object(data),
                    &ts,
                    &dev_name,
                )
            }
        };
        self.devices[d].outbox.push(c);
    }
}

async fn shared_spaces_converge_under_random_delivery(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let carol = app.user("carol@example.com").await;
    let (space, cats) = (new_id(), vec![new_id(), new_id()]);
    app.sync(
        alice.token().unwrap(),
        "seed",
        Value::Null,
        vec![
            change(
                "s",
                &space,
                "space",
                "create",
                json!({"name": "Ours"}),
                &at(0),
                "seed",
            ),
            change(
                "c0",
                &cats[0],
                "category",
                "create",
                json!({"name": "A", "spaceId": space}),
                &at(0),
                "seed",
            ),
            change(
                "c1",
                &cats[1],
                "category",
                "create",
                json!({"name": "B", "spaceId": space}),
                &at(0),
                "seed",
            ),
        ],
    )
    .await;
    let sid = space.parse().unwrap();
    share(&alice, &bob, sid, Role::Editor).await.unwrap();
    share(&alice, &carol, sid, Role::Viewer).await.unwrap();
    let device = |name: &str, token: &str, writes: bool| Device {
        name: name.into(),
        token: token.into(),
        cursor: Value::Null,
        local: BTreeMap::new(),
        outbox: vec![],
        writes,
    };
    let mut sim = Sim {
        rng: Rng::new(0x5eed_5a4e),
        app_base: app.base.clone(),
        http: reqwest::Client::new(),
        devices: vec![
            device("alice-1", alice.token().unwrap(), true),
            device("alice-2", alice.token().unwrap(), true),
            device("bob-1", bob.token().unwrap(), true),
            device("bob-2", bob.token().unwrap(), true),
            device("carol-1", carol.token().unwrap(), false),
        ],
        space,
        categories: cats,
        items: vec![],
        ops: 0,
        lost: 0,
        forbidden: 0,
    };
    for _ in 0..400 {
        let d = sim.rng.below(sim.devices.len());
        if sim.rng.chance(55) {
            sim.write(d);
        } else {
            sim.sync(d, true).await;
        }
    }
    // Everyone sends what is left and pulls to the end, answers no longer lost.
    for _ in 0..2 {
        for d in 0..sim.devices.len() {
            while !sim.devices[d].outbox.is_empty() {
                sim.sync(d, false).await;
            }
        }
    }
    for d in 0..sim.devices.len() {
        sim.sync(d, false).await;
    }
    // The server's live state (a from-scratch pull has no tombstones).
    let truth = pull_everything(&alice, "truth", None, None, "the server's state").await;
    let server = truth.live();
    for dev in &sim.devices {
        let mine: BTreeMap<&String, &Value> = dev
            .local
            .iter()
            .filter(|(_, r)| r["deletedAt"].is_null())
            .collect();
        let differ: Vec<(&&String, Option<&&Value>, Option<&&Value>)> = server
            .keys()
            .chain(mine.keys())
            .map(|k| (k, mine.get(k), server.get(k)))
            .filter(|(_, a, b)| a != b)
            .collect();
        assert!(
            differ.is_empty(),
            "device {}: (id, device, server) {differ:#?}",
            dev.name
        );
    }
    assert!(sim.forbidden > 0, "the viewer tried to write");
    assert!(
        sim.lost > 0 && sim.ops > 100,
        "lost {}, ops {}",
        sim.lost,
        sim.ops
    );
    eprintln!(
        "sharing_sim {db:?}: {} ops, {} lost answers, {} forbidden, {} records",
        sim.ops,
        sim.lost,
        sim.forbidden,
        server.len()
    );
    app.stop().await;
}

backend_tests!(shared_spaces_converge_under_random_delivery);
