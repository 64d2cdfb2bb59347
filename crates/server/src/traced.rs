//! Spans around every store call, with the user, what the call carries and
//! what it returned, never a secret. With `RUST_LOG=debug` (or
//! `tidesync::traced=debug`) each closes with its duration, so a slow
//! request shows where it spent its time; with the `otel` feature they go to
//! an OpenTelemetry collector too.

use std::sync::Arc;

use async_trait::async_trait;
use tidesync_protocol::time::Millis;
use tidesync_protocol::{InvitationId, RecordId, Role, UserId};
use tidesync_store::{
    Accepted, Announcement, AuthState, Backend, Credentials, Declined, GcHorizon, GcReport, Health,
    Invitation, InvitationChanged, InviteLimits, Member, MemberOp, MembersChanged, NewUser,
    PullInput, PushInput, ReceivedInvitation, Store, StoreError, SyncOutput, User, View,
};
use tracing::{debug_span, field::Empty, Instrument};

/// A store whose calls are traced; everything else is the inner store's.
pub struct Traced(pub Arc<dyn Store>);

fn outcome<T>(span: &tracing::Span, r: &Result<T, StoreError>) {
    if let Err(e) = r {
        span.record("error", tracing::field::display(e));
    }
}

macro_rules! traced {
    ($name:literal, $call:expr $(, $field:ident = $value:expr)*) => {{
        let span = debug_span!($name, $($field = %$value,)* error = Empty);
        let r = $call.instrument(span.clone()).await;
        outcome(&span, &r);
        r
    }};
}

#[async_trait]
impl Store for Traced {
    fn backend(&self) -> Backend {
        self.0.backend()
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        traced!("store.migrate", self.0.migrate())
    }

    async fn health(&self) -> Health {
        self.0
            .health()
            .instrument(debug_span!("store.health"))
            .await
    }

    async fn create_user(&self, user: NewUser) -> Result<User, StoreError> {
        let id = user.id;
        traced!("store.create_user", self.0.create_user(user), user = id)
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        traced!("store.user_by_id", self.0.user_by_id(id), user = id)
    }

    async fn credentials_by_email(&self, email: &str) -> Result<Option<Credentials>, StoreError> {
        traced!(
            "store.credentials_by_email",
            self.0.credentials_by_email(email)
        )
    }

    async fn auth_state(&self, id: UserId, now: Millis) -> Result<Option<AuthState>, StoreError> {
        traced!("store.auth_state", self.0.auth_state(id, now), user = id)
    }

    async fn revoke_token(
        &self,
        user: UserId,
        jti: &str,
        expires_at: Millis,
        now: Millis,
    ) -> Result<bool, StoreError> {
        traced!(
            "store.revoke_token",
            self.0.revoke_token(user, jti, expires_at, now),
            user = user
        )
    }

    async fn spend_ticket(
        &self,
        user: UserId,
        jti: &str,
        expires_at: Millis,
        now: Millis,
    ) -> Result<bool, StoreError> {
        traced!(
            "store.spend_ticket",
            self.0.spend_ticket(user, jti, expires_at, now),
            user = user
        )
    }

    async fn change_password(&self, user: UserId, password_hash: &str) -> Result<i64, StoreError> {
        traced!(
            "store.change_password",
            self.0.change_password(user, password_hash),
            user = user
        )
    }

    async fn upgrade_password_hash(
        &self,
        user: UserId,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        traced!(
            "store.upgrade_password_hash",
            self.0.upgrade_password_hash(user, old, new),
            user = user
        )
    }

    async fn import_user(
        &self,
        user: tidesync_store::ImportedUser,
    ) -> Result<tidesync_store::ImportOutcome, StoreError> {
        let id = user.id;
        traced!("store.import_user", self.0.import_user(user), user = id)
    }

    async fn delete_user(&self, user: UserId) -> Result<(), StoreError> {
        traced!("store.delete_user", self.0.delete_user(user), user = user)
    }

    async fn push(&self, user: UserId, input: PushInput) -> Result<SyncOutput, StoreError> {
        let changes = input.changes.len();
        let span = debug_span!("store.push", user = %user, changes,
                               records = Empty, scopes_written = Empty, error = Empty);
        let r = self.0.push(user, input).instrument(span.clone()).await;
        if let Ok(out) = &r {
            span.record("records", out.records.len());
            span.record("scopes_written", out.wrote.len());
        }
        outcome(&span, &r);
        r
    }

