use midplane_api::App;
use midplane_api::validate::validate_app;

fn parse(yaml: &str) -> App {
    serde_yaml::from_str(yaml).expect("valid YAML")
}

#[test]
fn every_problem_is_reported_with_its_field_path() {
    let app = parse(
        r#"
apiVersion: midplane.dev/v1alpha1
kind: App
metadata: {name: shop}
spec:
  components:
  - name: cache
    plugin: redis
    replicas: 3
  - name: Bad_Name
    plugin: redis
    replicas: -1
    shards: 0
    storage: {size: 10GB}
    service: {type: Ingress}
    resources: {requests: {cpu: 2}, limits: {cpu: 1}}
    backup: {enabled: true, encryption: rot13}
  - name: cache
    plugin: ""
"#,
    );
    let errs = validate_app(&app).expect_err("invalid").to_string();
    for want in [
        "spec.components[1].name: \"Bad_Name\" must be a DNS label",
        "spec.components[1].replicas: must be at least 1",
        "spec.components[1].shards: must be at least 1",
        "spec.components[1].storage.size: \"10GB\" has an unknown unit",
        "spec.components[1].service.type: unknown service type \"Ingress\"",
        "spec.components[1].resources.requests.cpu: must not exceed the limit 1",
        "spec.components[1].backup.encryption: unknown algorithm \"rot13\"",
        "spec.components[1].backup.schedule: is required when backup is enabled",
        "spec.components[2].name: duplicate component name \"cache\"",
        "spec.components[2].plugin: is required",
    ] {
        assert!(errs.contains(want), "missing {want:?} in:\n{errs}");
    }
    assert!(!errs.contains("spec.components[0]"), "{errs}");
}

#[test]
fn a_good_app_passes() {
    let app = parse(
        r#"
apiVersion: midplane.dev/v1alpha1
kind: App
metadata: {name: shop}
spec:
  components:
  - name: cache
    plugin: redis
    version: "7.2"
    replicas: 3
    storage: {size: 1Gi}
    service: {type: NodePort}
    resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {memory: 256Mi}}
    backup: {enabled: true, schedule: "0 3 * * *", storage: s3-main, retention: {count: 7, maxAge: 168h}}
"#,
    );
    validate_app(&app).expect("valid");
    assert_eq!(app.spec.components[0].spec.shards, 1, "shards default to 1");
}
