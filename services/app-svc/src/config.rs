use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: midplane_runtime::ServerConfig,
    pub kube: KubeSettings,
    pub leader_election: midplane_operator::leader::LeaderElectionConfig,
    pub bus: BusSettings,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct BusSettings {
    /// AMQP URL of RabbitMQ; set: App and Component events are published
    /// (`midplane.app.*`, `midplane.component.*`).
    pub url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KubeSettings {
    /// Unset: $KUBECONFIG, ~/.kube/config or the in-cluster service account.
    pub kubeconfig: Option<PathBuf>,
    /// Where plugin ConfigMaps live.
    pub plugin_namespace: String,
}

impl Default for KubeSettings {
    fn default() -> Self {
        Self {
            kubeconfig: None,
            plugin_namespace: "midplane-system".into(),
        }
    }
}
