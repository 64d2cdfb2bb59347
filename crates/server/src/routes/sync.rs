//! `POST /api/sync` (push and pull) and `GET /api/sync/initial` (pull).
//! Thin: parse, authorize, one store call (one transaction), respond.

use std::collections::HashMap;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::Response;
use futures_util::Stream;
use serde_json::value::RawValue;
use serde_json::Value;
use tidesync_protocol::cursor;
use tidesync_protocol::sync::{
    parse_limit, parse_request, write_record, RecordMeta, ServerUpdates, SyncResponse,
};
use tidesync_protocol::time::now_millis;
use tidesync_protocol::UserId;
use tidesync_store::{PulledRecord, PushInput, SyncOutput};
use tokio::sync::broadcast;

use super::{ok, JsonBytes};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::notify::Poke;
use crate::state::AppState;

pub async fn sync(
    State(state): State<AppState>,
    AuthUser { user, .. }: AuthUser,
    JsonBytes(body): JsonBytes,
) -> Result<Response, ApiError> {
    let req = parse_request(&body, state.sync.max_changes)?;
    let device = req.device_id.clone();
    let out = if req.changes.is_empty() {
        // Subscribe before pulling, so a change committed in between still wakes us.
        let mut pokes = (req.wait_seconds > 0).then(|| state.notifier.subscribe(user.id));
        let mut out = state.store.pull(user.id, req.cursor, req.limit).await?;
        if let Some(pokes) = pokes.as_mut() {
            if out.records.is_empty() && !out.has_more {
                let wait = Duration::from_secs(req.wait_seconds).min(state.sync.max_wait);
                if wait_for_change(pokes, &device, out.cursor, wait).await {
                    out = state.store.pull(user.id, req.cursor, req.limit).await?;
                }
            }
        }
        out
    } else {
        state
            .store
            .push(
                user.id,
                PushInput {
                    device_id: req.device_id,
                    cursor: req.cursor,
                    changes: req.changes,
                    limit: req.limit,
                    now: now_millis(),
                    max_skew: state.sync.max_clock_skew_ms,
                },
            )
            .await?
    };
    if out.wrote && state.announce_locally {
        state.notifier.publish(
            user.id,
            Poke {
                version: out.head,
                device: device.clone(),
            },
        );
    }
    let updates = updates(user.id, &out.records)?;
    Ok(ok(
        StatusCode::OK,
        SyncResponse {
            acknowledged: out.acks,
            server_updates: updates,
            sync_timestamp: cursor::encode(out.cursor),
            has_more: out.has_more,
        },
    ))
}

/// Waits until another device commits something past `cursor`, or `wait`
/// passes. True when there is something to pull.
async fn wait_for_change(
    pokes: &mut broadcast::Receiver<Arc<Poke>>,
    device: &str,
    cursor: i64,
    wait: Duration,
) -> bool {
    let poked = async {
        loop {
            match pokes.recv().await {
                Ok(p) if p.device != device && p.version > cursor => return true,
                Ok(_) => continue,
                // Missed some pokes: there is news, pull to find out.
                Err(broadcast::error::RecvError::Lagged(_)) => return true,
                Err(broadcast::error::RecvError::Closed) => return false,
            }
        }
    };
    tokio::time::timeout(wait, poked).await.unwrap_or(false)
}

