//! The Component controller: one Group per shard (build is pure), applied
//! with SSA, surplus shards pruned, status aggregated from the Groups.

use crate::context::group_key;
use crate::error::ReconcileError;
use crate::{Context, announce};
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use midplane_api::validate::ValidationErrors;
use midplane_api::{Component, Group, expand};
use midplane_operator::apply::controlled_by;
use midplane_operator::{FINALIZER, condition, finalizer};
use std::sync::Arc;
use std::time::Duration;

pub const CONTROLLER: &str = "component";

pub async fn reconcile(comp: Arc<Component>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let ns = comp
        .namespace()
        .ok_or_else(|| ReconcileError::NoNamespace(comp.name_any()))?;
    let comps: Api<Component> = Api::namespaced(ctx.client.clone(), &ns);
    // Until the Group cache has listed once, an empty one means nothing.
    if !ctx.groups.is_ready() {
        return Ok(Action::requeue(Duration::from_millis(250)));
    }
    let uid = comp.uid().unwrap_or_default();
    // Shared with the cache: a reconcile copies no child.
    let existing: Vec<Arc<Group>> = ctx
        .groups
        .get(&ns, &group_key(&comp.spec.app, &comp.spec.component))
        .into_iter()
        .filter(|g| controlled_by(g.as_ref(), &uid))
        .collect();
    let ar = kube::api::ApiResource::erase::<Group>(&());

    if finalizer::is_deleting(comp.as_ref()) {
        if !finalizer::has(comp.as_ref(), FINALIZER) {
            return Ok(Action::await_change());
        }
        if existing.is_empty() {
            finalizer::remove(&comps, comp.as_ref(), FINALIZER).await?;
            ctx.bus.publish(&announce::component_deleted(&comp));
            return Ok(Action::await_change());
        }
        for g in existing
            .iter()
            .filter(|g| !finalizer::is_deleting(g.as_ref()))
        {
            ctx.applier.delete_dynamic(&ar, &ns, &g.name_any()).await?;
        }
        return Ok(Action::requeue(Duration::from_millis(500)));
    }
    let comp = if finalizer::has(comp.as_ref(), FINALIZER) {
        comp
    } else {
        Arc::new(finalizer::add(&comps, comp.as_ref(), FINALIZER).await?)
    };
    let generation = comp.meta().generation;

    // The plugin must exist; the App controller validated everything else.
    let mut errs = ValidationErrors::default();
    midplane_plugin::validate_app::check_middleware(
        &comp.spec.middleware,
        "spec",
        &ctx.plugins.registry(),
        None,
        &mut errs,
    );
    if !errs.is_empty() {
        let mut status = comp.status.clone().unwrap_or_default();
        let message = errs.to_string();
        let changed = condition::set(
            &mut status.conditions,
            condition::READY,
            false,
            "Invalid",
            &message,
            generation,
        );
        status.observed_generation = generation;
        ctx.applier.patch_status(comp.as_ref(), &status).await?;
        if changed {
            ctx.events
                .warning(comp.as_ref(), "Invalid", "Validate", message)
                .await;
        }
        return Ok(Action::await_change());
    }

    let desired = expand::groups(&comp);
    for g in &desired {
        let live = existing.iter().find(|e| e.name_any() == g.name_any());
        ctx.applier
            .apply_if_changed(g, live.map(Arc::as_ref))
            .await?;
    }
    let wanted: Vec<String> = desired.iter().map(|g| g.name_any()).collect();
    for g in existing.iter().filter(|g| !wanted.contains(&g.name_any())) {
        ctx.applier.delete_dynamic(&ar, &ns, &g.name_any()).await?;
        ctx.events
            .normal(
                comp.as_ref(),
                "ShardRemoved",
                "Delete",
                format!("Group {} removed", g.name_any()),
            )
            .await;
    }

    // Status from the live Groups.
    let mut ready_replicas = 0;
    let mut all_ready = true;
    let mut degraded = false;
    for d in &desired {
        let live = existing.iter().find(|e| e.name_any() == d.name_any());
        let st = live.and_then(|l| l.status.clone()).unwrap_or_default();
        let current = live.is_some_and(|l| st.observed_generation == l.meta().generation)
            && live.is_some_and(|l| l.spec == d.spec);
        ready_replicas += st.ready_replicas;
        all_ready &= current && condition::is_true(&st.conditions, condition::READY);
        degraded |= condition::is_true(&st.conditions, condition::DEGRADED);
    }
    let replicas = comp.spec.middleware.replicas * comp.spec.middleware.shards;
    let mut status = comp.status.clone().unwrap_or_default();
    let was_ready = condition::is_true(&status.conditions, condition::READY);
    let was_degraded = condition::is_true(&status.conditions, condition::DEGRADED);
    let newly_applied = status.observed_generation != generation;
    let (reason, message) = if all_ready {
        (
            "Ready",
            format!("{ready_replicas}/{replicas} instances ready"),
        )
    } else {
        (
            "GroupsNotReady",
            format!("{ready_replicas}/{replicas} instances ready"),
        )
    };
    condition::set(
        &mut status.conditions,
        condition::READY,
        all_ready,
        reason,
        &message,
        generation,
    );
    condition::set(
        &mut status.conditions,
        condition::PROGRESSING,
        !all_ready,
        reason,
        &message,
        generation,
    );
    condition::set(
        &mut status.conditions,
        condition::DEGRADED,
        degraded,
        if degraded {
            "GroupDegraded"
        } else {
            "AsExpected"
        },
        "",
        generation,
    );
    status.observed_generation = generation;
    status.replicas = replicas;
    status.ready_replicas = ready_replicas;
    status.groups = wanted;
    if all_ready {
        status.applied_parameters = comp.spec.middleware.parameters.clone();
    }
    if comp.status.as_ref() != Some(&status) {
        ctx.applier.patch_status(comp.as_ref(), &status).await?;
    }
    if newly_applied {
        ctx.bus.publish(&announce::component_applied(&comp));
    }
    if degraded && !was_degraded {
        let names: Vec<String> = existing
            .iter()
            .filter(|g| {
                g.status
                    .as_ref()
                    .is_some_and(|s| condition::is_true(&s.conditions, condition::DEGRADED))
            })
            .map(|g| g.name_any())
            .collect();
        let note = format!("degraded: {}", names.join(", "));
        ctx.bus.publish(&announce::component_degraded(
            &comp,
            "GroupDegraded",
            &note,
            names,
        ));
    }
    if all_ready && !was_ready {
        ctx.bus
            .publish(&announce::component_ready(&comp, status.groups.clone()));
        ctx.events
            .normal(comp.as_ref(), "Ready", "Reconcile", message)
            .await;
    }
    Ok(Action::requeue(Duration::from_secs(300)))
}
