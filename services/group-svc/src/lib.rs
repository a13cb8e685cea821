//! group-svc: the Group controller. Its reconcile is a pipeline (see
//! `reconcile`): render (pure) → plan the rollout → apply with SSA → prune
//! what is no longer rendered → role labels → status from the Pods →
//! announce, rolling changed instances replicas first, primary last. A Group
//! held by a Restore only keeps its instances stopped (`hold`).

pub mod announce;
pub mod apply;
pub mod cleanup;
pub mod config;
pub mod context;
pub mod drift;
pub mod gateway;
pub mod grpc;
pub mod hold;
pub mod lifecycle;
pub mod live;
pub mod memo;
pub mod observe;
pub mod owned;
pub mod prune;
pub mod reconcile;
pub mod reload;
pub mod render;
pub mod roles;
pub mod rollout;
pub mod run;
pub mod status;

pub use config::Config;
pub use context::Context;
