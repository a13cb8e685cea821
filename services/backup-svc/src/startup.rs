//! Startup pieces `main.rs` wires together: the event sink, the Kubernetes client, the
//! scheduler and the gRPC service.

use std::sync::Arc;

use midplane_bus::BusConfig;
use midplane_operator::EventRecorder;
use midplane_operator::leader::run_as_leader;
use tokio::task::JoinHandle;

use crate::announce::EventSink;
use crate::config::{BusSettings, Config, Mode};
use crate::cron::SystemClock;
use crate::execute::Runner;
use crate::job_client::KubeJobs;
use crate::resources::{
    self,
    snapshot::{LiveFiles, Snapshots},
    snapshot_gateway::GatewaySnapshots,
};
use crate::scheduler::SchedulerLoop;

/// CloudEvents `source` of backup-svc's events.
pub const EVENT_SOURCE: &str = "/midplane/backup-svc";

/// Connects the publisher when `bus.url` is set; otherwise says once that no events go out.
pub async fn event_sink(
    bus: &BusSettings,
) -> Result<(EventSink, Option<JoinHandle<()>>), midplane_bus::BusError> {
    let cfg = bus.url.as_ref().map(|url| {
        let cfg = BusConfig {
            url: url.clone(),
            ..BusConfig::default()
        }
        .with_source(EVENT_SOURCE);
        match &bus.exchange {
            Some(ex) => cfg.with_exchange(ex.clone()),
            None => cfg,
        }
    });
    EventSink::connect(cfg, "backup").await
}

/// backup-svc's Kubernetes client (`scheduler.kubeconfig`), when the scheduler or the
/// Backup controller needs one.
pub async fn kube_client(config: &Config) -> Result<Option<kube::Client>, StartError> {
    if !(config.scheduler.enabled || config.controller.enabled) {
        return Ok(None);
    }
    Ok(Some(
        midplane_operator::kube_client(config.scheduler.kubeconfig.as_deref()).await?,
    ))
}

/// The BackupService; it serves Backup resources (RequestAppBackup, GetAppBackup,
/// ListAppBackups) through `client` when the Backup controller runs (`controller.enabled`).
pub fn backup_service(
    config: &Config,
    events: EventSink,
    client: Option<kube::Client>,
) -> crate::BackupSvc {
    let svc = crate::BackupSvc::new(config.backup.clone())
        .with_events(events)
        .with_server_timeout(std::time::Duration::from_millis(
            config.server.request_timeout_ms,
        ));
    match client {
        Some(c) if config.controller.enabled => svc.with_backup_resources(c),
        _ => svc,
    }
}

/// Starts what runs against Kubernetes until `stop`, under one leader election so two
/// replicas never back up twice: the scheduler (App watch, plus the Backup Job watch in job
/// mode) when `scheduler.enabled`, and the Backup controller when `controller.enabled`.
pub async fn start_scheduler(
    config: &Config,
    events: EventSink,
    stop: midplane_runtime::Shutdown,
    health: midplane_runtime::Health,
) -> Result<JoinHandle<()>, StartError> {
    let client = midplane_operator::kube_client(config.scheduler.kubeconfig.as_deref()).await?;
    start_with_client(config, client, events, stop, health).await
}

/// [`start_scheduler`] with `client`.
pub async fn start_with_client(
    config: &Config,
    client: kube::Client,
    events: EventSink,
    stop: midplane_runtime::Shutdown,
    health: midplane_runtime::Health,
) -> Result<JoinHandle<()>, StartError> {
    let s = &config.scheduler;
    let settings = Arc::new(config.backup.clone());
    let recorder = EventRecorder::new(client.clone(), "midplane-backup-svc");
    let (runner, jobs_task) = match s.mode {
        Mode::Inline | Mode::Resources => (Runner::inline(settings.clone(), events.clone()), None),
        Mode::Job => {
            let (jobs, task) = KubeJobs::start(client.clone(), s.namespace.as_deref());
            let runner = Runner::job(
                settings.clone(),
                config.job.clone(),
                Arc::new(jobs),
                events.clone(),
            );
            (runner, Some(task))
        }
    };
    if s.enabled && s.mode == Mode::Resources && !config.controller.enabled {
        tracing::warn!(
            "scheduler.mode is resources but controller.enabled is false: scheduled Backups will wait for a Backup controller"
        );
    }
    let controller = if config.controller.enabled {
        let snapshots: Arc<dyn Snapshots> = match &config.controller.gateway_addr {
            Some(addr) => {
                let token = match &config.controller.gateway_token_file {
                    Some(f) => Some(std::fs::read_to_string(f).map_err(|e| {
                        StartError::Gateway(format!("reading {}: {e}", f.display()))
                    })?),
                    None => None,
                };
                Arc::new(
                    GatewaySnapshots::new(addr, token.as_deref().map(str::trim))
                        .map_err(StartError::Gateway)?,
                )
            }
            None => {
                tracing::warn!(
                    "controller.gateway_addr is unset: Backup Jobs read the volumes' live files, not snapshots"
                );
                Arc::new(LiveFiles::default())
            }
        };
        Some(Arc::new(resources::Context::new(
            client.clone(),
            settings.clone(),
            config.job.clone(),
            snapshots,
            events,
        )))
    } else {
        None
    };
    tracing::info!(scheduler = s.enabled, mode = ?s.mode, controller = controller.is_some(), namespace = ?s.namespace, "backup-svc background work started");
    let lp = s.enabled.then(|| SchedulerLoop {
        client: client.clone(),
        namespace: s.namespace.clone(),
        settings,
        runner: Arc::new(runner.with_recorder(recorder.clone())),
        clock: Arc::new(SystemClock),
        max_concurrent: s.max_concurrent,
        recorder: Some(recorder),
        resources: s.mode == Mode::Resources,
    });
    let namespace = s.namespace.clone();
    let le = s.leader_election.clone();
    // Neither reads a cache worth waiting for: ready once it leads or stands by healthily.
    let readiness = midplane_operator::readiness::Readiness::new(health);
    readiness.track(|| true);
    Ok(tokio::spawn(async move {
        let (wait, work_stop, ctl_stop, on_lost) = (stop.clone(), stop.clone(), stop.clone(), stop);
        let work = async move {
            let scheduler = async move {
                if let Some(lp) = lp {
                    lp.run(async move { work_stop.wait().await }, None).await;
                }
            };
            let controller = async move {
                if let Some(ctx) = controller {
                    resources::run(
                        ctx,
                        namespace.as_deref(),
                        async move { ctl_stop.wait().await },
                    )
                    .await;
                }
            };
            futures::join!(scheduler, controller);
        };
        // Losing the Lease stops the service (its replacement starts as a follower).
        run_as_leader(
            client,
            &le,
            "backup-svc",
            &readiness,
            async move { wait.wait().await },
            work,
            move || on_lost.trigger(),
        )
        .await;
        if let Some(t) = jobs_task {
            t.abort();
        }
    }))
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Client(#[from] midplane_operator::ClientError),
    #[error("agent gateway: {0}")]
    Gateway(String),
}