/// `POST /api/sync/stream-ticket`: a single-use ticket, valid 60 s, to open
/// the event stream as `?ticket=…` where a header cannot be sent. Never put
/// the long-lived token in a URL: URLs end up in logs and histories.
pub async fn stream_ticket(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Response, ApiError> {
    let ticket = state
        .tokens
        .issue_ticket(auth.user.id, auth.token.generation)?;
    Ok(ok(
        StatusCode::OK,
        serde_json::json!({
            "ticket": ticket,
            "expiresIn": crate::auth::TICKET_LIFETIME.as_secs(),
        }),
    ))
}

/// The user a stream ticket names; spends the ticket (through the revoked
/// tokens table, so it is single-use across instances too).
async fn ticket_user(state: &AppState, ticket: &str) -> Result<AuthUser, ApiError> {
    let info = state
        .tokens
        .verify_ticket(ticket)
        .ok_or(ApiError::Unauthorized("invalid or expired stream ticket"))?;
    let fresh = state
        .store
        .revoke_token(
            info.user,
            &info.jti,
            info.exp.saturating_mul(1000),
            now_millis(),
        )
        .await?;
    if !fresh {
        return Err(ApiError::Unauthorized("stream ticket already used"));
    }
    let auth = state
        .auth_cache
        .get(state.store.as_ref(), info.user)
        .await?
        .filter(|a| a.token_generation == info.generation)
        .ok_or(ApiError::Unauthorized("invalid or expired stream ticket"))?;
    Ok(AuthUser {
        user: auth.user.clone(),
        token: info,
    })
}

/// How often an open stream rechecks its token (a revoked token or a
/// deleted account ends the stream).
const STREAM_RECHECK: Duration = Duration::from_secs(2);
/// Comment lines that keep proxies from closing an idle stream.
const STREAM_HEARTBEAT: Duration = Duration::from_secs(15);

fn change_event(version: i64) -> Event {
    let c = cursor::encode(version);
    Event::default()
        .event("change")
        .id(c.clone())
        .data(format!(r#"{{"syncTimestamp":"{c}"}}"#))
}

struct StreamState {
    state: AppState,
    auth: AuthUser,
    device: String,
    pokes: broadcast::Receiver<Arc<Poke>>,
    /// The last version this device was told about.
    told: i64,
    first: Option<i64>,
    /// Opened with a ticket, whose id is spent: recheck the user and the
    /// token generation, not the ticket's id.
    by_ticket: bool,
    recheck: tokio::time::Interval,
    stopping: tokio::sync::watch::Receiver<bool>,
}

/// `GET /api/sync/stream?deviceId=…`: Server-Sent Events. Each committed
/// change of the user made by another device sends an event whose id and
/// data carry the new cursor; pull from your cursor when one arrives. With
/// `Last-Event-ID`, an event is sent at once if the device is behind.
pub async fn stream(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let (auth, by_ticket) = match params.get("ticket") {
        Some(ticket) if !headers.contains_key(axum::http::header::AUTHORIZATION) => {
            (ticket_user(&state, ticket).await?, true)
        }
        _ => (crate::auth::authenticate(&state, &headers).await?, false),
    };
    let device = params.get("deviceId").cloned().unwrap_or_default();
    let pokes = state.notifier.subscribe(auth.user.id);
    let head = state
        .store
        .pull(auth.user.id, cursor::CursorStart::Scratch, 1)
        .await?
        .head;
    let last_seen = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| match cursor::parse_str(s) {
            Ok(cursor::CursorStart::Version(v)) => Some(v),
            _ => None,
        });
    let first = last_seen.filter(|v| *v < head).map(|_| head);
    let mut recheck = tokio::time::interval(STREAM_RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stopping = state.stopping.clone();
    let start = StreamState {
        by_ticket,
        stopping,
        state,
        auth,
        device,
        pokes,
        told: head,
        first,
        recheck,
    };
    let events = futures_util::stream::unfold(start, |mut s| async move {
        if let Some(v) = s.first.take() {
            s.told = v;
            return Some((Ok(change_event(v)), s));
        }
        loop {
            tokio::select! {
                poke = s.pokes.recv() => match poke {
                    Ok(p) if p.device != s.device && p.version > s.told => {
                        s.told = p.version;
                        return Some((Ok(change_event(p.version)), s));
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let head = s.state.store.pull(s.auth.user.id, cursor::CursorStart::Scratch, 1).await.ok()?.head;
                        if head > s.told {
                            s.told = head;
                            return Some((Ok(change_event(head)), s));
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                // The server is shutting down: end the stream so it can stop.
                _ = s.stopping.changed() => return None,
                _ = s.recheck.tick() => {
                    if !token_still_valid(&s.state, &s.auth, s.by_ticket).await {
                        return None;
                    }
                }
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(STREAM_HEARTBEAT)))
}

async fn token_still_valid(state: &AppState, auth: &AuthUser, by_ticket: bool) -> bool {
    match state
        .auth_cache
        .get(state.store.as_ref(), auth.user.id)
        .await
    {
        Ok(Some(a)) => {
            a.token_generation == auth.token.generation
                && (by_ticket || !a.revoked.contains(&auth.token.jti))
        }
        Ok(None) => false,
        // The database is away: keep the stream; the next check decides.
        Err(_) => true,
    }
}

/// Every live record (from scratch), or, with `lastSyncTimestamp`, the next
/// page: `?lastSyncTimestamp=<syncTimestamp>&limit=N`.
pub async fn initial(
    State(state): State<AppState>,
    AuthUser { user, .. }: AuthUser,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let start = match params.get("lastSyncTimestamp") {
        None => cursor::CursorStart::Scratch,
        // Query strings are text: digits are epoch milliseconds, as a JSON
        // number would be in POST /api/sync.
        Some(s) => match s.parse::<i64>() {
            Ok(ms) => cursor::parse(Some(&Value::from(ms))),
            Err(_) => cursor::parse_str(s),
        }
        .map_err(|e| ApiError::InvalidCursor(e.0))?,
    };
    let limit = match params.get("limit") {
        None => parse_limit(None)?,
        Some(s) => {
            let n: Value = s
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or(Value::String(s.clone()));
            parse_limit(Some(&n))?
        }
    };
    let SyncOutput {
        records,
        cursor: at,
        has_more,
        ..
    } = state.store.pull(user.id, start, limit).await?;
    let u = updates(user.id, &records)?;
    Ok(ok(
        StatusCode::OK,
        InitialPage {
            spaces: u.spaces,
            categories: u.categories,
            items: u.items,
            sync_timestamp: cursor::encode(at),
            has_more,
        },
    ))
}

/// A page of `GET /api/sync/initial`: the records at top level, as the
/// original API had them.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct InitialPage {
    spaces: Vec<Box<RawValue>>,
    categories: Vec<Box<RawValue>>,
    items: Vec<Box<RawValue>>,
    sync_timestamp: String,
    has_more: bool,
}

fn updates(user: UserId, records: &[PulledRecord]) -> Result<ServerUpdates, ApiError> {
    let mut out = ServerUpdates::default();
    for r in records {
        let meta = RecordMeta {
            id: r.id.into(),
            user_id: user,
            created_at: r.created_at,
            updated_at: r.updated_at,
            deleted_at: r.deleted_at,
            device_id: &r.device_id,
        };
        let record = write_record(r.entity, &meta, &r.data)
            .map_err(|e| ApiError::Internal(format!("stored record {}: {e}", r.id)))?;
        out.push(r.entity, record);
    }
    Ok(out)
}
