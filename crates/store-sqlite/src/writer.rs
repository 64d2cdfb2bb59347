//! The SQLite write path: one thread owns the database's one write
//! connection and runs jobs (pushes, account writes, migrations), committing
//! the jobs that queue up while one commits in one transaction, each after
//! the first in a SAVEPOINT of its own, so they share one fsync and one
//! failing job rolls back alone. Every job is answered only after the COMMIT that makes it
//! durable.
//!
//! Supervised, so it cannot wedge:
//! - a panic inside a job fails that job (`Internal`) and the writer goes on;
//!   a panic outside a job restarts the thread on a new connection;
//! - the queue is bounded by jobs and by bytes: when full, `Busy` at once;
//!   it is fair between users ([`queue`]): a group takes one job per user
//!   in turn, and stops at `GROUP_BYTES` of requests;
//! - a job whose caller is gone (request timed out or dropped) is not run
//!   when it reaches the writer, and is rolled back if its caller left while
//!   it ran;
//! - [`Writer::health`] says whether it is alive, how deep the queue is and
//!   how long the current job has been running.
//!
//! A job may return announcements ([`Writer::run_announcing`]): the writer
//! publishes them once the COMMIT that makes the job durable succeeded, and
//! before the job is answered, whether or not its caller is still there.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tidesync_protocol::UserId;
use tidesync_store::{Announcement, StoreError};
use tokio::sync::{broadcast, oneshot, OwnedSemaphorePermit, Semaphore};

use crate::open_connection;
use group::{commit_group, panic_message};
use queue::{Costly, FairQueue, Refused};

mod group;
mod queue;

/// Most jobs sharing one transaction.
const GROUP: usize = 64;
/// Most bytes of requests sharing one transaction (the first job is always
/// taken): a group of large pushes would otherwise hold the writer for all
/// of them, and every other user behind it.
const GROUP_BYTES: usize = 4 << 20;

/// Whose job it is: the queue takes one job per user in turn. `None`: the
/// server's own work (migrations, collection, tests).
type Key = Option<UserId>;

type Queue = FairQueue<Key, Box<dyn Job>>;
/// How long a caller is asked to wait when the queue is full.
const RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug)]
pub struct WriterConfig {
    /// Most jobs waiting for the writer.
    pub queue_depth: usize,
    /// Most bytes of requests waiting for the writer.
    pub queue_bytes: usize,
    pub busy_timeout: Duration,
}

/// One unit of work for the writer, with its reply.
trait Job: Send {
    /// The caller is gone: nobody waits for the answer.
    fn cancelled(&self) -> bool;
    /// Runs inside the group's transaction; false when it failed (its
    /// savepoint is rolled back).
    fn run(&mut self, conn: &Connection) -> bool;
    fn fail(&mut self, e: StoreError);
    /// The bytes it was queued with.
    fn cost(&self) -> usize;
    /// Answers the caller once the group's COMMIT is known.
    fn finish(self: Box<Self>, commit: Result<(), &StoreError>);
    fn span(&self) -> &tracing::Span;
}

/// What a job answers, and what it announces once committed.
pub type Announced<T> = (T, Vec<Announcement>);

type Work<T> = Box<dyn FnOnce(&Connection) -> Result<Announced<T>, StoreError> + Send>;

struct Task<T> {
    work: Option<Work<T>>,
    out: Option<Result<Announced<T>, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
    /// Where committed announcements go (the store's change notes).
    notes: broadcast::Sender<Announcement>,
    /// The request's span, so what the job logs carries its request id.
    span: tracing::Span,
    /// Its share of the byte budget, given back when the job is dropped.
    _bytes: OwnedSemaphorePermit,
    cost: usize,
}

impl<T: Send> Job for Task<T> {
    fn cancelled(&self) -> bool {
        self.reply.is_closed()
    }

