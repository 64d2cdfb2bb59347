//! The scenarios against tidesync's HTTP API.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

use crate::server::{rss_mib, Server, Target};
use crate::stats::Latencies;
use crate::{secs, wants, Args, Figure};

pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
}

impl Client {
    pub fn new(base: &str) -> Client {
        Client {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(1024)
                .build()
                .expect("client"),
        }
    }

    pub async fn register(&self, email: &str) -> Result<String> {
        let v: Value = self
            .http
            .post(format!("{}/api/auth/register", self.base))
            .json(&json!({"email": email, "password": "bench password", "name": "Bench"}))
            .send()
            .await?
            .json()
            .await?;
        Ok(v["data"]["token"].as_str().context("no token")?.to_owned())
    }

    /// One `POST /api/sync`; returns `data` and the request body size.
    pub async fn sync(&self, token: &str, body: &Value) -> Result<(Value, usize, usize)> {
        let bytes = serde_json::to_vec(body)?;
        let sent = bytes.len();
        let res = self
            .http
            .post(format!("{}/api/sync", self.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(bytes)
            .send()
            .await?;
        let status = res.status();
        let text = res.bytes().await?;
        ensure!(
            status.is_success(),
            "sync {status}: {}",
            String::from_utf8_lossy(&text)
        );
        let v: Value = serde_json::from_slice(&text)?;
        Ok((v["data"].clone(), sent, text.len()))
    }
}

pub fn item_create(op: &str, id: &str, n: usize, device: &str) -> Value {
    json!({"operationId": op, "id": id, "entityType": "item", "operation": "create",
           "data": {"title": format!("Watch movie {n}"), "type": "movie", "movieId": format!("{}", 27000 + n),
                    "notes": "with friends", "isCompleted": false, "order": n},
           "timestamp": "2025-01-01T00:00:00.000Z", "deviceId": device})
}

fn fig(scenario: &str, target: &Target, value: f64, unit: &'static str, detail: String) -> Figure {
    Figure {
        scenario: scenario.into(),
        target: target.name().into(),
        value,
        unit,
        detail,
    }
}

/// Pushes `n` new items in batches; returns their ids and the elapsed time.
async fn push_items(
    c: &Client,
    token: &str,
    n: usize,
    batch: usize,
    tag: &str,
) -> Result<(Vec<String>, Duration, usize)> {
    let ids: Vec<String> = (0..n).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let mut sent = 0;
    let t = Instant::now();
    for (b, chunk) in ids.chunks(batch).enumerate() {
        let changes: Vec<Value> = chunk
            .iter()
            .enumerate()
            .map(|(k, id)| item_create(&format!("{tag}-{b}-{k}"), id, b * batch + k, "bench-a"))
            .collect();
        let (d, s, _) = c
            .sync(token, &json!({"deviceId": "bench-a", "lastSyncTimestamp": null, "changes": changes, "limit": 1}))
            .await?;
        ensure!(
            d["acknowledged"]
                .as_array()
                .map(|a| a.iter().all(|x| x["success"] == json!(true)))
                == Some(true),
            "push failed"
        );
        sent += s;
    }
    Ok((ids, t.elapsed(), sent))
}

pub async fn run_all(args: &Args, target: &Target) -> Result<Vec<Figure>> {
    let mut out = Vec::new();
    if wants(args, "push") || wants(args, "update") || wants(args, "pull") {
        let server = Server::start(&args.server_bin, target, None)?;
        let c = Client::new(&server.base);
        let token = c.register("bench@example.com").await?;
        let (ids, took, sent) = push_items(&c, &token, args.ops, args.batch, "p").await?;
        out.push(fig(
            "push",
            target,
            args.ops as f64 / secs(took),
            "ops/s",
            format!(
                "{} creates, batches of {}, {:.0} B/op sent",
                args.ops,
                args.batch,
                sent as f64 / args.ops as f64
            ),
        ));
        eprintln!("  push: {:.0} ops/s", args.ops as f64 / secs(took));

        let t = Instant::now();
        for (b, chunk) in ids.chunks(args.batch).enumerate() {
            let changes: Vec<Value> = chunk.iter().enumerate().map(|(k, id)| json!({
                "operationId": format!("u-{b}-{k}"), "id": id, "entityType": "item", "operation": "update",
                "data": {"isCompleted": true}, "timestamp": "2025-01-02T00:00:00.000Z", "deviceId": "bench-a"})).collect();
            c.sync(&token, &json!({"deviceId": "bench-a", "lastSyncTimestamp": null, "changes": changes, "limit": 1})).await?;
        }
        let took = t.elapsed();
        out.push(fig(
            "update",
            target,
            args.ops as f64 / secs(took),
            "ops/s",
            format!(
                "{} single-field updates, batches of {}",
                args.ops, args.batch
            ),
        ));
        eprintln!("  update: {:.0} ops/s", args.ops as f64 / secs(took));

        let t = Instant::now();
        let (mut cursor, mut got, mut bytes) = (Value::Null, 0usize, 0usize);
        for _ in 0..100_000 {
            let (d, _, r) = c
                .sync(
                    &token,
                    &json!({"deviceId": "bench-b", "lastSyncTimestamp": cursor}),
                )
                .await?;
            got += d["serverUpdates"]["items"]
                .as_array()
                .map_or(0, |a| a.len());
            bytes += r;
            cursor = d["syncTimestamp"].clone();
            if d["hasMore"] != json!(true) {
                break;
            }
        }
        let took = t.elapsed();
        ensure!(got == args.ops, "pulled {got} of {}", args.ops);
        out.push(fig(
            "pull",
            target,
            got as f64 / secs(took),
            "records/s",
            format!(
                "from scratch, default page (1000), {:.0} B/record received",
                bytes as f64 / got as f64
            ),
        ));
        eprintln!("  pull: {:.0} records/s", got as f64 / secs(took));
    }
    if wants(args, "initial") {
        out.extend(initial(args, target).await?);
    }
    if wants(args, "steady") {
        for &c in &args.devices {
            out.push(steady(args, target, c).await?);
        }
    }
    if wants(args, "streams") {
        out.extend(streams(args, target).await?);
    }
    if wants(args, "scale") {
        out.extend(scale(args, target).await?);
    }
    Ok(out)
}

/// Median latency of a small pull: device A pushes one item, device B pulls
/// it from its cursor; 200 times.
async fn small_pull_ms(c: &Client, token: &str) -> Result<f64> {
    let (first, _, _) = c
        .sync(
            token,
            &json!({"deviceId": "probe-b", "lastSyncTimestamp": null, "limit": 1}),
        )
        .await?;
    let mut cursor = first["syncTimestamp"].clone();
    let mut lat = Latencies::default();
    for n in 0..200 {
        let id = uuid::Uuid::new_v4().to_string();
        c.sync(token, &json!({"deviceId": "probe-a", "lastSyncTimestamp": null, "limit": 1,
                              "changes": [item_create(&format!("probe-{n}-{id}"), &id, n, "probe-a")]}))
            .await?;
        let t = Instant::now();
        let (d, _, _) = c
            .sync(
                token,
                &json!({"deviceId": "probe-b", "lastSyncTimestamp": cursor}),
            )
            .await?;
        lat.0.push(t.elapsed());
        ensure!(
            d["serverUpdates"]["items"].as_array().map(|a| a.len()) == Some(1),
            "probe pull"
        );
        cursor = d["syncTimestamp"].clone();
    }
    Ok(lat.quantile_ms(0.5))
}

/// A small pull on a server holding `scale_users` users and `scale_records`
/// records, against the same pull on a nearly empty server: its cost must
/// follow the changes since the cursor, not the data size.
async fn scale(args: &Args, target: &Target) -> Result<Vec<Figure>> {
    let empty = {
        let server = Server::start(&args.server_bin, target, None)?;
        let c = Client::new(&server.base);
        let token = c.register("probe@example.com").await?;
        small_pull_ms(&c, &token).await?
    };
    let server = Server::start(&args.server_bin, target, None)?;
    let c = Arc::new(Client::new(&server.base));
    let t = Instant::now();
    let per_user = args.scale_records / args.scale_users.max(1);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (c, next, users) = (c.clone(), next.clone(), args.scale_users);
        tasks.push(tokio::spawn(async move {
            loop {
                let u = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if u >= users {
                    return Ok::<_, anyhow::Error>(());
                }
                let token = c.register(&format!("scale{u}@example.com")).await?;
                for chunk_start in (0..per_user).step_by(1000) {
                    let n = (per_user - chunk_start).min(1000);
                    let changes: Vec<Value> = (0..n)
                        .map(|k| {
                            let id = uuid::Uuid::new_v4().to_string();
                            item_create(&format!("s{u}-{}", chunk_start + k), &id, k, "loader")
                        })
                        .collect();
                    c.sync(&token, &json!({"deviceId": "loader", "lastSyncTimestamp": null, "limit": 1, "changes": changes}))
                        .await?;
                }
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let load = t.elapsed();
    let token = c.register("probe@example.com").await?;
    let full = small_pull_ms(&c, &token).await?;
    eprintln!(
        "  scale: loaded {} users / {} records in {:.0} s; small pull p50 {full:.2} ms vs {empty:.2} ms empty",
        args.scale_users,
        per_user * args.scale_users,
        secs(load)
    );
    Ok(vec![
        fig(
            "small pull, empty server",
            target,
            empty,
            "ms p50",
            "1 user; push 1, pull it; 200 times".into(),
        ),
        fig(
            "small pull, loaded server",
            target,
            full,
            "ms p50",
            format!(
                "{} users, {} records (loaded in {:.0} s); ratio {:.2}x",
                args.scale_users,
                per_user * args.scale_users,
                secs(load),
                full / empty
            ),
        ),
    ])
}

/// A new device downloads an account of `initial_records` records.
async fn initial(args: &Args, target: &Target) -> Result<Vec<Figure>> {
    let server = Server::start(&args.server_bin, target, None)?;
    let c = Client::new(&server.base);
    let token = c.register("big@example.com").await?;
    push_items(&c, &token, args.initial_records, 1000, "i").await?;
    // Restart, so memory figures belong to the download alone.
    let keep = server.stop_keep();
    let server = Server::start(&args.server_bin, target, Some(keep))?;
    let c = Client::new(&server.base);
    let login: Value = c
        .http
        .post(format!("{}/api/auth/login", c.base))
        .json(&json!({"email": "big@example.com", "password": "bench password"}))
        .send()
        .await?
        .json()
        .await?;
    let token = login["data"]["token"].as_str().context("login")?.to_owned();
    let (idle, _) = rss_mib(server.pid());
    let t = Instant::now();
    let (mut url, mut got) = (format!("{}/api/sync/initial?limit=5000", c.base), 0usize);
    for _ in 0..10_000 {
        let v: Value = c
            .http
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await?
            .json()
            .await?;
        let d = &v["data"];
        got += d["items"].as_array().map_or(0, |a| a.len());
        if d["hasMore"] != json!(true) {
            break;
        }
        url = format!(
            "{}/api/sync/initial?limit=5000&lastSyncTimestamp={}",
            c.base,
            d["syncTimestamp"].as_str().unwrap_or("")
        );
    }
    let took = t.elapsed();
    ensure!(got == args.initial_records, "initial sync got {got}");
    let (_, peak) = rss_mib(server.pid());
    eprintln!(
        "  initial: {:.2} s, idle RSS {idle:.1} MiB, peak {peak:.1} MiB",
        secs(took)
    );
    Ok(vec![
        fig(
            "initial sync",
            target,
            secs(took),
            "s",
            format!("{} records, pages of 5000", args.initial_records),
        ),
        fig(
            "server RSS idle",
            target,
            idle,
            "MiB",
            "after restart, before any sync".into(),
        ),
        fig(
            "server RSS peak (initial)",
            target,
            peak,
            "MiB",
            "peak over restart + initial sync".into(),
        ),
    ])
}

/// `devices` devices, 4 per user, each looping "push one op and pull" in one
/// request, for `steady_secs`.
async fn steady(args: &Args, target: &Target, devices: usize) -> Result<Figure> {
    let server = Server::start(&args.server_bin, target, None)?;
    let c = Arc::new(Client::new(&server.base));
    let users = devices.div_ceil(4);
    let mut tokens = Vec::new();
    for u in 0..users {
        tokens.push(c.register(&format!("steady{u}@example.com")).await?);
    }
    let deadline = Instant::now() + Duration::from_secs(args.steady_secs);
    let mut tasks = Vec::new();
    for d in 0..devices {
        let (c, token) = (c.clone(), tokens[d / 4].clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Latencies::default();
            let (mut errors, mut cursor) = (0usize, Value::Null);
            let device = format!("dev-{d}");
            for n in 0..1_000_000usize {
                if Instant::now() >= deadline {
                    break;
                }
                let id = uuid::Uuid::new_v4().to_string();
                let body = json!({"deviceId": device, "lastSyncTimestamp": cursor,
                                  "changes": [item_create(&format!("{device}-{n}"), &id, n, &device)]});
                let t = Instant::now();
                match c.sync(&token, &body).await {
                    Ok((data, _, _)) => {
                        lat.0.push(t.elapsed());
                        cursor = data["syncTimestamp"].clone();
                    }
                    Err(_) => errors += 1,
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
        target,
        rate,
        "trips/s",
        format!("{summary}, {errors} errors"),
    ))
}

/// An open event stream, read event by event.
struct Events {
    res: reqwest::Response,
    buf: String,
}

impl Events {
    async fn open(c: &Client, base: &str, token: &str, device: &str) -> Result<Events> {
        let res = c
            .http
            .get(format!("{base}/api/sync/stream?deviceId={device}"))
            .bearer_auth(token)
            .send()
            .await?;
        ensure!(res.status().is_success(), "stream: {}", res.status());
        Ok(Events {
            res,
            buf: String::new(),
        })
    }

    async fn next_change(&mut self) -> Result<String> {
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                if let Some(id) = block.lines().find_map(|l| l.strip_prefix("id: ")) {
                    return Ok(id.to_owned());
                }
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.res.chunk())
                .await
                .context("no event within 10 s")??
                .context("stream ended")?;
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

/// Time from sending a push on device A to its poke arriving on device B's
/// stream (held on `stream_base`), 200 times.
async fn poke_latency(
    c: &Client,
    push_base: &str,
    stream_base: &str,
    token: &str,
) -> Result<Latencies> {
    let mut events = Events::open(c, stream_base, token, "probe-b").await?;
    let pusher = Client::new(push_base);
    let mut lat = Latencies::default();
    for n in 0..200 {
        let id = uuid::Uuid::new_v4().to_string();
        let t = Instant::now();
        pusher
            .sync(token, &json!({"deviceId": "probe-a", "lastSyncTimestamp": null, "limit": 1,
                                 "changes": [item_create(&format!("poke-{n}-{id}"), &id, n, "probe-a")]}))
            .await?;
        events.next_change().await?;
        lat.0.push(t.elapsed());
    }
    Ok(lat)
}

/// How many idle streams one instance holds, and their memory; push-to-poke
/// latency on one instance and (PostgreSQL) across two.
async fn streams(args: &Args, target: &Target) -> Result<Vec<Figure>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut out = Vec::new();
    let server = Server::start(&args.server_bin, target, None)?;
    let c = Client::new(&server.base);
    let token = c.register("streams@example.com").await?;
    // Idle streams belong to other users (200 each): each probe push must
    // poke only the probe user's own stream, as in real life.
    let mut idle_tokens = Vec::new();
    for u in 0..args.streams.div_ceil(200) {
        idle_tokens.push(c.register(&format!("idle{u}@example.com")).await?);
    }
    let addr = server.base.trim_start_matches("http://").to_owned();
    let (before, _) = rss_mib(server.pid());
    let mut held = Vec::with_capacity(args.streams);
    for d in 0..args.streams {
        let token = &idle_tokens[d / 200];
        let mut s = tokio::net::TcpStream::connect(&addr).await?;
        let req = format!(
            "GET /api/sync/stream?deviceId=idle-{d} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head).await?;
        ensure!(
            &head == b"HTTP/1.1 200",
            "stream {d}: {}",
            String::from_utf8_lossy(&head)
        );
        held.push(s);
    }
    let (after, _) = rss_mib(server.pid());
    let per_stream_kib = (after - before) * 1024.0 / args.streams as f64;
    eprintln!(
        "  streams: {} idle streams held, {per_stream_kib:.1} KiB each",
        args.streams
    );
    out.push(Figure {
        scenario: "idle streams".into(),
        target: target.name().into(),
        value: per_stream_kib,
        unit: "KiB each",
        detail: format!(
            "{} streams held by one instance; RSS {before:.1} -> {after:.1} MiB",
            args.streams
        ),
    });
    let mut lat = poke_latency(&c, &server.base, &server.base, &token).await?;
    let summary = lat.summary();
    eprintln!("  push-to-poke, one instance (with the idle streams open): {summary}");
    out.push(Figure {
        scenario: "push to poke, 1 instance".into(),
        target: target.name().into(),
        value: lat.quantile_ms(0.5),
        unit: "ms p50",
        detail: format!(
            "push sent -> event received, {} idle streams open; {summary}",
            args.streams
        ),
    });
    drop(held);
    if let Target::Postgres(_) = target {
        let second = server.another(&args.server_bin)?;
        let mut lat = poke_latency(&c, &server.base, &second.base, &token).await?;
        let summary = lat.summary();
        eprintln!("  push-to-poke, across two instances: {summary}");
        out.push(Figure {
            scenario: "push to poke, 2 instances".into(),
            target: target.name().into(),
            value: lat.quantile_ms(0.5),
            unit: "ms p50",
            detail: format!("push on one, stream on the other (LISTEN/NOTIFY); {summary}"),
        });
    }
    Ok(out)
}
