//! Work the server does on its own, beside requests: collecting history
//! past the retention horizons every GC_INTERVAL.

use std::sync::Arc;
use std::time::Duration;

use tidesync_protocol::time::now_millis;
use tidesync_store::Store;
use tokio::sync::watch;

use crate::config::RetentionArgs;

/// Runs a collection every `interval` until `stopping` turns true. The
/// first one runs one interval after start, not at start, so that a
/// restart loop does not collect over and over.
pub async fn collect_history(
    store: Arc<dyn Store>,
    retention: RetentionArgs,
    interval: Duration,
    mut stopping: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stopping.changed() => return,
        }
        let started = std::time::Instant::now();
        match store.collect_garbage(retention.horizon(now_millis())).await {
            Ok(r) => {
                metrics::counter!("tidesync_gc_tombstones_removed_total").increment(r.tombstones);
                metrics::counter!("tidesync_gc_log_rows_removed_total").increment(r.log_rows);
                tracing::info!(
                    tombstones = r.tombstones,
                    log_rows = r.log_rows,
                    revoked_tokens = r.revoked_tokens,
                    ms = started.elapsed().as_millis() as u64,
                    "history collected"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "history collection failed; next try in one interval")
            }
        }
    }
}
