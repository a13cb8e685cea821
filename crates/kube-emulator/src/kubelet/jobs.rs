//! The Job controller, kwok-style: one Pod at a time per Job (parallelism and completions 1),
//! the Pod runs through the kubelet's lifecycle and then ends as the Job's outcome says
//! (annotation, hook or the emulator's default), failures are retried up to `backoffLimit`,
//! `activeDeadlineSeconds`, `suspend` and `ttlSecondsAfterFinished` are honoured.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Kubelet, delete_pods, gr, is_ready, is_running, opts, owned_pods, rt_of};
use crate::error::{ApiError, ApiResult};
use crate::fields::Scope;
use crate::ops::{DeleteOpts, now};
use crate::registry::GroupResource;
use crate::store::{Inner, ObjKey, meta_str};

/// On a Job (or its pod template): how its Pods end — `succeed`, `fail` or `hold`.
pub const OUTCOME_ANNOTATION: &str = "emulator.midplane.dev/job-outcome";
/// On a Job (or its pod template): how long a Pod runs before it ends (`500ms`, `2s`, `3`).
pub const DURATION_ANNOTATION: &str = "emulator.midplane.dev/job-duration";

const MANAGER: &str = "kube-controller-manager";

/// How the Pods of an emulated Job end once they are Running.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum JobOutcome {
    /// The container exits 0: the Pod Succeeded, the Job is Complete.
    #[default]
    Succeed,
    /// The container exits 1: the Pod Failed; the Job retries up to backoffLimit, then Failed.
    Fail,
    /// The Pod keeps running until an outcome is set (or the deadline passes).
    Hold,
}

impl JobOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            JobOutcome::Succeed => "succeed",
            JobOutcome::Fail => "fail",
            JobOutcome::Hold => "hold",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "succeed" => Some(JobOutcome::Succeed),
            "fail" => Some(JobOutcome::Fail),
            "hold" => Some(JobOutcome::Hold),
            _ => None,
        }
    }
}

pub(crate) fn job_gr() -> GroupResource {
    gr("batch", "jobs")
}

/// The annotation on the Job, else on its pod template.
fn annotation<'a>(job: &'a Value, key: &str) -> Option<&'a str> {
    job["metadata"]["annotations"][key]
        .as_str()
        .or_else(|| job["spec"]["template"]["metadata"]["annotations"][key].as_str())
}

fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if let Some(ms) = s.strip_suffix("ms") {
        return ms.trim().parse().ok().map(Duration::from_millis);
    }
    let secs = s.strip_suffix('s').unwrap_or(s).trim();
    secs.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite() && *f >= 0.0)
        .map(Duration::from_secs_f64)
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn until(t: DateTime<Utc>) -> Duration {
    (t - Utc::now()).to_std().unwrap_or_default()
}

fn cond_true<'a>(job: &'a Value, ty: &str) -> Option<&'a Value> {
    job["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == ty && c["status"] == "True")
}

/// Set a Job condition (lastProbeTime/lastTransitionTime as the job controller keeps them).
fn set_cond(conds: &mut Vec<Value>, ty: &str, ok: bool, reason: &str, message: &str, now: &str) {
    let status = if ok { "True" } else { "False" };
    if let Some(c) = conds.iter_mut().find(|c| c["type"] == ty) {
        if c["status"] == status && c["reason"] == reason {
            return;
        }
        if c["status"] != status {
            c["lastTransitionTime"] = json!(now);
        }
        c["status"] = json!(status);
        c["reason"] = json!(reason);
        c["message"] = json!(message);
        c["lastProbeTime"] = json!(now);
        return;
    }
    conds.push(
        json!({"type": ty, "status": status, "reason": reason, "message": message,
                      "lastProbeTime": now, "lastTransitionTime": now}),
    );
}

