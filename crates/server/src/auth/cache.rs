//! Recently read auth states, so the hot path does not query the database
//! on every request.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tidesync_protocol::time::now_millis;
use tidesync_protocol::UserId;
use tidesync_store::{AuthState, Store};

use crate::error::ApiError;

const AUTH_CACHE_MAX: usize = 50_000;

/// A logout, password change or deletion invalidates the user's entry at
/// once on this instance, and on every instance through the revocation
/// notice (PostgreSQL); the TTL only bounds a notice that was lost.
pub struct AuthCache {
    ttl: Duration,
    entries: std::sync::Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    map: HashMap<UserId, Entry>,
    /// Bumped by every invalidation: a read that began before one may have
    /// seen the state it invalidated, so its result is not kept.
    epoch: u64,
}

struct Entry {
    /// When the query that read it began: it saw every commit before this.
    read_from: Instant,
    state: Arc<AuthState>,
}

impl AuthCache {
    pub fn new(ttl: Duration) -> Self {
        AuthCache {
            ttl,
            entries: std::sync::Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn invalidate(&self, user: UserId) {
        let mut e = self.lock();
        e.map.remove(&user);
        e.epoch += 1;
    }

    /// Forgets every entry (revocation notices may have been lost).
    pub fn clear(&self) {
        let mut e = self.lock();
        e.map.clear();
        e.epoch += 1;
    }

    pub async fn get(
        &self,
        store: &dyn Store,
        user: UserId,
    ) -> Result<Option<Arc<AuthState>>, ApiError> {
        self.read(store, user, None).await
    }

    /// The user's auth state as read by a query that began at or after
    /// `since`: it reflects every revocation committed before `since`.
    pub async fn get_since(
        &self,
        store: &dyn Store,
        user: UserId,
        since: Instant,
    ) -> Result<Option<Arc<AuthState>>, ApiError> {
        self.read(store, user, Some(since)).await
    }

    async fn read(
        &self,
        store: &dyn Store,
        user: UserId,
        since: Option<Instant>,
    ) -> Result<Option<Arc<AuthState>>, ApiError> {
        let epoch = {
            let e = self.lock();
            if let Some(entry) = e.map.get(&user) {
                if entry.read_from.elapsed() < self.ttl
                    && since.is_none_or(|s| entry.read_from >= s)
                {
                    return Ok(Some(entry.state.clone()));
                }
            }
            e.epoch
        };
        let read_from = Instant::now();
        let state = store.auth_state(user, now_millis()).await?;
        let mut e = self.lock();
        let Some(state) = state else {
            e.map.remove(&user);
            return Ok(None);
        };
        let state = Arc::new(state);
        if e.epoch == epoch {
            if e.map.len() >= AUTH_CACHE_MAX {
                e.map.clear();
            }
            e.map.insert(
                user,
                Entry {
                    read_from,
                    state: state.clone(),
                },
            );
        }
        Ok(Some(state))
    }
}
