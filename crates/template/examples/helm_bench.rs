//! `midplane template` against real `helm template`, chart by chart, side by side.
//!
//!     scripts/services/helm.sh
//!     cargo build --release -p midplane-cli
//!     cargo run --release -p midplane-template --example helm_bench [FILTER] [--runs N]
//!
//! Every case of the differential chart corpus (tests/corpus/charts/*/cases.txt) is run as a
//! user runs it: a fresh process per render, `helm4 template ARGS` / `helm3 template ARGS`
//! against `midplane template --helm 4|3 ARGS`, in the case's directory. Each figure is the
//! median wall time of N runs (default 5). The in-process figure is `chart::cli::run`, the
//! same code without process start-up. The baseline is Helm, measured in the same run; the
//! benchmark exits non-zero when Midplane is less than 5x faster than Helm on any chart.
//!
//! The `midplane` binary is `$MIDPLANE_BIN`, else `midplane` next to this example's directory
//! (target/release/midplane after the build above).

#[allow(dead_code)]
#[path = "../tests/differential/harness.rs"]
mod harness;

#[allow(dead_code)]
#[path = "../tests/differential/charts.rs"]
mod charts;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::Helm;

const FLOOR: f64 = 5.0;

fn midplane_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("MIDPLANE_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("midplane"))
        .expect("target dir");
    if !bin.is_file() {
        eprintln!(
            "{} not found: build it with `cargo build --release -p midplane-cli` or set MIDPLANE_BIN",
            bin.display()
        );
        std::process::exit(2);
    }
    bin
}

fn timed(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn spawn(bin: &Path, pre: &[&str], args: &[String], cwd: &Path) {
    let status = Command::new(bin)
        .args(pre)
        .args(args)
        .current_dir(cwd)
        .env(
            "HELM_CONFIG_HOME",
            std::env::temp_dir().join("midplane-bench-helm"),
        )
        .env(
            "HELM_CACHE_HOME",
            std::env::temp_dir().join("midplane-bench-helm"),
        )
        .env(
            "HELM_DATA_HOME",
            std::env::temp_dir().join("midplane-bench-helm"),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if let Err(e) = status {
        panic!("run {}: {e}", bin.display());
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Row {
    helm: Duration,
    cli: Duration,
    inproc: Duration,
}

fn main() {
    let mut filter: Option<String> = None;
    let mut runs = 5usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--runs" {
            runs = args
                .next()
                .and_then(|n| n.parse().ok())
                .filter(|n| *n > 0)
                .unwrap_or_else(|| {
                    eprintln!("--runs takes a positive number");
                    std::process::exit(2)
                });
        } else {
            filter = Some(a);
        }
    }
    let bin = midplane_bin();
    let cases: Vec<charts::Case> = charts::load_cases()
        .into_iter()
        .filter(|c| filter.as_deref().is_none_or(|f| c.name.contains(f)))
        .collect();
    if cfg!(debug_assertions) {
        println!("note: a debug build; run with --release for representative figures");
    }
    println!(
        "{} chart cases, median of {runs} runs each; `midplane` = {}",
        cases.len(),
        bin.display()
    );
    let mut worst: Option<(f64, String)> = None;
    for h in [Helm::V4, Helm::V3] {
        let helm_bin = h.binary();
        println!(
            "\n{:<44} {:>10} {:>10} {:>7} {:>11}",
            format!("case (helm {})", h.version()),
            "helm ms",
            "midplane",
            "ratio",
            "in-process"
        );
        let mut rows = Vec::new();
        for c in cases.iter().filter(|c| c.only.is_none_or(|o| o == h)) {
            let flag = ["template", "--helm", h.flag()];
            let mut argv: Vec<String> = vec!["--helm".into(), h.flag().into()];
            argv.extend(c.args.iter().cloned());
            // interleaved, so a burst of load on the machine hits both sides alike
            let (mut helm_ts, mut cli_ts, mut inproc_ts) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..runs {
                helm_ts.push(timed(|| spawn(&helm_bin, &["template"], &c.args, &c.dir)));
                cli_ts.push(timed(|| spawn(&bin, &flag, &c.args, &c.dir)));
                inproc_ts.push(timed(|| {
                    std::hint::black_box(midplane_template::chart::cli::run(&argv, &c.dir));
                }));
            }
            let (helm_t, cli_t, inproc_t) = (median(helm_ts), median(cli_ts), median(inproc_ts));
            let ratio = helm_t.as_secs_f64() / cli_t.as_secs_f64();
            println!(
                "{:<44} {:>10.2} {:>10.2} {:>6.1}x {:>11.3}",
                c.name,
                ms(helm_t),
                ms(cli_t),
                ratio,
                ms(inproc_t)
            );
            if worst.as_ref().is_none_or(|(w, _)| ratio < *w) {
                worst = Some((ratio, format!("{} (helm {})", c.name, h.version())));
            }
            rows.push(Row {
                helm: helm_t,
                cli: cli_t,
                inproc: inproc_t,
            });
        }
        if rows.is_empty() {
            continue;
        }
        let sum = |f: fn(&Row) -> Duration| rows.iter().map(f).sum::<Duration>();
        let (helm_sum, cli_sum, inproc_sum) = (sum(|r| r.helm), sum(|r| r.cli), sum(|r| r.inproc));
        let mut ratios: Vec<f64> = rows
            .iter()
            .map(|r| r.helm.as_secs_f64() / r.cli.as_secs_f64())
            .collect();
        ratios.sort_by(f64::total_cmp);
        println!(
            "{:<44} {:>10.1} {:>10.1} {:>6.1}x {:>11.1}",
            format!("total, {} cases", rows.len()),
            ms(helm_sum),
            ms(cli_sum),
            helm_sum.as_secs_f64() / cli_sum.as_secs_f64(),
            ms(inproc_sum)
        );
        println!(
            "per chart vs helm {}: median {:.1}x faster, slowest {:.1}x; in process {:.0}x",
            h.version(),
            ratios[ratios.len() / 2],
            ratios[0],
            helm_sum.as_secs_f64() / inproc_sum.as_secs_f64()
        );
    }
    if let Some((w, name)) = worst {
        if w < FLOOR {
            println!("\nFAIL: {name} is only {w:.1}x faster than Helm (floor {FLOOR}x)");
            std::process::exit(1);
        }
        println!("\nok: every chart at least {FLOOR}x faster than Helm (slowest {w:.1}x, {name})");
    }
}
