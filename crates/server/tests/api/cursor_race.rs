//! `cursor_is_exact_under_concurrent_writers` (PostgreSQL only: SQLite
//! commits one transaction at a time, so the race it looks for cannot happen
//! there): writers race a paging reader; the reader must end with exactly
//! the server's state, having seen no record twice, and the run must show
//! that pushes overlapped and that pulls overlapped pushes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use tidesync_client::{Client, EntityType, OpKind as Op, SyncBody};
use tidesync_testkit::*;

backend_tests! {
    postgres: [cursor_is_exact_under_concurrent_writers],
}

/// Enough writers of one user that their pushes are always in flight
/// together (on PostgreSQL each waits for the user's row lock inside its
/// open transaction while another commits).
const WRITERS: usize = 16;
const BATCHES: usize = 30;
const READER_LIMIT: usize = 7;
const MAX_READER_PULLS: usize = 50_000;
/// Below these the run did not exercise what it is for.
const MIN_OVERLAPPING_WRITES: usize = 100;
const MIN_PULLS_DURING_WRITES: usize = 30;

/// What the writers and the reader did at the same time, counted on the
/// client side: a push is in flight from its send to its answer.
#[derive(Default)]
struct Overlap {
    writes_in_flight: AtomicUsize,
    /// Pushes sent while another push of the user was in flight.
    overlapping_writes: AtomicUsize,
    most_writes_in_flight: AtomicUsize,
    /// Pulls sent while a push was in flight.
    pulls_during_writes: AtomicUsize,
    /// Pulls answered while a push was still in flight.
    pulls_answered_during_writes: AtomicUsize,
}

impl Overlap {
    fn write_starts(&self) {
        let before = self.writes_in_flight.fetch_add(1, Ordering::SeqCst);
        if before > 0 {
            self.overlapping_writes.fetch_add(1, Ordering::SeqCst);
        }
        self.most_writes_in_flight
            .fetch_max(before + 1, Ordering::SeqCst);
    }

