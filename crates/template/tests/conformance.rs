//! Data-driven conformance suite.
//!
//! * `conformance/core.golden`: core text/template language; expectations produced by Go's own
//!   text/template (`conformance-gen/`, missingkey=zero as Helm sets it).
//! * `conformance/helm*.cases`: Helm/Sprig functions, expectations written from Helm's and Sprig's
//!   documentation and sources.
//!
//! Case format: `=== name`, then sections `--- values` (JSON/YAML), `--- template`, and one of
//! `--- expected` (text), `--- expected-json` (a JSON string), `--- error-exact`, `--- error`
//! (substring). A section runs to the next marker; its final newline is not part of it.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use midplane_template::{Options, Templates, Value};

struct Case {
    file: String,
    name: String,
    sections: BTreeMap<String, String>,
}

fn parse_cases(path: &Path) -> Vec<Case> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut cases: Vec<Case> = Vec::new();
    let mut section: Option<String> = None;
    let mut lines: Vec<&str> = Vec::new();
    let flush = |cases: &mut Vec<Case>, section: &Option<String>, lines: &mut Vec<&str>| {
        if let (Some(c), Some(s)) = (cases.last_mut(), section) {
            c.sections.insert(s.clone(), lines.join("\n"));
        }
        lines.clear();
    };
    for line in text.split('\n') {
        if let Some(name) = line.strip_prefix("=== ") {
            flush(&mut cases, &section, &mut lines);
            cases.push(Case {
                file: file.clone(),
                name: name.to_string(),
                sections: BTreeMap::new(),
            });
            section = None;
        } else if let Some(s) = line.strip_prefix("--- ")
            && !cases.is_empty()
        {
            flush(&mut cases, &section, &mut lines);
            section = Some(s.to_string());
        } else if section.is_some() {
            lines.push(line);
        }
    }
    // the file's last newline is not part of the last section
    if lines.last() == Some(&"") {
        lines.pop();
    }
    flush(&mut cases, &section, &mut lines);
    cases
}

fn run_case(c: &Case, go_core: bool) -> Result<(), String> {
    let values = match c.sections.get("values") {
        Some(v) if !v.trim().is_empty() => {
            if go_core {
                let j: serde_json::Value =
                    serde_json::from_str(v).map_err(|e| format!("bad values JSON: {e}"))?;
                Value::from_json(j)
            } else {
                Value::from_yaml_str(v).map_err(|e| format!("bad values YAML: {e}"))?
            }
        }
        _ => Value::empty_map(),
    };
    let opts = if go_core {
        Options::go()
    } else {
        Options::default()
    };
    let mut t = Templates::new(opts);
    let template = c.sections.get("template").cloned().unwrap_or_default();
    let name = if go_core { "t" } else { "test.yaml" };
    let result = t
        .add(name, &template)
        .and_then(|()| t.render(name, &values))
        .map_err(|e| e.to_string());
    if let Some(exp) = c.sections.get("expected-json") {
        let exp: String =
            serde_json::from_str(exp).map_err(|e| format!("bad expected-json: {e}"))?;
        return match result {
            Ok(out) if out == exp => Ok(()),
            Ok(out) => Err(format!("output {out:?}\n   expected {exp:?}")),
            Err(e) => Err(format!("error {e:?}\n   expected output {exp:?}")),
        };
    }
    if let Some(exp) = c.sections.get("expected") {
        return match result {
            Ok(out) if out == *exp => Ok(()),
            Ok(out) => Err(format!("output {out:?}\n   expected {exp:?}")),
            Err(e) => Err(format!("error {e:?}\n   expected output {exp:?}")),
        };
    }
    if let Some(exp) = c.sections.get("error-exact") {
        return match result {
            Err(e) if e == *exp => Ok(()),
            Err(e) => Err(format!("error {e:?}\n   expected error {exp:?}")),
            Ok(out) => Err(format!("output {out:?}\n   expected error {exp:?}")),
        };
    }
    if let Some(exp) = c.sections.get("error") {
        return match result {
            Err(e) if e.contains(exp.as_str()) => Ok(()),
            Err(e) => Err(format!("error {e:?}\n   expected error containing {exp:?}")),
            Ok(out) => Err(format!(
                "output {out:?}\n   expected error containing {exp:?}"
            )),
        };
    }
    Err("case has no expectation".to_string())
}

#[test]
fn conformance_suite() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("conformance dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "golden" || x == "cases"))
        .collect();
    files.sort();
    let (mut pass, mut fail, mut go_cases) = (0, 0, 0);
    let mut failures = Vec::new();
    for f in &files {
        let go_core = f.extension().is_some_and(|x| x == "golden");
        for c in parse_cases(f) {
            go_cases += usize::from(go_core);
            match run_case(&c, go_core) {
                Ok(()) => pass += 1,
                Err(e) => {
                    fail += 1;
                    failures.push(format!("{}::{}: {e}", c.file, c.name));
                }
            }
        }
    }
    for f in &failures {
        eprintln!("FAIL {f}");
    }
    // written to the stderr handle directly so the count shows even when the test passes
    let _ = writeln!(
        std::io::stderr(),
        "conformance: {pass} of {} cases pass ({go_cases} generated by Go's text/template)",
        pass + fail
    );
    assert!(
        pass >= 400,
        "expected at least 400 conformance cases, ran {}",
        pass + fail
    );
    assert_eq!(fail, 0, "{fail} conformance cases failed");
}
