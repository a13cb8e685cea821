//! The pure expansion App → Components → Groups → instance names. The
//! controllers apply exactly what these functions return; `midplane render`
//! prints it. Nothing here touches a cluster.

use crate::labels;
use crate::types::{App, Component, ComponentSpec, Group, GroupSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub fn component_name(app: &str, component: &str) -> String {
    format!("{app}-{component}")
}

pub fn group_name(component_object: &str, shard: i32) -> String {
    format!("{component_object}-{shard}")
}

pub fn instance_name(group: &str, ordinal: i32) -> String {
    format!("{group}-{ordinal}")
}

/// A controller ownerReference to `owner`. Offline (no uid yet, as in
/// `midplane render`), the uid is a stable stand-in derived from the owner's
/// kind, namespace and name; on a cluster the real uid is used.
pub fn owner_reference<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    let name = owner.name_any();
    let uid = owner.meta().uid.clone().unwrap_or_else(|| {
        offline_uid(
            &K::kind(&()),
            owner.namespace().as_deref().unwrap_or_default(),
            &name,
        )
    });
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name,
        uid,
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// A deterministic UUID-shaped id for an object that has none yet.
pub fn offline_uid(kind: &str, namespace: &str, name: &str) -> String {
    let d = Sha256::digest(format!("{kind}/{namespace}/{name}").as_bytes());
    let h = hex::encode(&d[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn common_labels(app: &str, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::APP.to_string(), app.to_string()),
        (labels::COMPONENT_NAME.to_string(), component.to_string()),
        (
            labels::MANAGED_BY.to_string(),
            labels::MANAGED_BY_VALUE.to_string(),
        ),
    ])
}

/// One Component per entry of `spec.components`, owned by the App.
pub fn components(app: &App) -> Vec<Component> {
    let app_name = app.name_any();
    app.spec
        .components
        .iter()
        .map(|c| Component {
            metadata: ObjectMeta {
                name: Some(component_name(&app_name, &c.name)),
                namespace: app.namespace(),
                labels: Some(common_labels(&app_name, &c.name)),
                owner_references: Some(vec![owner_reference(app)]),
                finalizers: Some(vec![crate::FINALIZER.to_string()]),
                ..ObjectMeta::default()
            },
            spec: ComponentSpec {
                app: app_name.clone(),
                component: c.name.clone(),
                middleware: c.spec.clone(),
            },
            status: None,
        })
        .collect()
}

/// One Group per shard, owned by the Component. Each Group carries the whole
/// middleware spec; `shards` stays as the Component's for the plugin's view.
pub fn groups(component: &Component) -> Vec<Group> {
    let spec = &component.spec;
    let cname = component.name_any();
    (0..spec.middleware.shards.max(1))
        .map(|shard| {
            let mut labels = common_labels(&spec.app, &spec.component);
            labels.insert(labels::SHARD.to_string(), shard.to_string());
            Group {
                metadata: ObjectMeta {
                    name: Some(group_name(&cname, shard)),
                    namespace: component.namespace(),
                    labels: Some(labels),
                    owner_references: Some(vec![owner_reference(component)]),
                    finalizers: Some(vec![crate::FINALIZER.to_string()]),
                    ..ObjectMeta::default()
                },
                spec: GroupSpec {
                    app: spec.app.clone(),
                    component: spec.component.clone(),
                    shard,
                    middleware: spec.middleware.clone(),
                    // A pause is set on the Group by whoever pauses it.
                    paused: false,
                },
                status: None,
            }
        })
        .collect()
}

/// How many instances a middleware spec asks for, over all its shards.
pub fn instance_count(spec: &crate::MiddlewareSpec) -> i32 {
    spec.replicas * spec.shards.max(1)
}

/// Instance names of a Group, ordinal 0 first (the initial primary).
pub fn instances(group: &Group) -> Vec<String> {
    let name = group.name_any();
    (0..group.spec.middleware.replicas.max(0))
        .map(|i| instance_name(&name, i))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{AppSpec, ComponentTemplate, MiddlewareSpec};

    fn app() -> App {
        let mut app = App::new(
            "cache",
            AppSpec {
                components: vec![ComponentTemplate {
                    name: "sessions".into(),
                    spec: MiddlewareSpec {
                        plugin: "redis".into(),
                        replicas: 3,
                        shards: 2,
                        ..MiddlewareSpec::default()
                    },
                }],
            },
        );
        app.metadata.namespace = Some("shop".into());
        app
    }

    #[test]
    fn expands_app_to_components_groups_and_instances() {
        let app = app();
        let comps = components(&app);
        assert_eq!(comps.len(), 1);
        let c = &comps[0];
        assert_eq!(c.name_any(), "cache-sessions");
        assert_eq!(c.namespace().as_deref(), Some("shop"));
        let owner = &c.owner_references()[0];
        assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("App", "cache"));
        assert_eq!(owner.controller, Some(true));

        let gs = groups(c);
        let names: Vec<_> = gs.iter().map(kube::ResourceExt::name_any).collect();
        assert_eq!(names, ["cache-sessions-0", "cache-sessions-1"]);
        assert_eq!(gs[1].spec.shard, 1);
        assert_eq!(
            gs[1].labels().get(labels::SHARD).map(String::as_str),
            Some("1")
        );
        assert_eq!(gs[0].owner_references()[0].kind, "Component");
        assert_eq!(
            instances(&gs[0]),
            [
                "cache-sessions-0-0",
                "cache-sessions-0-1",
                "cache-sessions-0-2"
            ]
        );
    }

    #[test]
    fn offline_uid_is_stable_and_distinct() {
        let a = offline_uid("App", "ns", "a");
        assert_eq!(a, offline_uid("App", "ns", "a"));
        assert_ne!(a, offline_uid("App", "ns", "b"));
        assert_eq!(a.len(), 36);
    }

    #[test]
    fn real_uid_wins_over_the_offline_one() {
        let mut app = app();
        app.metadata.uid = Some("1234".into());
        assert_eq!(owner_reference(&app).uid, "1234");
    }
}
