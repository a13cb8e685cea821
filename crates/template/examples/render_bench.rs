//! Renders per second of a realistic chart (Deployment + Service + ConfigMap with helpers).
//!
//!     cargo run --release -p midplane-template --example render_bench [SECONDS]
//!
//! One "render" executes the three manifests with the chart's values, the way a Group
//! re-render does. The cached run parses once (as a plugin version's templates are cached);
//! the baseline measured in the same run parses on every render.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use midplane_template::{Object, Options, Templates, Value};

const FILES: &[&str] = &[
    "_helpers.tpl",
    "deployment.yaml",
    "service.yaml",
    "configmap.yaml",
];
const RENDERED: &[&str] = &["deployment.yaml", "service.yaml", "configmap.yaml"];

fn load() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/charts/redis/templates");
    FILES
        .iter()
        .map(|f| {
            let src =
                std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("read {f}: {e}"));
            (format!("redis/templates/{f}"), src)
        })
        .collect()
}

fn parse(sources: &[(String, String)]) -> Templates {
    let mut t = Templates::new(Options::default());
    for (name, src) in sources {
        t.add(name, src)
            .unwrap_or_else(|e| panic!("parse {name}: {e}"));
    }
    t
}

fn data() -> Value {
    let chart_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/charts/redis");
    let values = std::fs::read_to_string(chart_dir.join("values.yaml")).expect("values.yaml");
    let mut top = BTreeMap::new();
    top.insert(
        "Values".to_string(),
        Value::from_yaml_str(&values).expect("values"),
    );
    top.insert(
        "Release".to_string(),
        Value::from_yaml_str(
            "{Name: cache, Namespace: apps, Service: Helm, IsInstall: true, Revision: 1}",
        )
        .expect("release"),
    );
    top.insert(
        "Chart".to_string(),
        Value::from_yaml_str("{Name: redis, Version: 1.2.3, AppVersion: '7.2.4'}").expect("chart"),
    );
    top.insert(
        "Template".to_string(),
        Value::from_yaml_str("{BasePath: redis/templates}").expect("template"),
    );
    let kube =
        Value::from_yaml_str("{Version: v1.32.0, GitVersion: v1.32.0, Major: '1', Minor: '32'}")
            .expect("kube version");
    let apis = Object::ApiVersions(vec!["v1".into(), "apps/v1".into()], "common.VersionSet");
    let mut caps = BTreeMap::new();
    caps.insert("KubeVersion".to_string(), kube);
    caps.insert("APIVersions".to_string(), Value::Object(Arc::new(apis)));
    top.insert("Capabilities".to_string(), Value::map(caps));
    let conf = std::fs::read(chart_dir.join("files/redis.conf")).expect("redis.conf");
    let files = Object::Files(BTreeMap::from([("files/redis.conf".to_string(), conf)]));
    top.insert("Files".to_string(), Value::Object(Arc::new(files)));
    Value::map(top)
}

fn render_all(t: &Templates, data: &Value) -> usize {
    let mut bytes = 0;
    for f in RENDERED {
        let name = format!("redis/templates/{f}");
        match t.render(&name, data) {
            Ok(out) => bytes += out.len(),
            Err(e) => panic!("render {name}: {e}"),
        }
    }
    bytes
}

fn measure(label: &str, secs: f64, mut f: impl FnMut() -> usize) -> f64 {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let (mut n, mut bytes) = (0u64, 0usize);
    while Instant::now() < deadline {
        bytes += f();
        n += 1;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    println!(
        "{label:<28} {rate:>10.0} renders/s  ({n} renders, {:.1} MiB out)",
        bytes as f64 / 1048576.0
    );
    rate
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let sources = load();
    let data = data();
    let cached = parse(&sources);
    let sample = render_all(&cached, &data);
    assert!(
        sample > 1000,
        "rendered output suspiciously small: {sample} bytes"
    );
    println!(
        "chart: Deployment + Service + ConfigMap with _helpers.tpl, {sample} bytes per render, one core"
    );
    let baseline = measure("baseline (parse each time)", secs, || {
        let t = parse(&sources);
        render_all(&t, &data)
    });
    let rate = measure("cached parse", secs, || render_all(&cached, &data));
    println!("speed-up from caching parses: {:.1}x", rate / baseline);
    println!(
        "target >= 5000 renders/s: {}",
        if rate >= 5000.0 { "met" } else { "NOT met" }
    );
}
