//! plugin-svc: serves the plugins the platform knows (PluginRegistry gRPC).
//! Plugins come from the bundled set or a directory; the ConfigMap watcher
//! replaces entries as plugin ConfigMaps change and publishes each change
//! on the bus (`midplane.plugin.updated` / `midplane.plugin.rejected`).

pub mod config;
pub mod registry_service;
pub mod watch;

pub use config::Config;
pub use registry_service::PluginRegistryService;
