pub mod backup;
pub mod backups;
pub mod cluster;
pub mod dev;
pub mod events;
pub mod plugin;
pub mod render;
pub mod template;

use std::io::Write;

pub fn crds() -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for (_, crd) in midplane_api::crd::all() {
        writeln!(out, "---")?;
        out.write_all(serde_yaml::to_string(&crd)?.as_bytes())?;
    }
    Ok(())
}

/// Reads a file, or standard input for `-`.
pub fn read_input(path: &std::path::Path) -> anyhow::Result<String> {
    use anyhow::Context;
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .context("reading standard input")?;
        Ok(s)
    } else {
        std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))
    }
}
