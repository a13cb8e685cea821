use kube::runtime::reflector::ObjectRef;
use midplane_api::Group;
use midplane_operator::plugins::PluginStore;
use midplane_operator::status::StatusWriter;
use midplane_operator::{Applier, Backoff, EventRecorder};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// The controller's name in metrics, Events and back-off keys.
pub const CONTROLLER: &str = "group";
/// The field manager of every write the Group controller makes.
pub const FIELD_MANAGER: &str = "midplane/group";

#[derive(Clone)]
pub struct Context {
    pub client: kube::Client,
    pub applier: Applier,
    /// The hold's writes (`hold::HOLD_FIELD_MANAGER`: only workload replicas).
    pub hold: Applier,
    /// Status writes: transitions at once, detail folded (see `midplane_operator::status`).
    pub status: StatusWriter,
    pub events: EventRecorder,
    pub plugins: PluginStore,
    pub backoff: Arc<Backoff>,
    /// Planned switchovers during rollouts; None rolls the primary in place.
    pub gateway: Option<crate::gateway::Gateway>,
    /// What the Group owns, from the controller's watches (filled by `run`).
    pub owned: Arc<crate::owned::OwnedCaches>,
    /// The last render of each Group, so unchanged input is not rendered again.
    pub renders: Arc<crate::memo::RenderMemo>,
    /// Group events on the bus (disabled without a bus).
    pub bus: midplane_bus::EventSink,
    /// Rollouts in progress, for their started/completed events.
    pub rollouts: Arc<crate::announce::Rollouts>,
    /// Asks the running controller to reconcile one Group now.
    pub wake: Wake,
    /// What the agents report per Group, and failovers (with a gateway).
    pub observers: Arc<crate::observe::Observers>,
}

impl Context {
    pub fn new(client: kube::Client, plugins: PluginStore) -> Self {
        let applier = Applier::new(client.clone(), FIELD_MANAGER);
        Self {
            status: StatusWriter::new(applier.clone()),
            hold: Applier::new(client.clone(), crate::hold::HOLD_FIELD_MANAGER),
            applier,
            events: EventRecorder::new(client.clone(), "midplane-group-svc"),
            client,
            plugins,
            backoff: Arc::new(Backoff::default()),
            gateway: None,
            owned: Arc::default(),
            renders: Arc::default(),
            bus: midplane_bus::EventSink::disabled(),
            rollouts: Arc::default(),
            wake: Wake::default(),
            observers: Arc::default(),
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

/// An in-process trigger for the Group controller (kube-runtime's
/// `reconcile_on`): the gRPC API asks for a re-render without writing to
/// the Group to wake its own controller.
#[derive(Clone)]
pub struct Wake {
    tx: mpsc::UnboundedSender<ObjectRef<Group>>,
    rx: Arc<Mutex<Option<mpsc::UnboundedReceiver<ObjectRef<Group>>>>>,
}

impl Default for Wake {
    fn default() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            tx,
            rx: Arc::new(Mutex::new(Some(rx))),
        }
    }
}

impl Wake {
    /// Reconcile `namespace/name` soon. Returns false when no controller runs.
    pub fn group(&self, namespace: &str, name: &str) -> bool {
        self.tx.send(ObjectRef::new(name).within(namespace)).is_ok()
    }

    /// The requests, for the one controller that runs (None after the first call).
    pub fn take(&self) -> Option<mpsc::UnboundedReceiver<ObjectRef<Group>>> {
        self.rx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}
