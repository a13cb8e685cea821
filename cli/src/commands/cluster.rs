//! `midplane apply`, `get`, `delete`: Apps on a cluster (or the emulator of
//! `midplane dev`) through the Kubernetes API.

use anyhow::{Context, bail};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use midplane_api::{App, Component, Group};
use std::path::{Path, PathBuf};

pub const FIELD_MANAGER: &str = "midplane-cli";

/// `--kubeconfig`, else `$KUBECONFIG`, else `.midplane/kubeconfig` when
/// `midplane dev` wrote one, else the usual inference.
pub fn kubeconfig_path(explicit: Option<&Path>) -> Option<PathBuf> {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("KUBECONFIG").map(PathBuf::from))
        .or_else(|| {
            let dev = PathBuf::from(".midplane/kubeconfig");
            dev.exists().then_some(dev)
        })
}

pub async fn client(kubeconfig: Option<&Path>) -> anyhow::Result<Client> {
    let path = kubeconfig_path(kubeconfig);
    midplane_operator::kube_client(path.as_deref())
        .await
        .context("connecting to Kubernetes (start one with `midplane dev`, or pass --kubeconfig)")
}

fn namespace_of(app: &App, default_ns: &str) -> String {
    app.namespace().unwrap_or_else(|| default_ns.to_string())
}

/// `midplane apply -f FILE`: an App, or a Backup or Restore resource (by its `kind`).
pub async fn apply(file: &Path, kubeconfig: Option<&Path>) -> anyhow::Result<()> {
    let text = super::read_input(file)?;
    let kind = serde_yaml::from_str::<serde_yaml::Value>(&text)
        .ok()
        .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_string));
    match kind.as_deref() {
        Some("Backup") => apply_resource::<midplane_api::Backup>(file, &text, kubeconfig).await,
        Some("Restore") => apply_resource::<midplane_api::Restore>(file, &text, kubeconfig).await,
        _ => apply_app(file, kubeconfig).await,
    }
}

/// A Backup or Restore as written (its controller checks the rest and says so in its
/// status).
async fn apply_resource<K>(file: &Path, text: &str, kubeconfig: Option<&Path>) -> anyhow::Result<()>
where
    K: kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + serde::de::DeserializeOwned
        + serde::Serialize
        + Clone
        + std::fmt::Debug,
{
    let mut obj: K = serde_yaml::from_str(text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(":{}:{}", l.line(), l.column()))
            .unwrap_or_default();
        anyhow::anyhow!("{}{at}: {e}", file.display())
    })?;
    let name = obj
        .meta()
        .name
        .clone()
        .with_context(|| format!("{}: metadata.name: is required", file.display()))?;
    let ns = obj
        .meta()
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    obj.meta_mut().namespace = Some(ns.clone());
    let mut body = serde_json::to_value(&obj)?;
    if let Some(m) = body.as_object_mut() {
        m.remove("status");
    }
    let api: Api<K> = Api::namespaced(client(kubeconfig).await?, &ns);
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .with_context(|| format!("applying {} {ns}/{name}", K::kind(&())))?;
    println!("{}.{}/{name} applied", K::plural(&()), K::group(&()));
    Ok(())
}

