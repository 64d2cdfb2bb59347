//! Heavy-but-legal requests on records of 300 kB (issue 19): deleting a
//! space of them, a small push that edits one field of each, and a push of
//! stale edits whose every write loses. What each costs the server's memory
//! and every other user's pushes.

use std::time::Instant;

use anyhow::{ensure, Context, Result};
use serde_json::json;
use tidesync_client::{new_record_id, ChangeBody, Client, EntityType, OpKind, RecordId};

use crate::others::Others;
use crate::server::{rss_mib, Server, Target};
use crate::tidesync::{client, fig, push_body, register};
use crate::{Args, Figure};

/// Other users pushing meanwhile.
const OTHERS: usize = 4;
/// Items of 300 kB per request: 3 MB, under the 5 MiB body limit.
const PER_REQUEST: usize = 10;

/// Notes of 50,000 control characters: 300 kB once escaped, the largest an
/// item can be stored as.
fn notes() -> String {
    "\u{1}".repeat(50_000)
}

fn change(
    op: String,
    kind: EntityType,
    verb: OpKind,
    id: RecordId,
    data: serde_json::Value,
    at: &str,
) -> ChangeBody {
    ChangeBody::new(op, kind, verb, id, data.as_object().cloned())
        .at(at)
        .by("bench-a")
}

/// A space and `n` items of 300 kB in it; their ids.
async fn big_space(c: &Client, n: usize) -> Result<(RecordId, Vec<RecordId>)> {
    let space = new_record_id();
    let s = change(
        "space".into(),
        EntityType::Space,
        OpKind::Create,
        space,
        json!({"name": "Big"}),
        "2025-01-01T00:00:00.000Z",
    );
    c.sync(&push_body("bench-a", vec![s])).await?;
    let ids: Vec<RecordId> = (0..n).map(|_| new_record_id()).collect();
    let notes = notes();
    for (b, chunk) in ids.chunks(PER_REQUEST).enumerate() {
        let items = chunk
            .iter()
            .enumerate()
            .map(|(k, id)| {
                let data = json!({"title": "big", "notes": notes, "spaceId": space});
                change(
                    format!("c{b}-{k}"),
                    EntityType::Item,
                    OpKind::Create,
                    *id,
                    data,
                    "2025-01-01T00:00:01.000Z",
                )
            })
            .collect();
        let d = c.sync(&push_body("bench-a", items)).await?;
        ensure!(d.acknowledged.iter().all(|a| a.success), "a create failed");
    }
    Ok((space, ids))
}

