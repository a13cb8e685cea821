//! A flipped byte, a truncated object, a wrong key, a forged manifest: each restore fails with
//! a clear error and leaves the target exactly as it was, with no staging leftovers.

mod support;

use midplane_backup::restore::restore_from_reader;
use midplane_backup::{
    Algorithm, BackupKey, BackupOptions, Manifest, RestoreOptions, Store, create_backup,
    restore_backup, verify_backup,
};
use support::*;

async fn expect_failure(
    store: &Store,
    id: &str,
    key: &BackupKey,
    work: &std::path::Path,
    needles: &[&str],
) {
    let target = work.join("target");
    let before = snapshot(&target);
    // The target holds data: these failures must come from the backup, not the target check.
    let replace = RestoreOptions {
        replace: true,
        ..Default::default()
    };
    let err = restore_backup(store, id, key, &target, &replace)
        .await
        .expect_err("restore must fail");
    let chain = one_message(&err);
    assert!(
        needles.iter().any(|n| chain.contains(n)),
        "error {chain:?} should mention one of {needles:?}"
    );
    assert!(
        snapshot(&target) == before,
        "target changed by a failed restore ({chain})"
    );
    assert!(
        leftovers(work).is_empty(),
        "leftovers {:?}",
        leftovers(work)
    );
    let verify = verify_backup(store, id, key, &RestoreOptions::default())
        .await
        .expect_err("verify must fail too");
    let verify = one_message(&verify);
    assert!(
        needles.iter().any(|n| verify.contains(n)),
        "verify error {verify:?} should mention one of {needles:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_truncation_and_wrong_keys_fail_cleanly() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path().join("store");
    let store = fs_store(&root);
    let src = work.path().join("src");
    sample_tree(&src);
    let target = work.path().join("target");
    std::fs::create_dir_all(target.join("keep")).expect("mkdir");
    std::fs::write(target.join("keep/precious.txt"), b"must survive").expect("w");
    let key = BackupKey::from_array([7; 32]);
    let other = BackupKey::from_array([8; 32]);

    for alg in Algorithm::ALL {
        let opts = BackupOptions {
            algorithm: alg,
            ..Default::default()
        };
        let m = create_backup(&store, &src, &key, &opts)
            .await
            .expect("backup");
        let object = format!("{}/{}", m.id, m.object);
        let original = store.operator().read(&object).await.expect("read").to_vec();
        let manifest_path = Store::manifest_path(&m.id);
        let original_manifest = store
            .operator()
            .read(&manifest_path)
            .await
            .expect("m")
            .to_vec();

        // One flipped byte in the middle of the object.
        let mut flipped = original.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x01;
        store
            .operator()
            .write(&object, flipped)
            .await
            .expect("write");
        expect_failure(
            &store,
            &m.id,
            &key,
            work.path(),
            &["failed authentication", "MDC", "modified or corrupt"],
        )
        .await;

        // Truncated: the last part is missing.
        store
            .operator()
            .write(&object, original[..original.len() - 1000].to_vec())
            .await
            .expect("write");
        expect_failure(
            &store,
            &m.id,
            &key,
            work.path(),
            &["truncated", "ends early"],
        )
        .await;

        // Cut exactly at a chunk boundary (aes modes): restore refuses it by its size before
        // downloading; the decoder on its own catches it by the final-chunk flag.
        if alg != Algorithm::Gpg {
            let chunk_stored = if alg == Algorithm::Aes256Gcm {
                (1 << 20) + 16
            } else {
                (1 << 20) + 64
            };
            if original.len() > 64 + 2 * chunk_stored {
                let cut = original[..64 + 2 * chunk_stored].to_vec();
                store
                    .operator()
                    .write(&object, cut.clone())
                    .await
                    .expect("write");
                expect_failure(&store, &m.id, &key, work.path(), &["truncated"]).await;
                let before = snapshot(&target);
                let err = restore_from_reader(
                    std::io::Cursor::new(cut),
                    alg,
                    &key,
                    &target,
                    None,
                    &RestoreOptions {
                        replace: true,
                        ..Default::default()
                    },
                )
                .expect_err("cut at a chunk boundary");
                assert!(err.to_string().contains("truncated after chunk 1"), "{err}");
                assert!(snapshot(&target) == before, "target changed");
                assert!(leftovers(work.path()).is_empty());
            }
        }
        store
            .operator()
            .write(&object, original.clone())
            .await
            .expect("restore object");

        // The wrong key is named against the manifest's key id …
        expect_failure(&store, &m.id, &other, work.path(), &["wrong key"]).await;
        // … and, with a forged manifest claiming the other key, the cipher itself refuses it.
        let mut forged: Manifest = serde_json::from_slice(&original_manifest).expect("json");
        forged.key_id = other.key_id();
        store
            .operator()
            .write(&manifest_path, forged.to_json())
            .await
            .expect("w");
        expect_failure(&store, &m.id, &other, work.path(), &["wrong key", "MDC"]).await;

        // A manifest whose digest does not match the object.
        let mut forged: Manifest = serde_json::from_slice(&original_manifest).expect("json");
        forged.sha256.archive = "0".repeat(64);
        store
            .operator()
            .write(&manifest_path, forged.to_json())
            .await
            .expect("w");
        expect_failure(
            &store,
            &m.id,
            &key,
            work.path(),
            &["plaintext archive SHA-256 mismatch"],
        )
        .await;

        // No manifest: the backup is not complete and cannot be restored.
        store.operator().delete(&manifest_path).await.expect("rm");
        expect_failure(&store, &m.id, &key, work.path(), &["not found"]).await;
        assert!(store.list().await.expect("list").incomplete.contains(&m.id));

        // Everything put back: the same backup restores fine.
        store
            .operator()
            .write(&manifest_path, original_manifest)
            .await
            .expect("w");
        let fresh = work.path().join(format!("ok-{alg}"));
        restore_backup(&store, &m.id, &key, &fresh, &RestoreOptions::default())
            .await
            .expect("pristine backup restores");
        assert!(snapshot(&fresh) == snapshot(&src));
    }
}

#[test]
fn wrong_key_lengths_are_clear() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("short.key");
    std::fs::write(&p, [1u8; 16]).expect("w");
    let e = BackupKey::from_file(&p).expect_err("16 bytes").to_string();
    assert!(e.contains("32 bytes") && e.contains("short.key"), "{e}");
}
