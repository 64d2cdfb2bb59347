//! Store types as the API shows them, and the space id of a path: shared by
//! the members routes (`spaces.rs`) and the invitations routes
//! (`invitations.rs`), so neither imports the other.

use tidesync_protocol::entity::parse_uuid;
use tidesync_protocol::invitations::SentInvitation;
use tidesync_protocol::spaces::MemberView;
use tidesync_protocol::time::to_iso;
use tidesync_protocol::RecordId;
use tidesync_store::{Invitation, Member};

use crate::error::ApiError;

pub(crate) fn view(m: &Member) -> MemberView {
    MemberView {
        user_id: m.user,
        email: m.email.clone(),
        name: m.name.clone(),
        role: m.role,
        since: to_iso(m.since),
    }
}

pub(crate) fn sent_view(i: &Invitation) -> SentInvitation {
    SentInvitation {
        id: i.id,
        space_id: i.space,
        email: i.email.clone(),
        role: i.role,
        status: i.status,
        created_at: to_iso(i.created_at),
        expires_at: to_iso(i.expires_at),
    }
}

pub(crate) fn space_id(s: &str) -> Result<RecordId, ApiError> {
    parse_uuid(s)
        .map(RecordId::from_uuid)
        .ok_or_else(|| ApiError::Validation("spaceId must be a UUID".into()))
}
