//! Pokes: "scope S is now at version N", fanned out to the streams and
//! long-polls on this instance of every user who reads that scope.
//!
//! Nothing but the session layer's relay publishes here (session.rs): every
//! backend announces its own commits (SQLite from its writer; PostgreSQL
//! every instance's, through LISTEN/NOTIFY, so a change written through any
//! instance reaches streams on all of them).
//! A membership change is a poke on the affected user's personal scope with
//! `membership` set: their streams reread their scopes.
//!
//! Revocations travel beside the pokes: a logout, password change or
//! account deletion of a user wakes every stream and long-poll of that user
//! here, and each rechecks its own token ([`Notifier::revoked`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tidesync_protocol::{ScopeId, UserId};
use tokio::sync::{broadcast, watch};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Poke {
    pub scope: ScopeId,
    /// The scope's committed version after the change.
    pub version: i64,
    /// Whose device made it (a device is not poked about its own change).
    pub user: UserId,
    pub device: String,
    pub membership: bool,
    /// Pokes may have been lost: reread the heads (scope, version, user and
    /// device mean nothing then).
    pub gap: bool,
}

/// Pokes buffered per user before a slow subscriber is told it lagged.
const BUFFER: usize = 64;

/// A user's channels, while the user has subscribers here.
struct Channels {
    pokes: broadcast::Sender<Arc<Poke>>,
    /// Counts revocations: a watch, so a burst is never "lagged" and a
    /// subscriber sees that something happened since it last looked.
    revocations: watch::Sender<u64>,
}

#[derive(Default)]
struct Inner {
    users: HashMap<UserId, Channels>,
    /// Scope → its readers here, with how many subscriptions each has.
    scopes: HashMap<ScopeId, HashMap<UserId, usize>>,
}

#[derive(Default)]
pub struct Notifier {
    inner: Mutex<Inner>,
}

/// Pokes for one user's scopes, until dropped.
pub struct Subscription {
    notifier: Arc<Notifier>,
    user: UserId,
    scopes: Vec<ScopeId>,
    pub pokes: broadcast::Receiver<Arc<Poke>>,
    /// Changes when a token of the user may have been revoked.
    pub revocations: watch::Receiver<u64>,
}

impl Notifier {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn subscribe(self: &Arc<Self>, user: UserId, scopes: Vec<ScopeId>) -> Subscription {
        let mut inner = self.lock();
        let channels = inner.users.entry(user).or_insert_with(|| Channels {
            pokes: broadcast::channel(BUFFER).0,
            revocations: watch::channel(0).0,
        });
        let (pokes, revocations) = (channels.pokes.subscribe(), channels.revocations.subscribe());
        for s in &scopes {
            *inner.scopes.entry(*s).or_default().entry(user).or_default() += 1;
        }
        Subscription {
            notifier: self.clone(),
            user,
            scopes,
            pokes,
            revocations,
        }
    }

