//! Compiles every `proto/midplane/<area>/v1/*.proto` file (not the released
//! snapshot under `proto/released/`) and writes a module tree for the
//! packages found, so adding a package needs no change here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::{env, fs, io};

// Setting PROTOC for tonic-build is the one unsafe call (see SAFETY below).
#[allow(unsafe_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read when the script runs, not baked in when it is compiled: a target directory
    // shared by several checkouts reuses this script's binary across them.
    let root = Path::new(&env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let mut files = Vec::new();
    collect_protos(&root, &mut files)?;
    // proto/released/ is the snapshot `buf breaking` compares against, not code.
    let released = root.join("released");
    files.retain(|f| !f.starts_with(&released));
    files.sort();
    println!("cargo:rerun-if-changed={}", root.display());
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }

    // A vendored protoc keeps a fresh machine free of system packages.
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let well_known = protoc_bin_vendored::include_path()?;
    // SAFETY: build scripts are single-threaded.
    unsafe { env::set_var("PROTOC", protoc) };

    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("midplane_descriptor.bin"))
        .compile_protos(&files, &[root.clone(), well_known])?;

    let mut packages = BTreeSet::new();
    for f in &files {
        packages.insert(package_of(f)?);
    }
    fs::write(out_dir.join("packages.rs"), module_tree(&packages))?;
    Ok(())
}

fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}

fn package_of(file: &Path) -> Result<String, Box<dyn std::error::Error>> {
    let text = fs::read_to_string(file)?;
    text.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("package "))
        .map(|p| p.trim_end_matches(';').trim().to_string())
        .ok_or_else(|| format!("{}: no package statement", file.display()).into())
}

/// `midplane.agent.v1` becomes `pub mod midplane { pub mod agent { pub mod v1 { include!(...) } } }`.
fn module_tree(packages: &BTreeSet<String>) -> String {
    #[derive(Default)]
    struct Node(std::collections::BTreeMap<String, Node>, Option<String>);
    let mut root = Node::default();
    for pkg in packages {
        let mut node = &mut root;
        for part in pkg.split('.') {
            node = node.0.entry(part.to_string()).or_default();
        }
        node.1 = Some(pkg.clone());
    }
    fn emit(node: &Node, out: &mut String) {
        for (name, child) in &node.0 {
            out.push_str(&format!("pub mod {name} {{\n"));
            if let Some(pkg) = &child.1 {
                out.push_str(&format!(
                    "include!(concat!(env!(\"OUT_DIR\"), \"/{pkg}.rs\"));\n"
                ));
            }
            emit(child, out);
            out.push_str("}\n");
        }
    }
    let mut out = String::new();
    emit(&root, &mut out);
    out
}
