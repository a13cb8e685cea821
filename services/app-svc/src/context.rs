use midplane_api::{Component, Group, labels};
use midplane_operator::cache::LabelIndex;
use midplane_operator::plugin_store::PluginStore;
use std::sync::Arc;

/// The key Groups are indexed under: the App and Component they belong to.
pub fn group_key(app: &str, component: &str) -> String {
    format!("{app}/{component}")
}
use midplane_operator::{Applier, Backoff, EventRecorder};

/// What every reconcile of app-svc gets.
#[derive(Clone)]
pub struct Context {
    pub client: kube::Client,
    pub applier: Applier,
    pub events: EventRecorder,
    pub plugins: PluginStore,
    pub backoff: std::sync::Arc<Backoff>,
    /// Components by App, from the App controller's watch (filled by `run`).
    pub components: Arc<LabelIndex<Component>>,
    /// Groups by App and Component, from the Component controller's watch.
    pub groups: Arc<LabelIndex<Group>>,
    /// App and Component events on the bus (disabled without a bus).
    pub bus: midplane_bus::EventSink,
}

impl Context {
    pub fn with_bus(mut self, bus: midplane_bus::EventSink) -> Self {
        self.bus = bus;
        self
    }

    pub fn new(client: kube::Client, plugins: PluginStore) -> Self {
        Self {
            applier: Applier::new(client.clone()),
            events: EventRecorder::new(client.clone(), "midplane-app-svc"),
            client,
            plugins,
            backoff: std::sync::Arc::new(Backoff::default()),
            components: LabelIndex::new(|l| l.get(labels::APP).cloned()),
            bus: midplane_bus::EventSink::disabled(),
            // The Component reads a Group's spec and conditions, not its instances.
            groups: LabelIndex::storing(
                |l| {
                    Some(group_key(
                        l.get(labels::APP)?,
                        l.get(labels::COMPONENT_NAME)?,
                    ))
                },
                |g: &mut Group| {
                    if let Some(s) = g.status.as_mut() {
                        s.instances.clear();
                    }
                },
            ),
        }
    }
}
