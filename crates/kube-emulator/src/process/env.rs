//! A container's environment as the kubelet builds it: the image's, then `envFrom`, then
//! `env` in order (later names win), with the downward API (`fieldRef`,
//! `resourceFieldRef`), ConfigMap and Secret keys, and Kubernetes `$(VAR)` expansion in
//! values, command and args.

use base64::Engine as _;
use serde_json::Value;

use super::images::ImageEntry;
use crate::kinds::quantity;
use crate::store::Store;

/// Why a container cannot be configured (`CreateContainerConfigError`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EnvError(pub String);

/// Kubernetes `$(VAR)` expansion: `$(NAME)` becomes the value when NAME is known and stays
/// as written otherwise; `$$` is a literal `$`.
pub fn expand(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            let name = &inner[..end];
            match lookup(name) {
                Some(v) => out.push_str(&v),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// An ordered environment where a later definition replaces an earlier one.
#[derive(Clone, Debug, Default)]
pub struct Env(pub Vec<(String, String)>);

impl Env {
    pub fn set(&mut self, k: &str, v: String) {
        match self.0.iter_mut().find(|(n, _)| n == k) {
            Some(e) => e.1 = v,
            None => self.0.push((k.to_string(), v)),
        }
    }

    pub fn get(&self, k: &str) -> Option<String> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    pub fn expand(&self, s: &str) -> String {
        expand(s, &|n| self.get(n))
    }
}

/// `metadata.labels` / `metadata.annotations` in the downward API's file format.
pub fn format_map(m: &Value) -> String {
    let mut lines: Vec<String> = m
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                Value::String(v.as_str().unwrap_or_default().into())
            )
        })
        .collect();
    lines.sort();
    lines.join("\n")
}

/// A downward-API field of the Pod.
pub fn field_ref(pod: &Value, path: &str) -> Result<String, EnvError> {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let ips = |v: &Value| {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["ip"].as_str())
            .collect::<Vec<_>>()
            .join(",")
    };
    let keyed = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|r| r.strip_prefix("['").and_then(|r| r.strip_suffix("']")))
    };
    Ok(match path {
        "metadata.name" => s(&pod["metadata"]["name"]),
        "metadata.namespace" => s(&pod["metadata"]["namespace"]),
        "metadata.uid" => s(&pod["metadata"]["uid"]),
        "metadata.labels" => format_map(&pod["metadata"]["labels"]),
        "metadata.annotations" => format_map(&pod["metadata"]["annotations"]),
        "spec.nodeName" => s(&pod["spec"]["nodeName"]),
        "spec.serviceAccountName" => s(&pod["spec"]["serviceAccountName"]),
        "status.hostIP" => s(&pod["status"]["hostIP"]),
        "status.hostIPs" => ips(&pod["status"]["hostIPs"]),
        "status.podIP" => s(&pod["status"]["podIP"]),
        "status.podIPs" => ips(&pod["status"]["podIPs"]),
        _ => {
            if let Some(k) = keyed("metadata.labels") {
                s(&pod["metadata"]["labels"][k])
            } else if let Some(k) = keyed("metadata.annotations") {
                s(&pod["metadata"]["annotations"][k])
            } else {
                return Err(EnvError(format!("unsupported fieldRef fieldPath {path:?}")));
            }
        }
    })
}

/// What this machine offers when a container sets no limit (the node's allocatable).
fn node_capacity(resource: &str) -> f64 {
    if resource.ends_with("cpu") {
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get) as f64
    } else {
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
            .map_or(0.0, |kb| kb * 1024.0)
    }
}