async fn apply_app(file: &Path, kubeconfig: Option<&Path>) -> anyhow::Result<()> {
    let mut app = super::render::load_app(file)?;
    // The App's own structure (everything that needs no plugin), as the App
    // controller checks it first: a bad App is refused here naming every
    // field, not found out later in its status. The plugin checks are the
    // controller's, against the plugins the cluster serves.
    midplane_api::validate::validate_app(&app)
        .map_err(|errs| anyhow::anyhow!("{}: the App is invalid:\n{errs}", file.display()))?;
    let ns = namespace_of(&app, "default");
    app.metadata.namespace = Some(ns.clone());
    let client = client(kubeconfig).await?;
    let api: Api<App> = Api::namespaced(client, &ns);
    let mut body = serde_json::to_value(&app)?;
    if let Some(m) = body.as_object_mut() {
        m.remove("status");
    }
    api.patch(
        &app.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .with_context(|| format!("applying app {}/{}", ns, app.name_any()))?;
    println!("app.midplane.dev/{} applied", app.name_any());
    Ok(())
}

pub async fn delete(file: &Path, kubeconfig: Option<&Path>, wait: bool) -> anyhow::Result<()> {
    let app = super::render::load_app(file)?;
    let ns = namespace_of(&app, "default");
    let api: Api<App> = Api::namespaced(client(kubeconfig).await?, &ns);
    match api.delete(&app.name_any(), &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => bail!("app {ns}/{} not found", app.name_any()),
        Err(e) => return Err(e).context("deleting app"),
    }
    if wait {
        while api.get_opt(&app.name_any()).await?.is_some() {
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }
    println!("app.midplane.dev/{} deleted", app.name_any());
    Ok(())
}

fn ready(conditions: &[Condition]) -> (String, String) {
    conditions.iter().find(|c| c.type_ == "Ready").map_or_else(
        || ("Unknown".into(), String::new()),
        |c| (c.status.clone(), c.reason.clone()),
    )
}

fn table(rows: Vec<Vec<String>>) -> String {
    let widths: Vec<usize> = (0..rows.first().map_or(0, Vec::len))
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        out.push_str(line.join("   ").trim_end());
        out.push('\n');
    }
    out
}

pub async fn get(
    kind: &str,
    namespace: Option<&str>,
    kubeconfig: Option<&Path>,
) -> anyhow::Result<()> {
    let client = client(kubeconfig).await?;
    let lp = ListParams::default();
    let all = namespace.is_none();
    let ns = namespace.unwrap_or_default();
    let mut rows = Vec::new();
    match kind {
        "app" | "apps" => {
            let api: Api<App> = if all {
                Api::all(client)
            } else {
                Api::namespaced(client, ns)
            };
            rows.push(
                vec!["NAMESPACE", "NAME", "COMPONENTS", "READY", "REASON"]
                    .into_iter()
                    .map(String::from)
                    .collect(),
            );
            for a in api.list(&lp).await?.items {
                let st = a.status.clone().unwrap_or_default();
                let (r, reason) = ready(&st.conditions);
                rows.push(vec![
                    a.namespace().unwrap_or_default(),
                    a.name_any(),
                    a.spec.components.len().to_string(),
                    r,
                    reason,
                ]);
            }
        }
        "component" | "components" => {
            let api: Api<Component> = if all {
                Api::all(client)
            } else {
                Api::namespaced(client, ns)
            };
            rows.push(
                vec!["NAMESPACE", "NAME", "APP", "PLUGIN", "READY", "INSTANCES"]
                    .into_iter()
                    .map(String::from)
                    .collect(),
            );
            for c in api.list(&lp).await?.items {
                let st = c.status.clone().unwrap_or_default();
                let (r, _) = ready(&st.conditions);
                rows.push(vec![
                    c.namespace().unwrap_or_default(),
                    c.name_any(),
                    c.spec.app.clone(),
                    c.spec.middleware.plugin.clone(),
                    r,
                    format!(
                        "{}/{}",
                        st.ready_replicas,
                        c.spec.middleware.replicas * c.spec.middleware.shards
                    ),
                ]);
            }
        }
        "group" | "groups" => {
            let api: Api<Group> = if all {
                Api::all(client)
            } else {
                Api::namespaced(client, ns)
            };
            rows.push(
                vec![
                    "NAMESPACE",
                    "NAME",
                    "PLUGIN",
                    "READY",
                    "INSTANCES",
                    "PRIMARY",
                ]
                .into_iter()
                .map(String::from)
                .collect(),
            );
            for g in api.list(&lp).await?.items {
                let st = g.status.clone().unwrap_or_default();
                let (r, _) = ready(&st.conditions);
                rows.push(vec![
                    g.namespace().unwrap_or_default(),
                    g.name_any(),
                    g.spec.middleware.plugin.clone(),
                    r,
                    format!("{}/{}", st.ready_replicas, g.spec.middleware.replicas),
                    st.primary.clone().unwrap_or_default(),
                ]);
            }
        }
        "backup" | "backups" => {
            rows = super::backups::rows(client, namespace).await?;
        }
        "restore" | "restores" => {
            rows = super::backups::restore_rows(client, namespace).await?;
        }
        other => bail!("unknown kind {other:?}: use apps, components, groups, backups or restores"),
    }
    print!("{}", table(rows));
    Ok(())
}
