//! The SQLite push path: one thread that owns the database's write
//! connection (rusqlite) and commits pushes in groups.
//!
//! Why: SQLite has one writer anyway, and through sqlx each statement is a
//! round trip to sqlx's worker thread; a push runs about nine, all serialised
//! on the writer. Here the whole push runs on this thread with direct calls,
//! and pushes that queue up while one commits share the next transaction
//! (each in a SAVEPOINT, so one failing push rolls back alone) and its fsync.
//! Every push is answered only after the COMMIT that makes it durable.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::pin::pin;
use std::sync::mpsc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params_from_iter, types::Value as Sql, Connection, OpenFlags};
use tidesync_protocol::entity::EntityType;
use tidesync_protocol::merge;
use tidesync_protocol::time::Millis;
use tidesync_protocol::UserId;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::sync::{
    self, LogEntry, PulledRecord, PushInput, StoredRecord, SyncOutput, SyncRead, SyncTx,
};
use crate::StoreError;

/// Most pushes sharing one transaction.
const GROUP: usize = 64;
/// Variables per statement and rows per multi-row INSERT.
const CHUNK: usize = 500;
const RECORD_ROWS: usize = 200;
const LOG_ROWS: usize = 250;

struct Job {
    user: UserId,
    input: PushInput,
    reply: oneshot::Sender<Result<SyncOutput, StoreError>>,
}

pub struct Writer {
    jobs: std::sync::Mutex<Option<mpsc::Sender<Job>>>,
    thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

fn driver(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode::*;
    let transient = matches!(
        e.sqlite_error_code(),
        Some(DatabaseBusy | DatabaseLocked | ReadOnly | SystemIoFailure | DiskFull | CannotOpen)
    );
    StoreError::Driver {
        transient,
        message: e.to_string(),
    }
}

impl Writer {
    pub fn open(file: &Path, busy_timeout: Duration) -> Result<Writer, StoreError> {
        let conn = Connection::open_with_flags(
            file,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(driver)?;
        conn.busy_timeout(busy_timeout).map_err(driver)?;
        // Same settings as the sqlx pools: WAL, a commit on disk before it is
        // acknowledged, foreign keys on.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
        )
        .map_err(driver)?;
        conn.set_prepared_statement_cache_capacity(128);
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(conn, rx))
            .map_err(|e| StoreError::Config(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer {
            jobs: std::sync::Mutex::new(Some(tx)),
            thread: std::sync::Mutex::new(Some(thread)),
        })
    }

    pub async fn push(&self, user: UserId, input: PushInput) -> Result<SyncOutput, StoreError> {
        let (reply, answer) = oneshot::channel();
        let sent = self
            .jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|jobs| jobs.send(Job { user, input, reply }).is_ok())
            .unwrap_or(false);
        if !sent {
            return Err(StoreError::Driver {
                transient: true,
                message: "the writer is closed".into(),
            });
        }
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Driver {
                transient: true,
                message: "the writer stopped".into(),
            })
        })
    }

    /// Finishes the queued pushes and closes the connection.
    pub async fn close(&self) {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).take();
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

fn run(mut conn: Connection, jobs: mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < GROUP {
            match jobs.try_recv() {
                Ok(j) => group.push(j),
                Err(_) => break,
            }
        }
        commit_group(&mut conn, group);
    }
}

fn commit_group(conn: &mut Connection, group: Vec<Job>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let e = driver(e);
        for job in group {
            let _ = job.reply.send(Err(e.clone_shallow()));
        }
        return;
    }
    let mut answers = Vec::with_capacity(group.len());
    for job in group {
        let result = (|| {
            conn.execute_batch("SAVEPOINT push").map_err(driver)?;
            let out = block_on(sync::push(&mut Tx { conn }, job.user, job.input));
            let end = if out.is_ok() {
                "RELEASE push"
            } else {
                "ROLLBACK TO push; RELEASE push"
            };
            conn.execute_batch(end).map_err(driver)?;
            out
        })();
        answers.push((job.reply, result));
    }
    match conn.execute_batch("COMMIT") {
        Ok(()) => {
            for (reply, result) in answers {
                let _ = reply.send(result);
            }
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            let e = driver(e);
            for (reply, _) in answers {
                let _ = reply.send(Err(e.clone_shallow()));
            }
        }
    }
}

/// Runs a future whose awaits all complete at once (every statement here is
/// a direct call), on this thread.
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(v) => v,
        // Unreachable: nothing in the push path waits on anything external.
        Poll::Pending => panic!("the SQLite push path must not suspend"),
    }
}

struct Tx<'c> {
    conn: &'c mut Connection,
}

/// `n` anonymous placeholders. Not `?NNN`: SQLite resolves each numbered
/// name by a linear scan, which made binding a multi-row statement through
/// sqlx quadratic (a third of push time, measured with perf).
fn marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

