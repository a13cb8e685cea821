//! Step 3, apply: what the plan says, through the one apply helper, each
//! object only when its live stamp differs. A primary that must roll moves
//! its role to an updated replica first (a planned switchover through the
//! agent gateway), when a gateway is configured.

use crate::announce;
use crate::render::Rendered;
use crate::rollout::{self, RolloutStep};
use crate::{Context, status};
use kube::ResourceExt;
use midplane_api::{Group, GroupStatus, RejectedObject};
use midplane_operator::ReconcileError;
use midplane_operator::apply;
use midplane_render::GroupRender;
use std::time::{Duration, Instant};

/// How long a planned switchover may take, agents included.
pub const SWITCHOVER_TIMEOUT: Duration = Duration::from_secs(30);

/// What the apply step did.
#[derive(Default)]
pub struct Applied {
    /// `Kind/name` of every object written.
    pub objects: Vec<String>,
}

pub async fn apply(
    group: &Group,
    rendered: &Rendered,
    step: &mut RolloutStep,
    status: &mut GroupStatus,
    ctx: &Context,
) -> Result<Applied, ReconcileError> {
    let (Some(objects), Some(_)) = (&rendered.objects, step.plan.as_ref()) else {
        return Ok(Applied::default());
    };
    let target = announce::content_hash(&rendered.summary);
    if ctx.rollouts.take_resume(group)
        && let Some(r) = status.rollout.as_mut()
        && r.state == rollout::FAILED
    {
        // An explicit resume: the failed step is tried once more.
        r.state = rollout::PROGRESSING.into();
        r.message = "resumed".into();
    }
    let hold = rollout::hold(status, &target, group.spec.paused);
    if let (Some(why), Some(plan)) = (&hold, step.plan.as_mut()) {
        // A failed or paused rollout goes no further: the instances still
        // to roll keep their workloads, and nothing switches over.
        rollout::hold_plan(plan, &objects.objects);
        if group.spec.paused
            && let Some(r) = status.rollout.as_mut()
            && r.state == rollout::PROGRESSING
        {
            r.state = rollout::PAUSED.into();
        }
        tracing::debug!(group = %group.name_any(), why, "rollout held");
    }
    let Some(plan) = step.plan.as_ref() else {
        return Ok(Applied::default());
    };
    if hold.is_none() && !plan.changed.is_empty() {
        let order = rollout::order(&plan.changed, &step.primary);
        rollout::progressing(status, &target, &order);
        announce::rollout_started(group, status, &rendered.summary, order, ctx);
    }
    if plan.switchover_first
        && let Some(new_primary) = switchover(group, objects, step, status, ctx).await?
    {
        step.primary = new_primary;
        step.plan = Some(rollout::plan(
            &objects.objects,
            &objects.instance_hashes,
            &objects.template_hashes,
            &step.rollout_live,
            &step.primary,
        ));
    }
    let Some(plan) = step.plan.as_ref() else {
        return Ok(Applied::default());
    };
    let mut applied = Applied::default();
    for i in &plan.apply {
        let (o, want) = (&objects.objects[*i], &rendered.summary.objects[*i]);
        let drifted = rendered
            .live
            .drifted(o.kind(), o.name(), want.drift_key.as_deref());
        // Edited by hand: applied again although its stamp matches (and
        // even if this controller wrote the same stamp moments ago).
        let result = if drifted {
            ctx.applier
                .apply_json(&o.object)
                .await
                .map(|()| apply::Applied::Written)
        } else {
            let live_hash = rendered.live.applied_hash(o.kind(), o.name());
            ctx.applier
                .apply_stamped(&o.object, &want.applied_hash, live_hash)
                .await
        };
        let object = format!("{}/{}", o.kind(), o.name());
        let outcome = match result {
            Ok(outcome) => {
                status.rejected.retain(|r| r.object != object);
                outcome
            }
            // The API server refuses this object (an immutable field, say):
            // the rest of the Group is applied; the refusal is in the status.
            Err(apply::ApplyError::Kube {
                source: kube::Error::Api(e),
                ..
            }) if e.code == 422 => {
                rejected(group, status, object, e.message, ctx).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if outcome == apply::Applied::Written {
            if drifted {
                let note = format!("{object} was changed by hand; restored from the App");
                ctx.events
                    .warning(group, "DriftRepaired", "Apply", note)
                    .await;
            }
            applied.objects.push(object);
        }
    }
    if !applied.objects.is_empty() {
        let ev = announce::rendered(
            group,
            &rendered.plugin,
            &rendered.summary,
            applied.objects.clone(),
        );
        ctx.bus.publish(&ev);
    }
    if let Some(held) = &plan.deferred {
        announce::replicas_first(group, status, held, ctx).await;
    }
    Ok(applied)
}

/// Records an object the API server refused; a Warning Event when that is news.
async fn rejected(
    group: &Group,
    status: &mut GroupStatus,
    object: String,
    message: String,
    ctx: &Context,
) {
    let known = status
        .rejected
        .iter()
        .any(|r| r.object == object && r.message == message);
    if known {
        return;
    }
    status.rejected.retain(|r| r.object != object);
    let note = format!("{object} refused by the API server: {message}");
    ctx.events
        .warning(group, "ApplyRejected", "Apply", note)
        .await;
    status.rejected.push(RejectedObject { object, message });
}

/// Moves the primary role to an updated, ready replica before the primary
/// rolls. Returns the new primary; None when there is no gateway or no
/// candidate (the primary then rolls in place, after its replicas).
async fn switchover(
    group: &Group,
    objects: &GroupRender,
    step: &RolloutStep,
    status: &mut GroupStatus,
    ctx: &Context,
) -> Result<Option<String>, ReconcileError> {
    let Some(gateway) = &ctx.gateway else {
        return Ok(None);
    };
    let Some(candidate) =
        rollout::switchover_candidate(&objects.instance_hashes, &step.rollout_live, &step.primary)
    else {
        return Ok(None);
    };
    let ns = group.namespace().unwrap_or_default();
    let began = Instant::now();
    let resp = gateway
        .switchover(&ns, &group.name_any(), &candidate, SWITCHOVER_TIMEOUT)
        .await
        .map_err(|e| ReconcileError::Agents {
            category: "SwitchoverFailed",
            message: e.to_string(),
            transient: true,
        })?;
    let new_primary = if resp.new_primary_instance.is_empty() {
        candidate
    } else {
        resp.new_primary_instance.clone()
    };
    let note = format!(
        "primary moved from {} to {new_primary} (term {}) before rolling it",
        step.primary, resp.term
    );
    ctx.events
        .normal(group, "Switchover", "Rollout", note)
        .await;
    ctx.bus.publish(&announce::switchover(
        group,
        &step.primary,
        &new_primary,
        began,
    ));
    status.primary = Some(new_primary.clone());
    status.term = status.term.max(resp.term);
    if let Some(r) = status.rollout.as_mut() {
        r.switchovers += 1;
    }
    // Persist the new primary first: a crash now must not forget it.
    status::write(group, status, ctx).await?;
    Ok(Some(new_primary))
}
