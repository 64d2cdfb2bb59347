//! `GET /api/sync/stream`: Server-Sent Events that poke a device when
//! another device's change commits, and `POST /api/sync/stream-ticket`.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::Response;
use futures_util::Stream;
use serde::Deserialize;
use tidesync_protocol::cursor::{self, Positions};
use tidesync_protocol::sync::{parse_device_id, ChangeEvent, StreamTicket};
use tidesync_protocol::time::now_millis;
use tidesync_protocol::ScopeId;
use tidesync_store::View;
use tokio::sync::broadcast;

use tidesync_protocol::error::Envelope;

use super::{ok, ApiQuery};
use crate::auth::{AuthUser, Identity, TICKET_LIFETIME};
use crate::error::ApiError;
use crate::notify::Subscription;
use crate::session::{concern, readable, Concern};
use crate::state::AppState;

/// `POST /api/sync/stream-ticket`: a single-use ticket, valid 60 s, to open
/// the event stream as `?ticket=…` where a header cannot be sent. Never put
/// the long-lived token in a URL: URLs end up in logs and histories.
#[utoipa::path(
    post,
    path = "/api/sync/stream-ticket",
    tag = "sync",
    security(("bearer" = [])),
    responses((status = 200, description = "A single-use ticket for `GET /api/sync/stream?ticket=`", body = Envelope<StreamTicket>))
)]
pub async fn stream_ticket(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Response, ApiError> {
    let ticket = state.auth.tokens.issue_ticket(&auth.token)?;
    Ok(ok(
        StatusCode::OK,
        StreamTicket {
            ticket,
            expires_in: TICKET_LIFETIME.as_secs(),
        },
    ))
}

/// The user a stream ticket names, bound to the token that minted it
/// (which must still hold); spends the ticket (through the revoked tokens
/// table, so it is single-use across instances too).
async fn ticket_user(state: &AppState, ticket: &str) -> Result<AuthUser, ApiError> {
    const INVALID: ApiError = ApiError::Unauthorized("invalid or expired stream ticket");
    let t = state.auth.tokens.verify_ticket(ticket).ok_or(INVALID)?;
    let auth = state
        .auth
        .check(&t.parent, None)
        .await
        .map_err(|e| match e {
            ApiError::Unauthorized(_) => INVALID,
            e => e,
        })?;
    let fresh = state
        .store
        .spend_ticket(
            t.parent.user,
            &t.id,
            t.exp.saturating_mul(1000),
            now_millis(),
        )
        .await?;
    if !fresh {
        return Err(ApiError::Unauthorized("stream ticket already used"));
    }
    Ok(AuthUser {
        user: auth.user.clone(),
        token: t.parent,
    })
}

/// How often an open stream rechecks its token even without a revocation
/// notice: a safety net for a notice that was lost. Through the auth cache,
/// so at most one query per user per cache lifetime.
const STREAM_RECHECK: Duration = Duration::from_secs(30);
/// Comment lines that keep proxies from closing an idle stream.
const STREAM_HEARTBEAT: Duration = Duration::from_secs(15);

fn change_event(at: &Positions) -> Event {
    let c = at.encode();
    let data = serde_json::to_string(&ChangeEvent {
        sync_timestamp: c.clone(),
    })
    .expect("event serializes");
    Event::default().event("change").id(c).data(data)
}

/// Every readable scope at its head: what the device is told it can reach.
fn heads(view: &View) -> Positions {
    let mut p = Positions::default();
    for s in view.readable() {
        p.set(s.id, view.personal, s.head);
    }
    p
}

/// Whether a device that has seen `seen` is behind `now`: some scope moved,
/// or the set of scopes changed (a space was shared with it or left).
fn behind(seen: &Positions, now: &Positions) -> bool {
    now.personal > seen.personal
        || now.shared.len() != seen.shared.len()
        || now
            .shared
            .iter()
            .any(|(s, v)| seen.shared.get(s).is_none_or(|at| v > at))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamQuery {
    device_id: Option<String>,
    ticket: Option<String>,
}

struct StreamState {
    state: AppState,
    auth: AuthUser,
    device: String,
    sub: Subscription,
    personal: ScopeId,
    /// What this device was last told about, per scope.
    told: Positions,
    /// Send an event at once (the device reconnected behind).
    first: bool,
    recheck: tokio::time::Interval,
    /// When the token (a ticket's parent) expires: the stream ends then.
    expires: std::pin::Pin<Box<tokio::time::Sleep>>,
    stopping: tokio::sync::watch::Receiver<bool>,
    /// Counts this stream in `tidesync_event_streams_open` while it lives.
    _open: crate::telemetry::OpenStream,
}

/// `GET /api/sync/stream?deviceId=…`: each committed change of the user
/// made by another device sends an event whose id and data carry the new
/// cursor; pull from your cursor when one arrives. With `Last-Event-ID`, an
/// event is sent at once if the device is behind.
#[utoipa::path(
    get,
    path = "/api/sync/stream",
    tag = "sync",
    description = "Server-Sent Events. Each `change` event's `id` and `data.syncTimestamp` carry \
        the new cursor: pull from your cursor when one arrives. A comment heartbeat every 15 s. \
        Authenticate with the bearer header or, where no header can be sent (EventSource), \
        with `?ticket=` from `POST /api/sync/stream-ticket`.",
    security(("bearer" = []), ()),
    params(
        ("deviceId" = String, Query, description = "Required: 1 to 128 characters, without control \
            characters (the same rule as `deviceId` in `POST /api/sync`); changes made by this \
            device do not send events to it. Empty, longer or with control characters: 400 \
            `validation_failed`."),
        ("ticket" = Option<String>, Query, description = "A stream ticket, instead of the header"),
        ("Last-Event-ID" = Option<String>, Header, description = "The last event id seen: an \
            event is sent at once if the device is behind it"),
    ),
    responses(
        (status = 200, description = "The event stream; each `data` is a ChangeEvent", content_type = "text/event-stream", body = ChangeEvent),
    )
)]
pub async fn stream(
    State(state): State<AppState>,
    identity: axum::Extension<Identity>,
    headers: axum::http::HeaderMap,
    ApiQuery(q): ApiQuery<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let device = parse_device_id(q.device_id.as_deref().unwrap_or("")).map_err(|_| {
        ApiError::Validation(
            "deviceId is required: a string of 1 to 128 characters, without control characters"
                .into(),
        )
    })?;
    // The stream is bound to the token that opened it (for a ticket, the
    // token that minted the ticket): its revocation ends the stream.
    let auth = match (identity.0, &q.ticket) {
        (Identity::Anonymous, Some(ticket)) => ticket_user(&state, ticket).await?,
        (Identity::User(u), _) => u,
        (Identity::Rejected(e), _) => return Err(e),
        (Identity::Anonymous, None) => {
            return Err(ApiError::Unauthorized("missing Authorization header"))
        }
    };
    // Subscribed before the heads are read, so a change committed in
    // between still reaches the stream; and before the token is checked
    // again, so a revocation since the first check is seen.
    let (sub, view) = state.sessions.follow(&auth).await?;
    let told = heads(&view);
    let first = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| match cursor::parse_str(s) {
            Ok(cursor::CursorStart::At(seen)) => Some(seen),
            _ => None,
        })
        .is_some_and(|seen| behind(&seen, &told));
    let mut recheck =
        tokio::time::interval_at(tokio::time::Instant::now() + STREAM_RECHECK, STREAM_RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let left = auth.token.exp.saturating_sub(now_millis() / 1000).max(0) as u64;
    let start = StreamState {
        expires: Box::pin(tokio::time::sleep(Duration::from_secs(left))),
        stopping: state.stopping.clone(),
        personal: view.personal,
        state,
        auth,
        device,
        sub,
        told,
        first,
        recheck,
        _open: crate::telemetry::OpenStream::open(),
    };
    let events = futures_util::stream::unfold(start, |mut s| async move {
        if std::mem::take(&mut s.first) {
            return Some((Ok(change_event(&s.told)), s));
        }
        loop {
            tokio::select! {
                poke = s.sub.pokes.recv() => match poke {
                    Ok(p) => match concern(&p, (s.auth.user.id, &s.device), &s.told, s.personal) {
                        Concern::Nothing => {}
                        Concern::Moved => {
                            s.told.set(p.scope, s.personal, p.version);
                            return Some((Ok(change_event(&s.told)), s));
                        }
                        // Shared with, or removed from, a space: follow the
                        // new set of scopes, and pull.
                        Concern::Membership => {
                            let view = s.state.store.view(s.auth.user.id).await.ok()?;
                            s.sub.set_scopes(readable(&view));
                            s.told = heads(&view);
                            return Some((Ok(change_event(&s.told)), s));
                        }
                        // The instance lost the database's notices for a
                        // while, revocations among them maybe.
                        Concern::Gap => {
                            if !token_holds(&s).await {
                                return None;
                            }
                            if reread(&mut s).await? {
                                return Some((Ok(change_event(&s.told)), s));
                            }
                        }
                    },
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if reread(&mut s).await? {
                            return Some((Ok(change_event(&s.told)), s));
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                // A token of the user was revoked: this one?
                Ok(()) = s.sub.revocations.changed() => {
                    if !token_holds(&s).await {
                        return None;
                    }
                }
                // The server is shutting down: end the stream so it can stop.
                _ = s.stopping.changed() => return None,
                _ = s.recheck.tick() => {
                    if !token_holds(&s).await {
                        return None;
                    }
                }
                _ = &mut s.expires => return None,
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(STREAM_HEARTBEAT)))
}

/// After missed pokes: whether the device is behind the heads (then `told`
/// moves to them). `None` when the database cannot say: the stream ends,
/// and the client reconnects with its `Last-Event-ID`.
async fn reread(s: &mut StreamState) -> Option<bool> {
    let view = s.state.store.view(s.auth.user.id).await.ok()?;
    let now = heads(&view);
    if !behind(&s.told, &now) {
        return Some(false);
    }
    s.told = now;
    Some(true)
}

/// Whether the stream's token still holds. While the database cannot say,
/// the stream stays; the next check decides.
async fn token_holds(s: &StreamState) -> bool {
    !matches!(
        s.state.auth.check(&s.auth.token, None).await,
        Err(ApiError::Unauthorized(_))
    )
}
