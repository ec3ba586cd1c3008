//! Conformance over the shared corpus of real public captures (../shared/corpus).
//!
//! For every capture: netlens never panics and finishes quickly through the whole pipeline
//! with every view; and for every capture tshark read, netlens reads the same number of
//! frames and, frame by frame, the same eth src/dst, ARP opcode, IPv4 src/dst, ports, TCP
//! flags, raw seq/ack, TCP payload length and UDP length as `ref/<file>.tshark.fields.csv`.
//!
//! The agreement table is written to target/corpus-agreement.txt (and printed with
//! `--nocapture`). Skipped with a printed note where the corpus is absent.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use netlens::capture::file::{CaptureFile, DEFAULT_MAX_RECORD};
use netlens::capture::Next;
use netlens::dissect::{DissectOptions, Dissector, Net, Packet, Transport};

const FIELDS: [&str; 13] = [
    "frame.number",
    "eth.src",
    "eth.dst",
    "arp.opcode",
    "ip.src",
    "ip.dst",
    "tcp.srcport",
    "tcp.dstport",
    "tcp.flags",
    "tcp.seq_raw",
    "tcp.ack_raw",
    "tcp.len",
    "udp.length",
];

/// Differences we understand and accept, one per (file, field), each with its reason.
/// Everything here is explained in the issue notes; anything else fails the test.
const KNOWN: &[(&str, &str, &str)] = &[
    // 19 bytes of IPv4 header captured: Wireshark shows the source address (bytes 12-15)
    // alone; netlens reports an IPv4 layer only when its fixed 20 bytes are all there.
    (
        "tcpdump__ipv4_invalid_length.pcap",
        "ip.src",
        "IPv4 fixed header cut at 19 bytes",
    ),
    // 14 bytes of TCP header captured: Wireshark shows the ports; netlens needs the fixed
    // 20 bytes to report a TCP layer.
    (
        "tcpdump__tcp_header_heapoverflow.pcap",
        "tcp.srcport",
        "TCP fixed header cut at 14 bytes",
    ),
    (
        "tcpdump__tcp_header_heapoverflow.pcap",
        "tcp.dstport",
        "TCP fixed header cut at 14 bytes",
    ),
    // A 60-byte IPv4 header cut at 20 bytes: both addresses are in the captured bytes and
    // netlens shows both; Wireshark stops before the destination.
    (
        "zeek__trunc_ipv4-internally-truncated-header.pcap",
        "ip.dst",
        "options cut, addresses whole",
    ),
];

fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("NETLENS_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
    dir.join("captures").is_dir().then_some(dir)
}

/// Our values for the tshark fields of one frame.
fn our_fields(p: &Packet<'_>) -> [String; 13] {
    let mut f: [String; 13] = Default::default();
    f[0] = p.frame.to_string();
    if let Some((src, dst)) = p.eth() {
        f[1] = src.to_string();
        f[2] = dst.to_string();
    }
    match p.net {
        Net::Arp(a) => f[3] = a.op.to_string(),
        Net::Ipv4(h) => {
            f[4] = h.src.to_string();
            f[5] = h.dst.to_string();
        }
        _ => {}
    }
    match p.transport {
        Transport::Tcp(t) => {
            f[6] = t.src_port.to_string();
            f[7] = t.dst_port.to_string();
            f[8] = format!("0x{:04x}", t.flags.0 & 0x0fff);
            f[9] = t.seq.to_string();
            f[10] = t.ack.to_string();
            // Wireshark leaves tcp.len empty when the header does not fit in the IP payload;
            // netlens says 0 and records the issue.
            if p.issue
                .is_none_or(|i| i.reason != "TCP header longer than the IP payload")
            {
                f[11] = t.payload_len.to_string();
            }
        }
        Transport::Udp(u) => f[12] = u.length.to_string(),
        _ => {}
    }
    f
}

struct FileResult {
    name: String,
    frames_ours: u64,
    frames_ref: u64,
    compared: u64,
    agreeing: u64,
    mismatches: Vec<String>,
}

