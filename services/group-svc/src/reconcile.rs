//! The Group reconcile: render (pure) → plan the rollout → apply with SSA →
//! prune → status from the Pods.

use crate::error::GroupError;
use crate::memo::{self, RenderSummary};
use crate::{Context, announce, cleanup, lifecycle, live, roles, rollout, status};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use midplane_api::{Group, GroupStatus, expand, labels};
use midplane_operator::{FINALIZER, condition, finalizer};
use midplane_render::GroupRender;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

pub const CONTROLLER: &str = "group";

pub fn selector(group: &Group) -> String {
    format!("{}={}", labels::GROUP, group.name_any())
}

pub async fn reconcile(group: Arc<Group>, ctx: Arc<Context>) -> Result<Action, GroupError> {
    let ns = group
        .namespace()
        .ok_or_else(|| GroupError::NoNamespace(group.name_any()))?;
    // Until every watch cache has listed once, "not in the cache" does not
    // mean "does not exist": wait rather than re-create, prune or misreport.
    if !ctx.owned.ready() {
        return Ok(Action::requeue(Duration::from_millis(250)));
    }
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

    // Render (pure) unless the memo says this exact input was rendered before.
    // A missing plugin or a failing template stops here, loudly, and waits for
    // the Group or the plugin to change.
    let uid = group.uid().unwrap_or_default();
    let plugin_name = &group.spec.middleware.plugin;
    let Some(plugin) = ctx.plugins.get(plugin_name) else {
        let message = format!("plugin {plugin_name:?} is not registered");
        return render_failed(&group, status, "UnknownPlugin", message, &ctx).await;
    };
    let key = memo::key(&group, &plugin);
    let mut rendered = None;
    let mut summary = match ctx.renders.get(&uid, &key) {
        Some(s) => s,
        None => match render(&group, &plugin) {
            Ok((r, s)) => {
                let s = Arc::new(s);
                ctx.renders.put(&uid, key.clone(), s.clone());
                rendered = Some(r);
                s
            }
            Err(e) => return render_failed(&group, status, e.reason(), e.to_string(), &ctx).await,
        },
    };
    let mut live_objects =
        live::LiveObjects::fetch(&group, &summary.kinds(), &ctx.owned, &ctx.client).await?;
    let mut expecting = ctx.expected.overlay(&uid, &mut live_objects);
    // Something live differs from the last render (a rollout step, a deleted
    // or edited object): render again to apply it.
    if rendered.is_none() && !summary.in_sync(&live_objects) {
        match render(&group, &plugin) {
            Ok((r, s)) => {
                summary = Arc::new(s);
                rendered = Some(r);
            }
            Err(e) => return render_failed(&group, status, e.reason(), e.to_string(), &ctx).await,
        }
    }

    // Plan the rollout against the live instance Deployments.
    let live = rollout::live_instances(&live_objects.deployments);
    let instances = expand::instances(&group);
    let mut primary = status
        .primary
        .clone()
        .filter(|p| instances.contains(p))
        .or_else(|| instances.first().cloned())
        .unwrap_or_default();
    let mut deferred = None;
    if let Some(rendered) = &rendered {
        let mut plan = rollout::plan(
            &rendered.objects,
            &rendered.instance_hashes,
            &live,
            &primary,
        );

        if !plan.changed.is_empty() {
            // Replicas first, the primary last: the order this rollout takes.
            let mut order: Vec<String> = plan
                .changed
                .iter()
                .filter(|i| **i != primary)
                .cloned()
                .collect();
            order.extend(plan.changed.iter().filter(|i| **i == primary).cloned());
            let reason = announce::reason(
                status.plugin_hash.as_deref(),
                &format!("{}/{}", summary.plugin_id, summary.plugin_hash),
                status.replicas != instances.len() as i32,
            );
            if let Some(ev) =
                ctx.rollouts
                    .started(&group, &announce::content_hash(&summary), reason, order)
            {
                ctx.bus.publish(&ev);
            }
        }

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
            let began = std::time::Instant::now();
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
            ctx.bus
                .publish(&announce::switchover(&group, &primary, &new_primary, began));
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

        let mut applied = Vec::new();
        for (i, o) in plan.apply.iter().map(|i| (*i, &rendered.objects[*i])) {
            // Unchanged objects are not re-applied.
            if live_objects.applied_hash(o.kind(), o.name())
                != Some(summary.objects[i].applied_hash.as_str())
            {
                ctx.applier.apply_json(&o.object).await?;
                ctx.expected
                    .applied(&uid, o.kind(), o.name(), &summary.objects[i].applied_hash);
                applied.push(format!("{}/{}", o.kind(), o.name()));
            }
        }
        if !applied.is_empty() {
            ctx.bus
                .publish(&announce::rendered(&group, &plugin, &summary, applied));
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
        deferred = plan.deferred;
    }

    prune(&group, &summary, &live_objects, &ctx).await?;

    // Status from the Pods; each Pod's role label follows the primary.
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let instance_pods: Vec<(&str, &Pod)> = instances
        .iter()
        .filter_map(|i| lifecycle::pod_of(&live_objects.pods, i).map(|p| (i.as_str(), p)))
        .collect();
    for (pod, role) in roles::relabels(&instance_pods, &primary) {
        // Sent a moment ago and not in the Pod cache yet: not sent again, but
        // looked at again once the expectation has expired.
        if ctx.expected.relabelling(&uid, &pod.name_any(), role) {
            expecting = true;
            continue;
        }
        roles::label(&pods, pod, role).await?;
        ctx.expected.relabelled(&uid, &pod.name_any(), role);
    }
    let outcome = status::update(
        &mut status,
        status::Inputs {
            instances: &instances,
            primary: &primary,
            pods: &live_objects.pods,
            live: &live,
            summary: &summary,
            deferred: deferred.as_deref(),
            generation,
            now: Timestamp::now().to_string(),
        },
    );
    if group.status.as_ref() != Some(&status) {
        write_status(&group, &status, &ctx).await?;
    }
    for ((warning, reason), instance, phase) in outcome.transitions {
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
    if outcome.all_ready
        && let Some(ev) = ctx.rollouts.completed(&group, &primary)
    {
        ctx.bus.publish(&ev);
    }
    if let Some(failed) = status
        .instances
        .iter()
        .find(|i| i.phase == lifecycle::FAILED)
        && let Some(ev) = ctx.rollouts.failed(
            &group,
            Some(failed.name.clone()),
            format!("instance {} failed while rolling", failed.name),
        )
    {
        ctx.bus.publish(&ev);
    }
    if let Some(message) = outcome.became_ready {
        ctx.events
            .normal(group.as_ref(), "Ready", "Reconcile", message)
            .await;
    }
    Ok(if outcome.all_ready && !expecting {
        Action::requeue(Duration::from_secs(300))
    } else {
        // Owned objects wake us too; this bounds the wait if a watch lags, and
        // looks again once applies trusted over the caches have expired.
        Action::requeue(crate::expect::TTL)
    })
}

fn render(
    group: &Group,
    plugin: &midplane_plugin::Plugin,
) -> Result<(GroupRender, RenderSummary), midplane_render::RenderError> {
    let mut r = midplane_render::render_group(group, plugin)?;
    let summary = RenderSummary::of(&mut r);
    Ok((r, summary))
}

/// The plugin is missing or its templates fail for this Group: Ready=False
/// and Degraded with the reason, an Event when that is news, then wait for a
/// change to the Group or the plugin.
async fn render_failed(
    group: &Group,
    mut status: GroupStatus,
    reason: &'static str,
    message: String,
    ctx: &Context,
) -> Result<Action, GroupError> {
    let generation = group.meta().generation;
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
    ctx.applier.patch_status(group, &status).await?;
    if changed {
        ctx.events.warning(group, reason, "Render", message).await;
    }
    Ok(Action::await_change())
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
    rendered: &RenderSummary,
    live: &live::LiveObjects,
    ctx: &Context,
) -> Result<(), GroupError> {
    let ns = group.namespace().unwrap_or_default();
    let wanted: BTreeSet<(&str, &str)> = rendered
        .objects
        .iter()
        .map(|o| (o.resource.kind.as_str(), o.name.as_str()))
        .collect();
    // Highest ordinals first, so a scale-down removes the newest instances first.
    let mut stale: Vec<&live::LiveObject> = live
        .objects
        .iter()
        .filter(|o| {
            o.controlled
                && !o.deleting
                && !wanted.contains(&(o.resource.kind.as_str(), o.name.as_str()))
        })
        .collect();
    stale.sort_by(|a, b| b.name.cmp(&a.name));
    for o in stale {
        ctx.applier
            .delete_dynamic(&o.resource, &ns, &o.name)
            .await?;
        ctx.events
            .normal(
                group,
                "Pruned",
                "Delete",
                format!("{} {} is no longer rendered", o.resource.kind, o.name),
            )
            .await;
    }
    Ok(())
}
