//! The steps every parent controller shares (App → Components, Component →
//! Groups): bring the children in line with what the parent wants, delete
//! them first when the parent goes, and write the parent's status once it
//! changed what a reader sees.

use crate::apply::{Applied, Applier};
use crate::error::ReconcileError;
use crate::finalizer;
use kube::api::ApiResource;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::sync::Arc;

/// What [`sync`] did.
#[derive(Debug, Default, PartialEq)]
pub struct Synced {
    /// Children written because their desired state moved.
    pub applied: Vec<String>,
    /// Children deleted because the parent no longer lists them.
    pub removed: Vec<String>,
    /// A wanted child is still being deleted (it is created again once it is
    /// gone), or was written a moment ago and the cache has not shown it yet:
    /// look again shortly.
    pub waiting: bool,
}

/// Applies every desired child the live one does not already match, and
/// deletes the live children (controlled by the parent) it no longer wants.
pub async fn sync<C>(
    applier: &Applier,
    desired: &[C],
    live: &[Arc<C>],
) -> Result<Synced, ReconcileError>
where
    C: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + Debug,
{
    let mut out = Synced::default();
    for d in desired {
        let name = d.name_any();
        let current = live.iter().find(|l| l.name_any() == name);
        // Writing to a child on its way out would bring back its finalizer.
        if current.is_some_and(|c| finalizer::is_deleting(c.as_ref())) {
            out.waiting = true;
            continue;
        }
        match applier
            .apply_if_changed(d, current.map(Arc::as_ref))
            .await?
        {
            Applied::Written => out.applied.push(name),
            Applied::Current => {}
            // Written a moment ago; the watch will show it (or we look again).
            Applied::Expected => out.waiting = true,
        }
    }
    let ar = ApiResource::erase::<C>(&());
    for l in live {
        let name = l.name_any();
        if desired.iter().any(|d| d.name_any() == name) || finalizer::is_deleting(l.as_ref()) {
            continue;
        }
        let ns = l.namespace().unwrap_or_default();
        applier.delete(&ar, &ns, &name).await?;
        out.removed.push(name);
    }
    Ok(out)
}

/// Where a parent's deletion stands.
#[derive(Debug, PartialEq)]
pub enum Cleanup {
    /// Children are still going; look again shortly.
    Waiting,
    /// The children are gone and the parent's finalizer is off.
    Done,
    /// Not ours to clean up (our finalizer is not on it).
    NotOurs,
}

/// Deletion in order: every child (in the foreground, so its own children go
/// first), then the parent's finalizer.
pub async fn cleanup<P, C>(
    applier: &Applier,
    parent: &P,
    live: &[Arc<C>],
) -> Result<Cleanup, ReconcileError>
where
    P: Resource<DynamicType = ()> + DeserializeOwned + Clone + Debug,
    C: Resource<DynamicType = ()>,
{
    if !finalizer::has(parent, crate::FINALIZER) {
        return Ok(Cleanup::NotOurs);
    }
    if live.is_empty() {
        applier.remove_finalizer(parent, crate::FINALIZER).await?;
        return Ok(Cleanup::Done);
    }
    let ar = ApiResource::erase::<C>(&());
    for c in live.iter().filter(|c| !finalizer::is_deleting(c.as_ref())) {
        let ns = c.namespace().unwrap_or_default();
        applier.delete(&ar, &ns, &c.name_any()).await?;
    }
    Ok(Cleanup::Waiting)
}

/// The parent with our finalizer on it (added if missing).
pub async fn with_finalizer<P>(applier: &Applier, parent: Arc<P>) -> Result<Arc<P>, ReconcileError>
where
    P: Resource<DynamicType = ()> + DeserializeOwned + Clone + Debug,
{
    if finalizer::has(parent.as_ref(), crate::FINALIZER) {
        return Ok(parent);
    }
    if applier.added_finalizer_lately(parent.as_ref(), crate::FINALIZER) {
        // The cache is behind our own write: go on as the object now is.
        let mut now = parent.as_ref().clone();
        now.finalizers_mut().push(crate::FINALIZER.to_string());
        return Ok(Arc::new(now));
    }
    Ok(Arc::new(
        applier
            .add_finalizer(parent.as_ref(), crate::FINALIZER)
            .await?,
    ))
}
