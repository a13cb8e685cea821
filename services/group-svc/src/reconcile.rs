//! The Group reconcile, as a pipeline of steps with typed hand-offs:
//! render (pure, memoized) → plan the rollout (pure) → apply (with the
//! switchover the plan asks for) → prune → role labels → status → announce.
//! Each step lives in its own module; this one only chains them.

use crate::context::CONTROLLER;
use crate::render::Render;
use crate::{Context, announce, apply, cleanup, hold, prune, reload, roles, rollout, status};
use kube::ResourceExt;
use kube::runtime::controller::Action;
use midplane_api::Group;
use midplane_operator::{ReconcileError, children, finalizer};
use std::sync::Arc;
use std::time::Duration;

pub async fn reconcile(group: Arc<Group>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    if group.namespace().is_none() {
        return Err(ReconcileError::NoNamespace(group.name_any()));
    }
    // Until every watch cache has listed once, "not in the cache" does not
    // mean "does not exist": wait rather than re-create, prune or misreport.
    if !ctx.owned.ready() {
        return Ok(Action::requeue(Duration::from_millis(250)));
    }
    if finalizer::is_deleting(group.as_ref()) {
        return cleanup::run(&group, &ctx).await;
    }
    let group = children::with_finalizer(&ctx.applier, group).await?;
    // What this controller last wrote, if the cache does not show it yet.
    let current = ctx.status.latest(group.as_ref(), group.status.as_ref());
    let mut status = current.clone().unwrap_or_default();

    let rendered = match crate::render::render(&group, &ctx).await? {
        Render::Done(r) => r,
        Render::Failed { reason, message } => {
            return status::render_failed(&group, current.as_ref(), reason, message, &ctx).await;
        }
    };
    // A Restore holds the Group: keep it stopped, and nothing else.
    if let Some(by) = hold::held_by(&group) {
        return hold::keep_stopped(&group, by, current.as_ref(), &rendered, &ctx).await;
    }
    hold::release(&group, &mut status, &rendered, &ctx).await?;
    let seen = roles::from_agents(&group, &mut status, &rendered, &ctx).await;
    let mut plan = rollout::step(&status, &rendered, &seen);
    let applied = apply::apply(&group, &rendered, &mut plan, &mut status, &ctx).await?;
    prune::prune(&group, &rendered.summary, &rendered.live, &ctx).await?;
    let reloaded = reload::reload(&group, &rendered, &plan, &mut status, &ctx).await?;
    let relabelling = roles::relabel(&rendered, &plan.primary, &ctx).await?;
    let found = status::Found {
        current: current.as_ref(),
        applied: &applied,
        seen: &seen,
        reload: &reloaded,
    };
    let outcome = status::update(&group, &mut status, &rendered, &plan, found, &ctx).await?;
    announce::outcome(&group, &outcome, &plan.primary, &ctx).await;

    let settled = outcome.all_ready && !rendered.expecting && !relabelling && !reloaded.pending;
    tracing::debug!(controller = CONTROLLER, settled, "reconciled");
    // Owned objects wake us too; an unsettled Group looks again by the TTL
    // (a watch may lag; applies trusted over the caches expire), and status
    // detail that waited is written when its turn comes.
    let mut after = if settled {
        Duration::from_secs(300)
    } else {
        midplane_operator::apply::EXPECT_TTL
    };
    if let Some(d) = outcome.written.requeue() {
        after = after.min(d);
    }
    Ok(Action::requeue(after))
}