/// The Pod for one attempt, named `<job>-<random>`.
fn pod_for(job: &Value) -> Value {
    let t = &job["spec"]["template"];
    let mut meta = json!({
        "generateName": format!("{}-", meta_str(job, "name")),
        "labels": if t["metadata"]["labels"].is_object() { t["metadata"]["labels"].clone() } else { json!({}) },
        "ownerReferences": [{
            "apiVersion": "batch/v1", "kind": "Job", "name": meta_str(job, "name"),
            "uid": meta_str(job, "uid"), "controller": true, "blockOwnerDeletion": true,
        }],
    });
    if t["metadata"]["annotations"].is_object() {
        meta["annotations"] = t["metadata"]["annotations"].clone();
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": t["spec"].clone()})
}

/// The status of a Pod whose containers exited (0: Succeeded, else Failed).
fn terminated(pod: &Value, ok: bool, now: &str) -> Value {
    let mut st = pod["status"].clone();
    st["phase"] = json!(if ok { "Succeeded" } else { "Failed" });
    let reason = if ok { "PodCompleted" } else { "PodFailed" };
    for c in st["conditions"].as_array_mut().into_iter().flatten() {
        if c["type"] == "Ready" || c["type"] == "ContainersReady" {
            if c["status"] != "False" {
                c["lastTransitionTime"] = json!(now);
            }
            c["status"] = json!("False");
            c["reason"] = json!(reason);
        }
    }
    for s in st["containerStatuses"].as_array_mut().into_iter().flatten() {
        let started = s["state"]["running"]["startedAt"].clone();
        s["ready"] = json!(false);
        s["started"] = json!(false);
        s["state"] = json!({"terminated": {
            "exitCode": if ok { 0 } else { 1 },
            "reason": if ok { "Completed" } else { "Error" },
            "startedAt": started, "finishedAt": now, "containerID": s["containerID"],
        }});
    }
    st
}

/// When a running Pod started its containers.
fn started_at(pod: &Value) -> Option<DateTime<Utc>> {
    pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| time(&s["state"]["running"]["startedAt"]))
        .max()
        .or_else(|| time(&pod["status"]["startTime"]))
}

impl Kubelet {
    /// Reconcile `key` (a Job) again after `d`.
    fn job_after(&self, key: &ObjKey, d: Duration) {
        let tx = self.timers.clone();
        let key = key.clone();
        tokio::spawn(async move {
            tokio::time::sleep(d + Duration::from_millis(20)).await;
            // The loop may be gone at shutdown; nothing to do then.
            let _ = tx.send(key);
        });
    }

    /// Decide how a Job's Pods end from now on: annotates the Job with [`OUTCOME_ANNOTATION`]
    /// (as `kubectl annotate` would); the controller acts on it. Returns the Job.
    pub fn set_job_outcome(&self, ns: &str, name: &str, outcome: JobOutcome) -> ApiResult<Value> {
        let mut inner = self.store.lock();
        let rt = rt_of(&inner, &job_gr())?;
        let job = inner
            .get(&rt.gr(), ns, name)
            .ok_or_else(|| ApiError::not_found("batch", "jobs", name))?;
        let mut new = (*job).clone();
        if !new["metadata"]["annotations"].is_object() {
            new["metadata"]["annotations"] = json!({});
        }
        new["metadata"]["annotations"][OUTCOME_ANNOTATION] = json!(outcome.as_str());
        let out = inner.finish_update(&rt, job, new, Scope::Main, &opts("kube-emulator"), true)?;
        Ok((*out).clone())
    }

    fn outcome_of(&self, job: &Value) -> JobOutcome {
        annotation(job, OUTCOME_ANNOTATION)
            .and_then(JobOutcome::parse)
            .unwrap_or(self.job_outcome)
    }

