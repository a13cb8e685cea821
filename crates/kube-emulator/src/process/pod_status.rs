//! The Pod status a Pod worker reports: phase, conditions and container statuses, merged
//! into what the API holds and written only when it changed.

use serde_json::{Value, json};

use super::container::{Container, State};
use super::pod::Worker;
use crate::kubelet::{condition, gr, opts, rt_of};
use crate::store::meta_str;

impl Worker {
    /// The Pod's status as this kubelet sees it, merged into what the API holds.
    pub(super) fn status(&self, current: &Value) -> Value {
        let now = crate::ops::now();
        let mut st = if current["status"].is_object() {
            current["status"].clone()
        } else {
            json!({})
        };
        let (init, app): (Vec<&Container>, Vec<&Container>) =
            self.containers.iter().partition(|c| c.init);
        let initialized = init.iter().all(|c| c.completed());
        // An init container that failed and will not be retried (restartPolicy Never).
        let init_failed = init.iter().any(|c| {
            matches!(&c.state, State::Terminated(t) if t.exit_code != 0) && c.restart_at.is_none()
        });
        let never_started = app.iter().all(|c| c.instance == 0);
        let policy = self.pod["spec"]["restartPolicy"]
            .as_str()
            .unwrap_or("Always");
        let all_done = app
            .iter()
            .all(|c| matches!(&c.state, State::Terminated(_)) && c.restart_at.is_none());
        let failed = app
            .iter()
            .any(|c| matches!(&c.state, State::Terminated(t) if t.exit_code != 0));
        let phase = if init_failed && policy == "Never" {
            "Failed"
        } else if never_started && !all_done {
            "Pending"
        } else if all_done && (policy != "Always" || self.terminating()) {
            if failed { "Failed" } else { "Succeeded" }
        } else {
            "Running"
        };
        let ready = initialized && !app.is_empty() && app.iter().all(|c| c.ready);
        let unready: Vec<&str> = app
            .iter()
            .filter(|c| !c.ready)
            .map(|c| c.name.as_str())
            .collect();
        let prev = &current["status"]["conditions"];
        let cond = |ty: &str, ok: bool| {
            let mut c = condition(ty, ok, "", "", prev, &now);
            if let Some(m) = c.as_object_mut() {
                m.remove("lastUpdateTime");
                m.remove("message");
                m.remove("reason");
                if !ok && ty == "Initialized" {
                    m.insert("reason".into(), json!("ContainersNotInitialized"));
                    let pending: Vec<&str> = init
                        .iter()
                        .filter(|c| !c.completed())
                        .map(|c| c.name.as_str())
                        .collect();
                    m.insert(
                        "message".into(),
                        json!(format!(
                            "containers with incomplete status: [{}]",
                            pending.join(" ")
                        )),
                    );
                }
                if !ok && (ty == "Ready" || ty == "ContainersReady") {
                    let done = phase == "Succeeded" || phase == "Failed";
                    m.insert(
                        "reason".into(),
                        json!(if done {
                            "PodCompleted"
                        } else {
                            "ContainersNotReady"
                        }),
                    );
                    if !done {
                        m.insert(
                            "message".into(),
                            json!(format!(
                                "containers with unready status: [{}]",
                                unready.join(" ")
                            )),
                        );
                    }
                }
            }
            c
        };
        st["phase"] = json!(phase);
        st["conditions"] = json!([
            cond(
                "PodReadyToStartContainers",
                !self.terminating() || !all_done
            ),
            cond("Initialized", initialized),
            cond("Ready", ready),
            cond("ContainersReady", ready),
            cond("PodScheduled", true),
        ]);
        st["containerStatuses"] = Value::Array(app.iter().map(|c| c.status()).collect());
        if !init.is_empty() {
            st["initContainerStatuses"] = Value::Array(init.iter().map(|c| c.status()).collect());
        }
        st
    }

    pub(super) fn write_status(&mut self) {
        if self.shutdown || self.removed {
            return;
        }
        let Ok(rt) = rt_of(&self.rt.store.lock(), &gr("", "pods")) else {
            return;
        };
        let uid = self.uid.clone();
        let mut wrote = Value::Null;
        let r = self.rt.store.guaranteed_update(
            &rt,
            &self.ns,
            &self.name,
            crate::fields::Scope::Status,
            &opts("kubelet"),
            true,
            |cur| {
                if meta_str(cur, "uid") != uid {
                    return Ok(None);
                }
                let st = self.status(cur);
                if st == cur["status"] {
                    return Ok(None);
                }
                wrote = st.clone();
                Ok(Some(json!({"status": st})))
            },
        );
        match r {
            Ok(_) => {
                if !wrote.is_null() {
                    self.written = wrote;
                }
            }
            Err(e) => tracing::debug!(pod = %self.name, error = %e, "kubelet status"),
        }
    }
}
