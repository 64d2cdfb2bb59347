//! Invitations to shared spaces: the owner invites an email and manages
//! the space's pending invitations; the invitee lists, accepts or declines
//! theirs. Online calls; nothing of a space reaches the invitee before they
//! accept.

use reqwest::Method;
use serde::de::DeserializeOwned;
use tidesync_protocol::invitations::{
    AcceptedResponse, DeclinedResponse, InvitationResponse, InvitationsResponse,
    ReceivedInvitation, SentInvitation, SentInvitationsResponse,
};
use tidesync_protocol::{InvitationId, RecordId, Role};

use crate::{Client, Result};

impl Client {
    async fn invitations_call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: String,
        body: Option<serde_json::Value>,
    ) -> Result<T> {
        Ok(self.request(method, &path, body.as_ref()).await?.0)
    }

    /// `POST /api/spaces/{spaceId}/members`: the owner invites `email` as
    /// editor or viewer (a pending invitation, the same whether or not the
    /// email has an account; inviting again refreshes it). The invitee
    /// becomes a member when they accept.
    pub async fn invite(&self, space: RecordId, email: &str, role: Role) -> Result<SentInvitation> {
        let body = serde_json::json!({"email": email, "role": role});
        let r: InvitationResponse = self
            .invitations_call(
                Method::POST,
                format!("/api/spaces/{space}/members"),
                Some(body),
            )
            .await?;
        Ok(r.invitation)
    }

    /// `GET /api/spaces/{spaceId}/invitations`: the owner's pending ones.
    pub async fn space_invitations(&self, space: RecordId) -> Result<Vec<SentInvitation>> {
        let r: SentInvitationsResponse = self
            .invitations_call(
                Method::GET,
                format!("/api/spaces/{space}/invitations"),
                None,
            )
            .await?;
        Ok(r.invitations)
    }

    /// `DELETE /api/spaces/{spaceId}/invitations/{invitationId}`: the owner
    /// withdraws one.
    pub async fn revoke_invitation(
        &self,
        space: RecordId,
        id: InvitationId,
    ) -> Result<SentInvitation> {
        let r: InvitationResponse = self
            .invitations_call(
                Method::DELETE,
                format!("/api/spaces/{space}/invitations/{id}"),
                None,
            )
            .await?;
        Ok(r.invitation)
    }

    /// `GET /api/invitations`: the signed-in user's pending invitations.
    pub async fn invitations(&self) -> Result<Vec<ReceivedInvitation>> {
        let r: InvitationsResponse = self
            .invitations_call(Method::GET, "/api/invitations".into(), None)
            .await?;
        Ok(r.invitations)
    }

    /// `POST /api/invitations/{invitationId}/accept`: the space arrives at
    /// the next pull.
    pub async fn accept_invitation(&self, id: InvitationId) -> Result<AcceptedResponse> {
        self.invitations_call(Method::POST, format!("/api/invitations/{id}/accept"), None)
            .await
    }

    /// `POST /api/invitations/{invitationId}/decline`; with `block`, later
    /// invitations to that space are never shown to this user.
    pub async fn decline_invitation(
        &self,
        id: InvitationId,
        block: bool,
    ) -> Result<DeclinedResponse> {
        self.invitations_call(
            Method::POST,
            format!("/api/invitations/{id}/decline"),
            Some(serde_json::json!({ "block": block })),
        )
        .await
    }
}
