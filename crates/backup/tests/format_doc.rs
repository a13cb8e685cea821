//! docs/backup-format.md is precise enough to read a backup elsewhere: the Python decoders
//! printed in the document (using the `cryptography` package, not Midplane) decrypt our
//! aes256-gcm, aes256-cbc and gpg objects to the exact plaintext archive the manifest hashes,
//! and a checker written from the document's statements (not from the code) confirms what it
//! says about the archive: the gzip members, the tar header fields, entry names and order, what
//! `sizes.entries` counts, and how special files are stored.

mod support;

use std::process::Command;

use midplane_backup::{Algorithm, BackupKey, BackupOptions, create_backup};
use support::*;

/// Every ```python block of the format document, in order.
fn documented_decoders() -> String {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/backup-format.md"
    ))
    .expect("docs/backup-format.md");
    let mut code = String::new();
    let mut rest = doc.as_str();
    while let Some(start) = rest.find("```python\n") {
        let body = &rest[start + "```python\n".len()..];
        let len = body.find("```").expect("end of python block");
        code.push_str(&body[..len]);
        code.push('\n');
        rest = &body[len..];
    }
    assert!(
        code.contains("def decrypt(") && code.contains("def decrypt_gpg("),
        "the document must print both decoders"
    );
    code
}

/// Checks, written from the document's text: prints OK or raises.
const CHECKER: &str = r#"
import gzip, hashlib, io, json, os, stat, struct, sys, tarfile

def check_archive(archive, src, manifest):
    m = json.load(open(manifest))
    # 2. gzip members: each has FEXTRA with one MP subfield holding the member's total size,
    # MTIME 0, XFL 0, OS 255, and inflates to at most 1 MiB.
    pos, members = 0, 0
    while pos < len(archive):
        h = archive[pos:pos + 20]
        assert h[:4] == b"\x1f\x8b\x08\x04" and h[4:8] == b"\0\0\0\0" and h[8] == 0 and h[9] == 255, h
        assert h[10:12] == struct.pack("<H", 8) and h[12:14] == b"MP" and h[14:16] == struct.pack("<H", 4), h
        size = struct.unpack("<I", h[16:20])[0]
        isize = struct.unpack("<I", archive[pos + size - 4:pos + size])[0]
        assert isize <= 1 << 20, isize
        pos += size
        members += 1
    assert pos == len(archive) and members >= 1
    tar_bytes = gzip.decompress(archive)
    assert len(tar_bytes) == m["sizes"]["tar_bytes"]
    # Raw headers: GNU long-name entries exist for names over 100 bytes.
    raw_types = []
    off = 0
    while off + 512 <= len(tar_bytes) and tar_bytes[off:off + 512] != b"\0" * 512:
        hdr = tar_bytes[off:off + 512]
        raw_types.append(hdr[156:157])
        size = int(hdr[124:136].rstrip(b"\0 ") or b"0", 8)
        off += 512 + (size + 511) // 512 * 512
    assert b"L" in raw_types and b"K" in raw_types, raw_types
    members = tarfile.open(fileobj=io.BytesIO(tar_bytes), format=tarfile.GNU_FORMAT).getmembers()
    # sizes.entries counts entries, not the long-name headers.
    assert len(members) == m["sizes"]["entries"] == len(raw_types) - raw_types.count(b"L") - raw_types.count(b"K")
    # User and group names are empty; uid, gid, mode and mtime are the file's.
    for t in members:
        assert t.uname == "" and t.gname == "", (t.name, t.uname, t.gname)
    # The first entry is ".", the directory itself; no other name starts with "./" or "/",
    # and directory names have no trailing slash.
    names = [t.name for t in members]
    raw_first = tar_bytes[:100].rstrip(b"\0")
    assert raw_first == b"." and members[0].isdir(), raw_first
    assert not any(n.startswith("./") or n.startswith("/") for n in names[1:]), names
    # Order: depth first, each directory right before its contents, siblings in byte order.
    def walk(rel):
        full = os.path.join(src, rel) if rel else src
        entries = [e for e in os.scandir(full)]
        for e in sorted(entries, key=lambda e: os.fsencode(e.name)):
            st = e.stat(follow_symlinks=False)
            if stat.S_ISSOCK(st.st_mode):
                continue  # sockets are skipped
            path = os.path.join(rel, e.name) if rel else e.name
            yield path, st
            if stat.S_ISDIR(st.st_mode):
                yield from walk(path)
    expected = list(walk(""))
    assert names[1:] == [p for p, _ in expected], (names, expected)
    for t, (p, st) in zip(members[1:], expected):
        # The mode field holds the whole st_mode, file-type bits included.
        assert t.mode == st.st_mode, (p, oct(t.mode), oct(st.st_mode))
        assert t.mtime == int(st.st_mtime) and t.uid == st.st_uid and t.gid == st.st_gid, p
        if stat.S_ISLNK(st.st_mode):
            assert t.issym() and t.linkname == os.readlink(os.path.join(src, p)), p
        elif stat.S_ISFIFO(st.st_mode):
            assert t.isfifo(), p
        elif stat.S_ISREG(st.st_mode):
            assert t.isfile() and t.size == st.st_size, p
        elif stat.S_ISDIR(st.st_mode):
            assert t.isdir(), p
    assert sum(t.size for t in members if t.isfile()) == m["sizes"]["source_bytes"]

