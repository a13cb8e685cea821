//! Differential tests: the same chart, values and flags through the real `helm template`
//! (Helm 3.17.0 and 4.1.4, installed by scripts/services/helm.sh) and through Midplane's
//! `midplane template --helm 3|4`; every difference in stdout, stderr or success fails.
//!
//! `MIDPLANE_DIFF_FILTER=substring` runs only the cases whose name contains it;
//! `MIDPLANE_DIFF_SEED` / `MIDPLANE_DIFF_RANDOM` pick the generated templates (random.rs).

mod charts;
mod checks;
mod coverage;
mod functions;
mod harness;
mod random;

use harness::Helm;

fn filter() -> Option<String> {
    std::env::var("MIDPLANE_DIFF_FILTER").ok()
}

fn report(what: &str, h: Helm, passed: usize, failures: Vec<String>) {
    let total = passed + failures.len();
    println!(
        "{what}: {passed} of {total} cases match helm {}",
        h.version()
    );
    if !failures.is_empty() {
        panic!(
            "{} of {total} {what} cases differ from helm {}:\n\n{}",
            failures.len(),
            h.version(),
            failures.join("\n")
        );
    }
}

#[test]
fn charts_match_helm3() {
    let (passed, failures) = charts::run_all(Helm::V3, filter().as_deref());
    report("charts", Helm::V3, passed, failures);
}

#[test]
fn charts_match_helm4() {
    let (passed, failures) = charts::run_all(Helm::V4, filter().as_deref());
    report("charts", Helm::V4, passed, failures);
}

#[test]
fn functions_match_helm3() {
    let (passed, failures) = functions::run_all(Helm::V3, filter().as_deref());
    report("function", Helm::V3, passed, failures);
}

#[test]
fn functions_match_helm4() {
    let (passed, failures) = functions::run_all(Helm::V4, filter().as_deref());
    report("function", Helm::V4, passed, failures);
}

fn random_cases() -> Vec<functions::Case> {
    let seed = std::env::var("MIDPLANE_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(16);
    let count = std::env::var("MIDPLANE_DIFF_RANDOM")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(240);
    random::cases(seed, count)
}

#[test]
fn random_templates_match_helm3() {
    let (passed, failures) = functions::run_cases(Helm::V3, random_cases());
    report("random template", Helm::V3, passed, failures);
}

#[test]
fn random_templates_match_helm4() {
    let (passed, failures) = functions::run_cases(Helm::V4, random_cases());
    report("random template", Helm::V4, passed, failures);
}

#[test]
fn every_helm_function_has_a_differential_case() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/functions");
    let missing = coverage::uncovered(&dir);
    assert!(
        missing.is_empty(),
        "functions with no case in tests/corpus/functions: {missing:?}"
    );
    let unknown: Vec<_> = coverage::HELM_FUNCTIONS
        .iter()
        .filter(|n| !midplane_template::funcs::exists(n))
        .collect();
    assert!(unknown.is_empty(), "functions Midplane lacks: {unknown:?}");
}
