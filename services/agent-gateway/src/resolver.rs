//! Finding the pods of a Group. The static resolver reads them from the
//! gateway's config (local runs, tests); a Kubernetes resolver (EndpointSlices
//! labelled `midplane.dev/group`) implements the same trait.

use std::collections::BTreeMap;
use std::future::Future;

use midplane_proto::gateway::PodTarget;
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("group {namespace}/{name} is not known to the resolver")]
    UnknownGroup { namespace: String, name: String },
    #[error("group: namespace and name are required")]
    MissingRef,
    #[error("resolving group {namespace}/{name}: {message}")]
    Backend {
        namespace: String,
        name: String,
        message: String,
    },
}

pub trait PodResolver: Send + Sync + 'static {
    fn resolve(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Vec<PodTarget>, ResolveError>> + Send;
}

/// One pod as written in the static config.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StaticPod {
    pub pod: String,
    /// Defaults to the pod name.
    #[serde(default)]
    pub instance: Option<String>,
    /// Agent 2 (adapter) "host:port".
    pub address: String,
    /// Agent 1 (lifecycle) "host:port".
    #[serde(default)]
    pub lifecycle_address: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StaticGroup {
    pub namespace: String,
    pub name: String,
    pub pods: Vec<StaticPod>,
}

#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    groups: BTreeMap<(String, String), Vec<PodTarget>>,
}

impl StaticResolver {
    pub fn new(groups: impl IntoIterator<Item = StaticGroup>) -> Self {
        let groups = groups
            .into_iter()
            .map(|g| {
                let pods = g
                    .pods
                    .into_iter()
                    .map(|p| PodTarget {
                        instance: p.instance.unwrap_or_else(|| p.pod.clone()),
                        pod: p.pod,
                        lifecycle_address: p.lifecycle_address.unwrap_or_default(),
                        address: p.address,
                    })
                    .collect();
                ((g.namespace, g.name), pods)
            })
            .collect();
        Self { groups }
    }
}

impl PodResolver for StaticResolver {
    async fn resolve(&self, namespace: &str, name: &str) -> Result<Vec<PodTarget>, ResolveError> {
        if namespace.is_empty() || name.is_empty() {
            return Err(ResolveError::MissingRef);
        }
        self.groups
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
            .ok_or_else(|| ResolveError::UnknownGroup {
                namespace: namespace.into(),
                name: name.into(),
            })
    }
}
