//! Partitions on real network links. Two network namespaces ("hosts"), each
//! running one `tidesync` binary on PostgreSQL; each host has a client link
//! (the test's devices reach its instance over it) and a database link (its
//! instance reaches PostgreSQL over it, through a forwarder in the root
//! namespace, since PostgreSQL listens on loopback). Devices of two users
//! push on both instances while A's database link is degraded (delay and
//! packet loss), then cut (every packet dropped, silently), then the
//! database forgets A's connections (as a restart or failover would) and
//! the link returns.
//!
//! Proved: A answers 503 with Retry-After while cut, and no batch is ever
//! half applied; B keeps serving the same users meanwhile; every
//! acknowledged change is there afterwards; pokes reach a stream held on A
//! again; every device converges.
//!
//! Needs root (namespaces, tc) and `TIDESYNC_TEST_POSTGRES_URL`;
//! otherwise reported ignored, with one note.

#[path = "partition/checks.rs"]
mod checks;
#[path = "partition/forward.rs"]
mod forward;
#[path = "partition/net.rs"]
mod net;
#[path = "partition/traffic.rs"]
mod traffic;

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};
use sqlx::postgres::PgConnectOptions;
use tidesync_testkit::*;
use tokio::sync::{mpsc, watch};

use checks::{check_answers, report};
use forward::Forwarder;
use net::{Loss, Net};
use traffic::{drive, Device, Outcome, Phase, Sent};

const BOUND: Duration = Duration::from_secs(110);
/// The instances' settings: short, so that a cut shows within seconds.
const REQUEST_TIMEOUT: &str = "4s";
const DB_ACQUIRE_TIMEOUT: &str = "2s";
const DB_IDLE_TX_TIMEOUT: &str = "2s";
/// A device gives up on an answer after this: longer than any timeout of
/// the server, so that only a hung server trips it.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(12);
/// How long A has, once its link is back, to serve every device again.
const RECOVERY: Duration = Duration::from_secs(45);
const WARM: Duration = Duration::from_secs(2);
const DEGRADED: Duration = Duration::from_secs(6);
const CUT: Duration = Duration::from_secs(8);
const A: usize = 0;
const B: usize = 1;

/// `url` with its host and port replaced by `addr`.
fn via(url: &str, addr: std::net::SocketAddr) -> String {
    let start = url.find("://").expect("a URL") + 3;
    let end = url[start..].find('/').map_or(url.len(), |i| start + i);
    let auth = &url[start..end];
    let creds = auth.rfind('@').map_or("", |i| &auth[..=i]);
    format!("{}{creds}{addr}{}", &url[..start], &url[end..])
}

/// The `tidesync` binary inside host `ns`, listening on `ip`.
async fn instance(ns: &str, ip: &str, database_url: &str, dir: &Path) -> (Proc, String) {
    let mut cmd = Proc::command(Path::new(net::IP), dir, database_url, TEST_SECRET);
    cmd.args(["netns", "exec", ns, env!("CARGO_BIN_EXE_tidesync")])
        .env("HOST", ip)
        .env("REQUEST_TIMEOUT", REQUEST_TIMEOUT)
        .env("DB_ACQUIRE_TIMEOUT", DB_ACQUIRE_TIMEOUT)
        .env("DB_IDLE_TX_TIMEOUT", DB_IDLE_TX_TIMEOUT)
        .env("DB_POOL_SIZE", "4");
    tokio::task::spawn_blocking(move || Proc::serve(&mut cmd))
        .await
        .expect("starting the instance")
}

