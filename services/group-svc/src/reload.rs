//! Step 4, live config (docs/design.md, "Config changes"): a change of the
//! rendered config file that leaves every pod template as it is (dynamic
//! parameters only) is taken live. Once every instance's workload carries
//! the new content and is ready, the controller stamps each Pod with the new
//! config hash (a Pod change makes the kubelet sync its volumes at once),
//! then asks every agent, through the gateway, to reload the file once it
//! has that hash. Each agent applies all dynamic changes or none and reads
//! the running values back. `status.configHash` records the verified file;
//! `midplane.group.config.reloaded` is published once per change that
//! changed something. A refusal (a value the middleware rejects) leaves the
//! Group Degraded naming the parameter and restarts nothing.

use crate::Context;
use crate::announce;
use crate::render::Rendered;
use crate::rollout::RolloutStep;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use midplane_api::{Group, GroupStatus, labels};
use midplane_bus::catalogue::{GroupConfigReloaded, ParameterChange};
use midplane_operator::ReconcileError;
use midplane_operator::condition;
use midplane_plugin::ParameterClass;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long an agent waits for the kubelet to sync the new file (the Pod
/// stamp makes it sync at once; the Group's reconcile waits meanwhile).
pub const RELOAD_WAIT: Duration = Duration::from_secs(3);
/// The condition that says whether the running config is the rendered one.
pub const CONFIG_APPLIED: &str = "ConfigApplied";

/// What the live-config step found.
#[derive(Debug, Default, PartialEq)]
pub struct Reload {
    /// A reload is still to be done (the Group looks again soon).
    pub pending: bool,
    /// Why the running config is not the rendered one: (reason, message).
    pub problem: Option<(&'static str, String)>,
}

pub async fn reload(
    group: &Group,
    rendered: &Rendered,
    step: &RolloutStep,
    status: &mut GroupStatus,
    ctx: &Context,
) -> Result<Reload, ReconcileError> {
    let summary = &rendered.summary;
    let (Some(gateway), Some(desired)) = (&ctx.gateway, summary.config_hash.as_deref()) else {
        return Ok(Reload::default());
    };
    if status.config_hash.as_deref() == Some(desired) {
        return Ok(Reload::default());
    }
    // Every instance runs the new content and is ready: nothing rolls, so
    // the file is the only difference left to take.
    let settled = summary.instance_hashes.iter().all(|(name, hash)| {
        step.live
            .get(name)
            .is_some_and(|l| l.ready && l.content_hash.as_ref() == Some(hash))
    });
    if !settled {
        return Ok(Reload {
            pending: true,
            problem: None,
        });
    }
    let ns = group.namespace().unwrap_or_default();
    stamp_pods(&ns, rendered, desired, ctx).await?;
    let restart_required: Vec<String> = rendered
        .plugin
        .metadata
        .parameters
        .iter()
        .filter(|p| p.class == ParameterClass::RestartRequired)
        .map(|p| p.name.clone())
        .collect();
    let began = Instant::now();
    let resp = match gateway
        .reload_config(
            &ns,
            &group.name_any(),
            &rendered.plugin.metadata.config.path,
            desired,
            restart_required,
            RELOAD_WAIT,
        )
        .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(group = %group.name_any(), error = %e, "reload config");
            return Ok(Reload {
                pending: true,
                problem: None,
            });
        }
    };
    let generation = group.meta().generation;
    let mut changes: BTreeMap<String, ParameterChange> = BTreeMap::new();
    let mut instances = Vec::new();
    let mut problems = Vec::new();
    for pod in &resp.pods {
        let instance = pod
            .target
            .as_ref()
            .map(|t| t.instance.clone())
            .unwrap_or_default();
        match (&pod.result, &pod.error) {
            (Some(r), _) if r.applied && r.error.is_none() => {
                for c in &r.applied_changes {
                    changes.entry(c.name.clone()).or_insert(ParameterChange {
                        name: c.name.clone(),
                        old: Some(c.old_value.clone()).filter(|v| !v.is_empty()),
                        new: c.new_value.clone(),
                    });
                }
                instances.push(instance);
            }
            (Some(r), _) => {
                let why = r
                    .error
                    .as_ref()
                    .map(|e| e.message.clone())
                    .unwrap_or_else(|| {
                        let names: Vec<&str> = r
                            .restart_required_changes
                            .iter()
                            .map(|c| c.name.as_str())
                            .collect();
                        format!("restart-required changes: {}", names.join(", "))
                    });
                let named = if r.refused_parameters.is_empty() {
                    String::new()
                } else {
                    format!(" refused {}:", r.refused_parameters.join(", "))
                };
                problems.push(format!("{instance}:{named} {why}"));
            }
            (None, Some(e)) => problems.push(format!("{instance}: {}", e.message)),
            (None, None) => problems.push(format!("{instance}: no answer")),
        }
    }
    if problems.is_empty() && resp.all_applied {
        status.config_hash = Some(desired.to_string());
        condition::set(
            &mut status.conditions,
            CONFIG_APPLIED,
            true,
            "Verified",
            format!("every instance runs config {}", short(desired)),
            generation,
        );
        if !changes.is_empty() {
            let names: Vec<String> = changes.keys().cloned().collect();
            let note = format!(
                "{} applied live on {} instances in {} ms, no restart",
                names.join(", "),
                instances.len(),
                began.elapsed().as_millis()
            );
            ctx.events
                .normal(group, "ConfigReloaded", "Reload", note)
                .await;
            instances.sort();
            ctx.bus.publish(&GroupConfigReloaded {
                group: announce::group_ref(group),
                parameters: changes.into_values().collect(),
                instances,
            });
        }
        return Ok(Reload::default());
    }
    let message = problems.join("; ");
    if condition::set(
        &mut status.conditions,
        CONFIG_APPLIED,
        false,
        "ReloadRefused",
        message.clone(),
        generation,
    ) {
        ctx.events
            .warning(group, "ReloadRefused", "Reload", message.clone())
            .await;
    }
    Ok(Reload {
        pending: true,
        problem: Some(("ReloadRefused", message)),
    })
}

/// Stamps each instance's Pod with the config hash it should have.
async fn stamp_pods(
    ns: &str,
    rendered: &Rendered,
    desired: &str,
    ctx: &Context,
) -> Result<(), ReconcileError> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    for pod in &rendered.live.pods {
        if pod.metadata.deletion_timestamp.is_some()
            || pod
                .annotations()
                .get(labels::CONFIG_HASH)
                .map(String::as_str)
                == Some(desired)
        {
            continue;
        }
        let patch = serde_json::json!({
            "metadata": {"annotations": {labels::CONFIG_HASH: desired}}
        });
        match pods
            .patch(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => {}
            // Gone meanwhile: its replacement starts with the new file.
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => {
                return Err(ReconcileError::Agents {
                    category: "ConfigSync",
                    message: format!("stamping Pod {}: {e}", pod.name_any()),
                    transient: true,
                });
            }
        }
    }
    Ok(())
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}
