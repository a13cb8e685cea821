//! The Group reconcile: render (pure) → plan the rollout → apply with SSA →
//! prune → status from the Pods.

use crate::error::GroupError;
use crate::{Context, cleanup, lifecycle, live, roles, rollout};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use midplane_api::{Group, GroupStatus, InstanceStatus, expand, labels};
use midplane_operator::apply::controlled_by;
use midplane_operator::{FINALIZER, condition, finalizer};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

pub const CONTROLLER: &str = "group";

/// Kinds pruned even when the current render has none of them.
pub fn pruned_kinds() -> Vec<ApiResource> {
    vec![
        ApiResource::erase::<Deployment>(&()),
        ApiResource::erase::<k8s_openapi::api::core::v1::Service>(&()),
        ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&()),
        ApiResource::erase::<k8s_openapi::api::core::v1::PersistentVolumeClaim>(&()),
    ]
}

pub fn selector(group: &Group) -> String {
    format!("{}={}", labels::GROUP, group.name_any())
}

pub async fn reconcile(group: Arc<Group>, ctx: Arc<Context>) -> Result<Action, GroupError> {
    let ns = group
        .namespace()
        .ok_or_else(|| GroupError::NoNamespace(group.name_any()))?;
    let groups: Api<Group> = Api::namespaced(ctx.client.clone(), &ns);
    if finalizer::is_deleting(group.as_ref()) {
        return cleanup::run(&group, &groups, &ctx).await;
    }
    let group = if finalizer::has(group.as_ref(), FINALIZER) {
        group
    } else {
        Arc::new(finalizer::add(&groups, group.as_ref(), FINALIZER).await?)
    };
    let generation = group.meta().generation;
    let mut status = group.status.clone().unwrap_or_default();

    // Render: a missing plugin or a failing template stops here, loudly, and
    // waits for the Group or the plugin to change.
    let plugin_name = &group.spec.middleware.plugin;
    let rendered = match ctx.plugins.get(plugin_name) {
        None => Err((
            "UnknownPlugin",
            format!("plugin {plugin_name:?} is not registered"),
        )),
        Some(plugin) => midplane_render::render_group(&group, &plugin)
            .map(|r| (r, plugin))
            .map_err(|e| (e.reason(), e.to_string())),
    };
    let (mut rendered, plugin) = match rendered {
        Ok(r) => r,
        Err((reason, message)) => {
            let changed = condition::set(
                &mut status.conditions,
                condition::READY,
                false,
                reason,
                &message,
                generation,
            );
            condition::set(
                &mut status.conditions,
                condition::DEGRADED,
                true,
                reason,
                &message,
                generation,
            );
            status.observed_generation = generation;
            ctx.applier.patch_status(group.as_ref(), &status).await?;
            if changed {
                ctx.events
                    .warning(group.as_ref(), reason, "Render", message)
                    .await;
            }
            return Ok(Action::await_change());
        }
    };

    // Plan the rollout against the live instance Deployments.
    let hashes: Vec<String> = rendered
        .objects
        .iter_mut()
        .map(live::stamp_applied_hash)
        .collect();
    let live_objects = live::LiveObjects::fetch(&group, &rendered.objects, &ctx.client).await?;
    let live = rollout::live_instances(&live_objects.deployments());
    let instances = expand::instances(&group);
    let mut primary = status
        .primary
        .clone()
        .filter(|p| instances.contains(p))
        .or_else(|| instances.first().cloned())
        .unwrap_or_default();
    let mut plan = rollout::plan(
        &rendered.objects,
        &rendered.instance_hashes,
        &live,
        &primary,
    );

    // Replicas are done: move the role to an updated replica before the old
    // primary rolls (seed §2), when an agent gateway can do it safely.
    if plan.switchover_first
        && let Some(gateway) = &ctx.gateway
        && let Some(candidate) = rendered.instance_hashes.iter().find_map(|(name, hash)| {
            let l = live.get(name)?;
            (name != &primary && l.ready && l.content_hash.as_ref() == Some(hash))
                .then(|| name.clone())
        })
    {
        let resp = gateway
            .switchover(&ns, &group.name_any(), &candidate, Duration::from_secs(30))
            .await?;
        let new_primary = if resp.new_primary_instance.is_empty() {
            candidate
        } else {
            resp.new_primary_instance.clone()
        };
        ctx.events
            .normal(
                group.as_ref(),
                "Switchover",
                "Rollout",
                format!(
                    "primary moved from {primary} to {new_primary} (term {}) before rolling it",
                    resp.term
                ),
            )
            .await;
        primary = new_primary;
        status.primary = Some(primary.clone());
        status.term = status.term.max(resp.term);
        // Persist the new primary first: a crash now must not forget it.
        write_status(&group, &status, &ctx).await?;
        plan = rollout::plan(
            &rendered.objects,
            &rendered.instance_hashes,
            &live,
            &primary,
        );
    }

    for i in &plan.apply {
        let o = &rendered.objects[*i];
        // Unchanged objects are not re-applied: one LIST per kind replaces an SSA per object.
        if live_objects.applied_hash(o.kind(), o.name()) != Some(hashes[*i].as_str()) {
            ctx.applier.apply_json(&o.object).await?;
        }
    }
    if let Some(held) = &plan.deferred
        && status
            .conditions
            .iter()
            .all(|c| c.reason != "ReplicasFirst")
    {
        ctx.events
            .normal(
                group.as_ref(),
                "ReplicasFirst",
                "Rollout",
                format!(
                    "primary {held} waits until every replica runs the new content and is ready"
                ),
            )
            .await;
    }

    prune(&group, &rendered.objects, &live_objects, &ctx).await?;

    // Status from the Pods.
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let pod_list = pods
        .list(&ListParams::default().labels(&selector(&group)))
        .await?
        .items;
    let instance_pods: Vec<(&str, &Pod)> = instances
        .iter()
        .filter_map(|i| lifecycle::pod_of(&pod_list, i).map(|p| (i.as_str(), p)))
        .collect();
    for (pod, role) in roles::relabels(&instance_pods, &primary) {
        roles::label(&pods, pod, role).await?;
    }
    let now = Timestamp::now().to_string();
    let mut next_instances = Vec::new();
    let mut transitions = Vec::new();
    for name in &instances {
        let pod = lifecycle::pod_of(&pod_list, name);
        let phase = lifecycle::phase(pod);
        let previous = status.instances.iter().find(|i| &i.name == name);
        if let Some(ev) = lifecycle::transition_event(previous.map(|p| p.phase.as_str()), phase) {
            transitions.push((ev, name.clone(), phase));
        }
        let next = InstanceStatus {
            name: name.clone(),
            pod: pod.map(|p| p.name_any()),
            phase: phase.to_string(),
            role: Some(
                if *name == primary {
                    "primary"
                } else {
                    "replica"
                }
                .to_string(),
            ),
            content_hash: live.get(name).and_then(|l| l.content_hash.clone()),
            restarts: lifecycle::restarts(pod),
            last_transition_time: None,
        };
        next_instances.push(lifecycle::next_status(previous, next, now.clone()));
    }
    let ready_count = next_instances
        .iter()
        .filter(|i| i.phase == lifecycle::READY)
        .count() as i32;
    let up_to_date = rendered.instance_hashes.iter().all(|(n, h)| {
        live.get(n)
            .is_some_and(|l| l.content_hash.as_ref() == Some(h))
    });
    let all_ready = up_to_date && plan.deferred.is_none() && ready_count == instances.len() as i32;
    let failed: Vec<&str> = next_instances
        .iter()
        .filter(|i| i.phase == lifecycle::FAILED)
        .map(|i| i.name.as_str())
        .collect();
    let (reason, message) = if all_ready {
        (
            "Ready",
            format!("{ready_count}/{} instances ready", instances.len()),
        )
    } else if plan.deferred.is_some() {
        (
            "ReplicasFirst",
            format!("rolling replicas before primary {primary}"),
        )
    } else {
        (
            "InstancesNotReady",
            format!("{ready_count}/{} instances ready", instances.len()),
        )
    };
    let became_ready = condition::set(
        &mut status.conditions,
        condition::READY,
        all_ready,
        reason,
        &message,
        generation,
    ) && all_ready;
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
        generation,
    );
    status.observed_generation = generation;
    status.replicas = instances.len() as i32;
    status.ready_replicas = ready_count;
    status.primary = Some(primary);
    status.plugin_hash = Some(format!("{}/{}", plugin.id(), rendered.plugin_hash));
    status.instances = next_instances;
    if group.status.as_ref() != Some(&status) {
        write_status(&group, &status, &ctx).await?;
    }
    for ((warning, reason), instance, phase) in transitions {
        let note = format!("instance {instance} is {phase}");
        if warning {
            ctx.events
                .warning(group.as_ref(), reason, "Lifecycle", note)
                .await;
        } else {
            ctx.events
                .normal(group.as_ref(), reason, "Lifecycle", note)
                .await;
        }
    }
    if became_ready {
        ctx.events
            .normal(group.as_ref(), "Ready", "Reconcile", message)
            .await;
    }
    Ok(if all_ready {
        Action::requeue(Duration::from_secs(300))
    } else {
        // Owned objects wake us too; this bounds the wait if a watch lags.
        Action::requeue(Duration::from_secs(5))
    })
}

