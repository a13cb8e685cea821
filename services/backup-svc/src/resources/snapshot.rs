//! Asking the agents of a Group for a consistent snapshot (through the agent gateway): Redis
//! writes it (BGSAVE) on a healthy replica when there is one, and keeps it under the volume
//! for the Backup Job to read. Without a gateway, the Job reads the volume's files as they are
//! and the Backup says so.

use futures::future::BoxFuture;

use super::plan::SnapshotTaken;

/// Why no snapshot could be taken.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct SnapshotError {
    pub message: String,
    /// Worth asking again (the agents or the gateway are unavailable), as opposed to a
    /// refusal that will not change.
    pub transient: bool,
}

pub trait Snapshots: Send + Sync + 'static {
    /// A snapshot of Group `namespace/group` on `instance` (empty: the gateway chooses),
    /// kept under the id `snapshot_id`.
    fn take<'a>(
        &'a self,
        namespace: &'a str,
        group: &'a str,
        instance: &'a str,
        snapshot_id: &'a str,
    ) -> BoxFuture<'a, Result<SnapshotTaken, SnapshotError>>;
}

/// No agent gateway: the Job reads the named instance's (or the first instance's) live files.
pub struct LiveFiles {
    /// The Group's first instance, used when the Backup names none.
    pub first_instance: fn(&str) -> String,
}

impl Default for LiveFiles {
    fn default() -> Self {
        Self {
            first_instance: |group| midplane_api::expand::instance_name(group, 0),
        }
    }
}

impl Snapshots for LiveFiles {
    fn take<'a>(
        &'a self,
        _namespace: &'a str,
        group: &'a str,
        instance: &'a str,
        _snapshot_id: &'a str,
    ) -> BoxFuture<'a, Result<SnapshotTaken, SnapshotError>> {
        let instance = if instance.is_empty() {
            (self.first_instance)(group)
        } else {
            instance.to_string()
        };
        Box::pin(async move {
            Ok(SnapshotTaken {
                instance,
                ..Default::default()
            })
        })
    }
}
