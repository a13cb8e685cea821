//! `adapter-agent --adapter redis prepare-data` as an init container runs it:
//! one line on stdout and exit 0, or exit non-zero naming the file.

use std::process::Command;

fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_adapter-agent"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run adapter-agent")
}

#[test]
fn moves_the_rdb_into_a_new_aof_or_names_the_missing_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    std::fs::write(data.join("dump.rdb"), b"REDIS0010").expect("rdb");
    let conf = dir.path().join("redis.conf");
    std::fs::write(&conf, "appendonly yes\n").expect("conf");
    let (data_s, conf_s) = (data.to_string_lossy(), conf.to_string_lossy());

    let out = run(&[
        "--adapter",
        "redis",
        "prepare-data",
        "--data",
        &data_s,
        "--config",
        &conf_s,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("moved"), "{stdout}");
    assert!(data.join("appendonlydir/appendonly.aof.manifest").exists());

    let missing = dir.path().join("missing.conf");
    let out = run(&[
        "--adapter=redis",
        "prepare-data",
        "--data",
        &data_s,
        "--config",
        &missing.to_string_lossy(),
    ]);
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("missing.conf"), "{stderr}");

    let out = run(&["prepare-data", "--data", &data_s]);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--config"),
        "{out:?}"
    );
}
