//! How many data exports (routes/export.rs) run at once: one per user, `max` per instance and
//! `per_space` per shared space. An export holds memory (a page and the
//! chunks on their way) and reads the database for as long as its client
//! reads, so the number running is what bounds both.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tidesync_protocol::{ScopeId, UserId};

use crate::error::ApiError;

/// What a refused export is told to wait before retrying.
pub const RETRY_AFTER: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug)]
pub struct ExportLimits {
    /// Most exports streaming at once on this instance.
    pub max: usize,
    /// Most exports at once that read one shared space.
    pub per_space: usize,
    /// Longest the client may leave the response unread before the
    /// connection is closed (see `crate::stall`).
    pub idle: Duration,
}

/// The exports running on this instance.
pub struct Exports {
    pub limits: ExportLimits,
    running: Mutex<Running>,
}

#[derive(Default)]
struct Running {
    users: HashSet<UserId>,
    /// Per shared scope: exports reading it.
    spaces: HashMap<ScopeId, usize>,
}

/// Why an export may not start now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The user has one running.
    User,
    /// `max` are running.
    Server,
    /// `per_space` are running that read one of the user's shared spaces.
    Space,
}

impl From<Refused> for ApiError {
    fn from(r: Refused) -> Self {
        match r {
            // The user's own doing: a rate limit.
            Refused::User => ApiError::RateLimited(RETRY_AFTER),
            Refused::Server => ApiError::Busy("too many exports running", RETRY_AFTER),
            Refused::Space => {
                ApiError::Busy("too many exports of a shared space running", RETRY_AFTER)
            }
        }
    }
}

/// A running export's place; dropping it frees the place.
pub struct Slot {
    exports: Arc<Exports>,
    user: UserId,
    spaces: Vec<ScopeId>,
}

impl Exports {
    pub fn new(limits: ExportLimits) -> Exports {
        Exports {
            limits,
            running: Mutex::default(),
        }
    }

    /// Takes a place for `user`'s export, which reads the shared scopes
    /// `spaces`, or says why not; all or nothing.
    pub fn start(self: &Arc<Self>, user: UserId, spaces: Vec<ScopeId>) -> Result<Slot, Refused> {
        let mut r = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if r.users.contains(&user) {
            return Err(Refused::User);
        }
        if r.users.len() >= self.limits.max {
            return Err(Refused::Server);
        }
        if spaces
            .iter()
            .any(|s| r.spaces.get(s).copied().unwrap_or(0) >= self.limits.per_space)
        {
            return Err(Refused::Space);
        }
        r.users.insert(user);
        for s in &spaces {
            *r.spaces.entry(*s).or_default() += 1;
        }
        Ok(Slot {
            exports: self.clone(),
            user,
            spaces,
        })
    }

    /// Exports running now.
    pub fn running(&self) -> usize {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .users
            .len()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut r = self
            .exports
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        r.users.remove(&self.user);
        for s in &self.spaces {
            if let Some(n) = r.spaces.get_mut(s) {
                *n -= 1;
                if *n == 0 {
                    r.spaces.remove(s);
                }
            }
        }
        // The last export gone: what the exports held goes back to the
        // system, not only to the allocator.
        if r.users.is_empty() {
            crate::memory::give_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exports(max: usize, per_space: usize) -> Arc<Exports> {
        Arc::new(Exports::new(ExportLimits {
            max,
            per_space,
            idle: Duration::from_secs(30),
        }))
    }

    fn user() -> UserId {
        UserId::from_uuid(uuid::Uuid::new_v4())
    }

    #[test]
    fn one_per_user_max_per_server_and_per_space() {
        let e = exports(3, 2);
        let (shared, other) = (ScopeId::new(10), ScopeId::new(11));
        let a = user();
        let first = e.start(a, vec![shared]).unwrap();
        assert_eq!(e.start(a, vec![]).err(), Some(Refused::User));
        let second = e.start(user(), vec![shared, other]).unwrap();
        assert_eq!(e.start(user(), vec![shared]).err(), Some(Refused::Space));
        // The refusal took nothing: another space still has room.
        let third = e.start(user(), vec![other]).unwrap();
        assert_eq!(e.start(user(), vec![]).err(), Some(Refused::Server));
        assert_eq!(e.running(), 3);
        drop(first);
        assert!(e.start(user(), vec![shared]).is_ok());
        drop((second, third));
        assert_eq!(e.running(), 0);
        assert!(e.running.lock().unwrap().spaces.is_empty());
    }
}
