//! Cross-check of reassembled bytes against independent references:
//!
//! - PcapPlusPlus's TCP-reassembly test outputs in the shared corpus
//!   (`ref/*.pcpp.*.txt`): each is the byte-exact concatenation of a connection's payload,
//!   both directions, in the order in-order data became available (`tcpreassembly_sides.*`:
//!   one direction each). netlens's deliveries, concatenated in the order they happened,
//!   must equal them.
//! - `tshark -q -z follow,tcp,raw,N` on every TCP fixture: each node's bytes must equal
//!   netlens's bytes for that direction.
//!
//! The agreement table goes to target/streams-agreement.txt. Parts whose reference is
//! missing (no corpus, no tshark) are skipped with a note in the table.

mod common;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use netlens::analyze::streams::StreamOptions;
use netlens::analyze::Dir;

fn corpus() -> Option<PathBuf> {
    let d = std::env::var_os("NETLENS_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
    d.join("ref").is_dir().then_some(d)
}

/// Disagreements with tshark we understand, one per (capture, sender), with the reason.
/// Each must still disagree (a stale entry fails the test too).
const KNOWN: &[(&str, &str, &str)] = &[
    (
        "arkime__tcpseq_synthetic.pcap",
        "30.0.0.0:0",
        "synthetic: the second segment lies 251,658,111 bytes beyond the first; tshark drops it, netlens (no window tracking) records the hole as a gap and delivers it",
    ),
    (
        "pcapplusplus__pkt_ldap.pcapng",
        "52.57.162.88:389",
        "the last segment (frame 24) lies above a 14-byte hole never filled; tshark's follow leaves it out, netlens records the hole (lost) and delivers the 44 bytes",
    ),
    (
        "tcpdump__tcp_rst_diag_payload.pcap",
        "",
        "the only payload is 8 bytes on an RST; tshark shows them, netlens does not deliver RST payload (counted as reassembly.rst_payload_bytes)",
    ),
];

struct Row {
    reference: String,
    what: String,
    ref_bytes: usize,
    our_bytes: usize,
    ok: bool,
}

fn first_diff(a: &[u8], b: &[u8]) -> String {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => format!("first difference at byte {i}"),
        None => format!("lengths {} vs {}", a.len(), b.len()),
    }
}

fn pcpp(rows: &mut Vec<Row>, notes: &mut Vec<String>) {
    let Some(dir) = corpus() else {
        notes.push("PcapPlusPlus references skipped: corpus not found".into());
        return;
    };
    let refdir = dir.join("ref");
    let mut refs: Vec<PathBuf> = std::fs::read_dir(&refdir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            n.contains(".pcpp.")
                && n.ends_with(".txt")
                && !n.ends_with("notes.txt")
                && !n.ends_with("-metadata.txt")
        })
        .collect();
    refs.sort();
    let mut runs: HashMap<String, common::Run> = HashMap::new();
    for r in refs {
        let name = r.file_name().unwrap().to_string_lossy().to_string();
        let capture = name[..name.find(".pcpp.").unwrap()].to_string();
        let run = runs.entry(capture.clone()).or_insert_with(|| {
            common::run(
                &dir.join("captures").join(&capture),
                StreamOptions::default(),
            )
        });
        let want = std::fs::read(&r).unwrap();
        let conns: Vec<u64> = {
            let mut v: Vec<u64> = run.bytes.data.keys().map(|k| k.0).collect();
            v.sort();
            v.dedup();
            v
        };
        let (what, got) = if let Some(sides) = name.split(".pcpp.tcpreassembly_sides.").nth(1) {
            // One direction: the file is named after its sender, `A.B.C.D.PORT-...`.
            let sender = sides.split('-').next().unwrap();
            let (ip, port) = sender.rsplit_once('.').unwrap();
            let src: SocketAddr = format!("{ip}:{port}").parse().unwrap();
            let key = run
                .bytes
                .ends
                .iter()
                .find(|(_, (s, _))| *s == src)
                .map(|(k, _)| *k);
            match key {
                Some(k) => (
                    format!("conn {} {} (sent by {src})", k.0, k.1.name()),
                    run.bytes.data[&k].clone(),
                ),
                None => (format!("no stream sent by {src}"), Vec::new()),
            }
        } else {
            // Both directions interleaved: the connection whose bytes match (several
            // connections in one capture are listed in the reference's own order).
            let found = conns
                .iter()
                .map(|&c| (c, run.bytes.interleaved(c)))
                .find(|(_, b)| *b == want);
            match found {
                Some((c, b)) => (format!("conn {c}, both directions in delivery order"), b),
                None => {
                    let best = conns
                        .iter()
                        .map(|&c| run.bytes.interleaved(c))
                        .max_by_key(|b| b.len())
                        .unwrap_or_default();
                    (
                        format!("no connection matches ({})", first_diff(&best, &want)),
                        best,
                    )
                }
            }
        };
        rows.push(Row {
            reference: name,
            what,
            ref_bytes: want.len(),
            our_bytes: got.len(),
            ok: got == want,
        });
    }
}

