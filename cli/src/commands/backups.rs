//! Backups on a cluster: `midplane backup create --app A --component C` creates a Backup
//! resource and follows it to its end, `midplane backup restore --app A --component C
//! --backup B` a Restore; `midplane get backups` and `get restores` list them
//! (docs/backups.md).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::bail;
use kube::api::{Api, ListParams, PostParams};
use kube::{Client, ResourceExt};
use midplane_api::backup::{self, phase};
use midplane_api::restore::phase as restore_phase;
use midplane_api::{Backup, BackupSpec, Restore, RestoreFrom, RestoreSpec};

/// What `backup create` asks for against a cluster.
pub struct CreateRequest {
    pub namespace: String,
    pub app: String,
    pub component: String,
    pub group: String,
    pub instance: String,
    pub storage: String,
    pub encryption: Option<String>,
    pub key_secret: Option<String>,
    /// Follow the Backup until it is Completed or Failed (at most this long).
    pub wait: Option<Duration>,
}

/// Creates the Backup (named `<app>-<component>-<unix seconds>`, built as
/// BackupService.RequestAppBackup builds it); prints its name, then, when waiting, each
/// phase it passes and the outcome. A Failed Backup fails the command.
pub async fn create(req: CreateRequest, kubeconfig: Option<&Path>) -> anyhow::Result<()> {
    let client = super::cluster::client(kubeconfig).await?;
    let name = backup::requested_name(&req.app, &req.component, std::time::SystemTime::now());
    let backup = Backup::requested(
        &req.namespace,
        &name,
        BackupSpec {
            app: req.app,
            component: req.component,
            group: req.group,
            instance: req.instance,
            storage: req.storage,
            encryption: req.encryption,
            key_secret: req.key_secret,
        },
        backup::trigger::MANUAL,
    );
    let api: Api<Backup> = Api::namespaced(client, &req.namespace);
    api.create(&PostParams::default(), &backup).await?;
    println!("backup.midplane.dev/{name} created");
    let Some(limit) = req.wait else {
        return Ok(());
    };
    follow(&api, &name, limit, backup_standing).await
}

/// How a followed resource stands: its phase, and once it ended, the line to print
/// (Completed) or why it failed.
struct Standing {
    phase: String,
    ended: Option<Result<String, String>>,
}

fn backup_standing(b: Backup) -> Standing {
    let st = b.status.unwrap_or_default();
    let ended = match st.phase.as_str() {
        phase::COMPLETED => Some(Ok(format!(
            "backup {} of {} ({}{}) completed in {}: {} bytes stored at {}, archive sha256 {}",
            st.backup_id.unwrap_or_default(),
            st.instance.unwrap_or_default(),
            st.role.unwrap_or_else(|| "live files".into()),
            st.term.map(|t| format!(", term {t}")).unwrap_or_default(),
            st.duration.unwrap_or_default(),
            st.stored_bytes.unwrap_or_default(),
            st.location.unwrap_or_default(),
            st.archive_sha256.unwrap_or_default(),
        ))),
        phase::FAILED => Some(Err(st.message.unwrap_or_else(|| "no message".into()))),
        _ => None,
    };
    Standing {
        phase: st.phase,
        ended,
    }
}

fn restore_standing(r: Restore) -> Standing {
    let st = r.status.unwrap_or_default();
    let ended = match st.phase.as_str() {
        restore_phase::COMPLETED => Some(Ok(format!(
            "restore of backup {} into {} ({} instances) completed in {}",
            st.backup_id.unwrap_or_default(),
            st.group.unwrap_or_default(),
            st.instances.len(),
            st.duration.unwrap_or_default(),
        ))),
        restore_phase::FAILED => Some(Err(st.message.unwrap_or_else(|| "no message".into()))),
        _ => None,
    };
    Standing {
        phase: st.phase,
        ended,
    }
}

