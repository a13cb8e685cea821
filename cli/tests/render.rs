//! `midplane render`, `plugin lint` and `plugin pack` as a user runs them.

use std::path::PathBuf;
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn midplane(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_midplane"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run midplane")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn kinds(yaml: &str) -> Vec<String> {
    yaml.lines()
        .filter_map(|l| l.strip_prefix("kind: "))
        .map(str::to_string)
        .collect()
}

#[test]
fn renders_the_example_app() {
    let out = midplane(&["render", "-f", "examples/redis-app.yaml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let yaml = stdout(&out);
    let k = kinds(&yaml);
    let count = |kind: &str| k.iter().filter(|x| *x == kind).count();
    assert_eq!(count("Deployment"), 3);
    assert_eq!(count("PersistentVolumeClaim"), 3);
    assert_eq!(count("ConfigMap"), 1);
    assert_eq!(count("Service"), 3);
    assert!(yaml.contains("# Source: redis/templates/deployment.yaml"));
}

#[test]
fn output_passes_kubernetes_validate_strict() {
    let dir = tempfile::tempdir().expect("tempdir");
    for example in ["examples/redis-app.yaml", "examples/two-components.yaml"] {
        let out = midplane(&["render", "-f", example]);
        assert!(out.status.success(), "{}", stderr(&out));
        let file = dir.path().join("out.yaml");
        std::fs::write(&file, &out.stdout).expect("write");
        let v = Command::new("kubernetes-validate")
            .args(["--strict", "--no-warn", "-k", "1.33.0"])
            .arg(&file)
            .output()
            .unwrap_or_else(|e| {
                panic!("kubernetes-validate not runnable ({e}); install it with scripts/services/kubernetes-validate.sh")
            });
        let report = format!("{}{}", stdout(&v), stderr(&v));
        assert!(v.status.success(), "{example}: {report}");
        assert!(!report.contains("ERROR"), "{example}: {report}");
    }
}

#[test]
fn render_is_byte_identical_across_runs() {
    let a = midplane(&["render", "-f", "examples/two-components.yaml"]);
    let b = midplane(&["render", "-f", "examples/two-components.yaml"]);
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
}

#[test]
fn a_bad_app_names_every_field_and_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        r#"apiVersion: midplane.dev/v1alpha1
kind: App
metadata: {name: shop}
spec:
  components:
  - name: cache
    plugin: redis
    replicas: -2
    service: {type: Ingress}
    parameters: {appendfilename: other.aof}
  - name: search
    plugin: elasticsearch
"#,
    )
    .expect("write");
    let previous = dir.path().join("previous.yaml");
    std::fs::write(
        &previous,
        "apiVersion: midplane.dev/v1alpha1\nkind: App\nmetadata: {name: shop}\nspec:\n  components:\n  - name: cache\n    plugin: redis\n",
    )
    .expect("write");
    let out = midplane(&[
        "render",
        "-f",
        bad.to_str().expect("utf8"),
        "--previous",
        previous.to_str().expect("utf8"),
    ]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "nothing printed for an invalid App");
    let err = stderr(&out);
    for want in [
        "spec.components[0].replicas: must be at least 1",
        "spec.components[0].service.type: unknown service type \"Ingress\"",
        "spec.components[0].parameters.appendfilename: is immutable",
        "spec.components[1].plugin: unknown plugin \"elasticsearch\"",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
}

#[test]
fn malformed_yaml_names_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "apiVersion: midplane.dev/v1alpha1\nkind: App\nmetadata: {name: x}\nspec:\n  components: 7\n").expect("write");
    let out = midplane(&["render", "-f", bad.to_str().expect("utf8")]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("bad.yaml:5"), "{err}");
}

fn copy_redis_plugin(dst: &std::path::Path) {
    let src = root().join("plugins/redis");
    std::fs::create_dir_all(dst.join("templates")).expect("mkdir");
    for f in ["plugin.yaml", "values.yaml"] {
        std::fs::copy(src.join(f), dst.join(f)).expect("copy");
    }
    for e in std::fs::read_dir(src.join("templates")).expect("read") {
        let p = e.expect("entry").path();
        std::fs::copy(&p, dst.join("templates").join(p.file_name().expect("name"))).expect("copy");
    }
}

#[test]
fn a_broken_plugin_template_names_template_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugin = dir.path().join("redis");
    copy_redis_plugin(&plugin);
    let pvc = plugin.join("templates/pvc.yaml");
    let text = std::fs::read_to_string(&pvc).expect("read");
    std::fs::write(
        &pvc,
        text.replace(
            "{{ .Values.storage.size }}",
            "{{ .Values.storage.size | nosuchfunc }}",
        ),
    )
    .expect("write");

    let lint = midplane(&["plugin", "lint", plugin.to_str().expect("utf8")]);
    assert!(!lint.status.success());
    let err = stderr(&lint);
    assert!(err.contains("redis/templates/pvc.yaml:16"), "{err}");
    assert!(err.contains("nosuchfunc"), "{err}");

    let render = midplane(&[
        "render",
        "-f",
        "examples/redis-app.yaml",
        "--plugins",
        dir.path().to_str().expect("utf8"),
    ]);
    assert!(!render.status.success());
    assert!(
        stderr(&render).contains("redis/templates/pvc.yaml:16"),
        "{}",
        stderr(&render)
    );
}

#[test]
fn an_execution_error_names_template_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugin = dir.path().join("redis");
    copy_redis_plugin(&plugin);
    let cm = plugin.join("templates/configmap.yaml");
    let text = std::fs::read_to_string(&cm).expect("read");
    std::fs::write(
        &cm,
        text.replace(
            "{{ include \"redis.configMap\" . }}",
            "{{ required \"a name is required\" .Values.nothing }}",
        ),
    )
    .expect("write");
    let render = midplane(&[
        "render",
        "-f",
        "examples/redis-app.yaml",
        "--plugins",
        dir.path().to_str().expect("utf8"),
    ]);
    assert!(!render.status.success());
    let err = stderr(&render);
    assert!(err.contains("redis/templates/configmap.yaml:4"), "{err}");
    assert!(err.contains("a name is required"), "{err}");
}

#[test]
fn plugin_lint_and_pack() {
    let lint = midplane(&["plugin", "lint", "plugins/redis"]);
    assert!(lint.status.success(), "{}", stderr(&lint));
    assert!(stdout(&lint).contains("plugin redis@0.1.0 is valid"));

    let pack = midplane(&["plugin", "pack", "plugins/redis", "--namespace", "ops"]);
    assert!(pack.status.success(), "{}", stderr(&pack));
    let cm: serde_json::Value = serde_yaml::from_slice(&pack.stdout).expect("yaml");
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(cm["metadata"]["namespace"], "ops");
    assert_eq!(cm["metadata"]["labels"]["midplane.dev/plugin"], "redis");
    assert!(cm["data"]["templates.deployment.yaml"].is_string());
}
