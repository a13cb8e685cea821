//! `midplane events tail` prints what is published on the real broker. The
//! test uses an exchange of its own: nothing else binds to it, so a publish
//! is routable exactly when the tail's own queue is bound.

use midplane_bus::catalogue::{ObjectRef, PluginUpdated};
use midplane_bus::{BusConfig, BusError, Publisher};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test]
async fn tail_prints_a_published_event() {
    let exchange = format!("midplane.test.cli-tail.{}", std::process::id());
    let bus = BusConfig::from_env()
        .expect("bus config")
        .with_source("/midplane/test/cli")
        .with_exchange(exchange.clone());
    let mut child = Command::new(env!("CARGO_BIN_EXE_midplane"))
        .args([
            "events",
            "--exchange",
            &exchange,
            "tail",
            "--type",
            "midplane.plugin.*",
            "--count",
            "1",
            "--output",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tail");
    let publisher = Publisher::connect(bus.clone()).await.unwrap_or_else(|e| {
        panic!("RabbitMQ not reachable ({e}); start it with scripts/services/rabbitmq.sh")
    });
    let event = PluginUpdated {
        plugin: "cli-tail-test".into(),
        plugin_version: "0.0.1".into(),
        plugin_hash: "sha256:00".into(),
        previous_plugin_hash: None,
        config_map: ObjectRef::new("midplane-system", "midplane-plugin-cli-tail-test"),
    };
    // Unroutable until the tail's queue is bound.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match publisher.publish(&event).await {
            Ok(_) => break,
            Err(BusError::Unroutable { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("publish: {e}"),
        }
    }
    // The tail stops after one event; it must not hang the suite if none comes.
    let waited = Instant::now();
    while child.try_wait().expect("poll tail").is_none() {
        if waited.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("the tail printed nothing within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = child.wait_with_output().expect("tail output");
    let _ = midplane_bus::topology::delete_exchange(&bus).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    let ce: serde_json::Value =
        serde_json::from_str(line.lines().next().expect("one line")).expect("CloudEvent JSON");
    assert_eq!(ce["type"], "midplane.plugin.updated");
    assert_eq!(ce["specversion"], "1.0");
    assert_eq!(ce["data"]["plugin"], "cli-tail-test");
}
