//! plugin-svc: serves the plugins the platform knows (PluginRegistry gRPC).
//! Plugins come from the bundled set or a directory; the ConfigMap watcher
//! replaces entries as plugin ConfigMaps change.

pub mod config;
pub mod registry_service;

pub use config::Config;
pub use registry_service::{PluginRegistryService, SharedRegistry};
