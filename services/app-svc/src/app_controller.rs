//! The App controller: validate → build Components (pure) → apply → prune →
//! status. An invalid App gets Ready=False naming every bad field and an
//! Event, and nothing is created until it changes.

use crate::error::ReconcileError;
use crate::{Context, announce};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use midplane_api::{App, AppStatus, Component, ComponentSummary, expand};
use midplane_operator::apply::controlled_by;
use midplane_operator::{FINALIZER, condition, finalizer};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub const CONTROLLER: &str = "app";

pub async fn reconcile(app: Arc<App>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let ns = app
        .namespace()
        .ok_or_else(|| ReconcileError::NoNamespace(app.name_any()))?;
    let apps: Api<App> = Api::namespaced(ctx.client.clone(), &ns);
    // Until the Component cache has listed once, an empty one means nothing.
    if !ctx.components.is_ready() {
        return Ok(Action::requeue(Duration::from_millis(250)));
    }
    let uid = app.uid().unwrap_or_default();
    // Shared with the cache: a reconcile copies no child.
    let existing: Vec<Arc<Component>> = ctx
        .components
        .get(&ns, &app.name_any())
        .into_iter()
        .filter(|c| controlled_by(c.as_ref(), &uid))
        .collect();

    if finalizer::is_deleting(app.as_ref()) {
        return cleanup(&app, &apps, &existing, &ctx).await;
    }
    let app = if finalizer::has(app.as_ref(), FINALIZER) {
        app
    } else {
        Arc::new(finalizer::add(&apps, app.as_ref(), FINALIZER).await?)
    };

    // Validate: structure and plugins; immutable parameters against the Components as they run.
    let previous: BTreeMap<String, BTreeMap<String, String>> = existing
        .iter()
        .map(|c| {
            (
                c.spec.component.clone(),
                c.spec.middleware.parameters.clone(),
            )
        })
        .collect();
    let registry = ctx.plugins.registry();
    if let Err(errs) = midplane_plugin::validate_app::validate(&app, &registry, &previous) {
        let message = errs.to_string();
        let mut status = app.status.clone().unwrap_or_default();
        let changed = set_conditions(
            &mut status.conditions,
            false,
            "Invalid",
            &message,
            &app,
            false,
        );
        status.observed_generation = app.meta().generation;
        ctx.applier.patch_status(app.as_ref(), &status).await?;
        if changed {
            ctx.events
                .warning(
                    app.as_ref(),
                    "Invalid",
                    "Validate",
                    format!("App is invalid:\n{message}"),
                )
                .await;
        }
        // Wait for the user to change the App.
        return Ok(Action::await_change());
    }

    // Build (pure) and apply.
    let desired = expand::components(&app);
    for c in &desired {
        let live = existing.iter().find(|e| e.name_any() == c.name_any());
        ctx.applier
            .apply_if_changed(c, live.map(Arc::as_ref))
            .await?;
    }
    // Prune components the App no longer lists.
    let wanted: Vec<String> = desired.iter().map(|c| c.name_any()).collect();
    let ar = kube::api::ApiResource::erase::<Component>(&());
    for c in existing.iter().filter(|c| !wanted.contains(&c.name_any())) {
        ctx.applier.delete_dynamic(&ar, &ns, &c.name_any()).await?;
        ctx.events
            .normal(
                app.as_ref(),
                "ComponentRemoved",
                "Delete",
                format!("Component {} is no longer listed", c.name_any()),
            )
            .await;
    }

    // Status from the Components as they are now.
    let summaries: Vec<ComponentSummary> = desired
        .iter()
        .map(|d| {
            let live = existing.iter().find(|e| e.name_any() == d.name_any());
            let status = live.and_then(|l| l.status.clone()).unwrap_or_default();
            let current = live.is_some_and(|l| status.observed_generation == l.meta().generation);
            ComponentSummary {
                name: d.spec.component.clone(),
                replicas: d.spec.middleware.replicas * d.spec.middleware.shards,
                ready_replicas: status.ready_replicas,
                ready: current && condition::is_true(&status.conditions, condition::READY),
            }
        })
        .collect();
    let all_ready = summaries.iter().all(|s| s.ready);
    let degraded = existing.iter().any(|c| {
        c.status
            .as_ref()
            .is_some_and(|s| condition::is_true(&s.conditions, condition::DEGRADED))
    });
    let not_ready: Vec<&str> = summaries
        .iter()
        .filter(|s| !s.ready)
        .map(|s| s.name.as_str())
        .collect();
    let (reason, message) = if all_ready {
        ("Ready", format!("{} component(s) ready", summaries.len()))
    } else {
        (
            "ComponentsNotReady",
            format!("waiting for: {}", not_ready.join(", ")),
        )
    };
    let mut status = app.status.clone().unwrap_or_default();
    let was_ready = condition::is_true(&status.conditions, condition::READY);
    let was_degraded = condition::is_true(&status.conditions, condition::DEGRADED);
    let newly_applied = status.observed_generation != app.meta().generation;
    set_conditions(
        &mut status.conditions,
        all_ready,
        reason,
        &message,
        &app,
        degraded,
    );
    status.observed_generation = app.meta().generation;
    status.component_count = Some(summaries.len() as i32);
    status.components = summaries;
    if app.status.as_ref() != Some(&status) {
        ctx.applier.patch_status(app.as_ref(), &status).await?;
    }
    if newly_applied {
        ctx.bus.publish(&announce::app_applied(&app));
    }
    if degraded && !was_degraded {
        let names: Vec<String> = existing
            .iter()
            .filter(|c| {
                c.status
                    .as_ref()
                    .is_some_and(|s| condition::is_true(&s.conditions, condition::DEGRADED))
            })
            .map(|c| c.spec.component.clone())
            .collect();
        let note = format!("degraded: {}", names.join(", "));
        ctx.bus.publish(&announce::app_degraded(
            &app,
            "ComponentDegraded",
            &note,
            names,
        ));
    }
    if all_ready && !was_ready {
        ctx.bus.publish(&announce::app_ready(&app));
        ctx.events
            .normal(app.as_ref(), "Ready", "Reconcile", message)
            .await;
    }
    // Component changes wake us through `.owns()`; resync now and then anyway.
    Ok(Action::requeue(Duration::from_secs(300)))
}

