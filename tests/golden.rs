//! Golden outputs for every fixture: the `--packets` text and the JSON `packets` array and
//! `stats` object, compared with files committed under tests/golden/ (reviewed like code).
//!
//! Only views other analyzers do not change are pinned here: the per-frame view and the
//! stats. The default summary table gains sections as analyzers land and is not pinned.
//!
//! To accept a deliberate change: `NETLENS_BLESS=1 cargo test --test golden`, then review
//! `git diff tests/golden`. On a mismatch the actual output is left under
//! target/golden-actual/ for diffing.
//!
//! The goldens are also checked against an independent dissector: where tshark is
//! installed, every frame's addresses, ports, raw seq/ack, flags, window, lengths, TTL, IP
//! id and checksum verdicts in the golden JSON must equal tshark's, and the stats
//! protocol counts must equal tshark's `frame.protocols` counts.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

fn golden_dir() -> PathBuf {
    support::root().join("tests/golden")
}

/// The `--packets` text and the JSON (`packets`, `stats`) of one fixture, via the library.
fn outputs(fixture: &Path) -> (String, Value) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let json_path = dir.path().join("r.json");
    let mut config = netlens::Config::for_files(vec![fixture.to_path_buf()]);
    config.views.packets = true;
    let mut text = Vec::new();
    let mut err = Vec::new();
    netlens::run(&config, &mut text, &mut err).expect("fixture reads");
    config.json = Some(json_path.clone());
    let mut sink = Vec::new();
    netlens::run(&config, &mut sink, &mut err).expect("fixture reads");
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).expect("JSON written"))
            .expect("JSON parses");
    let pinned = json!({"packets": v["packets"], "stats": v["stats"]});
    (String::from_utf8(text).expect("UTF-8 text"), pinned)
}

/// The pinned JSON as text: one frame per line (diffs show whole frames), stats pretty.
fn golden_json(v: &Value) -> String {
    let mut out = String::from("{\n\"packets\": [\n");
    let packets = v["packets"].as_array().cloned().unwrap_or_default();
    for (i, p) in packets.iter().enumerate() {
        out += &serde_json::to_string(p).expect("serialises");
        out += if i + 1 < packets.len() { ",\n" } else { "\n" };
    }
    out += "],\n\"stats\": ";
    out += &serde_json::to_string_pretty(&v["stats"]).expect("serialises");
    out += "\n}\n";
    out
}

