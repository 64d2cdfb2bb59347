//! Reader connections: WAL lets them run beside the writer, each read in a
//! transaction of its own (one snapshot). Reads run on tokio's blocking pool
//! so they never stall the async executor.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;
use tidesync_store::StoreError;
use tokio::sync::Semaphore;

use crate::error::driver;
use crate::open_connection;

pub struct Readers {
    file: PathBuf,
    busy_timeout: Duration,
    acquire_timeout: Duration,
    idle: Arc<Mutex<Vec<Connection>>>,
    slots: Arc<Semaphore>,
    slots_total: usize,
}

impl Readers {
    pub fn open(
        file: PathBuf,
        count: usize,
        busy_timeout: Duration,
        acquire_timeout: Duration,
    ) -> Result<Readers, StoreError> {
        let count = count.max(1);
        let mut idle = Vec::with_capacity(count);
        for _ in 0..count {
            idle.push(open_reader(&file, busy_timeout)?);
        }
        Ok(Readers {
            file,
            busy_timeout,
            acquire_timeout,
            idle: Arc::new(Mutex::new(idle)),
            slots: Arc::new(Semaphore::new(count)),
            slots_total: count,
        })
    }

    /// Runs `f` in a read transaction on a free reader; waits for one at
    /// most the acquire timeout (then `Unavailable`: the pool is exhausted).
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let waited = std::time::Instant::now();
        let permit = tokio::time::timeout(self.acquire_timeout, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| StoreError::Unavailable("all SQLite readers are busy".into()))?
            .map_err(|_| StoreError::Unavailable("the database is closed".into()))?;
        metrics::histogram!("tidesync_db_acquire_seconds", "pool" => "sqlite-readers")
            .record(waited.elapsed().as_secs_f64());
        metrics::gauge!("tidesync_db_pool_in_use", "pool" => "sqlite-readers")
            .set((self.slots_total - self.slots.available_permits()) as f64);
        let conn = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let (idle, file, busy) = (self.idle.clone(), self.file.clone(), self.busy_timeout);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            // A reader lost to a panic is replaced here.
            let conn = match conn {
                Some(c) => c,
                None => open_reader(&file, busy)?,
            };
            let out = in_read_tx(&conn, f);
            idle.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
            out
        })
        .await
        .map_err(|e| StoreError::Internal(format!("a read panicked: {e}")))?
    }

    pub fn close(&self) {
        self.slots.close();
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

fn in_read_tx<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.execute_batch("BEGIN").map_err(driver)?;
    let out = f(conn);
    // A read transaction has nothing to keep: ending it either way is fine.
    let end = conn.execute_batch(if out.is_ok() { "COMMIT" } else { "ROLLBACK" });
    let out = out?;
    end.map_err(driver)?;
    Ok(out)
}

fn open_reader(file: &std::path::Path, busy: Duration) -> Result<Connection, StoreError> {
    let c = open_connection(file, busy)?;
    // Readers never write: a bug that tried would fail, not corrupt.
    c.execute_batch("PRAGMA query_only = ON").map_err(driver)?;
    Ok(c)
}