async fn partition() {
    let admin = postgres_url().expect("checked by main");
    // Declared in this order so that they are dropped in the reverse one,
    // also when an assertion fails: the instances (killed by their PIDs),
    // the forwarders, the namespaces and links, then the database.
    let db = TestDb::postgres(&admin, "tidesync_part")
        .await
        .unwrap_or_else(|e| panic!("{PG_ENV} is set but {e}"));
    let net = Net::new(&["a", "b"]).unwrap_or_else(|e| panic!("building the hosts: {e}"));
    let pg = PgConnectOptions::from_str(&admin).expect("a PostgreSQL URL");
    let target = tokio::net::lookup_host((pg.get_host(), pg.get_port()))
        .await
        .expect("PostgreSQL's address")
        .next()
        .expect("an address");
    let mut forwarders = vec![];
    for h in &net.hosts {
        forwarders.push(Forwarder::start(&h.db.root_ip, target).await);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut procs = vec![];
    let mut bases = vec![];
    for (h, f) in net.hosts.iter().zip(&forwarders) {
        let (p, base) = instance(&h.ns, &h.client.ns_ip, &via(&db.url, f.addr), dir.path()).await;
        procs.push(p);
        bases.push(base);
    }

    let api = tidesync_client::Client::new(&bases[A]).expect("client");
    let mut tokens = vec![];
    for u in 0..2 {
        let auth = api
            .register(&format!("part{u}@example.com"), PASSWORD, "Partition")
            .await
            .expect("register");
        tokens.push(auth.token);
    }
    // A stream on A for user 0, read all along.
    let mut stream = api
        .with_token(&tokens[0])
        .stream("watcher")
        .open()
        .await
        .expect("open the stream on A");
    let (events_tx, mut events) = mpsc::unbounded_channel::<String>();
    let reader = tokio::spawn(async move {
        while let Some(Ok(ev)) = stream.next_event().await {
            if events_tx.send(ev.sync_timestamp).is_err() {
                return;
            }
        }
    });

    let (phase_tx, phase) = watch::channel(Phase::Warm);
    let (since_tx, since) = watch::channel(Instant::now());
    let mut tasks = vec![];
    for (u, token) in tokens.iter().enumerate() {
        for (host, name) in [(A, "a"), (B, "b")] {
            let dev = Device::new(&format!("{name}{u}"), u, host, &bases[host], token);
            tasks.push(tokio::spawn(drive(
                dev,
                phase.clone(),
                since.clone(),
                CLIENT_TIMEOUT,
            )));
        }
    }
    let set = |p: Phase| {
        since_tx.send_replace(Instant::now());
        phase_tx.send_replace(p);
    };
    tokio::time::sleep(WARM).await;
    // 50 ms each way (100 ms more per round trip) and 2% of packets lost.
    forwarders[A].set_delay(Duration::from_millis(50));
    net.drop_db(A, Some(Loss::Share(2)))
        .expect("degrade A's database link");
    set(Phase::Degraded);
    tokio::time::sleep(DEGRADED).await;
    net.drop_db(A, Some(Loss::All))
        .expect("cut A's database link");
    forwarders[A].set_delay(Duration::ZERO);
    set(Phase::Cut);
    tokio::time::sleep(CUT).await;
    // The database side drops A's connections while the link is still cut,
    // so that A never hears of it; then the link returns.
    forwarders[A].sever();
    tokio::time::sleep(Duration::from_millis(200)).await;
    set(Phase::Restored);
    net.drop_db(A, None).expect("restore A's database link");
    let restored = Instant::now();

    let mut devices = vec![];
    let mut sent: Vec<Sent> = vec![];
    for t in tasks {
        let (dev, s) = tokio::time::timeout(RECOVERY, t)
            .await
            .unwrap_or_else(|_| {
                panic!("a device was not served within {RECOVERY:?} of the link's return")
            })
            .expect("device task");
        devices.push(dev);
        sent.extend(s);
    }
    let recovered = restored.elapsed();
    check_answers(&sent);

    // (a), (c): what is stored, seen through both instances.
    let stored = audit(&bases, &tokens).await;
    let mut half_done = 0;
    let mut unanswered_but_stored = vec![];
    for s in &sent {
        let user = devices
            .iter()
            .find(|d| d.name == s.device)
            .expect("device")
            .user;
        let present = s
            .ops
            .iter()
            .filter(|o| stored[user].contains_key(&o.id))
            .count();
        match &s.outcome {
            Outcome::Acked { .. } => {
                for o in &s.ops {
                    assert_eq!(
                        stored[user].get(&o.id),
                        Some(&o.title),
                        "acknowledged {} of {} is not stored",
                        o.op,
                        s.device
                    );
                }
            }
            Outcome::Unavailable { .. } => {
                if present != 0 && present != s.ops.len() {
                    half_done += 1;
                }
                if present == s.ops.len() {
                    unanswered_but_stored.push(s.clone());
                }
            }
        }
    }
    assert_eq!(half_done, 0, "batches applied in part");

    // The refused batches again, as an outbox would send them: stored ones
    // are duplicates, the others apply now.
    let failed: Vec<&Sent> = sent
        .iter()
        .filter(|s| !matches!(s.outcome, Outcome::Acked { .. }))
        .collect();
    for s in &failed {
        let dev = devices
            .iter_mut()
            .find(|d| d.name == s.device)
            .expect("device");
        let was_stored = stored[dev.user].contains_key(&s.ops[0].id);
        let out = dev.push(&s.ops, CLIENT_TIMEOUT).await;
        let expected = if was_stored { s.ops.len() } else { 0 };
        assert_eq!(
            out,
            Outcome::Acked {
                duplicates: expected
            },
            "retry of a refused batch of {}",
            s.device
        );
    }

    // (d): a push through B pokes the stream held on A.
    while events.try_recv().is_ok() {}
    let b0 = devices.iter_mut().find(|d| d.name == "b0").expect("b0");
    let c = tidesync_client::Client::new(&b0.base)
        .expect("client")
        .with_token(&b0.token);
    let caught_up = pull_everything(&c, "b0", b0.cursor.as_deref(), None, "b0 catches up").await;
    b0.view.extend(titles(&caught_up.by_id));
    b0.cursor = Some(caught_up.cursor);
    let poke_sent = Instant::now();
    let last = traffic::Op {
        op: "b0-after".into(),
        id: new_id(),
        title: "after the partition".into(),
    };
    assert_eq!(
        b0.push(std::slice::from_ref(&last), CLIENT_TIMEOUT).await,
        Outcome::Acked { duplicates: 0 }
    );
    let want = b0.cursor.clone().expect("a cursor");
    let poke = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(c) = events.recv().await {
            if c == want {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        poke,
        Ok(true),
        "the stream on A did not announce {want} (a push through B) after the link returned"
    );
    let poke_latency = poke_sent.elapsed();

    // (e): every device, from its own cursor, ends with the same records.
    for d in &mut devices {
        let c = tidesync_client::Client::new(&d.base)
            .expect("client")
            .with_token(&d.token);
        let rest = pull_everything(&c, &d.name, d.cursor.as_deref(), None, "converge").await;
        d.view.extend(titles(&rest.by_id));
    }
    // Now with the retried batches and the last push.
    let stored = audit(&bases, &tokens).await;
    for s in &failed {
        for o in &s.ops {
            let user = devices
                .iter()
                .find(|d| d.name == s.device)
                .expect("device")
                .user;
            assert_eq!(stored[user].get(&o.id), Some(&o.title), "retried {}", o.op);
        }
    }
    assert_eq!(stored[0].get(&last.id), Some(&last.title));
    for d in &devices {
        let want = &stored[d.user];
        let missing: Vec<&String> = want
            .iter()
            .filter(|(id, t)| d.view.get(*id) != Some(t))
            .map(|(_, t)| t)
            .collect();
        let extra: Vec<&String> = d
            .view
            .iter()
            .filter(|(id, _)| !want.contains_key(*id))
            .map(|(_, t)| t)
            .collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "device {} did not converge: missing {missing:?}, not stored {extra:?}",
            d.name
        );
    }

    report(&sent, recovered, poke_latency, unanswered_but_stored.len());
    reader.abort();
    drop(procs);
    drop(forwarders);
    drop(net);
    drop(db);
}

/// Each user's records (id → title), pulled from scratch through each
/// instance; both must serve the same.
async fn audit(bases: &[String], tokens: &[String]) -> Vec<BTreeMap<String, String>> {
    let mut stored = vec![];
    for (u, token) in tokens.iter().enumerate() {
        let mut views = vec![];
        for (host, base) in bases.iter().enumerate() {
            let c = tidesync_client::Client::new(base)
                .expect("client")
                .with_token(token);
            let all = pull_everything(&c, &format!("audit{host}"), None, None, "audit").await;
            views.push(titles(&all.by_id));
        }
        assert_eq!(
            views[A], views[B],
            "user {u}: A and B serve the same records"
        );
        stored.push(views.swap_remove(0));
    }
    stored
}

fn titles(by_id: &BTreeMap<String, serde_json::Value>) -> BTreeMap<String, String> {
    by_id
        .iter()
        .map(|(id, r)| {
            (
                id.clone(),
                r["title"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn run() -> Result<(), Failed> {
    tidesync_testkit::harness::run_bounded(BOUND, partition)
}

fn main() {
    let args = Arguments::from_args();
    let missing = if postgres_url().is_none() {
        Some(format!("{PG_ENV} is not set"))
    } else if args.list {
        None
    } else {
        net::unsupported()
    };
    if let (Some(why), false) = (&missing, args.list) {
        eprintln!("NOTE: partition test skipped: {why}");
    }
    let trial = Trial::test("partition::database_link_cut_and_restored", run)
        .with_ignored_flag(missing.is_some());
    libtest_mimic::run(&args, vec![trial]).exit()
}
