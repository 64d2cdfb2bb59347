//! The data export under attack (issue: pages of 500 records built as one
//! string, two more queued, no idle cut): one shared space of big items
//! (`--export-items`, 1,000 by default, about 250 KB each), then
//! - six members exporting it at once: what that adds to the server's RSS,
//!   and another user's pushes meanwhile (max latency);
//! - three exports whose clients stop reading: RSS while they are stalled
//!   and after `EXPORT_IDLE_TIMEOUT` (`--export-idle-secs`), and whether
//!   their connections were closed.
//!
//! The server runs with its default export limits (MAX_EXPORTS 4,
//! MAX_EXPORTS_PER_SPACE 2): refused exports wait `Retry-After` and retry,
//! as a client would, and the figures say how many were refused.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::json;
use tidesync_client::{new_record_id, ChangeBody, Client, EntityType, OpKind};
use tidesync_protocol::scope::Role;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::server::{rss_mib, Server, Target};
use crate::stats::Latencies;
use crate::tidesync::{client, fig, item_create, push_body, register, share};
use crate::{secs, Args, Figure};

/// Members exporting the space together (the owner among them).
const MEMBERS: usize = 6;
/// Clients that stop reading.
const STALLED: usize = 3;
/// Items per push: 18 of about 250 KB stay under the 5 MiB body limit.
const PER_PUSH: usize = 18;

/// An item as large as the protocol allows, in 4-byte characters.
fn big_item(space: tidesync_client::RecordId, k: usize) -> ChangeBody {
    let e = |n: usize| "😀".repeat(n);
    let tags: Vec<String> = (0..100).map(|t| format!("{t:02}{}", e(62))).collect();
    let data = json!({"spaceId": space, "title": format!("{k} {}", e(490)),
                      "description": e(5_000), "notes": e(50_000), "tags": tags});
    ChangeBody::new(
        format!("big-{k}"),
        EntityType::Item,
        OpKind::Create,
        new_record_id(),
        data.as_object().cloned(),
    )
    .at("2025-01-01T00:00:00.000Z")
    .by("owner-a")
}

/// What one export got: its size, and how many times it was refused first.
struct Exported {
    bytes: usize,
    refused: usize,
}

/// One export read to its end as fast as this client can, retrying after
/// `Retry-After` while it is refused (429/503).
async fn export(http: reqwest::Client, base: String, token: String) -> Result<Exported> {
    let mut refused = 0;
    loop {
        let mut res = http
            .get(format!("{base}/api/auth/me/export"))
            .bearer_auth(&token)
            .send()
            .await?;
        let status = res.status().as_u16();
        if status == 429 || status == 503 {
            refused += 1;
            ensure!(refused < 200, "refused {refused} times");
            let wait: u64 = res
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()?.parse().ok())
                .context("a refusal without Retry-After")?;
            tokio::time::sleep(Duration::from_secs(wait)).await;
            continue;
        }
        ensure!(status == 200, "export answered {status}");
        let mut bytes = 0;
        let mut tail = Vec::new();
        while let Some(chunk) = res.chunk().await? {
            bytes += chunk.len();
            tail = chunk[chunk.len().saturating_sub(3)..].to_vec();
        }
        ensure!(tail == b"]}}", "the export did not end its document");
        return Ok(Exported { bytes, refused });
    }
}

/// An export whose client reads the response's head and then nothing
/// (small receive buffer); `None` if it was refused.
async fn stall(base: &str, token: &str) -> Result<Option<TcpStream>> {
    let socket = TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(16 * 1024)?;
    let mut s = socket
        .connect(base.trim_start_matches("http://").parse()?)
        .await?;
    s.write_all(
        format!(
            "GET /api/auth/me/export HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\
             Authorization: Bearer {token}\r\n\r\n"
        )
        .as_bytes(),
    )
    .await?;
    let mut head = [0u8; 64];
    let n = s.read(&mut head).await?;
    let head = String::from_utf8_lossy(&head[..n]);
    if head.starts_with("HTTP/1.1 200") {
        Ok(Some(s))
    } else if head.starts_with("HTTP/1.1 503") || head.starts_with("HTTP/1.1 429") {
        Ok(None)
    } else {
        bail!("a stalled export answered {head}")
    }
}

