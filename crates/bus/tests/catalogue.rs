//! The committed catalogue documents must match what the Rust types generate, and every event's
//! example must round-trip through its type and envelope.

use std::collections::HashSet;
use std::path::PathBuf;

use midplane_bus::catalogue::{self, Event, PluginUpdated};
use midplane_bus::docs::{
    REGENERATE, asyncapi_yaml, envelope_schema, events_markdown, example_event,
};
use midplane_bus::envelope::Envelope;

fn docs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs")
}

/// Compares or (with MIDPLANE_BLESS=1) rewrites a generated document.
fn check(file: &str, generated: &str) {
    let path = docs_dir().join(file);
    if std::env::var("MIDPLANE_BLESS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(docs_dir()).expect("docs dir");
        std::fs::write(&path, generated)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        return;
    }
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading docs/{file}: {e}; generate it with `{REGENERATE}`"));
    if committed == generated {
        return;
    }
    let (line, ours, theirs) = committed
        .lines()
        .zip(generated.lines())
        .enumerate()
        .find(|(_, (a, b))| a != b)
        .map(|(i, (a, b))| (i + 1, a.to_owned(), b.to_owned()))
        .unwrap_or_else(|| {
            let n = committed.lines().count().min(generated.lines().count()) + 1;
            (
                n,
                "<end or extra lines>".to_owned(),
                "<end or extra lines>".to_owned(),
            )
        });
    panic!(
        "docs/{file} is out of date with crates/bus/src/catalogue (first difference at line {line}):\n  \
         committed: {ours}\n  generated: {theirs}\nregenerate with `{REGENERATE}` and commit the result"
    );
}

#[test]
fn events_md_matches_the_catalogue() {
    check("events.md", &events_markdown());
}

#[test]
fn asyncapi_yaml_matches_the_catalogue() {
    check("asyncapi.yaml", &asyncapi_yaml().unwrap());
}

#[test]
fn asyncapi_document_lists_every_event_with_schema_and_example() {
    let doc: serde_yaml::Value = serde_yaml::from_str(&asyncapi_yaml().unwrap()).unwrap();
    assert_eq!(doc["asyncapi"].as_str(), Some("3.0.0"));
    let channels = doc["channels"].as_mapping().unwrap();
    let specs = catalogue::catalogue();
    assert_eq!(channels.len(), specs.len());
    let addresses: HashSet<_> = channels
        .values()
        .map(|c| c["address"].as_str().unwrap().to_owned())
        .collect();
    for s in &specs {
        assert!(
            addresses.contains(s.event_type),
            "{} missing from asyncapi channels",
            s.event_type
        );
    }
    for (_, m) in doc["components"]["messages"].as_mapping().unwrap() {
        let schema = &m["payload"]["schema"];
        assert_eq!(schema["properties"]["type"]["const"], m["name"]);
        assert!(
            schema["properties"]["data"]["properties"].is_mapping(),
            "{:?} has no data schema",
            m["name"]
        );
        assert_eq!(m["examples"][0]["payload"]["type"], m["name"]);
    }
}

/// The official AsyncAPI parser accepts the document and every example validates against its
/// schema with ajv: what an outside team's code generator would check.
#[test]
fn asyncapi_document_passes_the_official_parser_and_examples_validate() {
    let tools = std::env::var("MIDPLANE_ASYNCAPI_TOOLS")
        .unwrap_or_else(|_| "/var/tmp/midplane-tools/asyncapi-parser".to_owned());
    let install = "run scripts/services/asyncapi-parser.sh (or set MIDPLANE_ASYNCAPI_TOOLS)";
    assert!(
        PathBuf::from(&tools)
            .join("node_modules/@asyncapi/parser")
            .is_dir(),
        "@asyncapi/parser not found under {tools}: {install}"
    );
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("asyncapi.yaml");
    std::fs::write(&doc, asyncapi_yaml().unwrap()).unwrap();
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tools/asyncapi_validate.cjs");
    let out = std::process::Command::new("node")
        .arg(&script)
        .arg(&tools)
        .arg(&doc)
        .output()
        .unwrap_or_else(|e| panic!("running node: {e}: {install}"));
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "AsyncAPI validation failed:\n{report}"
    );
    let n = catalogue::catalogue().len();
    assert!(
        report.contains(&format!("0 errors; {n} channels; {n} examples validated")),
        "{report}"
    );
}

#[test]
fn catalogue_is_consistent() {
    let specs = catalogue::catalogue();
    let mut seen = HashSet::new();
    let producers = ["app-svc", "group-svc", "plugin-svc", "backup-svc"];
    for (i, s) in specs.iter().enumerate() {
        assert!(seen.insert(s.event_type), "{} listed twice", s.event_type);
        let words: Vec<_> = s.event_type.split('.').collect();
        assert!(
            words.len() >= 3
                && words[0] == "midplane"
                && words
                    .iter()
                    .all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase())),
            "{}: event types are midplane.<area>.<what> in lower case",
            s.event_type
        );
        assert!(
            producers.contains(&s.producer),
            "{}: unknown producer {}",
            s.event_type,
            s.producer
        );
        // The example must be a parseable CloudEvent whose data fills every required field.
        let body = serde_json::to_vec(&example_event(s, i)).unwrap();
        let env = Envelope::from_bytes(&body).unwrap();
        assert_eq!(env.event_type, s.event_type);
        let schema = envelope_schema(s);
        for req in schema["properties"]["data"]["required"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let field = req.as_str().unwrap();
            assert!(
                env.data.get(field).is_some(),
                "{}: example lacks required field {field}",
                s.event_type
            );
        }
    }
    for area in ["app", "component", "group", "plugin", "backup", "restore"] {
        assert!(
            specs
                .iter()
                .any(|s| s.event_type.starts_with(&format!("midplane.{area}."))),
            "no {area} events"
        );
    }
}

#[test]
fn typed_payload_round_trips_through_the_envelope() {
    let original = PluginUpdated::example();
    let env = Envelope::new("/midplane/plugin-svc", &original).unwrap();
    let parsed = Envelope::from_bytes(&env.to_bytes().unwrap()).unwrap();
    assert_eq!(parsed, env);
    assert_eq!(parsed.decode::<PluginUpdated>().unwrap(), original);
    assert_eq!(parsed.subject.as_deref(), Some("plugins/redis"));
    assert!(
        parsed.decode::<catalogue::AppApplied>().is_err(),
        "decoding as another type must fail"
    );
    let bad = br#"{"specversion":"0.3","id":"1","source":"/x","type":"t","time":"2026-01-01T00:00:00Z","datacontenttype":"application/json","data":{}}"#;
    let err = Envelope::from_bytes(bad).expect_err("refused").to_string();
    assert!(err.contains("specversion"), "{err}");
    let props = env.amqp_properties();
    assert_eq!(
        props
            .content_type()
            .as_ref()
            .map(lapin::types::ShortString::as_str),
        Some("application/cloudevents+json; charset=utf-8")
    );
    assert_eq!(
        props
            .message_id()
            .as_ref()
            .map(lapin::types::ShortString::as_str),
        Some(env.id.as_str())
    );
    assert_eq!(props.delivery_mode(), &Some(2));
}
