//! charts/midplane against real Helm (3.17 and 4.1, installed by scripts/services/helm.sh):
//! `helm lint --strict` passes, `midplane template` prints byte for byte what `helm
//! template` prints, the output passes `kubernetes-validate --strict` for Kubernetes 1.33,
//! and the chart makes the same objects as the kustomize base (default values) and the
//! production overlay (values-production.yaml), less Helm's own labels.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `helm3` or `helm4` from PATH or the project's tools directory.
fn helm(name: &str) -> PathBuf {
    let tools =
        std::env::var("MIDPLANE_TOOLS").unwrap_or_else(|_| "/var/tmp/midplane-tools".into());
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push(Path::new(&tools).join("bin"));
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} not on PATH nor in {tools}/bin: run scripts/services/helm.sh")
        })
}

/// Runs `program args` in the repository root with a private Helm home; stdout on success.
fn run(program: &Path, args: &[&str]) -> String {
    let home = tempfile::tempdir().expect("helm home");
    let out = Command::new(program)
        .args(args)
        .current_dir(root())
        .env("HELM_CONFIG_HOME", home.path().join("config"))
        .env("HELM_CACHE_HOME", home.path().join("cache"))
        .env("HELM_DATA_HOME", home.path().join("data"))
        .env("KUBECONFIG", home.path().join("kubeconfig"))
        .env_remove("HELM_NAMESPACE")
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} {args:?}: {}{}",
        program.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const TEMPLATE: [&str; 6] = [
    "template",
    "midplane",
    "charts/midplane",
    "-n",
    "midplane-system",
    "--include-crds",
];

fn template_args(production: bool) -> Vec<&'static str> {
    let mut args = TEMPLATE.to_vec();
    if production {
        args.extend(["-f", "charts/midplane/values-production.yaml"]);
    }
    args
}

#[test]
fn helm_lint_passes_with_both_helms() {
    for h in ["helm3", "helm4"] {
        let h = helm(h);
        run(&h, &["lint", "--strict", "charts/midplane"]);
        run(
            &h,
            &[
                "lint",
                "--strict",
                "charts/midplane",
                "-f",
                "charts/midplane/values-production.yaml",
            ],
        );
    }
}

#[test]
fn midplane_template_prints_what_helm_template_prints() {
    let midplane = PathBuf::from(env!("CARGO_BIN_EXE_midplane"));
    for (h, major) in [("helm3", "3"), ("helm4", "4")] {
        for production in [false, true] {
            let args = template_args(production);
            let want = run(&helm(h), &args);
            let mut ours = args.clone();
            ours.extend(["--helm", major]);
            let got = run(&midplane, &ours);
            assert!(
                got == want,
                "midplane template differs from {h} (production values: {production}):\n{}",
                first_difference(&want, &got)
            );
        }
    }
}

fn first_difference(want: &str, got: &str) -> String {
    for (i, (w, g)) in want.lines().zip(got.lines()).enumerate() {
        if w != g {
            return format!("line {}: helm {w:?}, midplane {g:?}", i + 1);
        }
    }
    format!(
        "helm prints {} lines, midplane {}",
        want.lines().count(),
        got.lines().count()
    )
}

fn documents(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| <Value as serde::Deserialize>::deserialize(d).expect("YAML document"))
        .filter(|v| !v.is_null())
        .collect()
}

/// Objects by (apiVersion, kind, namespace, name), without what only Helm adds: its three
/// labels and the config checksum that rolls Pods when the ConfigMap changes (kustomize
/// users get that from `kubectl rollout restart`, docs/deploy.md).
fn objects(docs: Vec<Value>) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for mut d in docs {
        if d["kind"] == "Namespace" {
            continue;
        }
        if d["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
            && let Some(l) = d["metadata"]["labels"].as_object_mut()
        {
            for k in [
                "app.kubernetes.io/instance",
                "app.kubernetes.io/managed-by",
                "helm.sh/chart",
            ] {
                l.remove(k);
            }
        }
        // get_mut, not indexing: IndexMut would add the keys it does not find.
        if let Some(template) = d
            .get_mut("spec")
            .and_then(|s| s.get_mut("template"))
            .and_then(|t| t.get_mut("metadata"))
            .and_then(Value::as_object_mut)
            && let Some(a) = template
                .get_mut("annotations")
                .and_then(Value::as_object_mut)
        {
            a.remove("checksum/config");
            if a.is_empty() {
                template.remove("annotations");
            }
        }
        let key = format!(
            "{} {} {}/{}",
            d["apiVersion"].as_str().unwrap_or_default(),
            d["kind"].as_str().unwrap_or_default(),
            d["metadata"]["namespace"].as_str().unwrap_or_default(),
            d["metadata"]["name"].as_str().unwrap_or_default()
        );
        numbers_canonical(&mut d);
        assert!(out.insert(key.clone(), d).is_none(), "{key} twice");
    }
    out
}

