//! `POST /api/sync` (push and pull) and `GET /api/sync/initial` (pull).
//! Thin: parse, authorize, one store call (one transaction), respond.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use tidesync_protocol::cursor::{self, CursorStart, Positions};
use tidesync_protocol::entity::Model;
use tidesync_protocol::sync::{
    parse_limit, parse_request_in, write_record, InitialAnswer, InitialPage, ModelUpdates,
    SyncAnswer, SyncResponse,
};
use tidesync_protocol::time::now_millis;
use tidesync_protocol::{ScopeId, UserId};
use tidesync_store::{PullInput, PulledRecord, PushInput, SyncOutput, View};
use tokio::sync::broadcast;

use tidesync_protocol::error::{Envelope, ErrorBody};
use tidesync_protocol::sync::SyncBody;

use super::{ok, ApiQuery, JsonBytes};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::notify::{Poke, Subscription};
use crate::state::AppState;

#[utoipa::path(
    post,
    path = "/api/sync",
    tag = "sync",
    description = "Pushes changes and pulls what changed since the cursor, in one round trip. \
        A bad change never fails the request: it gets its own ack with an error.",
    security(("bearer" = [])),
    request_body = SyncBody,
    responses(
        (status = 200, description = "One ack per change, in order, and a page of records", body = Envelope<SyncResponse>),
        (status = 409, description = "`resync_required`: the cursor is older than the history kept", body = ErrorBody),
    )
)]
pub async fn sync(
    State(state): State<AppState>,
    auth: AuthUser,
    JsonBytes(body): JsonBytes,
) -> Result<Response, ApiError> {
    let user = &auth.user;
    let req = parse_request_in(state.model, &body, state.sync.max_changes)?;
    drop(body);
    let device = req.device_id.clone();
    let pull = PullInput {
        cursor: req.cursor.clone(),
        limit: req.limit,
        max_bytes: state.sync.max_page_bytes,
    };
    let out = if req.changes.is_empty() && req.wait_seconds > 0 {
        let wait = Duration::from_secs(req.wait_seconds).min(state.sync.max_wait);
        long_poll(&state, &auth, &device, pull, wait).await?
    } else if req.changes.is_empty() {
        state.store.pull(user.id, pull).await?
    } else {
        let input = PushInput {
            device_id: req.device_id,
            cursor: req.cursor,
            changes: req.changes,
            limit: req.limit,
            max_page_bytes: state.sync.max_page_bytes,
            now: now_millis(),
            max_skew: state.sync.max_clock_skew_ms,
        };
        state.store.push(user.id, input, req.changes_bytes).await?
    };
    if state.announce_locally {
        for (scope, version) in &out.wrote {
            state.notifier.publish(Poke {
                scope: *scope,
                version: *version,
                user: user.id,
                device: device.clone(),
                membership: false,
                gap: false,
            });
        }
    }
    crate::telemetry::acks(&out.acks);
    let SyncOutput {
        acks,
        records,
        cursor: at,
        has_more,
        removed_spaces,
        ..
    } = out;
    Ok(ok(
        StatusCode::OK,
        SyncAnswer {
            acknowledged: acks,
            server_updates: updates(state.model, records)?,
            sync_timestamp: at.encode(),
            has_more,
            removed_spaces,
        },
    ))
}

/// The scopes whose changes concern the user: what to listen to.
pub fn readable(view: &View) -> Vec<ScopeId> {
    view.readable().iter().map(|s| s.id).collect()
}

/// A pull that, when it finds nothing new, waits until another device
/// commits something or `wait` passes, then pulls again. It is bound to the
/// token that opened it: a revocation of that token (logout, password
/// change, account deletion) answers `401`, never data.
async fn long_poll(
    state: &AppState,
    auth: &AuthUser,
    device: &str,
    pull: PullInput,
    wait: Duration,
) -> Result<SyncOutput, ApiError> {
    let user = auth.user.id;
    let deadline = Instant::now() + wait;
    // Subscribe before checking the token and pulling, so that a revocation
    // or a change committed in between still reaches us. A revocation since
    // the request's own check has invalidated the cached state already.
    let mut sub = state.notifier.subscribe(user, vec![]);
    state.auth.check(&auth.token, None).await?;
    let view = state.store.view(user).await?;
    sub.set_scopes(readable(&view));
    let first = state.store.pull(user, pull.clone()).await?;
    if has_news(&first) {
        return Ok(first);
    }
    loop {
        match wait_for_change(
            &mut sub,
            user,
            device,
            (&first.cursor, view.personal),
            deadline,
        )
        .await
        {
            Woken::Timeout => return Ok(first),
            // A token of the user was revoked: this one? (Its cached state
            // was dropped before we were told, so this reads afresh.)
            Woken::Revocation => {
                state.auth.check(&auth.token, None).await?;
            }
            Woken::Change => break,
        }
    }
    // One write can wake many long-polls: they take turns, so that other
    // requests still find free database connections.
    let _turn = state.woken_pulls.acquire().await;
    let out = state.store.pull(user, pull).await?;
    if has_news(&out) {
        // Revoked while we pulled: its notice may not have been handled
        // yet, so check against a state read after the pull.
        state.auth.check(&auth.token, Some(Instant::now())).await?;
    }
    Ok(out)
}

