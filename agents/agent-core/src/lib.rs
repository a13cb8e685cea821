//! Pod agents: the middleware [`adapter::Adapter`] trait with its Redis
//! implementation, agent 1 (lifecycle, status, health) and agent 2 (role,
//! failover, reload, restart, exporter) as tonic services.

pub mod adapter;
pub mod adapter_agent;
pub mod app;
pub mod convert;
pub mod exporter;
pub mod lifecycle_agent;
pub mod redis;
pub mod resp;
pub mod rpc_stats;
pub mod state;
#[cfg(feature = "testkit")]
pub mod testkit;
