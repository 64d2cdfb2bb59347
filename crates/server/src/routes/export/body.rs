//! The export's body: the records kind by kind, a page per chunk, written
//! by a task that reads the next page only once the body has taken the
//! previous chunk, so that an export holds about two pages wherever its
//! client is, and goes no faster than the client reads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;

use axum::body::{Body, Bytes};
use tidesync_protocol::entity::EntityType;
use tidesync_protocol::sync::write_record;
use tidesync_protocol::{RecordId, ScopeId, UserId};
use tidesync_store::{ExportQuery, Store};
use tokio::sync::{mpsc, watch};

use crate::exports::Slot;

/// Most records read per store call.
pub const PAGE: usize = 500;
/// Most bytes of records read per store call (the first record of a page is
/// taken whatever its size): what one page, and one chunk of the body, cost.
pub const PAGE_BYTES: usize = 1 << 20;

type Chunk = Result<Bytes, std::io::Error>;

/// The body after `opening` (the document up to the records), holding
/// `slot` until the last chunk is queued or the client is gone.
/// `personal` is the user's personal scope: records of the others are
/// shown as a member reads them (no device labels).
pub fn stream(
    store: Arc<dyn Store>,
    (user, personal): (UserId, ScopeId),
    tombstones: bool,
    opening: String,
    slot: Slot,
    mut stopping: watch::Receiver<bool>,
) -> Body {
    // One chunk in the channel at most, and a page is read only once there
    // is room for it (`reserve`). A client that leaves (or is cut, see
    // `crate::stall`) drops the receiver, which ends the task.
    let (tx, mut rx) = mpsc::channel::<Chunk>(1);
    // Set once the last byte is queued: a body that ends without it (a
    // shutdown, a panic) ends with an error, so that the connection is
    // aborted rather than the response ended as if complete.
    let finished = Arc::new(AtomicBool::new(false));
    let done = finished.clone();
    tokio::spawn(async move {
        let _slot = slot;
        tokio::select! {
            () = write(&tx, &*store, (user, personal), tombstones, opening, &done) => {}
            // Shutdown does not wait for a slow reader: the client retries.
            _ = stopping.wait_for(|s| *s) => {}
        }
    });
    // A stream that may be polled again after its end: compression
    // encoders do (`unfold` panics then; a closed receiver keeps answering
    // `None`).
    let mut cut = false;
    Body::from_stream(futures_util::stream::poll_fn(move |cx| {
        match rx.poll_recv(cx) {
            Poll::Ready(None) if !cut && !finished.load(Ordering::Acquire) => {
                cut = true;
                Poll::Ready(Some(Err(std::io::Error::other(
                    "the export stopped before its end",
                ))))
            }
            other => other,
        }
    }))
}

async fn write(
    tx: &mpsc::Sender<Chunk>,
    store: &dyn Store,
    (user, personal): (UserId, ScopeId),
    tombstones: bool,
    opening: String,
    done: &AtomicBool,
) {
    let Ok(room) = tx.reserve().await else { return };
    room.send(Ok(Bytes::from(opening)));
    let mut chunk = String::new();
    for (i, kind) in [EntityType::Space, EntityType::Category, EntityType::Item]
        .into_iter()
        .enumerate()
    {
        chunk.push_str(if i == 0 { "\"" } else { "],\"" });
        chunk.push_str(kind.plural());
        chunk.push_str("\":[");
        let mut first = true;
        let mut after: Option<(ScopeId, RecordId)> = None;
        loop {
            let Ok(room) = tx.reserve().await else {
                return; // the client went away
            };
            let query = ExportQuery {
                kind,
                tombstones,
                after,
                limit: PAGE,
                max_bytes: PAGE_BYTES,
            };
            let page = match store.export(user, query).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(user = %user, error = %e, "export failed; body cut short");
                    room.send(Err(std::io::Error::other(e.to_string())));
                    return;
                }
            };
            after = page.records.last().map(|(s, r)| (*s, r.id));
            chunk.reserve(page.records.iter().map(|(_, r)| r.size()).sum());
            // Each record's text is freed once written.
            for (scope, r) in page.records {
                let r = r.as_read_in(scope != personal);
                match write_record(r.entity, &r.meta(), &r.data) {
                    Ok(raw) => {
                        if !first {
                            chunk.push(',');
                        }
                        first = false;
                        chunk.push_str(raw.get());
                    }
                    Err(e) => {
                        tracing::error!(record = %r.id, error = %e, "stored record is not JSON");
                        room.send(Err(std::io::Error::other(e.to_string())));
                        return;
                    }
                }
            }
            room.send(Ok(Bytes::from(std::mem::take(&mut chunk))));
            if !page.more {
                break;
            }
        }
    }
    if let Ok(room) = tx.reserve().await {
        done.store(true, Ordering::Release);
        room.send(Ok(Bytes::from_static(b"]}}")));
    }
}
