//! Contract checks of the protos with buf, as CI runs them: `buf lint` with
//! proto/buf.yaml, and `buf breaking` against the last released protos
//! (proto/released/). A breaking change made to a copy must fail them.
//! buf comes from scripts/services/buf.sh (npm package @bufbuild/buf).

use std::path::{Path, PathBuf};
use std::process::Command;

fn proto_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto")
}

fn buf() -> PathBuf {
    let tools =
        std::env::var("MIDPLANE_TOOLS").unwrap_or_else(|_| "/var/tmp/midplane-tools".into());
    let bin = Path::new(&tools).join("bin/buf");
    assert!(
        bin.is_file(),
        "{} not found: run scripts/services/buf.sh (or set MIDPLANE_TOOLS)",
        bin.display()
    );
    bin
}

/// Runs buf in `dir`; (success, stdout and stderr).
fn run(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(buf())
        .args(args)
        .current_dir(dir)
        // buf caches under $HOME; keep it out of the user's.
        .env(
            "BUF_CACHE_DIR",
            std::env::temp_dir().join("midplane-buf-cache"),
        )
        .output()
        .unwrap_or_else(|e| panic!("running buf {args:?}: {e}"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn copy_dir(from: &Path, to: &Path, skip: &str) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let name = entry.file_name();
        if name == skip {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if src.is_dir() {
            copy_dir(&src, &dst, skip);
        } else {
            std::fs::copy(&src, &dst).expect("copy");
        }
    }
}

/// A workspace in a temporary directory: `current/` (the protos with
/// buf.yaml) and `released/` (the snapshot), so buf sees two modules.
fn workspace() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_dir(&proto_dir(), &tmp.path().join("current"), "released");
    copy_dir(
        &proto_dir().join("released"),
        &tmp.path().join("released"),
        "README.md",
    );
    tmp
}

fn edit(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).expect("read");
    assert!(text.contains(from), "{} lacks {from:?}", file.display());
    std::fs::write(file, text.replacen(from, to, 1)).expect("write");
}

#[test]
fn lint_passes_and_nothing_breaks_the_released_protos() {
    let tmp = workspace();
    let (ok, out) = run(&tmp.path().join("current"), &["lint"]);
    assert!(ok, "buf lint:\n{out}");
    let (ok, out) = run(
        &tmp.path().join("current"),
        &["breaking", "--against", "../released"],
    );
    assert!(ok, "buf breaking against proto/released:\n{out}");
}

#[test]
fn a_breaking_change_to_a_copy_fails_the_checks() {
    // A removed field.
    let tmp = workspace();
    let current = tmp.path().join("current");
    edit(
        &current.join("midplane/group/v1/group.proto"),
        "  string plugin = 6;\n",
        "",
    );
    let (ok, out) = run(&current, &["breaking", "--against", "../released"]);
    assert!(!ok, "removing Group.plugin must break:\n{out}");
    assert!(out.contains("plugin") && out.contains("deleted"), "{out}");

    // A retyped field.
    let tmp = workspace();
    let current = tmp.path().join("current");
    edit(
        &current.join("midplane/app/v1/app.proto"),
        "  optional int32 replicas = 4;",
        "  optional string replicas = 4;",
    );
    let (ok, out) = run(&current, &["breaking", "--against", "../released"]);
    assert!(!ok, "retyping ComponentSpec.replicas must break:\n{out}");
    assert!(out.contains("replicas"), "{out}");

    // A removed method.
    let tmp = workspace();
    let current = tmp.path().join("current");
    edit(
        &current.join("midplane/plugin/v1/plugin.proto"),
        "  rpc ListPlugins(ListPluginsRequest) returns (ListPluginsResponse);\n",
        "",
    );
    let (ok, out) = run(&current, &["breaking", "--against", "../released"]);
    assert!(!ok, "removing ListPlugins must break:\n{out}");
    assert!(out.contains("ListPlugins"), "{out}");

    // A lint rule.
    let tmp = workspace();
    let current = tmp.path().join("current");
    edit(
        &current.join("midplane/common/v1/common.proto"),
        "  string name = 2;\n}",
        "  string name = 2;\n  string ClusterName = 3;\n}",
    );
    let (ok, out) = run(&current, &["lint"]);
    assert!(!ok, "a CamelCase field name must fail lint:\n{out}");
    assert!(out.contains("ClusterName"), "{out}");
}
