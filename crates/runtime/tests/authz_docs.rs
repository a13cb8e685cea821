//! docs/deploy.md, "Who may call the APIs", prints the permission every public method
//! needs; it must be exactly what the authorization layer checks.

#[test]
fn the_deployment_guide_prints_the_rules_the_layer_checks() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/deploy.md");
    let doc = std::fs::read_to_string(&path).expect("docs/deploy.md");
    let table = midplane_runtime::authz::rules::markdown_table();
    assert!(
        doc.contains(&table),
        "{} does not print the current rules; replace its table with:\n{table}",
        path.display()
    );
}
