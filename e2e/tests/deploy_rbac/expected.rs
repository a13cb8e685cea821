//! The permissions the RBAC test's flow is expected not to use, per ServiceAccount, each with
//! the code path that still needs it.

use std::collections::{BTreeMap, BTreeSet};

/// (API group, resource[/subresource], verb).
pub type Permission = (String, String, String);

pub fn p(group: &str, resource: &str, verb: &str) -> Permission {
    (group.into(), resource.into(), verb.into())
}

/// Granted but not used by this flow, and why each is still needed.
pub fn expected_unused() -> BTreeMap<&'static str, BTreeSet<Permission>> {
    BTreeMap::from([
        (
            "app-svc",
            BTreeSet::from([
                // AppService.DeleteApp (gRPC; the test deletes as the administrator).
                p("midplane.dev", "apps", "delete"),
                // AppService.GetApp reads Apps directly (the controllers use their cache).
                p("midplane.dev", "apps", "get"),
                p("midplane.dev", "components", "get"),
                p("midplane.dev", "groups", "get"),
                // Groups are pruned when a Component's shards go down (crates/operator
                // children.rs); on deletion the garbage collector removes them.
                p("midplane.dev", "groups", "delete"),
                // OwnerReferencesPermissionEnforcement on a real API server (blockOwnerDeletion);
                // the emulator does not run that admission plugin.
                p("midplane.dev", "apps/finalizers", "update"),
                p("midplane.dev", "components/finalizers", "update"),
                // The Lease is renewed (update) only past its first renewal period.
                p("coordination.k8s.io", "leases", "update"),
                // A plugin.updated event names a ConfigMap to read (bus mode).
                p("", "configmaps", "get"),
                // Repeated Events are patched (the flow has none).
                p("events.k8s.io", "events", "patch"),
                // A component's restoreFrom names a Backup (the example App has none).
                p("midplane.dev", "backups", "get"),
            ]),
        ),
        (
            "group-svc",
            BTreeSet::from([
                // GroupService.GetGroup / Rerender / Switchover read the Group directly.
                p("midplane.dev", "groups", "get"),
                p("midplane.dev", "groups/finalizers", "update"),
                p("coordination.k8s.io", "leases", "update"),
                p("", "configmaps", "get"),
                p("events.k8s.io", "events", "patch"),
                p("", "pods", "get"),
                // Direct reads of rendered objects (the caches serve this flow).
                p("", "services", "get"),
                p("", "persistentvolumeclaims", "get"),
                p("apps", "deployments", "get"),
                // Deleting a Group, cleanup.rs deletes its workloads, then the rest, in
                // order; prune.rs deletes what is no longer rendered. Here the emulator's
                // garbage collector removed them first.
                p("apps", "deployments", "delete"),
                p("", "services", "delete"),
                p("", "configmaps", "delete"),
                p("", "persistentvolumeclaims", "delete"),
            ]),
        ),
        (
            "plugin-svc",
            BTreeSet::from([
                p("", "configmaps", "get"),
                // Events about a refused plugin (the bundled one is accepted).
                p("events.k8s.io", "events", "create"),
                p("events.k8s.io", "events", "patch"),
            ]),
        ),
        (
            "backup-svc",
            BTreeSet::from([
                // A backup policy that comes due creates a Backup, and its retention
                // deletes older ones (the example App has no policy); BackupService's
                // RequestAppBackup creates one and GetAppBackup reads one (gRPC; the
                // test creates its Backup as the administrator).
                p("midplane.dev", "backups", "create"),
                p("midplane.dev", "backups", "get"),
                p("midplane.dev", "backups", "delete"),
                // OwnerReferencesPermissionEnforcement on a real API server (the Job's
                // blockOwnerDeletion); the emulator does not run that admission plugin.
                p("midplane.dev", "backups/finalizers", "update"),
                p("midplane.dev", "restores/finalizers", "update"),
                p("events.k8s.io", "events", "patch"),
                p("coordination.k8s.io", "leases", "update"),
            ]),
        ),
        ("agent-gateway", BTreeSet::new()),
    ])
}
