//! backup-svc: the BackupService gRPC API over the `midplane-backup` pipeline.
//! `main.rs` only wires; the logic is in [`service`], which tests reach directly.

pub mod config;
pub mod service;

pub use config::{BackupSettings, Config};
pub use service::BackupSvc;
