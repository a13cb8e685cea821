//! A component's restoreFrom and a backup policy's key Secret through the gRPC App API:
//! ApplyApp stores them in the App resource as the CRD spells them, and GetApp answers them
//! back unchanged.

mod support;
use support::{app, apply, client, component, setup};

use kube::api::Api;
use midplane_api::App;
use midplane_kube_emulator::EmulatorConfig;
use midplane_proto::app::{self as pb};
use midplane_runtime::testing::contract::object_ref;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_from_and_the_key_secret_round_trip() {
    let s = setup(EmulatorConfig::default(), &[]).await;
    let mut c = component("cache");
    c.restore_from = Some(pb::RestoreFrom {
        backup: "shop-cache-nightly".into(),
        ..Default::default()
    });
    c.backup = Some(pb::BackupPolicy {
        enabled: true,
        schedule: "0 3 * * *".into(),
        storage: "nightly".into(),
        key_secret: "cache-key".into(),
        ..Default::default()
    });
    let mut other = component("other");
    other.restore_from = Some(pb::RestoreFrom {
        storage: "s3://bucket/prefix".into(),
        id: "20261203T100000Z-abcdef".into(),
        key_secret: "old-key".into(),
        credentials_secret: "s3-creds".into(),
        ..Default::default()
    });
    let mut api = client(&s);
    api.apply_app(apply(app(
        "shop",
        "restored",
        vec![c.clone(), other.clone()],
    )))
    .await
    .expect("apply");

    let stored = Api::<App>::namespaced(s.kube.clone(), "shop")
        .get("restored")
        .await
        .expect("the App resource");
    let rf = stored.spec.components[0]
        .spec
        .restore_from
        .clone()
        .expect("restoreFrom stored");
    assert_eq!(rf.backup, "shop-cache-nightly");
    assert_eq!(
        stored.spec.components[0]
            .spec
            .backup
            .as_ref()
            .and_then(|b| b.key_secret.as_deref()),
        Some("cache-key")
    );
    let rf = stored.spec.components[1]
        .spec
        .restore_from
        .clone()
        .expect("restoreFrom stored");
    assert_eq!(
        (
            rf.storage.as_str(),
            rf.id.as_str(),
            rf.key_secret.as_deref(),
            rf.credentials_secret.as_deref()
        ),
        (
            "s3://bucket/prefix",
            "20261203T100000Z-abcdef",
            Some("old-key"),
            Some("s3-creds")
        )
    );

    let got = api
        .get_app(pb::GetAppRequest {
            r#ref: object_ref("shop", "restored"),
        })
        .await
        .expect("get")
        .into_inner();
    let comps = got.spec.expect("spec").components;
    assert_eq!(comps[0].restore_from, c.restore_from);
    assert_eq!(
        comps[0].backup.as_ref().map(|b| b.key_secret.as_str()),
        Some("cache-key")
    );
    assert_eq!(comps[1].restore_from, other.restore_from);
}
