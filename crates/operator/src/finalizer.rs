//! Reading finalizers; writing them goes through [`crate::Applier`]
//! (`add_finalizer`, `remove_finalizer`).

use kube::{Resource, ResourceExt};

pub fn has<K: Resource>(obj: &K, finalizer: &str) -> bool {
    obj.finalizers().iter().any(|f| f == finalizer)
}

pub fn is_deleting<K: Resource>(obj: &K) -> bool {
    obj.meta().deletion_timestamp.is_some()
}
