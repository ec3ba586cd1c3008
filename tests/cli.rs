//! Process-level tests of the `netlens` binary: the README's commands, exit codes
//! (0 success, 1 runtime error, 2 usage), one-sentence error messages naming the file,
//! damaged input (everything before the damage kept, a warning naming the byte offset),
//! several inputs and stdin, `--json -` carrying only JSON, and a closed stdout.
//!
//! Expected frame counts and offsets come from the independent record walker in
//! tests/common, not from netlens's own reader.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{fixture, ng, pcap_records, walk, Kind};

fn netlens() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_netlens"));
    c.current_dir(support::root()).env_remove("NO_COLOR");
    c
}

fn run(args: &[&str]) -> Output {
    netlens().args(args).output().expect("netlens runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A one-sentence error: exactly one line on stderr, naming `what`, no panic.
fn assert_one_sentence_error(o: &Output, code: i32, what: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "exit code; stderr: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line expected: {err:?}"
    );
    assert!(err.contains(what), "{err:?} does not name {what:?}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(o.stdout.is_empty(), "nothing on stdout for an error");
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("netlens-cli")
        .tempdir()
        .expect("temporary directory")
}

fn read_json(p: &Path) -> Value {
    let text = std::fs::read_to_string(p).expect("JSON report written");
    serde_json::from_str(&text).expect("JSON report parses")
}

fn packets(v: &Value) -> &Vec<Value> {
    v["packets"].as_array().expect("packets array")
}

/// Number of packet records in a capture file, by the independent walker.
fn walked_packets(p: &Path) -> usize {
    let bytes = std::fs::read(p).expect("fixture readable");
    let l = walk(&bytes, u64::MAX).expect("fixture walks");
    l.recs.iter().filter(|r| r.kind == Kind::Packet).count()
}

#[test]
fn readme_commands_work() {
    let readme = std::fs::read_to_string(support::root().join("README.md")).expect("README.md");
    let mut ran = 0;
    for line in readme.lines() {
        let Some(args) = line.trim().strip_prefix("cargo run --release -- ") else {
            continue;
        };
        let args: Vec<&str> = args.split_whitespace().collect();
        let o = run(&args);
        assert_eq!(
            o.status.code(),
            Some(0),
            "README command {args:?}: {}",
            stderr(&o)
        );
        assert!(
            !o.stdout.is_empty(),
            "README command {args:?} printed nothing"
        );
        // A `--packets` command prints one line per frame.
        if args.contains(&"--packets") {
            let file = args
                .iter()
                .find(|a| a.ends_with(".pcap") || a.ends_with(".pcapng"))
                .expect("the README command names a capture");
            let lines = stdout(&o).lines().filter(|l| l.starts_with('#')).count();
            assert_eq!(
                lines,
                walked_packets(&support::root().join(file)),
                "{args:?}"
            );
        }
        ran += 1;
    }
    assert!(
        ran > 0,
        "README shows no `cargo run --release -- ...` command"
    );
}

#[test]
fn every_readme_flag_is_accepted() {
    let f = fixture("tcp_graceful.pcap");
    let f = f.to_str().expect("utf-8 path");
    let dir = tempdir();
    let json = dir.path().join("sub/dir/r.json");
    let json = json.to_str().expect("utf-8 path");
    for args in [
        vec!["read", f],
        vec!["read", f, "--all"],
        vec!["read", f, "--packets", "--no-color"],
        vec!["read", f, "--limit", "0", "--checksums", "-q"],
        vec!["read", f, "-c", "3", "--packets"],
        vec![
            "read",
            f,
            "--count",
            "3",
            "--max-record",
            "100000",
            "--quiet",
        ],
        vec!["read", f, "--json", json],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
    }
    // `--json` into a directory that did not exist: created, and the report is there.
    assert_eq!(read_json(Path::new(json))["schema"], "netlens-report/1");
    // `-c 3`: exactly three frame lines.
    let o = run(&["read", f, "-c", "3", "--packets"]);
    assert_eq!(stdout(&o).lines().filter(|l| l.starts_with('#')).count(), 3);
}

#[test]
fn missing_file_exits_1_naming_it() {
    let o = run(&["read", "no/such/capture.pcap"]);
    assert_one_sentence_error(&o, 1, "no/such/capture.pcap");
}

#[test]
fn directory_exits_1_naming_it() {
    let dir = tempdir();
    let d = dir.path().to_str().expect("utf-8 path");
    let o = run(&["read", d]);
    assert_one_sentence_error(&o, 1, d);
    assert!(stderr(&o).contains("directory"), "{}", stderr(&o));
}

#[test]
fn not_a_capture_exits_1_naming_it() {
    let dir = tempdir();
    let p = dir.path().join("notes.txt");
    std::fs::write(&p, "these are not packets\n").expect("write");
    let o = run(&["read", p.to_str().expect("utf-8 path")]);
    assert_one_sentence_error(&o, 1, p.to_str().expect("utf-8 path"));
    assert!(stderr(&o).contains("not a capture"), "{}", stderr(&o));
}

#[test]
fn empty_file_exits_1_naming_it() {
    let dir = tempdir();
    let p = dir.path().join("empty.pcap");
    std::fs::write(&p, b"").expect("write");
    let o = run(&["read", p.to_str().expect("utf-8 path")]);
    assert_one_sentence_error(&o, 1, p.to_str().expect("utf-8 path"));
    assert!(stderr(&o).contains("empty"), "{}", stderr(&o));
}

#[test]
fn permission_denied_exits_1_naming_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir();
    let p = dir.path().join("secret.pcap");
    std::fs::copy(fixture("tcp_refused.pcap"), &p).expect("copy");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).expect("chmod 000");
    let o = if std::fs::File::open(&p).is_ok() {
        // root (as in CI) bypasses permission checks: run the binary as `nobody` where
        // runuser can do that, else there is nothing to deny.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod 755");
        let as_nobody = Command::new("runuser")
            .args(["-u", "nobody", "--", env!("CARGO_BIN_EXE_netlens"), "read"])
            .arg(&p)
            .output();
        match as_nobody {
            Ok(o) if matches!(o.status.code(), Some(0 | 1)) && !stderr(&o).contains("runuser") => o,
            _ => {
                eprintln!(
                    "note: running as root and cannot run as nobody; permission-denied test skipped"
                );
                return;
            }
        }
    } else {
        run(&["read", p.to_str().expect("utf-8 path")])
    };
    assert_one_sentence_error(&o, 1, p.to_str().expect("utf-8 path"));
    assert!(stderr(&o).contains("ermission denied"), "{}", stderr(&o));
}

