//! Step 6, status: the Group's status from what is live (instance phases
//! from the Pods, roles, content hashes, the Ready / Progressing / Degraded
//! conditions), computed purely by [`compute`] and written only when it
//! changed what a reader sees.

use crate::Context;
use crate::apply::Applied;
use crate::lifecycle;
use crate::memo::RenderSummary;
use crate::observe::Seen;
use crate::render::Rendered;
use crate::rollout::{self, LiveInstance, RolloutStep};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use midplane_api::{Group, GroupStatus, InstanceStatus};
use midplane_operator::ReconcileError;
use midplane_operator::condition::{self, Summary};
use midplane_operator::status::{self, Written};
use std::collections::BTreeMap;
use std::sync::Arc;

/// An instance changed phase: (warning?, reason), instance, new phase.
pub type Transition = ((bool, &'static str), String, &'static str);

pub struct Outcome {
    pub all_ready: bool,
    /// What the status write did (detail may wait for a later pass).
    pub written: Written,
    /// Ready turned True in this pass: (message) for the Event.
    pub became_ready: Option<String>,
    pub transitions: Vec<Transition>,
    /// The rollout failed in this pass: (instance, why).
    pub rollout_failed: Option<(String, String)>,
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
    /// What agent 1 of each Pod reports (empty without a gateway).
    pub seen: &'a Seen,
    /// Why the running config is not the rendered one, if it is not.
    pub config_problem: Option<&'a (&'static str, String)>,
}

/// What the earlier steps found, for the status.
pub struct Found<'a> {
    /// The status the pass started from (`StatusWriter::latest`).
    pub current: Option<&'a GroupStatus>,
    pub applied: &'a Applied,
    pub seen: &'a Seen,
    pub reload: &'a crate::reload::Reload,
}

/// Computes the status from the pipeline's hand-offs and writes it if it changed.
pub async fn update(
    group: &Group,
    status: &mut GroupStatus,
    rendered: &Rendered,
    step: &RolloutStep,
    found: Found<'_>,
    ctx: &Context,
) -> Result<Outcome, ReconcileError> {
    let outcome = compute(
        status,
        Inputs {
            instances: &rendered.summary.instances,
            primary: &step.primary,
            pods: &rendered.live.pods,
            live: &step.live,
            summary: &rendered.summary,
            deferred: step.plan.as_ref().and_then(|p| p.deferred.as_deref()),
            generation: group.meta().generation,
            now: Timestamp::now().to_string(),
            seen: found.seen,
            config_problem: found.reload.problem.as_ref(),
        },
    );
    let mut outcome = outcome;
    outcome.written = ctx
        .status
        .write(
            group,
            found.current,
            status,
            is_transition(found.current, status),
        )
        .await?;
    Ok(outcome)
}

/// A transition of a Group's status: of a condition or the observed
/// generation, or of who is primary under which term.
fn is_transition(current: Option<&GroupStatus>, next: &GroupStatus) -> bool {
    let current = current.cloned().unwrap_or_default();
    status::transition(
        &current.conditions,
        current.observed_generation,
        &next.conditions,
        next.observed_generation,
    ) || current.primary != next.primary
        || current.term != next.term
}

/// Writes the status now (after a switchover: a crash must not forget it).
pub async fn write(
    group: &Group,
    status: &GroupStatus,
    ctx: &Context,
) -> Result<(), ReconcileError> {
    ctx.status.write_now(group, status).await
}

/// The plugin is missing or its templates fail for this Group: Ready=False
/// and Degraded with the reason, an Event when that is news, then wait for a
/// change to the Group or the plugin.
pub async fn render_failed(
    group: &Group,
    current: Option<&GroupStatus>,
    reason: &'static str,
    message: String,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let mut status = current.cloned().unwrap_or_default();
    let generation = group.meta().generation;
    let summary = Summary::new(false, reason, message.clone())
        .waiting()
        .degraded(reason, message.clone());
    let changed = condition::set_summary(&mut status.conditions, &summary, generation);
    status.observed_generation = generation;
    ctx.status.write(group, current, &status, true).await?;
    if changed {
        ctx.events.warning(group, reason, "Render", message).await;
    }
    Ok(Action::await_change())
}

