//! `helm template`'s command line: its flags parsed with pflag's rules (the last of a repeated
//! scalar flag wins, `--api-versions` and `--values` split on commas, `--flag=value`, `-fvalue`,
//! `--` ends the flags) and its output: manifests on stdout, `Error: ...` on stderr.

use std::path::{Path, PathBuf};

use super::{HelmMajor, RenderOptions};
use crate::error::Error;

/// One `helm template [NAME] CHART [flags]` call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Invocation {
    pub chart: PathBuf,
    pub opts: RenderOptions,
    /// `--debug`: invalid YAML is still printed before the error.
    pub debug: bool,
}

/// What the command prints and whether it succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
    pub success: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Bool,
    /// A scalar: the last occurrence wins.
    Str,
    /// Every occurrence kept as given (pflag StringArray).
    Array,
    /// Every occurrence split on commas (pflag StringSlice, Helm's valueFiles).
    Slice,
}

/// Flags `helm template` accepts. Those without an effect on the output of a local chart are
/// accepted and ignored, as Helm does for them.
const FLAGS: &[(&str, Option<char>, Kind)] = &[
    ("values", Some('f'), Kind::Slice),
    ("set", None, Kind::Array),
    ("set-string", None, Kind::Array),
    ("set-file", None, Kind::Array),
    ("set-json", None, Kind::Array),
    ("set-literal", None, Kind::Array),
    ("namespace", Some('n'), Kind::Str),
    ("show-only", Some('s'), Kind::Array),
    ("kube-version", None, Kind::Str),
    ("api-versions", Some('a'), Kind::Slice),
    ("include-crds", None, Kind::Bool),
    ("skip-crds", None, Kind::Bool),
    ("skip-tests", None, Kind::Bool),
    ("no-hooks", None, Kind::Bool),
    ("is-upgrade", None, Kind::Bool),
    ("skip-schema-validation", None, Kind::Bool),
    ("name-template", None, Kind::Str),
    ("generate-name", Some('g'), Kind::Bool),
    ("debug", None, Kind::Bool),
    // Midplane's own: which Helm major to follow, and the release name as a flag.
    ("helm", None, Kind::Str),
    ("release-name", None, Kind::Str),
    // accepted, no effect on a local chart's output
    ("create-namespace", None, Kind::Bool),
    ("dependency-update", None, Kind::Bool),
    ("devel", None, Kind::Bool),
    ("disable-openapi-validation", None, Kind::Bool),
    ("enable-dns", None, Kind::Bool),
    ("atomic", None, Kind::Bool),
    ("wait", None, Kind::Bool),
    ("wait-for-jobs", None, Kind::Bool),
    ("replace", None, Kind::Bool),
    ("render-subchart-notes", None, Kind::Bool),
    ("description", None, Kind::Str),
    ("timeout", None, Kind::Str),
    ("version", None, Kind::Str),
    ("labels", Some('l'), Kind::Slice),
];

fn flag_by_name(name: &str) -> Option<(&'static str, Kind)> {
    FLAGS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(n, _, k)| (*n, *k))
}

fn flag_by_short(c: char) -> Option<(&'static str, Kind)> {
    FLAGS
        .iter()
        .find(|(_, s, _)| *s == Some(c))
        .map(|(n, _, k)| (*n, *k))
}

fn parse_bool(flag: &str, v: &str) -> Result<bool, Error> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(Error::Chart(format!(
            "invalid argument {v:?} for \"--{flag}\" flag: strconv.ParseBool: parsing {v:?}: invalid syntax"
        ))),
    }
}