/// Samples the server's RSS until stopped; returns the highest, in MiB.
fn sample_rss(pid: u32, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<f64> {
    tokio::spawn(async move {
        let mut max: f64 = 0.0;
        while !stop.load(Ordering::Relaxed) {
            max = max.max(rss_mib(pid).0);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        max.max(rss_mib(pid).0)
    })
}

/// Another user pushing one item at a time until stopped: (start, latency).
fn pusher(
    c: Client,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Result<Vec<(Instant, Duration)>>> {
    tokio::spawn(async move {
        let mut out = Vec::new();
        let mut k = 0;
        while !stop.load(Ordering::Relaxed) && k < 1_000_000 {
            let body = push_body(
                "other",
                vec![item_create(&format!("o-{k}"), new_record_id(), k, "other")],
            );
            let t = Instant::now();
            c.sync(&body).await?;
            out.push((t, t.elapsed()));
            k += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(out)
    })
}

/// One round of stalled exports, all cut.
struct Round {
    running: usize,
    refused: usize,
    /// RSS (MiB) while they are stalled, and after the idle cut.
    held: f64,
    after: f64,
    /// Connections the server closed.
    closed: usize,
}

/// STALLED clients start an export each and stop reading; the round ends
/// once the idle timeout has cut them.
async fn stall_round(base: &str, pid: u32, tokens: &[String], idle: u64) -> Result<Round> {
    let mut stalled: Vec<TcpStream> = Vec::new();
    let mut refused = 0;
    for t in tokens.iter().take(STALLED) {
        match stall(base, t).await? {
            Some(s) => stalled.push(s),
            None => refused += 1,
        }
    }
    tokio::time::sleep(Duration::from_secs(2.min(idle))).await;
    let (held, _) = rss_mib(pid);
    tokio::time::sleep(Duration::from_secs(idle + 2)).await;
    let (after, _) = rss_mib(pid);
    // Each stalled connection must reach its end (closed by the server),
    // before the whole export.
    let running = stalled.len();
    let mut closed = 0;
    for mut s in stalled {
        let mut sink = Vec::new();
        let r = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut sink)).await;
        if r.is_ok() && !sink.ends_with(b"0\r\n\r\n") {
            closed += 1;
        }
    }
    Ok(Round {
        running,
        refused,
        held,
        after,
        closed,
    })
}

pub async fn run(args: &Args, target: &Target) -> Result<Vec<Figure>> {
    let n = args.export_items;
    let idle = args.export_idle_secs;
    let server = Server::start(&args.server_bin, target).await?;
    let base = client(&server.base)?;
    let owner = register(&base, "owner@example.com").await?;
    let space = new_record_id();
    let create = ChangeBody::new(
        "space",
        EntityType::Space,
        OpKind::Create,
        space,
        json!({"name": "Exported"}).as_object().cloned(),
    )
    .at("2025-01-01T00:00:00.000Z")
    .by("owner-a");
    owner.sync(&push_body("owner-a", vec![create])).await?;
    let mut members = vec![owner.clone()];
    for m in 1..MEMBERS {
        let email = format!("member{m}@example.com");
        let member = register(&base, &email).await?;
        share(&owner, &member, space, &email, Role::Editor).await?;
        members.push(member);
    }
    let t = Instant::now();
    for from in (0..n).step_by(PER_PUSH) {
        let changes = (from..(from + PER_PUSH).min(n))
            .map(|k| big_item(space, k))
            .collect();
        let d = owner.sync(&push_body("owner-a", changes)).await?;
        ensure!(d.acknowledged.iter().all(|a| a.success), "a create failed");
    }
    eprintln!(
        "  export: {n} big items loaded in {:.1} s",
        secs(t.elapsed())
    );
    let tokens: Vec<String> = members
        .iter()
        .map(|c| c.token().map(str::to_owned).context("token"))
        .collect::<Result<_>>()?;
    let other = register(&base, "other@example.com").await?;
    let other_token = other.token().context("token")?.to_owned();

    // Restart, so the figures cover the exports alone.
    let db = server.stop_keep();
    let server = Server::on_with(
        &args.server_bin,
        db,
        &[("EXPORT_IDLE_TIMEOUT", format!("{idle}s"))],
    )?;
    let pid = server.pid();
    let other = client(&server.base)?.with_token(&other_token);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (before, _) = rss_mib(pid);

    // Six members at once, another user pushing throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let pushes = pusher(other.clone(), stop.clone());
    let rss = sample_rss(pid, stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let http = reqwest::Client::new();
    let start = Instant::now();
    let tasks: Vec<_> = tokens
        .iter()
        .map(|t| tokio::spawn(export(http.clone(), server.base.clone(), t.clone())))
        .collect();
    let (mut bytes, mut refused) = (0, 0);
    for t in tasks {
        let e = t.await??;
        bytes += e.bytes;
        refused += e.refused;
    }
    let end = Instant::now();
    let took = end - start;
    stop.store(true, Ordering::Relaxed);
    let peak = rss.await?;
    let mut during = Latencies::default();
    for (at, lat) in pushes.await?? {
        if at < end && at + lat > start {
            during.0.push(lat);
        }
    }
    ensure!(!during.0.is_empty(), "no push overlapped the exports");
    let (overlapped, p99, max) = (
        during.0.len(),
        during.quantile_ms(0.99),
        during.quantile_ms(1.0),
    );
    eprintln!(
        "  export: {MEMBERS} at once, {:.0} MiB in {:.1} s ({refused} refusals); RSS {before:.1} → peak {peak:.1} MiB; other's pushes max {max:.0} ms",
        bytes as f64 / 1048576.0,
        secs(took)
    );

    // Three clients that stop reading, on a fresh process again: memory the
    // allocator kept from the exports above would hide what they hold.
    let db = server.stop_keep();
    let server = Server::on_with(
        &args.server_bin,
        db,
        &[("EXPORT_IDLE_TIMEOUT", format!("{idle}s"))],
    )?;
    let pid = server.pid();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (calm, _) = rss_mib(pid);
    let first = stall_round(&server.base, pid, &tokens, idle).await?;
    // A second round: if the first's memory was freed by the cut, this one
    // reuses it (the allocator keeps freed memory, so RSS need not drop).
    let second = stall_round(&server.base, pid, &tokens, idle).await?;
    let running = first.running;
    eprintln!(
        "  export: {running} stalled ({} refused): RSS {calm:.1} → {:.1} MiB while stalled, {:.1} MiB after the cut; {}/{running} connections closed; a second round: {:.1} → {:.1} MiB",
        first.refused, first.held, first.after, first.closed, second.held, second.after
    );
    let kb = bytes as f64 / (MEMBERS * n).max(1) as f64 / 1000.0;
    Ok(vec![
        fig(
            "export: 6 at once, RSS added",
            target,
            peak - before,
            "MiB",
            format!(
                "one shared space of {n} items (~{kb:.0} KB each in the export), {MEMBERS} members exporting at once: {:.0} MiB in {:.1} s, {refused} refusals (503/429 + Retry-After); RSS {before:.1} → peak {peak:.1} MiB",
                bytes as f64 / 1048576.0,
                secs(took)
            ),
        ),
        fig(
            "export: others' push meanwhile",
            target,
            max,
            "ms max",
            format!("another user pushing one item every 20 ms: {overlapped} pushes overlapped, p99 {p99:.1} ms"),
        ),
        fig(
            "export: stalled readers, RSS held",
            target,
            first.held - calm,
            "MiB",
            format!(
                "{STALLED} clients stop reading: {running} running, {} refused (503/429); RSS {calm:.1} → {:.1} MiB",
                first.refused, first.held
            ),
        ),
        fig(
            "export: stalled readers, after cut",
            target,
            first.after - calm,
            "MiB",
            format!(
                "EXPORT_IDLE_TIMEOUT={idle}s: {:.1} MiB 2 s after it, {}/{running} connections closed by the server; a second round of stalled exports then went {:.1} → {:.1} MiB ({}/{} closed): what the cut freed is reused",
                first.after, first.closed, second.held, second.after, second.closed, second.running
            ),
        ),
    ])
}
