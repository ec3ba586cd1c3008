//! Stream reassembly on its own thread (the default with two cores, src/analyze/
//! streams_thread.rs) must give exactly what it gives inline (`--threads 1`): the same
//! terminal output, JSON report and extracted files, for every fixture, every corpus
//! capture, and a synthetic capture long enough to cross many batch boundaries.

mod support;

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

use support::synth::{Conversation, GenPcap, Seg};

/// Terminal output, JSON report, and the extracted files (name → bytes) of one run.
type Outputs = (Vec<u8>, Vec<u8>, Vec<(String, Vec<u8>)>);

fn run(capture: &Path, threads: &str, extract: bool) -> Outputs {
    let dir = tempfile::tempdir().expect("temporary directory");
    let json = dir.path().join("r.json");
    let out_dir = dir.path().join("x");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_netlens"));
    cmd.arg("read")
        .arg(capture)
        .args(["--all", "--no-color", "--limit", "5", "--threads", threads])
        .arg("--json")
        .arg(&json);
    if extract {
        cmd.arg("--extract").arg(&out_dir).arg("--extract-messages");
    }
    let o = cmd.output().expect("netlens runs");
    let mut files = Vec::new();
    if extract {
        for e in walk(&out_dir) {
            let name = e
                .strip_prefix(&out_dir)
                .expect("inside")
                .display()
                .to_string();
            files.push((name, std::fs::read(&e).expect("extracted file")));
        }
        files.sort();
    }
    let report = std::fs::read(&json).unwrap_or_default();
    let mut text = o.stdout;
    text.extend_from_slice(format!("\nexit {:?}\n", o.status.code()).as_bytes());
    (text, report, files)
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn assert_same(capture: &Path, extract: bool) {
    let inline = run(capture, "1", extract);
    let threaded = run(capture, "2", extract);
    let name = capture.display();
    assert!(inline.0 == threaded.0, "{name}: terminal output differs");
    assert!(inline.1 == threaded.1, "{name}: JSON report differs");
    assert_eq!(inline.2.len(), threaded.2.len(), "{name}: extracted files");
    for (a, b) in inline.2.iter().zip(&threaded.2) {
        assert!(a == b, "{name}: extracted {} differs", a.0);
    }
}

#[test]
fn every_fixture_reports_the_same_with_the_stream_thread() {
    let fixtures = support::fixtures();
    assert!(fixtures.len() >= 10);
    for f in fixtures {
        assert_same(&f, true);
    }
}

#[test]
fn every_corpus_capture_reports_the_same_with_the_stream_thread() {
    let Some(captures) = support::corpus_captures() else {
        eprintln!("note: ../shared/corpus not found; corpus comparison skipped");
        return;
    };
    for f in &captures {
        assert_same(f, false);
    }
}

/// 400 conversations one after another, each a 1 KiB request and a 20 KiB response in
/// 1,000-byte segments: about 8 MB of payload and 11,000 frames, so dozens of batches
/// (256 KiB or 2,048 calls each) with connections finalized in between.
#[test]
fn a_capture_of_many_batches_reports_the_same_with_the_stream_thread() {
    let convs: Vec<Conversation> = (0..400u32)
        .map(|k| Conversation {
            a: Seg {
                src_mac: [2, 0, 0, 0, 0, 1],
                dst_mac: [2, 0, 0, 0, 0, 2],
                src: (Ipv4Addr::new(10, 0, 0, 1), 20_000 + k as u16),
                dst: (Ipv4Addr::new(10, 0, 0, 2), 8080),
                seq: 0,
                ack: 0,
                flags: 0,
            },
            isn: k.wrapping_mul(0x9e37_79b9),
            risn: k.wrapping_mul(0x85eb_ca6b),
            request: (0..1024).map(|i| (i as u32 ^ k) as u8).collect(),
            response: (0..20 * 1024).map(|i| (i as u32 * 7 + k) as u8).collect(),
            mss: 1000,
        })
        .collect();
    let (mut conv, mut at) = (0usize, 0u64);
    let gen = GenPcap::new(move |i, out: &mut Vec<u8>| {
        while conv < convs.len() && at == convs[conv].frames() {
            conv += 1;
            at = 0;
        }
        let c = convs.get(conv)?;
        c.frame(at, out);
        at += 1;
        Some(1_700_000_000_000_000_000 + i as i64 * 100_000)
    });
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("many.pcap");
    let mut file = std::fs::File::create(&path).expect("create");
    std::io::copy(&mut { gen }, &mut file).expect("write the capture");
    drop(file);
    let size = std::fs::metadata(&path).expect("written").len();
    assert!(size > 8_000_000, "{size}");
    assert_same(&path, true);
}
