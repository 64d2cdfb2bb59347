//! The members of shared spaces (`/api/spaces/{spaceId}/…`): online calls,
//! each answering the members after the change, owner first. A member is
//! added by an invitation the invitee accepts (`invitations.rs`).

use reqwest::Method;
use tidesync_protocol::spaces::{MemberView, MembersResponse};
use tidesync_protocol::{RecordId, Role, UserId};

use crate::{Client, Result};

impl Client {
    async fn members_call(
        &self,
        method: Method,
        path: String,
        body: Option<serde_json::Value>,
    ) -> Result<Vec<MemberView>> {
        let (r, _): (MembersResponse, _) = self.request(method, &path, body.as_ref()).await?;
        Ok(r.members)
    }

    /// `GET /api/spaces/{spaceId}/members`.
    pub async fn members(&self, space: RecordId) -> Result<Vec<MemberView>> {
        self.members_call(Method::GET, format!("/api/spaces/{space}/members"), None)
            .await
    }

    /// `PATCH /api/spaces/{spaceId}/members/{userId}`: the owner changes a role.
    pub async fn set_role(
        &self,
        space: RecordId,
        member: UserId,
        role: Role,
    ) -> Result<Vec<MemberView>> {
        let body = serde_json::json!({"role": role});
        let path = format!("/api/spaces/{space}/members/{member}");
        self.members_call(Method::PATCH, path, Some(body)).await
    }

    /// `DELETE /api/spaces/{spaceId}/members/{userId}`: the owner removes a
    /// member, or a member (`member` = themself) leaves.
    pub async fn remove_member(&self, space: RecordId, member: UserId) -> Result<Vec<MemberView>> {
        let path = format!("/api/spaces/{space}/members/{member}");
        self.members_call(Method::DELETE, path, None).await
    }

    /// `POST /api/spaces/{spaceId}/owner`: hands the space to another member.
    pub async fn transfer_ownership(&self, space: RecordId, to: UserId) -> Result<Vec<MemberView>> {
        let body = serde_json::json!({"userId": to});
        self.members_call(
            Method::POST,
            format!("/api/spaces/{space}/owner"),
            Some(body),
        )
        .await
    }
}
