//! Sync sessions: what a device's sync requests do between the routes
//! (HTTP: parse, authorize, respond) and the store (one transaction per
//! call): a push, a pull, or a long-poll that waits for a change.
//!
//! The session layer owns how announcements reach requests on this
//! instance: every backend announces what it commits
//! ([`Store::change_notes`]); [`relay`] turns those announcements into
//! pokes and revocation notices for the [`Notifier`], and [`concern`] is
//! the one rule for which pokes matter to a device, for long-polls here
//! and for event streams (routes/stream.rs).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tidesync_protocol::cursor::{CursorStart, Positions};
use tidesync_protocol::sync::SyncRequest;
use tidesync_protocol::time::now_millis;
use tidesync_protocol::{ScopeId, UserId};
use tidesync_store::{Announcement, PullInput, PushInput, Store, SyncOutput, View};
use tokio::sync::{broadcast, Semaphore};

use crate::auth::{AuthUser, Authenticator};
use crate::error::ApiError;
use crate::notify::{Notifier, Poke, Subscription};

#[derive(Clone, Copy, Debug)]
pub struct SyncLimits {
    pub max_changes: usize,
    /// Longest long-poll wait: under REQUEST_TIMEOUT, which would cut it.
    pub max_wait: Duration,
    pub max_clock_skew_ms: i64,
    /// Most bytes of records in one page.
    pub max_page_bytes: usize,
}

/// The sessions of this instance: its store, its token checks, and the
/// pokes that wake its long-polls and streams.
pub struct Sessions {
    store: Arc<dyn Store>,
    auth: Arc<Authenticator>,
    notifier: Arc<Notifier>,
    /// Turns for the pulls of long-polls woken by a change: one write can
    /// wake many at once, and they must not take every database connection
    /// from other requests.
    woken_pulls: Semaphore,
    pub limits: SyncLimits,
}

/// What a poke means to a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Concern {
    /// Nothing for it: its own change, or no further than it has seen.
    Nothing,
    /// A scope it reads moved past what it has seen.
    Moved,
    /// Its set of scopes changed (a space was shared with it or left):
    /// reread them.
    Membership,
    /// Pokes may have been lost (revocations among them): recheck the
    /// token, reread the heads.
    Gap,
}

/// Whether `poke` concerns `device` of `user`, which has seen `seen`
/// (positions relative to its `personal` scope).
pub fn concern(
    poke: &Poke,
    (user, device): (UserId, &str),
    seen: &Positions,
    personal: ScopeId,
) -> Concern {
    if poke.membership {
        Concern::Membership
    } else if poke.gap {
        Concern::Gap
    } else if poke.user == user && poke.device == device {
        Concern::Nothing
    } else if seen
        .get(poke.scope, personal)
        .is_none_or(|at| poke.version > at)
    {
        Concern::Moved
    } else {
        Concern::Nothing
    }
}

/// The scopes whose changes concern the user: what to listen to.
pub fn readable(view: &View) -> Vec<ScopeId> {
    view.readable().iter().map(|s| s.id).collect()
}

impl Sessions {
    /// Sessions on `store`; starts relaying what it announces to this
    /// instance's streams and long-polls. `woken_pulls`: how many pulls of
    /// woken long-polls may run at once.
    pub fn start(
        store: Arc<dyn Store>,
        auth: Arc<Authenticator>,
        limits: SyncLimits,
        woken_pulls: usize,
    ) -> Sessions {
        let notifier: Arc<Notifier> = Arc::default();
        tokio::spawn(relay(store.change_notes(), notifier.clone(), auth.clone()));
        Sessions {
            store,
            auth,
            notifier,
            woken_pulls: Semaphore::new(woken_pulls.max(1)),
            limits,
        }
    }

    /// One sync request of a device: its changes pushed (with the page
    /// after them), or a pull; with `waitSeconds` and nothing to push, a
    /// long-poll.
    pub async fn sync(&self, auth: &AuthUser, req: SyncRequest) -> Result<SyncOutput, ApiError> {
        let user = auth.user.id;
        let pull = PullInput {
            cursor: req.cursor.clone(),
            limit: req.limit,
            max_bytes: self.limits.max_page_bytes,
        };
        if !req.changes.is_empty() {
            let input = PushInput {
                device_id: req.device_id,
                cursor: req.cursor,
                changes: req.changes,
                limit: req.limit,
                max_page_bytes: self.limits.max_page_bytes,
                now: now_millis(),
                max_skew: self.limits.max_clock_skew_ms,
            };
            return Ok(self.store.push(user, input).await?);
        }
        if req.wait_seconds > 0 {
            let wait = Duration::from_secs(req.wait_seconds).min(self.limits.max_wait);
            return self.long_poll(auth, &req.device_id, pull, wait).await;
        }
        Ok(self.store.pull(user, pull).await?)
    }

    /// A page of what changed after `cursor`.
    pub async fn pull(
        &self,
        user: UserId,
        cursor: CursorStart,
        limit: usize,
    ) -> Result<SyncOutput, ApiError> {
        let input = PullInput {
            cursor,
            limit,
            max_bytes: self.limits.max_page_bytes,
        };
        Ok(self.store.pull(user, input).await?)
    }

    /// Follows the user's readable scopes for a request bound to its token:
    /// the subscription, and the view it was set from.
    ///
    /// Subscribes before checking the token again and reading the view, so
    /// that a change committed in between still reaches the subscription,
    /// and a revocation since the request's own check is seen (its cached
    /// state was dropped) or announced to it.
    pub async fn follow(&self, auth: &AuthUser) -> Result<(Subscription, View), ApiError> {
        let mut sub = self.notifier.subscribe(auth.user.id, vec![]);
        self.auth.check(&auth.token, None).await?;
        let view = self.store.view(auth.user.id).await?;
        sub.set_scopes(readable(&view));
        Ok((sub, view))
    }

