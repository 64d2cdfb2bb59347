//! Invitations to shared spaces: sharing needs the invitee's consent.
//! The owner invites by email (`POST /api/spaces/{spaceId}/members`); the
//! invitee lists, accepts or declines from their own account
//! (`/api/invitations…`). Nothing of the space reaches the invitee before
//! they accept, and what the owner is answered says nothing of whether the
//! email has an account.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ids::{InvitationId, RecordId};
use crate::scope::Role;
use crate::spaces::MemberView;

/// Where an invitation is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InvitationStatus {
    /// Waiting for the invitee (until `expiresAt`).
    Pending,
    Accepted,
    Declined,
    /// Withdrawn by the owner.
    Revoked,
}

impl InvitationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InvitationStatus::Pending => "pending",
            InvitationStatus::Accepted => "accepted",
            InvitationStatus::Declined => "declined",
            InvitationStatus::Revoked => "revoked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => InvitationStatus::Pending,
            "accepted" => InvitationStatus::Accepted,
            "declined" => InvitationStatus::Declined,
            "revoked" => InvitationStatus::Revoked,
            _ => return None,
        })
    }
}

/// An invitation as its sender (the space's owner) sees it: the same shape
/// whether or not the email has an account, or has blocked the space.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SentInvitation {
    pub id: InvitationId,
    pub space_id: RecordId,
    /// The invitee's email, normalized (trimmed, lower-case).
    pub email: String,
    /// `editor` or `viewer`: the role the invitee gets by accepting.
    pub role: Role,
    pub status: InvitationStatus,
    /// ISO-8601.
    pub created_at: String,
    /// ISO-8601: after this it can no longer be accepted.
    pub expires_at: String,
}

/// `data` of `POST /api/spaces/{spaceId}/members` (202) and of
/// `DELETE /api/spaces/{spaceId}/invitations/{invitationId}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InvitationResponse {
    pub invitation: SentInvitation,
}

/// `data` of `GET /api/spaces/{spaceId}/invitations`: the owner's pending,
/// unexpired invitations to the space, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SentInvitationsResponse {
    pub invitations: Vec<SentInvitation>,
}

/// Who invites.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Inviter {
    pub name: String,
    pub email: String,
}

/// An invitation as the invitee sees it: what they would accept, and
/// nothing else of the space.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceivedInvitation {
    pub id: InvitationId,
    pub space_id: RecordId,
    /// The space's name as it is now.
    pub space_name: String,
    pub inviter: Inviter,
    /// `editor` or `viewer`.
    pub role: Role,
    /// ISO-8601.
    pub created_at: String,
    /// ISO-8601.
    pub expires_at: String,
}

/// `data` of `GET /api/invitations`: the caller's pending invitations,
/// oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InvitationsResponse {
    pub invitations: Vec<ReceivedInvitation>,
}

/// `data` of `POST /api/invitations/{invitationId}/accept`: the space is
/// shared with the caller; its records arrive at the next pull.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AcceptedResponse {
    pub space_id: RecordId,
    pub role: Role,
    /// The members after the acceptance, owner first.
    pub members: Vec<MemberView>,
}

/// `POST /api/invitations/{invitationId}/decline`; the body is optional.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct DeclineRequest {
    /// Also refuse every later invitation to this space: they are stored
    /// but never shown to you (the owner sees them pending until they
    /// expire). Default false.
    #[serde(default)]
    pub block: bool,
}

/// `data` of `POST /api/invitations/{invitationId}/decline`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeclinedResponse {
    pub id: InvitationId,
    pub space_id: RecordId,
    /// `declined`.
    pub status: InvitationStatus,
    /// Whether later invitations to this space are now hidden from you.
    pub blocked: bool,
}
