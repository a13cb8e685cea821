//! The CLI functions end to end on a file:// location: create prints the id last, list shows
//! it, verify and restore succeed; a wrong key file fails clearly.

mod support;

use midplane_backup::Algorithm;
use midplane_backup::cli::{self, Progress};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_list_verify_restore() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("src");
    sample_tree(&src);
    let key_file = work.path().join("key");
    std::fs::write(&key_file, format!("{}\n", hex::encode([0x5a; 32]))).expect("w");
    let uri = format!("file://{}", work.path().join("store").display());

    let mut out = Vec::new();
    let m = cli::backup(
        &src,
        &uri,
        Algorithm::Aes256Cbc,
        &key_file,
        Progress::Never,
        &mut out,
    )
    .await
    .expect("create");
    let text = String::from_utf8(out).expect("utf8");
    assert_eq!(text.lines().last(), Some(m.id.as_str()), "{text}");

    let mut out = Vec::new();
    let listed = cli::list(&uri, &mut out).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert!(String::from_utf8(out).expect("utf8").contains(&m.id));

    let mut out = Vec::new();
    cli::verify(&uri, &m.id, &key_file, Progress::Never, &mut out)
        .await
        .expect("verify");
    assert!(String::from_utf8(out).expect("utf8").contains("OK"));

    let target = work.path().join("target");
    let mut out = Vec::new();
    cli::restore(
        &uri,
        &m.id,
        &target,
        &key_file,
        false,
        Progress::Never,
        &mut out,
    )
    .await
    .expect("restore");
    assert!(snapshot(&target) == snapshot(&src));

    // Now the target holds the tree: a second restore needs --force.
    let err = cli::restore(
        &uri,
        &m.id,
        &target,
        &key_file,
        false,
        Progress::Never,
        &mut Vec::new(),
    )
    .await
    .expect_err("non-empty target");
    let msg = printed(err);
    assert!(
        msg.contains("not empty") && msg.contains("--force"),
        "{msg}"
    );
    cli::restore(
        &uri,
        &m.id,
        &target,
        &key_file,
        true,
        Progress::Never,
        &mut Vec::new(),
    )
    .await
    .expect("restore --force");
    assert!(snapshot(&target) == snapshot(&src));

    let bad = work.path().join("bad-key");
    std::fs::write(&bad, "too short").expect("w");
    let err = cli::restore(
        &uri,
        &m.id,
        &target,
        &bad,
        true,
        Progress::Never,
        &mut Vec::new(),
    )
    .await
    .expect_err("bad key");
    assert!(printed(err).contains("bad-key"));

    // A missing key file: its path and the OS error, each once.
    let missing = work.path().join("no-such-key");
    let err = cli::verify(&uri, &m.id, &missing, Progress::Never, &mut Vec::new())
        .await
        .expect_err("missing key file");
    let msg = printed(err);
    assert!(
        msg.contains("no-such-key") && msg.contains("os error 2"),
        "{msg}"
    );

    // An unknown backup id: named once, with the location.
    let err = cli::verify(
        &uri,
        "20200101T000000Z-000000",
        &key_file,
        Progress::Never,
        &mut Vec::new(),
    )
    .await
    .expect_err("unknown id");
    let msg = printed(err);
    assert!(
        msg.contains("20200101T000000Z-000000") && msg.contains("not found"),
        "{msg}"
    );
}

/// What `midplane` prints for an error (`error: {:#}` of anyhow), checked for repetition.
fn printed(err: cli::CliError) -> String {
    let err = anyhow::Error::from(err);
    let text = format!("{err:#}");
    assert_eq!(one_message(err.as_ref()), text);
    text
}

#[test]
fn progress_lines() {
    assert_eq!(
        cli::progress_line("restore", 400_000_000, 1_000_000_000, 2.0),
        "restore  400.0 of 1000.0 MB  40%  200.0 MB/s  ETA 0:03"
    );
    assert_eq!(
        cli::progress_line("backup", 5_000_000, 0, 0.5),
        "backup  5.0 MB  10.0 MB/s"
    );
    assert_eq!(
        cli::progress_line("verify", 1_000_000, 9_000_000_000, 1.0),
        "verify  1.0 of 9000.0 MB  0%  1.0 MB/s  ETA 2:29:59"
    );
    assert!(cli::progress_line("verify", 10, 10, 1.0).ends_with("ETA 0:00"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tar_size_estimate_is_exact() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("src");
    sample_tree(&src);
    // GNU long-name entries for a path and a link target over 100 bytes.
    let deep = src.join("d".repeat(60)).join("e".repeat(60));
    std::fs::create_dir_all(&deep).expect("mkdir");
    std::fs::write(deep.join("f".repeat(90)), b"long").expect("w");
    std::os::unix::fs::symlink("t".repeat(150), src.join("long-link")).expect("symlink");
    let store = fs_store(&work.path().join("store"));
    let key = midplane_backup::BackupKey::from_array([1; 32]);
    let m = midplane_backup::create_backup(&store, &src, &key, &Default::default())
        .await
        .expect("backup");
    assert_eq!(
        midplane_backup::backup::tar_size_estimate(&src).expect("estimate"),
        m.sizes.tar_bytes
    );
}
