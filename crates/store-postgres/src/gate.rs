//! One push per user at a time in this instance, queued *before* it takes
//! a pooled connection.
//!
//! A user's pushes serialise on the personal scope's row lock anyway (that
//! lock is what makes it correct, across instances). Without this gate,
//! pushes of one user that arrive together each take a connection and then
//! wait on that lock, so a few busy users hold the whole pool while other
//! users' pushes wait for a connection: 32 devices of 8 users on a pool of
//! 8 measured 485 round trips/s, p50 59 ms (BENCHMARKS.md, issue 12).
//! Waiting here costs no connection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use tidesync_protocol::UserId;
use tokio::sync::{Mutex as Turn, OwnedMutexGuard};

#[derive(Default)]
pub struct Gates {
    /// Weak: a user's gate lives while a push holds or waits for it.
    users: Mutex<HashMap<UserId, Weak<Turn<()>>>>,
}

impl Gates {
    /// Waits for the user's turn (first come, first served); the turn ends
    /// when the guard is dropped.
    pub async fn enter(&self, user: UserId) -> OwnedMutexGuard<()> {
        let turn = {
            let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
            match users.get(&user).and_then(Weak::upgrade) {
                Some(t) => t,
                None => {
                    // Forget users without pushes in flight, amortised: at
                    // most one sweep per doubling of the map.
                    if users.len() >= 1024 && users.len().is_power_of_two() {
                        users.retain(|_, w| w.strong_count() > 0);
                    }
                    let t = Arc::new(Turn::new(()));
                    users.insert(user, Arc::downgrade(&t));
                    t
                }
            }
        };
        turn.lock_owned().await
    }
}