/// Whether a pull has something for the device.
fn has_news(out: &SyncOutput) -> bool {
    !out.records.is_empty() || out.has_more || !out.removed_spaces.is_empty()
}

enum Woken {
    /// Something to pull.
    Change,
    /// A token of the user may have been revoked.
    Revocation,
    Timeout,
}

/// Waits until another device commits something past `cursor`, a token of
/// the user is revoked, or `deadline` passes.
async fn wait_for_change(
    sub: &mut Subscription,
    user: UserId,
    device: &str,
    (cursor, personal): (&Positions, ScopeId),
    deadline: Instant,
) -> Woken {
    loop {
        tokio::select! {
            poke = sub.pokes.recv() => match poke {
                Ok(p) if p.membership || p.gap => return Woken::Change,
                Ok(p) if p.user == user && p.device == device => continue,
                Ok(p) if cursor.get(p.scope, personal).is_none_or(|at| p.version > at) => {
                    return Woken::Change
                }
                Ok(_) => continue,
                // Missed some pokes: there is news, pull to find out.
                Err(broadcast::error::RecvError::Lagged(_)) => return Woken::Change,
                Err(broadcast::error::RecvError::Closed) => return Woken::Timeout,
            },
            Ok(()) = sub.revocations.changed() => return Woken::Revocation,
            _ = tokio::time::sleep_until(deadline.into()) => return Woken::Timeout,
        }
    }
}

/// The query of `GET /api/sync/initial`, as text: its rules are the cursor's
/// and `limit`'s, with their own messages.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitialQuery {
    last_sync_timestamp: Option<String>,
    limit: Option<String>,
}

impl InitialQuery {
    fn cursor(&self) -> Result<CursorStart, ApiError> {
        let Some(s) = &self.last_sync_timestamp else {
            return Ok(CursorStart::Scratch);
        };
        // Query strings are text: digits are epoch milliseconds, as a JSON
        // number would be in POST /api/sync.
        match s.parse::<i64>() {
            Ok(ms) => cursor::parse(Some(&Value::from(ms))),
            Err(_) => cursor::parse_str(s),
        }
        .map_err(|e| ApiError::InvalidCursor(e.0))
    }

    fn limit(&self) -> Result<usize, ApiError> {
        let v = self.limit.as_ref().map(|s| {
            s.parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::String(s.clone()))
        });
        Ok(parse_limit(v.as_ref())?)
    }
}

/// Every live record (from scratch), or, with `lastSyncTimestamp`, the next
/// page: `?lastSyncTimestamp=<syncTimestamp>&limit=N`.
#[utoipa::path(
    get,
    path = "/api/sync/initial",
    tag = "sync",
    security(("bearer" = [])),
    params(
        ("lastSyncTimestamp" = Option<String>, Query, description = "Absent: from scratch (every \
            live record). A `syncTimestamp` from an earlier answer; or a date: all digits are \
            epoch milliseconds from 0 to 253402300799999, else an ISO-8601 date-time with \
            offset (years 0000 to 9999). Anything else: 400 `invalid_cursor`."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 5000, description = "Records per page, \
            1 to 5000; absent: 1000."),
    ),
    responses(
        (status = 200, description = "A page of records", body = Envelope<InitialPage>),
        (status = 409, description = "`resync_required`: the cursor is older than the history kept", body = ErrorBody),
    )
)]
pub async fn initial(
    State(state): State<AppState>,
    AuthUser { user, .. }: AuthUser,
    ApiQuery(q): ApiQuery<InitialQuery>,
) -> Result<Response, ApiError> {
    let input = PullInput {
        cursor: q.cursor()?,
        limit: q.limit()?,
        max_bytes: state.sync.max_page_bytes,
    };
    let out = state.store.pull(user.id, input).await?;
    Ok(ok(
        StatusCode::OK,
        InitialAnswer {
            updates: updates(state.model, out.records)?,
            sync_timestamp: out.cursor.encode(),
            has_more: out.has_more,
            removed_spaces: out.removed_spaces,
        },
    ))
}

/// Records as JSON text; each stored row is dropped as soon as it is
/// written, so a page is held about once, not twice.
fn updates(model: Model, records: Vec<PulledRecord>) -> Result<ModelUpdates, ApiError> {
    crate::telemetry::pulled(records.len(), records.iter().map(PulledRecord::size).sum());
    let mut out = ModelUpdates::new(model);
    for r in records {
        let meta = r.meta();
        let record = write_record(r.entity, &meta, &r.data)
            .map_err(|e| ApiError::Internal(format!("stored record {}: {e}", r.id)))?;
        out.push(r.entity, record);
    }
    Ok(out)
}
