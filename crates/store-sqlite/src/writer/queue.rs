//! The writer's queue: bounded, and fair between users. Jobs wait in one
//! FIFO per user (and one for the server's own work), and a group takes
//! them in turns, one per user, so one user's backlog never sits ahead of
//! another user's single push: that push waits for at most one job of each
//! user ahead of it, not for the whole backlog.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::{Condvar, Mutex};

/// Why a job was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refused {
    Full,
    Closed,
}

/// Something with a cost in bytes (a job).
pub(super) trait Costly {
    fn cost(&self) -> usize;
}

struct Inner<K, J> {
    fifos: HashMap<K, VecDeque<J>>,
    /// Keys with waiting jobs, in turn order.
    turns: VecDeque<K>,
    len: usize,
    closed: bool,
}

pub(super) struct FairQueue<K, J> {
    inner: Mutex<Inner<K, J>>,
    ready: Condvar,
    capacity: usize,
}

impl<K: Eq + Hash + Clone, J: Costly> FairQueue<K, J> {
    pub fn new(capacity: usize) -> Self {
        FairQueue {
            inner: Mutex::new(Inner {
                fifos: HashMap::new(),
                turns: VecDeque::new(),
                len: 0,
                closed: false,
            }),
            ready: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K, J>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a job of `key`, or gives it back with why not.
    pub fn push(&self, key: K, job: J) -> Result<(), (Refused, J)> {
        let mut q = self.lock();
        if q.closed {
            return Err((Refused::Closed, job));
        }
        if q.len >= self.capacity {
            return Err((Refused::Full, job));
        }
        let fifo = q.fifos.entry(key.clone()).or_default();
        fifo.push_back(job);
        if fifo.len() == 1 {
            q.turns.push_back(key);
        }
        q.len += 1;
        drop(q);
        self.ready.notify_one();
        Ok(())
    }

    /// Waits for a job, then takes a group: one job per key in turn, up to
    /// `max_jobs` jobs and `max_bytes` of their costs (the first is always
    /// taken). `None` once closed and empty.
    pub fn take_group(&self, max_jobs: usize, max_bytes: usize) -> Option<Vec<J>> {
        let mut q = self.lock();
        while q.len == 0 {
            if q.closed {
                return None;
            }
            q = self.ready.wait(q).unwrap_or_else(|e| e.into_inner());
        }
        let (mut group, mut bytes) = (Vec::new(), 0usize);
        while group.len() < max_jobs {
            let Some(key) = q.turns.pop_front() else {
                break;
            };
            let fifo = q.fifos.get_mut(&key).expect("a key in turn has jobs");
            let cost = fifo.front().map_or(0, Costly::cost);
            if !group.is_empty() && bytes.saturating_add(cost) > max_bytes {
                // Its turn stays first for the next group.
                q.turns.push_front(key);
                break;
            }
            let job = fifo.pop_front().expect("a key in turn has jobs");
            if fifo.is_empty() {
                q.fifos.remove(&key);
            } else {
                q.turns.push_back(key);
            }
            q.len -= 1;
            bytes = bytes.saturating_add(cost);
            group.push(job);
        }
        Some(group)
    }

    /// Refuses new jobs; those queued are still taken, then `take_group`
    /// answers `None`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct J(&'static str, usize);

    impl Costly for J {
        fn cost(&self) -> usize {
            self.1
        }
    }

    fn names(g: &[J]) -> Vec<&'static str> {
        g.iter().map(|j| j.0).collect()
    }

    #[test]
    fn a_single_job_goes_before_another_users_backlog() {
        let q = FairQueue::new(100);
        for name in ["a1", "a2", "a3", "a4"] {
            q.push('a', J(name, 1)).unwrap();
        }
        q.push('b', J("b1", 1)).unwrap();
        q.push('a', J("a5", 1)).unwrap();
        assert_eq!(
            names(&q.take_group(3, usize::MAX).unwrap()),
            ["a1", "b1", "a2"]
        );
        assert_eq!(
            names(&q.take_group(10, usize::MAX).unwrap()),
            ["a3", "a4", "a5"]
        );
    }

    #[test]
    fn a_group_stops_at_its_bytes_but_always_takes_one() {
        let q = FairQueue::new(100);
        q.push('a', J("big", 10)).unwrap();
        q.push('b', J("small", 1)).unwrap();
        q.push('c', J("other", 5)).unwrap();
        assert_eq!(names(&q.take_group(10, 4).unwrap()), ["big"]);
        assert_eq!(names(&q.take_group(10, 4).unwrap()), ["small"]);
        assert_eq!(names(&q.take_group(10, 4).unwrap()), ["other"]);
    }

    #[test]
    fn full_and_closed_queues_refuse() {
        let q = FairQueue::new(2);
        q.push(1, J("x", 1)).unwrap();
        q.push(2, J("y", 1)).unwrap();
        assert!(matches!(q.push(3, J("z", 1)), Err((Refused::Full, _))));
        q.close();
        assert!(matches!(q.push(3, J("z", 1)), Err((Refused::Closed, _))));
        assert_eq!(q.take_group(10, usize::MAX).unwrap().len(), 2);
        assert!(q.take_group(10, usize::MAX).is_none());
    }
}
