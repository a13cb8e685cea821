//! The chart corpus: `tests/corpus/charts/<feature>/` holds charts and a `cases.txt` whose lines
//! are `NAME: ARGS` (the arguments after `helm template`, run in that directory).

use std::path::{Path, PathBuf};

use crate::harness::{Helm, compare, helm, midplane, parallel, split_words};

pub struct Case {
    pub name: String,
    pub dir: PathBuf,
    pub args: Vec<String>,
    /// `NAME@3` or `NAME@4`: only against that Helm (where the other's output is random).
    pub only: Option<Helm>,
}

pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/charts")
}

pub fn load_cases() -> Vec<Case> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("read tests/corpus/charts")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("cases.txt").is_file())
        .collect();
    dirs.sort();
    let mut cases = Vec::new();
    for dir in dirs {
        let feature = dir
            .file_name()
            .expect("dir name")
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(dir.join("cases.txt")).expect("read cases.txt");
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, args) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("{feature}/cases.txt: `NAME: ARGS` expected: {line}"));
            let (name, only) = match name.trim().split_once('@') {
                Some((n, "3")) => (n, Some(Helm::V3)),
                Some((n, "4")) => (n, Some(Helm::V4)),
                Some(_) => panic!("{feature}/cases.txt: `NAME@3` or `NAME@4` expected: {line}"),
                None => (name.trim(), None),
            };
            cases.push(Case {
                name: format!("{feature}/{name}"),
                dir: dir.clone(),
                args: split_words(args),
                only,
            });
        }
    }
    cases
}

/// Runs every chart case against one Helm; returns (passed, failures).
pub fn run_all(h: Helm, filter: Option<&str>) -> (usize, Vec<String>) {
    let cases: Vec<Case> = load_cases()
        .into_iter()
        .filter(|c| filter.is_none_or(|f| c.name.contains(f)))
        .filter(|c| c.only.is_none_or(|o| o == h))
        .collect();
    let results = parallel(&cases, |c| {
        let want = helm(h, &c.args, &c.dir);
        let got = midplane(h, &c.args, &c.dir);
        // --debug prints timestamped log lines on stderr
        let stdout_only = c.args.iter().any(|a| a == "--debug");
        compare(&want, &got, stdout_only).map(|r| {
            format!(
                "{} (helm {} template {})\n{r}",
                c.name,
                h.version(),
                c.args.join(" ")
            )
        })
    });
    let failures: Vec<String> = results.into_iter().flatten().collect();
    (cases.len() - failures.len(), failures)
}
