//! `GET /api/auth/me/export`: all of the user's data as one JSON document,
//! streamed page by page so that neither the server nor the database holds
//! it whole.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tidesync_protocol::entity::EntityType;
use tidesync_protocol::sync::write_record;
use tidesync_protocol::time::{now_millis, to_iso};
use tidesync_protocol::{RecordId, Role, ScopeId, UserId};
use tokio::sync::mpsc;

use serde_json::value::RawValue;
use tidesync_protocol::error::{Envelope, ErrorBody};
use utoipa::ToSchema;

use super::ApiQuery;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;

/// Records read per store call.
const PAGE: usize = 500;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
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

/// Users with an export running: one at a time each, so that an export,
/// which reads everything, counts once against the rate limits however
/// long it streams.
#[derive(Default)]
pub struct Exports(Mutex<HashSet<UserId>>);

struct Running(Arc<Exports>, UserId);

impl Drop for Running {
    fn drop(&mut self) {
        self.0
             .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.1);
    }
}

impl Exports {
    fn start(self: &Arc<Self>, user: UserId) -> Option<Running> {
        let mut running = self.0.lock().unwrap_or_else(|e| e.into_inner());
        running.insert(user).then(|| Running(self.clone(), user))
    }
}

#[utoipa::path(
    get,
    path = "/api/auth/me/export",
    tag = "auth",
    description = "Everything the account holds, as one JSON document (streamed). One export \
        at a time per user.",
    security(("bearer" = [])),
    params(("tombstones" = Option<bool>, Query, description = "Include deleted records still \
        within the history horizon; absent: false. No other parameter is accepted.")),
    responses(
        (status = 200, description = "The export", body = Envelope<ExportData>),
        (status = 429, description = "`rate_limited`: an export of this user is already running", body = ErrorBody),
    )
)]
pub async fn export(
    State(state): State<AppState>,
    AuthUser { user, .. }: AuthUser,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let running = state
        .exports
        .start(user.id)
        .ok_or(ApiError::RateLimited(std::time::Duration::from_secs(5)))?;
    // Errors before the first byte still get a status; after it, the body
    // is cut short, which no JSON parser mistakes for a whole document.
    let view = state.store.view(user.id).await?;
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

    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    let store = state.store.clone();
    let mut stopping = state.stopping.clone();
    let tombstones = q.tombstones;
    let uid = user.id;
    tokio::spawn(async move {
        let _running = running;
        let work = async {
            if tx.send(Ok(Bytes::from(opening))).await.is_err() {
                return;
            }
            for (i, kind) in [EntityType::Space, EntityType::Category, EntityType::Item]
                .into_iter()
                .enumerate()
            {
                let mut chunk = format!(
                    r#"{}"{}":["#,
                    if i == 0 { "" } else { "]," },
                    match kind {
                        EntityType::Space => "spaces",
                        EntityType::Category => "categories",
                        EntityType::Item => "items",
                    }
                );
                let mut first = true;
                let mut after: Option<(ScopeId, RecordId)> = None;
                loop {
                    let page = match store.export(uid, kind, tombstones, after, PAGE).await {
                        Ok(p) => p,
                        Err(e) => {
                            tracing::warn!(user = %uid, error = %e, "export failed; body cut short");
                            let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                            return;
                        }
                    };
                    let done = page.len() < PAGE;
                    after = page.last().map(|(s, r)| (*s, r.id));
                    for (_, r) in page {
                        let meta = r.meta();
                        match write_record(r.entity, &meta, &r.data) {
                            Ok(raw) => {
                                if !first {
                                    chunk.push(',');
                                }
                                first = false;
                                chunk.push_str(raw.get());
                            }
                            Err(e) => {
                                tracing::error!(record = %r.id, error = %e, "stored record is not JSON");
                                let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                                return;
                            }
                        }
                    }
                    if tx
                        .send(Ok(Bytes::from(std::mem::take(&mut chunk))))
                        .await
                        .is_err()
                    {
                        return; // the client went away
                    }
                    if done {
                        break;
                    }
                }
            }
            let _ = tx.send(Ok(Bytes::from_static(b"]}}"))).await;
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
    let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
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
