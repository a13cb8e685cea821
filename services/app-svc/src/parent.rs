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
use std::time::Duration;

/// An object whose status carries the standard conditions.
pub trait Parent: Resource<DynamicType = ()> {
    type Status: Default + Clone + PartialEq + Serialize;
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
    let mut status = obj.status().cloned().unwrap_or_default();
    let summary = Summary::new(false, "Invalid", message.clone()).waiting();
    let changed = condition::set_summary(P::conditions(&mut status), &summary, generation);
    *P::observed(&mut status) = generation;
    // Invalid is news to a reader whatever the detail: always a transition.
    writer.write(obj, obj.status(), &status, true).await?;
    if changed {
        let note = format!("{} is invalid:\n{message}", P::kind(&()));
        ctx.events.warning(obj, "Invalid", "Validate", note).await;
    }
    Ok(Action::await_change())
}

/// Whether a status change is a transition (see `midplane_operator::status`).
pub fn transition<P: Parent>(obj: &P, next: &P::Status) -> bool {
    let mut current = obj.status().cloned().unwrap_or_default();
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