fn uuid_of(s: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(s).map_err(|_| StoreError::Corrupt(format!("bad uuid {s:?}")))
}

fn entity_of(kind: &str) -> Result<EntityType, StoreError> {
    EntityType::parse(kind).ok_or_else(|| StoreError::Corrupt(format!("record kind {kind:?}")))
}

const STORED: &str = "id, kind, version, data, clocks, server_time";

fn stored(row: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, i64, String, String, i64)> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    ))
}

fn to_stored(r: (String, String, i64, String, String, i64)) -> Result<StoredRecord, StoreError> {
    Ok(StoredRecord {
        id: uuid_of(&r.0)?,
        entity: entity_of(&r.1)?,
        version: r.2,
        state: merge::decode_state(&r.3, &r.4).map_err(StoreError::Corrupt)?,
        server_time: r.5,
    })
}

impl Tx<'_> {
    fn version(&mut self, user: UserId) -> Result<Option<i64>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT sync_version FROM users WHERE id = ?")
            .map_err(driver)?;
        let mut rows = st.query([user.to_string()]).map_err(driver)?;
        match rows.next().map_err(driver)? {
            Some(r) => Ok(Some(r.get(0).map_err(driver)?)),
            None => Ok(None),
        }
    }

    fn stored_query(&mut self, sql: &str, args: Vec<Sql>) -> Result<Vec<StoredRecord>, StoreError> {
        let mut st = self.conn.prepare_cached(sql).map_err(driver)?;
        let rows = st
            .query_map(params_from_iter(args), stored)
            .map_err(driver)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(to_stored(r.map_err(driver)?)?);
        }
        Ok(out)
    }
}

#[async_trait]
impl SyncRead for Tx<'_> {
    async fn user_version(&mut self, user: UserId) -> Result<Option<i64>, StoreError> {
        self.version(user)
    }

    async fn first_version_since(
        &mut self,
        user: UserId,
        since: Millis,
    ) -> Result<Option<i64>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT MIN(version) FROM records WHERE user_id = ? AND server_time >= ?",
            )
            .map_err(driver)?;
        st.query_row(rusqlite::params![user.to_string(), since], |r| r.get(0))
            .map_err(driver)
    }

    async fn changes(
        &mut self,
        user: UserId,
        after: i64,
        upto: i64,
        limit: usize,
        live_only: bool,
    ) -> Result<Vec<PulledRecord>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, kind, version, data, created_at, updated_at, deleted_at, device_id
                 FROM records
                 WHERE user_id = ? AND version > ? AND version <= ? AND (? = 0 OR deleted_at IS NULL)
                 ORDER BY version LIMIT ?",
            )
            .map_err(driver)?;
        let rows = st
            .query_map(
                rusqlite::params![
                    user.to_string(),
                    after,
                    upto,
                    live_only as i64,
                    limit as i64
                ],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, i64>(5)?,
                        r.get::<_, Option<i64>>(6)?,
                        r.get::<_, String>(7)?,
                    ))
                },
            )
            .map_err(driver)?;
        let mut out = Vec::new();
        for r in rows {
            let r = r.map_err(driver)?;
            out.push(PulledRecord {
                id: uuid_of(&r.0)?,
                entity: entity_of(&r.1)?,
                version: r.2,
                data: r.3,
                created_at: r.4,
                updated_at: r.5,
                deleted_at: r.6,
                device_id: r.7,
            });
        }
        Ok(out)
    }
}

