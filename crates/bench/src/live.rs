//! The scenarios of many devices at once: steady state, idle event streams
//! and push-to-poke latency.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use tidesync_client::{new_record_id, Client, EventStream, SyncBody};

use crate::server::{rss_mib, Server, Target};
use crate::stats::Latencies;
use crate::tidesync::{client, fig, item_create, push_body, register};
use crate::{Args, Figure};

/// `devices` devices, 4 per user, each looping "push one op and pull" in one
/// request, for `steady_secs`.
pub async fn steady(args: &Args, target: &Target, devices: usize) -> Result<Figure> {
    let server = Server::start(&args.server_bin, target).await?;
    let c = client(&server.base)?;
    let users = devices.div_ceil(4);
    let mut clients = Vec::new();
    for u in 0..users {
        clients.push(register(&c, &format!("steady{u}@example.com")).await?);
    }
    let deadline = Instant::now() + Duration::from_secs(args.steady_secs);
    let mut tasks = Vec::new();
    for d in 0..devices {
        let c = clients[d / 4].clone();
        tasks.push(tokio::spawn(device_loop(c, format!("dev-{d}"), deadline)));
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

/// One device until `deadline`: "push one new item and pull from its
/// cursor" in one request, again and again; its latencies and errors.
async fn device_loop(c: Client, device: String, deadline: Instant) -> (Latencies, usize) {
    let mut lat = Latencies::default();
    let (mut errors, mut cursor) = (0usize, None::<String>);
    for n in 0..1_000_000usize {
        if Instant::now() >= deadline {
            break;
        }
        let create = item_create(&format!("{device}-{n}"), new_record_id(), n, &device);
        let body = SyncBody {
            device_id: device.clone(),
            last_sync_timestamp: cursor.clone(),
            changes: vec![create],
            ..SyncBody::default()
        };
        let t = Instant::now();
        match c.sync(&body).await {
            Ok(data) => {
                lat.0.push(t.elapsed());
                cursor = Some(data.sync_timestamp);
            }
            Err(_) => errors += 1,
        }
    }
    (lat, errors)
}

/// `n` instances on one PostgreSQL database, `instance_devices` devices (4
/// per user) spread over them, device d on instance d mod n, each looping
/// as in the steady state for `steady_secs`. Meanwhile a probe user pushes
/// through the first instance and is poked on a stream held by the last
/// (the same one when n = 1), 200 times.
pub async fn instances(args: &Args, target: &Target, n: usize) -> Result<Vec<Figure>> {
    ensure!(n >= 1, "at least one instance");
    let first = Server::start(&args.server_bin, target).await?;
    let mut others = Vec::new();
    for _ in 1..n {
        others.push(first.another(&args.server_bin)?);
    }
    let bases: Vec<String> = std::iter::once(first.base.clone())
        .chain(others.iter().map(|s| s.base.clone()))
        .collect();
    let anon = client(&bases[0])?;
    let devices = args.instance_devices;
    let mut tokens = Vec::new();
    for u in 0..devices.div_ceil(4) {
        let c = register(&anon, &format!("inst{u}@example.com")).await?;
        tokens.push(c.token().unwrap_or_default().to_owned());
    }
    let probe = register(&anon, "probe@example.com").await?;
    let probe_token = probe.token().unwrap_or_default().to_owned();
    let pusher = client(&bases[0])?.with_token(&probe_token);
    let listener = client(&bases[n - 1])?.with_token(&probe_token);
    let deadline = Instant::now() + Duration::from_secs(args.steady_secs);
    let mut tasks = Vec::new();
    for d in 0..devices {
        let c = client(&bases[d % n])?.with_token(&tokens[d / 4]);
        tasks.push(tokio::spawn(device_loop(c, format!("dev-{d}"), deadline)));
    }
    let mut poke = poke_latency(&pusher, &listener).await?;
    let mut all = Latencies::default();
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await?;
        all.merge(lat);
        errors += e;
    }
    let rate = all.0.len() as f64 / args.steady_secs as f64;
    let summary = all.summary();
    let poke_summary = poke.summary();
    eprintln!(
        "  instances n={n}, {devices} devices: {rate:.0} round trips/s, {summary}, {errors} errors; push-to-poke first->last {poke_summary}"
    );
    drop(others);
    Ok(vec![
        fig(
            &format!("instances n={n}"),
            target,
            rate,
            "trips/s",
            format!("{devices} devices over {n} instances; {summary}, {errors} errors"),
        ),
        fig(
            &format!("push to poke, n={n}, under load"),
            target,
            poke.quantile_ms(0.99),
            "ms p99",
            format!("push on the first instance, stream on the last; {poke_summary}"),
        ),
    ])
}

/// The next change event, within 10 s.
async fn next_change(events: &mut EventStream) -> Result<String> {
    let ev = tokio::time::timeout(Duration::from_secs(10), events.next_event())
        .await
        .context("no event within 10 s")?
        .context("stream ended")??;
    Ok(ev.sync_timestamp)
}

/// Time from sending a push on device A (through `pusher`) to its poke
/// arriving on device B's stream (held through `listener`), 200 times.
async fn poke_latency(pusher: &Client, listener: &Client) -> Result<Latencies> {
    let mut events = listener.stream("probe-b").open().await?;
    let mut lat = Latencies::default();
    for n in 0..200 {
        let id = new_record_id();
        let t = Instant::now();
        let create = item_create(&format!("poke-{n}-{id}"), id, n, "probe-a");
        pusher.sync(&push_body("probe-a", vec![create])).await?;
        next_change(&mut events).await?;
        lat.0.push(t.elapsed());
    }
    Ok(lat)
}

/// How many idle streams one instance holds, and their memory; push-to-poke
/// latency on one instance and (PostgreSQL) across two.
pub async fn streams(args: &Args, target: &Target) -> Result<Vec<Figure>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut out = Vec::new();
    let server = Server::start(&args.server_bin, target).await?;
    let c = register(&client(&server.base)?, "streams@example.com").await?;
    // Idle streams belong to other users (200 each): each probe push must
    // poke only the probe user's own stream, as in real life.
    let mut idle_tokens = Vec::new();
    for u in 0..args.streams.div_ceil(200) {
        let idle = register(&c, &format!("idle{u}@example.com")).await?;
        idle_tokens.push(idle.token().unwrap_or_default().to_owned());
    }
    let addr = server.base.trim_start_matches("http://").to_owned();
    let (before, _) = rss_mib(server.pid());
    // Over raw TCP: only the server's memory is measured, not a client's.
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
    out.push(fig(
        "idle streams",
        target,
        per_stream_kib,
        "KiB each",
        format!(
            "{} streams held by one instance; RSS {before:.1} -> {after:.1} MiB",
            args.streams
        ),
    ));
    let pusher = client(&server.base)?.with_token(c.token().unwrap_or_default());
    let mut lat = poke_latency(&pusher, &c).await?;
    let summary = lat.summary();
    eprintln!("  push-to-poke, one instance (with the idle streams open): {summary}");
    out.push(fig(
        "push to poke, 1 instance",
        target,
        lat.quantile_ms(0.5),
        "ms p50",
        format!(
            "push sent -> event received, {} idle streams open; {summary}",
            args.streams
        ),
    ));
    drop(held);
    if let Target::Postgres(_) = target {
        let second = server.another(&args.server_bin)?;
        let on_second = client(&second.base)?.with_token(c.token().unwrap_or_default());
        let mut lat = poke_latency(&pusher, &on_second).await?;
        let summary = lat.summary();
        eprintln!("  push-to-poke, across two instances: {summary}");
        out.push(fig(
            "push to poke, 2 instances",
            target,
            lat.quantile_ms(0.5),
            "ms p50",
            format!("push on one, stream on the other (LISTEN/NOTIFY); {summary}"),
        ));
    }
    Ok(out)
}
