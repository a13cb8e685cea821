//! The bundled Redis plugin rendered through the whole path.

use midplane_api::App;
use midplane_plugin::Registry;
use midplane_render::{RenderedObject, render_app, to_yaml_stream};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn plugins() -> Registry {
    Registry::load_dir(&root().join("plugins")).expect("bundled plugins load")
}

fn app(file: &str) -> App {
    let text = std::fs::read_to_string(root().join(file)).expect("example");
    serde_yaml::from_str(&text).expect("example parses")
}

fn of_kind<'a>(objs: &'a [RenderedObject], kind: &str) -> Vec<&'a RenderedObject> {
    objs.iter().filter(|o| o.kind() == kind).collect()
}

#[test]
fn example_app_renders_every_object_with_labels_and_owner() {
    let objs = render_app(
        &app("examples/redis-app.yaml"),
        &plugins(),
        &BTreeMap::new(),
    )
    .expect("renders");
    assert_eq!(of_kind(&objs, "Component").len(), 1);
    assert_eq!(of_kind(&objs, "Group").len(), 1);
    let deployments = of_kind(&objs, "Deployment");
    let names: Vec<_> = deployments.iter().map(|d| d.name()).collect();
    assert_eq!(
        names,
        ["shop-cache-0-0", "shop-cache-0-1", "shop-cache-0-2"]
    );
    assert_eq!(of_kind(&objs, "PersistentVolumeClaim").len(), 3);
    assert_eq!(of_kind(&objs, "ConfigMap").len(), 1);
    let services: Vec<_> = of_kind(&objs, "Service").iter().map(|s| s.name()).collect();
    assert_eq!(
        services,
        ["shop-cache-0-headless", "shop-cache-0", "shop-cache-0-read"]
    );

    for o in objs
        .iter()
        .filter(|o| !matches!(o.kind(), "Component" | "Group"))
    {
        let owner = &o.object["metadata"]["ownerReferences"][0];
        assert_eq!(owner["kind"], "Group", "{} {}", o.kind(), o.name());
        assert_eq!(owner["name"], "shop-cache-0");
        assert_eq!(owner["controller"], true);
        let labels = &o.object["metadata"]["labels"];
        assert_eq!(labels["app.kubernetes.io/managed-by"], "midplane");
        assert_eq!(labels["midplane.dev/group"], "shop-cache-0");
        assert_eq!(labels["app.kubernetes.io/name"], "redis");
        assert_eq!(o.namespace(), Some("default"));
    }

    // Apply order: ConfigMap and PVCs before Services before Deployments.
    let kinds: Vec<_> = objs
        .iter()
        .map(midplane_render::RenderedObject::kind)
        .collect();
    let pos = |k: &str| kinds.iter().position(|x| *x == k).expect(k);
    assert!(pos("ConfigMap") < pos("PersistentVolumeClaim"));
    assert!(pos("PersistentVolumeClaim") < pos("Service"));
    assert!(pos("Service") < pos("Deployment"));

    let primary = &deployments[0].object;
    let pod = &primary["spec"]["template"];
    assert!(
        pod["metadata"]["labels"]["midplane.dev/role"].is_null(),
        "roles are runtime state, not rendered"
    );
    let args =
        |d: &RenderedObject| d.object["spec"]["template"]["spec"]["containers"][0]["args"].clone();
    assert!(
        args(deployments[0]).is_null(),
        "instance 0 starts as primary"
    );
    assert_eq!(
        args(deployments[1])[1],
        "shop-cache-0-0.shop-cache-0-headless.default.svc",
        "replicas start following instance 0"
    );
    assert_eq!(primary["spec"]["replicas"], 1);
    assert_eq!(pod["metadata"]["annotations"]["prometheus.io/port"], "9090");
    let containers: Vec<_> = pod["spec"]["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .map(|c| c["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(containers, ["redis", "agent-lifecycle", "agent-adapter"]);
    let ports: Vec<_> = pod["spec"]["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
        .map(|p| p["containerPort"].as_i64().unwrap_or_default())
        .collect();
    assert_eq!(ports, [6379, 50051, 50052, 9090]);
    assert_eq!(
        pod["spec"]["containers"][0]["resources"]["limits"]["memory"],
        "512Mi"
    );
    assert!(primary["metadata"]["annotations"]["midplane.dev/content-hash"].is_string());

    let conf = of_kind(&objs, "ConfigMap")[0].object["data"]["redis.conf"]
        .as_str()
        .expect("redis.conf");
    assert!(conf.contains("\nmaxmemory 256mb\n"), "{conf}");
    assert!(conf.contains("\nmaxmemory-policy allkeys-lru\n"), "{conf}");
    assert!(
        conf.contains("\ndatabases 16\n"),
        "defaults rendered: {conf}"
    );
}

#[test]
fn render_is_byte_identical_across_runs() {
    let a = to_yaml_stream(
        &render_app(
            &app("examples/two-components.yaml"),
            &plugins(),
            &BTreeMap::new(),
        )
        .expect("renders"),
    )
    .expect("yaml");
    for _ in 0..3 {
        let b = to_yaml_stream(
            &render_app(
                &app("examples/two-components.yaml"),
                &plugins(),
                &BTreeMap::new(),
            )
            .expect("renders"),
        )
        .expect("yaml");
        assert_eq!(a, b);
    }
}

#[test]
fn two_components_render_their_shards_and_service_types() {
    let objs = render_app(
        &app("examples/two-components.yaml"),
        &plugins(),
        &BTreeMap::new(),
    )
    .expect("renders");
    let groups: Vec<_> = of_kind(&objs, "Group").iter().map(|g| g.name()).collect();
    assert_eq!(
        groups,
        [
            "storefront-sessions-0",
            "storefront-catalog-0",
            "storefront-catalog-1"
        ]
    );
    assert_eq!(of_kind(&objs, "Deployment").len(), 2 + 3 * 2);
    let svc = objs
        .iter()
        .find(|o| o.kind() == "Service" && o.name() == "storefront-sessions-0")
        .expect("client service");
    assert_eq!(svc.object["spec"]["type"], "NodePort");
    let pvc = objs
        .iter()
        .find(|o| o.kind() == "PersistentVolumeClaim" && o.name() == "storefront-sessions-0-0-data")
        .expect("pvc");
    assert_eq!(pvc.object["spec"]["storageClassName"], "fast-ssd");
}

fn deployment_hashes(objs: &[RenderedObject]) -> Vec<(String, String, String)> {
    of_kind(objs, "Deployment")
        .iter()
        .map(|d| {
            (
                d.name().to_string(),
                d.annotation("midplane.dev/content-hash").unwrap_or_default().to_string(),
                d.object["spec"]["template"]["metadata"]["annotations"]["midplane.dev/restart-hash"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

#[test]
fn a_dynamic_parameter_changes_content_but_not_the_pod_template() {
    let base = app("examples/redis-app.yaml");
    let mut changed = base.clone();
    changed.spec.components[0]
        .spec
        .parameters
        .insert("maxmemory".into(), "300mb".into());
    let a = render_app(&base, &plugins(), &BTreeMap::new()).expect("renders");
    let b = render_app(&changed, &plugins(), &BTreeMap::new()).expect("renders");
    let (ha, hb) = (deployment_hashes(&a), deployment_hashes(&b));
    for (x, y) in ha.iter().zip(&hb) {
        assert_ne!(x.1, y.1, "content hash follows the config");
        assert_eq!(x.2, y.2, "a dynamic change must not roll the pod");
    }
    // Only the ConfigMap and the Deployments' hash annotations differ.
    let differing: Vec<_> = a
        .iter()
        .zip(&b)
        .filter(|(x, y)| x.object != y.object)
        .map(|(x, _)| x.kind().to_string())
        .collect();
    assert!(
        differing
            .iter()
            .all(|k| k == "ConfigMap" || k == "Deployment" || k == "Component" || k == "Group"),
        "{differing:?}"
    );

    let mut restart = base.clone();
    restart.spec.components[0]
        .spec
        .parameters
        .insert("databases".into(), "32".into());
    let c = render_app(&restart, &plugins(), &BTreeMap::new()).expect("renders");
    for (x, y) in ha.iter().zip(&deployment_hashes(&c)) {
        assert_ne!(x.2, y.2, "a restart-required change rolls the pod");
    }
}

#[test]
fn scaling_adds_instances_without_touching_existing_hashes() {
    let base = app("examples/redis-app.yaml");
    let mut bigger = base.clone();
    bigger.spec.components[0].spec.replicas = 5;
    let a = deployment_hashes(&render_app(&base, &plugins(), &BTreeMap::new()).expect("renders"));
    let b = deployment_hashes(&render_app(&bigger, &plugins(), &BTreeMap::new()).expect("renders"));
    assert_eq!(b.len(), 5);
    // Replicas follow the primary through the headless service, so existing
    // instances do not change when the group grows.
    assert_eq!(&a[..], &b[..3]);
}
