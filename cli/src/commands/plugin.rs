use anyhow::Context;
use midplane_plugin::Plugin;
use std::io::Write;
use std::path::Path;

pub fn lint(dir: &Path) -> anyhow::Result<()> {
    let plugin = Plugin::load_dir(dir).with_context(|| format!("plugin {}", dir.display()))?;
    println!(
        "{}: plugin {} is valid ({} templates, {} parameters, content hash {})",
        dir.display(),
        plugin.id(),
        plugin.template_files.len(),
        plugin.metadata.parameters.len(),
        &plugin.content_hash[..12]
    );
    Ok(())
}

pub fn pack(dir: &Path, namespace: &str) -> anyhow::Result<()> {
    let plugin = Plugin::load_dir(dir).with_context(|| format!("plugin {}", dir.display()))?;
    let mut cm = serde_json::to_value(plugin.to_config_map(namespace))?;
    if let Some(m) = cm.as_object_mut() {
        m.insert("apiVersion".into(), "v1".into());
        m.insert("kind".into(), "ConfigMap".into());
    }
    std::io::stdout()
        .lock()
        .write_all(serde_yaml::to_string(&cm)?.as_bytes())?;
    Ok(())
}
