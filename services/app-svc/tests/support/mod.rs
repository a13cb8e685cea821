//! What the app-svc contract tests share: app-svc started against the API
//! emulator, a generated client over plain HTTP/2, and request builders.
#![allow(dead_code)]

use midplane_kube_emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use midplane_proto::app::app_service_client::AppServiceClient;
use midplane_proto::app::{self as pb};
use midplane_runtime::testing::SpawnedService;
use midplane_runtime::testing::contract::{PlainTransport, plain_transport};

pub struct Setup {
    pub emu: EmulatorHandle,
    pub svc: SpawnedService,
    pub kube: kube::Client,
    _dir: tempfile::TempDir,
}

pub async fn setup(config: EmulatorConfig, extra_env: &[(&str, &str)]) -> Setup {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let emu = Emulator::start(EmulatorConfig {
        crd_dir: Some(root.join("k8s/crds")),
        namespaces: vec!["midplane-system".into(), "shop".into()],
        ..config
    })
    .await
    .expect("emulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    emu.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let kc = kubeconfig.to_str().expect("utf8").to_string();
    let mut env = vec![
        ("MIDPLANE_KUBE__KUBECONFIG", kc.as_str()),
        ("MIDPLANE_SERVER__LOG__LEVEL", "warn"),
        ("MIDPLANE_LEADER_ELECTION__LEASE_SECONDS", "2"),
    ];
    env.extend_from_slice(extra_env);
    let svc = SpawnedService::start(env!("CARGO_BIN_EXE_app-svc"), &env).expect("app-svc");
    let kube =
        kube::Client::try_from(kube::Config::new(emu.url().parse().expect("url"))).expect("client");
    Setup {
        emu,
        svc,
        kube,
        _dir: dir,
    }
}

pub fn client(s: &Setup) -> AppServiceClient<PlainTransport> {
    let (transport, origin) = plain_transport(s.svc.grpc_addr);
    AppServiceClient::with_origin(transport, origin)
}

pub fn component(name: &str) -> pb::ComponentSpec {
    pb::ComponentSpec {
        name: name.into(),
        plugin: "redis".into(),
        ..pb::ComponentSpec::default()
    }
}

pub fn app(ns: &str, name: &str, components: Vec<pb::ComponentSpec>) -> pb::App {
    pb::App {
        namespace: ns.into(),
        name: name.into(),
        spec: Some(pb::AppSpec { components }),
        ..pb::App::default()
    }
}

pub fn apply(app: pb::App) -> pb::ApplyAppRequest {
    pb::ApplyAppRequest {
        app: Some(app),
        dry_run: false,
        force: false,
    }
}
