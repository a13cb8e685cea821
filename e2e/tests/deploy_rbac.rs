//! k8s/'s RBAC, on the emulator with RBAC enforced: the base is applied as a user would,
//! each service runs under its own ServiceAccount's token (wired as its main.rs wires it:
//! plugin sources, leader election, controllers, the backup scheduler, the gateway's Pod
//! lookups), the example App goes to Ready and is deleted again. Then the emulator's audit
//! shows that no service was refused anything (the RBAC is enough) and which granted
//! permissions the flow never used (the RBAC is no wider than needed: each one left over
//! is listed below with the code path that needs it).

use k8s_openapi::api::apps::v1::Deployment;
use kube::Client;
use kube::api::{Api, DeleteParams};
use midplane_api::App;
use midplane_e2e::{NS, app_ready, apply_app, eventually, example_app, names, root};
use midplane_kube_emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use midplane_operator::leader::LeaderElectionConfig;
use midplane_operator::plugins::{PluginStore, sources};
use midplane_operator::readiness::Readiness;
use midplane_runtime::{Health, Shutdown};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const SYSTEM: &str = "midplane-system";

#[path = "deploy_rbac/expected.rs"]
mod expected;
use expected::{Permission, expected_unused, p};

fn render_base() -> Vec<Value> {
    midplane_e2e::manifests::kustomize("base")
}

/// Creates every object as the administrator, as `kubectl apply -k` would.
async fn apply_all(admin: &Client, docs: &[Value]) {
    for doc in docs {
        midplane_e2e::manifests::create(admin, doc).await;
    }
}

/// What the base grants each ServiceAccount of midplane-system, through any binding.
fn granted(docs: &[Value]) -> BTreeMap<String, BTreeSet<Permission>> {
    let role = |kind: &str, name: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{kind} {name}"))
            .clone()
    };
    let mut out: BTreeMap<String, BTreeSet<Permission>> = BTreeMap::new();
    for b in docs
        .iter()
        .filter(|d| d["kind"] == "RoleBinding" || d["kind"] == "ClusterRoleBinding")
    {
        let r = role(
            b["roleRef"]["kind"].as_str().expect("kind"),
            b["roleRef"]["name"].as_str().expect("name"),
        );
        for s in b["subjects"].as_array().expect("subjects") {
            let sa = s["name"].as_str().expect("subject").to_string();
            let set = out.entry(sa).or_default();
            for rule in r["rules"].as_array().expect("rules") {
                for g in rule["apiGroups"].as_array().expect("apiGroups") {
                    for res in rule["resources"].as_array().expect("resources") {
                        for v in rule["verbs"].as_array().expect("verbs") {
                            set.insert((
                                g.as_str().expect("group").into(),
                                res.as_str().expect("resource").into(),
                                v.as_str().expect("verb").into(),
                            ));
                        }
                    }
                }
            }
        }
    }
    out
}

/// A kubeconfig file for the ServiceAccount `name` of midplane-system (HTTPS, its token).
fn kubeconfig_for(emu: &EmulatorHandle, dir: &Path, name: &str) -> PathBuf {
    let token = emu
        .service_account_token(SYSTEM, name)
        .unwrap_or_else(|e| panic!("token for {name}: {e:?}"));
    let path = dir.join(format!("{name}.kubeconfig"));
    std::fs::write(&path, emu.kubeconfig_with_token(&token)).expect("write kubeconfig");
    path
}

async fn client_for(kubeconfig: &Path) -> Client {
    midplane_operator::kube_client(Some(kubeconfig))
        .await
        .expect("client")
}

fn leader_election() -> LeaderElectionConfig {
    LeaderElectionConfig {
        namespace: SYSTEM.into(),
        ..LeaderElectionConfig::default()
    }
}

