//! App ⇄ protobuf. The proto is a stable API of its own, so conversions are
//! explicit rather than a JSON pass-through.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};
use kube::{Resource, ResourceExt};
use midplane_api::validate::ValidationErrors;
use midplane_api::{
    App, AppSpec, BackupPolicy, ComponentTemplate, MiddlewareSpec, Resources, Retention,
    ServiceSpec, Storage,
};
use midplane_proto::app as pb;
use midplane_proto::common as cpb;
use std::collections::BTreeMap;

fn ts(t: &k8s_openapi::jiff::Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.as_second(),
        nanos: t.subsec_nanosecond(),
    }
}

fn condition(c: &Condition) -> cpb::Condition {
    cpb::Condition {
        r#type: c.type_.clone(),
        status: c.status.clone(),
        reason: c.reason.clone(),
        message: c.message.clone(),
        observed_generation: c.observed_generation.unwrap_or_default(),
        last_transition_time: Some(ts(&c.last_transition_time.0)),
    }
}

fn service_type(t: &str) -> i32 {
    use pb::ServiceType as T;
    (match t {
        "ClusterIP" => T::ClusterIp,
        "NodePort" => T::NodePort,
        "LoadBalancer" => T::LoadBalancer,
        "ExternalName" => T::ExternalName,
        _ => T::Unspecified,
    }) as i32
}

/// The CRD's service type for a proto enum value; `Err` for a value this
/// version does not know.
fn service_type_name(t: i32) -> Result<Option<String>, String> {
    use pb::ServiceType as T;
    Ok(
        match T::try_from(t).map_err(|_| {
            format!(
                "unknown service type {t}; expected SERVICE_TYPE_CLUSTER_IP, SERVICE_TYPE_NODE_PORT, SERVICE_TYPE_LOAD_BALANCER or SERVICE_TYPE_EXTERNAL_NAME"
            )
        })? {
            T::Unspecified => None,
            T::ClusterIp => Some("ClusterIP".into()),
            T::NodePort => Some("NodePort".into()),
            T::LoadBalancer => Some("LoadBalancer".into()),
            T::ExternalName => Some("ExternalName".into()),
        },
    )
}

pub fn app_to_proto(app: &App) -> pb::App {
    let status = app.status.clone().unwrap_or_default();
    pb::App {
        namespace: app.namespace().unwrap_or_default(),
        name: app.name_any(),
        labels: app.labels().clone().into_iter().collect(),
        spec: Some(pb::AppSpec {
            components: app.spec.components.iter().map(component_to_proto).collect(),
        }),
        status: Some(pb::AppStatus {
            conditions: status.conditions.iter().map(condition).collect(),
            observed_generation: status.observed_generation.unwrap_or_default(),
            components: status
                .components
                .iter()
                .map(|c| pb::ComponentStatus {
                    name: c.name.clone(),
                    ready_replicas: c.ready_replicas,
                    replicas: c.replicas,
                    conditions: vec![],
                })
                .collect(),
        }),
        resource_version: app.resource_version().unwrap_or_default(),
        generation: app.meta().generation.unwrap_or_default(),
        created_at: app.meta().creation_timestamp.as_ref().map(|t| ts(&t.0)),
        deleting_since: app.meta().deletion_timestamp.as_ref().map(|t| ts(&t.0)),
    }
}

