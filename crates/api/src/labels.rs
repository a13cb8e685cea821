//! Label and annotation keys Midplane writes. Tools and users select on these,
//! so they are part of the public contract.

pub const NAME: &str = "app.kubernetes.io/name";
pub const INSTANCE: &str = "app.kubernetes.io/instance";
pub const COMPONENT: &str = "app.kubernetes.io/component";
pub const VERSION: &str = "app.kubernetes.io/version";
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "midplane";

pub const APP: &str = "midplane.dev/app";
pub const COMPONENT_NAME: &str = "midplane.dev/component";
pub const GROUP: &str = "midplane.dev/group";
pub const SHARD: &str = "midplane.dev/shard";
/// One instance (one Deployment + one PVC + its Pod).
pub const MIDDLEWARE_INSTANCE: &str = "midplane.dev/instance";
/// The role an instance holds: primary or replica.
pub const ROLE: &str = "midplane.dev/role";
/// Marks a plugin ConfigMap; the value is the plugin name.
pub const PLUGIN: &str = "midplane.dev/plugin";

/// sha256 of everything rendered for an instance: changes exactly when the
/// instance's objects or config change.
pub const CONTENT_HASH: &str = "midplane.dev/content-hash";
/// sha256 of what needs a restart to take effect (pod template + restart-required
/// parameters); lives on the pod template so only such a change rolls the Pod.
pub const RESTART_HASH: &str = "midplane.dev/restart-hash";
/// sha256 of the rendered config file, passed to the agent's ReloadConfig.
pub const CONFIG_HASH: &str = "midplane.dev/config-hash";
/// Plugin name@version and content hash the object was rendered from.
pub const PLUGIN_HASH: &str = "midplane.dev/plugin-hash";
