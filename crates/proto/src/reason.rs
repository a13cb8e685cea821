//! The stable `google.rpc.ErrorInfo.reason` values of every Midplane API
//! (domain `midplane.dev`). Clients may switch on them: a reason is never
//! renamed or reused for another meaning. docs/api.md lists them from here.

/// `google.rpc.ErrorInfo.domain` of every Midplane error.
pub const DOMAIN: &str = "midplane.dev";

macro_rules! reasons {
    ($($name:ident: $doc:literal,)*) => {
        $(
            #[doc = $doc]
            pub const $name: &str = stringify!($name);
        )*
        /// Every reason with what it means, in documentation order.
        pub const ALL: &[(&str, &str)] = &[$((stringify!($name), $doc)),*];
    };
}

reasons! {
    REQUEST_INVALID: "A request field is missing or malformed; the BadRequest field violations name it.",
    APP_INVALID: "The App fails validation; one BadRequest field violation per problem, with the App's field paths.",
    RENDER_FAILED: "A plugin template failed while rendering; the field violation names `<file>:<line>`.",
    APP_NOT_FOUND: "No such App (ResourceInfo names it).",
    GROUP_NOT_FOUND: "No such Group (ResourceInfo names it).",
    PLUGIN_NOT_FOUND: "No such plugin is registered (ResourceInfo names it).",
    PLUGIN_VERSION_NOT_FOUND: "The plugin is registered, but serves another version (metadata `servedPluginVersion`).",
    COMPONENT_NOT_FOUND: "The App has no such component (ResourceInfo names the Component `<namespace>/<app>-<component>`).",
    BACKUP_NOT_FOUND: "No complete backup with this id in the storage, or no Backup resource of this name (ResourceInfo names it).",
    CONFLICT: "The object changed concurrently; read it again and retry (RetryInfo).",
    FIELD_MANAGER_CONFLICT: "Another field manager owns fields this apply sets; apply with `force` to take them over.",
    RESOURCE_VERSION_EXPIRED: "A resource version or continue token is too old; list or watch again without it.",
    ALREADY_EXISTS: "The object already exists.",
    PLUGIN_UNAVAILABLE: "The Group's plugin is not registered, or does not render the Group (metadata `plugin`).",
    GATEWAY_NOT_CONFIGURED: "The service runs without an agent gateway, which the call needs.",
    ORCHESTRATION_FAILED: "The agents refused the orchestration (FAILED_PRECONDITION) or could not be reached (UNAVAILABLE, RetryInfo).",
    KUBERNETES_UNAVAILABLE: "The Kubernetes API server could not be reached or failed; retry (RetryInfo).",
    CONTROLLER_UNAVAILABLE: "The service's controller is not running (it is shutting down); retry, another replica takes over (RetryInfo).",
    CONTROLLER_NOT_CONFIGURED: "The service runs without the controller the call needs (backup-svc: `controller.enabled`).",
    KUBERNETES_FORBIDDEN: "The service's own Kubernetes identity may not do this (check its RBAC).",
    STORAGE_INVALID: "The storage named (or the default) is unknown or not a valid URI (field `storage`).",
    STORAGE_UNAVAILABLE: "Object storage could not be reached or failed; retry (RetryInfo).",
    KEY_UNAVAILABLE: "The key reference names no readable 32-byte key.",
    PATH_UNUSABLE: "The directory to back up or restore into is missing or unusable.",
    BACKUP_CORRUPT: "A stored backup or manifest does not authenticate, parse or match its hashes.",
    WRONG_KEY: "The key does not open this backup.",
    DEADLINE_EXCEEDED: "The call ran out of time: metadata `limit` is `caller` (the grpc-timeout the caller sent) or `server` (the server's own limit), `timeoutMs` the limit.",
    TOKEN_INVALID: "No bearer token, or not the one the server expects.",
    PERMISSION_MISSING: "The caller's Kubernetes identity lacks the RBAC permission the call needs (metadata `user`, `verb`, `group`, `resource`, `namespace`, `name`).",
    INTERNAL: "A bug or an unexpected failure inside the service.",
}
