//! `POST /api/sync` (push and pull) and `GET /api/sync/initial` (pull).
//! Thin: parse, authorize, one session call (session.rs), respond.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use tidesync_protocol::cursor::{self, CursorStart};
use tidesync_protocol::entity::Model;
use tidesync_protocol::sync::{
    parse_limit, parse_request_in, write_record, InitialAnswer, InitialPage, ModelUpdates,
    SyncAnswer, SyncResponse,
};
use tidesync_store::{PulledRecord, SyncOutput};

use tidesync_protocol::error::{Envelope, ErrorBody};
use tidesync_protocol::sync::SyncBody;

use super::{ok, ApiQuery, JsonBytes};
use crate::auth::AuthUser;
use crate::error::ApiError;
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
    let req = parse_request_in(state.model, &body, state.sessions.limits.max_changes)?;
    drop(body);
    let out = state.sessions.sync(&auth, req).await?;
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
    let out = state
        .sessions
        .pull(user.id, q.cursor()?, q.limit()?)
        .await?;
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
