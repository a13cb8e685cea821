//! backup-svc: the BackupService gRPC API over the `midplane-backup` pipeline, the scheduler
//! that runs the backup policies of Apps (in process, or as Backup Jobs), and the backup
//! events it announces on the bus. `main.rs` only wires; the logic is in these modules, which tests
//! reach directly. See docs/backup-scheduling.md.

pub mod announce;
pub mod app_backups;
pub mod config;
pub mod convert;
pub mod cron;
pub mod execute;
pub mod job_client;
pub mod job_spec;
pub mod policy;
pub mod resolve;
pub mod resources;
pub mod restores;
pub mod scheduler;
pub mod service;
pub mod startup;

pub use config::{BackupSettings, Config, Mode};
pub use service::BackupSvc;
