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

/// Long-polls of one user's devices, all woken by one write of another of
/// its devices, while other users push one item at a time: what the
/// wake-up costs everyone else (issue 19: 90 long-polls, 852 ms before the
/// woken pulls took turns). Three rounds; each answer must carry the write.
pub async fn wake(args: &Args, target: &Target) -> Result<Vec<Figure>> {
    const ROUNDS: usize = 3;
    let polls = args.wake_polls;
    let server = Server::start(&args.server_bin, target).await?;
    let base = client(&server.base)?;
    let c = register(&base, "woken@example.com").await?;
    // Records to read around, so each woken pull walks a real index. The
    // pushing device gets none of its own writes back: its cursor is the head.
    let seed: Vec<_> = (0..1000)
        .map(|n| item_create(&format!("seed-{n}"), new_record_id(), n, "writer"))
        .collect();
    let mut head = c
        .sync(&SyncBody {
            limit: Some(5000),
            ..push_body("writer", seed)
        })
        .await?
        .sync_timestamp;
    let others = crate::others::Others::start(&base, 4).await?;
    let mut answered = Latencies::default();
    let mut window: Option<(Instant, Instant)> = None;
    for round in 0..ROUNDS {
        let mut tasks = Vec::with_capacity(polls);
        for d in 0..polls {
            let (c, cursor) = (c.clone(), head.clone());
            tasks.push(tokio::spawn(async move {
                let body = SyncBody {
                    device_id: format!("poller-{d}"),
                    last_sync_timestamp: Some(cursor),
                    wait_seconds: Some(30),
                    limit: Some(100),
                    ..SyncBody::default()
                };
                let out = c.sync(&body).await?;
                Ok::<_, anyhow::Error>((Instant::now(), out.server_updates.items.len()))
            }));
        }
        // Every long-poll parked before the write.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let start = Instant::now();
        let write = item_create(&format!("wake-{round}"), new_record_id(), round, "writer");
        head = c
            .sync(&SyncBody {
                last_sync_timestamp: Some(head.clone()),
                ..push_body("writer", vec![write])
            })
            .await?
            .sync_timestamp;
        let mut end = start;
        for t in tasks {
            let (at, items) = t.await??;
            ensure!(
                items == 1,
                "a woken long-poll got {items} items, not the write"
            );
            answered.0.push(at - start);
            end = end.max(at);
        }
        window = Some(window.map_or((start, end), |(s, _)| (s, end)));
    }
    let (start, end) = window.context("rounds")?;
    let mut during = others.stop(start, end).await?;
    eprintln!(
        "  wake: {polls} long-polls woken {ROUNDS} times, all answered within {:.0} ms; others: {}",
        answered.quantile_ms(1.0),
        during.summary()
    );
    Ok(vec![
        fig(
            "wake: others' push",
            target,
            during.latencies.quantile_ms(1.0),
            "ms max",
            format!("4 users: {}", during.summary()),
        ),
        fig(
            "wake: last long-poll answered",
            target,
            answered.quantile_ms(1.0),
            "ms after the write",
            format!("{polls} long-polls of one user, woken by one write, {ROUNDS} rounds"),
        ),
    ])
}
