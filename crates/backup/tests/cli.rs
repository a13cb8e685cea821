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
    cli::restore(&uri, &m.id, &target, &key_file, Progress::Never, &mut out)
        .await
        .expect("restore");
    assert!(snapshot(&target) == snapshot(&src));

    let bad = work.path().join("bad-key");
    std::fs::write(&bad, "too short").expect("w");
    let err = cli::restore(&uri, &m.id, &target, &bad, Progress::Never, &mut Vec::new())
        .await
        .expect_err("bad key");
    assert!(err.to_string().contains("bad-key"), "{err}");
}
