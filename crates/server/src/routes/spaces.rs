//! The members of shared spaces. Thin: parse, authorize (the store applies
//! the engine's rules in one transaction), poke whoever's view changed.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use tidesync_protocol::auth::normalize_email;
use tidesync_protocol::entity::parse_uuid;
use tidesync_protocol::spaces::{
    AddMemberRequest, MemberView, MembersResponse, SetRoleRequest, TransferRequest,
};
use tidesync_protocol::time::to_iso;
use tidesync_protocol::{RecordId, UserId};
use tidesync_store::{Member, MemberOp, MembersChanged};

use tidesync_protocol::error::{Envelope, ErrorBody};

use super::{ok, ApiJson};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::notify::Poke;
use crate::state::AppState;

fn view(m: &Member) -> MemberView {
    MemberView {
        user_id: m.user,
        email: m.email.clone(),
        name: m.name.clone(),
        role: m.role,
        since: to_iso(m.since),
    }
}

fn respond(status: StatusCode, members: &[Member]) -> Response {
    ok(
        status,
        MembersResponse {
            members: members.iter().map(view).collect(),
        },
    )
}

fn space_id(s: &str) -> Result<RecordId, ApiError> {
    parse_uuid(s)
        .map(RecordId::from_uuid)
        .ok_or_else(|| ApiError::Validation("spaceId must be a UUID".into()))
}

fn user_id(s: &str) -> Result<UserId, ApiError> {
    parse_uuid(s)
        .map(UserId::from_uuid)
        .ok_or_else(|| ApiError::Validation("userId must be a UUID".into()))
}

/// Tells every affected user's streams on this instance (SQLite; on
/// PostgreSQL the store's NOTIFY does it for every instance).
fn announce(state: &AppState, changed: &MembersChanged) {
    if !state.announce_locally {
        return;
    }
    for (user, personal) in &changed.affected {
        state.notifier.publish(Poke {
            scope: *personal,
            version: 0,
            user: *user,
            device: String::new(),
            membership: true,
            gap: false,
        });
    }
}

async fn change(
    state: &AppState,
    user: UserId,
    space: RecordId,
    op: MemberOp,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let changed = state.store.change_members(user, space, op).await?;
    announce(state, &changed);
    Ok(respond(status, &changed.members))
}

/// `GET /api/spaces/{spaceId}/members`.
#[utoipa::path(
    get,
    path = "/api/spaces/{space_id}/members",
    tag = "spaces",
    security(("bearer" = [])),
    params(("space_id" = uuid::Uuid, Path, description = "The space's id (UUID)")),
    responses(
        (status = 200, description = "The members, owner first", body = Envelope<MembersResponse>),
        (status = 403, description = "`forbidden`: only the owner may do this", body = ErrorBody),
        (status = 404, description = "`not_found`: no such space or member visible to the user", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    AuthUser { user, .. }: AuthUser,
    Path(space): Path<String>,
) -> Result<Response, ApiError> {
    let members = state.store.members(user.id, space_id(&space)?).await?;
    Ok(respond(StatusCode::OK, &members))
}

/// `POST /api/spaces/{spaceId}/members {email, role}`: the owner adds an
/// existing user; the first member shares the space.
#[utoipa::path(
    post,
    path = "/api/spaces/{space_id}/members",
    tag = "spaces",
    security(("bearer" = [])),
    params(("space_id" = uuid::Uuid, Path, description = "The space's id (UUID)")),
    request_body = AddMemberRequest,
    responses(
        (status = 201, description = "Added: the members after the change", body = Envelope<MembersResponse>),
        (status = 403, description = "`forbidden`: only the owner may do this", body = ErrorBody),
        (status = 404, description = "`not_found`: no such space or member visible to the user", body = ErrorBody),
        (status = 409, description = "`conflict`: the state does not allow it (e.g. already a member)", body = ErrorBody),
    )
)]
pub async fn add(
    State(state): State<AppState>,
    AuthUser { user, .. }: AuthUser,
    Path(space): Path<String>,
    ApiJson(req): ApiJson<AddMemberRequest>,
) -> Result<Response, ApiError> {
    let space = space_id(&space)?;
    let email = normalize_email(&req.email)?;
    let op = MemberOp::Add {
        email,
        role: req.role,
    };
    change(&state, user.id, space, op, StatusCode::CREATED).await
}