/// Follows `name` until it ends or `limit` passes, printing each phase it passes with its
/// time, then the outcome; a failure fails the command.
async fn follow<K>(
    api: &Api<K>,
    name: &str,
    limit: Duration,
    standing: fn(K) -> Standing,
) -> anyhow::Result<()>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let (kind, plural) = (K::kind(&()), K::plural(&()));
    let start = Instant::now();
    let mut last = String::new();
    loop {
        let now = standing(api.get(name).await?);
        if now.phase != last && !now.phase.is_empty() {
            println!("{:>6.1}s  {}", start.elapsed().as_secs_f64(), now.phase);
            last = now.phase.clone();
        }
        match now.ended {
            Some(Ok(line)) => {
                println!("{line}");
                return Ok(());
            }
            Some(Err(why)) => bail!("{kind} {name} failed: {why}"),
            None => {}
        }
        if start.elapsed() > limit {
            bail!(
                "{kind} {name} is still {} after {}s; follow it with `midplane get {plural}`",
                if last.is_empty() { "new" } else { &last },
                limit.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// What `backup restore` asks for against a cluster.
pub struct RestoreRequest {
    pub namespace: String,
    pub app: String,
    pub component: String,
    pub group: String,
    pub backup: String,
    /// Follow the Restore until it is Completed or Failed (at most this long).
    pub wait: Option<Duration>,
}

/// Creates a Restore (named `<app>-<component>-restore-<unix seconds>`) of the named Backup
/// into the running component; prints its name, then, when waiting, each phase it passes
/// and the outcome. A Failed Restore fails the command.
pub async fn restore(req: RestoreRequest, kubeconfig: Option<&Path>) -> anyhow::Result<()> {
    let client = super::cluster::client(kubeconfig).await?;
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let name = format!("{}-{}-restore-{secs}", req.app, req.component);
    let mut r = Restore::new(
        &name,
        RestoreSpec {
            app: req.app,
            component: req.component,
            group: req.group,
            from: RestoreFrom {
                backup: req.backup,
                ..Default::default()
            },
        },
    );
    r.metadata.namespace = Some(req.namespace.clone());
    let api: Api<Restore> = Api::namespaced(client, &req.namespace);
    api.create(&PostParams::default(), &r).await?;
    println!("restore.midplane.dev/{name} created");
    let Some(limit) = req.wait else {
        return Ok(());
    };
    follow(&api, &name, limit, restore_standing).await
}

/// The rows of `midplane get backups`.
pub async fn rows(client: Client, namespace: Option<&str>) -> anyhow::Result<Vec<Vec<String>>> {
    let api: Api<Backup> = match namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    };
    let mut rows = vec![
        [
            "NAMESPACE",
            "NAME",
            "APP",
            "COMPONENT",
            "PHASE",
            "INSTANCE",
            "ROLE",
            "SIZE",
            "DURATION",
            "ID",
        ]
        .map(String::from)
        .to_vec(),
    ];
    let mut items = api.list(&ListParams::default()).await?.items;
    items.sort_by_key(|b| b.metadata.creation_timestamp.clone().map(|t| t.0));
    for b in items {
        let st = b.status.clone().unwrap_or_default();
        rows.push(vec![
            b.namespace().unwrap_or_default(),
            b.name_any(),
            b.spec.app.clone(),
            b.spec.component.clone(),
            st.phase.clone(),
            st.instance.unwrap_or_default(),
            st.role.unwrap_or_default(),
            st.stored_bytes.map(|s| s.to_string()).unwrap_or_default(),
            st.duration.unwrap_or_default(),
            st.backup_id.unwrap_or_default(),
        ]);
    }
    Ok(rows)
}

/// `midplane get restores`: the Restore resources, oldest first.
pub async fn restore_rows(
    client: Client,
    namespace: Option<&str>,
) -> anyhow::Result<Vec<Vec<String>>> {
    let api: Api<midplane_api::Restore> = match namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    };
    let mut rows = vec![
        [
            "NAMESPACE",
            "NAME",
            "APP",
            "COMPONENT",
            "GROUP",
            "PHASE",
            "DURATION",
            "ID",
            "MESSAGE",
        ]
        .map(String::from)
        .to_vec(),
    ];
    let mut items = api.list(&ListParams::default()).await?.items;
    items.sort_by_key(|r| r.metadata.creation_timestamp.clone().map(|t| t.0));
    for r in items {
        let st = r.status.clone().unwrap_or_default();
        rows.push(vec![
            r.namespace().unwrap_or_default(),
            r.name_any(),
            r.spec.app.clone(),
            r.spec.component.clone(),
            st.group.unwrap_or_default(),
            st.phase.clone(),
            st.duration.unwrap_or_default(),
            st.backup_id.unwrap_or_default(),
            st.message.unwrap_or_default(),
        ]);
    }
    Ok(rows)
}
