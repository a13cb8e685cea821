//! Writes the CRDs into a directory (default `k8s/crds`).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "k8s/crds".to_string());
    std::fs::create_dir_all(&dir)?;
    for (file, crd) in midplane_api::crd::all() {
        let path = std::path::Path::new(&dir).join(file);
        std::fs::write(&path, midplane_api::crd::to_yaml(&crd)?)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