#[async_trait]
impl SyncTx for Tx<'_> {
    async fn lock_user(&mut self, user: UserId) -> Result<Option<i64>, StoreError> {
        // The lock is the IMMEDIATE transaction this thread holds.
        self.version(user)
    }

    async fn load_acks(
        &mut self,
        user: UserId,
        op_ids: &[&str],
    ) -> Result<HashMap<String, String>, StoreError> {
        let mut out = HashMap::new();
        for chunk in op_ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT operation_id, ack FROM sync_log WHERE user_id = ? AND operation_id IN ({})",
                marks(chunk.len())
            );
            let mut args: Vec<Sql> = vec![Sql::Text(user.to_string())];
            args.extend(chunk.iter().map(|s| Sql::Text((*s).to_owned())));
            let mut st = self.conn.prepare_cached(&sql).map_err(driver)?;
            let rows = st
                .query_map(params_from_iter(args), |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(driver)?;
            for r in rows {
                let (k, v) = r.map_err(driver)?;
                out.insert(k, v);
            }
        }
        Ok(out)
    }

    async fn load_records(
        &mut self,
        user: UserId,
        ids: &[Uuid],
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT {STORED} FROM records WHERE user_id = ? AND id IN ({})",
                marks(chunk.len())
            );
            let mut args: Vec<Sql> = vec![Sql::Text(user.to_string())];
            args.extend(
                chunk
                    .iter()
                    .map(|id| Sql::Text(id.hyphenated().to_string())),
            );
            out.extend(self.stored_query(&sql, args)?);
        }
        Ok(out)
    }

    async fn live_children(
        &mut self,
        user: UserId,
        parent: Uuid,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let p = parent.hyphenated().to_string();
        self.stored_query(
            &format!(
                "SELECT {STORED} FROM records
                 WHERE user_id = ? AND (space_id = ? OR category_id = ?) AND deleted_at IS NULL"
            ),
            vec![
                Sql::Text(user.to_string()),
                Sql::Text(p.clone()),
                Sql::Text(p),
            ],
        )
    }

    async fn save_records(
        &mut self,
        user: UserId,
        recs: &[&StoredRecord],
    ) -> Result<(), StoreError> {
        let opt_text = |v: Option<String>| v.map(Sql::Text).unwrap_or(Sql::Null);
        for chunk in recs.chunks(RECORD_ROWS) {
            let rows = vec![format!("({})", marks(13)); chunk.len()].join(", ");
            let sql = format!(
                "INSERT INTO records (user_id, id, kind, version, space_id, category_id, data, clocks,
                                      created_at, updated_at, deleted_at, device_id, server_time)
                 VALUES {rows}
                 ON CONFLICT (user_id, id) DO UPDATE SET
                    kind = excluded.kind, version = excluded.version, space_id = excluded.space_id,
                    category_id = excluded.category_id, data = excluded.data, clocks = excluded.clocks,
                    created_at = excluded.created_at, updated_at = excluded.updated_at,
                    deleted_at = excluded.deleted_at, device_id = excluded.device_id,
                    server_time = excluded.server_time"
            );
            let mut args: Vec<Sql> = Vec::with_capacity(chunk.len() * 13);
            for rec in chunk {
                let last = rec.state.last();
                args.extend([
                    Sql::Text(user.to_string()),
                    Sql::Text(rec.id.hyphenated().to_string()),
                    Sql::Text(rec.entity.as_str().to_owned()),
                    Sql::Integer(rec.version),
                    opt_text(rec.space_id().map(|u| u.hyphenated().to_string())),
                    opt_text(rec.category_id().map(|u| u.hyphenated().to_string())),
                    Sql::Text(rec.data_json()),
                    Sql::Text(merge::encode_clocks(&rec.state)),
                    Sql::Integer(rec.state.created_at()),
                    Sql::Integer(last.ts),
                    rec.state
                        .deleted_at()
                        .map(Sql::Integer)
                        .unwrap_or(Sql::Null),
                    Sql::Text(last.device.clone()),
                    Sql::Integer(rec.server_time),
                ]);
            }
            self.conn
                .prepare_cached(&sql)
                .map_err(driver)?
                .execute(params_from_iter(args))
                .map_err(driver)?;
        }
        Ok(())
    }

    async fn insert_logs(
        &mut self,
        user: UserId,
        entries: &[LogEntry<'_>],
    ) -> Result<(), StoreError> {
        let opt = |v: Option<&str>| v.map(|s| Sql::Text(s.to_owned())).unwrap_or(Sql::Null);
        for chunk in entries.chunks(LOG_ROWS) {
            let rows = vec![format!("({})", marks(10)); chunk.len()].join(", ");
            let sql = format!(
                "INSERT INTO sync_log (user_id, operation_id, device_id, entity_type, entity_id,
                                       operation, changes, ack, client_time, server_time)
                 VALUES {rows}"
            );
            let mut args: Vec<Sql> = Vec::with_capacity(chunk.len() * 10);
            for e in chunk {
                args.extend([
                    Sql::Text(user.to_string()),
                    Sql::Text(e.operation_id.to_owned()),
                    Sql::Text(e.device_id.to_owned()),
                    opt(e.entity_type),
                    opt(e.entity_id.as_deref()),
                    opt(e.operation),
                    Sql::Text(e.changes.clone()),
                    Sql::Text(e.ack.clone()),
                    e.client_time.map(Sql::Integer).unwrap_or(Sql::Null),
                    Sql::Integer(e.server_time),
                ]);
            }
            self.conn
                .prepare_cached(&sql)
                .map_err(driver)?
                .execute(params_from_iter(args))
                .map_err(driver)?;
        }
        Ok(())
    }

    async fn set_user_version(&mut self, user: UserId, version: i64) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE users SET sync_version = ? WHERE id = ?")
            .map_err(driver)?
            .execute(rusqlite::params![version, user.to_string()])
            .map_err(driver)?;
        Ok(())
    }
}