/// Compares `actual` with the golden file `name`; with NETLENS_BLESS set, writes it.
fn compare(name: &str, actual: &str, failures: &mut Vec<String>) {
    let path = golden_dir().join(name);
    if std::env::var_os("NETLENS_BLESS").is_some() {
        std::fs::create_dir_all(golden_dir()).expect("create tests/golden");
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected == actual {
        return;
    }
    let out = support::root().join("target/golden-actual");
    let _ = std::fs::create_dir_all(&out);
    let _ = std::fs::write(out.join(name), actual);
    let first_diff = expected
        .lines()
        .zip(actual.lines())
        .position(|(a, b)| a != b)
        .unwrap_or(expected.lines().count().min(actual.lines().count()));
    failures.push(format!(
        "{name} differs from tests/golden/{name} at line {} (actual output in target/golden-actual/{name}; NETLENS_BLESS=1 accepts it)",
        first_diff + 1
    ));
}

#[test]
fn fixtures_match_golden_outputs() {
    let mut failures = Vec::new();
    let fixtures = support::fixtures();
    assert!(!fixtures.is_empty());
    for f in &fixtures {
        let name = support::file_name(f);
        let (text, v) = outputs(f);
        compare(&format!("{name}.packets.txt"), &text, &mut failures);
        compare(&format!("{name}.json"), &golden_json(&v), &mut failures);
    }
    // Every golden file belongs to a fixture (a renamed fixture leaves none behind).
    if let Ok(entries) = std::fs::read_dir(golden_dir()) {
        for e in entries.flatten() {
            // Subdirectories hold other renderers' goldens (html/: tests/html.rs).
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let g = e.file_name().to_string_lossy().into_owned();
            let owner = g
                .strip_suffix(".packets.txt")
                .or_else(|| g.strip_suffix(".l2.txt"))
                .or_else(|| g.strip_suffix(".json"));
            let owned = |o: &str| {
                fixtures.iter().any(|f| {
                    support::file_name(f) == o
                        || f.file_stem().is_some_and(|st| st.to_string_lossy() == o)
                })
            };
            if !owner.is_some_and(owned) {
                failures.push(format!("tests/golden/{g} belongs to no fixture"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// One tshark field row per frame, keyed by field name.
fn tshark_rows(f: &Path, fields: &[&str]) -> Option<Vec<BTreeMap<String, String>>> {
    let mut cmd = Command::new("tshark");
    cmd.args([
        "-o",
        "tcp.check_checksum:TRUE",
        "-o",
        "udp.check_checksum:TRUE",
        "-o",
        "ip.check_checksum:TRUE",
        "-n",
        "-T",
        "fields",
        "-E",
        "separator=/t",
        "-E",
        "occurrence=f",
        "-r",
    ])
    .arg(f);
    for field in fields {
        cmd.args(["-e", field]);
    }
    let o = cmd.output().ok()?;
    if !o.status.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| {
                fields
                    .iter()
                    .zip(l.split('\t'))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .collect(),
    )
}

/// Our flags names ("SYN|ACK") as tshark's tcp.flags hex ("0x0012").
fn flags_hex(names: &str) -> String {
    const BITS: [(&str, u16); 8] = [
        ("FIN", 0x01),
        ("SYN", 0x02),
        ("RST", 0x04),
        ("PSH", 0x08),
        ("ACK", 0x10),
        ("URG", 0x20),
        ("ECE", 0x40),
        ("CWR", 0x80),
    ];
    let mut v = 0u16;
    for n in names.split('|').filter(|n| !n.is_empty()) {
        v |= BITS
            .iter()
            .find(|(b, _)| *b == n)
            .map_or(0x8000, |(_, x)| *x);
    }
    format!("0x{v:04x}")
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// tshark's checksum status (0 bad, 1 good, 2 unverified) as our `checksum_ok`.
fn status(v: &Value) -> String {
    match v {
        Value::Bool(true) => "1".into(),
        Value::Bool(false) => "0".into(),
        _ => "2".into(),
    }
}

#[test]
fn golden_packets_agree_with_tshark() {
    const FIELDS: [&str; 23] = [
        "frame.number",
        "frame.len",
        "frame.cap_len",
        "eth.src",
        "eth.dst",
        "arp.opcode",
        "ip.src",
        "ip.dst",
        "ip.ttl",
        "ip.id",
        "ip.checksum.status",
        "tcp.srcport",
        "tcp.dstport",
        "tcp.seq_raw",
        "tcp.ack_raw",
        "tcp.flags",
        "tcp.window_size_value",
        "tcp.len",
        "tcp.checksum.status",
        "udp.srcport",
        "udp.dstport",
        "udp.length",
        "frame.protocols",
    ];
    let mut checked = 0;
    for f in support::fixtures() {
        let Some(rows) = tshark_rows(&f, &FIELDS) else {
            eprintln!("note: tshark not available; golden cross-check skipped");
            return;
        };
        let name = support::file_name(&f);
        let golden: Value = serde_json::from_str(
            &std::fs::read_to_string(golden_dir().join(format!("{name}.json")))
                .expect("golden JSON exists"),
        )
        .expect("golden JSON parses");
        let packets = golden["packets"].as_array().expect("packets array");
        assert_eq!(packets.len(), rows.len(), "{name}: frame count");
        let mut protos: BTreeMap<&str, u64> = BTreeMap::new();
        for (p, row) in packets.iter().zip(&rows) {
            let mut ours: BTreeMap<&str, String> = BTreeMap::new();
            ours.insert("frame.number", s(&p["frame"]));
            ours.insert("frame.len", s(&p["len"]));
            ours.insert("frame.cap_len", s(&p["caplen"]));
            for l in p["layers"].as_array().expect("layers") {
                match l["layer"].as_str().unwrap_or("") {
                    "ethernet" => {
                        ours.insert("eth.src", s(&l["src"]));
                        ours.insert("eth.dst", s(&l["dst"]));
                    }
                    "arp" => {
                        let op = match s(&l["op"]).as_str() {
                            "request" => "1".to_string(),
                            "reply" => "2".to_string(),
                            n => n.to_string(),
                        };
                        ours.insert("arp.opcode", op);
                    }
                    "ipv4" => {
                        ours.insert("ip.src", s(&l["src"]));
                        ours.insert("ip.dst", s(&l["dst"]));
                        ours.insert("ip.ttl", s(&l["ttl"]));
                        let id = l["id"].as_u64().unwrap_or(u64::MAX);
                        ours.insert("ip.id", format!("0x{id:04x}"));
                        ours.insert("ip.checksum.status", status(&l["checksum_ok"]));
                    }
                    "tcp" => {
                        ours.insert("tcp.srcport", s(&l["src_port"]));
                        ours.insert("tcp.dstport", s(&l["dst_port"]));
                        ours.insert("tcp.seq_raw", s(&l["seq"]));
                        ours.insert("tcp.ack_raw", s(&l["ack"]));
                        ours.insert("tcp.flags", flags_hex(l["flags"].as_str().unwrap_or("?")));
                        ours.insert("tcp.window_size_value", s(&l["window"]));
                        ours.insert("tcp.len", s(&l["payload_len"]));
                        ours.insert("tcp.checksum.status", status(&l["checksum_ok"]));
                    }
                    "udp" => {
                        ours.insert("udp.srcport", s(&l["src_port"]));
                        ours.insert("udp.dstport", s(&l["dst_port"]));
                        ours.insert("udp.length", s(&l["length"]));
                    }
                    _ => {}
                }
            }
            for field in &FIELDS[..FIELDS.len() - 1] {
                let theirs = row.get(*field).cloned().unwrap_or_default();
                let mine = ours.get(field).cloned().unwrap_or_default();
                assert_eq!(
                    mine,
                    theirs,
                    "{name} frame {}: {field} (golden vs tshark)",
                    s(&p["frame"])
                );
            }
            let layers = row.get("frame.protocols").cloned().unwrap_or_default();
            for (ours, theirs) in [
                ("ethernet", "eth"),
                ("arp", "arp"),
                ("ipv4", "ip"),
                ("ipv6", "ipv6"),
                ("tcp", "tcp"),
                ("udp", "udp"),
                ("icmp", "icmp"),
            ] {
                if layers.split(':').any(|l| l == theirs) {
                    *protos.entry(ours).or_insert(0) += 1;
                }
            }
            checked += 1;
        }
        let by_protocol = &golden["stats"]["by_protocol"];
        for (k, n) in &protos {
            assert_eq!(
                by_protocol[*k], *n,
                "{name}: stats.by_protocol.{k} vs tshark"
            );
        }
        for k in ["ethernet", "arp", "ipv4", "ipv6", "tcp", "udp", "icmp"] {
            if !protos.contains_key(k) {
                assert!(
                    by_protocol[k].is_null(),
                    "{name}: {k} counted, tshark saw none"
                );
            }
        }
        assert_eq!(golden["stats"]["packets"], rows.len() as u64, "{name}");
    }
    eprintln!("golden: {checked} frames agree with tshark field by field");
}