    fn run(&mut self, conn: &Connection) -> bool {
        let work = self.work.take().expect("a job runs once");
        let out = work(conn);
        let ok = out.is_ok();
        self.out = Some(out);
        ok
    }

    fn fail(&mut self, e: StoreError) {
        self.out = Some(Err(e));
    }

    fn cost(&self) -> usize {
        self.cost
    }

    fn finish(self: Box<Self>, commit: Result<(), &StoreError>) {
        let answer = match (commit, self.out) {
            (_, Some(Err(e))) => Err(e),
            (Ok(()), Some(Ok((v, notes)))) => {
                // Durable now: announce it, before its caller hears back.
                for n in notes {
                    // No receiver (no server listening): nothing to tell.
                    let _ = self.notes.send(n);
                }
                Ok(v)
            }
            // The group failed (before this job ran, or at COMMIT).
            (Err(e), _) => Err(e.duplicate()),
            (Ok(()), None) => Err(StoreError::Internal("a write job was not run".into())),
        };
        let _ = self.reply.send(answer);
    }

    fn span(&self) -> &tracing::Span {
        &self.span
    }
}

#[derive(Default)]
struct Stats {
    alive: AtomicBool,
    depth: AtomicUsize,
    queued_bytes: AtomicUsize,
    /// Milliseconds since `epoch` when the running group started; 0 = idle.
    busy_since: AtomicU64,
    restarts: AtomicU64,
    panics: AtomicU64,
}

impl Costly for Box<dyn Job> {
    fn cost(&self) -> usize {
        Job::cost(&**self)
    }
}

pub struct Writer {
    queue: Arc<Queue>,
    budget: Arc<Semaphore>,
    stats: Arc<Stats>,
    epoch: Instant,
    config: WriterConfig,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    notes: broadcast::Sender<Announcement>,
}

/// How the writer is doing, for `/health`.
#[derive(Clone, Debug, Default)]
pub struct WriterHealth {
    pub alive: bool,
    pub queue_depth: usize,
    pub queue_capacity: usize,
    pub queued_bytes: usize,
    pub queue_bytes_capacity: usize,
    /// How long the job in progress has been running.
    pub busy_for: Option<Duration>,
    /// Times the writer thread was restarted after a failure outside a job.
    pub restarts: u64,
    /// Jobs that panicked (each answered with an error; the writer went on).
    pub panics: u64,
}

/// A job running longer than this means the writer is stuck.
pub const WRITER_STUCK_AFTER: Duration = Duration::from_secs(30);

impl WriterHealth {
    pub fn can_take_work(&self) -> bool {
        self.alive
            && self.queue_depth < self.queue_capacity
            && self.busy_for.is_none_or(|d| d < WRITER_STUCK_AFTER)
    }

    /// As `/health` shows it, under `writer`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "alive": self.alive,
            "queueDepth": self.queue_depth,
            "queueCapacity": self.queue_capacity,
            "queuedBytes": self.queued_bytes,
            "queueBytesCapacity": self.queue_bytes_capacity,
            "busyMs": self.busy_for.map(|d| d.as_millis() as u64),
            "restarts": self.restarts,
            "panics": self.panics,
        })
    }
}

/// The write connection, tuned for large transactions (a group of pushes, a
/// cascade of tens of thousands of rows):
/// - `temp_store = MEMORY`: statement and savepoint sub-journals stay in
///   memory instead of temporary files (a statement's is bounded by its
///   chunk of rows, a job's by the pages it writes). On files, they were a
///   fifth of a cascade's time, in `pwrite` calls.
/// - an 8 MiB page cache (default 2 MiB), so that a large transaction does
///   not spill dirty pages into the WAL before its COMMIT (then writes them
///   again). A fixed bound: one writer, whatever clients send. 8 MiB holds
///   a step of a cascade (`CASCADE_STEP`). 32 MiB, needed before cascades
///   were stepped, was no faster: pushes and updates measured 7% and 15%
///   slower with it (means of 3 runs; SQLite walks its cache at commits).
fn writer_connection(file: &Path, busy: Duration) -> Result<Connection, StoreError> {
    let conn = open_connection(file, busy)?;
    conn.execute_batch("PRAGMA temp_store = MEMORY; PRAGMA cache_size = -8192;")
        .map_err(crate::error::driver)?;
    Ok(conn)
}