/// app-svc as its main.rs runs it: plugin sources, then the controllers under its Lease.
async fn start_app_svc(client: Client, stop: &Shutdown) {
    let plugins = PluginStore::new(midplane_plugin::registry::bundled().expect("plugins"));
    sources::route(
        None,
        "app-svc",
        client.clone(),
        SYSTEM.into(),
        plugins.clone(),
        stop.clone(),
    )
    .await
    .expect("plugin sources");
    let ctx = Arc::new(midplane_app_svc::Context::new(client.clone(), plugins));
    let stop = stop.clone();
    tokio::spawn(async move {
        let readiness = Readiness::new(Health::new());
        let work = midplane_app_svc::run::run_controllers(ctx, stop.clone());
        let wait = async move { stop.wait().await };
        midplane_operator::leader::run_as_leader(
            client,
            &leader_election(),
            "app-svc",
            &readiness,
            wait,
            work,
            || {},
        )
        .await;
    });
}

/// group-svc as its main.rs runs it (no agent gateway: simulated Pods have no agents).
async fn start_group_svc(client: Client, stop: &Shutdown) {
    let plugins = PluginStore::new(midplane_plugin::registry::bundled().expect("plugins"));
    sources::route(
        None,
        "group-svc",
        client.clone(),
        SYSTEM.into(),
        plugins.clone(),
        stop.clone(),
    )
    .await
    .expect("plugin sources");
    let ctx = Arc::new(midplane_group_svc::Context::new(client.clone(), plugins));
    let stop = stop.clone();
    tokio::spawn(async move {
        let readiness = Readiness::new(Health::new());
        let work = midplane_group_svc::run::run_controller(ctx, stop.clone());
        let wait = async move { stop.wait().await };
        midplane_operator::leader::run_as_leader(
            client,
            &leader_election(),
            "group-svc",
            &readiness,
            wait,
            work,
            || {},
        )
        .await;
    });
}

/// plugin-svc's watcher, as its main.rs runs it.
async fn start_plugin_svc(client: Client, stop: &Shutdown) {
    let store = PluginStore::new(midplane_plugin::registry::bundled().expect("plugins"));
    let (sink, _) = midplane_bus::EventSink::connect(None, "plugin")
        .await
        .expect("no bus");
    let events = midplane_operator::EventRecorder::new(client.clone(), "midplane-plugin-svc");
    let stop = stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = midplane_plugin_svc::watch::run(client, SYSTEM.into(), store, events, sink) => {}
            _ = stop.wait() => {}
        }
    });
}

/// Who did what: (user → permissions used), and every refusal.
fn used(emu: &EmulatorHandle) -> (BTreeMap<String, BTreeSet<Permission>>, Vec<String>) {
    let prefix = format!("system:serviceaccount:{SYSTEM}:");
    let mut out: BTreeMap<String, BTreeSet<Permission>> = BTreeMap::new();
    let mut refused = Vec::new();
    for r in emu.audit() {
        let Some(sa) = r.user.strip_prefix(&prefix) else {
            continue;
        };
        let a = &r.attributes;
        if r.code == 403 {
            refused.push(format!("{sa}: {a:?}"));
        }
        if !a.is_resource() {
            continue;
        }
        let resource = if a.subresource.is_empty() {
            a.resource.clone()
        } else {
            format!("{}/{}", a.resource, a.subresource)
        };
        out.entry(sa.to_string())
            .or_default()
            .insert((a.group.clone(), resource, a.verb.clone()));
    }
    (out, refused)
}

