//! Event-id dedup window: publisher retries and lost acks can deliver an event twice; a
//! subscriber acks and skips an id it already handled within the window.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Remembers handled event ids for `ttl`, at most `capacity` of them (oldest evicted first).
/// Share one (`Arc`) between subscriber restarts inside a process to keep the memory.
#[derive(Debug)]
pub struct DedupWindow {
    ttl: Duration,
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    done: HashMap<String, Instant>,
    order: VecDeque<(String, Instant)>,
    in_flight: HashSet<String>,
}

/// Outcome of claiming an id before handling.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Claim {
    /// Not seen: handle it, then `complete` or `release`.
    New,
    /// Already handled: ack and skip.
    Done,
    /// Another delivery of the same id is being handled right now: wait and ask again.
    Busy,
}

impl DedupWindow {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity: capacity.max(1),
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn claim(&self, id: &str) -> Claim {
        let mut st = self.lock();
        self.evict(&mut st, Instant::now());
        if st.done.contains_key(id) {
            Claim::Done
        } else if !st.in_flight.insert(id.to_owned()) {
            Claim::Busy
        } else {
            Claim::New
        }
    }

    /// The handler succeeded: remember the id.
    pub(crate) fn complete(&self, id: &str) {
        let mut st = self.lock();
        st.in_flight.remove(id);
        let now = Instant::now();
        if st.done.insert(id.to_owned(), now).is_none() {
            st.order.push_back((id.to_owned(), now));
        }
        self.evict(&mut st, now);
    }

    /// The handler failed: forget the claim so a retry can handle it.
    pub(crate) fn release(&self, id: &str) {
        self.lock().in_flight.remove(id);
    }

    /// Whether `id` was handled within the window.
    pub fn contains(&self, id: &str) -> bool {
        self.lock().done.contains_key(id)
    }

    /// Number of remembered ids.
    pub fn len(&self) -> usize {
        self.lock().done.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn evict(&self, st: &mut State, now: Instant) {
        while let Some((id, at)) = st.order.front() {
            let expired = now.duration_since(*at) > self.ttl;
            if !expired && st.order.len() <= self.capacity {
                break;
            }
            if st.done.get(id) == Some(at) {
                st.done.remove(id);
            }
            st.order.pop_front();
        }
    }
}

impl Default for DedupWindow {
    /// Ten minutes or 200,000 ids.
    fn default() -> Self {
        Self::new(Duration::from_secs(600), 200_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_complete_release_cycle() {
        let w = DedupWindow::new(Duration::from_secs(60), 10);
        assert_eq!(w.claim("a"), Claim::New);
        assert_eq!(w.claim("a"), Claim::Busy);
        w.release("a");
        assert_eq!(w.claim("a"), Claim::New);
        w.complete("a");
        assert_eq!(w.claim("a"), Claim::Done);
        assert!(w.contains("a"));
    }

    #[test]
    fn capacity_evicts_oldest() {
        let w = DedupWindow::new(Duration::from_secs(60), 2);
        for id in ["a", "b", "c"] {
            assert_eq!(w.claim(id), Claim::New);
            w.complete(id);
        }
        assert_eq!(w.len(), 2);
        assert!(!w.contains("a"));
        assert!(w.contains("c"));
    }

    #[test]
    fn ttl_expires_ids() {
        let w = DedupWindow::new(Duration::from_millis(10), 100);
        assert_eq!(w.claim("a"), Claim::New);
        w.complete("a");
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(w.claim("a"), Claim::New);
    }
}
