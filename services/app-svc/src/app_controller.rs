//! The App controller: validate (pure) → build Components (pure) → sync them
//! (apply what moved, delete what is no longer listed) → status → announce.
//! An invalid App gets Ready=False naming every bad field and an Event, and
//! nothing is created until it, or a plugin it uses, changes.

use crate::{Context, announce, parent};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use midplane_api::{App, AppStatus, Component, ComponentSummary, expand};
use midplane_operator::apply::controlled_by;
use midplane_operator::children::{self, Cleanup, Synced};
use midplane_operator::condition::{self, Summary};
use midplane_operator::{ReconcileError, finalizer};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub const CONTROLLER: &str = "app";
pub const FIELD_MANAGER: &str = "midplane/app";

pub async fn reconcile(app: Arc<App>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let ns = app
        .namespace()
        .ok_or_else(|| ReconcileError::NoNamespace(app.name_any()))?;
    // Until the Component cache has listed once, an empty one means nothing.
    if !ctx.components.is_ready() {
        return Ok(Action::requeue(Duration::from_millis(250)));
    }
    let uid = app.uid().unwrap_or_default();
    // Shared with the cache: a reconcile copies no child.
    let live: Vec<Arc<Component>> = ctx
        .components
        .get(&ns, &app.name_any())
        .into_iter()
        .filter(|c| controlled_by(c.as_ref(), &uid))
        .collect();
    if finalizer::is_deleting(app.as_ref()) {
        return cleanup(&app, &live, &ctx).await;
    }
    let app = children::with_finalizer(&ctx.app_applier, app).await?;
    if let Err(message) = validate(&app, &live, &ctx) {
        return parent::invalid(&ctx.app_status, app.as_ref(), message, &ctx).await;
    }
    let desired = expand::components(&app);
    let synced = children::sync(&ctx.app_applier, &desired, &live).await?;
    let (view, written, _) = parent::status(&ctx.app_status, app.as_ref(), |s| {
        status_of(&app, &desired, &live, s)
    })
    .await?;
    announce_pass(&app, &synced, &view, &ctx).await;
    Ok(parent::next(&synced, written))
}

/// Structure and plugins; against the Components as they run: immutable
/// parameters, and what Kubernetes would refuse (a storage shrink or class
/// change), with the field path, before anything is written.
fn validate(app: &App, live: &[Arc<Component>], ctx: &Context) -> Result<(), String> {
    let running: BTreeMap<String, midplane_api::MiddlewareSpec> = live
        .iter()
        .map(|c| (c.spec.component.clone(), c.spec.middleware.clone()))
        .collect();
    midplane_plugin::validate_app::validate_running(app, &ctx.plugins.registry(), &running, true)
        .map_err(|errs| errs.to_string())
}

/// What the status step saw, for the announce step.
pub struct View {
    pub ready: bool,
    pub became_ready: bool,
    pub newly_applied: bool,
    /// Degraded Components, when Degraded turned true in this pass.
    pub became_degraded: Option<Vec<String>>,
    pub message: String,
}

/// The App's status from its Components as they are now (pure).
pub fn status_of(
    app: &App,
    desired: &[Component],
    live: &[Arc<Component>],
    status: &mut AppStatus,
) -> View {
    let summaries: Vec<ComponentSummary> = desired
        .iter()
        .map(|d| {
            let live = live.iter().find(|e| e.name_any() == d.name_any());
            let st = live.and_then(|l| l.status.clone()).unwrap_or_default();
            // A Component the cache shows with an older spec has not taken the
            // change yet, whatever its status says.
            let current = live
                .is_some_and(|l| st.observed_generation == l.meta().generation && l.spec == d.spec);
            ComponentSummary {
                name: d.spec.component.clone(),
                replicas: expand::instance_count(&d.spec.middleware),
                ready_replicas: st.ready_replicas,
                ready: current && condition::is_true(&st.conditions, condition::READY),
            }
        })
        .collect();
    let ready = summaries.iter().all(|s| s.ready);
    let degraded: Vec<String> = live
        .iter()
        .filter(|c| {
            c.status
                .as_ref()
                .is_some_and(|s| condition::is_true(&s.conditions, condition::DEGRADED))
        })
        .map(|c| c.spec.component.clone())
        .collect();
    let not_ready: Vec<&str> = summaries
        .iter()
        .filter(|s| !s.ready)
        .map(|s| s.name.as_str())
        .collect();
    let mut summary = if ready {
        Summary::new(
            true,
            "Ready",
            format!("{} component(s) ready", summaries.len()),
        )
    } else {
        Summary::new(
            false,
            "ComponentsNotReady",
            format!("waiting for: {}", not_ready.join(", ")),
        )
    };
    if !degraded.is_empty() {
        summary = summary.degraded("ComponentDegraded", "");
    }
    let was_degraded = condition::is_true(&status.conditions, condition::DEGRADED);
    let generation = app.meta().generation;
    let newly_applied = status.observed_generation != generation;
    let ready_changed = condition::set_summary(&mut status.conditions, &summary, generation);
    status.observed_generation = generation;
    status.component_count = Some(summaries.len() as i32);
    status.components = summaries;
    View {
        ready,
        became_ready: ready && ready_changed,
        newly_applied,
        became_degraded: (!degraded.is_empty() && !was_degraded).then_some(degraded),
        message: summary.message,
    }
}

async fn announce_pass(app: &App, synced: &Synced, view: &View, ctx: &Context) {
    for name in &synced.removed {
        let note = format!("Component {name} is no longer listed");
        ctx.events
            .normal(app, "ComponentRemoved", "Delete", note)
            .await;
    }
    if view.newly_applied {
        ctx.bus.publish(&announce::app_applied(app));
    }
    if let Some(names) = &view.became_degraded {
        let note = format!("degraded: {}", names.join(", "));
        let ev = announce::app_degraded(app, "ComponentDegraded", &note, names.clone());
        ctx.bus.publish(&ev);
    }
    if view.became_ready {
        ctx.bus.publish(&announce::app_ready(app));
        ctx.events
            .normal(app, "Ready", "Reconcile", view.message.clone())
            .await;
    }
}

/// Deletion: Components go first (each in the foreground, so their Groups and
/// workloads go before them), then the App's finalizer comes off.
async fn cleanup(
    app: &App,
    live: &[Arc<Component>],
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    Ok(
        match children::cleanup(&ctx.app_applier, app, live).await? {
            Cleanup::Waiting => Action::requeue(Duration::from_millis(500)),
            Cleanup::Done => {
                ctx.bus.publish(&announce::app_deleted(app));
                Action::await_change()
            }
            Cleanup::NotOurs => Action::await_change(),
        },
    )
}