fn check_file(path: &Path, csv: &str) -> FileResult {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').collect())
        .collect();
    let mut r = FileResult {
        name: name.clone(),
        frames_ours: 0,
        frames_ref: rows.len() as u64,
        compared: 0,
        agreeing: 0,
        mismatches: Vec::new(),
    };
    let Ok(mut file) = CaptureFile::open(path, 0, DEFAULT_MAX_RECORD) else {
        return r;
    };
    file.begin(0);
    let mut dissector = Dissector::new(DissectOptions::default());
    let mut frame = 1;
    loop {
        let ours = match file.next_packet(frame) {
            Next::Packet(raw) => our_fields(&dissector.dissect(&raw)),
            Next::Record { .. } => {
                let mut f: [String; 13] = Default::default();
                f[0] = frame.to_string();
                f
            }
            _ => break,
        };
        if let Some(row) = rows.get(frame as usize - 1) {
            // Rows with more than 13 columns carry several occurrences of a field
            // (tunnels, ICMP errors quoting a header); those frames are not compared.
            if row.len() == 13 {
                r.compared += 1;
                let mut ok = true;
                for (i, field) in FIELDS.iter().enumerate() {
                    if ours[i] != row[i] && !KNOWN.iter().any(|(f, k, _)| *f == name && k == field)
                    {
                        ok = false;
                        if r.mismatches.len() < 5 {
                            r.mismatches.push(format!(
                                "frame {frame} {field}: netlens {:?} tshark {:?}",
                                ours[i], row[i]
                            ));
                        }
                    }
                }
                if ok {
                    r.agreeing += 1;
                }
            }
        }
        frame += 1;
    }
    r.frames_ours = frame - 1;
    r
}

#[test]
fn corpus_matches_tshark_fields_and_never_panics() {
    let Some(dir) = corpus_dir() else {
        eprintln!("note: ../shared/corpus not found; corpus conformance skipped");
        return;
    };
    let mut captures: Vec<PathBuf> = std::fs::read_dir(dir.join("captures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    captures.sort();
    let mut out = String::new();
    let (mut files_ok, mut files_cmp, mut frames_cmp, mut frames_ok) = (0, 0, 0u64, 0u64);
    let mut failures = Vec::new();
    for path in &captures {
        // 1. the whole pipeline, every view, never panics and finishes quickly.
        let start = Instant::now();
        let mut config = netlens::Config::for_files(vec![path.clone()]);
        config.views = netlens::Views::all();
        config.views.packets = true;
        config.json =
            Some(std::env::temp_dir().join(format!("netlens-corpus-{}.json", std::process::id())));
        let mut sink = Vec::new();
        let mut err = Vec::new();
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            netlens::run(&config, &mut sink, &mut err)
        }));
        if run.is_err() {
            failures.push(format!("{}: PANIC", path.display()));
            continue;
        }
        let took = start.elapsed();
        if took > Duration::from_secs(20) {
            failures.push(format!("{}: took {took:?}", path.display()));
        }
        // 2. agreement with tshark's fields.
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let csv_path = dir.join("ref").join(format!("{name}.tshark.fields.csv"));
        let Ok(csv) = std::fs::read_to_string(&csv_path) else {
            continue;
        };
        if csv.trim().is_empty() {
            // tshark could not read this file at all; netlens must just not panic.
            continue;
        }
        let r = check_file(path, &csv);
        files_cmp += 1;
        frames_cmp += r.compared;
        frames_ok += r.agreeing;
        let count_ok = r.frames_ours == r.frames_ref;
        if count_ok && r.agreeing == r.compared {
            files_ok += 1;
        } else {
            let _ = writeln!(
                out,
                "DIFF {}: frames netlens {} tshark {}; {}/{} frames agree",
                r.name, r.frames_ours, r.frames_ref, r.agreeing, r.compared
            );
            for m in &r.mismatches {
                let _ = writeln!(out, "    {m}");
            }
            failures.push(format!("{}: disagrees with tshark", r.name));
        }
    }
    let _ = writeln!(
        out,
        "corpus: {} captures; {files_ok}/{files_cmp} files agree with tshark on frame count and every field; {frames_ok}/{frames_cmp} frames ({:.2}%) agree field by field",
        captures.len(),
        100.0 * frames_ok as f64 / frames_cmp.max(1) as f64
    );
    eprintln!("{out}");
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    let _ = std::fs::create_dir_all(&target);
    let _ = std::fs::write(target.join("corpus-agreement.txt"), &out);
    assert!(
        failures.is_empty(),
        "corpus failures:\n{}\n{out}",
        failures.join("\n")
    );
}