/// Budget units are KiB, so that a 5 MiB request takes 5,120 permits.
fn units(bytes: usize) -> usize {
    bytes.div_ceil(1024).max(1)
}

impl Writer {
    /// Starts the thread; what its jobs announce goes to `notes`.
    pub fn start(
        file: &Path,
        config: WriterConfig,
        notes: broadcast::Sender<Announcement>,
    ) -> Result<Writer, StoreError> {
        // The first connection is opened here so a bad path fails at start.
        let conn = writer_connection(file, config.busy_timeout)?;
        let queue = Arc::new(Queue::new(config.queue_depth));
        let stats = Arc::new(Stats::default());
        stats.alive.store(true, Relaxed);
        let epoch = Instant::now();
        let thread = {
            let (stats, file, queue) = (stats.clone(), file.to_path_buf(), queue.clone());
            std::thread::Builder::new()
                .name("sqlite-writer".into())
                .spawn(move || supervise(conn, file, config, &queue, stats, epoch))
                .map_err(|e| StoreError::Config(format!("cannot start the writer thread: {e}")))?
        };
        Ok(Writer {
            queue,
            budget: Arc::new(Semaphore::new(units(config.queue_bytes))),
            stats,
            epoch,
            config,
            thread: Mutex::new(Some(thread)),
            notes,
        })
    }

