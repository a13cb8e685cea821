//! How a [`PluginStore`] learns about plugin ConfigMaps, and how a change
//! reaches the controllers. There is one route per deployment:
//!
//! - With a bus, plugin-svc is the only process that watches and validates
//!   plugin ConfigMaps (and records the one Warning Event for a broken
//!   plugin); it publishes `midplane.plugin.updated`, and app-svc and
//!   group-svc load the version it names with [`follow_bus`].
//! - Without a bus, each controller process keeps its store in step with one
//!   silent [`watch_config_maps`]; plugin-svc still records the Events.
//! - In one process (`midplane dev`, the test platform) one watch with Events
//!   feeds one store that every controller shares.
//!
//! Either way the store announces the change, and [`triggers`] turns it into
//! reconciles of exactly the objects that use the plugin, in-process.

use super::store::{PluginStore, Update};
use crate::EventRecorder;
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use midplane_bus::catalogue::PluginUpdated;
use midplane_bus::{BusConfig, HandlerError, Received, Subscriber, SubscriberConfig};
use tokio::sync::broadcast;

/// Keeps `store` in step with the plugin ConfigMaps of `namespace` until the
/// watch ends. `validator`: the recorder of the one process that reports a
/// refused plugin with a Warning Event on its ConfigMap (naming the template
/// and line); `None` loads silently. `on_update` sees every accepted or
/// refused change (plugin-svc publishes them).
pub async fn watch_config_maps(
    client: kube::Client,
    namespace: &str,
    store: PluginStore,
    validator: Option<EventRecorder>,
    mut on_update: impl FnMut(&Update) + Send,
) {
    let api: kube::Api<ConfigMap> = kube::Api::namespaced(client, namespace);
    let cfg = watcher::Config::default().labels(midplane_api::labels::PLUGIN);
    let mut stream = watcher(api, cfg).default_backoff().boxed();
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(watcher::Event::Apply(cm) | watcher::Event::InitApply(cm)) => {
                let update = store.apply_config_map(&cm);
                report(&update, &cm, validator.as_ref()).await;
                on_update(&update);
            }
            Ok(watcher::Event::Delete(cm)) => store.remove_config_map(&cm),
            Ok(watcher::Event::Init | watcher::Event::InitDone) => {}
            Err(e) => tracing::warn!(error = %e, "plugin ConfigMap watch failed; retrying"),
        }
    }
}

async fn report(update: &Update, cm: &ConfigMap, validator: Option<&EventRecorder>) {
    match update {
        Update::Accepted(p) => {
            tracing::info!(plugin = %p.id(), hash = %p.content_hash, "plugin updated");
        }
        Update::Rejected { plugin, error, .. } => {
            tracing::warn!(%plugin, %error, "plugin update refused; last good version keeps serving");
            if let Some(events) = validator {
                let note = format!("refused, last good version kept: {error}");
                events.warning(cm, error.reason(), "LoadPlugin", note).await;
            }
        }
        Update::Unchanged => {}
    }
}

/// The bus route: loads each version `midplane.plugin.updated` announces
/// into `store` (one GET of the ConfigMap it names). plugin-svc validated it;
/// should it still not load here, the last good version stays and the event
/// is done with (a retry would not load it either).
pub async fn follow_bus(
    bus: &BusConfig,
    subscriber: &str,
    client: kube::Client,
    store: PluginStore,
) -> midplane_bus::Result<Subscriber> {
    Subscriber::start(
        bus,
        SubscriberConfig::new(subscriber, &["midplane.plugin.updated"]),
        move |r: Received| {
            let (client, store) = (client.clone(), store.clone());
            async move { load_updated(r, client, &store).await }
        },
    )
    .await
}

/// Handles one `midplane.plugin.updated`; idempotent (a redelivery loads the
/// same content, which is no change).
pub async fn load_updated(
    r: Received,
    client: kube::Client,
    store: &PluginStore,
) -> Result<(), HandlerError> {
    let updated: PluginUpdated = r.event.decode().map_err(HandlerError::new)?;
    let cms: kube::Api<ConfigMap> = kube::Api::namespaced(client, &updated.config_map.namespace);
    let cm = cms.get(&updated.config_map.name).await.map_err(|e| {
        HandlerError::new(format!("plugin ConfigMap {}: {e}", updated.config_map.name))
    })?;
    if let Update::Rejected { error, .. } = store.apply_config_map(&cm) {
        tracing::warn!(plugin = %updated.plugin, %error, "updated plugin does not load here; keeping the last good version");
    }
    Ok(())
}

/// Reconcile requests for every object in `objects` that `uses` a changed
/// plugin, for a controller's `reconcile_on`. A receiver that lagged behind
/// the store's announcements asks for every object.
pub fn triggers<K>(
    store: &PluginStore,
    objects: Store<K>,
    uses: fn(&K, &str) -> bool,
) -> impl Stream<Item = ObjectRef<K>> + Send + use<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    let changes = store.changes();
    futures::stream::unfold(changes, |mut rx| async move {
        let changed = match rx.recv().await {
            Ok(name) => Some(name),
            Err(broadcast::error::RecvError::Lagged(_)) => None,
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((changed, rx))
    })
    .flat_map(move |changed| {
        let refs: Vec<ObjectRef<K>> = objects
            .state()
            .iter()
            .filter(|o| changed.as_deref().is_none_or(|name| uses(o, name)))
            .map(|o| ObjectRef::from_obj(o.as_ref()))
            .collect();
        if !refs.is_empty() {
            tracing::info!(plugin = ?changed, objects = refs.len(), "plugin changed; reconciling what uses it");
        }
        futures::stream::iter(refs)
    })
}

/// The plugin route of a controller service (app-svc, group-svc): the
/// versions plugin-svc validated and announced on the bus, or, without a
/// bus, the ConfigMaps themselves, silently (plugin-svc reports refused
/// plugins). Returns the bus subscriber, to drain at shutdown.
pub async fn route(
    bus: Option<&BusConfig>,
    subscriber: &str,
    client: kube::Client,
    namespace: String,
    store: PluginStore,
    shutdown: midplane_runtime::Shutdown,
) -> midplane_bus::Result<Option<Subscriber>> {
    if let Some(bus) = bus {
        return Ok(Some(follow_bus(bus, subscriber, client, store).await?));
    }
    tokio::spawn(async move {
        tokio::select! {
            _ = watch_config_maps(client, &namespace, store, None, |_| {}) => {}
            _ = shutdown.wait() => {}
        }
    });
    Ok(None)
}
