//! The one test suite every backend passes, written against [`Store`].
//!
//! A backend's tests call [`backend_suite!`](crate::backend_suite) with an
//! async expression that opens a fresh, migrated store (and a guard that
//! removes its database when dropped).

use serde_json::{json, Value};
use tidesync_protocol::cursor::CursorStart;
use tidesync_protocol::sync::{parse_change, ChangeInput};
use tidesync_protocol::time::now_millis;
use tidesync_protocol::{RecordId, Role, UserId};

use crate::{
    InviteLimits, MembersChanged, NewUser, PullInput, PushInput, Store, StoreError, SyncOutput,
};

pub mod accounts;
pub mod cascades;
pub mod history;
pub mod import;
pub mod invitations;
pub mod locking;
pub mod schema;
pub mod sharing;
pub mod sync;

/// Generates one `#[tokio::test]` per suite test for a backend.
#[macro_export]
macro_rules! backend_suite {
    ($open:expr) => {
        $crate::backend_suite!(@tests $open;
            accounts::accounts_round_trip,
            accounts::emails_are_unique,
            accounts::revoking_needs_a_live_user,
            accounts::revocations_are_announced_and_spent_tickets_are_not,
            sync::pushes_number_versions_in_commit_order,
            sync::commits_are_announced,
            sync::pulls_page_by_count_and_bytes,
            cascades::cascades_load_each_level_with_indexes,
            cascades::a_category_delete_reaches_items_that_also_name_a_space,
            sync::cursors_ahead_and_users_gone_are_refused,
            accounts::deleting_a_user_removes_everything,
            sync::concurrent_pushes_of_one_user_serialise,
            sharing::sharing_moves_the_space_in_whole_and_members_write_to_it,
            sharing::viewers_and_former_members_are_refused_and_removed_members_drop_the_space,
            sharing::only_owners_manage_members_and_non_members_get_404,
            sharing::deleting_an_owner_hands_shared_spaces_on,
            invitations::an_invitation_shares_nothing_until_it_is_accepted,
            invitations::the_owner_is_answered_the_same_whatever_the_email,
            invitations::invitations_others_may_not_answer_are_all_not_found,
            invitations::an_inviter_who_no_longer_owns_the_space_is_not_followed,
            invitations::invitations_are_limited_per_inviter_and_per_space,
            history::old_tombstones_are_collected_and_stale_cursors_must_resync,
            history::the_sync_log_is_pruned_past_its_horizon,
            history::exports_page_by_count_and_bytes,
            import::importing_twice_changes_nothing,
            import::imported_records_pull_in_change_order_with_their_dates,
            import::a_legacy_date_cursor_gets_exactly_what_changed_after_it,
            import::imported_operations_answer_duplicate_and_later_pushes_merge,
            import::an_imported_hash_is_upgraded_without_revoking_tokens,
            locking::members_newer_than_a_space_write_to_it_beside_its_owner,
            schema::the_newest_served_schema_is_remembered,
        );
    };
    (@tests $open:expr; $($($path:ident)::+),* $(,)?) => {
        $(
            $crate::backend_suite!(@one $open; $($path)::+);
        )*
    };
    (@one $open:expr; $name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let Some((store, _guard)) = $open.await else { return };
            $crate::testsuite::$name(&store).await;
            store.close().await;
        }
    };
    (@one $open:expr; $module:ident :: $name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let Some((store, _guard)) = $open.await else { return };
            $crate::testsuite::$module::$name(&store).await;
            store.close().await;
        }
    };
}

pub async fn new_user(store: &dyn Store, email: &str) -> UserId {
    let id = UserId::random();
    store
        .create_user(NewUser {
            id,
            email: email.into(),
            name: "Suite".into(),
            password_hash: "$argon2id$not-a-real-hash".into(),
            created_at: now_millis(),
        })
        .await
        .expect("create user");
    id
}

/// Shares `space` with the account of `email` as a member used to be
/// added: `owner` invites, the invitee accepts.
pub async fn share_with(
    store: &dyn Store,
    owner: UserId,
    space: RecordId,
    email: &str,
    role: Role,
) -> Result<MembersChanged, StoreError> {
    let now = now_millis();
    let invited = store
        .invite(owner, space, email, role, InviteLimits::DEFAULT, now)
        .await?;
    let invitee = store
        .credentials_by_email(email)
        .await?
        .expect("the invitee has an account")
        .user
        .id;
    Ok(store
        .accept_invitation(invitee, invited.invitation.id, now)
        .await?
        .changed)
}

/// The user's personal counter.
pub async fn head(store: &dyn Store, user: UserId) -> Result<i64, StoreError> {
    let v = store.view(user).await?;
    Ok(v.get(v.personal).map_or(0, |s| s.head))
}

pub fn rid(n: u128) -> RecordId {
    RecordId::from_uuid(tidesync_protocol::uuid::Uuid::from_u128(n))
}

pub fn change(op: &str, n: u128, entity: &str, operation: &str, data: Value) -> ChangeInput {
    parse_change(
        &json!({"operationId": op, "id": rid(n).to_string(), "entityType": entity,
                "operation": operation, "data": data,
                "timestamp": "2025-01-01T00:00:00.000Z"}),
        "suite-device",
    )
}

pub fn input(cursor: CursorStart, changes: Vec<ChangeInput>) -> PushInput {
    PushInput {
        device_id: "suite-device".into(),
        cursor,
        changes,
        limit: 1000,
        max_page_bytes: 4 << 20,
        now: now_millis(),
        max_skew: 300_000,
    }
}

pub async fn push(store: &dyn Store, user: UserId, changes: Vec<ChangeInput>) -> SyncOutput {
    let head = head(store, user).await.expect("head");
    let out = store
        .push(user, input(CursorStart::personal(head), changes))
        .await
        .expect("push");
    assert!(out.acks.iter().all(|a| a.success), "{:?}", out.acks);
    out
}

pub(crate) fn pull_input(cursor: CursorStart, limit: usize, max_bytes: usize) -> PullInput {
    PullInput {
        cursor,
        limit,
        max_bytes,
    }
}
