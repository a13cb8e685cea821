use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: midplane_runtime::ServerConfig,
    pub kube: KubeSettings,
    pub leader_election: midplane_operator::leader::LeaderElectionConfig,
    pub agent_gateway: AgentGateway,
    pub bus: BusSettings,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct BusSettings {
    /// AMQP URL of RabbitMQ; set: plugin updates arrive as
    /// `midplane.plugin.updated` (published by plugin-svc) and Group events
    /// are published (`midplane.group.*`); unset: plugin ConfigMaps are
    /// watched directly.
    pub url: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AgentGateway {
    /// e.g. `http://agent-gateway.midplane-system:7000`; unset: no switchovers,
    /// a changed primary rolls in place after its replicas.
    pub addr: Option<String>,
    /// Bearer token file for the gateway (mounted from a Secret).
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KubeSettings {
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
