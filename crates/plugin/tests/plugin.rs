use midplane_plugin::{Plugin, PluginError, Registry, registry};
use std::path::PathBuf;

fn redis_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../plugins/redis")
}

#[test]
fn bundled_plugins_equal_the_repo_directories() {
    let bundled = registry::bundled().expect("bundled plugins load");
    let from_dir = Registry::load_dir(&redis_dir().join("..")).expect("plugins dir loads");
    assert_eq!(bundled.names(), ["redis"]);
    assert_eq!(
        bundled.get("redis").expect("redis").content_hash,
        from_dir.get("redis").expect("redis").content_hash
    );
}

#[test]
fn configmap_round_trip_keeps_every_file_and_hash() {
    let plugin = Plugin::load_dir(&redis_dir()).expect("loads");
    let cm = plugin.to_config_map("midplane-system");
    assert_eq!(cm.metadata.name.as_deref(), Some("midplane-plugin-redis"));
    let labels = cm.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get("midplane.dev/plugin").map(String::as_str),
        Some("redis")
    );
    let data = cm.data.clone().unwrap_or_default();
    assert!(data.contains_key("templates.deployment.yaml"));
    assert!(
        data.keys().all(|k| !k.contains('/')),
        "ConfigMap keys cannot hold '/'"
    );
    let back = Plugin::from_config_map(&cm).expect("loads back");
    assert_eq!(back.content_hash, plugin.content_hash);
    assert_eq!(back.files, plugin.files);
    assert_eq!(back.metadata, plugin.metadata);
}

#[test]
fn a_configmap_without_the_label_or_with_another_name_is_refused() {
    let plugin = Plugin::load_dir(&redis_dir()).expect("loads");
    let mut cm = plugin.to_config_map("ns");
    cm.metadata.labels = None;
    assert!(matches!(
        Plugin::from_config_map(&cm),
        Err(PluginError::ConfigMap { .. })
    ));
    let mut cm = plugin.to_config_map("ns");
    if let Some(l) = cm.metadata.labels.as_mut() {
        l.insert("midplane.dev/plugin".into(), "postgres".into());
    }
    let err = Plugin::from_config_map(&cm)
        .expect_err("name mismatch")
        .to_string();
    assert!(err.contains("disagrees"), "{err}");
}

#[test]
fn a_broken_template_is_named_with_its_line() {
    let mut plugin = Plugin::load_dir(&redis_dir()).expect("loads");
    plugin.files.insert(
        "templates/service.yaml".into(),
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Group.Name | nosuchfunc }}\n".into(),
    );
    let err = Plugin::from_files(plugin.files, "test".into())
        .expect_err("broken template")
        .to_string();
    assert!(err.contains("redis/templates/service.yaml:4"), "{err}");
    assert!(err.contains("nosuchfunc"), "{err}");
}

#[test]
fn bad_metadata_names_each_field() {
    let mut plugin = Plugin::load_dir(&redis_dir()).expect("loads");
    let meta = plugin.files["plugin.yaml"]
        .replace("version: 0.1.0", "version: one")
        .replace("defaultVersion: \"7.2\"", "defaultVersion: \"9.9\"");
    plugin.files.insert("plugin.yaml".into(), meta);
    let err = Plugin::from_files(plugin.files.clone(), "t".into())
        .expect_err("invalid")
        .to_string();
    assert!(
        err.contains("plugin.yaml: version: \"one\" is not a semantic version"),
        "{err}"
    );
    assert!(err.contains("middleware.defaultVersion: \"9.9\""), "{err}");

    let meta = plugin.files["plugin.yaml"].replace("roles:", "rolez:");
    plugin.files.insert("plugin.yaml".into(), meta);
    let err = Plugin::from_files(plugin.files, "t".into())
        .expect_err("unknown field")
        .to_string();
    assert!(err.contains("rolez"), "{err}");
}

#[test]
fn instance_templates_must_exist() {
    let mut plugin = Plugin::load_dir(&redis_dir()).expect("loads");
    plugin.files.remove("templates/pvc.yaml");
    let err = Plugin::from_files(plugin.files, "t".into())
        .expect_err("missing")
        .to_string();
    assert!(
        err.contains("instanceTemplates names \"pvc.yaml\""),
        "{err}"
    );
}
