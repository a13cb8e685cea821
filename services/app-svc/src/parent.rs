//! What the App and Component controllers share beyond the operator crate's
//! steps: the state of an object that cannot be built (invalid), and the
//! requeue that follows a pass.

use crate::Context;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Resource;
use kube::runtime::controller::Action;
use midplane_api::{App, AppStatus, Component, ComponentStatus};
use midplane_operator::condition::{self, Summary};
use midplane_operator::status::{StatusWriter, Written};
use midplane_operator::{ReconcileError, children};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// An object whose status carries the standard conditions.
pub trait Parent: Resource<DynamicType = ()> {
    type Status: Default + Clone + PartialEq + Serialize + DeserializeOwned;
    fn status(&self) -> Option<&Self::Status>;
    fn conditions(status: &mut Self::Status) -> &mut Vec<Condition>;
    fn observed(status: &mut Self::Status) -> &mut Option<i64>;
}

impl Parent for App {
    type Status = AppStatus;
    fn status(&self) -> Option<&AppStatus> {
        self.status.as_ref()
    }
    fn conditions(s: &mut AppStatus) -> &mut Vec<Condition> {
        &mut s.conditions
    }
    fn observed(s: &mut AppStatus) -> &mut Option<i64> {
        &mut s.observed_generation
    }
}

impl Parent for Component {
    type Status = ComponentStatus;
    fn status(&self) -> Option<&ComponentStatus> {
        self.status.as_ref()
    }
    fn conditions(s: &mut ComponentStatus) -> &mut Vec<Condition> {
        &mut s.conditions
    }
    fn observed(s: &mut ComponentStatus) -> &mut Option<i64> {
        &mut s.observed_generation
    }
}

/// The object cannot be built as it is: Ready=False naming every bad field,
/// a Warning Event when that is news, and nothing changes until the object
/// (or a plugin it uses) does.
pub async fn invalid<P: Parent>(
    writer: &StatusWriter,
    obj: &P,
    message: String,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let generation = obj.meta().generation;
    let current = writer.latest(obj, obj.status());
    let mut status = current.clone().unwrap_or_default();
    let summary = Summary::new(false, "Invalid", message.clone()).waiting();
    let changed = condition::set_summary(P::conditions(&mut status), &summary, generation);
    *P::observed(&mut status) = generation;
    // Invalid is news to a reader whatever the detail: always a transition.
    writer.write(obj, current.as_ref(), &status, true).await?;
    if changed {
        let note = format!("{} is invalid:\n{message}", P::kind(&()));
        ctx.events.warning(obj, "Invalid", "Validate", note).await;
    }
    Ok(Action::await_change())
}

/// The status step: the next status computed by `compute` on the one this
/// controller last wrote ([`StatusWriter::latest`]: the watch cache may not
/// show it yet), written if it changed what a reader sees. Returns what
/// `compute` saw, what the write did, and the status.
pub async fn status<P: Parent, V>(
    writer: &StatusWriter,
    obj: &P,
    compute: impl FnOnce(&mut P::Status) -> V,
) -> Result<(V, Written, P::Status), ReconcileError> {
    let current = writer.latest(obj, obj.status());
    let mut next = current.clone().unwrap_or_default();
    let view = compute(&mut next);
    let transition = transition::<P>(current.as_ref(), &next);
    let written = writer
        .write(obj, current.as_ref(), &next, transition)
        .await?;
    Ok((view, written, next))
}

/// Whether a status change is a transition (see `midplane_operator::status`).
fn transition<P: Parent>(current: Option<&P::Status>, next: &P::Status) -> bool {
    let mut current = current.cloned().unwrap_or_default();
    let mut next = next.clone();
    let (c, n) = (
        P::conditions(&mut current).clone(),
        P::conditions(&mut next).clone(),
    );
    midplane_operator::status::transition(
        &c,
        *P::observed(&mut current),
        &n,
        *P::observed(&mut next),
    )
}

/// After a pass: soon again while a child is on its way out (it is created
/// anew once gone) or status detail waits to be written, else a slow resync
/// (children wake us through `.owns()`).
pub fn next(synced: &children::Synced, written: Written) -> Action {
    let mut after = Duration::from_secs(300);
    if synced.waiting {
        after = after.min(Duration::from_millis(500));
    }
    if let Some(d) = written.requeue() {
        after = after.min(d);
    }
    Action::requeue(after)
}
