//! docs/backup-format.md is precise enough to decrypt a backup elsewhere: the Python decoder
//! printed in the document (using the `cryptography` package, not Midplane) decrypts our
//! aes256-gcm and aes256-cbc objects to the exact plaintext archive the manifest hashes.

mod support;

use std::process::Command;

use midplane_backup::{Algorithm, BackupKey, BackupOptions, create_backup};
use support::*;

/// The ```python block of the format document.
fn documented_decoder() -> String {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/backup-format.md"
    ))
    .expect("docs/backup-format.md");
    let start = doc.find("```python\n").expect("python block") + "```python\n".len();
    let len = doc[start..].find("```").expect("end of python block");
    doc[start..start + len].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_decrypts_with_the_documented_recipe() {
    let python = std::path::PathBuf::from(
        std::env::var("MIDPLANE_TOOLS").unwrap_or_else(|_| "/var/tmp/midplane-tools".into()),
    )
    .join("gcs-venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/services/gcs-emulator.sh (it installs `cryptography` too)",
        python.display()
    );
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("src");
    sample_tree(&src);
    let store_root = work.path().join("store");
    let store = fs_store(&store_root);
    let key = BackupKey::from_array([0x6b; 32]);
    let script = work.path().join("decode.py");
    std::fs::write(
        &script,
        format!(
            "{}\nimport sys, hashlib\nblob = open(sys.argv[1], 'rb').read()\nprint(hashlib.sha256(decrypt(blob, bytes.fromhex(sys.argv[2]))).hexdigest())\n",
            documented_decoder()
        ),
    )
    .expect("w");
    for alg in [Algorithm::Aes256Gcm, Algorithm::Aes256Cbc] {
        let m = create_backup(
            &store,
            &src,
            &key,
            &BackupOptions {
                algorithm: alg,
                ..Default::default()
            },
        )
        .await
        .expect("backup");
        let object = store_root.join(&m.id).join(&m.object);
        let out = Command::new(&python)
            .arg(&script)
            .arg(&object)
            .arg(hex::encode(key.as_bytes()))
            .output()
            .expect("run python");
        assert!(
            out.status.success(),
            "{alg}: documented decoder failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            m.sha256.archive,
            "{alg}"
        );
    }
}
