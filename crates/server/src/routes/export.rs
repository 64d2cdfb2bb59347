//! `GET /api/auth/me/export`: all of the user's data as one JSON document,
//! streamed page by page so that neither the server nor the database holds
//! it whole.
//!
//! Memory per export is about two pages: a page is read only once the body
//! has taken the previous chunk (the client reads as fast as it likes, and
//! the export goes no faster), pages stop at [`PAGE_BYTES`], a client that
//! stops reading is cut after `EXPORT_IDLE_TIMEOUT` (see `crate::stall`),
//! and the number of exports at once is bounded ([`slots`]).

mod slots;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;

use axum::body::{Body, Bytes};
use axum::extract::{Extension, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tidesync_protocol::entity::EntityType;
use tidesync_protocol::sync::write_record;
use tidesync_protocol::time::{now_millis, to_iso};
use tidesync_protocol::{RecordId, Role, ScopeId};
use tidesync_store::ExportQuery;
use tokio::sync::mpsc;

use serde_json::value::RawValue;
use tidesync_protocol::error::{Envelope, ErrorBody};
use utoipa::ToSchema;

use super::ApiQuery;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::stall::StallLimit;
use crate::state::AppState;

pub use slots::{ExportLimits, Exports};

/// Most records read per store call.
const PAGE: usize = 500;
/// Most bytes of records read per store call (the first record of a page is
/// taken whatever its size): what one page, and one chunk of the body, cost.
pub const PAGE_BYTES: usize = 1 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    /// Include deleted records (tombstones still within the history horizon).
    #[serde(default)]
    tombstones: bool,
}

/// The head of the document: everything but the records.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Head {
    /// ISO-8601, UTC.
    exported_at: String,
    account: tidesync_protocol::auth::UserView,
    /// Spaces others share with the user, and the user's role in each (the
    /// user's own spaces are not listed: they own them).
    memberships: Vec<Membership>,
    tombstones: bool,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Membership {
    space_id: RecordId,
    role: Role,
}

/// The export's `data` as the document shows it: the head's fields, then
/// the records. Never built: the records are streamed after the head.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
struct ExportData {
    #[serde(flatten)]
    head: Head,
    /// Records as `POST /api/sync` shows them.
    #[schema(value_type = Vec<Object>)]
    spaces: Vec<Box<RawValue>>,
    #[schema(value_type = Vec<Object>)]
    categories: Vec<Box<RawValue>>,
    #[schema(value_type = Vec<Object>)]
    items: Vec<Box<RawValue>>,
}

