//! Step 1, render: the Group through its plugin (pure), remembered by its
//! inputs so the many reconciles a rollout triggers do not render again, and
//! what the Group owns now, from the watch caches.

use crate::Context;
use crate::live::LiveObjects;
use crate::memo::{self, RenderSummary};
use kube::ResourceExt;
use midplane_api::Group;
use midplane_operator::ReconcileError;
use midplane_plugin::Plugin;
use midplane_render::GroupRender;
use std::sync::Arc;

/// What the render step hands on.
pub struct Rendered {
    pub plugin: Arc<Plugin>,
    pub summary: Arc<RenderSummary>,
    /// The objects, when this pass has something to apply: new input, or
    /// something live differs from the last render (a rollout step, an object
    /// deleted or edited by hand).
    pub objects: Option<GroupRender>,
    pub live: LiveObjects,
    /// Applies trusted over caches that have not shown them yet.
    pub expecting: bool,
}

pub enum Render {
    Done(Box<Rendered>),
    /// The plugin is missing or its templates fail for this Group.
    Failed {
        reason: &'static str,
        message: String,
    },
}

pub async fn render(group: &Group, ctx: &Context) -> Result<Render, ReconcileError> {
    let plugin_name = &group.spec.middleware.plugin;
    let Some(plugin) = ctx.plugins.get(plugin_name) else {
        return Ok(Render::Failed {
            reason: "UnknownPlugin",
            message: format!("plugin {plugin_name:?} is not registered"),
        });
    };
    let uid = group.uid().unwrap_or_default();
    let key = memo::key(group, &plugin);
    let mut objects = None;
    let mut summary = match ctx.renders.get(&uid, &key) {
        Some(s) => s,
        None => match render_now(group, &plugin) {
            Ok((r, s)) => {
                ctx.renders.put(&uid, key, s.clone());
                objects = Some(r);
                s
            }
            Err(e) => return Ok(failed(&e)),
        },
    };
    let mut live = LiveObjects::fetch(group, &summary.kinds(), &ctx.owned, &ctx.client).await?;
    let expecting = expect(group, &summary, &mut live, ctx);
    if objects.is_none() && !summary.in_sync(&live) {
        match render_now(group, &plugin) {
            Ok((r, s)) => {
                summary = s;
                objects = Some(r);
            }
            Err(e) => return Ok(failed(&e)),
        }
    }
    Ok(Render::Done(Box::new(Rendered {
        plugin,
        summary,
        objects,
        live,
        expecting,
    })))
}

/// Objects this controller applied moments ago that the caches do not show
/// yet count as live with what was applied, so a reconcile woken meanwhile
/// (by the Group's own status write, say) does not render and apply them all
/// again (client-go's expectations). Returns whether any was counted.
fn expect(group: &Group, summary: &RenderSummary, live: &mut LiveObjects, ctx: &Context) -> bool {
    let ns = group.namespace().unwrap_or_default();
    let mut expecting = false;
    for o in &summary.objects {
        let kind = &o.resource.kind;
        if live.applied_hash(kind, &o.name) == Some(o.applied_hash.as_str()) {
            continue;
        }
        let version = &o.resource.api_version;
        if ctx
            .applier
            .expecting(version, kind, &ns, &o.name, &o.applied_hash)
        {
            live.expect(kind, &o.name, &o.applied_hash);
            expecting = true;
        }
    }
    expecting
}

fn render_now(
    group: &Group,
    plugin: &Plugin,
) -> Result<(GroupRender, Arc<RenderSummary>), midplane_render::RenderError> {
    let mut r = midplane_render::render_group(group, plugin)?;
    let summary = Arc::new(RenderSummary::of(&mut r));
    Ok((r, summary))
}

fn failed(e: &midplane_render::RenderError) -> Render {
    Render::Failed {
        reason: e.reason(),
        message: e.to_string(),
    }
}
