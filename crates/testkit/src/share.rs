//! Sharing a space as an app does it: the owner invites, the invitee
//! accepts (a space is never shared without the invitee's consent).

use tidesync_client::protocol::invitations::AcceptedResponse;
use tidesync_client::protocol::{RecordId, Role};
use tidesync_client::{Client, Result};

/// `owner` invites `invitee`'s account to `space` with `role`, and the
/// invitee accepts: the space arrives at the invitee's next pull.
pub async fn share(
    owner: &Client,
    invitee: &Client,
    space: RecordId,
    role: Role,
) -> Result<AcceptedResponse> {
    let email = invitee.me().await?.email;
    let invitation = owner.invite(space, &email, role).await?;
    invitee.accept_invitation(invitation.id).await
}