    pub(super) fn reconcile_job(&self, inner: &mut Inner, key: &ObjKey) -> ApiResult<()> {
        let Some(job) = inner.get_key(key) else {
            return Ok(());
        };
        if !job["metadata"]["deletionTimestamp"].is_null() {
            return Ok(());
        }
        let finished = cond_true(&job, "Complete").or_else(|| cond_true(&job, "Failed"));
        if let Some(c) = finished {
            let at =
                time(&job["status"]["completionTime"]).or_else(|| time(&c["lastTransitionTime"]));
            return self.expire_job(inner, key, &job, at);
        }
        let job_rt = rt_of(inner, &key.gr)?;
        let pod_rt = rt_of(inner, &gr("", "pods"))?;
        let uid = meta_str(&job, "uid").to_string();
        let now = now();
        let spec = &job["spec"];
        let mut status = if job["status"].is_object() {
            job["status"].clone()
        } else {
            json!({})
        };
        let mut conds: Vec<Value> = status["conditions"].as_array().cloned().unwrap_or_default();
        let delete_active = |inner: &mut Inner| -> ApiResult<usize> {
            let active: Vec<Arc<Value>> = owned_pods(inner, &uid, &pod_rt.gr())
                .into_iter()
                .filter(|p| is_running(p))
                .collect();
            delete_pods(
                inner,
                &pod_rt,
                &key.namespace,
                active.iter().map(|p| meta_str(p, "name")),
            )?;
            Ok(active.len())
        };

        if spec["suspend"] == json!(true) {
            delete_active(inner)?;
            set_cond(
                &mut conds,
                "Suspended",
                true,
                "JobSuspended",
                "Job suspended",
                &now,
            );
            if let Some(m) = status.as_object_mut() {
                m.remove("startTime");
                m.remove("active");
            }
            status["ready"] = json!(0);
            return self.write_job_status(inner, &job_rt, job, status, conds);
        }
        if cond_true(&job, "Suspended").is_some() {
            set_cond(
                &mut conds,
                "Suspended",
                false,
                "JobResumed",
                "Job resumed",
                &now,
            );
        }
        if status["startTime"].is_null() {
            status["startTime"] = json!(now);
        }
        let start = time(&status["startTime"]).unwrap_or_else(Utc::now);

        if let Some(secs) = spec["activeDeadlineSeconds"].as_i64() {
            let deadline = start + chrono::Duration::seconds(secs);
            if Utc::now() >= deadline {
                let killed = delete_active(inner)?;
                let failed = status["failed"].as_i64().unwrap_or(0) + killed as i64;
                let msg = "Job was active longer than specified deadline";
                set_cond(
                    &mut conds,
                    "FailureTarget",
                    true,
                    "DeadlineExceeded",
                    msg,
                    &now,
                );
                set_cond(&mut conds, "Failed", true, "DeadlineExceeded", msg, &now);
                status["failed"] = json!(failed);
                status["ready"] = json!(0);
                if let Some(m) = status.as_object_mut() {
                    m.remove("active");
                }
                return self.write_job_status(inner, &job_rt, job, status, conds);
            }
            self.job_after(key, until(deadline));
        }

        // Running Pods end as the outcome says, once they ran for the configured duration.
        let outcome = self.outcome_of(&job);
        // Process pods end by themselves: their real exit decides.
        if self.process.is_none() && outcome != JobOutcome::Hold {
            let run_for = annotation(&job, DURATION_ANNOTATION)
                .and_then(parse_duration)
                .unwrap_or_default();
            for p in owned_pods(inner, &uid, &pod_rt.gr()) {
                if p["status"]["phase"] != "Running"
                    || !p["metadata"]["deletionTimestamp"].is_null()
                {
                    continue;
                }
                let due = started_at(&p).unwrap_or_else(Utc::now)
                    + chrono::Duration::from_std(run_for).unwrap_or_default();
                if Utc::now() < due {
                    self.job_after(key, until(due));
                    continue;
                }
                let mut new = (*p).clone();
                new["status"] = terminated(&p, outcome == JobOutcome::Succeed, &now);
                inner.finish_update(&pod_rt, p, new, Scope::Status, &opts("kubelet"), true)?;
            }
        }

        let pods = owned_pods(inner, &uid, &pod_rt.gr());
        let count = |phase: &str| {
            pods.iter()
                .filter(|p| p["status"]["phase"] == phase)
                .count() as i64
        };
        let succeeded = count("Succeeded").max(status["succeeded"].as_i64().unwrap_or(0));
        let failed = count("Failed").max(status["failed"].as_i64().unwrap_or(0));
        let mut active: Vec<&Arc<Value>> = pods.iter().filter(|p| is_running(p)).collect();
        let completions = spec["completions"].as_i64().unwrap_or(1);
        let backoff = spec["backoffLimit"].as_i64().unwrap_or(6);
        if succeeded >= completions {
            let msg = "Reached expected number of succeeded pods";
            set_cond(
                &mut conds,
                "SuccessCriteriaMet",
                true,
                "CompletionsReached",
                msg,
                &now,
            );
            set_cond(
                &mut conds,
                "Complete",
                true,
                "CompletionsReached",
                msg,
                &now,
            );
            status["completionTime"] = json!(now);
        } else if failed > backoff {
            delete_active(inner)?;
            active.clear();
            let msg = "Job has reached the specified backoff limit";
            set_cond(
                &mut conds,
                "FailureTarget",
                true,
                "BackoffLimitExceeded",
                msg,
                &now,
            );
            set_cond(
                &mut conds,
                "Failed",
                true,
                "BackoffLimitExceeded",
                msg,
                &now,
            );
        } else if active.is_empty() {
            let pod = inner.create(&pod_rt, &key.namespace, pod_for(&job), &opts(MANAGER), true)?;
            status["active"] = json!(1);
            status["ready"] = json!(0);
            status["succeeded"] = json!(succeeded);
            status["failed"] = json!(failed);
            tracing::debug!(job = %key.name, pod = %meta_str(&pod, "name"), "job pod created");
            return self.write_job_status(inner, &job_rt, job, status, conds);
        }
        status["active"] = json!(active.len());
        status["ready"] = json!(active.iter().filter(|p| is_ready(p)).count());
        status["succeeded"] = json!(succeeded);
        status["failed"] = json!(failed);
        self.write_job_status(inner, &job_rt, job, status, conds)
    }

