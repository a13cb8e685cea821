//! Startup pieces `main.rs` wires together: the event sink and the scheduler.

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

/// Starts the scheduler (App watch, plus the Backup Job watch in job mode) until `stop`.
pub async fn start_scheduler(
    config: &Config,
    events: EventSink,
    stop: midplane_runtime::Shutdown,
    health: midplane_runtime::Health,
) -> Result<JoinHandle<()>, midplane_operator::ClientError> {
    let s = &config.scheduler;
    let client = midplane_operator::kube_client(s.kubeconfig.as_deref()).await?;
    let settings = Arc::new(config.backup.clone());
    let recorder = EventRecorder::new(client.clone(), "midplane-backup-svc");
    let (runner, jobs_task) = match s.mode {
        Mode::Inline => (Runner::inline(settings.clone(), events), None),
        Mode::Job => {
            let (jobs, task) = KubeJobs::start(client.clone(), s.namespace.as_deref());
            let runner = Runner::job(settings.clone(), config.job.clone(), Arc::new(jobs), events);
            (runner, Some(task))
        }
    };
    tracing::info!(mode = ?s.mode, namespace = ?s.namespace, "backup scheduler started");
    let lp = SchedulerLoop {
        client,
        namespace: s.namespace.clone(),
        settings,
        runner: Arc::new(runner.with_recorder(recorder.clone())),
        clock: Arc::new(SystemClock),
        max_concurrent: s.max_concurrent,
        recorder: Some(recorder),
    };
    let (le, client) = (s.leader_election.clone(), lp.client.clone());
    // The scheduler reads no watch cache: ready once it leads or stands by healthily.
    let readiness = midplane_operator::readiness::Readiness::new(health);
    readiness.track(|| true);
    Ok(tokio::spawn(async move {
        let (wait, work_stop, on_lost) = (stop.clone(), stop.clone(), stop);
        let work = lp.run(async move { work_stop.wait().await }, None);
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
