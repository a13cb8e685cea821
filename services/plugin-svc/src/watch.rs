//! The plugin watcher (seed §3.2): a changed plugin ConfigMap is validated
//! first; a good one serves at once and `midplane.plugin.updated` goes on the
//! bus for group-svc to re-render; a broken one is refused with an Event and
//! `midplane.plugin.rejected`, and the last good version keeps serving.

use midplane_bus::Publisher;
use midplane_bus::catalogue::{ObjectRef, PluginRejected, PluginUpdated};
use midplane_operator::EventRecorder;
use midplane_operator::plugin_store::{self, PluginStore, Update};
use midplane_plugin::PluginError;
use tokio::sync::mpsc;

/// The bus event for a store update, if it deserves one.
pub enum Outgoing {
    Updated(PluginUpdated),
    Rejected(PluginRejected),
}

pub fn outgoing(update: &Update, namespace: &str, previous: Option<String>) -> Option<Outgoing> {
    match update {
        Update::Accepted(p) => Some(Outgoing::Updated(PluginUpdated {
            plugin: p.metadata.name.clone(),
            plugin_version: p.metadata.version.clone(),
            plugin_hash: format!("sha256:{}", p.content_hash),
            previous_plugin_hash: previous.map(|h| format!("sha256:{h}")),
            config_map: ObjectRef::new(
                namespace,
                &midplane_plugin::configmap::configmap_name(&p.metadata.name),
            ),
        })),
        Update::Rejected {
            plugin,
            error,
            version,
            content_hash,
            serving_hash,
        } => {
            let (template, line) = match error {
                PluginError::Template { template, message } => {
                    (Some(template.clone()), line_of(message))
                }
                _ => (None, None),
            };
            Some(Outgoing::Rejected(PluginRejected {
                plugin: plugin.clone(),
                plugin_version: version.clone().unwrap_or_default(),
                plugin_hash: format!("sha256:{content_hash}"),
                config_map: ObjectRef::new(
                    namespace,
                    &midplane_plugin::configmap::configmap_name(plugin),
                ),
                template,
                line,
                message: error.to_string(),
                serving_plugin_hash: serving_hash.clone().map(|h| format!("sha256:{h}")),
            }))
        }
        Update::Unchanged => None,
    }
}

/// The line of Go's `template: NAME:LINE:...` message.
fn line_of(message: &str) -> Option<u32> {
    let rest = message.strip_prefix("template: ")?;
    rest.split(':').nth(1)?.trim().parse().ok()
}

/// Watches the plugin ConfigMaps of `namespace` and publishes every change.
pub async fn run(
    client: kube::Client,
    namespace: String,
    store: PluginStore,
    events: EventRecorder,
    publisher: Option<Publisher>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Outgoing>();
    let sender = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            let Some(publisher) = &publisher else {
                continue;
            };
            let result = match &out {
                Outgoing::Updated(e) => publisher.publish(e).await,
                Outgoing::Rejected(e) => publisher.publish(e).await,
            };
            // The publisher retries until the broker confirms; an error here
            // means it gave up, which must be loud.
            if let Err(e) = result {
                tracing::error!(error = %e, "could not publish a plugin event");
            }
        }
    });
    let ns = namespace.clone();
    let previous = store.clone();
    let mut last_hash: std::collections::BTreeMap<String, String> = previous
        .registry()
        .iter()
        .map(|p| (p.metadata.name.clone(), p.content_hash.clone()))
        .collect();
    plugin_store::watch(client, &namespace, store, events, move |update| {
        let name = match update {
            Update::Accepted(p) => Some(p.metadata.name.clone()),
            _ => None,
        };
        let prev = name.as_ref().and_then(|n| last_hash.get(n).cloned());
        if let Some(out) = outgoing(update, &ns, prev) {
            let _ = tx.send(out);
        }
        if let (Some(n), Update::Accepted(p)) = (name, update) {
            last_hash.insert(n, p.content_hash.clone());
        }
    })
    .await;
    sender.abort();
}

#[cfg(test)]
mod tests {
    #[test]
    fn line_of_go_template_errors() {
        assert_eq!(
            super::line_of("template: redis/templates/svc.yaml:12: function \"x\" not defined"),
            Some(12)
        );
        assert_eq!(super::line_of("plugin.yaml: bad"), None);
    }
}
