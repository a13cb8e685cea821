//! The kwok-like stand-in for kube-controller-manager and the kubelet, only as far as our flows
//! need: Deployment → Pods (no ReplicaSet layer), Pod scheduling and readiness after a delay,
//! fault hooks, Deployment status, PVC binding, and Endpoints/EndpointSlices of Services.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use sha2::Digest as _;
use tokio::sync::mpsc;

use crate::error::{ApiError, ApiResult};
use crate::fields::Scope;
use crate::ops::{DeleteOpts, WriteOpts, now};
use crate::registry::{GroupResource, ResourceType};
use crate::store::{Inner, ObjKey, Store, WatchEvent, key_of};

mod deployments;
mod endpoints;
mod index;
mod jobs;
mod pods;

pub use jobs::{DURATION_ANNOTATION, JobOutcome, OUTCOME_ANNOTATION};
pub(crate) use pods::NODE;

use crate::process::{Input, Runtime};

/// A test-injected pod fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Phase Failed, containers terminated with exit code 1.
    Fail,
    /// The container crashes: restartCount+1, CrashLoopBackOff, Ready again after the delay.
    Crash,
    /// Running but not Ready until `Ready` is injected.
    NotReady,
    /// Back to Running and Ready.
    Ready,
    /// Delete the Pod (its Deployment replaces it).
    Delete,
}

pub(crate) fn gr(group: &str, res: &str) -> GroupResource {
    GroupResource::new(group, res)
}

pub(crate) fn opts(manager: &str) -> WriteOpts {
    WriteOpts {
        manager: manager.into(),
        version: "v1".into(),
        ..WriteOpts::default()
    }
}

pub(crate) fn rt_of(inner: &Inner, g: &GroupResource) -> ApiResult<Arc<ResourceType>> {
    inner
        .registry
        .get(g)
        .ok_or_else(|| ApiError::not_found(&g.group, &g.resource, ""))
}

/// The delays the built-in controllers work with.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// ContainerCreating → Running and Ready.
    pub ready_delay: Duration,
    /// `--endpoint-updates-batch-period`.
    pub endpoint_batch: Duration,
}

/// The built-in controllers; `inject` is the fault hook behind the Rust API and HTTP admin.
pub struct Kubelet {
    store: Arc<Store>,
    ready_delay: Duration,
    endpoint_batch: Duration,
    /// Services whose endpoints wait for the batch period to end.
    batched: std::sync::Mutex<std::collections::HashSet<ObjKey>>,
    timers: mpsc::UnboundedSender<ObjKey>,
    timer_rx: std::sync::Mutex<Option<mpsc::UnboundedReceiver<ObjKey>>>,
    events_rx: std::sync::Mutex<Option<mpsc::UnboundedReceiver<Arc<WatchEvent>>>>,
    index: std::sync::Mutex<index::Index>,
    ip_counter: AtomicU64,
    /// How Job Pods end when neither the Job nor its template says.
    job_outcome: JobOutcome,
    /// Process pods: the node that runs them (`None`: simulated Pods).
    pub(crate) process: Option<Arc<Runtime>>,
}

