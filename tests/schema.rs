//! The JSON report is exactly its schema: for every fixture (and every corpus capture when
//! the corpus is present) the report of `--all --packets --json` deserialises into
//! `netlens::report::Report`, whose types all carry `deny_unknown_fields`, and carries the
//! keys and layer objects DESIGN.md names (the contract other tools rely on).

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

/// The report of `--all --packets --json` for one capture, as text.
fn report_text(capture: &Path) -> Option<String> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let json = dir.path().join("r.json");
    let mut config = netlens::Config::for_files(vec![capture.to_path_buf()]);
    config.views = netlens::Views::all();
    config.views.packets = true;
    config.json = Some(json.clone());
    let mut out = Vec::new();
    let mut err = Vec::new();
    // Unreadable corpus files (not a capture at all) have no report; that is cli.rs's part.
    netlens::run(&config, &mut out, &mut err).ok()?;
    Some(std::fs::read_to_string(&json).expect("JSON written"))
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

fn has_all(v: &Value, want: &[&str], what: &str) {
    let k = keys(v);
    for w in want {
        assert!(k.contains(w), "{what} lacks {w:?}: {v}");
    }
}

fn is_mac(s: &str) -> bool {
    s.len() == 17
        && s.split(':').count() == 6
        && s.split(':').all(|o| {
            o.len() == 2
                && o.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

const FLAG_ORDER: [&str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];

/// Checks one layer object against DESIGN.md; returns its name.
fn check_layer(l: &Value, what: &str) -> String {
    let name = l["layer"]
        .as_str()
        .expect("every layer has a \"layer\" name")
        .to_string();
    let w = format!("{what} layer {name}");
    match name.as_str() {
        "ethernet" => {
            has_all(l, &["src", "dst", "ethertype"], &w);
            assert!(is_mac(l["src"].as_str().unwrap_or("")), "{w}: {l}");
            assert!(is_mac(l["dst"].as_str().unwrap_or("")), "{w}: {l}");
            let et = l["ethertype"].as_str().unwrap_or("");
            assert!(et.starts_with("0x") && et.len() == 6, "{w}: ethertype {et}");
        }
        "vlan" => has_all(l, &["id"], &w),
        "sll" => {
            has_all(l, &["packet_type"], &w);
            if let Some(src) = l.get("src") {
                assert!(is_mac(src.as_str().unwrap_or("")), "{w}: {l}");
            }
        }
        "arp" => {
            has_all(
                l,
                &["op", "sender_mac", "sender_ip", "target_mac", "target_ip"],
                &w,
            );
            assert!(
                l["op"] == "request" || l["op"] == "reply" || l["op"].is_u64(),
                "{w}: op {}",
                l["op"]
            );
        }
        "ipv4" => has_all(
            l,
            &["src", "dst", "ttl", "protocol", "id", "mf", "frag_offset"],
            &w,
        ),
        "ipv6" => has_all(l, &["src", "dst", "hop_limit", "protocol"], &w),
        "tcp" => {
            has_all(
                l,
                &[
                    "src_port",
                    "dst_port",
                    "seq",
                    "ack",
                    "flags",
                    "window",
                    "payload_len",
                    "options",
                ],
                &w,
            );
            assert!(l["options"].is_object(), "{w}: options is an object");
            // Flag names in the order FIN, SYN, RST, PSH, ACK, URG, ECE, CWR.
            let flags = l["flags"].as_str().unwrap_or("?");
            let idx: Vec<usize> = flags
                .split('|')
                .filter(|f| !f.is_empty())
                .map(|f| {
                    FLAG_ORDER
                        .iter()
                        .position(|o| *o == f)
                        .unwrap_or(usize::MAX)
                })
                .collect();
            assert!(idx.iter().all(|&i| i < 8), "{w}: unknown flag in {flags}");
            assert!(
                idx.windows(2).all(|p| p[0] < p[1]),
                "{w}: flag order {flags}"
            );
        }
        "udp" => has_all(l, &["src_port", "dst_port", "length"], &w),
        "icmp" | "icmpv6" => has_all(l, &["type", "code"], &w),
        // netlens's own additions: loopback family, raw IP, undissected payload.
        "null" => has_all(l, &["family"], &w),
        "raw" => {}
        "data" => has_all(l, &["what", "len"], &w),
        other => panic!("{what}: layer name {other:?} is not in DESIGN.md or docs/report.md"),
    }
    name
}

/// Every object key of `v` (but the keys of maps keyed by data), with its parent key.
fn collect_keys(v: &Value, parent: &str, out: &mut BTreeSet<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                // Keys that are data, not schema: link-type names and "layer: reason".
                if !["by_link_type", "dissect_issues"].contains(&parent) {
                    out.insert((parent.to_string(), k.clone()));
                }
                collect_keys(x, k, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_keys(x, parent, out)),
        _ => {}
    }
}

fn check_report(text: &str, what: &str, seen: &mut BTreeSet<String>) {
    let parsed: Result<netlens::report::Report, _> = serde_json::from_str(text);
    if let Err(e) = &parsed {
        panic!("{what}: report does not deserialise with deny_unknown_fields: {e}");
    }
    let v: Value = serde_json::from_str(text).expect("valid JSON");
    // Every field written is documented in docs/report.md.
    let docs =
        std::fs::read_to_string(support::root().join("docs/report.md")).expect("docs/report.md");
    let mut written = BTreeSet::new();
    collect_keys(&v, "", &mut written);
    for (parent, k) in &written {
        assert!(
            docs.contains(&format!("`{k}`")),
            "{what}: field `{k}` (in `{parent}`) is not documented in docs/report.md"
        );
    }
    has_all(
        &v,
        &[
            "schema", "netlens", "source", "stats", "warnings", "packets",
        ],
        what,
    );
    assert_eq!(v["schema"], "netlens-report/1");
    assert_eq!(v["netlens"], env!("CARGO_PKG_VERSION"));
    has_all(
        &v["source"],
        &["kind", "path", "format", "link_types", "interfaces"],
        what,
    );
    assert_eq!(v["source"]["kind"], "file");
    assert!(["pcap", "pcapng"].contains(&v["source"]["format"].as_str().unwrap_or("")));
    has_all(
        &v["stats"],
        &[
            "packets",
            "bytes",
            "first_ts",
            "last_ts",
            "by_protocol",
            "dissect_issues",
        ],
        what,
    );
    for w in v["warnings"].as_array().expect("warnings is an array") {
        has_all(w, &["kind", "message"], what);
    }
    let packets = v["packets"].as_array().expect("packets is an array");
    assert_eq!(
        v["stats"]["packets"].as_u64(),
        Some(packets.len() as u64),
        "{what}"
    );
    for p in packets {
        has_all(p, &["frame", "ts", "len", "caplen", "layers"], what);
        if let Some(i) = p.get("issue") {
            has_all(i, &["layer", "offset", "reason"], what);
        }
        let f = format!("{what} frame {}", p["frame"]);
        let layers = p["layers"].as_array().expect("layers is an array");
        let names: Vec<String> = layers.iter().map(|l| check_layer(l, &f)).collect();
        // The transport layer appears once per frame at most.
        let transports = names
            .iter()
            .filter(|n| ["tcp", "udp", "icmp", "icmpv6"].contains(&n.as_str()))
            .count();
        assert!(transports <= 1, "{f}: {names:?}");
        seen.extend(names);
    }
}

#[test]
fn every_fixture_report_deserialises_with_deny_unknown_fields() {
    let mut seen = BTreeSet::new();
    for f in support::fixtures() {
        let text = report_text(&f).expect("fixtures read");
        check_report(&text, &support::file_name(&f), &mut seen);
    }
    // The fixtures are real Ethernet traffic: ARP, IPv4, TCP and UDP all occur.
    for want in ["ethernet", "arp", "ipv4", "tcp", "udp"] {
        assert!(seen.contains(want), "no {want} layer in any fixture report");
    }
    eprintln!("fixture layer kinds checked: {seen:?}");
}

#[test]
fn every_corpus_report_deserialises_with_deny_unknown_fields() {
    let Some(captures) = support::corpus_captures() else {
        eprintln!("note: ../shared/corpus not found; corpus schema check skipped");
        return;
    };
    let mut seen = BTreeSet::new();
    let mut reports = 0;
    for f in &captures {
        let Some(text) = report_text(f) else { continue };
        check_report(&text, &support::file_name(f), &mut seen);
        reports += 1;
    }
    eprintln!("corpus: {reports} reports checked; layer kinds {seen:?}");
    // The corpus covers every layer kind DESIGN.md names.
    for want in [
        "ethernet", "vlan", "sll", "arp", "ipv4", "ipv6", "tcp", "udp", "icmp", "icmpv6",
    ] {
        assert!(seen.contains(want), "no {want} layer in any corpus report");
    }
}

#[test]
fn a_report_with_an_unknown_field_is_rejected() {
    // The schema test could not fail if deserialisation ignored unknown keys.
    let text = report_text(&support::fixture("tcp_refused.pcap")).expect("fixture reads");
    let mut v: Value = serde_json::from_str(&text).expect("valid JSON");
    v["packets"][0]["layers"][1]["not_in_the_schema"] = Value::Bool(true);
    assert!(serde_json::from_value::<netlens::report::Report>(v.clone()).is_err());
    v["packets"][0]["layers"][1]
        .as_object_mut()
        .expect("layer object")
        .remove("not_in_the_schema");
    assert!(serde_json::from_value::<netlens::report::Report>(v.clone()).is_ok());
    v["stats"]["surprise"] = Value::from(1);
    assert!(serde_json::from_value::<netlens::report::Report>(v).is_err());
}
