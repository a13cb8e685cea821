//! Roles are runtime state: the Group's status names the primary, and the
//! controller labels each instance's Pod `midplane.dev/role` to match, so the
//! client Service (selector `midplane.dev/role: primary`) follows switchovers
//! and a restarted old primary never claims the role from its template.

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use midplane_api::labels;

pub const PRIMARY: &str = "primary";
pub const REPLICA: &str = "replica";

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

pub async fn label(api: &Api<Pod>, pod: &Pod, role: &str) -> Result<(), kube::Error> {
    let body = serde_json::json!({ "metadata": { "labels": { labels::ROLE: role } } });
    match api
        .patch(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&body),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

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
