//! A restore never destroys what it was not asked to: a non-empty target is refused unless
//! the caller asks to replace it (`--force`), a missing or empty directory is fine, and a
//! failure while writing the tree names the file once and leaves the target as it was.

mod support;

use std::io::Write;

use midplane_backup::restore::restore_from_reader;
use midplane_backup::stream::{ChunkCipher, DEFAULT_CHUNK, EncryptWriter};
use midplane_backup::{
    Algorithm, BackupKey, BackupOptions, RestoreError, RestoreOptions, TargetProblem,
    create_backup, restore_backup,
};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_empty_targets_are_refused_unless_replace() {
    let work = tempfile::tempdir().expect("tempdir");
    let store = fs_store(&work.path().join("store"));
    let src = work.path().join("src");
    sample_tree(&src);
    let key = BackupKey::from_array([3; 32]);
    let m = create_backup(&store, &src, &key, &BackupOptions::default())
        .await
        .expect("backup");

    let target = work.path().join("target");
    std::fs::create_dir_all(target.join("keep")).expect("mkdir");
    std::fs::write(target.join("keep/precious.txt"), b"must survive").expect("w");
    let before = snapshot(&target);
    let err = restore_backup(&store, &m.id, &key, &target, &RestoreOptions::default())
        .await
        .expect_err("non-empty target");
    let msg = one_message(&err);
    assert!(
        matches!(
            err,
            RestoreError::Target {
                problem: TargetProblem::NotEmpty { count: 1, .. },
                ..
            }
        ),
        "{msg}"
    );
    assert!(
        msg.contains(&target.display().to_string())
            && msg.contains("not empty")
            && msg.contains("--force")
            && msg.contains("new or empty directory"),
        "{msg}"
    );
    assert!(
        snapshot(&target) == before,
        "refused restore changed the target"
    );
    assert!(
        leftovers(work.path()).is_empty(),
        "{:?}",
        leftovers(work.path())
    );

    // A file where the directory should be is refused too, whatever `replace` says.
    let file = work.path().join("a-file");
    std::fs::write(&file, b"x").expect("w");
    for replace in [false, true] {
        let opts = RestoreOptions {
            replace,
            ..Default::default()
        };
        let err = restore_backup(&store, &m.id, &key, &file, &opts)
            .await
            .expect_err("file target");
        assert!(one_message(&err).contains("not a directory"), "{err}");
        assert_eq!(std::fs::read(&file).expect("read"), b"x");
    }

    // An existing empty directory and a missing one both restore without asking.
    let empty = work.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    for dir in [&empty, &work.path().join("new/nested")] {
        restore_backup(&store, &m.id, &key, dir, &RestoreOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        assert!(snapshot(dir) == snapshot(&src), "{}", dir.display());
    }

    // With replace the old content goes, once the backup is verified.
    let opts = RestoreOptions {
        replace: true,
        ..Default::default()
    };
    restore_backup(&store, &m.id, &key, &target, &opts)
        .await
        .expect("replace");
    assert!(snapshot(&target) == snapshot(&src));
    assert!(
        leftovers(work.path()).is_empty(),
        "{:?}",
        leftovers(work.path())
    );
}

/// An archive whose second entry cannot be written (a file stands where its directory
/// should be): the error names the entry and the OS error once, without the tar crate's
/// "failed to unpack" layers, and the target is untouched.
#[test]
fn a_write_failure_names_the_entry_once() {
    let work = tempfile::tempdir().expect("tempdir");
    let mut tar = tar::Builder::new(Vec::new());
    for (name, data) in [("a", &b"file"[..]), ("a/b", &b"under a file"[..])] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        // `append_data` would refuse the path; the raw name is what a foreign archive may hold.
        h.as_gnu_mut().expect("gnu").name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        tar.append(&h, data).expect("append");
    }
    let plain = tar.into_inner().expect("tar");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).expect("gzip");
    let key = BackupKey::from_array([4; 32]);
    let mut enc = EncryptWriter::new(Vec::new(), ChunkCipher::Aes256Gcm, &key, DEFAULT_CHUNK)
        .expect("encrypt");
    enc.write_all(&gz.finish().expect("gzip")).expect("encrypt");
    let stored = enc.finish().expect("encrypt");

    let target = work.path().join("target");
    std::fs::create_dir(&target).expect("mkdir");
    std::fs::write(target.join("old"), b"old").expect("w");
    let before = snapshot(&target);
    let err = restore_from_reader(
        std::io::Cursor::new(stored),
        Algorithm::Aes256Gcm,
        &key,
        &target,
        None,
        &RestoreOptions {
            replace: true,
            ..Default::default()
        },
    )
    .expect_err("unwritable entry");
    let msg = one_message(&err);
    assert!(
        msg.contains("writing \"a/b\"")
            && msg.contains(&target.display().to_string())
            && msg.contains("os error")
            && !msg.contains("failed to unpack")
            && !msg.contains("midplane-restore"),
        "{msg}"
    );
    assert!(snapshot(&target) == before);
    assert!(
        leftovers(work.path()).is_empty(),
        "{:?}",
        leftovers(work.path())
    );
}