/// A `resourceFieldRef` value: the container's request or limit in units of `divisor`,
/// rounded up; an unset limit reads as the node's capacity, as in the kubelet.
pub fn resource_ref(pod: &Value, container: &Value, r: &Value) -> Result<String, EnvError> {
    let resource = r["resource"].as_str().unwrap_or_default();
    let c = match r["containerName"].as_str() {
        Some(name) if !name.is_empty() => pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == name)
            .ok_or_else(|| EnvError(format!("resourceFieldRef: no container {name:?}")))?,
        _ => container,
    };
    let (section, name) = resource.split_once('.').ok_or_else(|| {
        EnvError(format!(
            "unsupported resourceFieldRef resource {resource:?}"
        ))
    })?;
    let set = c["resources"][section][name]
        .as_str()
        .map(String::from)
        .or_else(|| {
            c["resources"][section][name]
                .as_f64()
                .map(|f| f.to_string())
        });
    let value = match set.as_deref().and_then(quantity) {
        Some(v) => v,
        None if section == "limits" => node_capacity(name),
        None => 0.0,
    };
    let divisor = match &r["divisor"] {
        Value::String(d) => quantity(d).unwrap_or(1.0),
        Value::Number(n) => n.as_f64().unwrap_or(1.0),
        _ => 1.0,
    };
    let divisor = if divisor > 0.0 { divisor } else { 1.0 };
    Ok(format!("{}", (value / divisor).ceil() as i64))
}

/// The value of a `configMapKeyRef` / `secretKeyRef` (`None`: optional and missing).
fn key_ref(store: &Store, ns: &str, r: &Value, secret: bool) -> Result<Option<String>, EnvError> {
    let name = r["name"].as_str().unwrap_or_default();
    let key = r["key"].as_str().unwrap_or_default();
    let optional = r["optional"] == Value::Bool(true);
    let (res, what) = if secret {
        ("secrets", "secret")
    } else {
        ("configmaps", "configmap")
    };
    let obj = store.lock().get(&crate::kubelet::gr("", res), ns, name);
    let Some(obj) = obj else {
        return if optional {
            Ok(None)
        } else {
            Err(EnvError(format!("{what} \"{name}\" not found")))
        };
    };
    let found = if secret {
        obj["data"][key].as_str().and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .ok()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        })
    } else {
        obj["data"][key].as_str().map(String::from)
    };
    match found {
        Some(v) => Ok(Some(v)),
        None if optional => Ok(None),
        None => Err(EnvError(format!(
            "couldn't find key {key} in {} {ns}/{name}",
            if secret { "Secret" } else { "ConfigMap" }
        ))),
    }
}

/// Every key of a ConfigMap or Secret (`envFrom`).
fn all_keys(
    store: &Store,
    ns: &str,
    r: &Value,
    secret: bool,
) -> Result<Vec<(String, String)>, EnvError> {
    let name = r["name"].as_str().unwrap_or_default();
    let res = if secret { "secrets" } else { "configmaps" };
    let obj = store.lock().get(&crate::kubelet::gr("", res), ns, name);
    let Some(obj) = obj else {
        return if r["optional"] == Value::Bool(true) {
            Ok(Vec::new())
        } else {
            Err(EnvError(format!(
                "{} \"{name}\" not found",
                if secret { "secret" } else { "configmap" }
            )))
        };
    };
    Ok(obj["data"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let v = v.as_str().unwrap_or_default();
            let v = if secret {
                base64::engine::general_purpose::STANDARD
                    .decode(v)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default()
            } else {
                v.to_string()
            };
            (k.clone(), v)
        })
        .collect())
}

/// The full environment of a container.
pub fn build(
    store: &Store,
    pod: &Value,
    container: &Value,
    image: &ImageEntry,
    hostname: &str,
    home: &str,
) -> Result<Env, EnvError> {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let mut env = Env::default();
    env.set(
        "PATH",
        std::env::var("PATH").unwrap_or_else(|_| {
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()
        }),
    );
    env.set("HOSTNAME", hostname.to_string());
    env.set("HOME", home.to_string());
    // As the kubelet's service environment for the `kubernetes` Service: in-cluster
    // clients find the API server here (the HTTPS endpoint, when there is one).
    if let Some(secure) = store.access.secure() {
        env.set("KUBERNETES_SERVICE_HOST", secure.addr.ip().to_string());
        env.set("KUBERNETES_SERVICE_PORT", secure.addr.port().to_string());
    }
    for (k, v) in &image.env {
        env.set(k, v.clone());
    }
    for from in container["envFrom"].as_array().into_iter().flatten() {
        let prefix = from["prefix"].as_str().unwrap_or_default();
        let pairs = if from["configMapRef"].is_object() {
            all_keys(store, ns, &from["configMapRef"], false)?
        } else if from["secretRef"].is_object() {
            all_keys(store, ns, &from["secretRef"], true)?
        } else {
            Vec::new()
        };
        for (k, v) in pairs {
            env.set(&format!("{prefix}{k}"), v);
        }
    }
    for e in container["env"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().unwrap_or_default();
        if name.is_empty() {
            continue;
        }
        let vf = &e["valueFrom"];
        let value = if let Some(v) = e["value"].as_str() {
            Some(env.expand(v))
        } else if vf["fieldRef"].is_object() {
            Some(field_ref(
                pod,
                vf["fieldRef"]["fieldPath"].as_str().unwrap_or_default(),
            )?)
        } else if vf["resourceFieldRef"].is_object() {
            Some(resource_ref(pod, container, &vf["resourceFieldRef"])?)
        } else if vf["configMapKeyRef"].is_object() {
            key_ref(store, ns, &vf["configMapKeyRef"], false)?
        } else if vf["secretKeyRef"].is_object() {
            key_ref(store, ns, &vf["secretKeyRef"], true)?
        } else {
            Some(String::new())
        };
        if let Some(v) = value {
            env.set(name, v);
        }
    }
    Ok(env)
}

