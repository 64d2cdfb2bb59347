//! The batch scenarios against tidesync's HTTP API, through the typed
//! client: push, update, pull, initial sync, scale.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use serde_json::json;
use tidesync_client::{
    new_record_id, ChangeBody, Client, EntityType, OpKind, Pager, RecordId, SyncBody,
};

use crate::server::{rss_mib, Server, Target};
use crate::stats::Latencies;
use crate::{bytes, export, heavy, live, secs, sharing, wants, Args, Figure, Scenario};

pub const PASSWORD: &str = "bench password";

/// Shares `space` with `member` (whose account is `email`) on a server with
/// invitations (the owner invites, the member accepts) and on one without
/// (the old immediate add), so one bench measures builds from before and
/// after them side by side.
pub async fn share(
    owner: &Client,
    member: &Client,
    space: RecordId,
    email: &str,
    role: tidesync_protocol::scope::Role,
) -> Result<()> {
    let res = owner
        .http()
        .post(format!("{}/api/spaces/{space}/members", owner.base_url()))
        .bearer_auth(owner.token().context("token")?)
        .json(&json!({"email": email, "role": role}))
        .send()
        .await?;
    match res.status().as_u16() {
        201 => Ok(()),
        202 => {
            let v: serde_json::Value = res.json().await?;
            let id = v["data"]["invitation"]["id"]
                .as_str()
                .context("an invitation id")?
                .parse()
                .map_err(|_| anyhow::anyhow!("a bad invitation id"))?;
            member.accept_invitation(id).await?;
            Ok(())
        }
        s => anyhow::bail!("sharing answered {s}: {}", res.text().await?),
    }
}
/// A bound on every paging loop (far above any scenario's page count).
const MAX_PAGES: usize = 100_000;

/// A client for `base` with room for many pooled connections.
pub fn client(base: &str) -> Result<Client> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()?;
    Ok(Client::with_http(http, base)?)
}

/// Registers `email`; returns its signed-in client.
pub async fn register(c: &Client, email: &str) -> Result<Client> {
    let auth = c.register(email, PASSWORD, "Bench").await?;
    Ok(c.with_token(&auth.token))
}

pub fn item_create(op: &str, id: RecordId, n: usize, device: &str) -> ChangeBody {
    let data = json!({"title": format!("Watch movie {n}"), "type": "movie", "movieId": format!("{}", 27000 + n),
                      "notes": "with friends", "isCompleted": false, "order": n});
    ChangeBody::new(
        op,
        EntityType::Item,
        OpKind::Create,
        id,
        data.as_object().cloned(),
    )
    .at("2025-01-01T00:00:00.000Z")
    .by(device)
}

/// A push of `changes` by `device` that asks for one record back at most.
pub fn push_body(device: &str, changes: Vec<ChangeBody>) -> SyncBody {
    SyncBody {
        device_id: device.into(),
        changes,
        limit: Some(1),
        ..SyncBody::default()
    }
}

pub fn fig(
    scenario: &str,
    target: &Target,
    value: f64,
    unit: &'static str,
    detail: String,
) -> Figure {
    Figure {
        scenario: scenario.into(),
        target: target.name().into(),
        value,
        unit,
        detail,
    }
}

/// Pushes `n` new items in batches; returns their ids, the elapsed time and
/// the request bytes sent.
async fn push_items(
    c: &Client,
    n: usize,
    batch: usize,
    tag: &str,
) -> Result<(Vec<RecordId>, Duration, usize)> {
    let ids: Vec<RecordId> = (0..n).map(|_| new_record_id()).collect();
    let mut sent = 0;
    let t = Instant::now();
    for (b, chunk) in ids.chunks(batch).enumerate() {
        let changes = chunk
            .iter()
            .enumerate()
            .map(|(k, id)| item_create(&format!("{tag}-{b}-{k}"), *id, b * batch + k, "bench-a"))
            .collect();
        let (d, info) = c.sync_with_info(&push_body("bench-a", changes)).await?;
        ensure!(d.acknowledged.iter().all(|a| a.success), "push failed");
        sent += info.request_bytes;
    }
    Ok((ids, t.elapsed(), sent))
}

/// Every page of `pager`; returns the items and the body bytes received.
/// Records stay raw JSON text: the bench client builds no value trees.
pub async fn count_items(mut pager: Pager) -> Result<(usize, usize)> {
    let mut got = 0;
    for _ in 0..MAX_PAGES {
        match pager.next_page().await? {
            Some(page) => got += page.updates.items.len(),
            None => return Ok((got, pager.response_bytes())),
        }
    }
    anyhow::bail!("still hasMore after {MAX_PAGES} pages")
}