    fn write_job_status(
        &self,
        inner: &mut Inner,
        rt: &crate::registry::ResourceType,
        job: Arc<Value>,
        mut status: Value,
        conds: Vec<Value>,
    ) -> ApiResult<()> {
        if conds.is_empty() {
            if let Some(m) = status.as_object_mut() {
                m.remove("conditions");
            }
        } else {
            status["conditions"] = Value::Array(conds);
        }
        status["uncountedTerminatedPods"] = json!({});
        // The apiserver omits zero counters (`ready` is a pointer and stays).
        if let Some(m) = status.as_object_mut() {
            for k in ["active", "succeeded", "failed"] {
                if m.get(k) == Some(&json!(0)) {
                    m.remove(k);
                }
            }
        }
        if status == job["status"] {
            return Ok(());
        }
        let mut new = (*job).clone();
        new["status"] = status;
        inner.finish_update(rt, job, new, Scope::Status, &opts(MANAGER), true)?;
        Ok(())
    }

    /// ttlSecondsAfterFinished: delete the finished Job (its Pods follow by GC) when due.
    fn expire_job(
        &self,
        inner: &mut Inner,
        key: &ObjKey,
        job: &Value,
        finished: Option<DateTime<Utc>>,
    ) -> ApiResult<()> {
        let (Some(ttl), Some(at)) = (job["spec"]["ttlSecondsAfterFinished"].as_i64(), finished)
        else {
            return Ok(());
        };
        let due = at + chrono::Duration::seconds(ttl);
        if Utc::now() < due {
            self.job_after(key, until(due));
            return Ok(());
        }
        let rt = rt_of(inner, &key.gr)?;
        let d = DeleteOpts {
            propagation: Some("Background".into()),
            uid: Some(meta_str(job, "uid").to_string()),
            ..DeleteOpts::default()
        };
        inner.delete(&rt, &key.namespace, &key.name, &d)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("-1"), None);
    }

    #[test]
    fn conditions_keep_their_transition_time() {
        let mut c = Vec::new();
        set_cond(&mut c, "Suspended", true, "JobSuspended", "m", "t1");
        set_cond(&mut c, "Suspended", true, "JobSuspended", "m", "t2");
        assert_eq!(c[0]["lastTransitionTime"], "t1");
        set_cond(&mut c, "Suspended", false, "JobResumed", "m", "t3");
        assert_eq!((c.len(), &c[0]["lastTransitionTime"]), (1, &json!("t3")));
        assert_eq!(c[0]["status"], "False");
    }
}
