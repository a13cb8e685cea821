//! The monitoring kit in `k8s/monitoring/` (docs/monitoring.md) checked with
//! the tools operators run it with: promtool (rule syntax, PromQL of every
//! dashboard query, the alert unit tests), amtool (the Alertmanager example),
//! and the Prometheus Operator's own schemas for its objects. That every
//! metric a rule or panel reads is exported is checked on live processes in
//! `monitoring_scrape.rs`.
//!
//! promtool and amtool come from scripts/services/promtool.sh; the operator
//! schemas from scripts/services/prometheus-operator.sh.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use midplane_e2e::monitoring::{
    DASHBOARDS, alerts, dashboard, dashboard_queries, dir as monitoring, root, rule_groups, yaml,
};
use serde_yaml::Value as Yaml;

/// Runs a tool from scripts/services/promtool.sh; panics with its output unless it succeeds.
fn run(tool: &str, args: &[&str], dir: &Path) -> String {
    let out = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{tool} ({e}): install it with scripts/services/promtool.sh"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{tool} {args:?} failed:\n{text}");
    text
}

fn alert_names() -> BTreeSet<String> {
    alerts()
        .iter()
        .map(|a| a["alert"].as_str().expect("alert name").to_string())
        .collect()
}

#[test]
fn rules_pass_promtool_and_their_unit_tests() {
    let dir = monitoring().join("rules");
    let checked = run("promtool", &["check", "rules", "midplane.rules.yaml"], &dir);
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tested = run(
        "promtool",
        &["test", "rules", "midplane.rules.test.yaml"],
        &dir,
    );
    assert!(tested.contains("SUCCESS"), "{tested}");
}

#[test]
fn every_alert_has_a_firing_and_a_silent_unit_test() {
    let tests = yaml(&monitoring().join("rules/midplane.rules.test.yaml"));
    let mut fires = BTreeSet::new();
    let mut silent = BTreeSet::new();
    for t in tests["tests"].as_sequence().expect("tests") {
        for check in t["alert_rule_test"].as_sequence().expect("alert_rule_test") {
            let name = check["alertname"].as_str().expect("alertname").to_string();
            let expected = check["exp_alerts"].as_sequence().map_or(0, Vec::len);
            if expected > 0 {
                fires.insert(name);
            } else {
                silent.insert(name);
            }
        }
    }
    for name in alert_names() {
        assert!(fires.contains(&name), "no unit test shows {name} firing");
        assert!(silent.contains(&name), "no unit test shows {name} silent");
    }
}

#[test]
fn alerts_carry_severity_runbook_and_documentation() {
    let doc =
        std::fs::read_to_string(root().join("docs/monitoring.md")).expect("docs/monitoring.md");
    for a in alerts() {
        let name = a["alert"].as_str().expect("name");
        let severity = a["labels"]["severity"].as_str().unwrap_or_default();
        assert!(
            ["critical", "warning", "info"].contains(&severity),
            "{name}: severity {severity:?}"
        );
        for key in ["summary", "description", "runbook"] {
            let text = a["annotations"][key].as_str().unwrap_or_default();
            assert!(text.len() > 10, "{name}: annotation {key} missing");
        }
        assert!(
            doc.contains(name),
            "docs/monitoring.md does not explain {name}"
        );
    }
}

/// The PrometheusRule carries exactly the plain rule file's groups.
#[test]
fn prometheus_rule_matches_the_rule_file() {
    let path = monitoring().join("prometheusrule.yaml");
    let header = "# Generated from rules/midplane.rules.yaml by\n\
                  # `MIDPLANE_BLESS=1 cargo test -p midplane-e2e --test monitoring`; edit that file.\n";
    let mut object: BTreeMap<&str, Yaml> = BTreeMap::new();
    object.insert("apiVersion", "monitoring.coreos.com/v1".into());
    object.insert("kind", "PrometheusRule".into());
    object.insert(
        "metadata",
        serde_yaml::from_str(
            "{name: midplane, namespace: midplane-system, labels: {app.kubernetes.io/part-of: midplane}}",
        )
        .expect("metadata"),
    );
    let mut spec = serde_yaml::Mapping::new();
    spec.insert("groups".into(), Yaml::Sequence(rule_groups()));
    object.insert("spec", Yaml::Mapping(spec));
    let wanted = format!("{header}{}", serde_yaml::to_string(&object).expect("yaml"));
    if std::env::var("MIDPLANE_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &wanted).expect("write");
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == wanted,
        "{} is out of date: run MIDPLANE_BLESS=1 cargo test -p midplane-e2e --test monitoring",
        path.display()
    );
}

