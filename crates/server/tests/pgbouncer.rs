//! tidesync behind a real PgBouncer in transaction mode: each test starts
//! `/usr/sbin/pgbouncer` on a free port (transaction pooling, fewer server
//! connections than the instance's pool, so that every client connection is
//! served by several server connections in turn), creates a fresh database,
//! and runs the server in this process with `DATABASE_URL` through
//! PgBouncer, `LISTEN_DATABASE_URL` direct and `DB_NAMED_STATEMENTS=false`
//! (Debian's PgBouncer 1.18 has no `max_prepared_statements`).
//!
//! Without `TIDESYNC_TEST_POSTGRES_URL` or without the pgbouncer binary the
//! tests are reported ignored, with one note.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::Duration;

use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::{json, Value};
use sqlx::postgres::PgConnectOptions;
use tidesync_testkit::*;

const PGBOUNCER: &str = "/usr/sbin/pgbouncer";
/// Server connections PgBouncer keeps per database: fewer than the pool
/// of one instance, so that server connections are shared between clients.
const SERVER_CONNECTIONS: u32 = 3;
const BOUND: Duration = Duration::from_secs(120);

type TestFn = fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;

/// A PgBouncer process (killed, by its PID, when dropped) and its files.
struct Bouncer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Bouncer {
    /// PgBouncer in front of the server of `admin`, in transaction mode.
    async fn start(admin: &str) -> Bouncer {
        let pg = PgConnectOptions::from_str(admin).expect("a PostgreSQL URL");
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let ini = format!(
            "[databases]\n\
             * = host={host} port={pgport}\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = trust\n\
             auth_file = {dir}/userlist.txt\n\
             pool_mode = transaction\n\
             default_pool_size = {SERVER_CONNECTIONS}\n\
             max_client_conn = 500\n\
             ignore_startup_parameters = extra_float_digits\n",
            host = pg.get_host(),
            pgport = pg.get_port(),
            dir = dir.path().display(),
        );
        std::fs::write(dir.path().join("pgbouncer.ini"), ini).expect("write ini");
        // trust: PgBouncer checks only that the user is listed.
        std::fs::write(
            dir.path().join("userlist.txt"),
            format!("\"{}\" \"\"\n", pg.get_username()),
        )
        .expect("write userlist");
        let mut cmd = Command::new(PGBOUNCER);
        // PgBouncer refuses to run as root; it reads its files before
        // switching user.
        if is_root() {
            cmd.args([
                "-u",
                if user_exists("postgres") {
                    "postgres"
                } else {
                    "nobody"
                },
            ]);
        }
        // Its log goes to a file: a line per connection would drown the
        // test output.
        let log = std::fs::File::create(dir.path().join("pgbouncer.log")).expect("log file");
        let mut child = cmd
            .arg(dir.path().join("pgbouncer.ini"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {PGBOUNCER}: {e}"));
        for _ in 0..200 {
            if let Some(status) = child.try_wait().expect("pgbouncer status") {
                panic!("pgbouncer exited at start: {status}");
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Bouncer {
                    child,
                    port,
                    _dir: dir,
                };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        panic!("pgbouncer did not listen on {port} within 10 s");
    }

    /// `url` (a database on the PostgreSQL server) through this PgBouncer.
    fn url(&self, url: &str) -> String {
        let pg = PgConnectOptions::from_str(url).expect("a PostgreSQL URL");
        format!(
            "postgres://{}@127.0.0.1:{}/{}",
            pg.get_username(),
            self.port,
            pg.get_database().expect("a database name")
        )
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

fn user_exists(name: &str) -> bool {
    Command::new("id")
        .arg(name)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A fresh database, PgBouncer in front of it, and the server's settings
/// for it: pool through PgBouncer, LISTEN and migrations direct.
struct Setup {
    db: TestDb,
    bouncer: Bouncer,
}

impl Setup {
    async fn new() -> Setup {
        let admin = postgres_url().expect("checked by main");
        let db = TestDb::postgres(&admin, "tidesync_pgb")
            .await
            .unwrap_or_else(|e| panic!("{PG_ENV} is set but {e}"));
        let bouncer = Bouncer::start(&admin).await;
        Setup { db, bouncer }
    }

    async fn instance(&self) -> TestApp {
        let mut args = test_args(&self.db);
        args.database.database_url = self.bouncer.url(&self.db.url);
        args.database.listen_database_url = Some(self.db.url.clone());
        args.database.db_named_statements = false;
        // More client connections than PgBouncer has server connections.
        args.database.db_pool_size = 8;
        spawn_with(args).await
    }
}

fn item(op: &str, id: &str, operation: &str, data: Value, secs: i64, device: &str) -> Value {
    change(op, id, "item", operation, data, &at(secs), device)
}

fn acks(data: &Value) -> Vec<Value> {
    data["acknowledged"].as_array().expect("acks").clone()
}

/// Register and login, creates, updates and deletes from device A; device
/// B receives exactly them; a retried batch changes nothing.
async fn sync_through_pgbouncer() {
    let s = Setup::new().await;
    let app = s.instance().await;
    app.register("bounce@example.com").await;
    let login = app
        .api
        .login("bounce@example.com", PASSWORD)
        .await
        .expect("login through PgBouncer");
    let token = login.token;
    let b_cursor = app.sync(&token, "B", Value::Null, vec![]).await["syncTimestamp"].clone();

    let (x, y, z) = (new_id(), new_id(), new_id());
    let first = vec![
        item("c1", &x, "create", json!({"title": "x"}), 1, "A"),
        item("c2", &y, "create", json!({"title": "y"}), 1, "A"),
        item("c3", &z, "create", json!({"title": "z"}), 1, "A"),
    ];
    let pushed = app.sync(&token, "A", Value::Null, first.clone()).await;
    assert!(acks(&pushed).iter().all(|a| a["success"] == json!(true)));
    let second = vec![
        item("u1", &x, "update", json!({"title": "x2"}), 2, "A"),
        item("d1", &y, "delete", Value::Null, 2, "A"),
    ];
    let pushed = app
        .sync(&token, "A", pushed["syncTimestamp"].clone(), second)
        .await;
    assert!(acks(&pushed).iter().all(|a| a["success"] == json!(true)));

    let pulled = app.sync(&token, "B", b_cursor, vec![]).await;
    let got = records_by_id(&pulled["serverUpdates"]);
    assert_eq!(
        got.keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        [x.clone(), y.clone(), z.clone()].into_iter().collect(),
        "B receives exactly A's records"
    );
    assert_eq!(got[&x]["title"], json!("x2"));
    assert!(!got[&y]["deletedAt"].is_null(), "the delete reached B");
    assert_eq!(got[&z]["title"], json!("z"));
    assert_eq!(pulled["syncTimestamp"], pushed["syncTimestamp"]);

    // The first batch again: stored answers, no effect.
    let retry = app.sync(&token, "A", Value::Null, first).await;
    let retry_acks = acks(&retry);
    assert_eq!(retry_acks.len(), 3);
    assert!(
        retry_acks.iter().all(|a| a["duplicate"] == json!(true)),
        "{retry_acks:?}"
    );
    let after = app
        .sync(&token, "B", pulled["syncTimestamp"].clone(), vec![])
        .await;
    assert_eq!(records_by_id(&after["serverUpdates"]).len(), 0);
    assert_eq!(after["syncTimestamp"], pulled["syncTimestamp"]);
    app.stop().await;
}

/// A push through one instance pokes a stream held by another: the notice
/// goes out through PgBouncer, and arrives on the other's direct LISTEN.
async fn pokes_reach_a_stream_on_another_instance() {
    let s = Setup::new().await;
    let (one, two) = (s.instance().await, s.instance().await);
    let token = one.register("poke@example.com").await;
    let mut stream = two
        .client(&token)
        .stream("B")
        .open()
        .await
        .expect("open the stream on the second instance");
    let mut cursor = Value::Null;
    for n in 0..3 {
        let c = item(
            &format!("p{n}"),
            &new_id(),
            "create",
            json!({"title": format!("p{n}")}),
            n,
            "A",
        );
        let pushed = one.sync(&token, "A", cursor, vec![c]).await;
        assert_eq!(acks(&pushed)[0]["success"], json!(true), "{pushed}");
        cursor = pushed["syncTimestamp"].clone();
        let ev = tokio::time::timeout(Duration::from_secs(20), stream.next_event())
            .await
            .expect("a poke within 20 s")
            .expect("the stream is open")
            .expect("an event");
        assert_eq!(json!(ev.sync_timestamp), cursor, "the poke's cursor");
    }
    drop(stream);
    one.stop().await;
    two.stop().await;
}

/// Devices on two instances push at once (their own items, and edits of one
/// shared item with distinct times); then every device holds the same
/// records, and the shared item has the latest edit. The edits are meant as
/// concurrent, so each push is sent from no cursor: from a cursor that held
/// another device's later edit, a write would come after it whatever its
/// time (SYNC_PROTOCOL §5), and the winner would depend on the interleaving.
async fn concurrent_pushes_converge() {
    const DEVICES: usize = 6;
    const ROUNDS: i64 = 8;
    let s = Setup::new().await;
    let apps = [s.instance().await, s.instance().await];
    let token = apps[0].register("many@example.com").await;
    let shared = new_id();
    apps[0]
        .sync(
            &token,
            "seed",
            Value::Null,
            vec![item(
                "seed",
                &shared,
                "create",
                json!({"title": "0"}),
                0,
                "seed",
            )],
        )
        .await;
    let mut tasks = Vec::new();
    for d in 0..DEVICES {
        let (client, shared) = (apps[d % 2].client(&token), shared.clone());
        tasks.push(tokio::spawn(async move {
            let device = format!("dev{d}");
            for r in 0..ROUNDS {
                let t = 10 + r * DEVICES as i64 + d as i64;
                let body = tidesync_client::SyncBody {
                    device_id: device.clone(),
                    last_sync_timestamp: None,
                    changes: vec![
                        typed_change(
                            &format!("{device}-c{r}"),
                            &new_id(),
                            tidesync_client::EntityType::Item,
                            tidesync_client::OpKind::Create,
                            json!({"title": format!("{device}/{r}")}),
                            &at(t),
                            &device,
                        ),
                        typed_change(
                            &format!("{device}-u{r}"),
                            &shared,
                            tidesync_client::EntityType::Item,
                            tidesync_client::OpKind::Update,
                            json!({"title": format!("t{t}")}),
                            &at(t),
                            &device,
                        ),
                    ],
                    ..Default::default()
                };
                let out = client.sync(&body).await.expect("push through PgBouncer");
                assert!(out.acknowledged.iter().all(|a| a.success));
            }
        }));
    }
    for t in tasks {
        t.await.expect("device task");
    }
    let mut views: Vec<BTreeMap<String, Value>> = Vec::new();
    for (d, app) in apps.iter().enumerate() {
        let all = pull_everything(
            &app.client(&token),
            &format!("reader{d}"),
            None,
            None,
            "pull",
        )
        .await;
        views.push(all.by_id);
    }
    assert_eq!(views[0], views[1], "both instances serve the same records");
    assert_eq!(views[0].len(), 1 + DEVICES * ROUNDS as usize);
    let latest = 10 + (ROUNDS - 1) * DEVICES as i64 + DEVICES as i64 - 1;
    assert_eq!(views[0][&shared]["title"], json!(format!("t{latest}")));
    for app in apps {
        app.stop().await;
    }
}

fn run(f: TestFn) -> Result<(), Failed> {
    tidesync_testkit::harness::run_bounded(BOUND, f)
}

fn main() {
    let args = Arguments::from_args();
    let missing = if postgres_url().is_none() {
        Some(format!("{PG_ENV} is not set"))
    } else if !Path::new(PGBOUNCER).exists() {
        Some(format!("{PGBOUNCER} not found (apt-get install pgbouncer)"))
    } else {
        None
    };
    if let Some(why) = &missing {
        if !args.list {
            eprintln!("NOTE: PgBouncer tests skipped: {why}");
        }
    }
    let tests: [(&str, TestFn); 3] = [
        ("pgbouncer::sync_through_pgbouncer", || {
            Box::pin(sync_through_pgbouncer())
        }),
        (
            "pgbouncer::pokes_reach_a_stream_on_another_instance",
            || Box::pin(pokes_reach_a_stream_on_another_instance()),
        ),
        ("pgbouncer::concurrent_pushes_converge", || {
            Box::pin(concurrent_pushes_converge())
        }),
    ];
    let trials = tests
        .into_iter()
        .map(|(name, f)| Trial::test(name, move || run(f)).with_ignored_flag(missing.is_some()))
        .collect();
    libtest_mimic::run(&args, trials).exit()
}
