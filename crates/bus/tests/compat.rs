//! The event contract's breaking-change check, as CI runs it: the AsyncAPI
//! document the catalogue generates must not break the last released one
//! (docs/released/asyncapi.yaml), and breaking changes made to a copy of the
//! catalogue's document must be caught.

use midplane_bus::catalogue::compat::breaking_changes;
use midplane_bus::docs::asyncapi_yaml;
use std::path::PathBuf;

fn released() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/released/asyncapi.yaml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The current document as YAML, changed by `edit` (on its JSON form).
fn changed(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut doc: serde_json::Value =
        serde_yaml::from_str(&asyncapi_yaml().expect("generate")).expect("parse");
    edit(&mut doc);
    serde_yaml::to_string(&doc).expect("yaml")
}

fn data<'a>(doc: &'a mut serde_json::Value, message: &str) -> &'a mut serde_json::Value {
    &mut doc["components"]["messages"][message]["payload"]["schema"]["properties"]["data"]
}

#[test]
fn the_catalogue_does_not_break_the_released_events() {
    let found = breaking_changes(&released(), &asyncapi_yaml().expect("generate")).expect("check");
    assert!(
        found.is_empty(),
        "breaking changes against docs/released/asyncapi.yaml (give the event a new type instead):\n{}",
        found.join("\n")
    );
}

#[test]
fn breaking_changes_to_a_copy_of_the_catalogue_are_caught() {
    let released = released();
    let check = |doc: &str| breaking_changes(&released, doc).expect("check");

    // Adding an optional field is compatible.
    let added = changed(|d| {
        data(d, "pluginUpdated")["properties"]["note"] = serde_json::json!({"type": "string"});
    });
    assert_eq!(check(&added), Vec::<String>::new());

    let removed = changed(|d| {
        let props = data(d, "pluginUpdated")["properties"]
            .as_object_mut()
            .expect("props");
        props.remove("pluginHash");
    });
    let found = check(&removed);
    assert!(
        found.contains(&"midplane.plugin.updated: data.pluginHash: removed".to_string()),
        "{found:?}"
    );

    let retyped = changed(|d| {
        data(d, "appApplied")["properties"]["generation"]["type"] = "string".into();
    });
    let found = check(&retyped);
    assert!(
        found
            .iter()
            .any(|f| f.starts_with("midplane.app.applied: data.generation: retyped")),
        "{found:?}"
    );

    let optional = changed(|d| {
        let schema = &mut d["components"]["messages"]["groupRendered"]["payload"]["schema"];
        let required = schema["required"].as_array_mut().expect("required");
        required.retain(|r| r != "subject");
    });
    let found = check(&optional);
    assert!(
        found.contains(&"midplane.group.rendered: subject: no longer required".to_string()),
        "{found:?}"
    );

    let gone = changed(|d| {
        d["components"]["messages"]
            .as_object_mut()
            .expect("messages")
            .remove("restoreFailed");
        d["channels"]
            .as_object_mut()
            .expect("channels")
            .remove("restoreFailed");
    });
    let found = check(&gone);
    assert!(
        found.contains(&"midplane.restore.failed: event removed".to_string())
            && found.contains(&"midplane.restore.failed: channel removed".to_string()),
        "{found:?}"
    );
}

/// What the vocabulary change of this contract did to the document before it
/// was released, as the check reports it: the renamed fields are removals.
#[test]
fn renaming_a_field_is_reported_as_a_removal() {
    let renamed = changed(|d| {
        let props = data(d, "componentApplied")["properties"]
            .as_object_mut()
            .expect("props");
        let v = props.remove("middlewareVersion").expect("field");
        props.insert("pluginVersion".into(), v);
    });
    let found = breaking_changes(&released(), &renamed).expect("check");
    assert!(
        found.contains(&"midplane.component.applied: data.middlewareVersion: removed".to_string()),
        "{found:?}"
    );
}