pub fn compute(status: &mut GroupStatus, i: Inputs<'_>) -> Outcome {
    let (instances, transitions) = instance_statuses(status, &i);
    let ready_count = instances
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
    let rollout_failed = rollout_outcome(status, &i, all_ready);
    let summary = conditions(&instances, &i, all_ready, ready_count, total);
    let summary = match status
        .rollout
        .as_ref()
        .filter(|r| r.state == rollout::FAILED)
    {
        Some(r) => summary.degraded("RolloutFailed", r.message.clone()),
        None if !status.rejected.is_empty() => {
            let refused: Vec<String> = status
                .rejected
                .iter()
                .map(|r| format!("{}: {}", r.object, r.message))
                .collect();
            summary.degraded("ApplyRejected", refused.join("; "))
        }
        None => summary,
    };
    let became_ready =
        condition::set_summary(&mut status.conditions, &summary, i.generation) && all_ready;
    status.observed_generation = i.generation;
    status.replicas = total;
    status.ready_replicas = ready_count;
    status.primary = Some(i.primary.to_string());
    status.plugin_hash = Some(format!("{}/{}", i.summary.plugin_id, i.summary.plugin_hash));
    status.instances = instances;
    Outcome {
        all_ready,
        written: Written::Unchanged,
        became_ready: became_ready.then_some(summary.message),
        transitions,
        rollout_failed,
    }
}

/// Moves the rollout on from what is live: an instance whose Pod cannot run
/// stops it (once: Failed is kept until the target changes or a resume);
/// every instance updated and ready completes it. Returns (instance, why)
/// when it failed in this pass.
fn rollout_outcome(
    status: &mut GroupStatus,
    i: &Inputs<'_>,
    all_ready: bool,
) -> Option<(String, String)> {
    let r = status
        .rollout
        .as_mut()
        .filter(|r| r.state == rollout::PROGRESSING || r.state == rollout::PAUSED)?;
    let failing = i.instances.iter().find_map(|name| {
        let why = lifecycle::failure(lifecycle::pod_of(i.pods, name)?)?;
        Some((name.clone(), why))
    });
    if let Some((name, why)) = failing {
        r.state = rollout::FAILED.into();
        r.instance = Some(name.clone());
        r.message = format!("stopped at {name}: {why}");
        return Some((name, r.message.clone()));
    }
    if all_ready && r.state == rollout::PROGRESSING {
        r.state = rollout::COMPLETE.into();
        r.instance = None;
        r.message = "every instance updated and ready".into();
        r.rolled = i.instances.to_vec();
    }
    None
}

/// Each instance's status from its Pod, and the phase changes worth an Event.
fn instance_statuses(
    status: &GroupStatus,
    i: &Inputs<'_>,
) -> (Vec<InstanceStatus>, Vec<Transition>) {
    let mut next_instances = Vec::new();
    let mut transitions = Vec::new();
    for name in i.instances {
        let pod = lifecycle::pod_of(i.pods, name);
        let phase = lifecycle::phase(pod);
        let previous = status.instances.iter().find(|p| &p.name == name);
        if let Some(ev) = lifecycle::transition_event(previous.map(|p| p.phase.as_str()), phase) {
            transitions.push((ev, name.clone(), phase));
        }
        let role = if name == i.primary {
            "primary"
        } else {
            "replica"
        };
        let agent = pod.and_then(|p| i.seen.pods.get(&p.name_any()));
        let next = InstanceStatus {
            agent: agent.map(|a| a.agent_phase().to_string()),
            agent_message: agent
                .map(|a| a.error.clone().unwrap_or_else(|| a.message.clone()))
                .filter(|m| !m.is_empty()),
            name: name.clone(),
            pod: pod.map(kube::ResourceExt::name_any),
            phase: phase.to_string(),
            role: Some(role.to_string()),
            content_hash: i.live.get(name).and_then(|l| l.content_hash.clone()),
            restarts: lifecycle::restarts(pod),
            last_transition_time: None,
        };
        next_instances.push(lifecycle::next_status(previous, next, i.now.clone()));
    }
    (next_instances, transitions)
}

/// Ready, Progressing and Degraded for the Group.
fn conditions(
    instances: &[InstanceStatus],
    i: &Inputs<'_>,
    all_ready: bool,
    ready_count: i32,
    total: i32,
) -> Summary {
    let failed: Vec<&str> = instances
        .iter()
        .filter(|s| s.phase == lifecycle::FAILED)
        .map(|s| s.name.as_str())
        .collect();
    let summary = if all_ready {
        Summary::new(
            true,
            "Ready",
            format!("{ready_count}/{total} instances ready"),
        )
    } else if i.deferred.is_some() {
        let message = format!("rolling replicas before primary {}", i.primary);
        Summary::new(false, "ReplicasFirst", message)
    } else {
        let message = format!("{ready_count}/{total} instances ready");
        Summary::new(false, "InstancesNotReady", message)
    };
    if !failed.is_empty() {
        summary.degraded("InstanceFailed", format!("failed: {}", failed.join(", ")))
    } else if let Some((reason, message)) = i.config_problem {
        summary.degraded(*reason, message.clone())
    } else {
        summary
    }
}
