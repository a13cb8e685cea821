//! App and Component events, published by app-svc as it models and reconciles a user's request.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ObjectRef, event};

/// One component as the App asked for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentSummary {
    /// Component name inside the App.
    pub name: String,
    /// Plugin name, e.g. `redis`.
    pub plugin: String,
    /// Middleware version requested (the component's `version`); empty: the plugin's default.
    pub middleware_version: String,
    pub replicas: u32,
    pub shards: u32,
}

/// An App was created or its spec changed and the new generation was accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppApplied {
    pub app: ObjectRef,
    /// `metadata.generation` that was accepted.
    pub generation: i64,
    pub components: Vec<ComponentSummary>,
}

/// An App is gone: its finalizer ran and every child was removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppDeleted {
    pub app: ObjectRef,
    /// Components that were deleted with it.
    pub components: Vec<String>,
}

/// Every component of the App reports Ready for the given generation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppReady {
    pub app: ObjectRef,
    pub generation: i64,
    pub components: Vec<String>,
}

/// The App's Degraded condition turned true.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppDegraded {
    pub app: ObjectRef,
    pub generation: i64,
    /// Condition reason (CamelCase, machine-readable).
    pub reason: String,
    /// Condition message (human-readable).
    pub message: String,
    pub degraded_components: Vec<String>,
}

/// A Component was created or changed; its Groups are being (re)created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentApplied {
    pub component: ObjectRef,
    /// Owning App name (same namespace).
    pub app: String,
    pub plugin: String,
    /// Middleware version requested (the spec's `version`); empty: the plugin's default.
    pub middleware_version: String,
    pub replicas: u32,
    pub shards: u32,
    /// Names of the Groups (one per shard).
    pub groups: Vec<String>,
}

/// A Component and its Groups were removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentDeleted {
    pub component: ObjectRef,
    pub app: String,
}

/// Every Group of the Component is Ready.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentReady {
    pub component: ObjectRef,
    pub app: String,
    pub groups: Vec<String>,
}

/// The Component's Degraded condition turned true.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentDegraded {
    pub component: ObjectRef,
    pub app: String,
    pub reason: String,
    pub message: String,
    pub degraded_groups: Vec<String>,
}

fn cache_app() -> ObjectRef {
    ObjectRef::new("shop", "cache")
}

fn cache_component() -> ObjectRef {
    ObjectRef::new("shop", "cache-redis")
}

event!(AppApplied, "midplane.app.applied",
producer: "app-svc", consumers: ["backup-svc"],
summary: "An App was created or changed and its new generation accepted.",
subject: |e| format!("apps/{}/{}", e.app.namespace, e.app.name),
example: AppApplied {
    app: cache_app(),
    generation: 3,
    components: vec![ComponentSummary {
        name: "redis".into(),
        plugin: "redis".into(),
        middleware_version: "7.2".into(),
        replicas: 3,
        shards: 1,
    }],
});

event!(AppDeleted, "midplane.app.deleted",
    producer: "app-svc", consumers: ["backup-svc"],
    summary: "An App and all its children were deleted.",
    subject: |e| format!("apps/{}/{}", e.app.namespace, e.app.name),
    example: AppDeleted { app: cache_app(), components: vec!["redis".into()] });

event!(AppReady, "midplane.app.ready",
    producer: "app-svc", consumers: [],
    summary: "Every component of the App is Ready at the given generation.",
    subject: |e| format!("apps/{}/{}", e.app.namespace, e.app.name),
    example: AppReady { app: cache_app(), generation: 3, components: vec!["redis".into()] });

event!(AppDegraded, "midplane.app.degraded",
producer: "app-svc", consumers: [],
summary: "The App's Degraded condition turned true.",
subject: |e| format!("apps/{}/{}", e.app.namespace, e.app.name),
example: AppDegraded {
    app: cache_app(),
    generation: 3,
    reason: "ComponentDegraded".into(),
    message: "component redis: 1 of 3 instances not ready".into(),
    degraded_components: vec!["redis".into()],
});

event!(ComponentApplied, "midplane.component.applied",
producer: "app-svc", consumers: [],
summary: "A Component was created or changed; its Groups are being created or updated.",
subject: |e| format!("components/{}/{}", e.component.namespace, e.component.name),
example: ComponentApplied {
    component: cache_component(),
    app: "cache".into(),
    plugin: "redis".into(),
    middleware_version: "7.2".into(),
    replicas: 3,
    shards: 1,
    groups: vec!["cache-redis-0".into()],
});

event!(ComponentDeleted, "midplane.component.deleted",
    producer: "app-svc", consumers: [],
    summary: "A Component and its Groups were deleted.",
    subject: |e| format!("components/{}/{}", e.component.namespace, e.component.name),
    example: ComponentDeleted { component: cache_component(), app: "cache".into() });

event!(ComponentReady, "midplane.component.ready",
producer: "app-svc", consumers: [],
summary: "Every Group of the Component is Ready.",
subject: |e| format!("components/{}/{}", e.component.namespace, e.component.name),
example: ComponentReady {
    component: cache_component(),
    app: "cache".into(),
    groups: vec!["cache-redis-0".into()],
});

event!(ComponentDegraded, "midplane.component.degraded",
producer: "app-svc", consumers: [],
summary: "The Component's Degraded condition turned true.",
subject: |e| format!("components/{}/{}", e.component.namespace, e.component.name),
example: ComponentDegraded {
    component: cache_component(),
    app: "cache".into(),
    reason: "GroupDegraded".into(),
    message: "group cache-redis-0: replica cache-redis-0-2 link down".into(),
    degraded_groups: vec!["cache-redis-0".into()],
});