    /// Runs `work` on the write connection inside a transaction (a savepoint
    /// of the current group) and answers after its COMMIT. `cost` is what
    /// the job holds in memory while it waits, in bytes. The server's own
    /// work: users' jobs go through [`Writer::run_for`].
    pub async fn run<T: Send + 'static>(
        &self,
        cost: usize,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.enqueue(None, cost, move |c| work(c).map(|v| (v, Vec::new())))
            .await
    }

    /// [`Writer::run`] for a job of `user`, which waits its turn among
    /// that user's jobs only.
    pub async fn run_for<T: Send + 'static>(
        &self,
        user: UserId,
        cost: usize,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.enqueue(Some(user), cost, move |c| work(c).map(|v| (v, Vec::new())))
            .await
    }

    /// [`Writer::run`] for a job that announces what it committed: the
    /// announcements it returns are published after its COMMIT, before it
    /// is answered. `user`: whose job it is, as in [`Writer::run_for`].
    pub async fn run_announcing<T: Send + 'static>(
        &self,
        user: Option<UserId>,
        cost: usize,
        work: impl FnOnce(&Connection) -> Result<Announced<T>, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.enqueue(user, cost, work).await
    }

    async fn enqueue<T: Send + 'static>(
        &self,
        key: Key,
        cost: usize,
        work: impl FnOnce(&Connection) -> Result<Announced<T>, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let busy = |reason| StoreError::Busy {
            reason,
            retry_after: RETRY_AFTER,
        };
        let total = units(self.config.queue_bytes);
        let need = units(cost).min(total) as u32;
        let permit = self
            .budget
            .clone()
            .try_acquire_many_owned(need)
            .map_err(|_| busy("the write queue holds too many bytes"))?;
        let (reply, answer) = oneshot::channel();
        let task = Task {
            work: Some(Box::new(work)),
            out: None,
            reply,
            notes: self.notes.clone(),
            span: tracing::Span::current(),
            _bytes: permit,
            cost,
        };
        let queued = Instant::now();
        // Counted before queueing: the writer decrements when it takes it.
        let depth = self.stats.depth.fetch_add(1, Relaxed) + 1;
        metrics::gauge!("tidesync_writer_queue_depth").set(depth as f64);
        self.stats.queued_bytes.fetch_add(cost, Relaxed);
        if let Err((why, _)) = self.queue.push(key, Box::new(task)) {
            self.stats.depth.fetch_sub(1, Relaxed);
            self.stats.queued_bytes.fetch_sub(cost, Relaxed);
            return Err(match why {
                Refused::Full => busy("the write queue is full"),
                Refused::Closed => StoreError::Unavailable("the writer is closed".into()),
            });
        }
        let answer = answer.await;
        metrics::histogram!("tidesync_writer_job_seconds").record(queued.elapsed().as_secs_f64());
        answer.unwrap_or_else(|_| Err(StoreError::Unavailable("the writer restarted".into())))
    }

    pub fn health(&self) -> WriterHealth {
        let since = self.stats.busy_since.load(Relaxed);
        let now = self.epoch.elapsed().as_millis() as u64;
        WriterHealth {
            alive: self.stats.alive.load(Relaxed),
            queue_depth: self.stats.depth.load(Relaxed),
            queue_capacity: self.config.queue_depth.max(1),
            queued_bytes: self.stats.queued_bytes.load(Relaxed),
            queue_bytes_capacity: self.config.queue_bytes,
            busy_for: (since != 0).then(|| Duration::from_millis(now.saturating_sub(since))),
            restarts: self.stats.restarts.load(Relaxed),
            panics: self.stats.panics.load(Relaxed),
        }
    }

    /// Runs the queued jobs, then stops the thread and closes the connection.
    pub async fn close(&self) {
        self.queue.close();
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

/// The thread: serves jobs; after a failure outside a job, starts over on a
/// fresh connection.
fn supervise(
    first: Connection,
    file: PathBuf,
    config: WriterConfig,
    jobs: &Queue,
    stats: Arc<Stats>,
    epoch: Instant,
) {
    let mut conn = Some(first);
    loop {
        let c = match conn.take() {
            Some(c) => c,
            None => match writer_connection(&file, config.busy_timeout) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "the SQLite writer cannot reopen the database; retrying");
                    stats.alive.store(false, Relaxed);
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            },
        };
        stats.alive.store(true, Relaxed);
        let mut c = c;
        match catch_unwind(AssertUnwindSafe(|| serve(&mut c, jobs, &stats, epoch))) {
            Ok(()) => break,
            Err(p) => {
                stats.restarts.fetch_add(1, Relaxed);
                stats.busy_since.store(0, Relaxed);
                tracing::error!(panic = %panic_message(&*p), "the SQLite writer failed outside a job; restarting it");
                // The connection may be mid-transaction: start from a new one.
                drop(c);
            }
        }
    }
    stats.alive.store(false, Relaxed);
}

fn serve(conn: &mut Connection, jobs: &Queue, stats: &Stats, epoch: Instant) {
    while let Some(mut group) = jobs.take_group(GROUP, GROUP_BYTES) {
        let depth = stats.depth.fetch_sub(group.len(), Relaxed) - group.len();
        metrics::gauge!("tidesync_writer_queue_depth").set(depth as f64);
        metrics::histogram!("tidesync_writer_group_jobs").record(group.len() as f64);
        let bytes: usize = group.iter().map(|j| j.cost()).sum();
        stats.queued_bytes.fetch_sub(bytes, Relaxed);
        // A job whose caller is gone is not executed: dropping it frees its bytes.
        group.retain(|j| !j.cancelled());
        if group.is_empty() {
            continue;
        }
        stats
            .busy_since
            .store((epoch.elapsed().as_millis() as u64).max(1), Relaxed);
        let started = Instant::now();
        commit_group(conn, group, stats);
        metrics::histogram!("tidesync_writer_group_seconds")
            .record(started.elapsed().as_secs_f64());
        stats.busy_since.store(0, Relaxed);
    }
}
