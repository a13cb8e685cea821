//! scripts/images.sh: the images it builds have the entrypoint, user and labels
//! docs/deploy.md states, and their binaries start (`--version`) from the image's own root
//! filesystem (its loader and libraries, not the host's).
//!
//! Cheap by default: it builds only the CLI image, from the `midplane` binary this test
//! run already built (debug). `MIDPLANE_IMAGE_BIN_DIR=<dir>` builds every image from the
//! binaries in `<dir>` (e.g. target/release after `cargo build --release`). Skipped, with a
//! message, when umoci is not installed (scripts/services/umoci.sh installs it).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(
        &std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn blob(layout: &Path, digest: &Value) -> PathBuf {
    let d = digest.as_str().expect("digest");
    layout
        .join("blobs/sha256")
        .join(d.trim_start_matches("sha256:"))
}

/// (config, unpacked root filesystem) of `<layout>:<VERSION>`.
fn open(layout: &Path, rootfs: &Path) -> Value {
    let index = json(&layout.join("index.json"));
    let manifest = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == VERSION)
        .unwrap_or_else(|| panic!("{}: no tag {VERSION}", layout.display()));
    let manifest = json(&blob(layout, &manifest["digest"]));
    std::fs::create_dir_all(rootfs).expect("rootfs dir");
    for layer in manifest["layers"].as_array().expect("layers") {
        let out = Command::new("tar")
            .arg("xzf")
            .arg(blob(layout, &layer["digest"]))
            .arg("-C")
            .arg(rootfs)
            .output()
            .expect("tar");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    json(&blob(layout, &manifest["config"]["digest"]))
}

/// Runs `<rootfs><binary> --version` through the image's own loader and libraries.
fn version_from_image(rootfs: &Path, binary: &str) -> String {
    let loader = rootfs.join("lib64/ld-linux-x86-64.so.2");
    assert!(loader.is_file(), "no loader in the image");
    let libs = [
        "lib/x86_64-linux-gnu",
        "usr/lib/x86_64-linux-gnu",
        "lib64",
        "lib",
    ]
    .iter()
    .map(|d| rootfs.join(d).display().to_string())
    .collect::<Vec<_>>()
    .join(":");
    let out = Command::new(loader)
        .arg("--library-path")
        .arg(libs)
        .arg(rootfs.join(binary.trim_start_matches('/')))
        .arg("--version")
        .env_clear()
        .output()
        .expect("run from the image");
    assert!(
        out.status.success(),
        "{binary} --version: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn images_have_their_entrypoint_user_and_labels_and_their_binaries_start() {
    if !have("umoci") {
        eprintln!("skipped: umoci is not installed (scripts/services/umoci.sh)");
        return;
    }
    let all = std::env::var_os("MIDPLANE_IMAGE_BIN_DIR").map(PathBuf::from);
    let bin_dir = all.clone().unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_BIN_EXE_midplane"))
            .parent()
            .expect("bin dir")
            .to_path_buf()
    });
    let out = tempfile::tempdir().expect("out dir");
    let mut cmd = Command::new(root().join("scripts/images.sh"));
    cmd.arg("--bin-dir")
        .arg(&bin_dir)
        .arg("--out")
        .arg(out.path());
    if all.is_none() {
        cmd.args(["--only", "midplane"]);
    }
    let run = cmd.output().expect("run scripts/images.sh");
    assert!(
        run.status.success(),
        "scripts/images.sh: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    // (image, entrypoint, binaries in it)
    let mut images: Vec<(&str, Option<String>, Vec<&str>)> = vec![(
        "midplane",
        Some("/usr/local/bin/midplane".into()),
        vec!["midplane"],
    )];
    if all.is_some() {
        for s in [
            "app-svc",
            "group-svc",
            "plugin-svc",
            "backup-svc",
            "agent-gateway",
        ] {
            images.push((s, Some(format!("/usr/local/bin/{s}")), vec![s]));
        }
        images.push(("agent", None, vec!["lifecycle-agent", "adapter-agent"]));
    }
    for (name, entrypoint, binaries) in images {
        let rootfs = out.path().join(format!("{name}.rootfs"));
        let config = open(&out.path().join(name), &rootfs);
        let c = &config["config"];
        assert_eq!(c["User"], "65532:65532", "{name}");
        match &entrypoint {
            Some(e) => assert_eq!(c["Entrypoint"], serde_json::json!([e]), "{name}"),
            None => assert!(c["Entrypoint"].is_null(), "{name}: {}", c["Entrypoint"]),
        }
        let labels = &c["Labels"];
        assert_eq!(labels["org.opencontainers.image.title"], name);
        assert_eq!(labels["org.opencontainers.image.version"], VERSION);
        assert_eq!(
            labels["org.opencontainers.image.ref.name"],
            format!("ghcr.io/midplane/{name}:{VERSION}")
        );
        assert!(labels["org.opencontainers.image.revision"].is_string());
        assert!(labels["org.opencontainers.image.source"].is_string());
        let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).expect("passwd");
        assert!(passwd.contains(":65532:65532:"), "{passwd}");
        for b in binaries {
            let v = version_from_image(&rootfs, &format!("/usr/local/bin/{b}"));
            assert!(v.ends_with(VERSION), "{name}: {b} --version printed {v:?}");
        }
    }
}
