//! Two worst cases of issue 9: deleting a space with 10,000 categories and
//! 10,000 items while other users push, and pulling pages of the largest
//! records the protocol allows while watching the server's memory.

use std::time::Instant;

use anyhow::{ensure, Context, Result};
use serde_json::json;
use tidesync_client::{new_record_id, ChangeBody, Client, EntityType, OpKind, RecordId};
use tidesync_protocol::entity::NOTES_MAX;

use crate::others::Others;
use crate::server::{rss_mib, Server, Target};
use crate::tidesync::{client, count_items, fig, push_body, register};
use crate::{secs, Args, Figure};

/// Requests of at most this many changes (the server's default limit).
const PER_REQUEST: usize = 1000;
/// Other users pushing while the cascade runs.
const OTHERS: usize = 4;

fn change(op: String, kind: EntityType, id: RecordId, data: serde_json::Value) -> ChangeBody {
    ChangeBody::new(op, kind, OpKind::Create, id, data.as_object().cloned())
        .at("2025-01-01T00:00:00.000Z")
        .by("bench-a")
}

async fn push_all(c: &Client, changes: Vec<ChangeBody>) -> Result<()> {
    let mut it = changes.into_iter().peekable();
    while it.peek().is_some() {
        let chunk: Vec<ChangeBody> = it.by_ref().take(PER_REQUEST).collect();
        let d = c.sync(&push_body("bench-a", chunk)).await?;
        ensure!(d.acknowledged.iter().all(|a| a.success), "a create failed");
    }
    Ok(())
}

pub async fn cascade(args: &Args, target: &Target) -> Result<Vec<Figure>> {
    let n = args.cascade_size;
    let server = Server::start(&args.server_bin, target).await?;
    let base = client(&server.base)?;
    let owner = register(&base, "cascade@example.com").await?;
    let space = new_record_id();
    let cats: Vec<RecordId> = (0..n).map(|_| new_record_id()).collect();
    let mut changes = vec![change(
        "space".into(),
        EntityType::Space,
        space,
        json!({"name": "Big"}),
    )];
    for (k, c) in cats.iter().enumerate() {
        changes.push(change(
            format!("c-{k}"),
            EntityType::Category,
            *c,
            json!({"spaceId": space, "name": format!("Category {k}")}),
        ));
    }
    for k in 0..n {
        changes.push(change(
            format!("i-{k}"),
            EntityType::Item,
            new_record_id(),
            json!({"spaceId": space, "categoryId": cats[k % cats.len()], "title": format!("Item {k}")}),
        ));
    }
    let t = Instant::now();
    push_all(&owner, changes).await?;
    eprintln!(
        "  cascade: {} records loaded in {:.1} s",
        2 * n + 1,
        secs(t.elapsed())
    );

    // Other users push one item at a time, before, during and after.
    let others = Others::start(&base, OTHERS).await?;
    let delete = ChangeBody::new("del", EntityType::Space, OpKind::Delete, space, None)
        .at("2025-01-02T00:00:00.000Z")
        .by("bench-a");
    let start = Instant::now();
    let d = owner.sync(&push_body("bench-a", vec![delete])).await?;
    let took = start.elapsed();
    let end = Instant::now();
    ensure!(
        d.acknowledged[0].success,
        "the delete failed: {:?}",
        d.acknowledged[0]
    );
    let mut during = others.stop(start, end).await?;
    let (overlapped, all, p50, p99, max) = (
        during.overlapped(),
        during.all,
        during.latencies.quantile_ms(0.5),
        during.latencies.quantile_ms(0.99),
        during.latencies.quantile_ms(1.0),
    );
    // Every record became a tombstone: a pull of the owner's other device
    // from scratch sees nothing live.
    let live = owner.pages("bench-b", None, None);
    let (left, _) = count_items(live).await?;
    ensure!(left == 0, "{left} records still live after the cascade");
    eprintln!(
        "  cascade: delete of {} records in {:.0} ms; {} other pushes meanwhile, max {:.0} ms",
        2 * n + 1,
        took.as_secs_f64() * 1e3,
        overlapped,
        max
    );
    Ok(vec![
        fig(
            "cascade delete",
            target,
            took.as_secs_f64() * 1e3,
            "ms",
            format!("a space with {n} categories and {n} items, one request"),
        ),
        fig(
            "others' push during cascade",
            target,
            max,
            "ms max",
            format!(
                "{OTHERS} users pushing one item at a time: {} pushes overlapped the delete, p50 {:.1} / p99 {:.1} ms ({all} in all)",
                overlapped, p50, p99
            ),
        ),
    ])
}

/// Items as large as the protocol allows (50,000-character notes), pulled
/// with the largest `limit`: what a page adds to the server's peak RSS.
pub async fn big_pages(args: &Args, target: &Target) -> Result<Vec<Figure>> {
    let n = args.big_records;
    let server = Server::start(&args.server_bin, target).await?;
    let c = register(&client(&server.base)?, "big@example.com").await?;
    let notes = "x".repeat(NOTES_MAX);
    let mut batch = Vec::new();
    for k in 0..n {
        batch.push(change(
            format!("b-{k}"),
            EntityType::Item,
            new_record_id(),
            json!({"title": format!("Big {k}"), "notes": notes}),
        ));
        // ~50 KB each: 80 per request stays under the 5 MiB body limit.
        if batch.len() == 80 || k + 1 == n {
            let d = c
                .sync(&push_body("bench-a", std::mem::take(&mut batch)))
                .await?;
            ensure!(d.acknowledged.iter().all(|a| a.success), "a create failed");
        }
    }
    // Restart, so the peak covers the pulls alone.
    let db = server.stop_keep();
    let server = Server::on(&args.server_bin, db)?;
    let c = client(&server.base)?.with_token(c.token().context("token")?);
    let (before, _) = rss_mib(server.pid());
    let t = Instant::now();
    let mut pager = c.pages("bench-b", None, Some(5000));
    let (mut got, mut pages) = (0, 0);
    while let Some(page) = pager.next_page().await? {
        got += page.updates.items.len();
        pages += 1;
        ensure!(pages <= 10 * n, "paging does not end");
    }
    let took = t.elapsed();
    ensure!(got == n, "pulled {got} of {n}");
    let (_, peak) = rss_mib(server.pid());
    eprintln!("  big pages: RSS {before:.1} → peak {peak:.1} MiB over {pages} pages");
    Ok(vec![fig(
        "big pages: RSS added",
        target,
        peak - before,
        "MiB",
        format!(
            "{n} items of {} KB, limit=5000: {pages} pages in {:.1} s (MAX_PAGE_BYTES 4 MiB); RSS {before:.1} → peak {peak:.1} MiB",
            NOTES_MAX / 1000,
            secs(took)
        ),
    )])
}