    /// A pull that, when it finds nothing new, waits until another device
    /// commits something or `wait` passes, then pulls again. It is bound to
    /// the token that opened it: a revocation of that token (logout,
    /// password change, account deletion) answers `401`, never data.
    async fn long_poll(
        &self,
        auth: &AuthUser,
        device: &str,
        pull: PullInput,
        wait: Duration,
    ) -> Result<SyncOutput, ApiError> {
        let user = auth.user.id;
        let deadline = Instant::now() + wait;
        let (mut sub, view) = self.follow(auth).await?;
        let first = self.store.pull(user, pull.clone()).await?;
        if has_news(&first) {
            return Ok(first);
        }
        loop {
            match wait_for_change(
                &mut sub,
                (user, device),
                (&first.cursor, view.personal),
                deadline,
            )
            .await
            {
                Woken::Timeout => return Ok(first),
                // A token of the user was revoked: this one? (Its cached
                // state was dropped before we were told, so this reads
                // afresh.)
                Woken::Revocation => {
                    self.auth.check(&auth.token, None).await?;
                }
                Woken::Change => break,
            }
        }
        // One write can wake many long-polls: they take turns, so that
        // other requests still find free database connections.
        let _turn = self.woken_pulls.acquire().await;
        let out = self.store.pull(user, pull).await?;
        if has_news(&out) {
            // Revoked while we pulled: its notice may not have been handled
            // yet, so check against a state read after the pull.
            self.auth.check(&auth.token, Some(Instant::now())).await?;
        }
        Ok(out)
    }
}

/// Whether a pull has something for the device.
fn has_news(out: &SyncOutput) -> bool {
    !out.records.is_empty() || out.has_more || !out.removed_spaces.is_empty()
}

enum Woken {
    /// Something to pull.
    Change,
    /// A token of the user may have been revoked.
    Revocation,
    Timeout,
}

/// Waits until another device commits something past `cursor`, a token of
/// the user is revoked, or `deadline` passes.
async fn wait_for_change(
    sub: &mut Subscription,
    me: (UserId, &str),
    (cursor, personal): (&Positions, ScopeId),
    deadline: Instant,
) -> Woken {
    loop {
        tokio::select! {
            poke = sub.pokes.recv() => match poke {
                Ok(p) => match concern(&p, me, cursor, personal) {
                    Concern::Nothing => continue,
                    // Moved, or its scopes changed, or pokes were lost:
                    // pull to find out.
                    _ => return Woken::Change,
                },
                // Missed some pokes: there is news, pull to find out.
                Err(broadcast::error::RecvError::Lagged(_)) => return Woken::Change,
                Err(broadcast::error::RecvError::Closed) => return Woken::Timeout,
            },
            Ok(()) = sub.revocations.changed() => return Woken::Revocation,
            _ = tokio::time::sleep_until(deadline.into()) => return Woken::Timeout,
        }
    }
}

/// Relays what the store announces, from this instance or (PostgreSQL)
/// any other, to this instance's requests: changes become pokes; a
/// revocation drops the user's cached auth state and has their open
/// requests recheck their tokens; a gap (notices lost) does both for
/// everyone.
async fn relay(
    mut notes: broadcast::Receiver<Announcement>,
    notifier: Arc<Notifier>,
    auth: Arc<Authenticator>,
) {
    use broadcast::error::RecvError;
    loop {
        match notes.recv().await {
            Ok(Announcement::Change(n)) => notifier.publish(Poke {
                scope: n.scope,
                version: n.version,
                user: n.user,
                device: n.device,
                membership: n.membership,
                gap: false,
            }),
            // The cache first: a recheck woken here must read afresh.
            Ok(Announcement::Revoked(user)) => {
                auth.cache.invalidate(user);
                notifier.revoked(user);
            }
            Ok(Announcement::Gap) | Err(RecvError::Lagged(_)) => {
                auth.cache.clear();
                notifier.gap();
            }
            Err(RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poke(scope: i64, version: i64, user: UserId, device: &str) -> Poke {
        Poke {
            scope: ScopeId::new(scope),
            version,
            user,
            device: device.into(),
            membership: false,
            gap: false,
        }
    }

    #[test]
    fn a_poke_concerns_a_device_past_what_it_has_seen_and_not_its_own() {
        let (me, other) = (UserId::random(), UserId::random());
        let personal = ScopeId::new(1);
        let mut seen = Positions::default();
        seen.set(personal, personal, 5);
        seen.set(ScopeId::new(7), personal, 3);
        let c = |p: &Poke| concern(p, (me, "phone"), &seen, personal);
        assert_eq!(c(&poke(1, 6, other, "x")), Concern::Moved);
        assert_eq!(c(&poke(1, 5, other, "x")), Concern::Nothing, "seen");
        assert_eq!(
            c(&poke(7, 4, me, "laptop")),
            Concern::Moved,
            "my other device"
        );
        assert_eq!(
            c(&poke(7, 9, me, "phone")),
            Concern::Nothing,
            "my own change"
        );
        assert_eq!(
            c(&poke(8, 1, other, "x")),
            Concern::Moved,
            "a scope not seen yet"
        );
        let mut m = poke(1, 0, me, "");
        m.membership = true;
        assert_eq!(c(&m), Concern::Membership);
        let mut g = poke(0, 0, me, "");
        g.gap = true;
        assert_eq!(c(&g), Concern::Gap);
    }
}