blob = open(sys.argv[1], "rb").read()
key = bytes.fromhex(sys.argv[2])
archive = decrypt_gpg(blob, key) if sys.argv[3] == "gpg" else decrypt(blob, key)
assert hashlib.sha256(archive).hexdigest() == json.load(open(sys.argv[5]))["sha256"]["archive"]
if sys.argv[3] == "gpg":
    # 5. Packet framing: new-format headers; the SKESK has one definite length.
    assert blob[0] == 0xC3 and blob[1] == 13 and blob[2:6] == bytes([4, 9, 3, 8]) and blob[14] == 0xC0
    assert blob[15] == 0xD2, hex(blob[15])
check_archive(archive, sys.argv[4], sys.argv[5])
print("OK")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(unsafe_code)] // mkfifo, see SAFETY below
async fn python_reads_backups_with_the_documented_recipes() {
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
    // Names whose byte order differs from a sort of whole paths ("a" < "a.txt" < "a/x" would
    // be wrong: a directory's contents come right after it), upper case before lower case,
    // a path and a link target over 100 bytes (GNU long-name entries), a FIFO and a socket.
    std::fs::create_dir_all(src.join("a")).expect("mkdir");
    std::fs::write(src.join("a/x"), b"in a").expect("w");
    std::fs::write(src.join("a.txt"), b"beside a").expect("w");
    std::fs::write(src.join("B"), b"upper").expect("w");
    let deep = src.join("d".repeat(60)).join("e".repeat(60));
    std::fs::create_dir_all(&deep).expect("mkdir");
    std::fs::write(deep.join("f"), b"deep").expect("w");
    std::os::unix::fs::symlink("t".repeat(150), src.join("long-link")).expect("symlink");
    let fifo = std::ffi::CString::new(src.join("fifo").display().to_string()).expect("path");
    // SAFETY: mkfifo reads a NUL-terminated path and creates a file; nothing else is touched.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o640) }, 0, "mkfifo");
    let _socket = std::os::unix::net::UnixListener::bind(src.join("sock")).expect("socket");

    let store_root = work.path().join("store");
    let store = fs_store(&store_root);
    let key = BackupKey::from_array([0x6b; 32]);
    let script = work.path().join("decode.py");
    std::fs::write(&script, format!("{}\n{CHECKER}", documented_decoders())).expect("w");
    for alg in Algorithm::ALL {
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
        let folder = store_root.join(&m.id);
        let out = Command::new(&python)
            .arg(&script)
            .arg(folder.join(&m.object))
            .arg(hex::encode(key.as_bytes()))
            .arg(alg.as_str())
            .arg(&src)
            .arg(folder.join("manifest.json"))
            .output()
            .expect("run python");
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "OK",
            "{alg}: the documented decoder or a documented statement failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // A gpg body of at most 64 KiB is one definite length, no partial lengths: after the
    // SKESK (15 bytes) and the SEIPD tag byte, the length is a one-, two- or five-byte form.
    let tiny = work.path().join("tiny");
    std::fs::create_dir(&tiny).expect("mkdir");
    std::fs::write(tiny.join("f"), b"small").expect("w");
    let opts = BackupOptions {
        algorithm: Algorithm::Gpg,
        ..Default::default()
    };
    let m = create_backup(&store, &tiny, &key, &opts)
        .await
        .expect("backup");
    let blob = std::fs::read(store_root.join(&m.id).join(&m.object)).expect("read");
    assert_eq!(blob[15], 0xd2);
    let first = blob[16];
    assert!(first < 224 || first == 255, "partial length {first:#x}");
    let len = match first {
        0..192 => usize::from(first),
        192..224 => ((usize::from(first) - 192) << 8) + usize::from(blob[17]) + 192,
        _ => u32::from_be_bytes([blob[17], blob[18], blob[19], blob[20]]) as usize,
    };
    let header = if first < 192 {
        2
    } else if first < 224 {
        3
    } else {
        6
    };
    assert_eq!(
        15 + header + len,
        blob.len(),
        "one definite length covers the body"
    );
}
