//! One group of jobs, one transaction: how the writer commits what queued
//! up, and keeps a failing or panicking job from taking the others with it.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::Relaxed;

use rusqlite::Connection;
use tidesync_store::StoreError;

use super::{Job, Stats};

/// Runs a group of jobs in one transaction: one COMMIT, one fsync. Each job
/// but the transaction's first runs in a savepoint, so one failing job rolls
/// back alone. The first needs none: when it fails, the whole transaction
/// (which holds nothing else yet) is rolled back and the rest of the group
/// starts a new one. That matters because a savepoint copies every existing
/// page the job touches to the sub-journal: with groups of one, as under
/// light load, most pushes now write no sub-journal at all.
pub(super) fn commit_group(conn: &mut Connection, group: Vec<Box<dyn Job>>, stats: &Stats) {
    let mut kept: Vec<Box<dyn Job>> = Vec::with_capacity(group.len());
    let mut open = false;
    let mut jobs = group.into_iter();
    while let Some(mut job) = jobs.next() {
        let first = !open;
        let step = if first {
            "BEGIN IMMEDIATE"
        } else {
            "SAVEPOINT job"
        };
        if let Err(e) = conn.execute_batch(step) {
            let e = crate::error::driver(e);
            if open {
                let _ = conn.execute_batch("ROLLBACK");
            }
            for j in kept.into_iter().chain([job]).chain(jobs) {
                j.finish(Err(&e));
            }
            return;
        }
        open = true;
        let keep = run_job(conn, &mut job, stats);
        let end = match (keep, first) {
            (true, true) => None,
            (true, false) => Some("RELEASE job"),
            (false, true) => Some("ROLLBACK"),
            (false, false) => Some("ROLLBACK TO job; RELEASE job"),
        };
        if let Some(end) = end {
            if let Err(e) = conn.execute_batch(end) {
                let e = crate::error::driver(e);
                let _ = conn.execute_batch("ROLLBACK");
                for j in kept.into_iter().chain([job]).chain(jobs) {
                    j.finish(Err(&e));
                }
                return;
            }
        }
        if keep {
            kept.push(job);
        } else {
            open = !first;
            // Its answer is its own error, whatever the COMMIT does.
            job.finish(Ok(()));
        }
    }
    if !open {
        return;
    }
    match conn.execute_batch("COMMIT") {
        Ok(()) => {
            for job in kept {
                job.finish(Ok(()));
            }
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            let e = crate::error::driver(e);
            for job in kept {
                job.finish(Err(&e));
            }
        }
    }
}

/// Runs one job, catching a panic; true when its writes are to be kept.
fn run_job(conn: &Connection, job: &mut Box<dyn Job>, stats: &Stats) -> bool {
    let span = job.span().clone();
    let ran = {
        let _entered = span.enter();
        catch_unwind(AssertUnwindSafe(|| job.run(conn)))
    };
    match ran {
        Ok(ok) => ok && !job.cancelled(),
        Err(p) => {
            stats.panics.fetch_add(1, Relaxed);
            metrics::counter!("tidesync_writer_panics_total").increment(1);
            let _entered = span.enter();
            tracing::error!(panic = %panic_message(&*p), "a write job panicked; it is rolled back and the writer goes on");
            job.fail(StoreError::Internal("a write job panicked".into()));
            false
        }
    }
}

pub(super) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}
