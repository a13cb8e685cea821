//! Per-object exponential back-off for transient errors, reset on success.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

pub struct Backoff {
    base: Duration,
    max: Duration,
    attempts: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            attempts: Mutex::new(HashMap::new()),
        }
    }

    /// The delay before the next try of `key`, doubling per failure.
    pub fn next(&self, key: &str) -> Duration {
        let mut map = match self.attempts.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let n = map.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        let factor = 1u32
            .checked_shl(n.saturating_sub(1).min(16))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    pub fn reset(&self, key: &str) {
        if let Ok(mut map) = self.attempts.lock() {
            map.remove(key);
        }
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_millis(500), Duration::from_secs(300))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_caps_and_resets() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        assert_eq!(b.next("a"), Duration::from_secs(1));
        assert_eq!(b.next("a"), Duration::from_secs(2));
        assert_eq!(b.next("a"), Duration::from_secs(4));
        assert_eq!(b.next("a"), Duration::from_secs(5));
        assert_eq!(b.next("b"), Duration::from_secs(1));
        b.reset("a");
        assert_eq!(b.next("a"), Duration::from_secs(1));
    }
}