/// A server holding `n` big items of one user, restarted so that its peak
/// memory counts what follows only; the user's client and the ids.
async fn seeded(
    args: &Args,
    target: &Target,
    n: usize,
) -> Result<(Server, Client, RecordId, Vec<RecordId>)> {
    let server = Server::start(&args.server_bin, target).await?;
    let c = register(&client(&server.base)?, "big@example.com").await?;
    let t = Instant::now();
    let (space, ids) = big_space(&c, n).await?;
    eprintln!(
        "  {n} items of 300 kB loaded in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let token = c.token().context("token")?.to_owned();
    let db = server.stop_keep();
    let server = Server::on(&args.server_bin, db)?;
    let c = client(&server.base)?.with_token(&token);
    Ok((server, c, space, ids))
}

/// Deleting a space of `big_items` items of 300 kB while others push.
pub async fn big_cascade(args: &Args, target: &Target) -> Result<Vec<Figure>> {
    let n = args.big_items;
    let (server, c, space, _) = seeded(args, target, n).await?;
    let others = Others::start(&client(&server.base)?, OTHERS).await?;
    let (before, _) = rss_mib(server.pid());
    let del = change(
        "del".into(),
        EntityType::Space,
        OpKind::Delete,
        space,
        serde_json::Value::Null,
        "2025-01-02T00:00:00.000Z",
    );
    let start = Instant::now();
    let d = c.sync(&push_body("bench-a", vec![del])).await?;
    let end = Instant::now();
    ensure!(d.acknowledged[0].success, "the delete failed");
    let mut during = others.stop(start, end).await?;
    let (_, peak) = rss_mib(server.pid());
    let took = (end - start).as_secs_f64() * 1e3;
    eprintln!("  big cascade: {took:.0} ms; others: {}", during.summary());
    let max = during.latencies.quantile_ms(1.0);
    Ok(vec![
        fig(
            "big cascade: delete",
            target,
            took,
            "ms",
            format!("a space of {n} items of 300 kB, one request"),
        ),
        fig(
            "big cascade: others' push",
            target,
            max,
            "ms max",
            format!("{OTHERS} users: {}", during.summary()),
        ),
        fig(
            "big cascade: RSS added",
            target,
            peak - before,
            "MiB",
            format!("RSS {before:.1} → peak {peak:.1} MiB"),
        ),
    ])
}

/// One push of a one-field edit of each of `big_items` items of 300 kB (a
/// small request that rewrites them all), while others push.
pub async fn big_updates(args: &Args, target: &Target) -> Result<Vec<Figure>> {
    let n = args.big_items.min(1000);
    let (server, c, _, ids) = seeded(args, target, n).await?;
    let others = Others::start(&client(&server.base)?, OTHERS).await?;
    let (before, _) = rss_mib(server.pid());
    let edits: Vec<ChangeBody> = ids
        .iter()
        .enumerate()
        .map(|(k, id)| {
            change(
                format!("t{k}"),
                EntityType::Item,
                OpKind::Update,
                *id,
                json!({"title": format!("t{k}")}),
                "2025-01-02T00:00:00.000Z",
            )
        })
        .collect();
    let body = push_body("bench-a", edits);
    let size = serde_json::to_vec(&body)?.len();
    let start = Instant::now();
    let d = c.sync(&body).await?;
    let end = Instant::now();
    ensure!(d.acknowledged.iter().all(|a| a.success), "an edit failed");
    let mut during = others.stop(start, end).await?;
    let (_, peak) = rss_mib(server.pid());
    let took = (end - start).as_secs_f64() * 1e3;
    eprintln!("  big updates: {took:.0} ms; others: {}", during.summary());
    let max = during.latencies.quantile_ms(1.0);
    Ok(vec![
        fig(
            "big updates: push",
            target,
            took,
            "ms",
            format!(
                "{n} one-field edits of 300 kB items, one request of {} kB",
                size / 1000
            ),
        ),
        fig(
            "big updates: others' push",
            target,
            max,
            "ms max",
            format!("{OTHERS} users: {}", during.summary()),
        ),
        fig(
            "big updates: RSS added",
            target,
            peak - before,
            "MiB",
            format!("RSS {before:.1} → peak {peak:.1} MiB"),
        ),
    ])
}

/// The size of a sync's answer, uncompressed, read as it arrives.
async fn answer_bytes(c: &Client, body: &tidesync_client::SyncBody) -> Result<usize> {
    let mut res = c
        .http()
        .post(format!("{}/api/sync", c.base_url()))
        .bearer_auth(c.token().context("token")?)
        .json(body)
        .send()
        .await?;
    ensure!(res.status().is_success(), "sync answered {}", res.status());
    let mut n = 0;
    while let Some(chunk) = res.chunk().await? {
        n += chunk.len();
    }
    Ok(n)
}

/// Four devices at once push a stale edit of each of `big_items` items of
/// 300 kB: every write loses, and each loser is owed the server's record.
pub async fn stale(args: &Args, target: &Target) -> Result<Vec<Figure>> {
    let n = args.big_items.min(1000);
    let (server, c, _, ids) = seeded(args, target, n).await?;
    let others = Others::start(&client(&server.base)?, OTHERS).await?;
    let (before, _) = rss_mib(server.pid());
    let edits: Vec<ChangeBody> = ids
        .iter()
        .enumerate()
        .map(|(k, id)| {
            change(
                format!("s{k}"),
                EntityType::Item,
                OpKind::Update,
                *id,
                json!({"notes": "x"}),
                "2024-01-01T00:00:00.000Z",
            )
        })
        .collect();
    let size = serde_json::to_vec(&push_body("bench-a", edits.clone()))?.len();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for d in 0..4 {
        let c = c.clone();
        let body = push_body(&format!("stale-{d}"), edits.clone());
        tasks.push(tokio::spawn(async move { answer_bytes(&c, &body).await }));
    }
    let mut largest = 0;
    for t in tasks {
        largest = largest.max(t.await??);
    }
    let end = Instant::now();
    let mut during = others.stop(start, end).await?;
    let (_, peak) = rss_mib(server.pid());
    eprintln!(
        "  stale: answers up to {:.1} MB; others: {}",
        largest as f64 / 1e6,
        during.summary()
    );
    let max = during.latencies.quantile_ms(1.0);
    Ok(vec![
        fig(
            "stale pushes: largest answer",
            target,
            largest as f64 / (1024.0 * 1024.0),
            "MiB",
            format!(
                "4 pushes at once of {n} losing edits ({} kB each) of 300 kB items",
                size / 1000
            ),
        ),
        fig(
            "stale pushes: RSS added",
            target,
            peak - before,
            "MiB",
            format!("RSS {before:.1} → peak {peak:.1} MiB"),
        ),
        fig(
            "stale pushes: others' push",
            target,
            max,
            "ms max",
            format!("{OTHERS} users: {}", during.summary()),
        ),
    ])
}

/// Deleting an account of `account_records` small records while others push.
pub async fn account_delete(args: &Args, target: &Target) -> Result<Vec<Figure>> {
    let n = args.account_records;
    let server = Server::start(&args.server_bin, target).await?;
    let base = client(&server.base)?;
    let c = register(&base, "leaving@example.com").await?;
    let ids: Vec<RecordId> = (0..n).map(|_| new_record_id()).collect();
    for (b, chunk) in ids.chunks(1000).enumerate() {
        let items = chunk
            .iter()
            .enumerate()
            .map(|(k, id)| {
                let data = json!({"title": format!("item {b}-{k}")});
                change(
                    format!("c{b}-{k}"),
                    EntityType::Item,
                    OpKind::Create,
                    *id,
                    data,
                    "2025-01-01T00:00:01.000Z",
                )
            })
            .collect();
        let d = c.sync(&push_body("bench-a", items)).await?;
        ensure!(d.acknowledged.iter().all(|a| a.success), "a create failed");
    }
    let others = Others::start(&base, OTHERS).await?;
    let start = Instant::now();
    c.delete_account(crate::tidesync::PASSWORD).await?;
    let end = Instant::now();
    let mut during = others.stop(start, end).await?;
    let took = (end - start).as_secs_f64() * 1e3;
    eprintln!(
        "  account delete: {took:.0} ms; others: {}",
        during.summary()
    );
    let max = during.latencies.quantile_ms(1.0);
    Ok(vec![
        fig(
            "account delete",
            target,
            took,
            "ms",
            format!("an account of {n} records (and their {n} log rows)"),
        ),
        fig(
            "account delete: others' push",
            target,
            max,
            "ms max",
            format!("{OTHERS} users: {}", during.summary()),
        ),
    ])
}

/// One user sending pushes of ~5 MiB back to back from 4 connections for
/// `flood_secs`, while others push one item at a time.
pub async fn flood(args: &Args, target: &Target) -> Result<Vec<Figure>> {
    let server = Server::start(&args.server_bin, target).await?;
    let base = client(&server.base)?;
    let c = register(&base, "flood@example.com").await?;
    let others = Others::start(&base, OTHERS).await?;
    // 1,000 creates with notes of 4,700 characters: just under 5 MiB.
    let notes = "n".repeat(4_700);
    let deadline = Instant::now() + std::time::Duration::from_secs(args.flood_secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..4 {
        let (c, notes) = (c.clone(), notes.clone());
        tasks.push(tokio::spawn(async move {
            let mut sent = 0usize;
            while Instant::now() < deadline {
                let items = (0..1000)
                    .map(|k| {
                        let data = json!({"title": "flood", "notes": notes});
                        change(
                            format!("f{w}-{sent}-{k}"),
                            EntityType::Item,
                            OpKind::Create,
                            new_record_id(),
                            data,
                            "2025-01-01T00:00:01.000Z",
                        )
                    })
                    .collect();
                // A 503 busy is the queue's bound at work: go on.
                let _ = c.sync(&push_body(&format!("flood-{w}"), items)).await;
                sent += 1;
            }
            sent
        }));
    }
    let mut pushes = 0;
    for t in tasks {
        pushes += t.await?;
    }
    let end = Instant::now();
    let mut during = others.stop(start, end).await?;
    eprintln!(
        "  flood: {pushes} pushes of ~5 MiB; others: {}",
        during.summary()
    );
    let (p99, max) = (
        during.latencies.quantile_ms(0.99),
        during.latencies.quantile_ms(1.0),
    );
    Ok(vec![
        fig(
            "flood: others' push p99",
            target,
            p99,
            "ms",
            format!(
                "one user sent {pushes} pushes of ~5 MiB in {} s from 4 connections",
                args.flood_secs
            ),
        ),
        fig(
            "flood: others' push max",
            target,
            max,
            "ms",
            format!("{OTHERS} users: {}", during.summary()),
        ),
    ])
}