/// One node's side of a followed stream: its bytes and the gaps tshark marked.
#[derive(Default)]
struct Side {
    bytes: Vec<u8>,
    /// Sum of tshark's "[N bytes missing in capture file]." markers.
    missing: u64,
}

/// `tshark -z follow,tcp,raw,N` for all `streams` of `file` in one pass: per stream,
/// (node 0, node 1, side of node 0, side of node 1).
fn tshark_follow(
    file: &Path,
    streams: &[usize],
) -> HashMap<usize, (SocketAddr, SocketAddr, Side, Side)> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(file).arg("-q");
    for n in streams {
        cmd.args(["-z", &format!("follow,tcp,raw,{n}")]);
    }
    let mut res = HashMap::new();
    let Ok(out) = cmd.output() else {
        return res;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut cur: Option<usize> = None;
    let mut nodes: Vec<SocketAddr> = Vec::new();
    let (mut a, mut b) = (Side::default(), Side::default());
    let mut flush =
        |cur: Option<usize>, nodes: &mut Vec<SocketAddr>, a: &mut Side, b: &mut Side| {
            if let (Some(n), 2) = (cur, nodes.len()) {
                res.insert(
                    n,
                    (nodes[0], nodes[1], std::mem::take(a), std::mem::take(b)),
                );
            }
            nodes.clear();
            *a = Side::default();
            *b = Side::default();
        };
    for line in text.lines() {
        if let Some(f) = line.strip_prefix("Filter: tcp.stream eq ") {
            flush(cur, &mut nodes, &mut a, &mut b);
            cur = f.trim().parse().ok();
            continue;
        }
        if let Some(n) = line
            .strip_prefix("Node 0: ")
            .or(line.strip_prefix("Node 1: "))
        {
            if let Ok(addr) = n.trim().parse() {
                nodes.push(addr);
            }
            continue;
        }
        if nodes.len() < 2 || line.starts_with('=') || line.trim().is_empty() {
            continue;
        }
        let (dst, hex) = match line.strip_prefix('\t') {
            Some(h) => (&mut b, h),
            None => (&mut a, line),
        };
        let hex = hex.trim();
        if hex.len() % 2 != 0 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            continue;
        }
        let chunk: Vec<u8> = (0..hex.len())
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
            .collect();
        // tshark writes a lost range as this text, also in raw mode.
        let text = String::from_utf8_lossy(&chunk);
        // (In raw mode the text ends "]" plus a NUL; in ascii mode "].".)
        let marker = text
            .trim_end_matches(['\0', '.'])
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(" bytes missing in capture file]"))
            .and_then(|n| n.parse::<u64>().ok());
        match marker {
            Some(n) => dst.missing += n,
            None => dst.bytes.extend_from_slice(&chunk),
        }
    }
    flush(cur, &mut nodes, &mut a, &mut b);
    res
}

/// A direction's delivered bytes only (gaps left out, as tshark's follow does).
fn delivered(run: &common::Run, conn: u64, dir: Dir) -> Vec<u8> {
    run.bytes
        .data
        .get(&(conn, dir))
        .cloned()
        .unwrap_or_default()
}

fn have_tshark(notes: &mut Vec<String>) -> bool {
    let ok = Command::new("tshark").arg("-v").output().is_ok();
    if !ok {
        notes.push("tshark follow skipped: tshark not installed".into());
    }
    ok
}

fn fixture_files() -> Vec<PathBuf> {
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&fx)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    files.sort();
    files
}

