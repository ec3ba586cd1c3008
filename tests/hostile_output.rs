//! `--extract DIR` and `--write FILE` against hostile input and a hostile file system
//! (issue 9, parts 4 and 5), through the binary: file names announced by json-header
//! messages (`../../etc/passwd`, absolute paths, NUL bytes, 5,000 characters) never lead a
//! write outside the extract directory; an existing `--write` file is kept unless
//! `--force`; a full disk under `--write` or `--extract` is one clear line naming the path,
//! exit 1, never a panic.

mod support;

use std::collections::BTreeSet;
use std::io::Read;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use support::synth::{Conversation, GenPcap, Seg};

fn netlens() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_netlens"));
    c.current_dir(support::root()).env_remove("NO_COLOR");
    c
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Writes the frames of `conv` as a pcap file at `path`.
fn write_capture(path: &Path, conv: Conversation) {
    let n = conv.frames();
    let mut gen = GenPcap::new(move |i, out: &mut Vec<u8>| {
        if i >= n {
            return None;
        }
        conv.frame(i, out);
        Some(1_700_000_000_000_000_000 + i as i64 * 1_000_000)
    });
    let mut bytes = Vec::new();
    gen.read_to_end(&mut bytes).expect("generated capture");
    std::fs::write(path, bytes).expect("write capture");
}

fn conversation(request: Vec<u8>, response: Vec<u8>) -> Conversation {
    Conversation {
        a: Seg {
            src_mac: [0x02, 0, 0, 0, 0, 1],
            dst_mac: [0x02, 0, 0, 0, 0, 2],
            src: (Ipv4Addr::new(10, 0, 0, 1), 50_000),
            dst: (Ipv4Addr::new(10, 0, 0, 2), 9_000),
            seq: 0,
            ack: 0,
            flags: 0,
        },
        isn: 7_000,
        risn: 9_000_000,
        request,
        response,
        mss: 1_460,
    }
}

/// One json-header message: 4-byte LE header length, the header, the body.
fn json_message(header: &Value, body: &[u8]) -> Vec<u8> {
    let h = serde_json::to_vec(header).expect("header");
    let mut v = (h.len() as u32).to_le_bytes().to_vec();
    v.extend_from_slice(&h);
    v.extend_from_slice(body);
    v
}

/// The names a hostile sender announces.
fn hostile_names() -> Vec<String> {
    vec![
        "../../etc/passwd".into(),
        "/etc/passwd".into(),
        "/tmp/netlens-owned".into(),
        "evil\u{0}name/../../x".into(),
        "y".repeat(5_000),
    ]
}

/// Every path under `dir` (files, directories, symlinks), relative to it.
fn tree(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).expect("readable dir") {
            let p = e.expect("entry").path();
            if p.is_dir() && !p.is_symlink() {
                todo.push(p.clone());
            }
            out.insert(p.strip_prefix(dir).expect("under dir").to_path_buf());
        }
    }
    out
}

