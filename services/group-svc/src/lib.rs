//! group-svc: the Group controller. Render (pure) → apply every object with
//! server-side apply → prune what is no longer rendered → roll changed
//! instances replicas first, primary last → report Pod lifecycle in status.

pub mod announce;
pub mod cleanup;
pub mod config;
pub mod context;
pub mod error;
pub mod expect;
pub mod gateway;
pub mod grpc;
pub mod lifecycle;
pub mod live;
pub mod memo;
pub mod owned;
pub mod plugin_events;
pub mod reconcile;
pub mod roles;
pub mod rollout;
pub mod run;
pub mod status;

pub use config::Config;
pub use context::Context;
