//! backup-svc configuration: the runtime's `server:` section plus `backup:`.

use std::path::PathBuf;

use midplane_runtime::ServerConfig;
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub backup: BackupSettings,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BackupSettings {
    /// Storage URI used when a request names none (credentials from the environment).
    pub default_storage: Option<String>,
    /// Key reference used when a request names none.
    pub default_key_ref: Option<String>,
    /// Where instance data is mounted: `<data_root>/<namespace>/<name>/<instance>`.
    pub data_root: PathBuf,
    /// Where Secrets holding backup keys are mounted: `<secrets_dir>/<namespace>/<name>/<key>`.
    pub secrets_dir: PathBuf,
    /// gzip level for new backups (default 5, see `midplane_backup::backup::DEFAULT_LEVEL`).
    pub compression_level: u32,
}

impl Default for BackupSettings {
    fn default() -> Self {
        Self {
            default_storage: None,
            default_key_ref: None,
            data_root: PathBuf::from("/data"),
            secrets_dir: PathBuf::from("/etc/midplane/secrets"),
            compression_level: midplane_backup::backup::DEFAULT_LEVEL,
        }
    }
}
