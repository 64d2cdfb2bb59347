//! Invitations to shared spaces: the invitee lists, accepts or declines
//! theirs (`/api/invitations…`); the owner lists and revokes the space's
//! (`/api/spaces/{spaceId}/invitations…`). The owner invites through
//! `POST /api/spaces/{spaceId}/members` (spaces.rs). Thin: parse, one store
//! call (the engine's rules in one transaction), poke.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use tidesync_protocol::entity::parse_uuid;
use tidesync_protocol::error::{Envelope, ErrorBody};
use tidesync_protocol::invitations::{
    AcceptedResponse, DeclineRequest, DeclinedResponse, InvitationResponse, InvitationStatus,
    InvitationsResponse, Inviter, ReceivedInvitation, SentInvitationsResponse,
};
use tidesync_protocol::time::{now_millis, to_iso};
use tidesync_protocol::InvitationId;

use super::views::{sent_view, space_id, view};
use super::{ok, OptionalJson};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;

fn invitation_id(s: &str) -> Result<InvitationId, ApiError> {
    parse_uuid(s)
        .map(InvitationId::from_uuid)
        .ok_or_else(|| ApiError::Validation("invitationId must be a UUID".into()))
}

/// `GET /api/invitations`: the caller's pending invitations.
#[utoipa::path(
    get,
    path = "/api/invitations",
    tag = "invitations",
    description = "Your pending, unexpired invitations (to your account's email), oldest first: \
        the space's id and name, who invites, the role. Nothing else of the space.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The pending invitations", body = Envelope<InvitationsResponse>),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    AuthUser { user, .. }: AuthUser,
) -> Result<Response, ApiError> {
    let list = state.store.invitations(user.id, now_millis()).await?;
    let invitations = list
        .into_iter()
        .map(|i| ReceivedInvitation {
            id: i.id,
            space_id: i.space,
            space_name: i.space_name,
            inviter: Inviter {
                name: i.inviter_name,
                email: i.inviter_email,
            },
            role: i.role,
            created_at: to_iso(i.created_at),
            expires_at: to_iso(i.expires_at),
        })
        .collect();
    Ok(ok(StatusCode::OK, InvitationsResponse { invitations }))
}

/// `POST /api/invitations/{invitationId}/accept`.
#[utoipa::path(
    post,
    path = "/api/invitations/{invitation_id}/accept",
    tag = "invitations",
    description = "Accepts one of your invitations: you become a member with its role, and the \
        space with all its records arrives at your devices' next pull (move-in). Not yours, \
        unknown, expired, answered, revoked, its space deleted, or its sender no longer the \
        space's owner: 404.",
    security(("bearer" = [])),
    params(("invitation_id" = uuid::Uuid, Path, description = "The invitation's id (UUID)")),
    responses(
        (status = 200, description = "Accepted: the space, your role and the members", body = Envelope<AcceptedResponse>),
        (status = 404, description = "`not_found`: no such invitation for you", body = ErrorBody),
        (status = 409, description = "`conflict`: a member already, or your own records have ids of the space's", body = ErrorBody),
    )
)]
pub async fn accept(
    State(state): State<AppState>,
    AuthUser { user, .. }: AuthUser,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = invitation_id(&id)?;
    let accepted = state
        .store
        .accept_invitation(user.id, id, now_millis())
        .await?;
    Ok(ok(
        StatusCode::OK,
        AcceptedResponse {
            space_id: accepted.space,
            role: accepted.role,
            members: accepted.changed.members.iter().map(view).collect(),
        },
    ))
}

/// `POST /api/invitations/{invitationId}/decline {block?}`.
#[utoipa::path(
    post,
    path = "/api/invitations/{invitation_id}/decline",
    tag = "invitations",
    description = "Declines one of your invitations. With `{\"block\": true}`, later invitations \
        to this space are stored but never shown to you. The body is optional.",
    security(("bearer" = [])),
    params(("invitation_id" = uuid::Uuid, Path, description = "The invitation's id (UUID)")),
    request_body = Option<DeclineRequest>,
    responses(
        (status = 200, description = "Declined", body = Envelope<DeclinedResponse>),
        (status = 404, description = "`not_found`: no such invitation for you", body = ErrorBody),
    )
)]
pub async fn decline(
    State(state): State<AppState>,
    AuthUser { user, .. }: AuthUser,
    Path(id): Path<String>,
    OptionalJson(req): OptionalJson<DeclineRequest>,
) -> Result<Response, ApiError> {
    let id = invitation_id(&id)?;
    let d = state
        .store
        .decline_invitation(user.id, id, req.block, now_millis())
        .await?;
    Ok(ok(
        StatusCode::OK,
        DeclinedResponse {
            id: d.id,
            space_id: d.space,
            status: InvitationStatus::Declined,
            blocked: d.blocked,
        },
    ))
}

/// `GET /api/spaces/{spaceId}/invitations`: the owner's pending ones.
#[utoipa::path(
    get,
    path = "/api/spaces/{space_id}/invitations",
    tag = "spaces",
    description = "The space's pending, unexpired invitations (owner only), oldest first. An \
        invitation whose invitee blocked the space looks pending until it expires.",
    security(("bearer" = [])),
    params(("space_id" = uuid::Uuid, Path, description = "The space's id (UUID)")),
    responses(
        (status = 200, description = "The pending invitations", body = Envelope<SentInvitationsResponse>),
        (status = 403, description = "`forbidden`: only the owner may do this", body = ErrorBody),
        (status = 404, description = "`not_found`: no such space visible to the user", body = ErrorBody),
    )
)]
pub async fn sent(
    State(state): State<AppState>,
    AuthUser { user, .. }: AuthUser,
    Path(space): Path<String>,
) -> Result<Response, ApiError> {
    let list = state
        .store
        .space_invitations(user.id, space_id(&space)?, now_millis())
        .await?;
    Ok(ok(
        StatusCode::OK,
        SentInvitationsResponse {
            invitations: list.iter().map(sent_view).collect(),
        },
    ))
}

/// `DELETE /api/spaces/{spaceId}/invitations/{invitationId}`: the owner
/// withdraws a pending invitation.
#[utoipa::path(
    delete,
    path = "/api/spaces/{space_id}/invitations/{invitation_id}",
    tag = "spaces",
    security(("bearer" = [])),
    params(
        ("space_id" = uuid::Uuid, Path, description = "The space's id (UUID)"),
        ("invitation_id" = uuid::Uuid, Path, description = "The invitation's id (UUID)"),
    ),
    responses(
        (status = 200, description = "Revoked", body = Envelope<InvitationResponse>),
        (status = 403, description = "`forbidden`: only the owner may do this", body = ErrorBody),
        (status = 404, description = "`not_found`: no such space, or no such pending invitation to it", body = ErrorBody),
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    AuthUser { user, .. }: AuthUser,
    Path((space, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (space, id) = (space_id(&space)?, invitation_id(&id)?);
    let revoked = state
        .store
        .revoke_invitation(user.id, space, id, now_millis())
        .await?;
    Ok(ok(
        StatusCode::OK,
        InvitationResponse {
            invitation: sent_view(&revoked.invitation),
        },
    ))
}