/// `PATCH /api/spaces/{spaceId}/members/{userId} {role}`: the owner changes a role.
#[utoipa::path(
    patch,
    path = "/api/spaces/{space_id}/members/{user_id}",
    tag = "spaces",
    security(("bearer" = [])),
    params(
        ("space_id" = uuid::Uuid, Path, description = "The space's id (UUID)"),
        ("user_id" = uuid::Uuid, Path, description = "The member's user id (UUID)"),
    ),
    request_body = SetRoleRequest,
    responses(
        (status = 200, description = "The members after the change", body = Envelope<MembersResponse>),
        (status = 403, description = "`forbidden`: only the owner may do this", body = ErrorBody),
        (status = 404, description = "`not_found`: no such space or member visible to the user", body = ErrorBody),
        (status = 409, description = "`conflict`: the state does not allow it (e.g. already a member)", body = ErrorBody),
    )
)]
pub async fn set_role(
    State(state): State<AppState>,
    AuthUser { user, .. }: AuthUser,
    Path((space, member)): Path<(String, String)>,
    ApiJson(req): ApiJson<SetRoleRequest>,
) -> Result<Response, ApiError> {
    let op = MemberOp::SetRole {
        member: user_id(&member)?,
        role: req.role,
    };
    change(&state, user.id, space_id(&space)?, op, StatusCode::OK).await
}

/// `DELETE /api/spaces/{spaceId}/members/{userId}`: the owner removes a
/// member, or a member leaves.
#[utoipa::path(
    delete,
    path = "/api/spaces/{space_id}/members/{user_id}",
    tag = "spaces",
    security(("bearer" = [])),
    params(
        ("space_id" = uuid::Uuid, Path, description = "The space's id (UUID)"),
        ("user_id" = uuid::Uuid, Path, description = "The member's user id (UUID)"),
    ),
    responses(
        (status = 200, description = "The members after the change", body = Envelope<MembersResponse>),
        (status = 403, description = "`forbidden`: only the owner may do this", body = ErrorBody),
        (status = 404, description = "`not_found`: no such space or member visible to the user", body = ErrorBody),
        (status = 409, description = "`conflict`: the state does not allow it (e.g. already a member)", body = ErrorBody),
    )
)]
pub async fn remove(
    State(state): State<AppState>,
    AuthUser { user, .. }: AuthUser,
    Path((space, member)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let op = MemberOp::Remove {
        member: user_id(&member)?,
    };
    change(&state, user.id, space_id(&space)?, op, StatusCode::OK).await
}

/// `POST /api/spaces/{spaceId}/owner {userId}`: the owner hands the space
/// to another member and becomes an editor.
#[utoipa::path(
    post,
    path = "/api/spaces/{space_id}/owner",
    tag = "spaces",
    security(("bearer" = [])),
    params(("space_id" = uuid::Uuid, Path, description = "The space's id (UUID)")),
    request_body = TransferRequest,
    responses(
        (status = 200, description = "The members after the change", body = Envelope<MembersResponse>),
        (status = 403, description = "`forbidden`: only the owner may do this", body = ErrorBody),
        (status = 404, description = "`not_found`: no such space or member visible to the user", body = ErrorBody),
        (status = 409, description = "`conflict`: the state does not allow it (e.g. already a member)", body = ErrorBody),
    )
)]
pub async fn transfer(
    State(state): State<AppState>,
    AuthUser { user, .. }: AuthUser,
    Path(space): Path<String>,
    ApiJson(req): ApiJson<TransferRequest>,
) -> Result<Response, ApiError> {
    let op = MemberOp::Transfer { to: req.user_id };
    change(&state, user.id, space_id(&space)?, op, StatusCode::OK).await
}
