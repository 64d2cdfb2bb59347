//! Other users pushing one item at a time while a scenario's heavy request
//! runs: what that request costs everyone else.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use tidesync_client::{new_record_id, Client};
use tokio::task::JoinHandle;

use crate::stats::Latencies;
use crate::tidesync::{item_create, push_body, register};

type Pushes = Vec<(Instant, Duration)>;

pub struct Others {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<Result<Pushes>>>,
}

/// The pushes of the others that overlapped a window, and how many there
/// were in all.
pub struct During {
    pub latencies: Latencies,
    pub all: usize,
}

impl During {
    pub fn overlapped(&self) -> usize {
        self.latencies.0.len()
    }

    /// "p50 / p99 / max" of the pushes that overlapped, in ms.
    pub fn summary(&mut self) -> String {
        format!(
            "{} pushes overlapped, p50 {:.1} / p99 {:.1} / max {:.0} ms ({} in all)",
            self.overlapped(),
            self.latencies.quantile_ms(0.5),
            self.latencies.quantile_ms(0.99),
            self.latencies.quantile_ms(1.0),
            self.all
        )
    }
}

impl Others {
    /// `n` users of the server at `base`, registered as `other<k>@…`, each
    /// pushing one item at a time until stopped.
    pub async fn start(base: &Client, n: usize) -> Result<Others> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for u in 0..n {
            let c = register(base, &format!("other{u}@example.com")).await?;
            let stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                let mut out: Pushes = Vec::new();
                let mut k = 0;
                while !stop.load(Ordering::Relaxed) && k < 100_000 {
                    let body = push_body(
                        "other",
                        vec![item_create(&format!("o-{k}"), new_record_id(), k, "other")],
                    );
                    let t = Instant::now();
                    c.sync(&body).await?;
                    out.push((t, t.elapsed()));
                    k += 1;
                }
                anyhow::Ok(out)
            }));
        }
        // Let them reach a steady pace first.
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(Others { stop, tasks })
    }

    /// Stops them; their pushes that overlapped `[start, end]`.
    pub async fn stop(self, start: Instant, end: Instant) -> Result<During> {
        tokio::time::sleep(Duration::from_millis(500)).await;
        self.stop.store(true, Ordering::Relaxed);
        let mut during = Latencies::default();
        let mut all = 0;
        for t in self.tasks {
            for (at, lat) in t.await?? {
                all += 1;
                if at < end && at + lat > start {
                    during.0.push(lat);
                }
            }
        }
        ensure!(!during.0.is_empty(), "no other push overlapped the window");
        Ok(During {
            latencies: during,
            all,
        })
    }
}
