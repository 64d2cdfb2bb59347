//! Pokes: "the user's data changed, the cursor is now N", fanned out to the
//! streams and long-polls of that user on this instance.
//!
//! On SQLite the push handler publishes here. On PostgreSQL every instance's
//! commits arrive through LISTEN/NOTIFY (see the store) and are relayed here,
//! so a change written through any instance reaches streams on all of them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tidesync_protocol::UserId;
use tokio::sync::broadcast;

#[derive(Clone, Debug)]
pub struct Poke {
    /// The user's committed version after the change.
    pub version: i64,
    /// The device whose push made it (it is not poked about its own change).
    pub device: String,
}

/// Per-user channels, created by the first subscriber and dropped when the
/// last one goes.
#[derive(Default)]
pub struct Notifier {
    users: Mutex<HashMap<UserId, broadcast::Sender<Arc<Poke>>>>,
}

/// Pokes buffered per user before a slow subscriber is told it lagged.
const BUFFER: usize = 64;

impl Notifier {
    pub fn subscribe(&self, user: UserId) -> broadcast::Receiver<Arc<Poke>> {
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        users
            .entry(user)
            .or_insert_with(|| broadcast::channel(BUFFER).0)
            .subscribe()
    }

    pub fn publish(&self, user: UserId, poke: Poke) {
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = users.get(&user) {
            if tx.send(Arc::new(poke)).is_err() {
                // Nobody listens any more.
                users.remove(&user);
            }
        }
    }
}
