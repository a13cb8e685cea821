//! `midplane template` on a plain Helm chart prints what the library renders
//! for the same options (the library's goldens are checked against Helm's
//! documented behaviour in crates/template/tests).

use std::path::PathBuf;
use std::process::Command;

fn charts() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crates/template/tests/charts")
}

#[test]
fn template_prints_the_golden_output() {
    let out = Command::new(env!("CARGO_BIN_EXE_midplane"))
        .args(["template"])
        .arg(charts().join("redis"))
        .args(["--release-name", "cache", "--namespace", "apps"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = std::fs::read_to_string(charts().join("redis.default.golden")).expect("golden");
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
}

#[test]
fn template_errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chart = dir.path().join("bad");
    std::fs::create_dir_all(chart.join("templates")).expect("mkdir");
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: bad\nversion: 0.1.0\n",
    )
    .expect("write");
    std::fs::write(chart.join("values.yaml"), "").expect("write");
    std::fs::write(
        chart.join("templates/cm.yaml"),
        "kind: ConfigMap\nmetadata:\n  name: {{ required \"name is required\" .Values.name }}\n",
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_midplane"))
        .args(["template"])
        .arg(&chart)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad/templates/cm.yaml:3"), "{err}");
    assert!(err.contains("name is required"), "{err}");
}
