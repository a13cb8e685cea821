//! Resolving a Group's pods from the Kubernetes API: every Pod labelled
//! `midplane.dev/group=<group>` in the Group's namespace that has an IP,
//! including not-ready ones (a pod whose middleware died is exactly the one a
//! failover must reach). Agent ports come from the containers' named ports.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use midplane_api::labels;
use midplane_proto::gateway::PodTarget;

use crate::resolver::{PodResolver, ResolveError};

/// Container port names the plugin gives the agents.
pub const ADAPTER_PORT_NAME: &str = "agent-adapter";
pub const LIFECYCLE_PORT_NAME: &str = "agent-lifecycle";

#[derive(Clone)]
pub struct KubeResolver {
    client: kube::Client,
    default_adapter_port: u16,
    default_lifecycle_port: u16,
}

impl KubeResolver {
    pub fn new(client: kube::Client) -> Self {
        Self {
            client,
            default_adapter_port: 50052,
            default_lifecycle_port: 50051,
        }
    }
}

fn named_port(pod: &Pod, name: &str) -> Option<u16> {
    pod.spec
        .as_ref()?
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.name.as_deref() == Some(name))
        .and_then(|p| u16::try_from(p.container_port).ok())
}

/// The agents of one pod, or `None` while it has no IP yet.
pub fn pod_target(pod: &Pod, adapter_port: u16, lifecycle_port: u16) -> Option<PodTarget> {
    let name = pod.metadata.name.clone()?;
    let ip = pod
        .status
        .as_ref()?
        .pod_ip
        .clone()
        .filter(|ip| !ip.is_empty())?;
    let host = if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip
    };
    let instance = pod
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(labels::MIDDLEWARE_INSTANCE).cloned())
        .unwrap_or_else(|| name.clone());
    let adapter = named_port(pod, ADAPTER_PORT_NAME).unwrap_or(adapter_port);
    let lifecycle = named_port(pod, LIFECYCLE_PORT_NAME).unwrap_or(lifecycle_port);
    Some(PodTarget {
        pod: name,
        instance,
        address: format!("{host}:{adapter}"),
        lifecycle_address: format!("{host}:{lifecycle}"),
    })
}

impl PodResolver for KubeResolver {
    async fn resolve(&self, namespace: &str, name: &str) -> Result<Vec<PodTarget>, ResolveError> {
        if namespace.is_empty() || name.is_empty() {
            return Err(ResolveError::MissingRef);
        }
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let list = pods
            .list(&ListParams::default().labels(&format!("{}={name}", labels::GROUP)))
            .await
            .map_err(|e| ResolveError::Backend {
                namespace: namespace.into(),
                name: name.into(),
                message: format!("listing pods labelled {}={name}: {e}", labels::GROUP),
            })?;
        if list.items.is_empty() {
            return Err(ResolveError::UnknownGroup {
                namespace: namespace.into(),
                name: name.into(),
            });
        }
        let mut targets: Vec<PodTarget> = list
            .items
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter_map(|p| pod_target(p, self.default_adapter_port, self.default_lifecycle_port))
            .collect();
        targets.sort_by(|a, b| a.instance.cmp(&b.instance));
        Ok(targets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: &str) -> Pod {
        serde_json::from_str(json).expect("pod json")
    }

    #[test]
    fn named_ports_and_instance_label_make_the_target() {
        let p = pod(
            r#"{"metadata":{"name":"cache-0-1-7d9f","labels":{"midplane.dev/group":"shop-cache-0","midplane.dev/instance":"cache-0-1"}},
               "spec":{"containers":[{"name":"redis"},{"name":"agent-lifecycle","ports":[{"name":"agent-lifecycle","containerPort":7051}]},
                                     {"name":"agent-adapter","ports":[{"name":"agent-adapter","containerPort":7052},{"name":"metrics","containerPort":9090}]}]},
               "status":{"podIP":"10.0.0.7"}}"#,
        );
        let t = pod_target(&p, 50052, 50051).expect("target");
        assert_eq!(t.pod, "cache-0-1-7d9f");
        assert_eq!(t.instance, "cache-0-1");
        assert_eq!(t.address, "10.0.0.7:7052");
        assert_eq!(t.lifecycle_address, "10.0.0.7:7051");
    }

    #[test]
    fn defaults_apply_and_a_pod_without_ip_is_skipped() {
        let p = pod(
            r#"{"metadata":{"name":"p"},"spec":{"containers":[{"name":"redis"}]},"status":{"podIP":"fd00::5"}}"#,
        );
        let t = pod_target(&p, 50052, 50051).expect("target");
        assert_eq!(t.instance, "p");
        assert_eq!(t.address, "[fd00::5]:50052");
        let pending = pod(r#"{"metadata":{"name":"p"},"spec":{"containers":[]},"status":{}}"#);
        assert!(pod_target(&pending, 50052, 50051).is_none());
    }
}