/// Parses the arguments after `template` as Helm (cobra + pflag) does.
pub fn parse_args(args: &[String]) -> Result<Invocation, Error> {
    let mut inv = Invocation::default();
    let mut positional = Vec::new();
    let mut it = args.iter().peekable();
    while let Some(arg) = it.next() {
        if arg == "--" {
            positional.extend(it.by_ref().cloned());
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let Some((name, kind)) = flag_by_name(name) else {
                return Err(Error::Chart(format!("unknown flag: --{name}")));
            };
            let value = match (kind, inline) {
                (Kind::Bool, Some(v)) => parse_bool(name, &v)?.to_string(),
                (Kind::Bool, None) => "true".to_string(),
                (_, Some(v)) => v,
                (_, None) => match it.next() {
                    Some(v) => v.clone(),
                    None => {
                        return Err(Error::Chart(format!("flag needs an argument: --{name}")));
                    }
                },
            };
            apply(&mut inv, name, kind, value)?;
        } else if arg.len() > 1 && arg.starts_with('-') {
            let shorts: Vec<char> = arg[1..].chars().collect();
            let mut i = 0;
            while i < shorts.len() {
                let c = shorts[i];
                let Some((name, kind)) = flag_by_short(c) else {
                    return Err(Error::Chart(format!(
                        "unknown shorthand flag: '{c}' in {arg}"
                    )));
                };
                let rest: String = shorts[i + 1..].iter().collect();
                if kind == Kind::Bool {
                    let value = match rest.strip_prefix('=') {
                        Some(v) => {
                            i = shorts.len();
                            parse_bool(name, v)?.to_string()
                        }
                        None => {
                            i += 1;
                            "true".to_string()
                        }
                    };
                    apply(&mut inv, name, kind, value)?;
                    continue;
                }
                let value = if let Some(v) = rest.strip_prefix('=') {
                    v.to_string()
                } else if !rest.is_empty() {
                    rest
                } else {
                    match it.next() {
                        Some(v) => v.clone(),
                        None => {
                            return Err(Error::Chart(format!(
                                "flag needs an argument: '{c}' in -{c}"
                            )));
                        }
                    }
                };
                apply(&mut inv, name, kind, value)?;
                break;
            }
        } else {
            positional.push(arg.clone());
        }
    }
    match positional.len() {
        0 => {
            return Err(Error::Chart(
                "\"helm template\" requires at least 1 argument\n\nUsage:  helm template [NAME] [CHART] [flags]".into(),
            ));
        }
        1 => inv.chart = PathBuf::from(&positional[0]),
        2 => {
            inv.opts.release_name = positional[0].clone();
            inv.chart = PathBuf::from(&positional[1]);
        }
        _ => {
            return Err(Error::Chart(format!(
                "expected at most two arguments, unexpected arguments: {}",
                positional[2..].join(", ")
            )));
        }
    }
    Ok(inv)
}

fn apply(inv: &mut Invocation, name: &str, kind: Kind, value: String) -> Result<(), Error> {
    let o = &mut inv.opts;
    let flag = value == "true";
    let list = |v: String| -> Vec<String> {
        if kind == Kind::Slice {
            v.split(',').map(str::to_string).collect()
        } else {
            vec![v]
        }
    };
    match name {
        "values" => o
            .values_files
            .extend(list(value).into_iter().map(PathBuf::from)),
        "set" => o.set.push(value),
        "set-string" => o.set_string.push(value),
        "set-file" => o.set_file.push(value),
        "set-json" => o.set_json.push(value),
        "set-literal" => o.set_literal.push(value),
        "namespace" => o.namespace = value,
        "show-only" => o.show_only.push(value),
        "kube-version" => o.kube_version = Some(value),
        "api-versions" => o.api_versions.extend(list(value)),
        "include-crds" => o.include_crds = flag,
        "skip-tests" => o.skip_tests = flag,
        "no-hooks" => o.no_hooks = flag,
        "is-upgrade" => o.is_upgrade = flag,
        "skip-schema-validation" => o.skip_schema_validation = flag,
        "name-template" => o.name_template = Some(value),
        "generate-name" => o.generate_name = flag,
        "enable-dns" => o.enable_dns = flag,
        "debug" => inv.debug = flag,
        "release-name" => o.release_name = value,
        "helm" => o.helm = HelmMajor::parse(&value)?,
        _ => {}
    }
    Ok(())
}

/// Runs `helm template` with `args` (relative paths resolve against `cwd`) and returns what it
/// prints, byte for byte.
pub fn run(args: &[String], cwd: &Path) -> Outcome {
    match parse_args(args) {
        Ok(mut inv) => {
            inv.opts.base_dir = Some(cwd.to_path_buf());
            inv.opts.chart_arg = Some(inv.chart.display().to_string());
            execute(&inv)
        }
        Err(e) => failure(String::new(), &e, false),
    }
}

/// Renders an already parsed invocation.
pub fn execute(inv: &Invocation) -> Outcome {
    let dir = match &inv.opts.base_dir {
        Some(base) => base.join(&inv.chart),
        None => inv.chart.clone(),
    };
    match super::render_chart_full(&dir, &inv.opts) {
        Ok(out) => Outcome {
            stdout: out.manifest,
            stderr: log_text(&out.log),
            success: true,
        },
        Err(failed) => {
            let stdout = if inv.debug {
                failed.partial.clone().unwrap_or_default()
            } else {
                String::new()
            };
            let mut o = failure(stdout, &failed.error, failed.rendered && !inv.debug);
            o.stderr = log_text(&failed.log) + &o.stderr;
            o
        }
    }
}

fn log_text(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// Helm's `Error: MSG`, with its hint when rendering got as far as a release.
fn failure(stdout: String, e: &Error, hint: bool) -> Outcome {
    let mut stderr = format!("Error: {}\n", e.helm_message());
    if hint {
        stderr = format!(
            "Error: {}\n\nUse --debug flag to render out invalid YAML\n",
            e.helm_message()
        );
    }
    Outcome {
        stdout,
        stderr,
        success: false,
    }
}
