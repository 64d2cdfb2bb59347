//! The members endpoints of shared spaces (`/api/spaces/{spaceId}/…`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ids::UserId;
use crate::scope::Role;

/// A member as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberView {
    pub user_id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
    /// When the member got this role (ISO-8601).
    pub since: String,
}

/// `data` of every members endpoint: the members after the request, owner
/// first, then editors, then viewers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MembersResponse {
    pub members: Vec<MemberView>,
}

/// `POST /api/spaces/{spaceId}/members`: invites an email (the invitee
/// accepts to become a member).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AddMemberRequest {
    pub email: String,
    /// `editor` or `viewer`.
    pub role: Role,
}

/// `PATCH /api/spaces/{spaceId}/members/{userId}`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SetRoleRequest {
    /// `editor` or `viewer`.
    pub role: Role,
}

/// `POST /api/spaces/{spaceId}/owner`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransferRequest {
    pub user_id: UserId,
}