async fn write_status(
    group: &Group,
    status: &GroupStatus,
    ctx: &Context,
) -> Result<(), GroupError> {
    ctx.applier.patch_status(group, status).await?;
    Ok(())
}

/// Deletes owned objects the render no longer produces (scale-down, removed
/// templates): only objects this Group controls, never anyone else's.
async fn prune(
    group: &Group,
    rendered: &[midplane_render::RenderedObject],
    live: &live::LiveObjects,
    ctx: &Context,
) -> Result<(), GroupError> {
    let ns = group.namespace().unwrap_or_default();
    let uid = group.uid().unwrap_or_default();
    let wanted: BTreeSet<(String, String)> = rendered
        .iter()
        .map(|o| (o.kind().to_string(), o.name().to_string()))
        .collect();
    for (ar, items) in &live.by_kind {
        // Highest ordinals first, so a scale-down removes the newest instances first.
        let mut stale: Vec<&DynamicObject> = items
            .iter()
            .filter(|o| {
                controlled_by(*o, &uid) && !wanted.contains(&(ar.kind.clone(), o.name_any()))
            })
            .collect();
        stale.sort_by_key(|o| std::cmp::Reverse(o.name_any()));
        for o in stale {
            ctx.applier.delete_dynamic(ar, &ns, &o.name_any()).await?;
            ctx.events
                .normal(
                    group,
                    "Pruned",
                    "Delete",
                    format!("{} {} is no longer rendered", ar.kind, o.name_any()),
                )
                .await;
        }
    }
    Ok(())
}
