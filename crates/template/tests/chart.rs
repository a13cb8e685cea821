//! `chart::render_chart` against `helm template` output (Helm 4.1.4) for tests/charts/redis;
//! the differential suite (tests/differential) compares against the real binary on every run.
//! Regenerate a golden with MIDPLANE_UPDATE_GOLDEN=1 and review the diff by hand.

use std::path::{Path, PathBuf};

use midplane_template::chart::{RenderOptions, render_chart};

fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/charts/redis")
}

fn check_golden(name: &str, opts: &RenderOptions) {
    let out = render_chart(&chart_dir(), opts).unwrap_or_else(|e| panic!("render {name}: {e}"));
    let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/charts")
        .join(name);
    if std::env::var_os("MIDPLANE_UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &out).expect("write golden");
    }
    let want = std::fs::read_to_string(&golden)
        .unwrap_or_else(|e| panic!("read {}: {e}", golden.display()));
    assert_eq!(out, want, "output of {name} differs from the golden file");
}

fn opts() -> RenderOptions {
    RenderOptions {
        release_name: "cache".into(),
        namespace: "apps".into(),
        ..Default::default()
    }
}

#[test]
fn default_render_matches_helm() {
    check_golden("redis.default.golden", &opts());
}

#[test]
fn flags_render_matches_helm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let values = dir.path().join("prod.yaml");
    std::fs::write(&values, "replicaCount: 3\npodAnnotations:\n  team: data\npersistence:\n  enabled: true\nextraEnv:\n  TZ: null\n")
        .expect("write values");
    let o = RenderOptions {
        values_files: vec![values],
        set: vec![
            "image.tag=7.4.0".into(),
            "service.port=6380".into(),
            "nodeSelector.disk=ssd".into(),
        ],
        kube_version: Some("1.18.3".into()),
        api_versions: vec!["monitoring.coreos.com/v1".into()],
        include_crds: true,
        skip_tests: true,
        ..opts()
    };
    check_golden("redis.flags.golden", &o);
}

#[test]
fn show_only_picks_one_template() {
    let o = RenderOptions {
        show_only: vec!["templates/service.yaml".into()],
        ..opts()
    };
    let out = render_chart(&chart_dir(), &o).expect("render");
    assert!(
        out.starts_with(
            "---\n# Source: redis/templates/service.yaml\napiVersion: v1\nkind: Service\n"
        ),
        "{out}"
    );
    assert_eq!(out.matches("# Source:").count(), 1);
    let missing = RenderOptions {
        show_only: vec!["templates/nope.yaml".into()],
        ..opts()
    };
    let err = render_chart(&chart_dir(), &missing).expect_err("missing template must fail");
    assert_eq!(
        err.to_string(),
        "could not find template templates/nope.yaml in chart"
    );
}

#[test]
fn name_template_sets_release_name() {
    let o = RenderOptions {
        name_template: Some("{{ printf \"%s-%s\" \"gen\" \"x\" }}".into()),
        ..opts()
    };
    let out = render_chart(&chart_dir(), &o).expect("render");
    assert!(out.contains("app.kubernetes.io/instance: gen-x\n"), "{out}");
}

#[test]
fn required_error_reads_like_helm() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("templates")).expect("mkdir");
    std::fs::write(
        dir.path().join("Chart.yaml"),
        "apiVersion: v2\nname: req\nversion: 0.1.0\n",
    )
    .expect("chart");
    std::fs::write(
        dir.path().join("templates/cm.yaml"),
        "a: 1\nb: {{ required \"b is required\" .Values.b }}\n",
    )
    .expect("tpl");
    let err = render_chart(dir.path(), &RenderOptions::default()).expect_err("required must fail");
    assert_eq!(
        err.to_string(),
        "execution error at (req/templates/cm.yaml:2:6): b is required"
    );
    std::fs::write(dir.path().join("templates/cm.yaml"), "a: {{ nosuch 1 }}\n").expect("tpl");
    let err = render_chart(dir.path(), &RenderOptions::default()).expect_err("parse must fail");
    assert_eq!(
        err.to_string(),
        "parse error at (req/templates/cm.yaml:1): function \"nosuch\" not defined"
    );
    std::fs::write(
        dir.path().join("templates/cm.yaml"),
        "a: {{ .Values.x.y }}\n",
    )
    .expect("tpl");
    let err = render_chart(dir.path(), &RenderOptions::default()).expect_err("nil must fail");
    assert_eq!(
        err.to_string(),
        "req/templates/cm.yaml:1:13\n  executing \"req/templates/cm.yaml\" at <.Values.x.y>:\n    nil pointer evaluating interface {}.y"
    );
}

fn render_app(opts: &RenderOptions) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/charts/app");
    render_chart(&dir, opts).unwrap_or_else(|e| panic!("render app: {e}"))
}

#[test]
fn subcharts_render_with_alias_globals_and_conditions() {
    let out = render_app(&opts());
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/charts/app.default.golden");
    if std::env::var_os("MIDPLANE_UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &out).expect("write golden");
    }
    let want = std::fs::read_to_string(&golden).expect("read golden");
    assert_eq!(out, want);
    // the disabled subchart (condition backup.enabled=false) is absent
    assert!(!out.contains("CronJob"), "{out}");
}

#[test]
fn subchart_condition_and_tags_follow_values() {
    let on = RenderOptions {
        set: vec!["backup.enabled=true".into()],
        ..opts()
    };
    assert!(render_app(&on).contains(
        "# Source: app/charts/backup/templates/job.yaml\napiVersion: batch/v1\nkind: CronJob"
    ));
    // a tag does not override a condition that resolves
    let tag = RenderOptions {
        set: vec!["tags.ops=true".into()],
        ..opts()
    };
    assert!(!render_app(&tag).contains("CronJob"));
    let off = RenderOptions {
        set: vec!["metrics.enabled=false".into()],
        ..opts()
    };
    assert!(!render_app(&off).contains("kind: Deployment"));
}
