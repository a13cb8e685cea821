//! Status conditions per the Kubernetes API conventions: one entry per type,
//! `observedGeneration` on each, and a `lastTransitionTime` that only moves
//! when the status does.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

pub const READY: &str = "Ready";
pub const PROGRESSING: &str = "Progressing";
pub const DEGRADED: &str = "Degraded";

/// Sets a condition; returns true when its status changed (worth an Event).
pub fn set(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
) -> bool {
    let status = if status { "True" } else { "False" };
    let message = message.into();
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            let changed = c.status != status;
            if changed {
                c.last_transition_time = Time(Timestamp::now());
            }
            c.status = status.into();
            c.reason = reason.into();
            c.message = message;
            c.observed_generation = generation;
            changed
        }
        None => {
            conditions.push(Condition {
                type_: type_.into(),
                status: status.into(),
                reason: reason.into(),
                message,
                observed_generation: generation,
                last_transition_time: Time(Timestamp::now()),
            });
            true
        }
    }
}

/// The three conditions every Midplane object carries, as one value.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub ready: bool,
    /// Why Ready is what it is (also Progressing's reason).
    pub reason: String,
    pub message: String,
    /// Work is under way toward Ready (false when waiting on the user).
    pub progressing: bool,
    /// Something is broken: (reason, message).
    pub degraded: Option<(String, String)>,
}

impl Summary {
    pub fn new(ready: bool, reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            ready,
            reason: reason.into(),
            message: message.into(),
            progressing: !ready,
            degraded: None,
        }
    }

    pub fn degraded(mut self, reason: impl Into<String>, message: impl Into<String>) -> Self {
        self.degraded = Some((reason.into(), message.into()));
        self
    }

    /// Nothing moves until the object changes (it is invalid).
    pub fn waiting(mut self) -> Self {
        self.progressing = false;
        self
    }
}

/// Sets Ready, Progressing and Degraded from `s`; returns whether Ready's
/// status changed.
pub fn set_summary(conditions: &mut Vec<Condition>, s: &Summary, generation: Option<i64>) -> bool {
    let changed = set(
        conditions,
        READY,
        s.ready,
        &s.reason,
        s.message.clone(),
        generation,
    );
    set(
        conditions,
        PROGRESSING,
        s.progressing,
        &s.reason,
        s.message.clone(),
        generation,
    );
    let (reason, message) = s
        .degraded
        .clone()
        .unwrap_or_else(|| ("AsExpected".into(), String::new()));
    set(
        conditions,
        DEGRADED,
        s.degraded.is_some(),
        &reason,
        message,
        generation,
    );
    changed
}

pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True")
}

pub fn get<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_moves_only_with_the_status() {
        let mut c = Vec::new();
        assert!(set(&mut c, READY, false, "Creating", "", Some(1)));
        let t0 = c[0].last_transition_time.clone();
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(!set(
            &mut c,
            READY,
            false,
            "Waiting",
            "2 of 3 ready",
            Some(2)
        ));
        assert_eq!(c[0].last_transition_time, t0, "same status keeps the time");
        assert_eq!(c[0].observed_generation, Some(2));
        assert_eq!(c[0].reason, "Waiting");
        assert!(set(&mut c, READY, true, "Ready", "", Some(2)));
        assert_ne!(c[0].last_transition_time, t0);
        assert!(is_true(&c, READY));
        assert_eq!(c.len(), 1);
    }
}
