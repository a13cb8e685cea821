//! The Group's status from what is live: instance phases from the Pods, roles,
//! content hashes, and the Ready / Progressing / Degraded conditions. Pure:
//! the reconcile writes it and records the Events it returns.

use crate::lifecycle;
use crate::memo::RenderSummary;
use crate::rollout::LiveInstance;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use midplane_api::{GroupStatus, InstanceStatus};
use midplane_operator::condition;
use std::collections::BTreeMap;
use std::sync::Arc;

/// An instance changed phase: (warning?, reason), instance, new phase.
pub type Transition = ((bool, &'static str), String, &'static str);

pub struct Outcome {
    pub all_ready: bool,
    /// Ready turned True in this pass: (message) for the Event.
    pub became_ready: Option<String>,
    pub transitions: Vec<Transition>,
}

pub struct Inputs<'a> {
    pub instances: &'a [String],
    pub primary: &'a str,
    pub pods: &'a [Arc<Pod>],
    pub live: &'a BTreeMap<String, LiveInstance>,
    pub summary: &'a RenderSummary,
    pub deferred: Option<&'a str>,
    pub generation: Option<i64>,
    pub now: String,
}

pub fn update(status: &mut GroupStatus, i: Inputs<'_>) -> Outcome {
    let mut next_instances = Vec::new();
    let mut transitions = Vec::new();
    for name in i.instances {
        let pod = lifecycle::pod_of(i.pods, name);
        let phase = lifecycle::phase(pod);
        let previous = status.instances.iter().find(|p| &p.name == name);
        if let Some(ev) = lifecycle::transition_event(previous.map(|p| p.phase.as_str()), phase) {
            transitions.push((ev, name.clone(), phase));
        }
        let next = InstanceStatus {
            name: name.clone(),
            pod: pod.map(|p| p.name_any()),
            phase: phase.to_string(),
            role: Some(
                if name == i.primary {
                    "primary"
                } else {
                    "replica"
                }
                .to_string(),
            ),
            content_hash: i.live.get(name).and_then(|l| l.content_hash.clone()),
            restarts: lifecycle::restarts(pod),
            last_transition_time: None,
        };
        next_instances.push(lifecycle::next_status(previous, next, i.now.clone()));
    }
    let ready_count = next_instances
        .iter()
        .filter(|s| s.phase == lifecycle::READY)
        .count() as i32;
    let total = i.instances.len() as i32;
    let up_to_date = i.summary.instance_hashes.iter().all(|(n, h)| {
        i.live
            .get(n)
            .is_some_and(|l| l.content_hash.as_ref() == Some(h))
    });
    let all_ready = up_to_date && i.deferred.is_none() && ready_count == total;
    let failed: Vec<&str> = next_instances
        .iter()
        .filter(|s| s.phase == lifecycle::FAILED)
        .map(|s| s.name.as_str())
        .collect();
    let (reason, message) = if all_ready {
        ("Ready", format!("{ready_count}/{total} instances ready"))
    } else if i.deferred.is_some() {
        (
            "ReplicasFirst",
            format!("rolling replicas before primary {}", i.primary),
        )
    } else {
        (
            "InstancesNotReady",
            format!("{ready_count}/{total} instances ready"),
        )
    };
    let became_ready = condition::set(
        &mut status.conditions,
        condition::READY,
        all_ready,
        reason,
        &message,
        i.generation,
    ) && all_ready;
    condition::set(
        &mut status.conditions,
        condition::PROGRESSING,
        !all_ready,
        reason,
        &message,
        i.generation,
    );
    condition::set(
        &mut status.conditions,
        condition::DEGRADED,
        !failed.is_empty(),
        if failed.is_empty() {
            "AsExpected"
        } else {
            "InstanceFailed"
        },
        if failed.is_empty() {
            String::new()
        } else {
            format!("failed: {}", failed.join(", "))
        },
        i.generation,
    );
    status.observed_generation = i.generation;
    status.replicas = total;
    status.ready_replicas = ready_count;
    status.primary = Some(i.primary.to_string());
    status.plugin_hash = Some(format!("{}/{}", i.summary.plugin_id, i.summary.plugin_hash));
    status.instances = next_instances;
    Outcome {
        all_ready,
        became_ready: became_ready.then_some(message),
        transitions,
    }
}