    async fn pull(&self, user: UserId, input: PullInput) -> Result<SyncOutput, StoreError> {
        let span = debug_span!("store.pull", user = %user, limit = input.limit,
                               records = Empty, has_more = Empty, error = Empty);
        let r = self.0.pull(user, input).instrument(span.clone()).await;
        if let Ok(out) = &r {
            span.record("records", out.records.len());
            span.record("has_more", out.has_more);
        }
        outcome(&span, &r);
        r
    }

    async fn view(&self, user: UserId) -> Result<View, StoreError> {
        traced!("store.view", self.0.view(user), user = user)
    }

    async fn members(&self, user: UserId, space: RecordId) -> Result<Vec<Member>, StoreError> {
        traced!(
            "store.members",
            self.0.members(user, space),
            user = user,
            space = space
        )
    }

    async fn change_members(
        &self,
        user: UserId,
        space: RecordId,
        op: MemberOp,
    ) -> Result<MembersChanged, StoreError> {
        traced!(
            "store.change_members",
            self.0.change_members(user, space, op),
            user = user,
            space = space
        )
    }

    async fn invite(
        &self,
        user: UserId,
        space: RecordId,
        email: &str,
        role: Role,
        limits: InviteLimits,
        now: Millis,
    ) -> Result<InvitationChanged, StoreError> {
        traced!(
            "store.invite",
            self.0.invite(user, space, email, role, limits, now),
            user = user,
            space = space
        )
    }

    async fn invitations(
        &self,
        user: UserId,
        now: Millis,
    ) -> Result<Vec<ReceivedInvitation>, StoreError> {
        traced!(
            "store.invitations",
            self.0.invitations(user, now),
            user = user
        )
    }

    async fn accept_invitation(
        &self,
        user: UserId,
        id: InvitationId,
        now: Millis,
    ) -> Result<Accepted, StoreError> {
        traced!(
            "store.accept_invitation",
            self.0.accept_invitation(user, id, now),
            user = user,
            invitation = id
        )
    }

    async fn decline_invitation(
        &self,
        user: UserId,
        id: InvitationId,
        block: bool,
        now: Millis,
    ) -> Result<Declined, StoreError> {
        traced!(
            "store.decline_invitation",
            self.0.decline_invitation(user, id, block, now),
            user = user,
            invitation = id
        )
    }

    async fn space_invitations(
        &self,
        user: UserId,
        space: RecordId,
        now: Millis,
    ) -> Result<Vec<Invitation>, StoreError> {
        traced!(
            "store.space_invitations",
            self.0.space_invitations(user, space, now),
            user = user,
            space = space
        )
    }

    async fn revoke_invitation(
        &self,
        user: UserId,
        space: RecordId,
        id: InvitationId,
        now: Millis,
    ) -> Result<InvitationChanged, StoreError> {
        traced!(
            "store.revoke_invitation",
            self.0.revoke_invitation(user, space, id, now),
            user = user,
            invitation = id
        )
    }

    async fn export(
        &self,
        user: UserId,
        q: tidesync_store::ExportQuery,
    ) -> Result<tidesync_store::ExportPage, StoreError> {
        traced!(
            "store.export",
            self.0.export(user, q),
            user = user,
            kind = q.kind.as_str()
        )
    }

    async fn collect_garbage(&self, horizon: GcHorizon) -> Result<GcReport, StoreError> {
        traced!("store.collect_garbage", self.0.collect_garbage(horizon))
    }

    async fn forget_cursors(&self) -> Result<u64, StoreError> {
        traced!("store.forget_cursors", self.0.forget_cursors())
    }

    async fn served_schema(&self) -> Result<Option<String>, StoreError> {
        traced!("store.served_schema", self.0.served_schema())
    }

    async fn record_served_schema(&self, document: &str, at: Millis) -> Result<(), StoreError> {
        traced!(
            "store.record_served_schema",
            self.0.record_served_schema(document, at),
            bytes = document.len()
        )
    }

    fn change_notes(&self) -> tokio::sync::broadcast::Receiver<Announcement> {
        self.0.change_notes()
    }

    async fn close(&self) {
        self.0.close().await
    }
}
