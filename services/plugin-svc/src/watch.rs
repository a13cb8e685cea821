//! The plugin watcher (docs/design.md, "Plugins"): a changed plugin
//! ConfigMap is validated first; a good one serves at once and
//! `midplane.plugin.updated` goes on the bus for app-svc and group-svc; a
//! broken one is refused with the one Warning Event and
//! `midplane.plugin.rejected`, and the last good version keeps serving.
//! plugin-svc is the only process that validates and reports plugins.

use midplane_bus::EventSink;
use midplane_bus::catalogue::{ObjectRef, PluginRejected, PluginUpdated};
use midplane_operator::EventRecorder;
use midplane_operator::plugins::{PluginStore, Update, sources};
use midplane_plugin::PluginError;

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
                    (Some(file_in_plugin(template).to_string()), line_of(message))
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

/// A template's path inside its plugin: `templates/x.yaml` of the engine's
/// `redis/templates/x.yaml`, as the catalogue documents `template`.
fn file_in_plugin(template: &str) -> &str {
    template.split_once('/').map_or(template, |(_, rest)| rest)
}

/// The line of Go's `template: NAME:LINE:...` message.
fn line_of(message: &str) -> Option<u32> {
    let rest = message.strip_prefix("template: ")?;
    rest.split(':').nth(1)?.trim().parse().ok()
}

/// Watches the plugin ConfigMaps of `namespace`, validates and reports every
/// change (a Warning Event for a refused one) and publishes it on `bus`.
pub async fn run(
    client: kube::Client,
    namespace: String,
    store: PluginStore,
    events: EventRecorder,
    bus: EventSink,
) {
    let mut last_hash: std::collections::BTreeMap<String, String> = store
        .registry()
        .iter()
        .map(|p| (p.metadata.name.clone(), p.content_hash.clone()))
        .collect();
    let ns = namespace.clone();
    sources::watch_config_maps(client, &namespace, store, Some(events), move |update| {
        let previous = match update {
            Update::Accepted(p) => {
                last_hash.insert(p.metadata.name.clone(), p.content_hash.clone())
            }
            _ => None,
        };
        match outgoing(update, &ns, previous) {
            Some(Outgoing::Updated(e)) => bus.publish(&e),
            Some(Outgoing::Rejected(e)) => bus.publish(&e),
            None => {}
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_template_is_named_inside_its_plugin() {
        assert_eq!(
            super::file_in_plugin("redis/templates/svc.yaml"),
            "templates/svc.yaml"
        );
        assert_eq!(super::file_in_plugin("values.yaml"), "values.yaml");
    }

    #[test]
    fn line_of_go_template_errors() {
        assert_eq!(
            super::line_of("template: redis/templates/svc.yaml:12: function \"x\" not defined"),
            Some(12)
        );
        assert_eq!(super::line_of("plugin.yaml: bad"), None);
    }
}
