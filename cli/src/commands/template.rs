//! `midplane template`: a Helm chart directory rendered exactly as
//! `helm template` prints it, through Midplane's template engine.

use clap::Args;
use midplane_template::chart::{RenderOptions, render_chart};
use std::io::Write;
use std::path::PathBuf;

#[derive(Args)]
pub struct TemplateArgs {
    /// The chart directory (Chart.yaml, values.yaml, templates/).
    chart: PathBuf,
    /// Values files, later ones win (Helm's -f/--values).
    #[arg(short = 'f', long = "values")]
    values: Vec<PathBuf>,
    /// Overrides in Helm's --set syntax (a.b=c,d[0]=e).
    #[arg(long = "set")]
    set: Vec<String>,
    #[arg(long = "release-name", default_value = "release-name")]
    release_name: String,
    #[arg(short = 'n', long, default_value = "default")]
    namespace: String,
    /// Only print the output of these templates (chart-relative paths).
    #[arg(short = 's', long = "show-only")]
    show_only: Vec<String>,
    /// Kubernetes version for .Capabilities.KubeVersion.
    #[arg(long = "kube-version")]
    kube_version: Option<String>,
    /// Extra API versions for .Capabilities.APIVersions.
    #[arg(short = 'a', long = "api-versions")]
    api_versions: Vec<String>,
    /// Include the chart's crds/ directory in the output.
    #[arg(long = "include-crds")]
    include_crds: bool,
    /// Skip templates that are test hooks.
    #[arg(long = "skip-tests")]
    skip_tests: bool,
    /// A template for the release name.
    #[arg(long = "name-template")]
    name_template: Option<String>,
}

pub fn run(args: TemplateArgs) -> anyhow::Result<()> {
    let opts = RenderOptions {
        release_name: args.release_name,
        namespace: args.namespace,
        values_files: args.values,
        set: args.set,
        show_only: args.show_only,
        kube_version: args.kube_version,
        api_versions: args.api_versions,
        include_crds: args.include_crds,
        skip_tests: args.skip_tests,
        name_template: args.name_template,
    };
    let out = render_chart(&args.chart, &opts)?;
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}
