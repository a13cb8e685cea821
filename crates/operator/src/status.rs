//! How a controller writes an object's status: a status is written only when
//! it changes what a reader sees, and a transition at most once. A
//! transition — a condition's status or reason, the observed generation, or
//! whatever else the caller counts as one (a new primary) — is written at
//! once. Everything else (counts, messages, per-instance detail) is folded
//! into the next transition, or written after [`DETAIL_INTERVAL`] since the
//! object's last status write if no transition comes first, so a reader is
//! never more than that behind on details and a rollout of nine Pods is not
//! nine status writes.

use crate::apply::Applier;
use crate::error::ReconcileError;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How stale detail may get while nothing transitions.
pub const DETAIL_INTERVAL: Duration = Duration::from_secs(30);

/// What [`StatusWriter::write`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Written now.
    Now,
    /// Nothing differs from what the object carries.
    Unchanged,
    /// Only detail differs: reconcile again after this long to write it.
    Later(Duration),
}

impl Written {
    /// The requeue this asks for, if any.
    pub fn requeue(self) -> Option<Duration> {
        match self {
            Written::Later(d) => Some(d),
            _ => None,
        }
    }
}

/// One controller's status writes (its field manager) and when each object's
/// status was last written.
#[derive(Clone)]
pub struct StatusWriter {
    applier: Applier,
    interval: Duration,
    last: Arc<Mutex<HashMap<String, Instant>>>,
}

impl StatusWriter {
    pub fn new(applier: Applier) -> Self {
        Self::with_interval(applier, DETAIL_INTERVAL)
    }

    pub fn with_interval(applier: Applier, interval: Duration) -> Self {
        Self {
            applier,
            interval,
            last: Arc::default(),
        }
    }

    /// Writes `next` if it differs from `current` and either `transition` is
    /// true or the object's last status write is [`DETAIL_INTERVAL`] old.
    pub async fn write<P, S>(
        &self,
        obj: &P,
        current: Option<&S>,
        next: &S,
        transition: bool,
    ) -> Result<Written, ReconcileError>
    where
        P: Resource<DynamicType = ()>,
        S: Serialize + PartialEq,
    {
        if current == Some(next) {
            return Ok(Written::Unchanged);
        }
        let key = obj.uid().unwrap_or_else(|| obj.name_any());
        if !transition && let Some(wait) = self.wait(&key) {
            return Ok(Written::Later(wait));
        }
        self.applier.apply_status(obj, next).await?;
        self.written(key);
        Ok(Written::Now)
    }

    /// How long detail must still wait for `key`, if at all.
    fn wait(&self, key: &str) -> Option<Duration> {
        let last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let since = last.get(key)?.elapsed();
        (since < self.interval).then(|| self.interval - since)
    }

    fn written(&self, key: String) {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Old entries only matter within the interval: drop them now and then.
        if last.len() > 4096 && last.len().is_power_of_two() {
            let interval = self.interval;
            last.retain(|_, at| at.elapsed() < interval);
        }
        last.insert(key, Instant::now());
    }
}

/// Whether `next` differs from `previous` in a way that is a transition: a
/// condition appeared, went, or changed its status or reason, or the
/// observed generation moved.
pub fn transition(
    previous: &[Condition],
    previous_generation: Option<i64>,
    next: &[Condition],
    next_generation: Option<i64>,
) -> bool {
    let key = |c: &[Condition]| -> Vec<(String, String, String)> {
        let mut v: Vec<_> = c
            .iter()
            .map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone()))
            .collect();
        v.sort();
        v
    };
    previous_generation != next_generation || key(previous) != key(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::condition;

    #[test]
    fn transitions_are_status_reason_or_generation() {
        let mut a = Vec::new();
        condition::set(&mut a, condition::READY, false, "Waiting", "1/3", Some(1));
        let mut b = a.clone();
        condition::set(&mut b, condition::READY, false, "Waiting", "2/3", Some(1));
        assert!(!transition(&a, Some(1), &b, Some(1)), "a message is detail");
        assert!(transition(&a, Some(1), &b, Some(2)), "a new generation");
        condition::set(&mut b, condition::READY, true, "Ready", "3/3", Some(1));
        assert!(transition(&a, Some(1), &b, Some(1)));
        let mut c = a.clone();
        condition::set(
            &mut c,
            condition::DEGRADED,
            false,
            "AsExpected",
            "",
            Some(1),
        );
        assert!(transition(&a, Some(1), &c, Some(1)), "a new condition");
    }
}
