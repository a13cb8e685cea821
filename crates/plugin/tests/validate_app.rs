use midplane_api::App;
use midplane_plugin::registry;
use midplane_plugin::validate_app::validate;
use std::collections::BTreeMap;

fn app(params: &str, extra: &str) -> App {
    serde_yaml::from_str(&format!(
        "apiVersion: midplane.dev/v1alpha1\nkind: App\nmetadata: {{name: a}}\nspec:\n  components:\n  - name: c\n    plugin: redis\n    parameters: {params}\n{extra}"
    ))
    .expect("parses")
}

#[test]
fn plugin_checks_name_the_field() {
    let plugins = registry::bundled().expect("bundled");
    let bad = app(
        "{maxmemry: 1gb, port: 7000, appendfilename: x.aof}",
        "  - name: d\n    plugin: mongodb\n  - name: e\n    plugin: redis\n    version: \"5.0\"\n",
    );
    let prev = BTreeMap::from([("c".to_string(), BTreeMap::new())]);
    let errs = validate(&bad, &plugins, &prev)
        .expect_err("invalid")
        .to_string();
    for want in [
        "spec.components[0].parameters.maxmemry: unknown parameter of the redis plugin",
        "spec.components[0].parameters.port: is managed by the redis plugin and cannot be set",
        "spec.components[0].parameters.appendfilename: is immutable: it cannot change from \"appendonly.aof\" to \"x.aof\"",
        "spec.components[1].plugin: unknown plugin \"mongodb\"; known plugins: redis",
        "spec.components[2].version: plugin redis does not deploy redis \"5.0\"",
    ] {
        assert!(errs.contains(want), "missing {want:?} in\n{errs}");
    }
}

#[test]
fn immutable_parameters_may_be_set_at_creation() {
    let plugins = registry::bundled().expect("bundled");
    let a = app("{appendfilename: x.aof, maxmemory: 1gb}", "");
    validate(&a, &plugins, &BTreeMap::new()).expect("creation may set it");
    let prev = BTreeMap::from([(
        "c".to_string(),
        BTreeMap::from([("appendfilename".to_string(), "x.aof".to_string())]),
    )]);
    validate(&a, &plugins, &prev).expect("unchanged is fine");
}
