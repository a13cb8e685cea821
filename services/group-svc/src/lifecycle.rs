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

/// Container states that mean the Pod will not run as it is: its image
/// or program cannot start, or it keeps crashing.
const FAILING: [&str; 8] = [
    "CrashLoopBackOff",
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "StartError",
];

/// Why a Pod's containers cannot run, if they cannot: `container: reason
/// (message)` of the first failing one.
pub fn failure(pod: &Pod) -> Option<String> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    statuses.iter().find_map(|c| {
        let st = c.state.as_ref()?;
        let (reason, message) = match (&st.waiting, &st.terminated) {
            (Some(w), _) => (w.reason.clone()?, w.message.clone()),
            (None, Some(t)) => (t.reason.clone()?, t.message.clone()),
            _ => return None,
        };
        FAILING.contains(&reason.as_str()).then(|| match message {
            Some(m) if !m.is_empty() => format!("{}: {reason} ({m})", c.name),
            _ => format!("{}: {reason}", c.name),
        })
    })
}

/// The phase of one instance from its Pod (the newest if several).
pub fn phase(pod: Option<&Pod>) -> &'static str {
    let Some(pod) = pod else { return PENDING };
    if pod.metadata.deletion_timestamp.is_some() {
        return STOPPING;
    }
    if failure(pod).is_some() {
        return FAILED;
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

/// The Pod of an instance: of those labelled with it, one not being
/// deleted and not finished (Failed, Succeeded), then a Ready one, then the
/// newest. Creation timestamps have a resolution of one second, so they
/// alone cannot tell a replacement from the Pod it replaced.
pub fn pod_of<'a, P: Borrow<Pod>>(pods: &'a [P], instance: &str) -> Option<&'a Pod> {
    pods.iter()
        .map(Borrow::borrow)
        .filter(|p| {
            p.labels()
                .get(labels::MIDDLEWARE_INSTANCE)
                .map(String::as_str)
                == Some(instance)
        })
        .max_by_key(|p| {
            let st = p.status.as_ref();
            let finished = matches!(
                st.and_then(|s| s.phase.as_deref()),
                Some("Failed" | "Succeeded")
            );
            let ready = st
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            (
                p.metadata.deletion_timestamp.is_none(),
                !finished,
                ready,
                p.metadata.creation_timestamp.clone(),
            )
        })
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
    fn the_live_pod_wins_over_a_failed_one_of_the_same_second() {
        let mut failed = pod("Failed", false);
        failed.metadata.name = Some("old".into());
        let mut ready = pod("Running", true);
        ready.metadata.name = Some("new".into());
        for p in [&mut failed, &mut ready] {
            p.metadata.labels =
                Some([(labels::MIDDLEWARE_INSTANCE.to_string(), "g-0".to_string())].into());
        }
        // Same creation second; the failed one listed last.
        let pods = [ready.clone(), failed.clone()];
        assert_eq!(
            pod_of(&pods, "g-0").and_then(|p| p.metadata.name.clone()),
            Some("new".into())
        );
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
