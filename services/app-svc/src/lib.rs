//! app-svc: the App controller (validate, create/update/delete Components,
//! aggregate status) and the Component controller (one Group per shard,
//! scaling, status), plus the AppService gRPC API over the Kubernetes API.

pub mod announce;
pub mod app_controller;
pub mod component_controller;
pub mod config;
pub mod context;
pub mod grpc;
pub mod parent;
pub mod restore;
pub mod run;

pub use config::Config;
pub use context::Context;
