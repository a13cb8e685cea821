//! Built-in batch/v1 Jobs: discovery, apiserver defaulting and validation, and the emulated job
//! controller (Pod → Succeeded/Failed, backoffLimit, activeDeadlineSeconds, suspend,
//! ttlSecondsAfterFinished) with the outcome hooks (annotation, handle, default).

mod common;

use std::time::Duration;

use common::jobs::*;
use common::*;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::discovery::{Discovery, Scope};
use midplane_kube_emulator::{EmulatorConfig, Fault, JobOutcome, OUTCOME_ANNOTATION};
use serde_json::json;

#[tokio::test]
async fn jobs_are_discoverable_with_status_subresource() {
    let (emu, client) = start().await;
    let d = Discovery::new(client.clone())
        .filter(&["batch"])
        .run()
        .await
        .expect("discovery");
    let (ar, caps) = d
        .groups()
        .flat_map(kube::discovery::ApiGroup::recommended_resources)
        .find(|(ar, _)| ar.kind == "Job")
        .expect("batch Job discovered");
    assert_eq!(
        (ar.api_version.as_str(), ar.plural.as_str()),
        ("batch/v1", "jobs")
    );
    assert_eq!(caps.scope, Scope::Namespaced);
    assert!(
        caps.subresources.iter().any(|(s, _)| s.plural == "status"),
        "{:?}",
        caps.subresources
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn jobs_are_defaulted_validated_and_track_generation() {
    let (emu, jobs, _pods) = fast_pods(JobOutcome::Hold).await;
    let j = jobs
        .create(&PostParams::default(), &job("d", json!({}), json!({})))
        .await
        .expect("create");
    let spec = j.spec.clone().expect("spec");
    assert_eq!(spec.backoff_limit, Some(6));
    assert_eq!(spec.completions, Some(1));
    assert_eq!(spec.parallelism, Some(1));
    assert_eq!(spec.completion_mode.as_deref(), Some("NonIndexed"));
    assert_eq!(spec.suspend, Some(false));
    assert_eq!(spec.manual_selector, None);
    assert_eq!(j.metadata.generation, Some(1));
    let sel = spec
        .selector
        .and_then(|s| s.match_labels)
        .expect("selector");
    let uid_label = sel["batch.kubernetes.io/controller-uid"].clone();
    assert!(!uid_label.is_empty());
    let labels = spec
        .template
        .metadata
        .and_then(|m| m.labels)
        .expect("labels");
    assert_eq!(labels["batch.kubernetes.io/controller-uid"], uid_label);
    assert_eq!(labels["controller-uid"], uid_label);
    assert_eq!(labels["batch.kubernetes.io/job-name"], "d");
    assert_eq!(labels["job-name"], "d");

    // restartPolicy must be Never or OnFailure (a pod template defaults to Always).
    let mut bad = job("bad", json!({}), json!({}));
    if let Some(s) = bad.spec.as_mut().and_then(|s| s.template.spec.as_mut()) {
        s.restart_policy = None;
    }
    let (code, fields) = causes(jobs.create(&PostParams::default(), &bad).await);
    assert_eq!(code, 422);
    assert!(
        fields
            .iter()
            .any(|f| f
                .starts_with("spec.template.spec.restartPolicy: Unsupported value: \"Always\"")),
        "{fields:?}"
    );

    // The template is immutable; a mutable field bumps the generation.
    let img = json!({"spec": {"template": {"spec": {"containers": [{"name": "work", "image": "busybox:2"}]}}}});
    let (code, fields) = causes(
        jobs.patch("d", &PatchParams::default(), &Patch::Strategic(&img))
            .await,
    );
    assert_eq!(code, 422);
    assert!(
        fields
            .iter()
            .any(|f| f.starts_with("spec.template: ") && f.contains("field is immutable")),
        "{fields:?}"
    );
    let j = jobs
        .patch(
            "d",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"activeDeadlineSeconds": 600}})),
        )
        .await
        .expect("mutable field");
    assert_eq!(j.metadata.generation, Some(2));
    // A status write does not.
    let j = jobs
        .patch_status(
            "d",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ready": 0}})),
        )
        .await
        .expect("status");
    assert_eq!(j.metadata.generation, Some(2));
    emu.shutdown().await;
}

