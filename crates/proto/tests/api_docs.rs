//! The committed gRPC API reference (docs/api.md) must be what the protos generate.

use midplane_proto::docs::{REGENERATE, api_markdown};
use std::path::PathBuf;

#[test]
fn api_md_matches_the_protos() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/api.md");
    let generated = api_markdown().expect("render docs/api.md");
    if std::env::var("MIDPLANE_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &generated)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        return;
    }
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading docs/api.md: {e}; generate it with `{REGENERATE}`"));
    if committed == generated {
        return;
    }
    let (line, ours, theirs) = committed
        .lines()
        .chain(std::iter::repeat("<end>"))
        .zip(generated.lines().chain(std::iter::repeat("<end>")))
        .enumerate()
        .find(|(_, (a, b))| a != b)
        .map(|(i, (a, b))| (i + 1, a.to_owned(), b.to_owned()))
        .unwrap_or_default();
    panic!(
        "docs/api.md is out of date with proto/ (first difference at line {line}):\n  \
         committed: {ours}\n  generated: {theirs}\nregenerate with `{REGENERATE}` and commit the result"
    );
}

#[test]
fn every_method_documents_its_errors() {
    let doc = api_markdown().expect("render");
    for (service, methods) in [
        (
            "AppService",
            ["ApplyApp", "GetApp", "ListApps", "DeleteApp", "WatchApps"].as_slice(),
        ),
        (
            "GroupService",
            &["GetGroup", "ListGroups", "Rerender", "Switchover"],
        ),
        (
            "PluginRegistry",
            &[
                "ListPlugins",
                "GetPlugin",
                "ValidatePlugin",
                "RenderPreview",
            ],
        ),
        (
            "BackupService",
            &[
                "CreateBackup",
                "ListBackups",
                "GetBackup",
                "DeleteBackup",
                "Restore",
                "Verify",
                "ApplyRetention",
                "RequestAppBackup",
                "GetAppBackup",
                "ListAppBackups",
            ],
        ),
    ] {
        for m in methods {
            let heading = format!("#### {service}.{m}\n");
            let at = doc
                .find(&heading)
                .unwrap_or_else(|| panic!("{service}.{m} missing from docs/api.md"));
            let section = &doc[at + heading.len()..];
            let section = &section[..section.find("\n#### ").unwrap_or(section.len())];
            assert!(
                section.contains("Errors"),
                "{service}.{m}: its proto comment documents no errors:\n{section}"
            );
        }
    }
    for (reason, _) in midplane_proto::reason::ALL {
        assert!(
            doc.contains(&format!("| `{reason}` |")),
            "{reason} not listed"
        );
    }
}