/// Whole floats as integers: kustomize prints the CRDs' `minimum: 1.0` as `1`, Helm keeps it.
fn numbers_canonical(v: &mut Value) {
    match v {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && n.is_f64()) {
                #[allow(clippy::cast_possible_truncation)]
                let i = f as i64;
                *v = Value::from(i);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(numbers_canonical),
        Value::Object(o) => o.values_mut().for_each(numbers_canonical),
        _ => {}
    }
}

fn kustomize(dir: &str) -> String {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(root().join("k8s").join(dir))
        .output()
        .unwrap_or_else(|e| {
            panic!("kubectl not runnable ({e}); install it with scripts/services/kubectl.sh")
        });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_chart_makes_the_objects_kustomize_makes() {
    for (production, dir) in [(false, "base"), (true, "overlays/production")] {
        let chart = objects(documents(&run(&helm("helm4"), &template_args(production))));
        let kustomized = objects(documents(&kustomize(dir)));
        let only_chart: Vec<_> = chart
            .keys()
            .filter(|k| !kustomized.contains_key(*k))
            .collect();
        let only_k: Vec<_> = kustomized
            .keys()
            .filter(|k| !chart.contains_key(*k))
            .collect();
        assert!(
            only_chart.is_empty() && only_k.is_empty(),
            "{dir}: only in the chart {only_chart:?}, only in k8s/ {only_k:?}"
        );
        for (k, v) in &chart {
            assert!(
                *v == kustomized[k],
                "{dir}: {k} differs:\nchart {}\nk8s/  {}",
                serde_json::to_string_pretty(v).unwrap_or_default(),
                serde_json::to_string_pretty(&kustomized[k]).unwrap_or_default()
            );
        }
    }
}

#[test]
fn the_chart_output_passes_strict_schema_validation() {
    for production in [false, true] {
        let text = run(&helm("helm4"), &template_args(production));
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), text).expect("write");
        let v = Command::new("kubernetes-validate")
            .args(["--strict", "-k", "1.33", "--quiet", "--no-warn"])
            .arg(file.path())
            .output()
            .unwrap_or_else(|e| panic!("kubernetes-validate not runnable ({e}); install it with scripts/services/kubernetes-validate.sh"));
        assert!(
            v.status.success(),
            "production values {production}: {}{}",
            String::from_utf8_lossy(&v.stdout),
            String::from_utf8_lossy(&v.stderr)
        );
    }
}

#[test]
fn the_chart_copies_of_the_crds_and_the_plugin_are_current() {
    let mut pairs = vec![(
        "k8s/base/plugins/redis.yaml".to_string(),
        "charts/midplane/files/plugins/redis.yaml".to_string(),
    )];
    for (source, copy) in [
        ("rules/midplane.rules.yaml", "midplane.rules.yaml"),
        ("kube-state-metrics/midplane-crs.yaml", "midplane-crs.yaml"),
        ("dashboards/suite.json", "dashboards/suite.json"),
        ("dashboards/group.json", "dashboards/group.json"),
        ("dashboards/backups.json", "dashboards/backups.json"),
    ] {
        pairs.push((
            format!("k8s/monitoring/{source}"),
            format!("charts/midplane/files/monitoring/{copy}"),
        ));
    }
    for crd in ["apps", "components", "groups", "backups"] {
        pairs.push((
            format!("k8s/crds/{crd}.midplane.dev.yaml"),
            format!("charts/midplane/crds/{crd}.midplane.dev.yaml"),
        ));
    }
    for (source, copy) in pairs {
        let a = std::fs::read_to_string(root().join(&source)).expect("source");
        let b = std::fs::read_to_string(root().join(&copy)).expect("copy");
        assert!(a == b, "{copy} is out of date: cp {source} {copy}");
    }
}

/// `monitoring.enabled=true` installs k8s/monitoring's objects (docs/monitoring.md), the
/// same with both Helms and with `midplane template`.
#[test]
fn the_chart_monitoring_objects_are_k8s_monitoring() {
    let mut args = template_args(false);
    args.extend(["--set", "monitoring.enabled=true"]);
    let kit = objects(documents(&kustomize("monitoring")));
    assert_eq!(kit.len(), 5, "{:?}", kit.keys().collect::<Vec<_>>());
    let midplane = PathBuf::from(env!("CARGO_BIN_EXE_midplane"));
    for (h, major) in [("helm3", "3"), ("helm4", "4")] {
        let text = run(&helm(h), &args);
        let chart = objects(documents(&text));
        for (k, v) in &kit {
            assert!(
                chart.get(k) == Some(v),
                "{h}: {k} differs from k8s/monitoring:\nchart {}\nk8s/  {}",
                serde_json::to_string_pretty(&chart.get(k)).unwrap_or_default(),
                serde_json::to_string_pretty(v).unwrap_or_default()
            );
        }
        let mut ours = args.clone();
        ours.extend(["--helm", major]);
        let got = run(&midplane, &ours);
        assert!(
            got == text,
            "midplane template differs from {h} with monitoring on:\n{}",
            first_difference(&text, &got)
        );
    }
    // Off by default.
    let off = objects(documents(&run(&helm("helm4"), &template_args(false))));
    assert!(kit.keys().all(|k| !off.contains_key(k)));
}
