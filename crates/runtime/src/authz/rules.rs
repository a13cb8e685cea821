//! What each public method asks Kubernetes RBAC for: the verb, the resource in API group
//! `midplane.dev` and where the request names the namespace (and object). docs/deploy.md,
//! "Who may call the APIs", prints this table; a test keeps the two equal.

/// The API group every rule names.
pub const GROUP: &str = "midplane.dev";

/// Where a request message holds a string: protobuf field numbers from the top, e.g.
/// `[1, 1]` is field 1 of the message in field 1 (`ref.namespace`).
pub type FieldPath = &'static [u32];

/// The namespace of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// From this field; empty (or unset) means every namespace, as a Kubernetes list
    /// across namespaces does.
    Field(FieldPath),
    /// The call names no namespace: the permission must hold cluster-wide.
    Cluster,
}

/// The RBAC permission one gRPC method needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// `/<package>.<Service>/<Method>`.
    pub method: &'static str,
    pub verb: &'static str,
    pub resource: &'static str,
    /// A subresource for actions that are neither reads nor plain writes.
    pub subresource: &'static str,
    pub scope: Scope,
    /// The object's name, when the request names one.
    pub name: Option<FieldPath>,
    /// Where in the request the scope and name are, for people (docs/deploy.md).
    pub from: &'static str,
}

const fn rule(
    method: &'static str,
    verb: &'static str,
    resource: &'static str,
    subresource: &'static str,
    scope: Scope,
    name: Option<FieldPath>,
    from: &'static str,
) -> Rule {
    Rule {
        method,
        verb,
        resource,
        subresource,
        scope,
        name,
        from,
    }
}

const REF_NS: Scope = Scope::Field(&[1, 1]);
const REF_NAME: Option<FieldPath> = Some(&[1, 2]);
const NS: Scope = Scope::Field(&[1]);

/// Every method of AppService, GroupService, PluginRegistry and BackupService.
pub const RULES: &[Rule] = &[
    rule(
        "/midplane.app.v1.AppService/ApplyApp",
        "patch",
        "apps",
        "",
        REF_NS,
        REF_NAME,
        "app.namespace, app.name",
    ),
    rule(
        "/midplane.app.v1.AppService/GetApp",
        "get",
        "apps",
        "",
        REF_NS,
        REF_NAME,
        "ref",
    ),
    rule(
        "/midplane.app.v1.AppService/ListApps",
        "list",
        "apps",
        "",
        NS,
        None,
        "namespace (empty: all)",
    ),
    rule(
        "/midplane.app.v1.AppService/DeleteApp",
        "delete",
        "apps",
        "",
        REF_NS,
        REF_NAME,
        "ref",
    ),
    rule(
        "/midplane.app.v1.AppService/WatchApps",
        "watch",
        "apps",
        "",
        NS,
        None,
        "namespace (empty: all)",
    ),
    rule(
        "/midplane.group.v1.GroupService/GetGroup",
        "get",
        "groups",
        "",
        REF_NS,
        REF_NAME,
        "ref",
    ),
    rule(
        "/midplane.group.v1.GroupService/ListGroups",
        "list",
        "groups",
        "",
        NS,
        None,
        "namespace (empty: all)",
    ),
    rule(
        "/midplane.group.v1.GroupService/Rerender",
        "create",
        "groups",
        "rerender",
        REF_NS,
        REF_NAME,
        "ref",
    ),
    rule(
        "/midplane.group.v1.GroupService/Switchover",
        "create",
        "groups",
        "switchover",
        REF_NS,
        REF_NAME,
        "ref",
    ),
    rule(
        "/midplane.group.v1.GroupService/ResumeRollout",
        "create",
        "groups",
        "resume",
        REF_NS,
        REF_NAME,
        "ref",
    ),
    rule(
        "/midplane.plugin.v1.PluginRegistry/ListPlugins",
        "list",
        "plugins",
        "",
        Scope::Cluster,
        None,
        "cluster-wide",
    ),
    rule(
        "/midplane.plugin.v1.PluginRegistry/GetPlugin",
        "get",
        "plugins",
        "",
        Scope::Cluster,
        Some(&[1]),
        "cluster-wide, name",
    ),
    rule(
        "/midplane.plugin.v1.PluginRegistry/ValidatePlugin",
        "create",
        "plugins",
        "validation",
        Scope::Cluster,
        None,
        "cluster-wide",
    ),
    rule(
        "/midplane.plugin.v1.PluginRegistry/RenderPreview",
        "get",
        "plugins",
        "",
        Scope::Cluster,
        Some(&[1]),
        "cluster-wide, plugin (empty: any)",
    ),
    rule(
        "/midplane.backup.v1.BackupService/CreateBackup",
        "create",
        "backups",
        "",
        Scope::Field(&[1, 1]),
        Some(&[1, 2]),
        "source",
    ),
    rule(
        "/midplane.backup.v1.BackupService/ListBackups",
        "list",
        "backups",
        "",
        Scope::Field(&[1, 1]),
        None,
        "source.namespace (unset: all)",
    ),
    rule(
        "/midplane.backup.v1.BackupService/GetBackup",
        "get",
        "backups",
        "",
        Scope::Cluster,
        Some(&[1]),
        "cluster-wide, id",
    ),
    rule(
        "/midplane.backup.v1.BackupService/DeleteBackup",
        "delete",
        "backups",
        "",
        Scope::Cluster,
        Some(&[1]),
        "cluster-wide, id",
    ),
    rule(
        "/midplane.backup.v1.BackupService/Restore",
        "create",
        "backups",
        "restore",
        Scope::Field(&[3, 1]),
        Some(&[3, 2]),
        "target",
    ),
    rule(
        "/midplane.backup.v1.BackupService/Verify",
        "get",
        "backups",
        "",
        Scope::Cluster,
        Some(&[1]),
        "cluster-wide, id",
    ),
    rule(
        "/midplane.backup.v1.BackupService/ApplyRetention",
        "delete",
        "backups",
        "",
        Scope::Field(&[1, 1]),
        None,
        "source.namespace (unset: all)",
    ),
    rule(
        "/midplane.backup.v1.BackupService/RequestAppBackup",
        "create",
        "backups",
        "",
        NS,
        Some(&[9]),
        "namespace, name (empty: generated)",
    ),
    rule(
        "/midplane.backup.v1.BackupService/GetAppBackup",
        "get",
        "backups",
        "",
        REF_NS,
        REF_NAME,
        "ref",
    ),
    rule(
        "/midplane.backup.v1.BackupService/ListAppBackups",
        "list",
        "backups",
        "",
        NS,
        None,
        "namespace (empty: all)",
    ),
];

/// The rule of a request path, if any.
pub fn rule_for(path: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.method == path)
}

/// The table as docs/deploy.md shows it (markdown rows).
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| method | verb | resource (`midplane.dev`) | namespace and name from |\n| --- | --- | --- | --- |\n",
    );
    for r in RULES {
        let resource = if r.subresource.is_empty() {
            r.resource.to_string()
        } else {
            format!("{}/{}", r.resource, r.subresource)
        };
        let method = r.method.trim_start_matches("/midplane.");
        out.push_str(&format!(
            "| `{method}` | `{}` | `{resource}` | {} |\n",
            r.verb, r.from
        ));
    }
    out
}
