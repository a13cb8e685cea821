//! The committed CRDs in k8s/crds/ must be exactly what the Rust types generate.

#[test]
fn committed_crds_match_the_rust_types() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../k8s/crds");
    for (file, crd) in midplane_api::crd::all() {
        let path = dir.join(file);
        let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run `cargo run -p midplane-api --bin crdgen`",
                path.display()
            )
        });
        let generated = midplane_api::crd::to_yaml(&crd).expect("serialize CRD");
        assert!(
            committed == generated,
            "{} is out of date with the Rust types; run `cargo run -p midplane-api --bin crdgen` and commit",
            path.display()
        );
    }
}

#[test]
fn crds_are_namespaced_with_status_and_short_names() {
    for (_, crd) in midplane_api::crd::all() {
        assert_eq!(crd.spec.group, "midplane.dev");
        assert_eq!(crd.spec.scope, "Namespaced");
        let v = &crd.spec.versions[0];
        assert_eq!(v.name, "v1alpha1");
        assert!(
            v.subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some()
        );
        assert!(
            !crd.spec
                .names
                .short_names
                .clone()
                .unwrap_or_default()
                .is_empty()
        );
        assert!(
            !v.additional_printer_columns
                .clone()
                .unwrap_or_default()
                .is_empty()
        );
    }
}
