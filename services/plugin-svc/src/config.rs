use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: midplane_runtime::ServerConfig,
    /// A directory of plugin directories; unset: the plugins bundled in this build.
    pub plugins_dir: Option<PathBuf>,
    pub kube: KubeSettings,
    pub bus: BusSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KubeSettings {
    /// Watch plugin ConfigMaps (label midplane.dev/plugin) on the cluster.
    pub watch: bool,
    pub kubeconfig: Option<PathBuf>,
    pub plugin_namespace: String,
}

impl Default for KubeSettings {
    fn default() -> Self {
        Self {
            watch: true,
            kubeconfig: None,
            plugin_namespace: "midplane-system".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct BusSettings {
    /// AMQP URL of RabbitMQ; unset: no events are published.
    pub url: Option<String>,
}