impl Kubelet {
    pub fn new(
        store: Arc<Store>,
        timing: Timing,
        job_outcome: JobOutcome,
        process: Option<Arc<Runtime>>,
    ) -> Arc<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let events = store.subscribe_internal();
        Arc::new(Self {
            store,
            ready_delay: timing.ready_delay,
            endpoint_batch: timing.endpoint_batch,
            batched: std::sync::Mutex::new(std::collections::HashSet::new()),
            timers: tx,
            timer_rx: std::sync::Mutex::new(Some(rx)),
            events_rx: std::sync::Mutex::new(Some(events)),
            index: std::sync::Mutex::new(index::Index::default()),
            ip_counter: AtomicU64::new(1),
            job_outcome,
            process,
        })
    }

    /// The address of a Pod being scheduled (`None`: process pods ran out of addresses).
    pub(crate) fn next_ip(&self, pod_uid: &str) -> Option<String> {
        if let Some(rt) = &self.process {
            return rt.allocate_ip(pod_uid).map(|ip| ip.to_string());
        }
        let n = self.ip_counter.fetch_add(1, Ordering::Relaxed);
        Some(format!("10.244.{}.{}", (n / 250) % 250, n % 250 + 2))
    }

    /// Fire a readiness timer for a pod.
    pub(crate) fn later(&self, key: ObjKey) {
        self.after(key, self.ready_delay);
    }

    /// Hand `key` back to the loop after `d`.
    fn after(&self, key: ObjKey, d: Duration) {
        let tx = self.timers.clone();
        tokio::spawn(async move {
            tokio::time::sleep(d).await;
            // The loop may be gone at shutdown; nothing to do then.
            let _ = tx.send(key);
        });
    }

    /// Make a pod fail, crash, turn (not) ready or go away. Returns the pod as it now is.
    pub fn inject(&self, ns: &str, name: &str, fault: Fault) -> ApiResult<Value> {
        let mut inner = self.store.lock();
        let rt = rt_of(&inner, &gr("", "pods"))?;
        let pod = inner
            .get(&rt.gr(), ns, name)
            .ok_or_else(|| ApiError::not_found("", "pods", name))?;
        if fault == Fault::Delete {
            inner.delete(&rt, ns, name, &DeleteOpts::default())?;
            return Ok((*pod).clone());
        }
        if let Some(p) = &self.process {
            if fault != Fault::Crash {
                return Err(ApiError::bad_request(format!(
                    "the {fault:?} hook is for simulated Pods; with process pods stop or kill the process instead (crash and delete work)"
                )));
            }
            p.input(Input::Crash(ns.to_string(), name.to_string()));
            return Ok((*pod).clone());
        }
        let new = json!({"status": pods::fault_status(&pod, fault, &now())});
        let out = inner.finish_update(&rt, pod, new, Scope::Status, &opts("kubelet"), true)?;
        if fault == Fault::Crash {
            self.later(key_of(&rt.gr(), &out));
        }
        Ok((*out).clone())
    }

    /// Run until shutdown.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let Some(mut timer_rx) = self
            .timer_rx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        else {
            return;
        };
        let Some(mut rx) = self
            .events_rx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        else {
            return;
        };
        loop {
            let mut events: Vec<Arc<WatchEvent>> = Vec::new();
            let mut due: Vec<ObjKey> = Vec::new();
            tokio::select! {
                r = rx.recv() => match r {
                    Some(ev) => events.push(ev),
                    None => return,
                },
                Some(k) = timer_rx.recv() => due.push(k),
                _ = shutdown.changed() => return,
            }
            while let Ok(ev) = rx.try_recv() {
                events.push(ev);
            }
            while let Ok(k) = timer_rx.try_recv() {
                due.push(k);
            }
            // Off the async workers: a step is a burst of synchronous work, and HTTP
            // requests should not wait for a worker while it runs.
            let me = self.clone();
            if tokio::task::spawn_blocking(move || me.step(&events, &due))
                .await
                .is_err()
            {
                tracing::error!("the kubelet loop panicked");
                return;
            }
        }
    }

    fn step(&self, events: &[Arc<WatchEvent>], due: &[ObjKey]) {
        let mut deployments = BTreeSet::new();
        let mut new_pods = BTreeSet::new();
        let mut pvcs = BTreeSet::new();
        let mut services = BTreeSet::new();
        // Services a Pod change touches; with a batch period they wait for it.
        let mut pod_services = BTreeSet::new();
        let mut jobs = BTreeSet::new();
        let job_gr = jobs::job_gr();
        let dep_gr = gr("apps", "deployments");
        let pod_gr = gr("", "pods");
        let pvc_gr = gr("", "persistentvolumeclaims");
        let svc_gr = gr("", "services");
        let index = &mut *self
            .index
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for ev in events {
            index.observe(ev);
        }
        // The kinds the steps below write, looked up once.
        let (pod_rt, pvc_rt);
        {
            let inner = self.store.lock();
            pod_rt = rt_of(&inner, &pod_gr).ok();
            pvc_rt = rt_of(&inner, &pvc_gr).ok();
            for ev in events {
                let key = key_of(&ev.gr, &ev.object);
                if ev.gr == dep_gr {
                    deployments.insert(key);
                } else if ev.gr == job_gr {
                    jobs.insert(key);
                } else if ev.gr == pod_gr {
                    if let Some(p) = &self.process {
                        p.input(Input::Pod(ev.clone()));
                    }
                    if ev.object["spec"]["nodeName"].is_null() {
                        new_pods.insert(key.clone());
                    }
                    // Only changes that move a Pod's owner status or its endpoints matter.
                    if !pods::relevant_change(ev) {
                        continue;
                    }
                    for o in [Some(&ev.object), ev.old.as_ref()].into_iter().flatten() {
                        for r in o["metadata"]["ownerReferences"]
                            .as_array()
                            .into_iter()
                            .flatten()
                        {
                            let owner = |gr: &GroupResource| ObjKey {
                                gr: gr.clone(),
                                namespace: key.namespace.clone(),
                                name: r["name"].as_str().unwrap_or_default().into(),
                            };
                            if r["kind"] == "Deployment" {
                                deployments.insert(owner(&dep_gr));
                            } else if r["kind"] == "Job" {
                                jobs.insert(owner(&job_gr));
                            }
                        }
                    }
                    endpoints::services_selecting(&inner, index, &ev.object, &mut pod_services);
                    if let Some(old) = &ev.old
                        && old["metadata"]["labels"] != ev.object["metadata"]["labels"]
                    {
                        endpoints::services_selecting(&inner, index, old, &mut pod_services);
                    }
                } else if ev.gr == pvc_gr {
                    if let Some(p) = &self.process
                        && ev.etype == crate::store::EventType::Deleted
                    {
                        p.input(Input::PvcDeleted(ev.object.clone()));
                    }
                    pvcs.insert(key);
                } else if ev.gr == svc_gr {
                    if let Some(p) = &self.process {
                        p.input(Input::Service(key.clone()));
                    }
                    services.insert(key);
                }
            }
        }
        // One lock per item: HTTP requests interleave instead of waiting for the whole batch.
        if let Some(rt) = &pod_rt {
            for k in &new_pods {
                pods::schedule(self, &self.store, rt, k);
            }
        }
        if self.endpoint_batch.is_zero() {
            services.append(&mut pod_services);
        } else {
            let mut batched = self
                .batched
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for k in pod_services {
                // The first change starts the period; later ones join it.
                if batched.insert(k.clone()) {
                    self.after(k, self.endpoint_batch);
                }
            }
        }
        for k in due {
            if k.gr == job_gr {
                jobs.insert(k.clone());
            } else if k.gr == svc_gr {
                self.batched
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .remove(k);
                services.insert(k.clone());
            } else if let Some(rt) = &pod_rt {
                pods::start(&self.store, rt, k);
            }
        }
        for k in &deployments {
            if let Err(e) = self.reconcile_deployment(k) {
                tracing::warn!(deployment = %k.name, error = %e, "deployment controller");
            }
        }
        for k in &jobs {
            if let Err(e) = self.reconcile_job(&mut self.store.lock(), k) {
                tracing::warn!(job = %k.name, error = %e, "job controller");
            }
        }
        if let Some(rt) = &pvc_rt {
            for k in &pvcs {
                pods::bind_pvc(&self.store, rt, k);
            }
        }
        for k in &services {
            endpoints::reconcile(&mut self.store.lock(), index, k);
        }
    }
}

