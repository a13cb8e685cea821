//! Pod lifecycle per instance (started, ready, stopped; docs/design.md, "Roles and agents"), read from
//! the Pods and reported in the Group's status, with an Event per transition.

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use midplane_api::{InstanceStatus, labels};
use std::borrow::Borrow;

pub const PENDING: &str = "Pending";
pub const STARTED: &str = "Started";
pub const READY: &str = "Ready";
pub const STOPPING: &str = "Stopping";
pub const STOPPED: &str = "Stopped";
pub const FAILED: &str = "Failed";

/// The phase of one instance from its Pod (the newest if several).
pub fn phase(pod: Option<&Pod>) -> &'static str {
    let Some(pod) = pod else { return PENDING };
    if pod.metadata.deletion_timestamp.is_some() {
        return STOPPING;
    }
    let Some(st) = pod.status.as_ref() else {
        return PENDING;
    };
    match st.phase.as_deref() {
        Some("Running") => {
            let ready = st
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            if ready { READY } else { STARTED }
        }
        Some("Succeeded") => STOPPED,
        Some("Failed") => FAILED,
        _ => PENDING,
    }
}

pub fn restarts(pod: Option<&Pod>) -> i32 {
    pod.and_then(|p| p.status.as_ref())
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).sum())
        .unwrap_or_default()
}

/// The Pod of an instance: the one labelled with it, newest first.
pub fn pod_of<'a, P: Borrow<Pod>>(pods: &'a [P], instance: &str) -> Option<&'a Pod> {
    pods.iter()
        .map(Borrow::borrow)
        .filter(|p| {
            p.labels()
                .get(labels::MIDDLEWARE_INSTANCE)
                .map(String::as_str)
                == Some(instance)
        })
        .max_by_key(|p| p.metadata.creation_timestamp.clone())
}

/// The Event for a phase change, if it deserves one: (warning?, reason).
/// Starting and becoming ready are what every instance does and are in the
/// Group's status; an Event is for what goes wrong and for recovering from it.
pub fn transition_event(from: Option<&str>, to: &str) -> Option<(bool, &'static str)> {
    if from == Some(to) {
        return None;
    }
    match to {
        READY if matches!(from, Some(FAILED | STOPPED | STOPPING)) => {
            Some((false, "InstanceRecovered"))
        }
        STOPPED | STOPPING => Some((from.is_some(), "InstanceStopped")),
        FAILED => Some((true, "InstanceFailed")),
        PENDING if from.is_some_and(|f| f == READY || f == STARTED) => Some((true, "InstanceLost")),
        _ => None,
    }
}

/// Keeps the transition time when the phase did not change.
pub fn next_status(
    previous: Option<&InstanceStatus>,
    mut next: InstanceStatus,
    now: String,
) -> InstanceStatus {
    next.last_transition_time = match previous {
        Some(p) if p.phase == next.phase => p.last_transition_time.clone(),
        _ => Some(now),
    };
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};

    fn pod(phase: &str, ready: bool) -> Pod {
        Pod {
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
            ..Pod::default()
        }
    }

    #[test]
    fn phases_follow_the_pod() {
        assert_eq!(phase(None), PENDING);
        assert_eq!(phase(Some(&pod("Pending", false))), PENDING);
        assert_eq!(phase(Some(&pod("Running", false))), STARTED);
        assert_eq!(phase(Some(&pod("Running", true))), READY);
        assert_eq!(phase(Some(&pod("Failed", false))), FAILED);
        assert_eq!(transition_event(Some(STARTED), READY), None, "routine");
        assert_eq!(transition_event(Some(PENDING), STARTED), None, "routine");
        assert_eq!(
            transition_event(Some(FAILED), READY),
            Some((false, "InstanceRecovered"))
        );
        assert_eq!(transition_event(Some(READY), READY), None);
        assert_eq!(
            transition_event(Some(READY), PENDING),
            Some((true, "InstanceLost"))
        );
    }
}
