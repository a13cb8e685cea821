use midplane_operator::plugin_store::PluginStore;
use midplane_operator::{Applier, Backoff, EventRecorder};
use std::sync::Arc;

#[derive(Clone)]
pub struct Context {
    pub client: kube::Client,
    pub applier: Applier,
    pub events: EventRecorder,
    pub plugins: PluginStore,
    pub backoff: Arc<Backoff>,
    /// Planned switchovers during rollouts; None rolls the primary in place.
    pub gateway: Option<crate::gateway::Gateway>,
    /// Watch plugin ConfigMaps directly (the fallback when no bus carries
    /// `midplane.plugin.updated`, e.g. `midplane dev`).
    pub watch_plugin_configmaps: bool,
    /// What the Group owns, from the controller's watches (filled by `run`).
    pub owned: Arc<crate::owned::OwnedCaches>,
    /// The last render of each Group, so unchanged input is not rendered again.
    pub renders: Arc<crate::memo::RenderMemo>,
    /// Applies the watch caches have not shown yet.
    pub expected: Arc<crate::expect::Expectations>,
    /// Group events on the bus (disabled without a bus).
    pub bus: midplane_bus::EventSink,
    /// Rollouts in progress, for their started/completed events.
    pub rollouts: Arc<crate::announce::Rollouts>,
}

impl Context {
    pub fn new(client: kube::Client, plugins: PluginStore) -> Self {
        Self {
            applier: Applier::new(client.clone()),
            events: EventRecorder::new(client.clone(), "midplane-group-svc"),
            client,
            plugins,
            backoff: Arc::new(Backoff::default()),
            gateway: None,
            watch_plugin_configmaps: true,
            owned: Arc::default(),
            renders: Arc::default(),
            expected: Arc::default(),
            bus: midplane_bus::EventSink::disabled(),
            rollouts: Arc::default(),
        }
    }

    pub fn with_bus(mut self, bus: midplane_bus::EventSink) -> Self {
        self.bus = bus;
        self
    }

    pub fn with_gateway(mut self, gateway: crate::gateway::Gateway) -> Self {
        self.gateway = Some(gateway);
        self
    }
}
