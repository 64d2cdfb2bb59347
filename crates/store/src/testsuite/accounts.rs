//! The suite's account tests: credentials, revocations, unique emails, and
//! a deleted user's data gone with them.

use std::sync::Arc;

use serde_json::json;
use tidesync_protocol::cursor::CursorStart;
use tidesync_protocol::time::now_millis;
use tidesync_protocol::UserId;

use super::{change, new_user, pull_input, push};
use crate::{NewUser, Store, StoreError};

pub async fn accounts_round_trip(store: &Arc<dyn Store>) {
    let id = new_user(&**store, "a@example.com").await;
    let u = store.user_by_id(id).await.unwrap().expect("user");
    assert_eq!(u.email, "a@example.com");
    let c = store
        .credentials_by_email("a@example.com")
        .await
        .unwrap()
        .expect("credentials");
    assert_eq!(c.user.id, id);
    assert_eq!(c.token_generation, 0);
    assert!(store
        .credentials_by_email("b@example.com")
        .await
        .unwrap()
        .is_none());
    let now = now_millis();
    assert!(store
        .revoke_token(id, "j1", now + 60_000, now)
        .await
        .unwrap());
    assert!(
        !store
            .revoke_token(id, "j1", now + 60_000, now)
            .await
            .unwrap(),
        "twice"
    );
    assert!(store.revoke_token(id, "old", now - 1, now).await.unwrap());
    let s = store.auth_state(id, now).await.unwrap().expect("state");
    assert_eq!(
        s.revoked,
        vec!["j1".to_owned()],
        "expired revocations are not listed"
    );
    assert_eq!(store.change_password(id, "$new").await.unwrap(), 1);
    let c = store
        .credentials_by_email("a@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((c.password_hash.as_str(), c.token_generation), ("$new", 1));
    assert!(matches!(
        store.change_password(UserId::random(), "$x").await,
        Err(StoreError::UserGone)
    ));
    assert!(store.health().await.ok());
}

pub async fn emails_are_unique(store: &Arc<dyn Store>) {
    new_user(&**store, "dup@example.com").await;
    let again = store
        .create_user(NewUser {
            id: UserId::random(),
            email: "dup@example.com".into(),
            name: "Other".into(),
            password_hash: "$h".into(),
            created_at: now_millis(),
        })
        .await;
    assert!(matches!(again, Err(StoreError::EmailTaken)), "{again:?}");
}

pub async fn revoking_needs_a_live_user(store: &Arc<dyn Store>) {
    let id = new_user(&**store, "gone@example.com").await;
    store.delete_user(id).await.unwrap();
    let now = now_millis();
    let r = store.revoke_token(id, "ticket", now + 60_000, now).await;
    assert!(matches!(r, Err(StoreError::UserGone)), "{r:?}");
}

/// A stream ticket is spent once. Every backend announces each revocation
/// with its commit (so every instance drops the user's cached auth state
/// and rechecks its open requests), but not a spent ticket.
pub async fn revocations_are_announced_and_spent_tickets_are_not(store: &Arc<dyn Store>) {
    let id = new_user(&**store, "notice@example.com").await;
    let mut notes = store.change_notes();
    let now = now_millis();
    assert!(store
        .spend_ticket(id, "t1", now + 60_000, now)
        .await
        .unwrap());
    assert!(
        !store
            .spend_ticket(id, "t1", now + 60_000, now)
            .await
            .unwrap(),
        "a ticket is spent once"
    );
    let s = store.auth_state(id, now).await.unwrap().unwrap();
    assert_eq!(s.revoked, vec!["t1".to_owned()]);
    store
        .revoke_token(id, "j1", now + 60_000, now)
        .await
        .unwrap();
    store.change_password(id, "$new").await.unwrap();
    store.delete_user(id).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 3 {
        match tokio::time::timeout(std::time::Duration::from_secs(10), notes.recv()).await {
            Ok(Ok(a)) => got.push(a),
            other => panic!("announcements so far {got:?}, then {other:?}"),
        }
    }
    assert_eq!(
        got,
        vec![crate::Announcement::Revoked(id); 3],
        "the ticket is not announced"
    );
}

pub async fn deleting_a_user_removes_everything(store: &Arc<dyn Store>) {
    let user = new_user(&**store, "del@example.com").await;
    push(
        &**store,
        user,
        vec![change("s", 1, "space", "create", json!({"name": "S"}))],
    )
    .await;
    let now = now_millis();
    store
        .revoke_token(user, "j", now + 1000, now)
        .await
        .unwrap();
    store.delete_user(user).await.unwrap();
    assert!(store.user_by_id(user).await.unwrap().is_none());
    assert!(store.auth_state(user, now).await.unwrap().is_none());
    // The email can be registered again, with nothing of the old account.
    let again = new_user(&**store, "del@example.com").await;
    let out = store
        .pull(again, pull_input(CursorStart::Scratch, 10, 1 << 20))
        .await
        .unwrap();
    assert!(out.records.is_empty());
}
