//! The suite's invitation tests: sharing needs the invitee's consent, the
//! owner's answer is the same whatever the email, and every invitation the
//! caller may not answer is the same `NotFound`.

use std::sync::Arc;

use serde_json::{json, Value};
use tidesync_protocol::cursor::CursorStart;
use tidesync_protocol::invitations::InvitationStatus;
use tidesync_protocol::time::now_millis;
use tidesync_protocol::{InvitationId, Role, UserId};

use super::{change, new_user, push, rid, share_with};
use crate::{
    InvitationChanged, InviteLimits, MemberOp, PullInput, Store, StoreError, INVITATION_TTL_MS,
    RATE_WINDOW_MS,
};

fn everything() -> PullInput {
    PullInput {
        cursor: CursorStart::Scratch,
        limit: 1000,
        max_bytes: 1 << 30,
    }
}

/// Alice's space 1 "Movies" (category 2, item 3); Bob and Carol.
async fn setup(store: &Arc<dyn Store>) -> (UserId, UserId, UserId) {
    let alice = new_user(&**store, "alice@example.com").await;
    let bob = new_user(&**store, "bob@example.com").await;
    let carol = new_user(&**store, "carol@example.com").await;
    push(
        &**store,
        alice,
        vec![
            change("s", 1, "space", "create", json!({"name": "Movies"})),
            change(
                "c",
                2,
                "category",
                "create",
                json!({"name": "Sci-fi", "spaceId": rid(1).to_string()}),
            ),
            change(
                "i",
                3,
                "item",
                "create",
                json!({"title": "Dune", "categoryId": rid(2).to_string()}),
            ),
        ],
    )
    .await;
    (alice, bob, carol)
}

async fn invite_at(
    store: &Arc<dyn Store>,
    by: UserId,
    space: u128,
    email: &str,
    role: Role,
    limits: InviteLimits,
    now: i64,
) -> Result<InvitationChanged, StoreError> {
    store.invite(by, rid(space), email, role, limits, now).await
}

async fn invite(
    store: &Arc<dyn Store>,
    by: UserId,
    email: &str,
    role: Role,
) -> Result<InvitationChanged, StoreError> {
    let now = now_millis();
    invite_at(store, by, 1, email, role, InviteLimits::DEFAULT, now).await
}

async fn listed(store: &Arc<dyn Store>, user: UserId) -> Vec<InvitationId> {
    let list = store.invitations(user, now_millis()).await.unwrap();
    list.iter().map(|i| i.id).collect()
}

fn not_found<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
}

pub async fn an_invitation_shares_nothing_until_it_is_accepted(store: &Arc<dyn Store>) {
    let (alice, bob, _) = setup(store).await;
    let sent = invite(store, alice, "bob@example.com", Role::Viewer)
        .await
        .unwrap();
    let inv = sent.invitation.clone();
    assert_eq!(
        (inv.space, inv.email.as_str(), inv.role, inv.status),
        (
            rid(1),
            "bob@example.com",
            Role::Viewer,
            InvitationStatus::Pending
        )
    );
    assert_eq!(inv.expires_at - inv.created_at, INVITATION_TTL_MS);
    assert_eq!(sent.notify.len(), 1, "Bob's devices are poked");
    assert_eq!(sent.notify[0].0, bob);
    // Nothing of the space reaches Bob, and it is not shared yet.
    assert!(store
        .pull(bob, everything())
        .await
        .unwrap()
        .records
        .is_empty());
    assert_eq!(store.view(bob).await.unwrap().scopes.len(), 1);
    assert_eq!(store.members(alice, rid(1)).await.unwrap().len(), 1);
    not_found(store.members(bob, rid(1)).await);
    // What Bob sees: the space's name and who invites, nothing else.
    let mine = store.invitations(bob, now_millis()).await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(
        (
            mine[0].id,
            mine[0].space_name.as_str(),
            mine[0].inviter_email.as_str(),
            mine[0].role
        ),
        (inv.id, "Movies", "alice@example.com", Role::Viewer)
    );
    // Inviting again refreshes it: same id, the new role.
    let again = invite(store, alice, "bob@example.com", Role::Editor)
        .await
        .unwrap()
        .invitation;
    assert_eq!((again.id, again.role), (inv.id, Role::Editor));
    assert_eq!(again.created_at, inv.created_at);
    assert_eq!(listed(store, bob).await, vec![inv.id]);
    // Accepted: the space moves in whole, as adding a member did.
    let accepted = store
        .accept_invitation(bob, inv.id, now_millis())
        .await
        .unwrap();
    assert_eq!((accepted.space, accepted.role), (rid(1), Role::Editor));
    assert_eq!(accepted.changed.members.len(), 2);
    assert_eq!(
        accepted.changed.affected.len(),
        2,
        "the first member shares the space: the owner's devices move it in too"
    );
    let bobs = store.pull(bob, everything()).await.unwrap();
    assert_eq!(bobs.records.len(), 3);
    assert!(listed(store, bob).await.is_empty());
    not_found(store.accept_invitation(bob, inv.id, now_millis()).await);
    // Leaving, then invited again: nothing until a new acceptance.
    store
        .change_members(bob, rid(1), MemberOp::Remove { member: bob })
        .await
        .unwrap();
    let back = invite(store, alice, "bob@example.com", Role::Viewer)
        .await
        .unwrap()
        .invitation;
    assert_ne!(back.id, inv.id);
    not_found(store.members(bob, rid(1)).await);
    store
        .accept_invitation(bob, back.id, now_millis())
        .await
        .unwrap();
    assert_eq!(store.members(bob, rid(1)).await.unwrap().len(), 2);
}

