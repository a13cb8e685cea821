use crate::{app_controller, component_controller};
use midplane_api::{Component, Group, labels};
use midplane_operator::cache::LabelIndex;
use midplane_operator::plugins::PluginStore;
use midplane_operator::status::StatusWriter;
use midplane_operator::{Applier, Backoff, EventRecorder};
use std::sync::Arc;

/// The key Groups are indexed under: the App and Component they belong to.
pub fn group_key(app: &str, component: &str) -> String {
    format!("{app}/{component}")
}

/// What every reconcile of app-svc gets.
#[derive(Clone)]
pub struct Context {
    pub client: kube::Client,
    /// The App controller's writes (field manager `midplane/app`).
    pub app_applier: Applier,
    /// The Component controller's writes (field manager `midplane/component`).
    pub component_applier: Applier,
    pub app_status: StatusWriter,
    pub component_status: StatusWriter,
    pub events: EventRecorder,
    pub plugins: PluginStore,
    pub backoff: Arc<Backoff>,
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
        let app_applier = Applier::new(client.clone(), app_controller::FIELD_MANAGER);
        let component_applier = Applier::new(client.clone(), component_controller::FIELD_MANAGER);
        Self {
            app_status: StatusWriter::new(app_applier.clone()),
            component_status: StatusWriter::new(component_applier.clone()),
            app_applier,
            component_applier,
            events: EventRecorder::new(client.clone(), "midplane-app-svc"),
            client,
            plugins,
            backoff: Arc::new(Backoff::default()),
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

    /// Whether every watch cache the reconciles read has listed once.
    pub fn caches_synced(&self) -> bool {
        self.components.is_ready() && self.groups.is_ready()
    }
}
