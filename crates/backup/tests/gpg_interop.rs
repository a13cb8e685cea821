//! Interoperability with stock GnuPG: `gpg --decrypt` reads our gpg-mode backups, and we
//! restore archives made by `tar czf - DIR | gpg --symmetric --cipher-algo AES256`.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};

use midplane_backup::restore::restore_from_reader;
use midplane_backup::{Algorithm, BackupKey, BackupOptions, RestoreOptions, create_backup};
use sha2::{Digest, Sha256};
use support::*;

/// A scratch GNUPGHOME whose gpg-agent is stopped on drop.
struct GpgHome(tempfile::TempDir);

impl GpgHome {
    fn new() -> Self {
        let d = tempfile::tempdir().expect("tempdir");
        let mut perms = std::fs::metadata(d.path()).expect("stat").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o700);
        std::fs::set_permissions(d.path(), perms).expect("chmod");
        Self(d)
    }

    fn gpg(&self) -> Command {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", self.0.path()).args([
            "--batch",
            "--yes",
            "--pinentry-mode",
            "loopback",
            "--quiet",
        ]);
        c
    }
}

impl Drop for GpgHome {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.0.path())
            .args(["--kill", "gpg-agent"])
            .status();
    }
}

fn pass_file(dir: &Path, key: &BackupKey) -> std::path::PathBuf {
    let p = dir.join("pass");
    std::fs::write(&p, key.gpg_passphrase()).expect("w");
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_gpg_decrypts_our_backup() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("src");
    sample_tree(&src);
    let store = fs_store(&work.path().join("store"));
    let key = BackupKey::from_array([0x11; 32]);
    let m = create_backup(
        &store,
        &src,
        &key,
        &BackupOptions {
            algorithm: Algorithm::Gpg,
            ..Default::default()
        },
    )
    .await
    .expect("backup");
    let object = work.path().join("store").join(&m.id).join(&m.object);
    let home = GpgHome::new();
    let out = work.path().join("archive.tar.gz");
    let status = home
        .gpg()
        .arg("--passphrase-file")
        .arg(pass_file(work.path(), &key))
        .arg("--output")
        .arg(&out)
        .arg("--decrypt")
        .arg(&object)
        .stderr(Stdio::inherit())
        .status()
        .expect("run gpg (preinstalled GnuPG 2.2)");
    assert!(
        status.success(),
        "stock gpg could not decrypt our backup: {status}"
    );
    let archive = std::fs::read(&out).expect("read");
    assert_eq!(hex::encode(Sha256::digest(&archive)), m.sha256.archive);
    let unpacked = work.path().join("unpacked");
    std::fs::create_dir(&unpacked).expect("mkdir");
    let status = Command::new("tar")
        .arg("xzf")
        .arg(&out)
        .arg("-C")
        .arg(&unpacked)
        .status()
        .expect("tar");
    assert!(
        status.success(),
        "stock tar could not read our parallel gzip archive"
    );
    assert!(
        snapshot(&unpacked) == snapshot(&src),
        "gpg+tar output differs from the source"
    );

    // A wrong passphrase is refused by gpg as well.
    let wrong = BackupKey::from_array([0x12; 32]);
    let wrong_dir = tempfile::tempdir().expect("tempdir");
    let status = home
        .gpg()
        .arg("--passphrase-file")
        .arg(pass_file(wrong_dir.path(), &wrong))
        .arg("--output")
        .arg(work.path().join("nope"))
        .arg("--decrypt")
        .arg(&object)
        .stderr(Stdio::null())
        .status()
        .expect("gpg");
    assert!(!status.success());
}

#[test]
fn we_restore_what_gpg_symmetric_made() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("src");
    sample_tree(&src);
    let key = BackupKey::from_array([0x33; 32]);
    let home = GpgHome::new();
    let pass = pass_file(work.path(), &key);
    // Default compression (gpg compresses piped input), explicit zlib, zip and none.
    for compress in [None, Some("zlib"), Some("zip"), Some("none")] {
        let enc = work
            .path()
            .join(format!("made-by-gpg-{}.gpg", compress.unwrap_or("default")));
        let mut gpg = home.gpg();
        gpg.arg("--passphrase-file")
            .arg(&pass)
            .args(["--symmetric", "--cipher-algo", "AES256"]);
        if let Some(c) = compress {
            gpg.args(["--compress-algo", c]);
        }
        let mut tar = Command::new("tar")
            .arg("czf")
            .arg("-")
            .arg("-C")
            .arg(&src)
            .arg(".")
            .stdout(Stdio::piped())
            .spawn()
            .expect("tar");
        let status = gpg
            .arg("--output")
            .arg(&enc)
            .stdin(tar.stdout.take().expect("pipe"))
            .status()
            .expect("gpg");
        assert!(status.success(), "gpg --symmetric failed");
        assert!(tar.wait().expect("tar").success(), "tar czf failed");

        let target = work
            .path()
            .join(format!("restored-{}", compress.unwrap_or("default")));
        let file = std::fs::File::open(&enc).expect("open");
        let report = restore_from_reader(
            file,
            Algorithm::Gpg,
            &key,
            &target,
            None,
            &RestoreOptions::default(),
        )
        .unwrap_or_else(|e| panic!("restore of gpg {compress:?} output failed: {e}"));
        assert!(report.entries > 5);
        assert!(
            snapshot(&target) == snapshot(&src),
            "restore of gpg {compress:?} output differs"
        );

        // The wrong key is refused and leaves nothing behind.
        let bad_target = work.path().join("never");
        let file = std::fs::File::open(&enc).expect("open");
        let err = restore_from_reader(
            file,
            Algorithm::Gpg,
            &BackupKey::from_array([0x34; 32]),
            &bad_target,
            None,
            &RestoreOptions::default(),
        )
        .expect_err("wrong key");
        assert!(
            format!("{err}").contains("wrong key") || format!("{err:?}").contains("WrongKey"),
            "{err:?}"
        );
        assert!(!bad_target.exists());
    }
}
