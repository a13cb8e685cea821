//! Selectors, paging, and watches (resume from a resourceVersion, bookmarks, 410 Gone,
//! selector-aware events, sendInitialEvents) — plus kube-runtime's watcher, reflector and
//! Controller with `.owns()` running against the emulator.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::controller::Action;
use kube::runtime::{Controller, WatchStreamExt, reflector, watcher};
use kube::{Resource, ResourceExt};
use midplane_kube_emulator::EmulatorConfig;
use serde_json::json;

fn cm(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).expect("cm")
}

#[tokio::test]
async fn label_and_field_selectors_and_paging() {
    let (emu, client) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for (n, tier) in [
        ("a", "web"),
        ("b", "db"),
        ("c", "web"),
        ("d", "cache"),
        ("e", ""),
    ] {
        let labels = if tier.is_empty() {
            json!({})
        } else {
            json!({"tier": tier})
        };
        cms.create(&PostParams::default(), &cm(n, labels))
            .await
            .expect("create");
    }
    let names = |l: kube::core::ObjectList<ConfigMap>| {
        l.items
            .iter()
            .map(kube::ResourceExt::name_any)
            .collect::<Vec<_>>()
    };
    for (sel, want) in [
        ("tier=web", vec!["a", "c"]),
        ("tier!=web", vec!["b", "d", "e"]),
        ("tier in (db,cache)", vec!["b", "d"]),
        ("tier notin (web)", vec!["b", "d", "e"]),
        ("tier", vec!["a", "b", "c", "d"]),
        ("!tier", vec!["e"]),
    ] {
        let got = names(
            cms.list(&ListParams::default().labels(sel))
                .await
                .expect("list"),
        );
        assert_eq!(got, want, "selector {sel}");
    }
    let got = names(
        cms.list(&ListParams::default().fields("metadata.name=c"))
            .await
            .expect("fields"),
    );
    assert_eq!(got, vec!["c"]);
    let (c, _) = code(cms.list(&ListParams::default().fields("spec.nope=1")).await);
    assert_eq!(c, 400, "unsupported field label");
    // Cluster-wide list spans namespaces.
    let all: Api<ConfigMap> = Api::all(client.clone());
    assert_eq!(
        all.list(&ListParams::default())
            .await
            .expect("all")
            .items
            .len(),
        5
    );
    // Paging: limit + continue walks everything exactly once.
    let mut seen = Vec::new();
    let mut lp = ListParams::default().limit(2);
    loop {
        let page = cms.list(&lp).await.expect("page");
        assert!(page.items.len() <= 2);
        seen.extend(names(page.clone()));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => lp = ListParams::default().limit(2).continue_token(&c),
            None => break,
        }
    }
    assert_eq!(seen, vec!["a", "b", "c", "d", "e"]);
    emu.shutdown().await;
}