    fn write_ends(&self) {
        self.writes_in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    fn writing(&self) -> bool {
        self.writes_in_flight.load(Ordering::SeqCst) > 0
    }

    fn get(n: &AtomicUsize) -> usize {
        n.load(Ordering::SeqCst)
    }
}

/// One writer: `BATCHES` pushes of 1–5 creates and updates of its own items,
/// as fast as it can. Returns the final (title, order) of each of its items.
async fn writer(
    w: usize,
    client: Client,
    overlap: Arc<Overlap>,
) -> BTreeMap<String, (String, i64)> {
    let device = format!("writer-{w}");
    let mut rng = Rng::new(0xC0_FFEE + w as u64);
    let mut last: BTreeMap<String, (String, i64)> = BTreeMap::new();
    let mut ids: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut seq = 0i64;
    for _ in 0..BATCHES {
        let mut changes = Vec::new();
        for _ in 0..rng.between(1, 5) {
            seq += 1;
            let create = ids.is_empty() || rng.chance(40);
            let id = if create {
                let id = rng.uuid();
                ids.push(id.clone());
                id
            } else {
                ids[rng.below(ids.len())].clone()
            };
            let title = format!("{device} {id} #{seq}");
            changes.push(typed_change(
                &format!("{device}-op{seq}"),
                &id,
                EntityType::Item,
                if create { Op::Create } else { Op::Update },
                json!({"title": title, "order": seq}),
                // Strictly increasing per writer: every write wins.
                &at(seq),
                &device,
            ));
            last.insert(id, (title, seq));
        }
        let body = SyncBody {
            device_id: device.clone(),
            last_sync_timestamp: cursor.clone(),
            changes,
            ..SyncBody::default()
        };
        overlap.write_starts();
        let answer = client.sync(&body).await;
        overlap.write_ends();
        let answer = answer.unwrap_or_else(|e| panic!("{device}: push: {e}"));
        for a in &answer.acknowledged {
            assert!(
                a.success && !a.conflict && !a.duplicate,
                "{device}: every write of its own items applies cleanly: {a:?}"
            );
        }
        cursor = Some(answer.sync_timestamp);
    }
    last
}

/// What the reader saw.
struct ReaderLog {
    map: BTreeMap<String, Value>,
    /// Records returned again although identical to the reader's copy.
    duplicates: Vec<Value>,
    pulls: usize,
}

/// Pulls with a small limit, keeping the cursor, until the writers are done
/// and a pull that started after that reached the end.
async fn reader(client: Client, done: Arc<AtomicUsize>, overlap: Arc<Overlap>) -> ReaderLog {
    let mut log = ReaderLog {
        map: BTreeMap::new(),
        duplicates: Vec::new(),
        pulls: 0,
    };
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_READER_PULLS {
        // Read before the pull: if every writer had finished (its last
        // response received, so committed), this pull must reach all of it.
        let writers_done = done.load(Ordering::SeqCst) == WRITERS;
        if overlap.writing() {
            overlap.pulls_during_writes.fetch_add(1, Ordering::SeqCst);
        }
        let page = client
            .pull("reader", cursor.as_deref(), Some(READER_LIMIT))
            .await
            .unwrap_or_else(|e| panic!("reader: pull from {cursor:?}: {e}"));
        if overlap.writing() {
            overlap
                .pulls_answered_during_writes
                .fetch_add(1, Ordering::SeqCst);
        }
        log.pulls += 1;
        for rec in records(&page.server_updates) {
            let id = rec["id"].as_str().expect("id").to_owned();
            if log.map.get(&id) == Some(&rec) {
                log.duplicates.push(rec.clone());
            }
            log.map.insert(id, rec);
        }
        cursor = Some(page.sync_timestamp);
        if writers_done && !page.has_more {
            return log;
        }
    }
    panic!("reader: not at the end after {MAX_READER_PULLS} pulls");
}

/// Writers push while a reader pulls with its cursor the whole time; the
/// reader's final map must be exactly the server's state, and no pull may
/// return a record the reader already had in that very version.
///
/// This is what catches the late-commit bug of cursors taken from a
/// BIGSERIAL sequence or a clock: a writer obtains its number (or timestamp)
/// inside its transaction but commits later; a reader that pulls in between
/// already sees a larger number committed by another writer, moves its
/// cursor past it, and the late row, committed afterwards with a smaller
/// number, is never returned to that reader again. The race needs one
/// user's transactions to overlap, which SQLite (one writer, commits in
/// turn) never allows: so this runs on PostgreSQL, with sixteen writers of
/// one user, and checks from the client side that pushes really were in
/// flight together and that pulls ran while pushes were in flight; a run
/// where they did not proves nothing and fails. A row skipped that way would
/// be missing (or stale) in the reader's final map. The duplicate count
/// catches the opposite mistake, a cursor that lags (e.g. `>=` instead of
/// `>`, or a page boundary that repeats).
async fn cursor_is_exact_under_concurrent_writers(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let client = app.user("cursor@example.com").await;
    let done = Arc::new(AtomicUsize::new(0));
    let overlap = Arc::new(Overlap::default());

    let reader_task = tokio::spawn(reader(client.clone(), done.clone(), overlap.clone()));
    let writer_tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (client, done, overlap) = (client.clone(), done.clone(), overlap.clone());
            tokio::spawn(async move {
                let last = writer(w, client, overlap).await;
                done.fetch_add(1, Ordering::SeqCst);
                last
            })
        })
        .collect();
    let mut expected: BTreeMap<String, (String, i64)> = BTreeMap::new();
    for t in writer_tasks {
        expected.extend(t.await.expect("writer task"));
    }
    let log = reader_task.await.expect("reader task");

    let server = pull_everything(&client, "observer", None, Some(1000), "final pull")
        .await
        .by_id;
    let context = format!(
        "{} records; {} pushes overlapped another (at most {} in flight at once); \
         the reader made {} pulls, {} sent and {} answered while a push was in flight",
        server.len(),
        Overlap::get(&overlap.overlapping_writes),
        Overlap::get(&overlap.most_writes_in_flight),
        log.pulls,
        Overlap::get(&overlap.pulls_during_writes),
        Overlap::get(&overlap.pulls_answered_during_writes),
    );
    eprintln!("sync_sim {db:?}: {context}");

    // The run exercised the race it is for.
    assert!(
        Overlap::get(&overlap.overlapping_writes) >= MIN_OVERLAPPING_WRITES,
        "{context}: pushes of one user did not overlap enough (want {MIN_OVERLAPPING_WRITES})"
    );
    assert!(
        Overlap::get(&overlap.pulls_during_writes) >= MIN_PULLS_DURING_WRITES
            && Overlap::get(&overlap.pulls_answered_during_writes) >= MIN_PULLS_DURING_WRITES,
        "{context}: too few pulls overlapped writes (want {MIN_PULLS_DURING_WRITES})"
    );

    // The server holds each writer's last write of each item.
    let server_values: BTreeMap<String, (String, i64)> = server
        .iter()
        .map(|(id, r)| {
            let title = r["title"].as_str().unwrap_or_default().to_owned();
            (id.clone(), (title, r["order"].as_i64().unwrap_or(-1)))
        })
        .collect();
    assert_eq!(
        server_values, expected,
        "{context}: server state vs the writers' last writes"
    );

    // The reader has exactly the server's state, every field.
    let missing: Vec<&String> = server
        .keys()
        .filter(|id| !log.map.contains_key(*id))
        .collect();
    let extra: Vec<&String> = log
        .map
        .keys()
        .filter(|id| !server.contains_key(*id))
        .collect();
    let stale: Vec<(&Value, &Value)> = server
        .iter()
        .filter_map(|(id, r)| {
            log.map
                .get(id)
                .filter(|mine| *mine != r)
                .map(|mine| (mine, r))
        })
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && stale.is_empty(),
        "{context}: the reader's copy differs from the server's state\n\
         never received: {missing:?}\nunknown to the server: {extra:?}\n\
         stale (reader, server): {stale:#?}"
    );
    assert_eq!(log.map, server, "{context}");
    assert!(
        log.duplicates.is_empty(),
        "{context}: records returned again unchanged: {:#?}",
        log.duplicates
    );
    app.stop().await;
}