/// Corpus captures tagged with retransmissions, reordering, loss or midstream pickups
/// (the hard cases for reassembly), small enough for a test, readable by tshark.
fn corpus_hard_files() -> Vec<PathBuf> {
    let Some(dir) = corpus() else {
        return Vec::new();
    };
    let Ok(manifest) = std::fs::read_to_string(dir.join("MANIFEST.tsv")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in manifest.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 9 {
            continue;
        }
        let tags = f[8];
        let hard = [
            "retransmission",
            "out-of-order",
            "lost-segment",
            "tcp-midstream",
        ]
        .iter()
        .any(|t| tags.split(',').any(|x| x == *t));
        let unreadable = tags.contains("malformed-file") || tags.contains("tshark-unreadable");
        let small = f[3].parse::<u64>().is_ok_and(|b| b <= 300_000);
        if hard && !unreadable && small {
            out.push(dir.join("captures").join(f[0]));
        }
    }
    out
}

fn tshark(rows: &mut Vec<Row>, files: Vec<PathBuf>) {
    for f in files {
        let run = common::run(&f, StreamOptions::default());
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        // Streams in tshark's order (first packet) = connection ids in ours.
        let mut conns: Vec<u64> = run.streams.iter().map(|s| s.conn).collect();
        conns.sort();
        conns.dedup();
        // tshark numbers every TCP conversation, also those without payload.
        let ids = Command::new("tshark")
            .arg("-r")
            .arg(&f)
            .args(["-Y", "tcp", "-T", "fields", "-e", "tcp.stream"])
            .output()
            .unwrap();
        let mut streams: Vec<usize> = String::from_utf8_lossy(&ids.stdout)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        streams.sort();
        streams.dedup();
        let mut used = Vec::new();
        let followed = tshark_follow(&f, &streams);
        for n in streams {
            let Some((n0, n1, s0, s1)) = followed.get(&n) else {
                continue;
            };
            let (n0, n1) = (*n0, *n1);
            if s0.bytes.is_empty() && s1.bytes.is_empty() {
                continue;
            }
            // Our connection with these endpoints, not yet matched (reused tuples).
            let conn = conns.iter().copied().find(|c| {
                !used.contains(c)
                    && [Dir::Orig, Dir::Resp].iter().any(|d| {
                        run.bytes
                            .ends
                            .get(&(*c, *d))
                            .is_some_and(|&(s, t)| (s == n0 && t == n1) || (s == n1 && t == n0))
                    })
            });
            let Some(conn) = conn else {
                rows.push(Row {
                    reference: format!("tshark follow {name} stream {n}"),
                    what: "no matching connection".into(),
                    ref_bytes: s0.bytes.len() + s1.bytes.len(),
                    our_bytes: 0,
                    ok: false,
                });
                continue;
            };
            used.push(conn);
            for (node, side) in [(n0, s0), (n1, s1)] {
                let dir = [Dir::Orig, Dir::Resp]
                    .into_iter()
                    .find(|d| run.bytes.ends.get(&(conn, *d)).is_some_and(|e| e.0 == node));
                let ours = dir.map(|d| delivered(&run, conn, d)).unwrap_or_default();
                if side.bytes.is_empty() && ours.is_empty() {
                    continue;
                }
                // Gap bytes between delivered data (tshark marks no gap at either end).
                let our_gaps: u64 = dir
                    .and_then(|d| {
                        run.streams
                            .iter()
                            .find(|s| s.conn == conn && s.dir == d.name())
                    })
                    .map(|s| {
                        s.gaps
                            .iter()
                            .filter(|g| g.offset > 0 && g.offset + g.len < s.stream_len)
                            .map(|g| g.len)
                            .sum()
                    })
                    .unwrap_or(0);
                let gaps_ok = side.missing == our_gaps;
                rows.push(Row {
                    reference: format!("tshark follow {name} stream {n}"),
                    what: format!(
                        "conn {conn}, sent by {node}{}",
                        if side.missing > 0 || our_gaps > 0 {
                            format!("; gap bytes tshark {} netlens {}", side.missing, our_gaps)
                        } else {
                            String::new()
                        }
                    ),
                    ref_bytes: side.bytes.len(),
                    our_bytes: ours.len(),
                    ok: ours == side.bytes && gaps_ok,
                });
            }
        }
    }
}