pub async fn the_owner_is_answered_the_same_whatever_the_email(store: &Arc<dyn Store>) {
    let (alice, _bob, carol) = setup(store).await;
    // Carol declines an invitation and blocks the space.
    let first = invite(store, alice, "carol@example.com", Role::Viewer)
        .await
        .unwrap();
    let d = store
        .decline_invitation(carol, first.invitation.id, true, now_millis())
        .await
        .unwrap();
    assert!(d.blocked);
    let mut answers = vec![];
    for email in ["bob@example.com", "nobody@example.com", "carol@example.com"] {
        let sent = invite(store, alice, email, Role::Editor).await.unwrap();
        let i = &sent.invitation;
        answers.push((i.role, i.status, i.expires_at - i.created_at));
        assert_eq!(
            sent.notify.len(),
            usize::from(email == "bob@example.com"),
            "{email}: only an account that does not block is poked"
        );
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    // The blocked one is stored, pending to the owner, hidden from Carol.
    let pending = store
        .space_invitations(alice, rid(1), now_millis())
        .await
        .unwrap();
    // (Listed by creation time: these three may share a millisecond.)
    let mut emails: Vec<&str> = pending.iter().map(|i| i.email.as_str()).collect();
    emails.sort_unstable();
    assert_eq!(
        emails,
        vec!["bob@example.com", "carol@example.com", "nobody@example.com"]
    );
    assert!(listed(store, carol).await.is_empty());
    let hidden = pending
        .iter()
        .find(|i| i.email == "carol@example.com")
        .unwrap()
        .id;
    not_found(store.accept_invitation(carol, hidden, now_millis()).await);
    not_found(
        store
            .decline_invitation(carol, hidden, false, now_millis())
            .await,
    );
}

pub async fn invitations_others_may_not_answer_are_all_not_found(store: &Arc<dyn Store>) {
    let (alice, bob, carol) = setup(store).await;
    let inv = invite(store, alice, "bob@example.com", Role::Viewer)
        .await
        .unwrap()
        .invitation;
    let now = now_millis();
    // Not Carol's, unknown, expired.
    not_found(store.accept_invitation(carol, inv.id, now).await);
    not_found(store.decline_invitation(carol, inv.id, true, now).await);
    not_found(
        store
            .accept_invitation(bob, InvitationId::random(), now)
            .await,
    );
    let later = inv.expires_at + 1;
    not_found(store.accept_invitation(bob, inv.id, later).await);
    assert!(store.invitations(bob, later).await.unwrap().is_empty());
    // Only the owner lists and revokes; others get 403 or 404.
    not_found(store.space_invitations(bob, rid(1), now).await);
    not_found(store.revoke_invitation(bob, rid(1), inv.id, now).await);
    let revoked = store
        .revoke_invitation(alice, rid(1), inv.id, now)
        .await
        .unwrap();
    assert_eq!(revoked.invitation.status, InvitationStatus::Revoked);
    assert_eq!(revoked.notify.len(), 1, "Bob's list changed");
    not_found(store.accept_invitation(bob, inv.id, now).await);
    not_found(store.revoke_invitation(alice, rid(1), inv.id, now).await);
    // Declined without a block: a new invitation shows again.
    let second = invite(store, alice, "bob@example.com", Role::Viewer)
        .await
        .unwrap()
        .invitation;
    let d = store
        .decline_invitation(bob, second.id, false, now)
        .await
        .unwrap();
    assert!(!d.blocked);
    let third = invite(store, alice, "bob@example.com", Role::Viewer)
        .await
        .unwrap()
        .invitation;
    assert_eq!(listed(store, bob).await, vec![third.id]);
    // A member who is not the owner: 403.
    share_with(&**store, alice, rid(1), "carol@example.com", Role::Editor)
        .await
        .unwrap();
    assert!(matches!(
        store.space_invitations(carol, rid(1), now).await,
        Err(StoreError::Forbidden(_))
    ));
    // The space deleted: its invitations can no longer be accepted.
    push(
        &**store,
        alice,
        vec![change("gone", 1, "space", "delete", Value::Null)],
    )
    .await;
    assert!(listed(store, bob).await.is_empty());
    not_found(store.accept_invitation(bob, third.id, now_millis()).await);
    assert!(store
        .pull(bob, everything())
        .await
        .unwrap()
        .records
        .is_empty());
}

pub async fn an_inviter_who_no_longer_owns_the_space_is_not_followed(store: &Arc<dyn Store>) {
    let (alice, bob, carol) = setup(store).await;
    let dave = new_user(&**store, "dave@example.com").await;
    let to_carol = invite(store, alice, "carol@example.com", Role::Editor)
        .await
        .unwrap()
        .invitation;
    let to_dave = invite(store, alice, "dave@example.com", Role::Editor)
        .await
        .unwrap()
        .invitation;
    share_with(&**store, alice, rid(1), "bob@example.com", Role::Editor)
        .await
        .unwrap();
    store
        .change_members(alice, rid(1), MemberOp::Transfer { to: bob })
        .await
        .unwrap();
    assert!(listed(store, carol).await.is_empty());
    not_found(
        store
            .accept_invitation(carol, to_carol.id, now_millis())
            .await,
    );
    assert_eq!(store.members(bob, rid(1)).await.unwrap().len(), 2);
    // The new owner does not inherit them; Alice's invitations are void.
    assert!(store
        .space_invitations(bob, rid(1), now_millis())
        .await
        .unwrap()
        .is_empty());
    not_found(
        store
            .accept_invitation(dave, to_dave.id, now_millis())
            .await,
    );
    // Bob invites anew: Dave accepts and joins.
    let from_bob = store
        .invite(
            bob,
            rid(1),
            "dave@example.com",
            Role::Viewer,
            InviteLimits::DEFAULT,
            now_millis(),
        )
        .await
        .unwrap()
        .invitation;
    store
        .accept_invitation(dave, from_bob.id, now_millis())
        .await
        .unwrap();
    assert_eq!(store.members(dave, rid(1)).await.unwrap().len(), 3);
}

pub async fn invitations_are_limited_per_inviter_and_per_space(store: &Arc<dyn Store>) {
    let (alice, _, _) = setup(store).await;
    push(
        &**store,
        alice,
        vec![change("s2", 5, "space", "create", json!({"name": "Books"}))],
    )
    .await;
    let limits = InviteLimits {
        per_hour: 3,
        pending_per_space: 2,
    };
    let now = now_millis();
    let to = |space: u128, email: &'static str, at: i64| {
        invite_at(store, alice, space, email, Role::Viewer, limits, at)
    };
    to(1, "a@example.com", now).await.unwrap();
    to(1, "b@example.com", now).await.unwrap();
    match to(1, "c@example.com", now).await {
        Err(StoreError::RateLimited(wait)) => {
            assert!(
                wait.as_millis() as i64 >= INVITATION_TTL_MS - 1_000,
                "{wait:?}"
            )
        }
        other => panic!("the space has two pending: {other:?}"),
    }
    // A refresh adds nothing; another space has room.
    to(1, "a@example.com", now).await.unwrap();
    to(5, "d@example.com", now).await.unwrap();
    match to(5, "e@example.com", now + 1).await {
        Err(StoreError::RateLimited(wait)) => {
            assert!(
                (RATE_WINDOW_MS - 1_000..=RATE_WINDOW_MS).contains(&(wait.as_millis() as i64)),
                "{wait:?}"
            )
        }
        other => panic!("three sent this hour: {other:?}"),
    }
    to(5, "e@example.com", now + RATE_WINDOW_MS + 1)
        .await
        .expect("an hour later");
}
