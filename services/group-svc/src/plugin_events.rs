//! The bus side of the plugin hot update (seed §3.2): `midplane.plugin.updated`
//! from plugin-svc → load that version → mark every Group using the plugin
//! for re-render. The Group controller then rolls only what changed.

use crate::Context;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};
use midplane_api::Group;
use midplane_bus::catalogue::PluginUpdated;
use midplane_bus::{BusConfig, HandlerError, Received, Subscriber, SubscriberConfig};
use midplane_operator::plugin_store::Update;
use std::sync::Arc;

/// The annotation that asks the controller for a re-render; its value is the
/// plugin hash that caused it.
pub const RERENDER_ANNOTATION: &str = "midplane.dev/plugin-update";

pub async fn subscribe(
    bus: &BusConfig,
    name: &str,
    ctx: Arc<Context>,
) -> midplane_bus::Result<Subscriber> {
    Subscriber::start(
        bus,
        SubscriberConfig::new(name, &["midplane.plugin.updated"]),
        move |r: Received| {
            let ctx = ctx.clone();
            async move { handle(r, &ctx).await }
        },
    )
    .await
}

/// Idempotent: a redelivered event loads the same version and writes the same annotation.
pub async fn handle(r: Received, ctx: &Context) -> Result<(), HandlerError> {
    let updated: PluginUpdated = r.event.decode().map_err(HandlerError::new)?;
    let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &updated.config_map.namespace);
    let cm = cms.get(&updated.config_map.name).await.map_err(|e| {
        HandlerError::new(format!("plugin ConfigMap {}: {e}", updated.config_map.name))
    })?;
    match ctx.plugins.apply_config_map(&cm) {
        Update::Accepted(_) | Update::Unchanged => {}
        // plugin-svc validated it; if we cannot load it, the last good version stays.
        Update::Rejected { error, .. } => {
            tracing::warn!(plugin = %updated.plugin, %error, "updated plugin does not load here; keeping the last good version");
            return Ok(());
        }
    }
    let groups: Api<Group> = Api::all(ctx.client.clone());
    let affected: Vec<Group> = groups
        .list(&ListParams::default())
        .await
        .map_err(HandlerError::new)?
        .items
        .into_iter()
        .filter(|g| g.spec.middleware.plugin == updated.plugin)
        .collect();
    tracing::info!(plugin = %updated.plugin, hash = %updated.plugin_hash, groups = affected.len(), "plugin updated; re-rendering its Groups");
    for g in affected {
        let body = serde_json::json!({"metadata": {"annotations": {RERENDER_ANNOTATION: updated.plugin_hash}}});
        let api: Api<Group> =
            Api::namespaced(ctx.client.clone(), &g.namespace().unwrap_or_default());
        match api
            .patch(&g.name_any(), &PatchParams::default(), &Patch::Merge(&body))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(HandlerError::new(format!("group {}: {e}", g.name_any()))),
        }
    }
    Ok(())
}
