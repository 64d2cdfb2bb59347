//! The types of invitations to shared spaces, as the [`Store`](crate::Store)
//! speaks them. The rules are `tidesync_engine::members::invitations`.

use tidesync_protocol::invitations::InvitationStatus;
use tidesync_protocol::time::Millis;
use tidesync_protocol::{InvitationId, RecordId, Role, ScopeId, UserId};

pub use tidesync_engine::members::invitations::{InviteLimits, INVITATION_TTL_MS, RATE_WINDOW_MS};

use crate::MembersChanged;

/// An invitation as its sender (the space's owner) sees it: nothing in it
/// says whether the email has an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invitation {
    pub id: InvitationId,
    pub space: RecordId,
    pub email: String,
    pub role: Role,
    pub status: InvitationStatus,
    pub created_at: Millis,
    pub expires_at: Millis,
}

/// What inviting or revoking did: the invitation, and whose devices to
/// poke (the invitee, when the email has an account that does not block
/// the space) with their personal scope. The poke is for the invitee's
/// streams only; nothing of it reaches the inviter.
#[derive(Clone, Debug)]
pub struct InvitationChanged {
    pub invitation: Invitation,
    pub notify: Vec<(UserId, ScopeId)>,
}

/// An invitation as the invitee sees it: what they would accept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedInvitation {
    pub id: InvitationId,
    pub space: RecordId,
    pub space_name: String,
    pub inviter_name: String,
    pub inviter_email: String,
    pub role: Role,
    pub created_at: Millis,
    pub expires_at: Millis,
}

/// An acceptance: the space is shared with the caller.
#[derive(Clone, Debug)]
pub struct Accepted {
    pub space: RecordId,
    pub role: Role,
    /// The members after it, and whose devices must pull (as for any
    /// membership change).
    pub changed: MembersChanged,
}

/// A refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Declined {
    pub id: InvitationId,
    pub space: RecordId,
    /// Later invitations to this space are hidden from the caller.
    pub blocked: bool,
}

/// The name of a space from its stored data (a JSON object), or `""`.
pub fn space_name(data: &str) -> String {
    serde_json::from_str::<serde_json::Value>(data)
        .ok()
        .and_then(|v| v.get("name")?.as_str().map(str::to_owned))
        .unwrap_or_default()
}
