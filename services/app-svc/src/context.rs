use midplane_operator::plugin_store::PluginStore;
use midplane_operator::{Applier, Backoff, EventRecorder};

/// What every reconcile of app-svc gets.
#[derive(Clone)]
pub struct Context {
    pub client: kube::Client,
    pub applier: Applier,
    pub events: EventRecorder,
    pub plugins: PluginStore,
    pub backoff: std::sync::Arc<Backoff>,
}

impl Context {
    pub fn new(client: kube::Client, plugins: PluginStore) -> Self {
        Self {
            applier: Applier::new(client.clone()),
            events: EventRecorder::new(client.clone(), "midplane-app-svc"),
            client,
            plugins,
            backoff: std::sync::Arc::new(Backoff::default()),
        }
    }
}