/// The argv of a container, from the image map entry and the container's command/args,
/// `$(VAR)`-expanded.
pub fn argv(container: &Value, image: &ImageEntry, env: &Env) -> Vec<String> {
    let list = |v: &Value| -> Option<Vec<String>> {
        v.as_array().map(|a| {
            a.iter()
                .map(|s| s.as_str().unwrap_or_default().to_string())
                .collect()
        })
    };
    let command = list(&container["command"]);
    let args = list(&container["args"]);
    let raw: Vec<String> = match (command, args) {
        (Some(c), Some(a)) => c.into_iter().chain(a).collect(),
        (Some(c), None) => c,
        (None, Some(a)) => image.entrypoint.iter().cloned().chain(a).collect(),
        (None, None) => image.entrypoint.iter().chain(&image.cmd).cloned().collect(),
    };
    raw.iter().map(|s| env.expand(s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expansion_follows_kubernetes() {
        let mut env = Env::default();
        env.set("POD_IP", "127.9.0.2".into());
        assert_eq!(env.expand("$(POD_IP):6379"), "127.9.0.2:6379");
        assert_eq!(env.expand("$(MISSING)"), "$(MISSING)");
        assert_eq!(env.expand("$$(POD_IP)"), "$(POD_IP)");
        assert_eq!(env.expand("a$b$"), "a$b$");
        assert_eq!(env.expand("$(unterminated"), "$(unterminated");
    }

    #[test]
    fn downward_api_fields() {
        let pod = json!({"metadata": {"name": "p", "namespace": "n", "labels": {"a": "1", "b": "x"}},
            "status": {"podIP": "127.9.0.2", "podIPs": [{"ip": "127.9.0.2"}]}});
        assert_eq!(field_ref(&pod, "status.podIP").expect("ok"), "127.9.0.2");
        assert_eq!(field_ref(&pod, "metadata.labels['b']").expect("ok"), "x");
        assert_eq!(
            field_ref(&pod, "metadata.labels").expect("ok"),
            "a=\"1\"\nb=\"x\""
        );
        assert!(field_ref(&pod, "spec.bogus").is_err());
        let c = json!({"resources": {"limits": {"memory": "128Mi"}}});
        let r = json!({"resource": "limits.memory", "divisor": "1Mi"});
        assert_eq!(resource_ref(&pod, &c, &r).expect("ok"), "128");
    }

    #[test]
    fn argv_follows_command_and_args_over_the_image() {
        let image: ImageEntry =
            serde_yaml::from_str("{image: x, entrypoint: [ep], cmd: [c1]}").expect("entry");
        let env = Env(vec![("IP".into(), "1.2.3.4".into())]);
        assert_eq!(argv(&json!({}), &image, &env), ["ep", "c1"]);
        assert_eq!(argv(&json!({"args": ["a"]}), &image, &env), ["ep", "a"]);
        assert_eq!(
            argv(&json!({"command": ["x", "$(IP)"]}), &image, &env),
            ["x", "1.2.3.4"]
        );
    }
}
