//! `k8s/`: the kustomize base and the dev and production overlays render with stock
//! `kubectl kustomize`, pass `kubernetes-validate --strict` for Kubernetes 1.33, and follow
//! the rules docs/deploy.md states (probes, non-root, read-only root filesystem, every
//! service's objects, configuration its service accepts, images as scripts/images.sh names
//! them, the Redis plugin ConfigMap as `midplane plugin pack` makes it).

use midplane_e2e::root;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;

const SERVICES: [&str; 5] = [
    "app-svc",
    "group-svc",
    "plugin-svc",
    "backup-svc",
    "agent-gateway",
];
/// The services whose gRPC API is public (the agent gateway only serves group-svc).
const PUBLIC: [&str; 4] = ["app-svc", "group-svc", "plugin-svc", "backup-svc"];
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `kubectl kustomize k8s/<dir>` as parsed documents.
fn render(dir: &str) -> (String, Vec<Value>) {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(root().join("k8s").join(dir))
        .output()
        .unwrap_or_else(|e| {
            panic!("kubectl not runnable ({e}); install it with scripts/services/kubectl.sh")
        });
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "kubectl kustomize k8s/{dir}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs = serde_yaml::Deserializer::from_str(&text)
        .map(|d| <Value as serde::Deserialize>::deserialize(d).expect("YAML document"))
        .filter(|v| !v.is_null())
        .collect();
    (text, docs)
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn overlays_render_and_pass_strict_schema_validation() {
    for dir in ["base", "overlays/dev", "overlays/production"] {
        let (text, docs) = render(dir);
        assert!(docs.len() > 40, "k8s/{dir}: {} objects", docs.len());
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), &text).expect("write");
        let v = Command::new("kubernetes-validate")
            .args(["--strict", "-k", "1.33", "--quiet", "--no-warn"])
            .arg(file.path())
            .output()
            .unwrap_or_else(|e| panic!("kubernetes-validate not runnable ({e}); install it with scripts/services/kubernetes-validate.sh"));
        assert!(
            v.status.success(),
            "k8s/{dir} fails kubernetes-validate --strict:\n{}{}",
            String::from_utf8_lossy(&v.stdout),
            String::from_utf8_lossy(&v.stderr)
        );
        for d in &docs {
            let kind = d["kind"].as_str().unwrap_or_default();
            let cluster_scoped = matches!(
                kind,
                "Namespace" | "CustomResourceDefinition" | "ClusterRole" | "ClusterRoleBinding"
            );
            if !cluster_scoped {
                assert_eq!(
                    d["metadata"]["namespace"], "midplane-system",
                    "k8s/{dir}: {kind} {}",
                    d["metadata"]["name"]
                );
            }
        }
    }
}

/// One container of a service's Deployment, checked against what docs/deploy.md promises.
fn check_deployment(dir: &str, docs: &[Value], name: &str) {
    let d = find(docs, "Deployment", name);
    let pod = &d["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    let at = format!("k8s/{dir} Deployment {name}");
    assert_eq!(pod["serviceAccountName"], name, "{at}");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{at}");
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
        "{at}"
    );
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true, "{at}");
    assert_eq!(
        c["securityContext"]["allowPrivilegeEscalation"], false,
        "{at}"
    );
    assert_eq!(
        c["securityContext"]["capabilities"]["drop"],
        serde_json::json!(["ALL"]),
        "{at}"
    );
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/livez", "{at}");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz", "{at}");
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], "admin", "{at}");
    assert!(c["resources"]["requests"]["memory"].is_string(), "{at}");
    assert!(c["resources"]["limits"]["memory"].is_string(), "{at}");
    assert_eq!(
        c["image"],
        format!("ghcr.io/midplane/{name}:{VERSION}"),
        "{at}: the image scripts/images.sh builds"
    );
    // Every mounted Secret is mounted read-only.
    for m in c["volumeMounts"].as_array().expect("mounts") {
        let vol = pod["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .find(|v| v["name"] == m["name"])
            .unwrap_or_else(|| panic!("{at}: no volume {}", m["name"]));
        if vol.get("secret").is_some() || vol.get("configMap").is_some() {
            assert_eq!(m["readOnly"], true, "{at}: {}", m["name"]);
        }
    }
    for kind in [
        "Service",
        "PodDisruptionBudget",
        "ServiceAccount",
        "NetworkPolicy",
    ] {
        find(docs, kind, name);
    }
}

/// The environment a container starts with, Secrets standing in as placeholders.
fn env_of(docs: &[Value], name: &str) -> Vec<(String, String)> {
    let d = find(docs, "Deployment", name);
    d["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| {
            let value = e["value"].as_str().unwrap_or("from-a-secret-or-field");
            (
                e["name"].as_str().expect("name").to_string(),
                value.to_string(),
            )
        })
        .collect()
}