#[tokio::test]
async fn watch_resumes_bookmarks_and_translates_selector_moves() {
    let (emu, client) = start_with(EmulatorConfig {
        bookmark_interval: Duration::from_millis(100),
        ..Default::default()
    })
    .await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let first = cms
        .create(&PostParams::default(), &cm("w", json!({"sel": "yes"})))
        .await
        .expect("create");
    let rv = first.resource_version().expect("rv");
    cms.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"a": "1"}})),
    )
    .await
    .expect("modify");
    cms.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"sel": "no"}}})),
    )
    .await
    .expect("leave selector");
    cms.delete("w", &Default::default()).await.expect("delete");
    let wp = WatchParams::default().labels("sel=yes").timeout(2);
    let stream = cms.watch(&wp, &rv).await.expect("watch");
    let events: Vec<String> = stream
        .take(2)
        .map(|e| match e.expect("event") {
            WatchEvent::Added(o) => format!("ADDED {}", o.name_any()),
            WatchEvent::Modified(o) => format!("MODIFIED {}", o.data.unwrap_or_default().len()),
            WatchEvent::Deleted(o) => format!("DELETED {}", o.name_any()),
            WatchEvent::Bookmark(_) => "BOOKMARK".into(),
            WatchEvent::Error(e) => format!("ERROR {}", e.code),
        })
        .collect()
        .await;
    // The object leaving the selector is a DELETED for this watcher; the real delete is not seen.
    assert_eq!(
        events,
        vec!["MODIFIED 1".to_string(), "DELETED w".to_string()]
    );

    let wp = WatchParams {
        bookmarks: true,
        ..WatchParams::default()
    }
    .timeout(5);
    let mut stream = cms
        .watch(&wp, &emu.resource_version().to_string())
        .await
        .expect("watch")
        .boxed();
    let ev = tokio::time::timeout(Duration::from_secs(3), stream.next())
        .await
        .expect("bookmark in time");
    assert!(
        matches!(ev, Some(Ok(WatchEvent::Bookmark(_)))),
        "got {ev:?}"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn too_old_resource_versions_are_410_gone() {
    let (emu, client) = start_with(EmulatorConfig {
        event_window: 5,
        continue_ttl: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let page = cms
        .list(&ListParams::default().limit(1))
        .await
        .expect("list");
    assert!(page.metadata.continue_.is_none(), "nothing to page yet");
    cms.create(&PostParams::default(), &cm("p0", json!({})))
        .await
        .expect("create");
    cms.create(&PostParams::default(), &cm("p1", json!({})))
        .await
        .expect("create");
    let page = cms
        .list(&ListParams::default().limit(1))
        .await
        .expect("list");
    let token = page.metadata.continue_.clone().expect("continue token");
    for i in 0..10 {
        cms.create(&PostParams::default(), &cm(&format!("c{i}"), json!({})))
            .await
            .expect("create");
    }
    let stream = cms
        .watch(&WatchParams::default(), "2")
        .await
        .expect("watch starts");
    let first = stream
        .boxed()
        .next()
        .await
        .expect("an event")
        .expect("decodes");
    match first {
        WatchEvent::Error(e) => {
            assert_eq!(e.code, 410);
            assert!(
                e.message.contains("too old resource version"),
                "{}",
                e.message
            );
        }
        other => panic!("expected 410 ERROR event, got {other:?}"),
    }
    // Continue tokens expire with age (the apiserver's: at etcd compaction).
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (c, reason) = code(
        cms.list(&ListParams::default().limit(1).continue_token(&token))
            .await,
    );
    assert_eq!((c, reason.as_str()), (410, "Expired"));
    // Windows are per resource: churn of Secrets does not expire a ConfigMap watcher.
    let rv = emu.resource_version().to_string();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    for i in 0..10 {
        let s: Secret =
            serde_json::from_value(json!({"metadata": {"name": format!("s{i}")}})).expect("secret");
        secrets
            .create(&PostParams::default(), &s)
            .await
            .expect("secret");
    }
    let mut w = cms
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .expect("watch")
        .boxed();
    cms.create(&PostParams::default(), &cm("after", json!({})))
        .await
        .expect("create");
    match w.next().await {
        Some(Ok(WatchEvent::Added(o))) => assert_eq!(o.name_any(), "after"),
        other => panic!("expected ADDED after, got {other:?}"),
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn kube_runtime_watcher_and_reflector_with_both_initial_list_strategies() {
    let (emu, client) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(&PostParams::default(), &cm("pre", json!({})))
        .await
        .expect("create");
    for cfg in [
        watcher::Config::default(),
        watcher::Config::default().streaming_lists(),
    ] {
        let (reader, writer) = reflector::store::<ConfigMap>();
        let stream = reflector(writer, watcher(cms.clone(), cfg)).applied_objects();
        let task = tokio::spawn(async move {
            let mut s = stream.boxed();
            while s.try_next().await.ok().flatten().is_some() {}
        });
        reader.wait_until_ready().await.expect("reflector ready");
        assert!(reader.state().iter().any(|c| c.name_any() == "pre"));
        let name = format!("live-{}", reader.state().len());
        cms.create(&PostParams::default(), &cm(&name, json!({})))
            .await
            .expect("create");
        eventually("reflector sees the new object", 5, || {
            let reader = reader.clone();
            let name = name.clone();
            async move {
                reader
                    .state()
                    .iter()
                    .any(|c| c.name_any() == name)
                    .then_some(())
            }
        })
        .await;
        task.abort();
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn controller_with_owns_reconciles_on_child_changes() {
    let (emu, client) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let count = Arc::new(AtomicUsize::new(0));
    let ctx = Arc::new((secrets.clone(), count.clone()));
    let ctl = Controller::new(cms.clone(), watcher::Config::default())
        .owns(secrets.clone(), watcher::Config::default())
        .run(
            |cm: Arc<ConfigMap>, ctx: Arc<(Api<Secret>, Arc<AtomicUsize>)>| async move {
                ctx.1.fetch_add(1, Ordering::SeqCst);
                let owner = cm.controller_owner_ref(&()).expect("owner ref");
                let secret = json!({"apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": cm.name_any(), "ownerReferences": [owner]},
                    "stringData": {"copy": "yes"}});
                ctx.0
                    .patch(
                        &cm.name_any(),
                        &PatchParams::apply("test-ctl").force(),
                        &Patch::Apply(secret),
                    )
                    .await?;
                Ok::<_, kube::Error>(Action::await_change())
            },
            |_, _, _| Action::requeue(Duration::from_secs(1)),
            ctx,
        )
        .for_each(|_| async {});
    let task = tokio::spawn(ctl);
    cms.create(&PostParams::default(), &cm("parent", json!({})))
        .await
        .expect("create");
    eventually("child secret", 5, || {
        let s = secrets.clone();
        async move { s.get_opt("parent").await.ok().flatten() }
    })
    .await;
    let before = count.load(Ordering::SeqCst);
    secrets
        .delete("parent", &Default::default())
        .await
        .expect("delete child");
    eventually(
        "child recreated after its deletion triggered a reconcile",
        5,
        || {
            let s = secrets.clone();
            let c = count.clone();
            async move {
                (c.load(Ordering::SeqCst) > before).then_some(())?;
                s.get_opt("parent").await.ok().flatten()
            }
        },
    )
    .await;
    task.abort();
    emu.shutdown().await;
}
