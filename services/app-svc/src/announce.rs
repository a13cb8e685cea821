//! The App and Component events app-svc publishes on the bus (catalogue:
//! `midplane.app.*`, `midplane.component.*`), built from the objects alone.
//! Each fires on a transition the controllers already detect — a generation
//! accepted, Ready or Degraded turning true, the finalizer done — so a
//! subscriber sees each once per change, not once per reconcile.

use kube::Resource;
use midplane_api::{App, Component, expand};
use midplane_bus::catalogue::{
    AppApplied, AppDegraded, AppDeleted, AppReady, ComponentApplied, ComponentDegraded,
    ComponentDeleted, ComponentReady, ComponentSummary, ObjectRef,
};

fn object_ref(o: &impl Resource) -> ObjectRef {
    ObjectRef::new(
        o.meta().namespace.as_deref().unwrap_or_default(),
        o.meta().name.as_deref().unwrap_or_default(),
    )
}

fn count(n: i32) -> u32 {
    u32::try_from(n).unwrap_or_default()
}

pub fn app_applied(app: &App) -> AppApplied {
    AppApplied {
        app: object_ref(app),
        generation: app.meta().generation.unwrap_or_default(),
        components: app
            .spec
            .components
            .iter()
            .map(|c| ComponentSummary {
                name: c.name.clone(),
                plugin: c.spec.plugin.clone(),
                middleware_version: c.spec.version.clone(),
                replicas: count(c.spec.replicas),
                shards: count(c.spec.shards),
            })
            .collect(),
    }
}

pub fn app_ready(app: &App) -> AppReady {
    AppReady {
        app: object_ref(app),
        generation: app.meta().generation.unwrap_or_default(),
        components: app.spec.components.iter().map(|c| c.name.clone()).collect(),
    }
}

pub fn app_degraded(app: &App, reason: &str, message: &str, degraded: Vec<String>) -> AppDegraded {
    AppDegraded {
        app: object_ref(app),
        generation: app.meta().generation.unwrap_or_default(),
        reason: reason.to_string(),
        message: message.to_string(),
        degraded_components: degraded,
    }
}

pub fn app_deleted(app: &App) -> AppDeleted {
    AppDeleted {
        app: object_ref(app),
        components: app.spec.components.iter().map(|c| c.name.clone()).collect(),
    }
}

pub fn component_applied(comp: &Component) -> ComponentApplied {
    let m = &comp.spec.middleware;
    ComponentApplied {
        component: object_ref(comp),
        app: comp.spec.app.clone(),
        plugin: m.plugin.clone(),
        middleware_version: m.version.clone(),
        replicas: count(m.replicas),
        shards: count(m.shards),
        groups: expand::groups(comp)
            .iter()
            .map(kube::ResourceExt::name_any)
            .collect(),
    }
}

pub fn component_ready(comp: &Component, groups: Vec<String>) -> ComponentReady {
    ComponentReady {
        component: object_ref(comp),
        app: comp.spec.app.clone(),
        groups,
    }
}

pub fn component_degraded(
    comp: &Component,
    reason: &str,
    message: &str,
    degraded: Vec<String>,
) -> ComponentDegraded {
    ComponentDegraded {
        component: object_ref(comp),
        app: comp.spec.app.clone(),
        reason: reason.to_string(),
        message: message.to_string(),
        degraded_groups: degraded,
    }
}

pub fn component_deleted(comp: &Component) -> ComponentDeleted {
    ComponentDeleted {
        component: object_ref(comp),
        app: comp.spec.app.clone(),
    }
}