#[test]
fn reassembled_bytes_agree_with_pcapplusplus_and_tshark() {
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    pcpp(&mut rows, &mut notes);
    if have_tshark(&mut notes) {
        tshark(&mut rows, fixture_files());
    }
    let strict = rows.len();
    let mut hard = Vec::new();
    if have_tshark(&mut notes) {
        tshark(&mut hard, corpus_hard_files());
    }
    let mut t = String::new();
    let ok = rows.iter().filter(|r| r.ok).count();
    writeln!(
        t,
        "netlens streams: reassembled bytes vs references — {ok}/{} agree",
        rows.len()
    )
    .unwrap();
    for n in &notes {
        writeln!(t, "note: {n}").unwrap();
    }
    writeln!(
        t,
        "{:<5} {:>9} {:>9}  {:<88} what",
        "ok", "ref", "netlens", "reference"
    )
    .unwrap();
    let hard_ok = hard.iter().filter(|r| r.ok).count();
    writeln!(
        t,
        "corpus captures with retransmissions, reordering, loss or midstream pickups vs tshark follow: {hard_ok}/{} agree",
        hard.len()
    )
    .unwrap();
    let mut stale = Vec::new();
    for k in KNOWN {
        let hit = hard
            .iter_mut()
            .find(|r| !r.ok && r.reference.contains(k.0) && r.what.contains(k.1));
        match hit {
            Some(r) => r.what = format!("{} — KNOWN: {}", r.what, k.2),
            None => stale.push(k.0),
        }
    }
    let unexplained: Vec<String> = hard
        .iter()
        .filter(|r| !r.ok && !r.what.contains("KNOWN"))
        .map(|r| format!("{} {}", r.reference, r.what))
        .collect();
    rows.extend(hard);
    for r in &rows {
        writeln!(
            t,
            "{:<5} {:>9} {:>9}  {:<88} {}",
            if r.ok { "yes" } else { "NO" },
            r.ref_bytes,
            r.our_bytes,
            r.reference,
            r.what
        )
        .unwrap();
    }
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("streams-agreement.txt"), &t).unwrap();
    println!("{t}");
    assert!(!rows.is_empty() || !notes.is_empty());
    let bad: Vec<&Row> = rows[..strict].iter().filter(|r| !r.ok).collect();
    assert!(bad.is_empty(), "disagreements:\n{t}");
    assert!(
        unexplained.is_empty(),
        "unexplained disagreements with tshark: {unexplained:?}"
    );
    assert!(stale.is_empty(), "KNOWN entries that now agree: {stale:?}");
}

/// Every corpus capture (hostile ones included) goes through reassembly and framing
/// (`auto`, and a length framing on every stream, which hits garbage everywhere) without a
/// panic, quickly, and with the accounting invariants holding.
#[test]
fn every_corpus_capture_runs_clean() {
    let Some(dir) = corpus() else {
        eprintln!("corpus not found: skipped");
        return;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("captures"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let mut streams = 0;
    for f in &files {
        for framing in [&[][..], &["len16be"][..]] {
            let t = std::time::Instant::now();
            let o = StreamOptions {
                framing: netlens::analyze::framing::FramingConfig::parse(framing).unwrap(),
                ..StreamOptions::default()
            };
            let run = common::run(f, o);
            assert!(t.elapsed().as_secs() < 30, "{}: too slow", f.display());
            for s in &run.streams {
                streams += 1;
                let name = f.file_name().unwrap().to_string_lossy();
                assert_eq!(
                    s.bytes + s.gaps_total.bytes,
                    s.stream_len,
                    "{name} conn {}",
                    s.conn
                );
                let delivered = run.bytes.data.get(&(
                    s.conn,
                    if s.dir == "orig" {
                        Dir::Orig
                    } else {
                        Dir::Resp
                    },
                ));
                assert_eq!(delivered.map_or(0, |d| d.len() as u64), s.bytes, "{name}");
                let mut at = 0;
                for m in &s.messages {
                    assert_eq!(m.offset, at, "{name} conn {} message {}", s.conn, m.index);
                    at += m.len;
                }
                if s.lists_cut.is_none() {
                    assert_eq!(s.stats.segments, s.segments.len() as u64);
                    let new: u64 = s
                        .segments
                        .iter()
                        .map(|g| g.new_bytes.unwrap_or(g.len))
                        .sum();
                    assert_eq!(
                        new,
                        s.stream_len - gap_bytes_not_from_segments(s),
                        "{name} conn {}",
                        s.conn
                    );
                }
            }
        }
    }
    eprintln!("{} captures, {streams} stream directions", files.len());
}

/// Gap bytes that no listed segment accounts for (lost, buffer-cap, acked-not-seen); the
/// `not-captured` ones belong to the segments that were cut.
fn gap_bytes_not_from_segments(s: &netlens::report::streams::StreamEntry) -> u64 {
    s.gaps
        .iter()
        .filter(|g| g.reason != "not-captured")
        .map(|g| g.len)
        .sum()
}
