//! Runs one `helm template` call through the real Helm binary and through Midplane, and compares
//! what both print, byte for byte.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use midplane_template::chart::cli::Outcome;
use midplane_template::chart::cli::run;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Helm {
    V3,
    V4,
}

impl Helm {
    pub fn binary_name(self) -> &'static str {
        match self {
            Helm::V3 => "helm3",
            Helm::V4 => "helm4",
        }
    }

    pub fn version(self) -> &'static str {
        match self {
            Helm::V3 => "v3.17.0",
            Helm::V4 => "v4.1.4",
        }
    }

    /// Midplane's `--helm` value for this oracle.
    pub fn flag(self) -> &'static str {
        match self {
            Helm::V3 => "3",
            Helm::V4 => "4",
        }
    }

    /// The binary: on PATH, else where scripts/services/helm.sh installs it.
    pub fn binary(self) -> PathBuf {
        static BINS: OnceLock<[Result<PathBuf, String>; 2]> = OnceLock::new();
        let bins = BINS.get_or_init(|| [find(Helm::V3), find(Helm::V4)]);
        let idx = match self {
            Helm::V3 => 0,
            Helm::V4 => 1,
        };
        match &bins[idx] {
            Ok(p) => p.clone(),
            Err(e) => panic!("{e}"),
        }
    }
}

fn find(h: Helm) -> Result<PathBuf, String> {
    let name = h.binary_name();
    let tools =
        std::env::var("MIDPLANE_TOOLS").unwrap_or_else(|_| "/var/tmp/midplane-tools".into());
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push(Path::new(&tools).join("bin"));
    for d in dirs {
        let p = d.join(name);
        if p.is_file() {
            let out = Command::new(&p)
                .args(["version", "--template", "{{.Version}}"])
                .output()
                .map_err(|e| format!("{}: {e}", p.display()))?;
            let got = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if got != h.version() {
                return Err(format!(
                    "{} is Helm {got}, the tests need {}: run scripts/services/helm.sh",
                    p.display(),
                    h.version()
                ));
            }
            return Ok(p);
        }
    }
    Err(format!(
        "{name} (Helm {}) is not on PATH nor in {tools}/bin: run scripts/services/helm.sh",
        h.version()
    ))
}

/// A private Helm home, so no user repository or plugin config leaks into the runs.
fn helm_home() -> &'static Path {
    static HOME: OnceLock<PathBuf> = OnceLock::new();
    HOME.get_or_init(|| {
        // one directory for every run: `helm template` reads it and writes nothing there
        let dir = std::env::temp_dir().join("midplane-diff-helm-home");
        std::fs::create_dir_all(&dir).expect("create helm home");
        dir
    })
}

pub static HELM_CALLS: AtomicUsize = AtomicUsize::new(0);

/// `helm template ARGS` in `cwd`.
pub fn helm(h: Helm, args: &[String], cwd: &Path) -> Outcome {
    HELM_CALLS.fetch_add(1, Ordering::Relaxed);
    let home = helm_home();
    let out = Command::new(h.binary())
        .arg("template")
        .args(args)
        .current_dir(cwd)
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .env("KUBECONFIG", home.join("kubeconfig"))
        .env_remove("HELM_DEBUG")
        .env_remove("HELM_NAMESPACE")
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", h.binary().display()));
    Outcome {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        success: out.status.success(),
    }
}

/// `midplane template --helm N ARGS` in `cwd` (in process).
pub fn midplane(h: Helm, args: &[String], cwd: &Path) -> Outcome {
    let mut argv: Vec<String> = vec!["--helm".into(), h.flag().into()];
    argv.extend(args.iter().cloned());
    run(&argv, cwd)
}

/// `None` when both printed the same; else a report naming the first difference.
pub fn compare(want: &Outcome, got: &Outcome, stdout_only: bool) -> Option<String> {
    let mut report = String::new();
    if want.success != got.success {
        report.push_str(&format!(
            "helm {} but midplane {}\n",
            if want.success { "succeeded" } else { "failed" },
            if got.success { "succeeded" } else { "failed" },
        ));
    }
    if want.stdout != got.stdout {
        report.push_str(&format!(
            "stdout differs:\n{}",
            first_difference(&want.stdout, &got.stdout)
        ));
    }
    if !stdout_only && want.stderr != got.stderr {
        report.push_str(&format!(
            "stderr differs:\n  helm:     {:?}\n  midplane: {:?}\n",
            want.stderr, got.stderr
        ));
    }
    if report.is_empty() {
        None
    } else {
        Some(report)
    }
}

/// The first line where two outputs part, with a little context.
pub fn first_difference(want: &str, got: &str) -> String {
    let w: Vec<&str> = want.split_inclusive('\n').collect();
    let g: Vec<&str> = got.split_inclusive('\n').collect();
    let mut i = 0;
    while i < w.len() && i < g.len() && w[i] == g[i] {
        i += 1;
    }
    let from = i.saturating_sub(3);
    let mut s = String::new();
    for l in &w[from..i] {
        s.push_str(&format!("    {:?}\n", l));
    }
    s.push_str(&format!("  line {}:\n", i + 1));
    for l in w.iter().skip(i).take(4) {
        s.push_str(&format!("  - {:?}\n", l));
    }
    if i >= w.len() {
        s.push_str("  - <end of helm output>\n");
    }
    for l in g.iter().skip(i).take(4) {
        s.push_str(&format!("  + {:?}\n", l));
    }
    if i >= g.len() {
        s.push_str("  + <end of midplane output>\n");
    }
    s
}

/// Runs `jobs` on a few threads (Helm calls dominate; they are separate processes).
pub fn parallel<T: Sync, R: Send>(jobs: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get() * 2)
        .unwrap_or(4)
        .clamp(2, 8);
    let next = AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<R>>> =
        jobs.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let r = f(job);
                    *results[i].lock().expect("result slot") = Some(r);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|m| m.into_inner().expect("result slot").expect("job ran"))
        .collect()
}

/// Splits a command line on whitespace; single or double quotes keep spaces.
pub fn split_words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                any = true;
            }
            None if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            None => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}
