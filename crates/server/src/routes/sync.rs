//! `POST /api/sync` (push and pull) and `GET /api/sync/initial` (pull).
//! Thin: parse, authorize, one store call (one transaction), respond.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::value::RawValue;
use serde_json::Value;
use tidesync_protocol::cursor;
use tidesync_protocol::sync::{
    parse_limit, parse_request, write_record, RecordMeta, ServerUpdates, SyncResponse,
};
use tidesync_protocol::time::now_millis;
use tidesync_protocol::UserId;
use tidesync_store::{PulledRecord, PushInput, SyncOutput};

use super::{ok, ApiJson};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;

pub async fn sync(
    State(state): State<AppState>,
    AuthUser { user, .. }: AuthUser,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let req = parse_request(&body, state.sync.max_changes)?;
    let out = if req.changes.is_empty() {
        state.store.pull(user.id, req.cursor, req.limit).await?
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
            id: r.id,
            user_id: user.as_uuid(),
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
