use anyhow::{Context, bail};
use midplane_api::App;
use midplane_plugin::{Registry, registry};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

pub fn run(file: &Path, plugins: Option<&Path>, previous: Option<&Path>) -> anyhow::Result<()> {
    let app = load_app(file)?;
    let registry = match plugins {
        Some(dir) => Registry::load_dir(dir)
            .with_context(|| format!("loading plugins from {}", dir.display()))?,
        None => registry::bundled().context("loading the bundled plugins")?,
    };
    let previous = match previous {
        Some(p) => parameters_in_effect(&load_app(p)?),
        None => BTreeMap::new(),
    };
    let objects = match midplane_render::render_app(&app, &registry, &previous) {
        Ok(o) => o,
        Err(midplane_render::RenderError::Invalid(errs)) => {
            let lines: Vec<String> = errs.0.iter().map(|e| format!("  {e}")).collect();
            bail!("{}: invalid App:\n{}", file.display(), lines.join("\n"));
        }
        Err(e) => bail!("{}: {e}", file.display()),
    };
    let yaml = midplane_render::to_yaml_stream(&objects)?;
    std::io::stdout().lock().write_all(yaml.as_bytes())?;
    Ok(())
}

/// Parses an App manifest; the error names the file, line and column.
pub fn load_app(file: &Path) -> anyhow::Result<App> {
    let text = super::read_input(file)?;
    let app: App = serde_yaml::from_str(&text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(":{}:{}", l.line(), l.column()))
            .unwrap_or_default();
        anyhow::anyhow!("{}{at}: {e}", file.display())
    })?;
    if app.metadata.name.is_none() {
        bail!("{}: metadata.name: is required", file.display());
    }
    Ok(app)
}

fn parameters_in_effect(app: &App) -> BTreeMap<String, BTreeMap<String, String>> {
    app.spec
        .components
        .iter()
        .map(|c| (c.name.clone(), c.spec.parameters.clone()))
        .collect()
}