#[test]
fn alertmanager_example_is_valid_and_inhibits_real_alerts() {
    let dir = monitoring().join("alertmanager");
    run("amtool", &["check-config", "alertmanager.yaml"], &dir);
    // Every alert name an inhibition or route matches on exists.
    let text = std::fs::read_to_string(dir.join("alertmanager.yaml")).expect("config");
    let names = alert_names();
    let mut referenced = 0;
    for word in text.split(|c: char| !c.is_ascii_alphanumeric()) {
        if word.starts_with("Midplane") && word.len() > "Midplane".len() {
            referenced += 1;
            assert!(
                names.contains(word),
                "alertmanager.yaml names {word}, which is no alert"
            );
        }
    }
    assert!(referenced > 5, "the example inhibits nothing");
}

fn fill_grafana_variables(expr: &str) -> String {
    expr.replace("$__rate_interval", "5m")
        .replace("$__range", "1h")
        .replace("${datasource}", "x")
        .replace("$namespace", "ns")
        .replace("$service", "svc")
        .replace("$app", "app")
        .replace("$group", "grp")
}

#[test]
fn dashboards_are_grafana_json_with_queries_promtool_parses() {
    for name in DASHBOARDS {
        let board = dashboard(name);
        assert!(
            board["schemaVersion"].as_i64().unwrap_or(0) >= 36,
            "{name}: schemaVersion"
        );
        assert!(
            board["uid"]
                .as_str()
                .is_some_and(|u| u.starts_with("midplane-"))
        );
        let vars: Vec<&str> = board["templating"]["list"]
            .as_array()
            .expect("templating")
            .iter()
            .filter_map(|v| v["name"].as_str())
            .collect();
        assert!(
            vars.contains(&"datasource"),
            "{name}: no datasource variable"
        );
        assert!(vars.contains(&"namespace"), "{name}: no namespace variable");
        if name == "group" {
            assert!(vars.contains(&"app") && vars.contains(&"group"), "{vars:?}");
        }
        let mut ids = BTreeSet::new();
        for p in board["panels"].as_array().expect("panels") {
            let id = p["id"].as_i64().expect("panel id");
            assert!(ids.insert(id), "{name}: panel id {id} twice");
            if p["type"] != "row" {
                assert_eq!(
                    p["datasource"]["uid"], "${datasource}",
                    "{name}: {}",
                    p["title"]
                );
                assert!(!p["targets"].as_array().expect("targets").is_empty());
            }
        }
    }
    // promtool parses PromQL with Prometheus' own parser: every query becomes
    // a recording rule of a throw-away rule file.
    let dir = tempfile_dir();
    let rules: Vec<Yaml> = dashboard_queries()
        .iter()
        .enumerate()
        .map(|(i, (_, expr))| {
            let mut m = serde_yaml::Mapping::new();
            m.insert("record".into(), format!("dashboard:query_{i}").into());
            m.insert("expr".into(), fill_grafana_variables(expr).into());
            Yaml::Mapping(m)
        })
        .collect();
    let count = rules.len();
    let file: Yaml =
        serde_yaml::from_str("{groups: [{name: dashboards, rules: []}]}").expect("yaml");
    let mut file = file;
    file["groups"][0]["rules"] = Yaml::Sequence(rules);
    std::fs::write(
        dir.join("dashboards.rules.yaml"),
        serde_yaml::to_string(&file).expect("yaml"),
    )
    .expect("write");
    let checked = run(
        "promtool",
        &["check", "rules", "dashboards.rules.yaml"],
        &dir,
    );
    assert!(
        checked.contains(&format!("{count} rules found")),
        "{checked}"
    );
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("midplane-monitoring-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The Prometheus Operator objects against the operator's own schemas: the
/// generated validators of @kubernetes-models/prometheus-operator (types,
/// enums, required fields, patterns) and TypeScript's excess-property check on
/// the same objects as literals of the CRDs' types (no field the CRD does not
/// define), both from scripts/services/prometheus-operator.sh.
#[test]
fn operator_objects_validate_against_the_operator_schemas() {
    let tools =
        std::env::var("MIDPLANE_TOOLS").unwrap_or_else(|_| "/var/tmp/midplane-tools".into());
    let base = PathBuf::from(tools).join("prometheus-operator");
    assert!(
        base.join("node_modules/typescript").is_dir(),
        "{} is missing: run scripts/services/prometheus-operator.sh",
        base.display()
    );
    // Inside the install so that imports resolve to its node_modules.
    let work = base.join(format!("check-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("work dir");
    let mut source = String::new();
    for (count, (file, kind)) in [
        ("servicemonitor.yaml", "ServiceMonitor"),
        ("podmonitor.yaml", "PodMonitor"),
        ("prometheusrule.yaml", "PrometheusRule"),
    ]
    .into_iter()
    .enumerate()
    {
        source.push_str(&format!(
            "import {{ {kind}, I{kind} }} from \"@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/{kind}\";\n"
        ));
        let object = yaml(&monitoring().join(file));
        assert_eq!(object["kind"].as_str(), Some(kind), "{file}");
        let json = serde_json::to_string_pretty(&object).expect("json");
        source.push_str(&format!(
            "const o{count}: I{kind} = {json};\n\
             try {{ new {kind}(o{count}).validate(); }} catch (e) {{ console.error(\"{file}: \" + (e as Error).message); process.exitCode = 1; }}\n"
        ));
    }
    source.push_str("console.log(\"validated\");\n");
    std::fs::write(work.join("check.mts"), source).expect("write");
    let tsc = base.join("node_modules/typescript/bin/tsc");
    let out = Command::new("node")
        .arg(&tsc)
        .args([
            "--strict",
            "--target",
            "es2022",
            "--module",
            "nodenext",
            "--moduleResolution",
            "nodenext",
            "--skipLibCheck",
            "check.mts",
        ])
        .current_dir(&work)
        .output()
        .expect("node runs tsc");
    let compiled = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "a field the operator's CRDs do not define, or of the wrong type:\n{compiled}"
    );
    let out = Command::new("node")
        .arg("check.mjs")
        .current_dir(&work)
        .output()
        .expect("node");
    let _ = std::fs::remove_dir_all(&work);
    assert!(
        out.status.success(),
        "operator schema validation failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("validated"));
}

/// The kustomization renders: dashboards and the kube-state-metrics config
/// become ConfigMaps Grafana's sidecar and kube-state-metrics pick up.
#[test]
fn kustomization_renders_with_kubectl() {
    let out = Command::new("kubectl")
        .args(["kustomize"])
        .arg(monitoring())
        .output()
        .unwrap_or_else(|e| panic!("kubectl ({e}): install it with scripts/services/kubectl.sh"));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs: Vec<Yaml> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).expect("yaml"))
        .collect();
    let kinds: BTreeSet<String> = docs
        .iter()
        .map(|d| {
            format!(
                "{}/{}",
                d["kind"].as_str().unwrap_or_default(),
                d["metadata"]["name"].as_str().unwrap_or_default()
            )
        })
        .collect();
    for want in [
        "ServiceMonitor/midplane-services",
        "PodMonitor/midplane-middleware",
        "PrometheusRule/midplane",
        "ConfigMap/midplane-dashboards",
        "ConfigMap/midplane-kube-state-metrics",
    ] {
        assert!(kinds.contains(want), "{want} missing from {kinds:?}");
    }
    let dashboards = docs
        .iter()
        .find(|d| d["metadata"]["name"] == "midplane-dashboards")
        .expect("dashboards");
    assert_eq!(dashboards["metadata"]["labels"]["grafana_dashboard"], "1");
    for name in DASHBOARDS {
        assert!(
            dashboards["data"].get(format!("{name}.json")).is_some(),
            "{name}.json"
        );
    }
}
