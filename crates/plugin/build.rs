//! Bundles every plugin under `plugins/` into the binary, so `midplane render`
//! works on a fresh machine without a plugin directory.

use std::path::Path;
use std::{env, fs};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read when the script runs, not baked in when it is compiled: a target directory
    // shared by several checkouts reuses this script's binary across them.
    let root = Path::new(&env::var("CARGO_MANIFEST_DIR")?).join("../../plugins");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut out = String::from("pub(crate) const BUNDLED: &[(&str, &[(&str, &str)])] = &[\n");
    let mut dirs: Vec<_> = fs::read_dir(&root)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("plugin.yaml").exists())
        .collect();
    dirs.sort();
    for dir in dirs {
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        println!("cargo:rerun-if-changed={}", dir.display());
        out.push_str(&format!("    ({name:?}, &[\n"));
        let mut files = Vec::new();
        for f in ["plugin.yaml", "values.yaml"] {
            if dir.join(f).exists() {
                files.push((f.to_string(), dir.join(f)));
            }
        }
        let tdir = dir.join("templates");
        println!("cargo:rerun-if-changed={}", tdir.display());
        for e in fs::read_dir(&tdir)? {
            let p = e?.path();
            if p.is_file() {
                let fname = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                files.push((format!("templates/{fname}"), p.clone()));
            }
        }
        files.sort();
        for (key, path) in files {
            println!("cargo:rerun-if-changed={}", path.display());
            let abs = fs::canonicalize(&path)?;
            out.push_str(&format!(
                "        ({key:?}, include_str!({:?})),\n",
                abs.display().to_string()
            ));
        }
        out.push_str("    ]),\n");
    }
    out.push_str("];\n");
    fs::write(Path::new(&env::var("OUT_DIR")?).join("bundled.rs"), out)?;
    Ok(())
}