    /// A token of `user` may have been revoked: every stream and long-poll
    /// of the user here rechecks its own.
    pub fn revoked(&self, user: UserId) {
        if let Some(c) = self.lock().users.get(&user) {
            c.revocations.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    pub fn publish(&self, poke: Poke) {
        let mut inner = self.lock();
        let Some(readers) = inner.scopes.get(&poke.scope) else {
            return;
        };
        let readers: Vec<UserId> = readers.keys().copied().collect();
        let poke = Arc::new(poke);
        let mut sent = 0;
        for u in readers {
            if let Some(c) = inner.users.get(&u) {
                match c.pokes.send(poke.clone()) {
                    Ok(n) => sent += n,
                    // Nobody listens any more.
                    Err(_) => {
                        inner.users.remove(&u);
                    }
                }
            }
        }
        crate::telemetry::pokes_sent(sent);
    }

    /// Tells every subscriber here that pokes may have been lost.
    pub fn gap(&self) {
        let inner = self.lock();
        for (user, c) in &inner.users {
            let _ = c.pokes.send(Arc::new(Poke {
                scope: ScopeId::new(0),
                version: 0,
                user: *user,
                device: String::new(),
                membership: false,
                gap: true,
            }));
        }
    }

    fn release(&self, user: UserId, scopes: &[ScopeId]) {
        let mut inner = self.lock();
        for s in scopes {
            if let Some(readers) = inner.scopes.get_mut(s) {
                if let Some(n) = readers.get_mut(&user) {
                    *n -= 1;
                    if *n == 0 {
                        readers.remove(&user);
                    }
                }
                if readers.is_empty() {
                    inner.scopes.remove(s);
                }
            }
        }
        if inner
            .users
            .get(&user)
            .is_some_and(|c| c.pokes.receiver_count() <= 1)
            && !inner.scopes.values().any(|r| r.contains_key(&user))
        {
            inner.users.remove(&user);
        }
    }
}

impl Subscription {
    /// Follows the user's scopes as they change (a membership change).
    pub fn set_scopes(&mut self, scopes: Vec<ScopeId>) {
        let old = std::mem::take(&mut self.scopes);
        {
            let mut inner = self.notifier.lock();
            for s in &scopes {
                *inner
                    .scopes
                    .entry(*s)
                    .or_default()
                    .entry(self.user)
                    .or_default() += 1;
            }
        }
        self.notifier.release(self.user, &old);
        self.scopes = scopes;
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let scopes = std::mem::take(&mut self.scopes);
        self.notifier.release(self.user, &scopes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poke(scope: i64) -> Poke {
        Poke {
            scope: ScopeId::new(scope),
            version: 1,
            user: UserId::random(),
            device: "d".into(),
            membership: false,
            gap: false,
        }
    }

    #[test]
    fn a_poke_reaches_every_reader_of_its_scope_and_only_them() {
        let n = Arc::new(Notifier::default());
        let (a, b) = (UserId::random(), UserId::random());
        let mut sa = n.subscribe(a, vec![ScopeId::new(1), ScopeId::new(9)]);
        let mut sb = n.subscribe(b, vec![ScopeId::new(2), ScopeId::new(9)]);
        n.publish(poke(9));
        n.publish(poke(1));
        assert_eq!(sa.pokes.try_recv().unwrap().scope, ScopeId::new(9));
        assert_eq!(sa.pokes.try_recv().unwrap().scope, ScopeId::new(1));
        assert_eq!(sb.pokes.try_recv().unwrap().scope, ScopeId::new(9));
        assert!(sb.pokes.try_recv().is_err(), "not b's scope");
        sb.set_scopes(vec![ScopeId::new(2)]);
        n.publish(poke(9));
        assert!(sb.pokes.try_recv().is_err(), "b left scope 9");
        drop(sa);
        drop(sb);
        assert!(n.lock().scopes.is_empty() && n.lock().users.is_empty());
    }

    #[test]
    fn a_revocation_wakes_the_users_subscribers_only() {
        let n = Arc::new(Notifier::default());
        let (a, b) = (UserId::random(), UserId::random());
        let mut sa = n.subscribe(a, vec![ScopeId::new(1)]);
        let sa2 = n.subscribe(a, vec![]);
        let mut sb = n.subscribe(b, vec![ScopeId::new(1)]);
        n.revoked(a);
        n.revoked(a);
        assert!(sa.revocations.has_changed().unwrap());
        assert!(sa2.revocations.has_changed().unwrap());
        assert!(!sb.revocations.has_changed().unwrap(), "not b's");
        sa.revocations.mark_unchanged();
        assert!(!sa.revocations.has_changed().unwrap(), "two count as one");
        assert!(sa.pokes.try_recv().is_err() && sb.pokes.try_recv().is_err());
        n.revoked(UserId::random());
        drop((sa, sa2, sb));
        assert!(n.lock().users.is_empty());
    }

    #[test]
    fn a_gap_reaches_every_subscriber() {
        let n = Arc::new(Notifier::default());
        let mut sa = n.subscribe(UserId::random(), vec![ScopeId::new(1)]);
        let mut sb = n.subscribe(UserId::random(), vec![]);
        n.gap();
        assert!(sa.pokes.try_recv().unwrap().gap);
        assert!(
            sb.pokes.try_recv().unwrap().gap,
            "even one with no scopes yet"
        );
        assert!(sa.pokes.try_recv().is_err(), "one each");
    }
}
