use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: midplane_runtime::ServerConfig,
    /// A directory of plugin directories; unset: the plugins bundled in this build.
    pub plugins_dir: Option<PathBuf>,
}
