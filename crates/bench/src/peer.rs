//! The same scenarios against pouchdb-server, through the CouchDB
//! replication protocol: `_bulk_docs` to push, `_changes?since=` to pull.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};

use crate::stats::Latencies;
use crate::{secs, wants, Args, Figure, Scenario};

const TARGET: &str = "pouchdb-server";

struct Peer {
    base: String,
    child: Child,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl Drop for Peer {
    fn drop(&mut self) {
        // pouchdb.sh `exec`s node, so the child is the server itself. Never a
        // process-group kill through kill(1) here: `kill -TERM -PID`, run as
        // root, was taken for something far wider and killed unrelated
        // processes (PostgreSQL included).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Peer {
    async fn start() -> Result<Peer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir = tempfile::Builder::new()
            .prefix("tidesync-bench-pouchdb-")
            .tempdir()?;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench/peers/pouchdb.sh");
        let child = Command::new("bash")
            .args([script, &port.to_string(), &dir.path().display().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting bench/peers/pouchdb.sh")?;
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .build()?;
        let base = format!("http://127.0.0.1:{port}");
        // The first run installs it from npm: allow for that.
        for _ in 0..6000 {
            if let Ok(r) = http.get(&base).send().await {
                if r.status().is_success() {
                    return Ok(Peer {
                        base,
                        child,
                        _dir: dir,
                        http,
                    });
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("pouchdb-server did not start")
    }

    async fn create_db(&self, db: &str) -> Result<()> {
        let r = self.http.put(format!("{}/{db}", self.base)).send().await?;
        ensure!(r.status().is_success(), "create db: {}", r.status());
        Ok(())
    }

    /// `_bulk_docs`; returns the new rev of each doc by id. (pouchdb-server
    /// does not answer in request order, so revs are matched by id.)
    async fn bulk(&self, db: &str, docs: Vec<Value>) -> Result<HashMap<String, String>> {
        let r = self
            .http
            .post(format!("{}/{db}/_bulk_docs", self.base))
            .json(&json!({"docs": docs}))
            .send()
            .await?;
        ensure!(r.status().is_success(), "_bulk_docs: {}", r.status());
        let v: Value = r.json().await?;
        v.as_array()
            .context("bulk answer")?
            .iter()
            .map(|x| {
                let rev = x["rev"]
                    .as_str()
                    .with_context(|| format!("_bulk_docs entry without a rev: {x}"))?;
                Ok((
                    x["id"].as_str().unwrap_or_default().to_owned(),
                    rev.to_owned(),
                ))
            })
            .collect()
    }

    /// `_changes` since `since`; returns (docs, last_seq).
    async fn changes(&self, db: &str, since: &Value, limit: usize) -> Result<(usize, Value)> {
        let since = match since {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let v: Value = self
            .http
            .get(format!(
                "{}/{db}/_changes?since={}&limit={limit}&include_docs=true",
                self.base,
                encode(&since)
            ))
            .send()
            .await?
            .json()
            .await?;
        Ok((
            v["results"].as_array().map_or(0, |a| a.len()),
            v["last_seq"].clone(),
        ))
    }
}

/// Percent-encodes a query value (CouchDB sequences can hold `-` and more).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn doc(id: &str, n: usize) -> Value {
    json!({"_id": id, "type": "item", "title": format!("Watch movie {n}"), "kind": "movie",
           "movieId": format!("{}", 27000 + n), "notes": "with friends", "isCompleted": false, "order": n})
}

fn fig(scenario: &str, value: f64, unit: &'static str, detail: String) -> Figure {
    Figure {
        scenario: scenario.into(),
        target: TARGET.into(),
        value,
        unit,
        detail,
    }
}

pub async fn run_all(args: &Args) -> Result<Vec<Figure>> {
    let mut out = Vec::new();
    let peer = Peer::start().await?;
    if wants(args, Scenario::Push) || wants(args, Scenario::Update) || wants(args, Scenario::Pull) {
        peer.create_db("bench").await?;
        let ids: Vec<String> = (0..args.ops)
            .map(|_| uuid::Uuid::new_v4().to_string())
            .collect();
        let mut revs: HashMap<String, String> = HashMap::with_capacity(ids.len());
        let t = Instant::now();
        for (b, chunk) in ids.chunks(args.batch).enumerate() {
            let docs = chunk
                .iter()
                .enumerate()
                .map(|(k, id)| doc(id, b * args.batch + k))
                .collect();
            revs.extend(peer.bulk("bench", docs).await?);
        }
        let took = t.elapsed();
        out.push(fig(
            "push",
            args.ops as f64 / secs(took),
            "ops/s",
            format!("{} docs, _bulk_docs of {}", args.ops, args.batch),
        ));
        eprintln!("  push: {:.0} ops/s", args.ops as f64 / secs(took));

        // CouchDB replaces whole documents: an update sends the full doc and its rev.
        let t = Instant::now();
        for (b, chunk) in ids.chunks(args.batch).enumerate() {
            let docs = chunk
                .iter()
                .enumerate()
                .map(|(k, id)| {
                    let n = b * args.batch + k;
                    let mut d = doc(id, n);
                    d["_rev"] = json!(revs[id.as_str()]);
                    d["isCompleted"] = json!(true);
                    d
                })
                .collect();
            peer.bulk("bench", docs).await?;
        }
        let took = t.elapsed();
        out.push(fig(
            "update",
            args.ops as f64 / secs(took),
            "ops/s",
            format!("{} updates (whole docs with _rev)", args.ops),
        ));
        eprintln!("  update: {:.0} ops/s", args.ops as f64 / secs(took));

        let t = Instant::now();
        let (mut since, mut got) = (json!(0), 0usize);
        for _ in 0..100_000 {
            let (n, last) = peer.changes("bench", &since, 1000).await?;
            got += n;
            since = last;
            if n < 1000 {
                break;
            }
        }
        let took = t.elapsed();
        ensure!(got == args.ops, "pulled {got}");
        out.push(fig(
            "pull",
            got as f64 / secs(took),
            "records/s",
            "_changes from 0, include_docs, pages of 1000".into(),
        ));
        eprintln!("  pull: {:.0} records/s", got as f64 / secs(took));
    }
    if wants(args, Scenario::Steady) {
        let peer = Arc::new(peer);
        for &devices in &args.devices {
            out.push(steady(args, &peer, devices).await?);
        }
    }
    Ok(out)
}

/// Per user one database (CouchDB's way); a round trip is `_bulk_docs` of
/// one doc, then `_changes` since the device's last sequence.
async fn steady(args: &Args, peer: &Arc<Peer>, devices: usize) -> Result<Figure> {
    let users = devices.div_ceil(4);
    for u in 0..users {
        peer.create_db(&format!("steady_{devices}_{u}")).await?;
    }
    let deadline = Instant::now() + Duration::from_secs(args.steady_secs);
    let mut tasks = Vec::new();
    for d in 0..devices {
        let peer = peer.clone();
        let db = format!("steady_{devices}_{}", d / 4);
        tasks.push(tokio::spawn(async move {
            let mut lat = Latencies::default();
            let (mut errors, mut since) = (0usize, json!(0));
            for n in 0..1_000_000usize {
                if Instant::now() >= deadline {
                    break;
                }
                let t = Instant::now();
                let id = uuid::Uuid::new_v4().to_string();
                let ok = match peer.bulk(&db, vec![doc(&id, n)]).await {
                    Ok(_) => peer
                        .changes(&db, &since, 1000)
                        .await
                        .map(|(_, last)| since = last)
                        .is_ok(),
                    Err(_) => false,
                };
                if ok {
                    lat.0.push(t.elapsed());
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Latencies::default();
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await?;
        all.merge(lat);
        errors += e;
    }
    let rate = all.0.len() as f64 / args.steady_secs as f64;
    let summary = all.summary();
    eprintln!("  steady c={devices}: {rate:.0} round trips/s, {summary}, {errors} errors");
    Ok(fig(
        &format!("steady c={devices}"),
        rate,
        "trips/s",
        format!("{summary}, {errors} errors"),
    ))
}
