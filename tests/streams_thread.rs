//! Stream reassembly on its own thread (the default with two cores, src/analyze/
//! streams_thread.rs) must give exactly what it gives inline (`--threads 1`): the same
//! terminal output, JSON report and extracted files, for every fixture, every corpus
//! capture, and a synthetic capture long enough to cross many batch boundaries.

mod support;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
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

/// A connection from 10.0.0.1:`sport` to 10.0.0.2:`dport`, as its client sends it.
/// Writes a generated capture to `name` in a new temporary directory (kept as long as
/// the returned handle).
fn write_capture(mut gen: impl std::io::Read, name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join(name);
    let mut file = std::fs::File::create(&path).expect("create");
    std::io::copy(&mut gen, &mut file).expect("write the capture");
    (dir, path)
}

fn client(sport: u16, dport: u16) -> Seg {
    Seg {
        src_mac: [2, 0, 0, 0, 0, 1],
        dst_mac: [2, 0, 0, 0, 0, 2],
        src: (Ipv4Addr::new(10, 0, 0, 1), sport),
        dst: (Ipv4Addr::new(10, 0, 0, 2), dport),
        seq: 0,
        ack: 0,
        flags: 0,
    }
}

/// 400 conversations one after another, each a 1 KiB request and a 20 KiB response in
/// 1,000-byte segments: about 8 MB of payload and 11,000 frames, so dozens of batches
/// (256 KiB or 2,048 calls each) with connections finalized in between.
#[test]
fn a_capture_of_many_batches_reports_the_same_with_the_stream_thread() {
    let convs: Vec<Conversation> = (0..400u32)
        .map(|k| Conversation {
            a: client(20_000 + k as u16, 8080),
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
    let (_dir, path) = write_capture(gen, "many.pcap");
    let size = std::fs::metadata(&path).expect("written").len();
    assert!(size > 8_000_000, "{size}");
    assert_same(&path, true);
}

/// Re-sent segments compared with the first copy: on the stream thread the history keeps
/// file positions and reads the bytes back (analyze/streams/reread.rs), inline it copies
/// them; both must count the same conflicting and unchecked bytes, and the right ones.
/// Per connection: 40 segments of 1,000 bytes, 200 of 10 bytes (past the history's piece
/// limit, so they are copied), then re-sent copies: segment 35 with 3 bytes altered, 36
/// intact, 38 with 1 altered, one of the 10-byte segments with 1 altered, and segment 5,
/// which lies beyond the 16 KiB window (1,000 unchecked bytes).
#[test]
fn resent_bytes_compare_the_same_with_the_stream_thread() {
    use support::synth::{tcp_frame, ACK, FIN, PSH, SYN};
    let conns = 12u32;
    let mut frames: Vec<Vec<u8>> = Vec::new();
    for k in 0..conns {
        let a = client(30_000 + k as u16, 9000);
        let (c, s) = (k.wrapping_mul(0x9e37_79b9), 77u32);
        let byte = |off: u32| (off.wrapping_mul(13) ^ k) as u8;
        let data = |seq_off: u32, len: u32, flip: &[u32]| {
            let mut d: Vec<u8> = (seq_off..seq_off + len).map(byte).collect();
            for &f in flip {
                d[f as usize] ^= 0xff;
            }
            let mut out = Vec::new();
            let seg = Seg {
                seq: c.wrapping_add(1 + seq_off),
                ack: s + 1,
                flags: PSH | ACK,
                ..a
            };
            tcp_frame(&mut out, &seg, &d);
            out
        };
        let mut hs = Vec::new();
        tcp_frame(
            &mut hs,
            &Seg {
                seq: c,
                flags: SYN,
                ..a
            },
            &[],
        );
        frames.push(std::mem::take(&mut hs));
        tcp_frame(&mut hs, &a.reply(s, c.wrapping_add(1), SYN | ACK), &[]);
        frames.push(std::mem::take(&mut hs));
        for i in 0..40 {
            frames.push(data(i * 1000, 1000, &[]));
        }
        for i in 0..200 {
            frames.push(data(40_000 + i * 10, 10, &[]));
        }
        frames.push(data(35_000, 1000, &[10, 500, 999]));
        frames.push(data(36_000, 1000, &[]));
        frames.push(data(38_000, 1000, &[0]));
        frames.push(data(40_000 + 197 * 10, 10, &[4]));
        frames.push(data(5_000, 1000, &[]));
        let end = c.wrapping_add(1 + 42_000);
        let mut fin = Vec::new();
        tcp_frame(
            &mut fin,
            &Seg {
                seq: end,
                ack: s + 1,
                flags: FIN | ACK,
                ..a
            },
            &[],
        );
        frames.push(fin);
        let mut fin = Vec::new();
        tcp_frame(
            &mut fin,
            &a.reply(s + 1, end.wrapping_add(1), FIN | ACK),
            &[],
        );
        frames.push(fin);
    }
    let mut next = frames.into_iter();
    let gen = GenPcap::new(move |i, out: &mut Vec<u8>| {
        out.extend_from_slice(&next.next()?);
        Some(1_700_000_000_000_000_000 + i as i64 * 100_000)
    });
    let (_dir, path) = write_capture(gen, "resent.pcap");
    assert_same(&path, false);
    let (_, report, _) = run(&path, "2", false);
    let report: serde_json::Value = serde_json::from_slice(&report).expect("a JSON report");
    let streams = report["streams"].as_array().expect("streams");
    assert_eq!(streams.len(), conns as usize);
    for s in streams {
        let re = &s["reassembly"];
        assert_eq!(re["retransmissions"], 5, "{s}");
        assert_eq!(re["conflicting_bytes"], 5, "{re}");
        assert_eq!(re["unchecked_bytes"], 1000, "{re}");
    }
}
