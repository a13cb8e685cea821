//! Step 4, prune: deletes owned objects the render no longer produces
//! (scale-down, removed templates): only objects this Group controls, never
//! anyone else's.

use crate::Context;
use crate::live::{LiveObject, LiveObjects};
use crate::memo::RenderSummary;
use kube::ResourceExt;
use midplane_api::Group;
use midplane_operator::ReconcileError;
use std::collections::BTreeSet;

pub async fn prune(
    group: &Group,
    rendered: &RenderSummary,
    live: &LiveObjects,
    ctx: &Context,
) -> Result<(), ReconcileError> {
    let ns = group.namespace().unwrap_or_default();
    for o in stale(rendered, live) {
        ctx.applier.delete(&o.resource, &ns, &o.name).await?;
        let note = format!("{} {} is no longer rendered", o.resource.kind, o.name);
        ctx.events.normal(group, "Pruned", "Delete", note).await;
    }
    Ok(())
}

/// Controlled, live objects the render does not produce, highest ordinals
/// first, so a scale-down removes the newest instances first.
fn stale<'a>(rendered: &RenderSummary, live: &'a LiveObjects) -> Vec<&'a LiveObject> {
    let wanted: BTreeSet<(&str, &str)> = rendered
        .objects
        .iter()
        .map(|o| (o.resource.kind.as_str(), o.name.as_str()))
        .collect();
    let mut stale: Vec<&LiveObject> = live
        .objects
        .iter()
        .filter(|o| {
            o.controlled
                && !o.deleting
                && !wanted.contains(&(o.resource.kind.as_str(), o.name.as_str()))
        })
        .collect();
    stale.sort_by(|a, b| b.name.cmp(&a.name));
    stale
}
