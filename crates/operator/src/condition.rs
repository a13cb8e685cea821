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