/// The generated selector and template labels name the Job's own uid, as the apiserver's do.
#[tokio::test]
async fn generated_selector_names_the_jobs_own_uid() {
    let (emu, jobs, _pods) = fast_pods(JobOutcome::Hold).await;
    let j = jobs
        .create(&PostParams::default(), &job("u", json!({}), json!({})))
        .await
        .expect("create");
    let sel = j
        .spec
        .clone()
        .and_then(|s| s.selector)
        .and_then(|s| s.match_labels);
    assert_eq!(
        sel.expect("selector")["batch.kubernetes.io/controller-uid"],
        j.uid().expect("uid")
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn a_job_runs_its_pod_to_completion() {
    let (emu, client) = start().await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let created = jobs
        .create(&PostParams::default(), &job("ok", json!({}), json!({})))
        .await
        .expect("create");
    let j = wait_job(&jobs, "ok", "Complete", |j| is_true(j, "Complete")).await;
    assert!(is_true(&j, "SuccessCriteriaMet"));
    assert_eq!(
        condition(&j, "Complete")
            .and_then(|c| c.reason.clone())
            .as_deref(),
        Some("CompletionsReached")
    );
    let st = j.status.clone().expect("status");
    assert_eq!((st.succeeded, st.failed, st.active), (Some(1), None, None));
    let (start, end) = (
        st.start_time.expect("startTime"),
        st.completion_time.expect("completionTime"),
    );
    assert!(start.0 <= end.0);
    let ps = pods_of(&pods, "ok").await;
    assert_eq!(ps.len(), 1);
    assert_eq!(phase(&ps[0]), "Succeeded");
    let owner = &ps[0].owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("Job", created.uid().expect("uid").as_str(), Some(true))
    );
    let term = ps[0]
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .expect("statuses")[0]
        .state
        .as_ref()
        .and_then(|s| s.terminated.clone())
        .expect("terminated");
    assert_eq!(
        (term.exit_code, term.reason.as_deref()),
        (0, Some("Completed"))
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn failing_pods_are_retried_until_the_backoff_limit() {
    let (emu, jobs, pods) = fast_pods(JobOutcome::Succeed).await;
    jobs.create(
        &PostParams::default(),
        &job(
            "bad",
            json!({"backoffLimit": 2}),
            json!({OUTCOME_ANNOTATION: "fail"}),
        ),
    )
    .await
    .expect("create");
    let j = wait_job(&jobs, "bad", "Failed", |j| is_true(j, "Failed")).await;
    assert!(is_true(&j, "FailureTarget"));
    assert_eq!(
        condition(&j, "Failed")
            .and_then(|c| c.reason.clone())
            .as_deref(),
        Some("BackoffLimitExceeded")
    );
    assert!(!is_true(&j, "Complete"));
    let st = j.status.expect("status");
    assert_eq!(
        (st.failed, st.succeeded, st.completion_time),
        (Some(3), None, None)
    );
    let ps = pods_of(&pods, "bad").await;
    assert_eq!(ps.len(), 3, "one pod per attempt");
    assert!(ps.iter().all(|p| phase(p) == "Failed"));
    emu.shutdown().await;
}

#[tokio::test]
async fn held_jobs_end_through_the_hooks() {
    let (emu, jobs, pods) = fast_pods(JobOutcome::Hold).await;
    jobs.create(
        &PostParams::default(),
        &job("h", json!({"backoffLimit": 1}), json!({})),
    )
    .await
    .expect("create");
    let j = wait_job(&jobs, "h", "running and ready", |j| {
        j.status
            .as_ref()
            .is_some_and(|s| s.active == Some(1) && s.ready == Some(1))
    })
    .await;
    assert!(j.status.and_then(|s| s.start_time).is_some());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let j = jobs.get("h").await.expect("get");
    assert!(!is_true(&j, "Complete") && !is_true(&j, "Failed"), "held");

    // A pod fault counts as a failed attempt: a replacement Pod runs.
    let first = pods_of(&pods, "h").await.remove(0);
    emu.pod_fault("default", &first.name_any(), Fault::Fail)
        .expect("fault");
    let j = wait_job(&jobs, "h", "second attempt", |j| {
        j.status
            .as_ref()
            .is_some_and(|s| s.failed == Some(1) && s.active == Some(1))
    })
    .await;
    assert!(!is_true(&j, "Failed"));
    // The handle's hook ends the running attempt.
    let annotated = emu
        .job_outcome("default", "h", JobOutcome::Fail)
        .expect("hook");
    assert_eq!(
        annotated["metadata"]["annotations"][OUTCOME_ANNOTATION],
        "fail"
    );
    let j = wait_job(&jobs, "h", "Failed", |j| is_true(j, "Failed")).await;
    assert_eq!(j.status.and_then(|s| s.failed), Some(2));
    assert_eq!(pods_of(&pods, "h").await.len(), 2);

    // And `succeed` completes another held Job.
    jobs.create(&PostParams::default(), &job("h2", json!({}), json!({})))
        .await
        .expect("create");
    wait_job(&jobs, "h2", "active", |j| {
        j.status.as_ref().is_some_and(|s| s.ready == Some(1))
    })
    .await;
    emu.job_outcome("default", "h2", JobOutcome::Succeed)
        .expect("hook");
    let j = wait_job(&jobs, "h2", "Complete", |j| is_true(j, "Complete")).await;
    assert_eq!(j.status.and_then(|s| s.succeeded), Some(1));
    emu.shutdown().await;
}

#[tokio::test]
async fn active_deadline_fails_the_job_and_removes_its_pod() {
    let (emu, jobs, pods) = fast_pods(JobOutcome::Hold).await;
    jobs.create(
        &PostParams::default(),
        &job("late", json!({"activeDeadlineSeconds": 1}), json!({})),
    )
    .await
    .expect("create");
    wait_job(&jobs, "late", "active", |j| {
        j.status.as_ref().is_some_and(|s| s.active == Some(1))
    })
    .await;
    let j = wait_job(&jobs, "late", "Failed", |j| is_true(j, "Failed")).await;
    for ty in ["FailureTarget", "Failed"] {
        assert_eq!(
            condition(&j, ty).and_then(|c| c.reason.clone()).as_deref(),
            Some("DeadlineExceeded"),
            "{ty}"
        );
    }
    let st = j.status.expect("status");
    assert_eq!((st.active, st.failed), (None, Some(1)));
    eventually("the running pod deleted", 5, || async {
        pods_of(&pods, "late").await.is_empty().then_some(())
    })
    .await;
    emu.shutdown().await;
}

#[tokio::test]
async fn suspended_jobs_run_nothing_until_resumed() {
    let (emu, jobs, pods) = fast_pods(JobOutcome::Succeed).await;
    jobs.create(
        &PostParams::default(),
        &job("s", json!({"suspend": true}), json!({})),
    )
    .await
    .expect("create");
    let j = wait_job(&jobs, "s", "Suspended", |j| is_true(j, "Suspended")).await;
    assert_eq!(
        condition(&j, "Suspended")
            .and_then(|c| c.reason.clone())
            .as_deref(),
        Some("JobSuspended")
    );
    assert!(j.status.and_then(|s| s.start_time).is_none());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        pods_of(&pods, "s").await.is_empty(),
        "no pod while suspended"
    );
    jobs.patch(
        "s",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"suspend": false}})),
    )
    .await
    .expect("resume");
    let j = wait_job(&jobs, "s", "Complete", |j| is_true(j, "Complete")).await;
    let c = condition(&j, "Suspended").expect("Suspended condition kept");
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref()),
        ("False", Some("JobResumed"))
    );
    assert_eq!(pods_of(&pods, "s").await.len(), 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn finished_jobs_and_their_pods_go_after_the_ttl() {
    let (emu, jobs, pods) = fast_pods(JobOutcome::Succeed).await;
    jobs.create(
        &PostParams::default(),
        &job("t", json!({"ttlSecondsAfterFinished": 2}), json!({})),
    )
    .await
    .expect("create");
    let j = wait_job(&jobs, "t", "Complete", |j| is_true(j, "Complete")).await;
    let seen = tokio::time::Instant::now();
    assert!(j.status.and_then(|s| s.completion_time).is_some());
    assert_eq!(pods_of(&pods, "t").await.len(), 1);
    eventually("the Job deleted", 10, || async {
        matches!(jobs.get_opt("t").await, Ok(None)).then_some(())
    })
    .await;
    // Not before its TTL: 2 s after a completionTime of second precision is ≥ 1 s from now.
    assert!(
        seen.elapsed() >= Duration::from_millis(900),
        "{:?}",
        seen.elapsed()
    );
    eventually("its Pod collected", 10, || async {
        pods_of(&pods, "t").await.is_empty().then_some(())
    })
    .await;
    emu.shutdown().await;
}

async fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> (bool, String) {
    let cache = kubeconfig.with_file_name("cache");
    let out = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(&cache)
        .args(args)
        .output()
        .await
        .expect("kubectl runs (scripts/services/kubectl.sh installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

const JOB_YAML: &str = r#"
apiVersion: batch/v1
kind: Job
metadata: {name: k}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: work, image: "busybox:1.36", command: ["true"]}]
"#;

#[tokio::test]
async fn stock_kubectl_applies_waits_for_and_lists_jobs() {
    let (emu, _client) = start_with(EmulatorConfig {
        pod_ready_delay: Duration::from_millis(50),
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kubeconfig");
    emu.write_kubeconfig(&kc).expect("kubeconfig");
    let manifest = dir.path().join("job.yaml");
    std::fs::write(&manifest, JOB_YAML).expect("manifest");
    let m = manifest.to_str().expect("utf8 path");
    let (ok, out) = kubectl(&kc, &["apply", "-f", m]).await;
    assert!(ok && out.contains("job.batch/k created"), "{out}");
    let (ok, out) = kubectl(
        &kc,
        &["wait", "--for=condition=complete", "job/k", "--timeout=20s"],
    )
    .await;
    assert!(ok && out.contains("job.batch/k condition met"), "{out}");
    let (ok, out) = kubectl(&kc, &["apply", "-f", m]).await;
    assert!(ok && out.contains("job.batch/k unchanged"), "{out}");
    let (ok, out) = kubectl(
        &kc,
        &["get", "job", "k", "-o", "jsonpath={.status.succeeded}"],
    )
    .await;
    assert!(ok && out == "1", "{out}");
    // `kubectl get all` covers Jobs, as the "all" category does on a real cluster.
    let (ok, out) = kubectl(&kc, &["get", "all"]).await;
    assert!(
        ok && out.contains("job.batch/k") && out.contains("pod/k-"),
        "{out}"
    );
    emu.shutdown().await;
}
