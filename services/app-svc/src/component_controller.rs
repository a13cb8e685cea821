//! The Component controller: one Group per shard (build is pure), synced
//! (applied when changed, surplus shards deleted), status aggregated from
//! the Groups, then announced.

use crate::context::group_key;
use crate::{Context, announce, parent};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use midplane_api::validate::ValidationErrors;
use midplane_api::{Component, ComponentStatus, Group, expand};
use midplane_operator::apply::controlled_by;
use midplane_operator::children::{self, Cleanup, Synced};
use midplane_operator::condition::{self, Summary};
use midplane_operator::{ReconcileError, finalizer};
use std::sync::Arc;
use std::time::Duration;

pub const CONTROLLER: &str = "component";
pub const FIELD_MANAGER: &str = "midplane/component";

pub async fn reconcile(comp: Arc<Component>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let ns = comp
        .namespace()
        .ok_or_else(|| ReconcileError::NoNamespace(comp.name_any()))?;
    // Until the Group cache has listed once, an empty one means nothing.
    if !ctx.groups.is_ready() {
        return Ok(Action::requeue(Duration::from_millis(250)));
    }
    let uid = comp.uid().unwrap_or_default();
    // Shared with the cache: a reconcile copies no child.
    let live: Vec<Arc<Group>> = ctx
        .groups
        .get(&ns, &group_key(&comp.spec.app, &comp.spec.component))
        .into_iter()
        .filter(|g| controlled_by(g.as_ref(), &uid))
        .collect();
    let applier = &ctx.component_applier;
    if finalizer::is_deleting(comp.as_ref()) {
        return Ok(
            match children::cleanup(applier, comp.as_ref(), &live).await? {
                Cleanup::Waiting => Action::requeue(Duration::from_millis(500)),
                Cleanup::Done => {
                    ctx.bus.publish(&announce::component_deleted(&comp));
                    Action::await_change()
                }
                Cleanup::NotOurs => Action::await_change(),
            },
        );
    }
    let comp = children::with_finalizer(applier, comp).await?;
    // The plugin must exist; the App controller validated everything else.
    let mut errs = ValidationErrors::default();
    let registry = ctx.plugins.registry();
    midplane_plugin::validate_app::check_middleware(
        &comp.spec.middleware,
        "spec",
        &registry,
        None,
        &mut errs,
    );
    if !errs.is_empty() {
        return parent::invalid(&ctx.component_status, comp.as_ref(), errs.to_string(), &ctx).await;
    }
    // restoreFrom naming a Backup: its location goes into the Groups (the Component as
    // stored keeps what the user wrote).
    let resolved = match crate::restore::resolve(&ctx.client, &comp).await {
        Ok(r) => r,
        Err(crate::restore::Unresolved::Api(e)) => return Err(e),
        Err(crate::restore::Unresolved::Invalid(m)) => {
            return parent::invalid(&ctx.component_status, comp.as_ref(), m, &ctx).await;
        }
        Err(crate::restore::Unresolved::Waiting(m)) => {
            parent::invalid(&ctx.component_status, comp.as_ref(), m, &ctx).await?;
            return Ok(Action::requeue(Duration::from_secs(5)));
        }
    };
    let desired = expand::groups(resolved.as_ref().unwrap_or(&comp));
    let synced = children::sync(applier, &desired, &live).await?;
    let (view, written, status) = parent::status(&ctx.component_status, comp.as_ref(), |s| {
        status_of(&comp, &desired, &live, s)
    })
    .await?;
    announce_pass(&comp, &synced, &view, &status, &ctx).await;
    Ok(parent::next(&synced, written))
}

/// What the status step saw, for the announce step.
pub struct View {
    pub became_ready: bool,
    pub newly_applied: bool,
    /// Degraded Groups, when Degraded turned true in this pass.
    pub became_degraded: Option<Vec<String>>,
    pub message: String,
}

/// The Component's status from its Groups as they are now (pure).
pub fn status_of(
    comp: &Component,
    desired: &[Group],
    live: &[Arc<Group>],
    status: &mut ComponentStatus,
) -> View {
    let mut ready_replicas = 0;
    let mut ready = true;
    let mut degraded = Vec::new();
    for d in desired {
        let live = live.iter().find(|e| e.name_any() == d.name_any());
        let st = live.and_then(|l| l.status.clone()).unwrap_or_default();
        let current = live.is_some_and(|l| st.observed_generation == l.meta().generation)
            && live.is_some_and(|l| l.spec == d.spec);
        ready_replicas += st.ready_replicas;
        ready &= current && condition::is_true(&st.conditions, condition::READY);
        if condition::is_true(&st.conditions, condition::DEGRADED) {
            degraded.push(d.name_any());
        }
    }
    let replicas = expand::instance_count(&comp.spec.middleware);
    let message = format!("{ready_replicas}/{replicas} instances ready");
    let reason = if ready { "Ready" } else { "GroupsNotReady" };
    let mut summary = Summary::new(ready, reason, message);
    if !degraded.is_empty() {
        summary = summary.degraded("GroupDegraded", "");
    }
    let generation = comp.meta().generation;
    let was_degraded = condition::is_true(&status.conditions, condition::DEGRADED);
    let newly_applied = status.observed_generation != generation;
    let ready_changed = condition::set_summary(&mut status.conditions, &summary, generation);
    status.observed_generation = generation;
    status.replicas = replicas;
    status.ready_replicas = ready_replicas;
    status.groups = desired.iter().map(kube::ResourceExt::name_any).collect();
    if ready {
        status.applied_parameters = comp.spec.middleware.parameters.clone();
    }
    View {
        became_ready: ready && ready_changed,
        newly_applied,
        became_degraded: (!degraded.is_empty() && !was_degraded).then_some(degraded),
        message: summary.message,
    }
}

async fn announce_pass(
    comp: &Component,
    synced: &Synced,
    view: &View,
    status: &ComponentStatus,
    ctx: &Context,
) {
    for name in &synced.removed {
        let note = format!("Group {name} removed");
        ctx.events
            .normal(comp, "ShardRemoved", "Delete", note)
            .await;
    }
    if view.newly_applied {
        ctx.bus.publish(&announce::component_applied(comp));
    }
    if let Some(names) = &view.became_degraded {
        let note = format!("degraded: {}", names.join(", "));
        let ev = announce::component_degraded(comp, "GroupDegraded", &note, names.clone());
        ctx.bus.publish(&ev);
    }
    if view.became_ready {
        ctx.bus
            .publish(&announce::component_ready(comp, status.groups.clone()));
        ctx.events
            .normal(comp, "Ready", "Reconcile", view.message.clone())
            .await;
    }
}