#[test]
fn hostile_header_file_names_stay_inside_the_extract_dir() {
    let root = tempfile::tempdir().expect("tempdir");
    let cwd = root.path().join("a/b");
    std::fs::create_dir_all(&cwd).expect("mkdir");
    let names = hostile_names();
    let mut request = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let body = format!("body {i}").into_bytes();
        let header = serde_json::json!({"file_name": name, "file_size": body.len()});
        request.extend(json_message(&header, &body));
    }
    let reply = json_message(
        &serde_json::json!({"file_name": "../reply", "status": "ok"}),
        b"",
    );
    let inputs = tempfile::tempdir().expect("tempdir");
    let cap = inputs.path().join("hostile.pcap");
    write_capture(&cap, conversation(request, reply));
    let json = inputs.path().join("report.json");
    let passwd_before = std::fs::read("/etc/passwd").ok();
    let before = tree(root.path());

    // Relative to the working directory (a/b) and to the extract directory (a/b/out),
    // "../../etc/passwd" lands inside `root`, where the walk below would see it.
    let o = netlens()
        .current_dir(&cwd)
        .args(["read", cap.to_str().expect("utf-8")])
        .args(["--streams", "--framing", "9000=json-header"])
        .args(["--extract", "out", "--extract-messages", "--json"])
        .arg(&json)
        .output()
        .expect("netlens runs");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // The announced names did reach the framer: every message and its header is listed.
    let r: Value = serde_json::from_slice(&std::fs::read(&json).expect("report")).expect("JSON");
    let orig = r["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .find(|s| s["dir"] == "orig")
        .expect("orig stream");
    let msgs = orig["messages"].as_array().expect("messages");
    assert_eq!(msgs.len(), names.len());
    for m in msgs {
        assert!(m["info"]["header"]["file_name"].is_string(), "{m}");
    }

    // Only the extract directory appeared, and in it only names netlens made.
    let after = tree(root.path());
    let new: Vec<&PathBuf> = after.difference(&before).collect();
    assert!(!new.is_empty());
    for p in &new {
        assert!(
            p.starts_with("a/b/out"),
            "written outside the extract dir: {p:?}"
        );
        let name = p.file_name().expect("name").to_string_lossy().into_owned();
        assert!(
            name == "out"
                || (name.starts_with("c000001-")
                    && name.len() < 100
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')),
            "unexpected file {p:?}"
        );
    }
    let files = tree(&cwd.join("out"));
    // Two streams, five request messages and one reply.
    assert_eq!(files.len(), 2 + names.len() + 1, "{files:?}");
    assert!(!Path::new("/tmp/netlens-owned").exists());
    assert_eq!(std::fs::read("/etc/passwd").ok(), passwd_before);
}

fn small_capture(dir: &Path) -> PathBuf {
    let p = dir.join("small.pcap");
    write_capture(&p, conversation(b"hello".repeat(100), b"world".repeat(100)));
    p
}

#[test]
fn write_keeps_an_existing_file_unless_forced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cap = small_capture(dir.path());
    let target = dir.path().join("precious.pcap");
    std::fs::write(&target, b"precious bytes").expect("write");

    let o = netlens()
        .arg("read")
        .arg(&cap)
        .arg("--write")
        .arg(&target)
        .output()
        .expect("netlens runs");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(target.to_str().expect("utf-8")), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert!(o.stdout.is_empty(), "no output before the refusal");
    assert_eq!(std::fs::read(&target).expect("read"), b"precious bytes");

    let o = netlens()
        .arg("read")
        .arg(&cap)
        .args(["--quiet", "--force", "--write"])
        .arg(&target)
        .output()
        .expect("netlens runs");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The file now is the capture's frames, as a pcap netlens reads back.
    let frames = |p: &Path| -> u64 {
        let o = netlens()
            .arg("read")
            .arg(p)
            .args(["--quiet", "--json", "-"])
            .output()
            .expect("netlens runs");
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let v: Value = serde_json::from_slice(&o.stdout).expect("JSON");
        v["stats"]["packets"].as_u64().expect("packets")
    };
    assert_eq!(frames(&target), frames(&cap));
}

/// A one-line error naming `path`, exit 1, no panic.
fn assert_disk_full(o: &Output, path: &Path) {
    let err = stderr(o);
    assert_ne!(o.status.code(), Some(101), "panic: {err}");
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(path.to_str().expect("utf-8")), "{err}");
    assert!(err.contains("No space left"), "{err}");
}

#[test]
fn disk_full_on_write_is_one_clear_line() {
    if !Path::new("/dev/full").exists() {
        eprintln!("note: /dev/full absent; --write disk-full test skipped");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let cap = small_capture(dir.path());
    let o = netlens()
        .arg("read")
        .arg(&cap)
        .args(["--quiet", "--force", "--write", "/dev/full"])
        .output()
        .expect("netlens runs");
    assert_disk_full(&o, Path::new("/dev/full"));
}

/// A 64 KiB tmpfs mounted for the test, unmounted when dropped.
struct SmallFs(PathBuf);

impl SmallFs {
    fn mount(at: &Path) -> Option<SmallFs> {
        std::fs::create_dir_all(at).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(at)
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then(|| SmallFs(at.to_path_buf()))
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).output();
    }
}

#[test]
fn disk_full_on_write_and_extract_of_a_small_fs_is_one_clear_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(fs) = SmallFs::mount(&dir.path().join("small")) else {
        eprintln!("note: cannot mount a tmpfs (not root?); small-disk test skipped");
        return;
    };
    // 512 KiB of payload each way: far more than the 64 KiB the file system holds.
    let cap = dir.path().join("big.pcap");
    write_capture(
        &cap,
        conversation(vec![b'q'; 512 << 10], vec![b'r'; 512 << 10]),
    );

    let out = fs.0.join("out.pcap");
    let o = netlens()
        .arg("read")
        .arg(&cap)
        .args(["--quiet", "--write"])
        .arg(&out)
        .output()
        .expect("netlens runs");
    assert_disk_full(&o, &out);

    let _ = std::fs::remove_file(&out);
    let x = fs.0.join("x");
    let o = netlens()
        .arg("read")
        .arg(&cap)
        .args(["--quiet", "--extract"])
        .arg(&x)
        .arg("--extract-messages")
        .output()
        .expect("netlens runs");
    assert_disk_full(&o, &x);
}
