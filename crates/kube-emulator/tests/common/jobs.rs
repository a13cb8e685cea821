//! Helpers for the Job tests: a Job as a user writes it, its conditions, Pods that turn
//! Ready at once, waits, and the causes of a 422.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use midplane_kube_emulator::{EmulatorConfig, JobOutcome};
use serde_json::{Value, json};

use super::*;

/// A Job as a user writes it; `extra` is merged into `spec`, `tmpl_ann` on the pod template.
pub fn job(name: &str, extra: Value, tmpl_ann: Value) -> Job {
    let mut spec = json!({"template": {"metadata": {"annotations": tmpl_ann},
        "spec": {"restartPolicy": "Never",
            "containers": [{"name": "work", "image": "busybox:1.36", "command": ["true"]}]}}});
    for (k, v) in extra.as_object().into_iter().flatten() {
        spec[k] = v.clone();
    }
    serde_json::from_value(json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name}, "spec": spec}))
    .expect("job")
}

pub fn condition<'a>(
    j: &'a Job,
    ty: &str,
) -> Option<&'a k8s_openapi::api::batch::v1::JobCondition> {
    j.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == ty)
}

pub fn is_true(j: &Job, ty: &str) -> bool {
    condition(j, ty).is_some_and(|c| c.status == "True")
}

/// An emulator whose Pods start in 50 ms and whose Jobs end as `outcome` says,
/// with the Job and Pod APIs of `default`.
pub async fn fast_pods(
    outcome: JobOutcome,
) -> (midplane_kube_emulator::EmulatorHandle, Api<Job>, Api<Pod>) {
    let (emu, client) = start_with(EmulatorConfig {
        pod_ready_delay: Duration::from_millis(50),
        job_outcome: outcome,
        ..Default::default()
    })
    .await;
    let jobs = Api::namespaced(client.clone(), "default");
    let pods = Api::namespaced(client, "default");
    (emu, jobs, pods)
}

pub async fn wait_job(jobs: &Api<Job>, name: &str, what: &str, ok: impl Fn(&Job) -> bool) -> Job {
    eventually(&format!("{name}: {what}"), 15, || async {
        let j = jobs.get(name).await.ok()?;
        ok(&j).then_some(j)
    })
    .await
}

pub async fn pods_of(pods: &Api<Pod>, job: &str) -> Vec<Pod> {
    pods.list(&ListParams::default().labels(&format!("batch.kubernetes.io/job-name={job}")))
        .await
        .expect("list pods")
        .items
}

pub fn phase(p: &Pod) -> String {
    p.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default()
}

pub fn causes(r: Result<Job, kube::Error>) -> (u16, Vec<String>) {
    match r {
        Err(kube::Error::Api(s)) => {
            let fields = s
                .details
                .map(|d| d.causes)
                .unwrap_or_default()
                .into_iter()
                .map(|c| format!("{}: {}", c.field, c.message))
                .collect();
            (s.code, fields)
        }
        other => panic!("expected an API error, got {other:?}"),
    }
}
