//! Function suites: `tests/corpus/functions/*.txt` hold small templates, one case each:
//!
//! ```text
//! === NAME [error] [@3|@4] [check=CHECKER:ARGS... | shape=REGEX...]
//! TEMPLATE (any number of lines)
//! --- values
//! YAML (optional)
//! ```
//!
//! Cases without `error` are rendered together, one chart per suite (and per distinct values),
//! each case a partial `_NNN.tpl` printed through `out: {{ include ... | toJson }}`, so Helm
//! starts once for many cases. `error` cases render alone, raw, and their error output must
//! match. `shape=` cases (random output) must match the regex in both Helms and Midplane;
//! `check=` cases go to a checker that verifies both outputs with another tool (openssl, ...).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::checks;
use crate::harness::{Helm, compare, helm, midplane, parallel};

#[derive(Debug, Clone)]
pub struct Case {
    pub suite: String,
    pub name: String,
    pub template: String,
    pub values: Option<String>,
    pub error: bool,
    pub only: Option<Helm>,
    pub shape: Option<String>,
    pub check: Option<String>,
    /// Generated cases: failing is fine as long as both fail with the same words.
    pub either: bool,
}

pub fn suites_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/functions")
}

pub fn load() -> Vec<Case> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(suites_dir())
        .expect("read tests/corpus/functions")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let suite = f.file_stem().expect("stem").to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&f).expect("read suite");
        out.extend(parse_suite(&suite, &text));
    }
    out
}

fn parse_suite(suite: &str, text: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut cur: Option<(Case, Vec<String>, Option<Vec<String>>)> = None;
    let finish = |cur: Option<(Case, Vec<String>, Option<Vec<String>>)>, cases: &mut Vec<Case>| {
        if let Some((mut c, body, values)) = cur {
            // the line break before the next marker is not part of the template
            c.template = body.join("\n");
            c.values = values.map(|v| v.join("\n") + "\n");
            cases.push(c);
        }
    };
    for line in text.lines() {
        if let Some(head) = line.strip_prefix("=== ") {
            finish(cur.take(), &mut cases);
            let (name, opts) = head.split_once(' ').unwrap_or((head, ""));
            let mut c = Case {
                suite: suite.to_string(),
                name: name.to_string(),
                template: String::new(),
                values: None,
                error: false,
                only: None,
                shape: None,
                check: None,
                either: false,
            };
            let mut rest = opts.trim();
            while !rest.is_empty() {
                if let Some(re) = rest.strip_prefix("shape=") {
                    c.shape = Some(re.to_string());
                    break;
                }
                if let Some(ch) = rest.strip_prefix("check=") {
                    c.check = Some(ch.to_string());
                    break;
                }
                let (word, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                match word {
                    "error" => c.error = true,
                    "@3" => c.only = Some(Helm::V3),
                    "@4" => c.only = Some(Helm::V4),
                    other => panic!("{suite}/{name}: unknown option {other}"),
                }
                rest = tail.trim();
            }
            cur = Some((c, Vec::new(), None));
        } else if line == "--- values" {
            if let Some((_, _, values)) = cur.as_mut() {
                *values = Some(Vec::new());
            }
        } else if let Some((_, body, values)) = cur.as_mut() {
            match values {
                Some(v) => v.push(line.to_string()),
                None => body.push(line.to_string()),
            }
        }
    }
    finish(cur, &mut cases);
    cases
}

/// A throwaway chart directory.
struct TempChart {
    dir: tempfile::TempDir,
}

impl TempChart {
    fn new(values: Option<&str>) -> TempChart {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = dir.path().join("fn");
        std::fs::create_dir_all(c.join("templates")).expect("mkdir");
        std::fs::write(
            c.join("Chart.yaml"),
            "apiVersion: v2\nname: fn\nversion: 0.1.0\n",
        )
        .expect("Chart.yaml");
        if let Some(v) = values {
            std::fs::write(c.join("values.yaml"), v).expect("values.yaml");
        }
        TempChart { dir }
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join("fn/templates").join(name), text).expect("template");
    }

    fn run(&self, h: Helm) -> (crate::harness::Outcome, crate::harness::Outcome) {
        let args = vec!["fn".to_string()];
        (
            helm(h, &args, self.dir.path()),
            midplane(h, &args, self.dir.path()),
        )
    }
}

enum Job {
    /// Cases rendered together (same suite and values).
    Batch(Vec<Case>),
    Single(Case),
}

/// Splits `helm template` output into `# Source:` path -> the JSON string of `out:`.
fn outputs(stdout: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for doc in stdout.split("---\n# Source: ").skip(1) {
        let (path, body) = doc.split_once('\n').unwrap_or((doc, ""));
        let json = body.trim_end().strip_prefix("out: ").unwrap_or("");
        let text = serde_json::from_str::<String>(json).unwrap_or_else(|_| body.to_string());
        m.insert(path.to_string(), text);
    }
    m
}