#[utoipa::path(
    get,
    path = "/api/auth/me/export",
    tag = "auth",
    description = "Everything the account holds, as one JSON document, streamed in chunks of \
        about 1 MiB of records, each read only once the client has taken the previous one. \
        One export at a time per user, at most MAX_EXPORTS (default 4) on a server and \
        MAX_EXPORTS_PER_SPACE (default 2) that read one shared space; beyond, the answer \
        says when to retry (Retry-After). A client that reads nothing of the body for \
        EXPORT_IDLE_TIMEOUT (default 30 s) is disconnected, and a failure after the first \
        byte cuts the body short: a truncated document is never valid JSON.",
    security(("bearer" = [])),
    params(("tombstones" = Option<bool>, Query, description = "Include deleted records still \
        within the history horizon; absent: false. No other parameter is accepted.")),
    responses(
        (status = 200, description = "The export", body = Envelope<ExportData>),
        (status = 429, description = "`rate_limited`: an export of this user is already running; \
            `Retry-After` says when to retry", body = ErrorBody),
        (status = 503, description = "`busy`: MAX_EXPORTS exports are running, or \
            MAX_EXPORTS_PER_SPACE exports read one of the user's shared spaces; `Retry-After` \
            says when to retry (also `database_unavailable`, `timeout`)", body = ErrorBody),
    )
)]
pub async fn export(
    State(state): State<AppState>,
    AuthUser { user, .. }: AuthUser,
    stall: Option<Extension<StallLimit>>,
    ApiQuery(q): ApiQuery<ExportParams>,
) -> Result<Response, ApiError> {
    // Errors before the first byte still get a status; after it, the body
    // is cut short, which no JSON parser mistakes for a whole document.
    let view = state.store.view(user.id).await?;
    let shared: Vec<ScopeId> = view
        .readable()
        .iter()
        .filter(|s| s.id != view.personal)
        .map(|s| s.id)
        .collect();
    let slot = state.exports.start(user.id, shared)?;
    if let Some(Extension(stall)) = stall {
        stall.arm(state.exports.limits.idle);
    }
    let head = Head {
        exported_at: to_iso(now_millis()),
        account: super::auth::view(&user),
        memberships: view
            .scopes
            .iter()
            .filter(|s| s.role != Role::Owner && s.role != Role::Removed)
            .filter_map(|s| {
                s.space.map(|space_id| Membership {
                    space_id,
                    role: s.role,
                })
            })
            .collect(),
        tombstones: q.tombstones,
    };
    let head = serde_json::to_string(&head).map_err(|e| ApiError::Internal(e.to_string()))?;
    // `{"success":true,"data":{<head fields>,"spaces":[…],…}}`
    let opening = format!(
        r#"{{"success":true,"data":{},"#,
        head.strip_suffix('}').unwrap_or(&head)
    );

    // One chunk in the channel at most, and the next page is read only
    // once there is room for it (`reserve`): the export runs as fast as its
    // client reads, holding about a page in the channel and one being
    // written. A client that leaves (or is cut) drops the receiver, which
    // ends the task and frees its slot.
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    // Set once the last byte is queued: a body that ends without it (a
    // shutdown, a panic) ends with an error, so that the connection is
    // aborted rather than the response ended as if complete.
    let finished = Arc::new(AtomicBool::new(false));
    let done = finished.clone();
    let store = state.store.clone();
    let mut stopping = state.stopping.clone();
    let tombstones = q.tombstones;
    let uid = user.id;
    tokio::spawn(async move {
        let _slot = slot;
        let work = async {
            let Ok(room) = tx.reserve().await else { return };
            room.send(Ok(Bytes::from(opening)));
            let mut chunk = String::new();
            for (i, kind) in [EntityType::Space, EntityType::Category, EntityType::Item]
                .into_iter()
                .enumerate()
            {
                chunk.push_str(if i == 0 { "" } else { "]," });
                chunk.push('"');
                chunk.push_str(match kind {
                    EntityType::Space => "spaces",
                    EntityType::Category => "categories",
                    EntityType::Item => "items",
                });
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
                    let page = match store.export(uid, query).await {
                        Ok(p) => p,
                        Err(e) => {
                            tracing::warn!(user = %uid, error = %e, "export failed; body cut short");
                            room.send(Err(std::io::Error::other(e.to_string())));
                            return;
                        }
                    };
                    after = page.records.last().map(|(s, r)| (*s, r.id));
                    let size: usize = page.records.iter().map(|(_, r)| r.size()).sum();
                    chunk.reserve(size);
                    // Each record's text is freed once written.
                    for (_, r) in page.records {
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
        };
        tokio::select! {
            () = work => {}
            // Shutdown does not wait for a slow reader: the client retries.
            _ = stopping.wait_for(|s| *s) => {}
        }
    });

    // A stream that may be polled again after its end: compression
    // encoders do (`unfold` panics then; a closed receiver keeps answering
    // `None`).
    let mut rx = rx;
    let mut cut = false;
    let body = futures_util::stream::poll_fn(move |cx| match rx.poll_recv(cx) {
        Poll::Ready(None) if !cut && !finished.load(Ordering::Acquire) => {
            cut = true;
            Poll::Ready(Some(Err(std::io::Error::other(
                "the export stopped before its end",
            ))))
        }
        other => other,
    });
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"tidesync-export.json\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(body),
    )
        .into_response())
}
