//! PluginRegistry as an outside team's generated client sees it (plain
//! HTTP/2, no server internals): every method's error codes and google.rpc
//! details as plugin.proto documents them, ValidatePlugin's `file:line`, the
//! version vocabulary, health by service name, reflection v1 and v1alpha, and
//! a start with MIDPLANE_KUBECONFIG set.

use midplane_proto::plugin::plugin_registry_client::PluginRegistryClient;
use midplane_proto::plugin::{self as pb};
use midplane_runtime::testing::SpawnedService;
use midplane_runtime::testing::contract::{
    PlainTransport, assert_error, assert_health, assert_reflection, error_info, plain_transport,
    resource,
};
use std::path::{Path, PathBuf};
use tonic::Code;

const SERVICE: &str = "midplane.plugin.v1.PluginRegistry";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn client(svc: &SpawnedService) -> PluginRegistryClient<PlainTransport> {
    let (transport, origin) = plain_transport(svc.grpc_addr);
    PluginRegistryClient::with_origin(transport, origin)
}

/// The redis plugin's files with `line` (1-based) of `template` replaced.
fn redis_files_with(template: &str, line: usize, text: &str) -> pb::PluginFiles {
    let redis = midplane_plugin::registry::bundled()
        .expect("bundled")
        .get("redis")
        .expect("redis");
    let mut files: std::collections::HashMap<String, String> =
        redis.files.clone().into_iter().collect();
    let src = files.get_mut(template).expect("template");
    let mut lines: Vec<String> = src.lines().map(str::to_string).collect();
    lines[line - 1] = text.to_string();
    *src = lines.join("\n") + "\n";
    pb::PluginFiles { files }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let dst = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &dst);
        } else {
            std::fs::copy(entry.path(), dst).expect("copy");
        }
    }
}

/// A directory of this test's own under the system temp dir, removed on drop.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir = std::env::temp_dir().join(format!(
            "plugin-svc-contract-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self(dir)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_answers_its_documented_errors() {
    // A plugins directory whose redis fails while rendering, at a known line.
    let dir = ScratchDir::new();
    let plugins = dir.0.join("plugins");
    copy_dir(&repo().join("plugins/redis"), &plugins.join("redis"));
    let deployment = plugins.join("redis/templates/deployment.yaml");
    let src = std::fs::read_to_string(&deployment).expect("deployment.yaml");
    let mut lines: Vec<&str> = src.lines().collect();
    lines.insert(
        1,
        r#"{{- required "values.mustSet is required" .Values.mustSet }}"#,
    );
    std::fs::write(&deployment, lines.join("\n") + "\n").expect("write");

    let svc = SpawnedService::start(
        env!("CARGO_BIN_EXE_plugin-svc"),
        &[
            ("MIDPLANE_KUBE__WATCH", "false"),
            ("MIDPLANE_PLUGINS_DIR", plugins.to_str().expect("utf8")),
            // The CLI's variable: warned about, not fatal.
            ("MIDPLANE_KUBECONFIG", "/nonexistent/kubeconfig"),
        ],
    )
    .expect("start plugin-svc");
    assert_health(svc.grpc_addr, &[SERVICE]).await;
    assert_reflection(svc.grpc_addr, None, &[SERVICE]).await;
    let mut api = client(&svc);

    // ListPlugins: the vocabulary.
    let list = api
        .list_plugins(pb::ListPluginsRequest {})
        .await
        .expect("list")
        .into_inner();
    let redis = &list.plugins[0];
    assert_eq!(redis.plugin_version, "0.1.0");
    assert!(
        redis.plugin_hash.starts_with("sha256:"),
        "{}",
        redis.plugin_hash
    );
    assert!(redis.middleware_versions.contains(&"7.2".to_string()));
    assert_eq!(redis.default_middleware_version, "7.2");

    // GetPlugin
    let err = api
        .get_plugin(pb::GetPluginRequest::default())
        .await
        .expect_err("no name");
    assert_error(&err, Code::InvalidArgument, "REQUEST_INVALID", &["name"]);
    let err = api
        .get_plugin(pb::GetPluginRequest {
            name: "mongodb".into(),
            plugin_version: String::new(),
        })
        .await
        .expect_err("unknown");
    assert_error(&err, Code::NotFound, "PLUGIN_NOT_FOUND", &[]);
    assert_eq!(
        resource(&err),
        Some(("Plugin".to_string(), "mongodb".to_string()))
    );
    let err = api
        .get_plugin(pb::GetPluginRequest {
            name: "redis".into(),
            plugin_version: "9.9.9".into(),
        })
        .await
        .expect_err("other version");
    assert_error(&err, Code::NotFound, "PLUGIN_VERSION_NOT_FOUND", &[]);
    assert_eq!(
        error_info(&err)
            .metadata
            .get("servedPluginVersion")
            .map(String::as_str),
        Some("0.1.0")
    );

    // ValidatePlugin: a broken plugin is an answer naming file and line.
    let err = api
        .validate_plugin(pb::ValidatePluginRequest { files: None })
        .await
        .expect_err("no files");
    assert_error(&err, Code::InvalidArgument, "REQUEST_INVALID", &["files"]);
    let broken = redis_files_with("templates/service.yaml", 4, "  name: {{ nosuchfunc . }}");
    let answer = api
        .validate_plugin(pb::ValidatePluginRequest {
            files: Some(broken),
        })
        .await
        .expect("an invalid plugin is an answer")
        .into_inner();
    assert!(!answer.valid);
    assert_eq!(answer.errors.len(), 1, "{:?}", answer.errors);
    assert_eq!(answer.errors[0].field, "templates/service.yaml:4");
    assert!(
        answer.errors[0].message.contains("nosuchfunc"),
        "{:?}",
        answer.errors[0]
    );
    let good = redis_files_with("templates/service.yaml", 1, "# a comment");
    let answer = api
        .validate_plugin(pb::ValidatePluginRequest { files: Some(good) })
        .await
        .expect("valid")
        .into_inner();
    assert!(answer.valid, "{:?}", answer.errors);

    // RenderPreview
    let app = std::fs::read_to_string(repo().join("examples/redis-app.yaml")).expect("example");
    let err = api
        .render_preview(pb::RenderPreviewRequest {
            plugin: String::new(),
            app_yaml: "spec: [".into(),
        })
        .await
        .expect_err("not YAML");
    assert_error(
        &err,
        Code::InvalidArgument,
        "REQUEST_INVALID",
        &["app_yaml"],
    );
    let err = api
        .render_preview(pb::RenderPreviewRequest {
            plugin: "mongodb".into(),
            app_yaml: app.clone(),
        })
        .await
        .expect_err("unknown plugin");
    assert_error(&err, Code::NotFound, "PLUGIN_NOT_FOUND", &[]);
    let err = api
        .render_preview(pb::RenderPreviewRequest {
            plugin: String::new(),
            app_yaml: app.replace("replicas: 3", "replicas: 0"),
        })
        .await
        .expect_err("invalid App");
    assert_error(
        &err,
        Code::InvalidArgument,
        "APP_INVALID",
        &["spec.components[0].replicas"],
    );
    let err = api
        .render_preview(pb::RenderPreviewRequest {
            plugin: "redis".into(),
            app_yaml: app,
        })
        .await
        .expect_err("the template fails");
    assert_error(
        &err,
        Code::InvalidArgument,
        "RENDER_FAILED",
        &["templates/deployment.yaml:2"],
    );
}
