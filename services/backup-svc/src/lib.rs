//! backup-svc: the BackupService gRPC API over the `midplane-backup` pipeline, the scheduler
//! that runs the backup policies of Apps (in process, or as Backup Jobs), and the backup
//! events it publishes. `main.rs` only wires; the logic is in these modules, which tests
//! reach directly. See docs/backup-scheduling.md.

pub mod config;
pub mod convert;
pub mod events;
pub mod job;
pub mod jobs;
pub mod policy;
pub mod resolve;
pub mod run;
pub mod runner;
pub mod schedule;
pub mod scheduler;
pub mod service;

pub use config::{BackupSettings, Config, Mode};
pub use service::BackupSvc;
