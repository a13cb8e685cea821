//! Every algorithm × every backend, against real servers the test starts: backup, list,
//! verify, restore over an existing tree (byte-identical), delete.

mod support;

use midplane_backup::download::DownloadOptions;
use midplane_backup::{
    Algorithm, BackupKey, BackupOptions, RestoreOptions, Store, create_backup, restore_backup,
    verify_backup,
};
use support::*;

async fn round_trip_all_algorithms(store: &Store, what: &str) {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("src");
    sample_tree(&src);
    let key = BackupKey::from_array([0x42; 32]);
    let before = snapshot(&src);
    for alg in Algorithm::ALL {
        let opts = BackupOptions {
            algorithm: alg,
            ..Default::default()
        };
        let m = create_backup(store, &src, &key, &opts)
            .await
            .unwrap_or_else(|e| panic!("{what} {alg}: backup failed: {e}"));
        assert_eq!(m.algorithm, alg);
        assert_eq!(m.key_id, key.key_id());
        assert!(
            m.sizes.stored_bytes > m.sizes.archive_bytes,
            "{what} {alg}: {m:?}"
        );
        assert!(m.sizes.source_bytes >= 6 << 20);

        let listing = store.list().await.expect("list");
        assert!(
            listing.complete.iter().any(|x| x.id == m.id),
            "{what} {alg}: {} not listed",
            m.id
        );
        assert_eq!(store.manifest(&m.id).await.expect("get"), m);

        let report = verify_backup(store, &m.id, &key, &RestoreOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{what} {alg}: verify failed: {e}"));
        assert_eq!(report.archive_sha256, m.sha256.archive);
        assert_eq!(report.stored_sha256, m.sha256.stored);

        // Restore over an existing, different tree (replace, as `--force`): it must be
        // replaced entirely. Small parts, so the object comes in several ranged reads at once.
        let target = work.path().join(format!("restored-{alg}"));
        std::fs::create_dir_all(target.join("stale")).expect("mkdir");
        std::fs::write(target.join("stale/old.txt"), b"old").expect("w");
        let opts = RestoreOptions {
            replace: true,
            download: DownloadOptions {
                part_size: 1 << 20,
                concurrency: 3,
            },
            ..Default::default()
        };
        let report = restore_backup(store, &m.id, &key, &target, &opts)
            .await
            .unwrap_or_else(|e| panic!("{what} {alg}: restore failed: {e}"));
        assert_eq!(report.stored_bytes, m.sizes.stored_bytes);
        assert_eq!(
            opts.stats.progress.get(),
            (m.sizes.stored_bytes, m.sizes.stored_bytes),
            "{what} {alg}: progress counts the stored object"
        );
        let after = snapshot(&target);
        assert_eq!(
            after.iter().map(|e| &e.0).collect::<Vec<_>>(),
            before.iter().map(|e| &e.0).collect::<Vec<_>>(),
            "{what} {alg}: restored paths differ"
        );
        assert!(
            after == before,
            "{what} {alg}: restored tree is not byte-identical"
        );
        assert!(
            leftovers(work.path()).is_empty(),
            "{:?}",
            leftovers(work.path())
        );

        store.delete(&m.id).await.expect("delete");
        let listing = store.list().await.expect("list");
        assert!(
            !listing.complete.iter().any(|x| x.id == m.id),
            "{what}: deleted backup listed"
        );
        assert!(store.manifest(&m.id).await.is_err());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_backend() {
    let root = tempfile::tempdir().expect("tempdir");
    round_trip_all_algorithms(&fs_store(root.path()), "fs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_backend_with_sigv4() {
    let server = start_s3s();
    round_trip_all_algorithms(&s3_store(server.port, "daily/redis", S3_SECRET), "s3").await;
    // The server checks signatures: a wrong secret is refused.
    let bad = s3_store(server.port, "daily/redis", "not-the-secret");
    let err = bad.list().await.expect_err("wrong secret must fail");
    assert!(
        err.to_string().contains("SignatureDoesNotMatch") || err.to_string().contains("403"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minio_backend_path_style() {
    let server = start_s3s();
    round_trip_all_algorithms(&minio_store(server.port, "minio-prefix"), "minio").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_backend() {
    let server = start_gcs();
    round_trip_all_algorithms(&gcs_store(server.port, "gcs/prefix"), "gcs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_backend() {
    let server = start_azurite();
    round_trip_all_algorithms(&azure_store(server.port, "az/prefix", AZURE_KEY), "azure").await;
    let bad = azure_store(
        server.port,
        "az/prefix",
        "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk=",
    );
    assert!(
        bad.list().await.is_err(),
        "a wrong Azure key must be refused"
    );
}