fn run_batch(h: Helm, cases: &[Case]) -> Vec<String> {
    let chart = TempChart::new(cases[0].values.as_deref());
    for (i, c) in cases.iter().enumerate() {
        chart.write(&format!("_{i:04}.tpl"), &c.template);
        chart.write(
            &format!("{i:04}.yaml"),
            &format!("out: {{{{ include \"fn/templates/_{i:04}.tpl\" . | toJson }}}}\n"),
        );
    }
    let (want, got) = chart.run(h);
    let mut failures = Vec::new();
    if !want.success || !got.success {
        if cases.len() > 1 {
            // one failing case fails the whole batch: find it (and any other) case by case
            return cases
                .iter()
                .flat_map(|c| run_batch(h, std::slice::from_ref(c)))
                .collect();
        }
        let c = &cases[0];
        let r = match compare(&want, &got, false) {
            Some(r) => r,
            None if c.either => return failures,
            None => format!("both fail: {}", want.stderr.trim_end()),
        };
        failures.push(format!(
            "{}/{} (helm {})\n  template: {:?}\n{r}",
            c.suite,
            c.name,
            h.version(),
            c.template
        ));
        return failures;
    }
    let (w, g) = (outputs(&want.stdout), outputs(&got.stdout));
    for (i, c) in cases.iter().enumerate() {
        let key = format!("fn/templates/{i:04}.yaml");
        let (wv, gv) = (w.get(&key), g.get(&key));
        let label = format!("{}/{} (helm {})", c.suite, c.name, h.version());
        match (wv, gv) {
            (Some(wv), Some(gv)) => {
                if let Some(problem) = judge(c, wv, gv) {
                    failures.push(format!("{label}\n  template: {:?}\n{problem}", c.template));
                }
            }
            _ => failures.push(format!(
                "{label}\n  missing output: helm {} midplane {}",
                wv.is_some(),
                gv.is_some()
            )),
        }
    }
    failures
}

/// Exact equality, or the case's shape / checker.
fn judge(c: &Case, want: &str, got: &str) -> Option<String> {
    if let Some(re) = &c.shape {
        let r = regex::Regex::new(&format!("^(?:{re})$")).expect("shape regex");
        let mut p = String::new();
        if !r.is_match(want) {
            p.push_str(&format!(
                "  helm output {want:?} does not match shape {re}\n"
            ));
        }
        if !r.is_match(got) {
            p.push_str(&format!(
                "  midplane output {got:?} does not match shape {re}\n"
            ));
        }
        return if p.is_empty() { None } else { Some(p) };
    }
    if let Some(name) = &c.check {
        return checks::run(name, want, got).err();
    }
    if want != got {
        return Some(format!("  helm:     {want:?}\n  midplane: {got:?}\n"));
    }
    None
}

fn run_single(h: Helm, c: &Case) -> Option<String> {
    let chart = TempChart::new(c.values.as_deref());
    chart.write("case.yaml", &c.template);
    let (want, got) = chart.run(h);
    compare(&want, &got, false).map(|r| {
        format!(
            "{}/{} (helm {})\n  template: {:?}\n{r}",
            c.suite,
            c.name,
            h.version(),
            c.template
        )
    })
}

/// Runs every function case against one Helm; returns (cases passed, failures).
pub fn run_all(h: Helm, filter: Option<&str>) -> (usize, Vec<String>) {
    let cases: Vec<Case> = load()
        .into_iter()
        .filter(|c| c.only.is_none_or(|o| o == h))
        .filter(|c| filter.is_none_or(|f| format!("{}/{}", c.suite, c.name).contains(f)))
        .collect();
    run_cases(h, cases)
}

/// Runs cases against one Helm: batched where they share values, alone where they must fail.
pub fn run_cases(h: Helm, cases: Vec<Case>) -> (usize, Vec<String>) {
    let total = cases.len();
    let mut batches: BTreeMap<(String, Option<String>), Vec<Case>> = BTreeMap::new();
    let mut jobs = Vec::new();
    for c in cases {
        if c.error {
            jobs.push(Job::Single(c));
        } else {
            batches
                .entry((c.suite.clone(), c.values.clone()))
                .or_default()
                .push(c);
        }
    }
    for (_, cs) in batches {
        // small batches keep a failing case from hiding its neighbours for long
        for chunk in cs.chunks(40) {
            jobs.push(Job::Batch(chunk.to_vec()));
        }
    }
    let results = parallel(&jobs, |j| match j {
        Job::Batch(cs) => run_batch(h, cs),
        Job::Single(c) => run_single(h, c).into_iter().collect(),
    });
    let failures: Vec<String> = results.into_iter().flatten().collect();
    let failed_cases = failures.len().min(total);
    (total - failed_cases, failures)
}
