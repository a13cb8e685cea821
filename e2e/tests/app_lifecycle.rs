//! App → Component → Group → workloads on the Kubernetes API emulator, with
//! app-svc's and group-svc's controllers running as they do in the suite.

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Service};
use kube::api::{Api, DeleteParams, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use midplane_api::{App, Component, Group};
use midplane_e2e::{NS, app_ready, apply_app, eventually, example_app, names, platform};
use midplane_operator::condition;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn resource_versions<K: kube::Resource>(items: &[K]) -> BTreeMap<String, String> {
    items
        .iter()
        .map(|o| (o.name_any(), o.resource_version().unwrap_or_default()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_lifecycle_on_the_emulator() {
    let platform = platform(None).await;
    let client = platform.client();

    // Apply the example → every object with owner and labels; Ready at the current generation.
    let mut app = example_app();
    apply_app(&client, &app).await;
    let live = eventually("App Ready", 30, || app_ready(&client, "shop")).await;
    assert_eq!(
        live.status.clone().unwrap_or_default().component_count,
        Some(1)
    );
    assert_eq!(names::<Component>(&client).await, ["shop-cache"]);
    assert_eq!(names::<Group>(&client).await, ["shop-cache-0"]);
    assert_eq!(
        names::<Deployment>(&client).await,
        ["shop-cache-0-0", "shop-cache-0-1", "shop-cache-0-2"]
    );
    assert_eq!(names::<PersistentVolumeClaim>(&client).await.len(), 3);
    assert_eq!(
        names::<Service>(&client).await,
        ["shop-cache-0", "shop-cache-0-headless", "shop-cache-0-read"]
    );
    let group = Api::<Group>::namespaced(client.clone(), NS)
        .get("shop-cache-0")
        .await
        .expect("group");
    let deployments = Api::<Deployment>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await
        .expect("list")
        .items;
    for d in &deployments {
        let owner = &d.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("Group", group.uid().unwrap_or_default().as_str())
        );
        assert_eq!(
            d.labels().get("midplane.dev/group").map(String::as_str),
            Some("shop-cache-0")
        );
        assert_eq!(
            d.labels()
                .get("app.kubernetes.io/managed-by")
                .map(String::as_str),
            Some("midplane")
        );
    }
    let gs = group.status.clone().expect("group status");
    assert_eq!(gs.ready_replicas, 3);
    assert_eq!(gs.primary.as_deref(), Some("shop-cache-0-0"));
    assert!(
        gs.instances.iter().all(|i| i.phase == "Ready"),
        "{:?}",
        gs.instances
    );
    // Roles are runtime labels on the Pods; the client Service selects the primary.
    let primaries = eventually("the primary Pod labelled", 30, || async {
        let pods = Api::<Pod>::namespaced(client.clone(), NS)
            .list(&ListParams::default().labels("midplane.dev/role=primary"))
            .await
            .ok()?
            .items;
        (pods.len() == 1).then_some(pods)
    })
    .await;
    assert_eq!(
        primaries[0]
            .labels()
            .get("midplane.dev/instance")
            .map(String::as_str),
        Some("shop-cache-0-0")
    );
    let replicas = Api::<Pod>::namespaced(client.clone(), NS)
        .list(&ListParams::default().labels("midplane.dev/role=replica"))
        .await
        .expect("pods")
        .items;
    assert_eq!(replicas.len(), 2);
    let svc = Api::<Service>::namespaced(client.clone(), NS)
        .get("shop-cache-0")
        .await
        .expect("svc");
    let sel = svc.spec.expect("spec").selector.expect("selector");
    assert_eq!(
        sel.get("midplane.dev/role").map(String::as_str),
        Some("primary")
    );
    let comp = Api::<Component>::namespaced(client.clone(), NS)
        .get("shop-cache")
        .await
        .expect("component");
    assert_eq!(
        comp.owner_references()[0].uid,
        live.uid().unwrap_or_default()
    );

    // Scale 3 → 5 → 2: objects follow.
    for (replicas, want) in [(5, 5usize), (2, 2)] {
        app.spec.components[0].spec.replicas = replicas;
        apply_app(&client, &app).await;
        eventually(&format!("{replicas} instances"), 30, || async {
            let d = names::<Deployment>(&client).await;
            let p = names::<PersistentVolumeClaim>(&client).await;
            let ready = app_ready(&client, "shop").await;
            (d.len() == want && p.len() == want && ready.is_some()).then_some(())
        })
        .await;
    }
    assert_eq!(
        names::<Deployment>(&client).await,
        ["shop-cache-0-0", "shop-cache-0-1"]
    );

    // A dynamic parameter: the ConfigMap and the instance hashes change; the
    // pod templates, Services and PVCs do not.
    let deploy_api = Api::<Deployment>::namespaced(client.clone(), NS);
    let before = deploy_api
        .list(&ListParams::default())
        .await
        .expect("list")
        .items;
    let svc_before = resource_versions(
        &Api::<Service>::namespaced(client.clone(), NS)
            .list(&ListParams::default())
            .await
            .expect("list")
            .items,
    );
    let pvc_before = resource_versions(
        &Api::<PersistentVolumeClaim>::namespaced(client.clone(), NS)
            .list(&ListParams::default())
            .await
            .expect("list")
            .items,
    );
    let cm_before = Api::<ConfigMap>::namespaced(client.clone(), NS)
        .get("shop-cache-0-config")
        .await
        .expect("cm");
    app.spec.components[0]
        .spec
        .parameters
        .insert("maxmemory".into(), "300mb".into());
    apply_app(&client, &app).await;
    let after = eventually("new content hashes", 30, || async {
        let after = deploy_api.list(&ListParams::default()).await.ok()?.items;
        let changed = after.iter().all(|a| {
            let b = before.iter().find(|b| b.name_any() == a.name_any());
            b.is_some_and(|b| {
                b.annotations().get("midplane.dev/content-hash")
                    != a.annotations().get("midplane.dev/content-hash")
            })
        });
        (changed && app_ready(&client, "shop").await.is_some()).then_some(after)
    })
    .await;
    for a in &after {
        let b = before
            .iter()
            .find(|b| b.name_any() == a.name_any())
            .expect("same instance");
        let tmpl = |d: &Deployment| {
            serde_json::to_value(&d.spec.as_ref().expect("spec").template).expect("json")
        };
        assert_eq!(
            tmpl(a),
            tmpl(b),
            "a dynamic parameter must not roll {}",
            a.name_any()
        );
    }
    let cm_after = Api::<ConfigMap>::namespaced(client.clone(), NS)
        .get("shop-cache-0-config")
        .await
        .expect("cm");
    assert_ne!(cm_before.data, cm_after.data);
    assert!(cm_after.data.clone().unwrap_or_default()["redis.conf"].contains("maxmemory 300mb"));
    assert_eq!(
        svc_before,
        resource_versions(
            &Api::<Service>::namespaced(client.clone(), NS)
                .list(&ListParams::default())
                .await
                .expect("list")
                .items
        )
    );
    assert_eq!(
        pvc_before,
        resource_versions(
            &Api::<PersistentVolumeClaim>::namespaced(client.clone(), NS)
                .list(&ListParams::default())
                .await
                .expect("list")
                .items
        )
    );

    // An invalid App: Ready=False naming the field, a Warning Event, nothing changed.
    // (A rule the CRD schema cannot express, so the App is stored and the
    // controller is what refuses it.)
    let mut bad = app.clone();
    bad.spec.components[0].spec.backup = Some(midplane_api::BackupPolicy {
        enabled: true,
        schedule: "daily".into(),
        storage: "s3".into(),
        ..Default::default()
    });
    apply_app(&client, &bad).await;
    let invalid = eventually("Invalid condition", 30, || async {
        let a = Api::<App>::namespaced(client.clone(), NS)
            .get("shop")
            .await
            .ok()?;
        let st = a.status.clone()?;
        let c = condition::get(&st.conditions, condition::READY)?.clone();
        (c.reason == "Invalid" && c.observed_generation == a.metadata.generation).then_some(c)
    })
    .await;
    assert_eq!(invalid.status, "False");
    assert!(
        invalid
            .message
            .contains("spec.components[0].backup.schedule: "),
        "{}",
        invalid.message
    );
    let events = eventually("Invalid Event", 30, || async {
        let evs: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), NS);
        let list = evs.list(&ListParams::default()).await.ok()?.items;
        let found: Vec<_> = list
            .into_iter()
            .filter(|e| {
                e.reason.as_deref() == Some("Invalid")
                    && e.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some("App")
            })
            .collect();
        (!found.is_empty()).then_some(found)
    })
    .await;
    assert!(
        events[0]
            .note
            .clone()
            .unwrap_or_default()
            .contains("spec.components[0].backup.schedule")
    );
    assert_eq!(
        names::<Deployment>(&client).await.len(),
        2,
        "an invalid App changes nothing"
    );

    // Fix it and delete: children go before parents, nothing is left.
    apply_app(&client, &app).await;
    eventually("App Ready again", 30, || app_ready(&client, "shop")).await;
    let order = Arc::new(Mutex::new(Vec::<(u64, String)>::new()));
    record_deletions::<Pod>(&client, "Pod", order.clone());
    record_deletions::<Deployment>(&client, "Deployment", order.clone());
    record_deletions::<Group>(&client, "Group", order.clone());
    record_deletions::<Component>(&client, "Component", order.clone());
    record_deletions::<App>(&client, "App", order.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    Api::<App>::namespaced(client.clone(), NS)
        .delete("shop", &DeleteParams::default())
        .await
        .expect("delete");
    eventually("everything gone", 60, || async {
        let empty = names::<App>(&client).await.is_empty()
            && names::<Component>(&client).await.is_empty()
            && names::<Group>(&client).await.is_empty()
            && names::<Deployment>(&client).await.is_empty()
            && names::<Pod>(&client).await.is_empty()
            && names::<PersistentVolumeClaim>(&client).await.is_empty()
            && names::<Service>(&client).await.is_empty()
            && names::<ConfigMap>(&client).await.is_empty();
        empty.then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The store's resourceVersion orders deletions across kinds; watch
    // streams of different kinds may deliver close events in either order.
    let mut order = order.lock().expect("lock").clone();
    order.sort();
    let order: Vec<String> = order.into_iter().map(|(_, k)| k).collect();
    let last = |k: &str| {
        order
            .iter()
            .rposition(|x| x == k)
            .unwrap_or_else(|| panic!("no {k} deletion seen in {order:?}"))
    };
    let first = |k: &str| {
        order
            .iter()
            .position(|x| x == k)
            .unwrap_or_else(|| panic!("no {k} deletion seen in {order:?}"))
    };
    assert!(last("Pod") < first("Group"), "{order:?}");
    assert!(last("Deployment") < first("Group"), "{order:?}");
    assert!(last("Group") < first("Component"), "{order:?}");
    assert!(last("Component") < first("App"), "{order:?}");
    platform.stop().await;
}

fn record_deletions<K>(client: &Client, kind: &'static str, order: Arc<Mutex<Vec<(u64, String)>>>)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
{
    let api: Api<K> = Api::all(client.clone());
    tokio::spawn(async move {
        let mut stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(ev) = stream.next().await {
            if let Ok(watcher::Event::Delete(obj)) = ev
                && let Ok(mut o) = order.lock()
            {
                let rv = obj
                    .resource_version()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                o.push((rv, kind.to_string()));
            }
        }
    });
}