fn set_conditions(
    conditions: &mut Vec<Condition>,
    ready: bool,
    reason: &str,
    message: &str,
    app: &App,
    degraded: bool,
) -> bool {
    let generation = app.meta().generation;
    let changed = condition::set(
        conditions,
        condition::READY,
        ready,
        reason,
        message,
        generation,
    );
    condition::set(
        conditions,
        condition::PROGRESSING,
        !ready && reason != "Invalid",
        reason,
        message,
        generation,
    );
    condition::set(
        conditions,
        condition::DEGRADED,
        degraded,
        if degraded {
            "ComponentDegraded"
        } else {
            "AsExpected"
        },
        "",
        generation,
    );
    changed
}

/// Deletion: Components go first (each in the foreground, so their Groups and
/// workloads go before them), then the App's finalizer comes off.
async fn cleanup(
    app: &App,
    apps: &Api<App>,
    existing: &[Arc<Component>],
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    if !finalizer::has(app, FINALIZER) {
        return Ok(Action::await_change());
    }
    if existing.is_empty() {
        finalizer::remove(apps, app, FINALIZER).await?;
        ctx.bus.publish(&announce::app_deleted(app));
        return Ok(Action::await_change());
    }
    let ar = kube::api::ApiResource::erase::<Component>(&());
    let ns = app.namespace().unwrap_or_default();
    for c in existing
        .iter()
        .filter(|c| !finalizer::is_deleting(c.as_ref()))
    {
        ctx.applier.delete_dynamic(&ar, &ns, &c.name_any()).await?;
    }
    Ok(Action::requeue(Duration::from_millis(500)))
}

/// The status as the gRPC API reports it, for use without a cluster round trip.
pub fn status_of(app: &App) -> AppStatus {
    app.status.clone().unwrap_or_default()
}
