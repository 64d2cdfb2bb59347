//! The backends' tuning defaults, each written once: `SqliteOptions`,
//! `PostgresOptions`, the server's `DbOptions` and its flags all read these.

use std::time::Duration;

/// SQLite: most jobs waiting for the writer; beyond, `Busy` (503).
pub const WRITER_QUEUE_DEPTH: usize = 256;
/// SQLite: most bytes of requests waiting for the writer.
pub const WRITER_QUEUE_BYTES: usize = 64 << 20;
/// Records per cascade step: about 0.1 s of the writer (a cascade costs
/// about 40 µs per record), several times the largest batch so a step
/// always makes progress.
pub const CASCADE_STEP: usize = 2_500;
/// Bytes of records per cascade step: deleting a large record frees its
/// overflow pages, which the writer reads one by one.
pub const CASCADE_STEP_BYTES: usize = 16 << 20;
/// Bytes of records one transaction of a push loads (and rewrites): a few
/// tens of milliseconds of the writer.
pub const PUSH_STEP_BYTES: usize = 8 << 20;
/// PostgreSQL: named (cached) prepared statements.
pub const NAMED_STATEMENTS: bool = true;
/// PostgreSQL: longest a request waits for a pooled connection.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// PostgreSQL: `idle_in_transaction_session_timeout` of the sessions.
pub const IDLE_TX_TIMEOUT: Duration = Duration::from_secs(10);

/// The PostgreSQL pool's size: 4 connections per core. A request holds its
/// connection while it waits on the database (a round trip, a row lock),
/// so a few per core keep the CPU busy; far more only queue inside
/// PostgreSQL.
pub fn pool_size() -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (4 * cores).clamp(4, 64) as u32
}
