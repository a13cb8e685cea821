//! What tests that run the suite's own binaries share: the binaries built
//! beside the test, and a RabbitMQ vhost of their own.

use std::path::PathBuf;

/// The directory of the workspace's binaries (target/<profile>), beside this test.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .to_path_buf()
}

/// A workspace binary (`app-svc`, `kube-emulator`…); fails the test with the
/// command that builds it when it is missing.
pub fn binary(name: &str) -> String {
    let path = bin_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace` first",
        path.display()
    );
    path.display().to_string()
}

/// An isolated RabbitMQ vhost (`<prefix>-<pid>`), removed on drop, so a test's
/// exchanges and queues never meet another's.
pub struct Vhost(String);

impl Vhost {
    pub fn create(prefix: &str) -> Self {
        let name = format!("{prefix}-{}", std::process::id());
        for args in [
            vec!["add_vhost", name.as_str()],
            vec![
                "set_permissions",
                "-p",
                name.as_str(),
                "guest",
                ".*",
                ".*",
                ".*",
            ],
        ] {
            let out = std::process::Command::new("rabbitmqctl")
                .arg("-q")
                .args(&args)
                .output()
                .expect("rabbitmqctl: run scripts/services/rabbitmq.sh");
            assert!(
                out.status.success(),
                "rabbitmqctl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Self(name)
    }

    /// The AMQP URL of the vhost (guest on the local broker).
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:5672/{}", self.0)
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        let _ = std::process::Command::new("rabbitmqctl")
            .args(["-q", "delete_vhost", &self.0])
            .output();
    }
}