pub async fn run_all(args: &Args, target: &Target) -> Result<Vec<Figure>> {
    let mut out = Vec::new();
    if [Scenario::Push, Scenario::Update, Scenario::Pull]
        .iter()
        .any(|s| wants(args, *s))
    {
        out.extend(push_update_pull(args, target).await?);
    }
    if wants(args, Scenario::Initial) {
        out.extend(initial(args, target).await?);
    }
    if wants(args, Scenario::Steady) {
        for &c in &args.devices {
            out.push(live::steady(args, target, c).await?);
        }
    }
    if wants(args, Scenario::Streams) {
        out.extend(live::streams(args, target).await?);
    }
    if wants(args, Scenario::Scale) {
        out.extend(scale(args, target).await?);
    }
    if wants(args, Scenario::Cascade) {
        out.extend(heavy::cascade(args, target).await?);
    }
    if wants(args, Scenario::BigPages) {
        out.extend(heavy::big_pages(args, target).await?);
    }
    if wants(args, Scenario::BigCascade) {
        out.extend(bytes::big_cascade(args, target).await?);
    }
    if wants(args, Scenario::BigUpdates) {
        out.extend(bytes::big_updates(args, target).await?);
    }
    if wants(args, Scenario::Stale) {
        out.extend(bytes::stale(args, target).await?);
    }
    if wants(args, Scenario::AccountDelete) {
        out.extend(bytes::account_delete(args, target).await?);
    }
    if wants(args, Scenario::Flood) {
        out.extend(bytes::flood(args, target).await?);
    }
    if wants(args, Scenario::Wake) {
        out.extend(live::wake(args, target).await?);
    }
    if wants(args, Scenario::Sharing) {
        out.extend(sharing::run(args, target).await?);
    }
    if wants(args, Scenario::Export) {
        out.extend(export::run(args, target).await?);
    }
    if wants(args, Scenario::Instances) {
        if let Target::Postgres(_) = target {
            for &n in &args.instances {
                out.extend(live::instances(args, target, n).await?);
            }
        }
    }
    Ok(out)
}

/// The three share a server: the update and pull scenarios use what push wrote.
async fn push_update_pull(args: &Args, target: &Target) -> Result<Vec<Figure>> {
    let mut out = Vec::new();
    let server = Server::start(&args.server_bin, target).await?;
    let c = register(&client(&server.base)?, "bench@example.com").await?;
    let (ids, took, sent) = push_items(&c, args.ops, args.batch, "p").await?;
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
        let changes = chunk
            .iter()
            .enumerate()
            .map(|(k, id)| {
                ChangeBody::new(
                    format!("u-{b}-{k}"),
                    EntityType::Item,
                    OpKind::Update,
                    *id,
                    json!({"isCompleted": true}).as_object().cloned(),
                )
                .at("2025-01-02T00:00:00.000Z")
                .by("bench-a")
            })
            .collect();
        c.sync(&push_body("bench-a", changes)).await?;
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
    let (got, bytes) = count_items(c.pages("bench-b", None, None)).await?;
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
    Ok(out)
}

/// Median latency of a small pull: device A pushes one item, device B pulls
/// it from its cursor; 200 times.
async fn small_pull_ms(c: &Client) -> Result<f64> {
    let first = c.pull("probe-b", None, Some(1)).await?;
    let mut cursor = first.sync_timestamp;
    let mut lat = Latencies::default();
    for n in 0..200 {
        let id = new_record_id();
        let create = item_create(&format!("probe-{n}-{id}"), id, n, "probe-a");
        c.sync(&push_body("probe-a", vec![create])).await?;
        let t = Instant::now();
        let d = c.pull("probe-b", Some(&cursor), None).await?;
        lat.0.push(t.elapsed());
        ensure!(d.server_updates.items.len() == 1, "probe pull");
        cursor = d.sync_timestamp;
    }
    Ok(lat.quantile_ms(0.5))
}

/// A small pull on a server holding `scale_users` users and `scale_records`
/// records, against the same pull on a nearly empty server: its cost must
/// follow the changes since the cursor, not the data size.
async fn scale(args: &Args, target: &Target) -> Result<Vec<Figure>> {
    let empty = {
        let server = Server::start(&args.server_bin, target).await?;
        let c = register(&client(&server.base)?, "probe@example.com").await?;
        small_pull_ms(&c).await?
    };
    let server = Server::start(&args.server_bin, target).await?;
    let c = client(&server.base)?;
    let t = Instant::now();
    let per_user = args.scale_records / args.scale_users.max(1);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (c, next, users) = (c.clone(), next.clone(), args.scale_users);
        tasks.push(tokio::spawn(async move {
            loop {
                let u = next.fetch_add(1, Ordering::Relaxed);
                if u >= users {
                    return Ok::<_, anyhow::Error>(());
                }
                let user = register(&c, &format!("scale{u}@example.com")).await?;
                for chunk_start in (0..per_user).step_by(1000) {
                    let n = (per_user - chunk_start).min(1000);
                    let changes = (0..n)
                        .map(|k| {
                            let op = format!("s{u}-{}", chunk_start + k);
                            item_create(&op, new_record_id(), k, "loader")
                        })
                        .collect();
                    user.sync(&push_body("loader", changes)).await?;
                }
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let load = t.elapsed();
    let probe = register(&c, "probe@example.com").await?;
    let full = small_pull_ms(&probe).await?;
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
    let server = Server::start(&args.server_bin, target).await?;
    let c = register(&client(&server.base)?, "big@example.com").await?;
    push_items(&c, args.initial_records, 1000, "i").await?;
    // Restart, so memory figures belong to the download alone.
    let db = server.stop_keep();
    let server = Server::on(&args.server_bin, db)?;
    let anon = client(&server.base)?;
    let login = anon
        .login("big@example.com", PASSWORD)
        .await
        .context("login")?;
    let c = anon.with_token(&login.token);
    let (idle, _) = rss_mib(server.pid());
    let t = Instant::now();
    let (got, _) = count_items(c.initial_pages(None, Some(5000))).await?;
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
