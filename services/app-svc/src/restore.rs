//! A component's `restoreFrom` (docs/backups.md): a named Backup is looked up and checked
//! (`midplane_api::backup::restore_source`), and its location is written into the Groups'
//! spec, where the plugin's templates turn it into a restore before the middleware starts.

use kube::api::Api;
use kube::{Client, ResourceExt};
use midplane_api::backup::{RestoreRefused, restore_source};
use midplane_api::{Backup, Component};
use midplane_operator::ReconcileError;

/// Why the component cannot be built yet.
pub enum Unresolved {
    /// Wrong as written (or the Backup is unusable): status Invalid until it changes.
    Invalid(String),
    /// The Backup is not Completed yet: status says so, and the component looks again.
    Waiting(String),
    Api(ReconcileError),
}

/// The component with `restoreFrom` resolved to a storage and backup id (unchanged when it
/// names none, or names the storage and id itself).
pub async fn resolve(client: &Client, comp: &Component) -> Result<Option<Component>, Unresolved> {
    let Some(rf) = &comp.spec.middleware.restore_from else {
        return Ok(None);
    };
    if rf.backup.is_empty() {
        if rf.storage.is_empty() || rf.id.is_empty() {
            return Err(Unresolved::Invalid(
                "spec.restoreFrom: name a Backup (backup), or the storage and id of a backup"
                    .into(),
            ));
        }
        if rf.key_secret.as_deref().unwrap_or_default().is_empty() {
            return Err(Unresolved::Invalid(
                "spec.restoreFrom.keySecret: is required with storage and id".into(),
            ));
        }
        return Ok(None);
    }
    let ns = comp.namespace().unwrap_or_default();
    let backup = Api::<Backup>::namespaced(client.clone(), &ns)
        .get_opt(&rf.backup)
        .await
        .map_err(|e| Unresolved::Api(e.into()))?
        .ok_or_else(|| {
            Unresolved::Waiting(format!(
                "spec.restoreFrom.backup: Backup {ns}/{} does not exist",
                rf.backup
            ))
        })?;
    match restore_source(&backup, &comp.spec.middleware) {
        Ok(resolved) => {
            let mut out = comp.clone();
            out.spec.middleware.restore_from = Some(resolved);
            Ok(Some(out))
        }
        Err(e @ RestoreRefused::NotCompleted { .. }) => {
            Err(Unresolved::Waiting(format!("spec.restoreFrom.backup: {e}")))
        }
        Err(e) => Err(Unresolved::Invalid(format!("spec.restoreFrom.backup: {e}"))),
    }
}