/// The service's own configuration type accepts the ConfigMap's file and the
/// Deployment's environment, with no variable ignored.
fn check_config(docs: &[Value], name: &str) {
    let cm = find(docs, "ConfigMap", &format!("{name}-config"));
    let text = cm["data"][format!("{name}.yaml")]
        .as_str()
        .unwrap_or_else(|| panic!("ConfigMap {name}-config has no {name}.yaml"));
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join(format!("{name}.yaml"));
    std::fs::write(&file, text).expect("write");
    let env = env_of(docs, name);
    let warnings = match name {
        "app-svc" => check::<midplane_app_svc::Config>(&file, env),
        "group-svc" => check::<midplane_group_svc::Config>(&file, env),
        "plugin-svc" => check::<midplane_plugin_svc::Config>(&file, env),
        "backup-svc" => check::<midplane_backup_svc::Config>(&file, env),
        "agent-gateway" => check::<midplane_agent_gateway::GatewayConfig>(&file, env),
        other => panic!("unknown service {other}"),
    };
    assert_eq!(
        warnings,
        Vec::<String>::new(),
        "{name}: environment the service ignores"
    );
}

fn check<T: serde::de::DeserializeOwned>(
    file: &std::path::Path,
    env: Vec<(String, String)>,
) -> Vec<String> {
    match midplane_runtime::config::load_with_warnings::<T>(Some(file), env) {
        Ok((_, warnings)) => warnings,
        Err(e) => panic!("{}: {e}", file.display()),
    }
}

#[test]
fn every_service_is_complete_hardened_and_configured_as_its_code_reads() {
    for dir in ["base", "overlays/dev", "overlays/production"] {
        let (_, docs) = render(dir);
        for name in SERVICES {
            check_deployment(dir, &docs, name);
            check_config(&docs, name);
        }
    }
}

#[test]
fn production_runs_two_replicas_with_mtls_and_per_caller_authorization() {
    let (_, docs) = render("overlays/production");
    for name in SERVICES {
        let d = find(&docs, "Deployment", name);
        assert_eq!(d["spec"]["replicas"], 2, "{name}");
        let env: BTreeMap<String, String> = env_of(&docs, name).into_iter().collect();
        let public = PUBLIC.contains(&name);
        assert_eq!(
            env.get("MIDPLANE_SERVER__AUTHORIZATION__MODE")
                .map(String::as_str),
            public.then_some("kubernetes"),
            "{name}"
        );
        assert_eq!(
            env.get("MIDPLANE_SERVER__TLS__CLIENT_CA_FILE")
                .map(String::as_str),
            public.then_some("/etc/midplane/tls/ca.crt"),
            "{name}"
        );
    }
    // The reviews need these two permissions, and only the public services get them.
    let binding = find(&docs, "ClusterRoleBinding", "midplane-authorizer");
    let subjects: Vec<&str> = binding["subjects"]
        .as_array()
        .expect("subjects")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(subjects, PUBLIC);
    let (_, dev) = render("overlays/dev");
    for name in SERVICES {
        assert_eq!(find(&dev, "Deployment", name)["spec"]["replicas"], 1);
    }
    // The dev overlay brings what the base only names.
    for secret in [
        "midplane-rabbitmq",
        "midplane-agent-token",
        "midplane-gateway-token",
    ] {
        find(&dev, "Secret", secret);
    }
    find(&dev, "Deployment", "rabbitmq");
}

#[test]
fn the_redis_plugin_configmap_is_what_midplane_plugin_pack_makes() {
    let plugin = midplane_plugin::Plugin::load_dir(&root().join("plugins/redis")).expect("plugin");
    let mut want = serde_json::to_value(plugin.to_config_map("midplane-system")).expect("json");
    if let Some(m) = want.as_object_mut() {
        m.insert("apiVersion".into(), "v1".into());
        m.insert("kind".into(), "ConfigMap".into());
    }
    let path = root().join("k8s/base/plugins/redis.yaml");
    let text = std::fs::read_to_string(&path).expect("read");
    let got: Value = serde_yaml::from_str(&text).expect("YAML");
    assert!(
        got == want,
        "{} is out of date: run `cargo run -p midplane-cli -- plugin pack plugins/redis --namespace midplane-system` and keep the two header lines",
        path.display()
    );
    // The agent image the plugin runs is one scripts/images.sh builds.
    let values = got["data"]["values.yaml"].as_str().expect("values.yaml");
    let values: Value = serde_yaml::from_str(values).expect("values");
    assert_eq!(
        values["agent"]["image"]["repository"],
        "ghcr.io/midplane/agent"
    );
    assert_eq!(values["agent"]["image"]["tag"], VERSION);
}
