//! `midplane apply` refuses an App whose own structure is wrong before it
//! talks to any cluster, naming every bad field.

use std::process::Command;

#[test]
fn an_invalid_app_is_refused_with_its_field_paths() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "apiVersion: midplane.dev/v1alpha1\nkind: App\nmetadata: {name: shop}\nspec:\n  components:\n    - {name: cache, plugin: redis, replicas: 0}\n    - {name: Bad_Name, plugin: redis}\n",
    )
    .expect("write App");
    // No cluster: a kubeconfig that points nowhere proves none was needed.
    let out = Command::new(env!("CARGO_BIN_EXE_midplane"))
        .args(["apply", "-f"])
        .arg(&file)
        .args(["--kubeconfig", "/nonexistent/kubeconfig"])
        .output()
        .expect("run midplane");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("spec.components[0].replicas"), "{err}");
    assert!(err.contains("spec.components[1].name"), "{err}");
    assert!(
        !err.contains("kubeconfig"),
        "refused before any cluster: {err}"
    );
}
