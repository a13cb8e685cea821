//! `midplane template`: a Helm chart rendered exactly as `helm template` prints it. The
//! arguments are Helm's own (`[NAME] CHART [flags]`, parsed with pflag's rules by the template
//! crate), so what the differential tests run against the real `helm` binary is what this
//! command runs; `--helm 3` follows Helm 3.17 where it differs from Helm 4.1 (the default).

use std::io::Write;

use clap::Args;
use midplane_template::chart::cli::run as template;

#[derive(Args)]
#[command(
    disable_help_flag = true,
    override_usage = "midplane template [NAME] CHART [flags]"
)]
pub struct TemplateArgs {
    /// `[NAME] CHART` and `helm template`'s flags; see `midplane template --help`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    args: Vec<String>,
}

const HELP: &str = "\
Render a Helm chart (a directory or a .tgz) exactly as `helm template` prints it.

Usage:
  midplane template [NAME] CHART [flags]

Flags (as Helm's; repeated scalar flags: the last wins):
  -f, --values strings        values files, merged in order (comma-separated or repeated)
      --set stringArray       values on the command line (a.b=c,d[0]=e,list={x,y})
      --set-string, --set-json, --set-file, --set-literal stringArray
                              as --set, taking strings, JSON, file contents, literal text
  -n, --namespace string      .Release.Namespace (default \"default\")
  -s, --show-only stringArray only the manifests of these templates (filepath patterns)
      --kube-version string   .Capabilities.KubeVersion
  -a, --api-versions strings  extra .Capabilities.APIVersions
      --include-crds          print the charts' crds/ files first
      --skip-tests            leave out test hooks
      --no-hooks              leave out hooks
      --is-upgrade            .Release.IsUpgrade true, IsInstall false
      --skip-schema-validation
                              do not check values against values.schema.json
      --name-template string  the release name from a template
      --enable-dns            let getHostByName resolve names
      --debug                 print the manifests even when they are not valid YAML
      --release-name string   the release name (Midplane's; the same as NAME)
      --helm string           3 follows Helm 3.17, 4 (default) Helm 4.1
";

pub fn run(args: TemplateArgs) -> anyhow::Result<()> {
    if args.args.iter().any(|a| a == "-h" || a == "--help") {
        print!("{HELP}");
        return Ok(());
    }
    let cwd = std::env::current_dir()?;
    let out = template(&args.args, &cwd);
    std::io::stdout().lock().write_all(out.stdout.as_bytes())?;
    std::io::stderr().lock().write_all(out.stderr.as_bytes())?;
    if !out.success {
        // Helm's own exit status, with its `Error: ...` already printed
        std::process::exit(1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: TemplateArgs,
    }

    #[test]
    fn every_argument_reaches_helms_parser_unchanged() {
        let argv = [
            "x",
            "rel",
            "./chart",
            "--set",
            "a=1",
            "-f",
            "a.yaml,b.yaml",
            "--kube-version",
            "1.20",
            "--kube-version",
            "1.29",
            "--",
            "--not-a-flag",
        ];
        let w = Wrapper::try_parse_from(argv).expect("clap takes helm's arguments");
        assert_eq!(w.args.args, argv[1..].to_vec());
    }

    #[test]
    fn helm_flags_parse_as_helm_parses_them() {
        let args: Vec<String> = [
            "rel",
            "chart",
            "--kube-version",
            "1.20",
            "--kube-version=1.29",
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        let inv = midplane_template::chart::cli::parse_args(&args).expect("parse");
        assert_eq!(inv.opts.kube_version.as_deref(), Some("1.29"));
        assert_eq!(inv.opts.release_name, "rel");
    }
}