fn component_to_proto(c: &ComponentTemplate) -> pb::ComponentSpec {
    let s = &c.spec;
    let res = s.resources.clone().unwrap_or_default();
    pb::ComponentSpec {
        name: c.name.clone(),
        plugin: s.plugin.clone(),
        version: s.version.clone(),
        replicas: Some(s.replicas),
        shards: Some(s.shards),
        resources: s.resources.as_ref().map(|_| pb::Resources {
            cpu_request: res.requests.get("cpu").cloned().unwrap_or_default(),
            cpu_limit: res.limits.get("cpu").cloned().unwrap_or_default(),
            memory_request: res.requests.get("memory").cloned().unwrap_or_default(),
            memory_limit: res.limits.get("memory").cloned().unwrap_or_default(),
        }),
        storage: s.storage.as_ref().map(|st| pb::Storage {
            size: st.size.clone(),
            storage_class: st.storage_class_name.clone().unwrap_or_default(),
        }),
        service: s.service.as_ref().map(|sv| pb::ServiceSpec {
            r#type: service_type(sv.type_or_default()),
            external_name: sv.external_name.clone().unwrap_or_default(),
        }),
        parameters: s.parameters.clone().into_iter().collect(),
        backup: s.backup.as_ref().map(|b| pb::BackupPolicy {
            enabled: b.enabled,
            schedule: b.schedule.clone(),
            retention_count: b
                .retention
                .as_ref()
                .and_then(|r| r.count)
                .map(|c| c.max(0) as u32)
                .unwrap_or_default(),
            retention_age: b
                .retention
                .as_ref()
                .and_then(|r| r.max_age.clone())
                .unwrap_or_default(),
            encryption: b.encryption.clone().unwrap_or_default(),
            storage: b.storage.clone(),
            key_secret: b.key_secret.clone().unwrap_or_default(),
        }),
        restore_from: s.restore_from.as_ref().map(|r| pb::RestoreFrom {
            backup: r.backup.clone(),
            storage: r.storage.clone(),
            id: r.id.clone(),
            key_secret: r.key_secret.clone().unwrap_or_default(),
            credentials_secret: r.credentials_secret.clone().unwrap_or_default(),
        }),
    }
}

fn nonempty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// The App a request describes, and what cannot be carried over into it
/// (paths as in the custom resource). Invalid values (e.g. `replicas: 0`) are
/// carried over as they are, for the App's validation to report.
pub fn app_from_proto(p: pb::App) -> (App, ValidationErrors) {
    let mut errs = ValidationErrors::default();
    if p.namespace.is_empty() {
        errs.push("metadata.namespace", "is required");
    }
    let spec = p.spec.unwrap_or_default();
    let mut components = Vec::new();
    for (i, c) in spec.components.into_iter().enumerate() {
        let resources = c.resources.map(|r| {
            let mut requests = BTreeMap::new();
            let mut limits = BTreeMap::new();
            for (k, v) in [("cpu", r.cpu_request), ("memory", r.memory_request)] {
                if !v.is_empty() {
                    requests.insert(k.to_string(), v);
                }
            }
            for (k, v) in [("cpu", r.cpu_limit), ("memory", r.memory_limit)] {
                if !v.is_empty() {
                    limits.insert(k.to_string(), v);
                }
            }
            Resources { requests, limits }
        });
        let service = c.service.map(|s| ServiceSpec {
            type_: service_type_name(s.r#type).unwrap_or_else(|m| {
                errs.push(format!("spec.components[{i}].service.type"), m);
                None
            }),
            external_name: nonempty(s.external_name),
            annotations: BTreeMap::new(),
        });
        components.push(ComponentTemplate {
            name: c.name,
            spec: MiddlewareSpec {
                plugin: c.plugin,
                version: c.version,
                // Unset is the CRD's default; a value set is kept, 0 included.
                replicas: c.replicas.unwrap_or(1),
                shards: c.shards.unwrap_or(1),
                resources,
                storage: c.storage.map(|s| Storage {
                    size: s.size,
                    storage_class_name: nonempty(s.storage_class),
                }),
                service,
                parameters: c.parameters.into_iter().collect(),
                restore_from: c.restore_from.map(|r| midplane_api::RestoreFrom {
                    backup: r.backup,
                    storage: r.storage,
                    id: r.id,
                    key_secret: nonempty(r.key_secret),
                    credentials_secret: nonempty(r.credentials_secret),
                }),
                backup: c.backup.map(|b| BackupPolicy {
                    enabled: b.enabled,
                    schedule: b.schedule,
                    retention: (b.retention_count > 0 || !b.retention_age.is_empty()).then(|| {
                        Retention {
                            count: (b.retention_count > 0)
                                .then(|| i32::try_from(b.retention_count).unwrap_or(i32::MAX)),
                            max_age: nonempty(b.retention_age),
                        }
                    }),
                    encryption: nonempty(b.encryption),
                    storage: b.storage,
                    key_secret: nonempty(b.key_secret),
                }),
            },
        });
    }
    let app = App {
        metadata: ObjectMeta {
            name: Some(p.name),
            namespace: Some(p.namespace),
            labels: (!p.labels.is_empty()).then(|| p.labels.into_iter().collect()),
            ..ObjectMeta::default()
        },
        spec: AppSpec { components },
        status: None,
    };
    (app, errs)
}
