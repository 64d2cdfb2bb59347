//! `GET /api/auth/me/export`: all of the user's data as one JSON document,
//! streamed page by page so that neither the server nor the database holds
//! it whole.
//!
//! Memory per export is about two pages: a page is read only once the body
//! has taken the previous chunk (the client reads as fast as it likes, and
//! the export goes no faster), pages stop at [`PAGE_BYTES`], a client that
//! stops reading is cut after `EXPORT_IDLE_TIMEOUT` (see `crate::stall`),
//! and the number of exports at once is bounded ([`crate::exports`]).

mod body;

use axum::extract::{Extension, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tidesync_protocol::time::{now_millis, to_iso};
use tidesync_protocol::{RecordId, Role, ScopeId};

use serde_json::value::RawValue;
use tidesync_protocol::error::{Envelope, ErrorBody};
use utoipa::ToSchema;

use super::ApiQuery;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::stall::StallLimit;
use crate::state::AppState;

pub use body::{PAGE, PAGE_BYTES};

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

    let body = body::stream(
        state.store.clone(),
        (user.id, view.personal),
        q.tombstones,
        opening,
        slot,
        state.stopping.clone(),
    );
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
        body,
    )
        .into_response())
}