/// The pod-template-hash: a stable digest of the template, in the apiserver's safe alphabet.
pub(crate) fn template_hash(template: &Value) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let digest = sha2::Sha256::digest(template.to_string().as_bytes());
    let mut n = u64::from_be_bytes([
        digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
    ]) % 1_000_000_000_000;
    let mut out = String::new();
    while n > 0 && out.len() < 10 {
        out.push(ALPHABET[(n % 27) as usize] as char);
        n /= 27;
    }
    out
}

pub(crate) fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

pub(crate) fn condition(
    ty: &str,
    ok: bool,
    reason: &str,
    message: &str,
    prev: &Value,
    now: &str,
) -> Value {
    let status = if ok { "True" } else { "False" };
    let old = prev
        .as_array()
        .and_then(|a| a.iter().find(|c| c["type"] == ty));
    let transition = match old {
        Some(o) if o["status"] == status => o["lastTransitionTime"].clone(),
        _ => json!(now),
    };
    let update = match old {
        Some(o) if o["status"] == status && o["reason"] == reason => o["lastUpdateTime"].clone(),
        _ => json!(now),
    };
    json!({"type": ty, "status": status, "reason": reason, "message": message,
           "lastTransitionTime": transition, "lastUpdateTime": update})
}

/// Delete the named Pods of `ns` (scale-down, rollouts, Job cleanup).
pub(crate) fn delete_pods<'a>(
    inner: &mut Inner,
    pod_rt: &ResourceType,
    ns: &str,
    names: impl IntoIterator<Item = &'a str>,
) -> ApiResult<()> {
    for name in names {
        inner.delete(pod_rt, ns, name, &DeleteOpts::default())?;
    }
    Ok(())
}

/// The Pods a workload owns, from the store's dependents index.
fn owned_pods(inner: &Inner, owner_uid: &str, pods: &GroupResource) -> Vec<Arc<Value>> {
    inner
        .dependents
        .get(owner_uid)
        .map(|s| {
            s.iter()
                .filter(|k| k.gr == *pods)
                .filter_map(|k| inner.get_key(k))
                .collect()
        })
        .unwrap_or_default()
}

/// Not being deleted and not terminated: a Pod that counts toward replicas.
fn is_running(p: &Value) -> bool {
    p["metadata"]["deletionTimestamp"].is_null()
        && !matches!(p["status"]["phase"].as_str(), Some("Failed" | "Succeeded"))
}
