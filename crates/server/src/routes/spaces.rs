//! The members of shared spaces. Thin: parse, authorize (the store applies
//! the engine's rules in one transaction and announces whose view changed),
//! respond.
//! Adding a member is an invitation the invitee accepts (`invitations.rs`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use tidesync_protocol::auth::normalize_email;
use tidesync_protocol::entity::parse_uuid;
use tidesync_protocol::invitations::InvitationResponse;
use tidesync_protocol::spaces::{
    AddMemberRequest, MembersResponse, SetRoleRequest, TransferRequest,
};
use tidesync_protocol::time::now_millis;
use tidesync_protocol::{RecordId, UserId};
use tidesync_store::{Member, MemberOp};

use tidesync_protocol::error::{Envelope, ErrorBody};

use super::views::{sent_view, space_id, view};
use super::{ok, ApiJson};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;

fn respond(status: StatusCode, members: &[Member]) -> Response {
    ok(
        status,
        MembersResponse {
            members: members.iter().map(view).collect(),
        },
    )
}

fn user_id(s: &str) -> Result<UserId, ApiError> {
    parse_uuid(s)
        .map(UserId::from_uuid)
        .ok_or_else(|| ApiError::Validation("userId must be a UUID".into()))
}

async fn change(
    state: &AppState,
    user: UserId,
    space: RecordId,
    op: MemberOp,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let changed = state.store.change_members(user, space, op).await?;
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

/// `POST /api/spaces/{spaceId}/members {email, role}`: the owner invites
/// an email. Nothing is shared until the invitee accepts; the answer is
/// the same whether or not the email has an account.
#[utoipa::path(
    post,
    path = "/api/spaces/{space_id}/members",
    tag = "spaces",
    description = "Invites an email to the space (owner only). Creates a pending invitation, or \
        refreshes the one pending for this email (same id, new role and expiry). Nothing of the \
        space reaches the invitee before they accept (`POST /api/invitations/{invitation_id}/accept`). \
        The answer is the same whether or not the email has an account, and names no one. \
        At most `INVITATIONS_PER_HOUR` (20) invitations per hour per inviter and \
        `PENDING_INVITATIONS_PER_SPACE` (50) pending per space: beyond, 429 with `Retry-After`.",
    security(("bearer" = [])),
    params(("space_id" = uuid::Uuid, Path, description = "The space's id (UUID)")),
    request_body = AddMemberRequest,
    responses(
        (status = 202, description = "Invited: the pending invitation", body = Envelope<InvitationResponse>),
        (status = 403, description = "`forbidden`: only the owner may do this", body = ErrorBody),
        (status = 404, description = "`not_found`: no such space visible to the user", body = ErrorBody),
        (status = 409, description = "`conflict`: the email is a member already", body = ErrorBody),
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
    let sent = state
        .store
        .invite(
            user.id,
            space,
            &email,
            req.role,
            state.invite_limits,
            now_millis(),
        )
        .await?;
    Ok(ok(
        StatusCode::ACCEPTED,
        InvitationResponse {
            invitation: sent_view(&sent.invitation),
        },
    ))
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
