//! Step 5, role labels. Roles are runtime state: the Group's status names
//! the primary, and the controller labels each instance's Pod
//! `midplane.dev/role` to match, so the client Service (selector
//! `midplane.dev/role: primary`) follows switchovers and a restarted old
//! primary never claims the role from its template.

use crate::Context;
use crate::lifecycle;
use crate::render::Rendered;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use midplane_api::labels;
use midplane_operator::ReconcileError;
use midplane_operator::apply::Applied;
use std::collections::BTreeMap;

pub const PRIMARY: &str = "primary";
pub const REPLICA: &str = "replica";

/// Labels every instance's Pod with its role. Returns whether a relabel sent
/// a moment ago is still not in the Pod cache (the Group looks again once
/// that expectation has expired).
pub async fn relabel(
    rendered: &Rendered,
    primary: &str,
    ctx: &Context,
) -> Result<bool, ReconcileError> {
    let pods: Vec<(&str, &Pod)> = rendered
        .summary
        .instances
        .iter()
        .filter_map(|i| lifecycle::pod_of(&rendered.live.pods, i).map(|p| (i.as_str(), p)))
        .collect();
    let mut expecting = false;
    for (pod, role) in relabels(&pods, primary) {
        let label = BTreeMap::from([(labels::ROLE.to_string(), role.to_string())]);
        // Sent a moment ago and not in the Pod cache yet: not sent again.
        if ctx.applier.apply_labels(pod, &label).await? == Applied::Expected {
            expecting = true;
        }
    }
    Ok(expecting)
}

/// Pods whose role label differs from what `primary` implies: (pod, role).
pub fn relabels<'a>(pods: &'a [(&'a str, &'a Pod)], primary: &str) -> Vec<(&'a Pod, &'static str)> {
    pods.iter()
        .filter(|(_, p)| p.metadata.deletion_timestamp.is_none())
        .filter_map(|(instance, pod)| {
            let want = if *instance == primary {
                PRIMARY
            } else {
                REPLICA
            };
            (pod.labels().get(labels::ROLE).map(String::as_str) != Some(want))
                .then_some((*pod, want))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(role: Option<&str>) -> Pod {
        let mut p = Pod::default();
        if let Some(r) = role {
            p.metadata.labels = Some(BTreeMap::from([(labels::ROLE.to_string(), r.to_string())]));
        }
        p
    }

    #[test]
    fn only_pods_with_the_wrong_role_are_relabelled() {
        let (a, b, c) = (pod(Some(PRIMARY)), pod(None), pod(Some(PRIMARY)));
        let pods = [("g-0", &a), ("g-1", &b), ("g-2", &c)];
        let out: Vec<&str> = relabels(&pods, "g-0").into_iter().map(|(_, r)| r).collect();
        assert_eq!(out, [REPLICA, REPLICA]);
        let out = relabels(&pods, "g-2");
        assert_eq!(out.len(), 2, "g-0 loses the role, g-1 gets replica");
    }
}