/// Objects of a kind in [`NS`], including those being deleted.
async fn count<K>(client: &Client) -> usize
where
    K: kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(client.clone(), NS)
        .list(&kube::api::ListParams::default())
        .await
        .map(|l| l.items.len())
        .unwrap_or(usize::MAX)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_does_its_work_under_its_own_service_account_and_needs_all_it_is_granted() {
    let docs = render_base();
    let emu = Emulator::start(EmulatorConfig {
        namespaces: vec![NS.into(), SYSTEM.into()],
        secure_addr: Some("127.0.0.1:0".parse().expect("addr")),
        pod_ready_delay: Duration::from_millis(100),
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator");
    let admin = Client::try_from(
        kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::from_yaml(&emu.kubeconfig_yaml()).expect("kubeconfig"),
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .expect("config"),
    )
    .expect("admin client");
    apply_all(&admin, &docs).await;

    let dir = tempfile::tempdir().expect("temp dir");
    let stop = Shutdown::new();
    start_plugin_svc(
        client_for(&kubeconfig_for(&emu, dir.path(), "plugin-svc")).await,
        &stop,
    )
    .await;
    start_app_svc(
        client_for(&kubeconfig_for(&emu, dir.path(), "app-svc")).await,
        &stop,
    )
    .await;
    start_group_svc(
        client_for(&kubeconfig_for(&emu, dir.path(), "group-svc")).await,
        &stop,
    )
    .await;
    // backup-svc's scheduler in job mode, from its configuration as k8s/ sets it.
    let mut backup: midplane_backup_svc::Config = serde_yaml::from_str(
        std::fs::read_to_string(root().join("k8s/base/backup-svc/backup-svc.yaml"))
            .expect("backup-svc config")
            .as_str(),
    )
    .expect("backup-svc config parses");
    backup.scheduler.kubeconfig = Some(kubeconfig_for(&emu, dir.path(), "backup-svc"));
    // No agents run here: the Backup controller's Jobs read live files (no gateway token).
    backup.controller.gateway_addr = None;
    backup.controller.gateway_token_file = None;
    let (sink, _) = midplane_backup_svc::startup::event_sink(&backup.bus)
        .await
        .expect("no bus");
    let scheduler =
        midplane_backup_svc::startup::start_scheduler(&backup, sink, stop.clone(), Health::new())
            .await
            .expect("scheduler");

    // The user's App, applied as the administrator, goes to Ready through the services.
    let app = example_app();
    apply_app(&admin, &app).await;
    eventually("App Ready", 60, || app_ready(&admin, "shop")).await;
    assert_eq!(names::<Deployment>(&admin).await.len(), 3);

    // The agent gateway finds the Group's Pods with its own account.
    let gateway = midplane_agent_gateway::kube_resolver::KubeResolver::new(
        client_for(&kubeconfig_for(&emu, dir.path(), "agent-gateway")).await,
    );
    let targets = eventually("the gateway sees the Group's Pods", 30, || async {
        use midplane_agent_gateway::resolver::PodResolver as _;
        gateway
            .resolve(NS, "shop-cache-0")
            .await
            .ok()
            .filter(|t| t.len() == 3)
    })
    .await;
    assert_eq!(targets.len(), 3);

    // A Backup, created as the administrator, is taken up by backup-svc under its own
    // account: finalizer, status, the Job (applied, then read); deleted, its finalizer runs.
    let store = dir.path().join("backups");
    let mut b = midplane_api::Backup::new(
        "shop-cache-now",
        midplane_api::BackupSpec {
            app: "shop".into(),
            component: "cache".into(),
            storage: format!("file://{}", store.display()),
            key_secret: Some("shop-backup-key".into()),
            ..Default::default()
        },
    );
    b.metadata.namespace = Some(NS.into());
    let backups: Api<midplane_api::Backup> = Api::namespaced(admin.clone(), NS);
    backups
        .create(&kube::api::PostParams::default(), &b)
        .await
        .expect("create Backup");
    let job = eventually("the Backup Running with its Job", 30, || async {
        let st = backups.get("shop-cache-now").await.ok()?.status?;
        (st.phase == "Running").then_some(st.job?)
    })
    .await;
    // The emulated Job completes; the controller, woken by it, reads the Job (the backup
    // itself never reaches the storage: no Pod runs here).
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(admin.clone(), NS);
    eventually("the Backup Job complete", 30, || async {
        let j = jobs.get(&job).await.ok()?;
        j.status?
            .conditions?
            .iter()
            .any(|c| c.type_ == "Complete" && c.status == "True")
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    backups
        .delete("shop-cache-now", &DeleteParams::default())
        .await
        .expect("delete Backup");
    eventually("the Backup gone", 30, || async {
        backups
            .get_opt("shop-cache-now")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;

    // A Restore, created as the administrator, is run by backup-svc under its own account:
    // the Group read and held (its annotation applied), the instance Pods listed until
    // group-svc stopped them all, a Job per instance, the hold taken off, the Group Ready
    // again; deleted, its finalizer goes.
    let mut r = midplane_api::Restore::new(
        "shop-back",
        midplane_api::RestoreSpec {
            app: "shop".into(),
            component: "cache".into(),
            group: String::new(),
            from: midplane_api::RestoreFrom {
                storage: format!("file://{}", store.display()),
                id: "20261203T100000Z-abcdef".into(),
                key_secret: Some("shop-backup-key".into()),
                ..Default::default()
            },
        },
    );
    r.metadata.namespace = Some(NS.into());
    let restores: Api<midplane_api::Restore> = Api::namespaced(admin.clone(), NS);
    restores
        .create(&kube::api::PostParams::default(), &r)
        .await
        .expect("create Restore");
    let done = eventually("the Restore Completed", 90, || async {
        let st = restores.get("shop-back").await.ok()?.status?;
        assert_ne!(st.phase, "Failed", "{st:?}");
        (st.phase == "Completed").then_some(st)
    })
    .await;
    assert_eq!(done.jobs.len(), 3, "{done:?}");
    restores
        .delete("shop-back", &DeleteParams::default())
        .await
        .expect("delete Restore");
    eventually("the Restore gone", 30, || async {
        restores
            .get_opt("shop-back")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;

    // Deleted, the App and everything under it go (finalizers run under the services' accounts).
    Api::<App>::namespaced(admin.clone(), NS)
        .delete("shop", &DeleteParams::default())
        .await
        .expect("delete App");
    // Gone for good (not merely being deleted): every finalizer ran.
    eventually("App, Components, Groups and workloads gone", 60, || async {
        let left = count::<App>(&admin).await
            + count::<midplane_api::Component>(&admin).await
            + count::<midplane_api::Group>(&admin).await
            + count::<Deployment>(&admin).await;
        (left == 0).then_some(())
    })
    .await;
    stop.trigger();
    let _ = tokio::time::timeout(Duration::from_secs(10), scheduler).await;

    let (used, refused) = used(&emu);
    assert_eq!(refused, Vec::<String>::new(), "requests RBAC refused");
    let granted = granted(&docs);
    let expected = expected_unused();
    let mut mismatches = Vec::new();
    for (sa, grants) in &granted {
        let used = used.get(sa).cloned().unwrap_or_default();
        let beyond: Vec<_> = used.difference(grants).collect();
        assert!(
            beyond.is_empty(),
            "{sa} used what it is not granted: {beyond:?}"
        );
        // Whether these are used depends on timing (a Lease renewal, a repeated Event, the
        // garbage collector racing the cleanup): they count neither way.
        let timing = [
            p("coordination.k8s.io", "leases", "update"),
            p("events.k8s.io", "events", "create"),
            p("events.k8s.io", "events", "patch"),
            p("apps", "deployments", "delete"),
            p("", "services", "delete"),
            p("", "configmaps", "delete"),
            p("", "persistentvolumeclaims", "delete"),
            // The Component's cleanup deletes its Groups unless the garbage collector
            // removed them first (seen both ways).
            p("midplane.dev", "groups", "delete"),
        ];
        let unused: BTreeSet<Permission> = grants
            .difference(&used)
            .filter(|x| !timing.contains(x))
            .cloned()
            .collect();
        let want: BTreeSet<Permission> = expected
            .get(sa.as_str())
            .unwrap_or_else(|| panic!("no expectation for {sa}"))
            .iter()
            .filter(|x| !timing.contains(x))
            .cloned()
            .collect();
        if unused != want {
            mismatches.push(format!(
                "{sa}: granted but unused beyond the expected {:?}; expected unused but used {:?}",
                unused.difference(&want).collect::<Vec<_>>(),
                want.difference(&unused).collect::<Vec<_>>()
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert_eq!(
        granted.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "agent-gateway",
            "app-svc",
            "backup-svc",
            "group-svc",
            "plugin-svc"
        ]
    );
    emu.shutdown().await;
}