#[test]
fn unknown_flag_and_missing_arguments_exit_2() {
    let f = fixture("tcp_refused.pcap");
    let f = f.to_str().expect("utf-8 path");
    for args in [
        vec!["read", f, "--no-such-flag"],
        vec!["read"],
        vec![],
        vec!["frobnicate", f],
        vec!["read", f, "--limit", "many"],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(
            !stderr(&o).is_empty(),
            "{args:?}: a usage error says something"
        );
        assert!(!stderr(&o).contains("panicked"));
    }
    let o = run(&["read", f, "--no-such-flag"]);
    assert!(stderr(&o).contains("--no-such-flag"), "{}", stderr(&o));
}

/// Cuts a copy of `name` at `cut` bytes and returns its path.
fn cut_copy(dir: &Path, name: &str, cut: usize) -> PathBuf {
    let bytes = std::fs::read(fixture(name)).expect("fixture");
    let p = dir.join(format!("cut-{cut}-{name}"));
    std::fs::write(&p, &bytes[..cut]).expect("write");
    p
}

#[test]
fn file_cut_inside_a_record_keeps_every_frame_before_it() {
    let name = "tcp_graceful.pcap";
    let bytes = std::fs::read(fixture(name)).expect("fixture");
    let recs = pcap_records(&bytes);
    assert!(recs.len() >= 6, "fixture has enough frames");
    let dir = tempdir();
    let full_json = dir.path().join("full.json");
    let o = run(&[
        "read",
        fixture(name).to_str().expect("utf-8"),
        "--packets",
        "--json",
        full_json.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let full = read_json(&full_json);
    // Cut in the middle of record 6's data, and inside record 4's 16-byte header.
    for (rec, cut) in [
        (
            recs[5],
            (recs[5].start + 16 + (recs[5].end - recs[5].start - 16) / 2) as usize,
        ),
        (recs[3], recs[3].start as usize + 7),
    ] {
        let p = cut_copy(dir.path(), name, cut);
        let json = dir.path().join(format!("cut-{cut}.json"));
        let o = run(&[
            "read",
            p.to_str().expect("utf-8"),
            "--packets",
            "--json",
            json.to_str().expect("utf-8"),
        ]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(0), "{err}");
        assert!(!err.contains("panicked"));
        // The warning names the file and the byte offset of the damaged record.
        let want = format!("byte offset {}", rec.start);
        assert!(err.contains(&want), "{err:?} lacks {want:?}");
        assert!(err.contains(p.to_str().expect("utf-8")), "{err}");
        let kept = recs.iter().filter(|r| r.end as usize <= cut).count();
        let v = read_json(&json);
        assert_eq!(packets(&v).len(), kept);
        assert_eq!(
            packets(&v)[..],
            packets(&full)[..kept],
            "frames before the cut"
        );
        let w = &v["warnings"][0];
        assert_eq!(w["kind"], "damaged-file");
        assert_eq!(w["offset"], rec.start);
        assert_eq!(w["frame"], kept as u64);
        // `--packets` text: one line per kept frame.
        let o = run(&["read", p.to_str().expect("utf-8"), "--packets", "-q"]);
        assert_eq!(stdout(&o).lines().count(), kept);
        assert!(
            stderr(&o).is_empty(),
            "-q keeps stderr quiet: {}",
            stderr(&o)
        );
    }
}

/// A copy of `name` whose record `index` (0-based) claims `incl_len` captured bytes.
fn with_record_length(dir: &Path, name: &str, index: usize, incl_len: u32) -> (PathBuf, u64) {
    let mut bytes = std::fs::read(fixture(name)).expect("fixture");
    let rec = pcap_records(&bytes)[index];
    // Fixtures are little-endian pcap (magic d4 c3 b2 a1); incl_len is at +8.
    assert_eq!(bytes[..4], [0xd4, 0xc3, 0xb2, 0xa1]);
    let at = rec.start as usize + 8;
    bytes[at..at + 4].copy_from_slice(&incl_len.to_le_bytes());
    let p = dir.join(format!("len-{incl_len}-{name}"));
    std::fs::write(&p, &bytes).expect("write");
    (p, rec.start)
}

#[test]
fn absurd_record_length_is_rejected_before_allocating() {
    let dir = tempdir();
    let (p, offset) = with_record_length(dir.path(), "tcp_graceful.pcap", 2, u32::MAX);
    let json = dir.path().join("r.json");
    let start = Instant::now();
    let o = run(&[
        "read",
        p.to_str().expect("utf-8"),
        "--packets",
        "--json",
        json.to_str().expect("utf-8"),
    ]);
    let took = start.elapsed();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains(&format!("byte offset {offset}")), "{err}");
    assert!(
        err.contains("4294967295"),
        "the warning names the length: {err}"
    );
    assert_eq!(packets(&read_json(&json)).len(), 2);
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

/// Peak resident memory of this process (VmHWM), in KiB.
fn vm_hwm_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn absurd_record_length_costs_no_memory_in_process() {
    let Some(before) = vm_hwm_kib() else {
        eprintln!("note: /proc/self/status unavailable; in-process memory check skipped");
        return;
    };
    let mut bytes = std::fs::read(fixture("tcp_graceful.pcap")).expect("fixture");
    let rec = pcap_records(&bytes)[2];
    let at = rec.start as usize + 8;
    bytes[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    // With the default cap, and with a cap the user raised above the claim: either way the
    // reader must not grow its buffer to the 4 GB the record claims.
    for max_record in [netlens::capture::file::DEFAULT_MAX_RECORD, 8 << 30] {
        let mut f = netlens::capture::file::CaptureFile::from_reader(
            Box::new(std::io::Cursor::new(bytes.clone())),
            "claims-4gb.pcap".into(),
            0,
            max_record,
        )
        .expect("header reads");
        f.begin(0);
        let mut frame = 1;
        let damage = loop {
            match f.next_packet(frame) {
                netlens::capture::Next::Packet(_) => frame += 1,
                netlens::capture::Next::Damaged(d) => break d,
                other => panic!("expected damage, got {other:?}"),
            }
        };
        assert_eq!(damage.offset, rec.start);
        assert_eq!(damage.after_frame, 2);
    }
    let after = vm_hwm_kib().unwrap_or(0);
    // Other tests of this binary run concurrently but only spawn processes; 256 MiB is far
    // below the 4 GiB a buffer sized by the length field would touch.
    assert!(
        after < before + 256 * 1024,
        "peak memory grew from {before} KiB to {after} KiB"
    );
}

/// A pcapng with an unknown block between two packets.
fn pcapng_with_unknown_block() -> Vec<u8> {
    let frame = |last: u8| {
        // Ethernet II, ethertype 0x88b5 (local experimental): dissected as "other".
        let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x88, 0xb5];
        f.extend_from_slice(&[last; 46]);
        f
    };
    let mut v = ng::shb();
    v.extend(ng::idb(1, 65535));
    v.extend(ng::epb(0, 1_700_000_000_000_000, &frame(1)));
    v.extend(ng::block(
        0x1234_5678,
        b"netlens test: an unknown block type",
    ));
    v.extend(ng::epb(0, 1_700_000_000_500_000, &frame(2)));
    v
}

/// `--write` of a pcapng whose second interface is raw IP: a pcap holds one link type, so
/// the raw-IP frame is left out, and the warning says so on stderr as well as in the
/// report (it was only in the report).
#[test]
fn write_skipping_a_second_link_type_warns_on_stderr() {
    let eth = |last: u8| {
        let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x88, 0xb5];
        f.extend_from_slice(&[last; 46]);
        f
    };
    // IPv4 header only (protocol 253, experimental), 20 bytes, checksum not checked.
    let raw = [
        0x45, 0, 0, 20, 0, 1, 0, 0, 64, 253, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    let mut v = ng::shb();
    v.extend(ng::idb(1, 65535));
    v.extend(ng::idb(101, 65535));
    v.extend(ng::epb(0, 1_700_000_000_000_000, &eth(1)));
    v.extend(ng::epb(1, 1_700_000_000_100_000, &raw));
    v.extend(ng::epb(0, 1_700_000_000_200_000, &eth(2)));
    let dir = tempdir();
    let p = dir.path().join("two-link-types.pcapng");
    std::fs::write(&p, v).expect("write");
    let out = dir.path().join("out.pcap");
    let json = dir.path().join("r.json");
    let (p, out_s, json_s) = (
        p.to_str().expect("utf-8"),
        out.to_str().expect("utf-8"),
        json.to_str().expect("utf-8"),
    );
    let o = run(&["read", p, "--write", out_s, "--json", json_s]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("warning: 1 frame(s) of a second link type were not written"),
        "{err}"
    );
    let v = read_json(&json);
    let kinds: Vec<&str> = v["warnings"]
        .as_array()
        .map(|w| w.iter().filter_map(|w| w["kind"].as_str()).collect())
        .unwrap_or_default();
    assert!(kinds.contains(&"write-skipped-frames"), "{kinds:?}");
    assert_eq!(
        pcap_records(&std::fs::read(&out).expect("pcap written")).len(),
        2
    );
    let quiet = run(&["read", p, "--write", out_s, "--force", "--quiet"]);
    assert_eq!(quiet.status.code(), Some(0));
    assert!(stderr(&quiet).is_empty(), "{}", stderr(&quiet));
}

#[test]
fn unknown_pcapng_block_is_skipped_and_counted() {
    let dir = tempdir();
    let p = dir.path().join("unknown-block.pcapng");
    std::fs::write(&p, pcapng_with_unknown_block()).expect("write");
    let json = dir.path().join("r.json");
    let o = run(&[
        "read",
        p.to_str().expect("utf-8"),
        "--packets",
        "--json",
        json.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).is_empty(), "no warning: {}", stderr(&o));
    let v = read_json(&json);
    assert_eq!(v["stats"]["skipped_blocks"], 1);
    assert_eq!(v["stats"]["packets"], 2);
    let frames: Vec<u64> = packets(&v)
        .iter()
        .map(|p| p["frame"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(frames, [1, 2]);
    assert_eq!(v["source"]["format"], "pcapng");
    // Where tshark is installed, it agrees that the file holds two frames.
    if let Ok(t) = Command::new("tshark").arg("-r").arg(&p).output() {
        if t.status.success() {
            assert_eq!(String::from_utf8_lossy(&t.stdout).lines().count(), 2);
        }
    }
}

#[test]
fn several_files_are_one_input_with_running_frame_numbers() {
    let a = fixture("tcp_refused.pcap");
    let b = fixture("tcp_graceful.pcap");
    let (na, nb) = (walked_packets(&a), walked_packets(&b));
    let dir = tempdir();
    let json = dir.path().join("r.json");
    let o = run(&[
        "read",
        a.to_str().expect("utf-8"),
        b.to_str().expect("utf-8"),
        a.to_str().expect("utf-8"),
        "--packets",
        "--json",
        json.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = read_json(&json);
    let pk = packets(&v);
    assert_eq!(pk.len(), na + nb + na);
    for (i, p) in pk.iter().enumerate() {
        assert_eq!(p["frame"], (i + 1) as u64);
        let file = if i < na {
            0
        } else if i < na + nb {
            1
        } else {
            2
        };
        assert_eq!(p["file"], file, "frame {}", i + 1);
    }
    assert_eq!(v["source"]["path"].as_array().map(Vec::len), Some(3));
    // The text view numbers the same way.
    let lines: Vec<String> = stdout(&o).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), na + nb + na);
    assert!(
        lines[na].starts_with(&format!("#{} ", na + 1)),
        "{}",
        lines[na]
    );
}

#[test]
fn dash_reads_standard_input() {
    let f = fixture("udp_exchange.pcap");
    let mut child = netlens()
        .args(["read", "-", "--packets", "--json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let bytes = std::fs::read(&f).expect("fixture");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&bytes));
    let o = child.wait_with_output().expect("wait");
    writer.join().expect("writer thread").expect("write stdin");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("stdout is one JSON document");
    assert_eq!(packets(&v).len(), walked_packets(&f));
    assert_eq!(v["source"]["path"][0], "-");
}

#[test]
fn json_to_stdout_carries_only_json_even_for_damaged_input() {
    let dir = tempdir();
    let bytes = std::fs::read(fixture("tcp_graceful.pcap")).expect("fixture");
    let recs = pcap_records(&bytes);
    let cut = recs[4].start as usize + 20;
    let p = cut_copy(dir.path(), "tcp_graceful.pcap", cut);
    for extra in [
        vec![],
        vec!["--packets"],
        vec!["--all"],
        vec!["--all", "--packets"],
    ] {
        let mut args = vec!["read", p.to_str().expect("utf-8"), "--json", "-"];
        args.extend(extra.iter().copied());
        let o = run(&args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        let v: Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: stdout is not only JSON: {e}"));
        assert_eq!(v["warnings"][0]["offset"], recs[4].start);
        assert!(stderr(&o).contains("warning"), "the warning goes to stderr");
        if extra.contains(&"--packets") {
            assert_eq!(packets(&v).len(), 4);
        }
    }
}

#[test]
fn closed_stdout_ends_the_run_quietly() {
    // Enough output to fill any pipe buffer several times over.
    let f = fixture("frame_len32le_nagle.pcap");
    let f = f.to_str().expect("utf-8");
    let mut args = vec!["read"];
    args.extend(std::iter::repeat_n(f, 8));
    args.push("--packets");
    let mut child = netlens()
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = child.stdout.take().expect("stdout");
    let mut first = String::new();
    BufReader::new(out).read_line(&mut first).expect("one line");
    // The BufReader (and with it the read end of the pipe) is dropped here: `| head -1`.
    assert!(first.starts_with("#1 "), "{first}");
    let o = child.wait_with_output().expect("wait");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.contains("Broken pipe"), "{err}");
}

#[test]
fn unwritable_json_path_exits_1_naming_it() {
    let dir = tempdir();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").expect("write");
    // A path under a regular file can never be created, not even by root.
    let bad = file.join("r.json");
    let o = run(&[
        "read",
        fixture("tcp_refused.pcap").to_str().expect("utf-8"),
        "--json",
        bad.to_str().expect("utf-8"),
    ]);
    assert_one_sentence_error(&o, 1, bad.to_str().expect("utf-8"));
}

#[test]
fn disk_full_is_a_clear_error_not_a_panic() {
    if !Path::new("/dev/full").exists() {
        eprintln!("note: /dev/full absent; disk-full test skipped");
        return;
    }
    let f = fixture("frame_len32le_nagle.pcap");
    let f = f.to_str().expect("utf-8");
    // The JSON report onto a full disk: exit 1, one sentence naming the path.
    let o = run(&["read", f, "--packets", "--json", "/dev/full"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("/dev/full") && err.contains("No space left"),
        "{err}"
    );
    assert!(err.contains("free some space"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // Standard output onto a full disk: exit 1 with a message (unlike a closed pipe).
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("open /dev/full");
    let o = netlens()
        .args(["read", f, "--packets"])
        .stdout(full)
        .output()
        .expect("netlens runs");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot write output") && err.contains("No space left"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// A pcap of about `size` bytes: tcp_graceful.pcap's records repeated.
fn big_pcap(dir: &Path, size: usize) -> PathBuf {
    let bytes = std::fs::read(fixture("tcp_graceful.pcap")).expect("fixture");
    let mut out = bytes[..24].to_vec();
    while out.len() < size {
        out.extend_from_slice(&bytes[24..]);
    }
    let p = dir.join("big.pcap");
    std::fs::write(&p, &out).expect("write");
    p
}

#[test]
fn many_inputs_need_neither_many_descriptors_nor_many_buffers() {
    let dir = tempdir();
    let f = big_pcap(dir.path(), 1 << 20);
    let per_file = walked_packets(&f);
    let n = 300;
    // 300 inputs under a limit of 64 open descriptors (`netlens read rotated-*.pcap`).
    let o = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 64 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_netlens"))
        .arg("read")
        .args(std::iter::repeat_n(&f, n))
        .args(["--json", "-"])
        .output()
        .expect("sh runs");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["stats"]["packets"], (per_file * n) as u64);
    // In process: 300 opened 1 MiB files hold 4 KiB each until read, not a 1 MiB buffer.
    let Some(before) = vm_hwm_kib() else {
        eprintln!("note: /proc/self/status unavailable; memory check skipped");
        return;
    };
    let files: Vec<_> = (0..n)
        .map(|i| netlens::capture::file::CaptureFile::open(&f, i as u16, 16 << 20).expect("opens"))
        .collect();
    let after = vm_hwm_kib().unwrap_or(0);
    assert!(
        after < before + 64 * 1024,
        "{n} open inputs raised peak memory from {before} KiB to {after} KiB"
    );
    drop(files);
}

#[test]
fn a_file_that_vanishes_after_opening_is_damage_with_a_clear_reason() {
    let dir = tempdir();
    let f = big_pcap(dir.path(), 64 << 10);
    let mut c = netlens::capture::file::CaptureFile::open(&f, 0, 16 << 20).expect("opens");
    c.begin(0);
    std::fs::remove_file(&f).expect("remove");
    let mut frame = 1;
    let damage = loop {
        match c.next_packet(frame) {
            netlens::capture::Next::Packet(_) => frame += 1,
            netlens::capture::Next::Damaged(d) => break d,
            other => panic!("expected damage, got {other:?}"),
        }
    };
    // The frames already buffered when the header was read are delivered; then the reopen
    // fails and says why, at a record boundary.
    assert!(damage.reason.contains("No such file"), "{damage}");
    let bytes_recs = {
        let bytes = std::fs::read(fixture("tcp_graceful.pcap")).expect("fixture");
        pcap_records(&bytes).len()
    };
    assert!(frame > 1 && frame < 64 * bytes_recs as u64, "{frame}");
    assert_eq!(damage.after_frame, frame - 1);
}

#[test]
fn l2_cap_flags_reach_the_report_and_warn() {
    let f = fixture("arp_bridge.pcap");
    let f = f.to_str().expect("utf-8");
    let o = run(&[
        "read",
        f,
        "--mac-table",
        "--arp",
        "--json",
        "-",
        "--max-macs",
        "1",
        "--arp-table-size",
        "1",
        "--arp-max-list",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let limits = &v["arp"]["limits"];
    assert_eq!(
        (limits["max_bindings"].as_u64(), limits["max_list"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(limits["bindings_dropped"].as_u64() > Some(0), "{limits}");
    assert!(limits["list_dropped"].as_u64() > Some(0), "{limits}");
    assert_eq!(v["arp"]["table"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["mac_table"]["entries"].as_array().map(Vec::len), Some(1));
    assert!(v["mac_table"]["not_learned"]["macs_untracked"].as_u64() > Some(0));
    let kinds: Vec<&str> = v["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter_map(|w| w["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"arp-caps") && kinds.contains(&"mac-rows-cap"),
        "{kinds:?}"
    );
    // Said on stderr too, unless --quiet.
    let err = stderr(&o);
    assert!(
        err.contains("--arp-table-size") && err.contains("--max-macs"),
        "{err}"
    );
}

/// The IPv4 reassembly caps are flags: `udp_exchange.pcap` sends two 3000-byte datagrams
/// as three fragments each. With one fragment fewer allowed per datagram neither is
/// reassembled, the count says so and a warning names the flags; by default both are.
#[test]
fn fragment_cap_flags_reach_the_report_and_warn() {
    let f = fixture("udp_exchange.pcap");
    let f = f.to_str().expect("utf-8");
    let defrag = |extra: &[&str]| {
        let mut args = vec!["read", f, "--json", "-"];
        args.extend_from_slice(extra);
        let o = run(&args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let v: Value = serde_json::from_slice(&o.stdout).expect("JSON");
        let kinds: Vec<String> = v["warnings"]
            .as_array()
            .expect("warnings")
            .iter()
            .filter_map(|w| w["kind"].as_str().map(String::from))
            .collect();
        (v["stats"]["ipv4_defrag"].clone(), kinds, stderr(&o))
    };
    let (d, kinds, _) = defrag(&[]);
    assert_eq!(
        (d["reassembled"].as_u64(), d["dropped_over_limit"].as_u64()),
        (Some(2), Some(0))
    );
    assert!(!kinds.iter().any(|k| k == "ipv4-defrag-cap"), "{kinds:?}");
    let (d, kinds, err) = defrag(&["--frag-per-datagram", "2"]);
    assert_eq!(
        (d["reassembled"].as_u64(), d["dropped_over_limit"].as_u64()),
        (Some(0), Some(2))
    );
    assert!(kinds.iter().any(|k| k == "ipv4-defrag-cap"), "{kinds:?}");
    assert!(err.contains("--frag-per-datagram"), "{err}");
    // A reassembly memory of 1000 bytes cannot hold a 3000-byte datagram: every fragment
    // that would grow it past the cap is dropped, the first ones stay pending.
    let (d, _, _) = defrag(&["--frag-memory", "1000"]);
    assert_eq!(
        (
            d["reassembled"].as_u64(),
            d["dropped_over_limit"].as_u64(),
            d["pending"].as_u64()
        ),
        (Some(0), Some(6), Some(2)),
        "{d}"
    );
    // With room for one pending datagram the two exchanges (one after the other) still
    // reassemble; with none, no datagram can start.
    let (d, _, _) = defrag(&["--frag-datagrams", "1"]);
    assert_eq!(d["reassembled"].as_u64(), Some(2), "{d}");
    let (d, _, _) = defrag(&["--frag-datagrams", "0"]);
    assert_eq!(
        (d["reassembled"].as_u64(), d["dropped_over_limit"].as_u64()),
        (Some(0), Some(6)),
        "{d}"
    );
}

/// Without JSON or a page, only the stream directions the terminal view details keep their
/// lists (`lists_for_first`): the view must be exactly what it is when every entry keeps
/// them (`--json FILE` makes every entry keep them and prints the same tables).
#[test]
fn stream_view_is_the_same_when_only_shown_streams_keep_their_lists() {
    let dir = tempdir();
    let json = dir.path().join("r.json");
    let json = json.to_str().expect("utf-8");
    let mut compared = 0;
    for f in support::fixtures() {
        let f = f.to_str().expect("utf-8");
        for limit in ["1", "2"] {
            let lean = run(&["read", f, "--streams", "--limit", limit, "--no-color"]);
            let full = run(&[
                "read",
                f,
                "--streams",
                "--limit",
                limit,
                "--no-color",
                "--json",
                json,
                "--force",
            ]);
            assert_eq!(lean.status.code(), full.status.code(), "{f}");
            assert!(stdout(&lean) == stdout(&full), "{f} --limit {limit}");
            compared += 1;
        }
    }
    assert!(compared >= 20, "{compared}");
}

/// Beside a JSON or HTML report the streams view is rendered on a thread of its own while
/// the report is written; the terminal output must be the one the view alone gives, and it
/// must still be shown when writing the report fails.
#[test]
fn streams_view_beside_a_report_is_the_view_alone() {
    let dir = tempdir();
    let json = dir.path().join("r.json");
    let html = dir.path().join("r.html");
    for name in [
        "frame_len32le_nagle.pcap",
        "frame_http.pcap",
        "tcp_graceful.pcap",
        "arp_bridge.pcap",
    ] {
        let f = fixture(name);
        let f = f.to_str().expect("utf-8");
        for extra in [&["--limit", "3"][..], &[][..]] {
            let alone = run(&[&["read", f, "--all"][..], extra].concat());
            assert_eq!(alone.status.code(), Some(0), "{}", stderr(&alone));
            assert!(stdout(&alone).contains("TCP streams: messages vs segments"));
            for report in [
                ["--json", json.to_str().expect("utf-8")],
                ["--html", html.to_str().expect("utf-8")],
            ] {
                let beside = run(&[&["read", f, "--all"][..], extra, &report[..]].concat());
                assert_eq!(beside.status.code(), Some(0), "{}", stderr(&beside));
                assert_eq!(
                    stdout(&beside),
                    stdout(&alone),
                    "{name} {extra:?} {report:?}"
                );
            }
        }
    }
    if Path::new("/dev/full").exists() {
        let f = fixture("frame_len32le_nagle.pcap");
        let f = f.to_str().expect("utf-8");
        let alone = run(&["read", f, "--all"]);
        let failed = run(&["read", f, "--all", "--json", "/dev/full"]);
        assert_eq!(failed.status.code(), Some(1), "{}", stderr(&failed));
        assert!(stderr(&failed).contains("/dev/full"), "{}", stderr(&failed));
        assert_eq!(stdout(&failed), stdout(&alone));
    }
}

/// `--no-mmap` reads the file instead of mapping it (`--all --json` maps it on two cores):
/// the report is the same either way.
#[test]
fn no_mmap_gives_the_same_report() {
    let dir = tempdir();
    let report = |extra: &[&str]| {
        let out = dir.path().join("r.json");
        let input = fixture("tcp_graceful.pcap");
        let mut args = vec![
            "read",
            input.to_str().expect("utf-8"),
            "--all",
            "--json",
            out.to_str().expect("utf-8"),
        ];
        args.extend_from_slice(extra);
        let o = run(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let mut v = read_json(&out);
        v.as_object_mut().expect("object").remove("generated_at");
        v
    };
    let mapped = report(&[]);
    assert!(packets_in(&mapped) > 0);
    assert_eq!(report(&["--no-mmap"]), mapped);
}

fn packets_in(v: &Value) -> u64 {
    v["stats"]["packets"].as_u64().unwrap_or(0)
}
