//! Midplane's Kubernetes API (`midplane.dev/v1alpha1`): the [`App`] a user
//! submits, the [`Component`]s and [`Group`]s the controllers derive from it,
//! structural validation that names every bad field, and the pure expansion
//! App → Components → Groups.

pub mod backup;
pub mod crd;
pub mod expand;
pub mod labels;
pub mod quantity;
pub mod restore;
pub mod scalar;
pub mod types;
pub mod validate;

pub use backup::{Backup, BackupSpec, BackupStatus, RestoreFrom};
pub use restore::{Restore, RestoreSpec, RestoreStatus};
pub use types::*;
pub use validate::{FieldError, ValidationErrors};

/// The API group every Midplane resource belongs to.
pub const API_GROUP: &str = "midplane.dev";
/// The served and stored version.
pub const VERSION: &str = "v1alpha1";
/// The finalizer each Midplane controller keeps on the objects it
/// reconciles, so children go before parents (docs/design.md, "Deletion").
/// A parent writes it on the children it creates, so creating a child is one
/// write, not two; the child's own controller takes it off.
pub const FINALIZER: &str = "midplane.dev/cleanup";
