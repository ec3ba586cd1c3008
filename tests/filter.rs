//! `-f/--filter` selects exactly what tcpdump selects: a table of expressions over the
//! fixtures, the timestamps of the frames netlens keeps compared with those tcpdump prints
//! for `tcpdump -tt -r FILE EXPR` (tcpdump's `--number` counts its output, not frames).
//! Skipped with a printed note where tcpdump or libpcap is missing.

use std::path::Path;
use std::process::Command;

const EXPRS: &[&str] = &[
    "arp",
    "tcp",
    "udp",
    "ip",
    "tcp port 5001",
    "tcp[tcpflags] & (tcp-syn|tcp-fin) != 0",
    "host 10.77.0.1 and not arp",
    "ip[6:2] & 0x3fff != 0",
    "greater 1000",
    "ether broadcast",
];

fn tcpdump_frames(file: &Path, expr: &str) -> Option<Vec<String>> {
    let out = Command::new("tcpdump")
        .args(["-tt", "-nn", "-r"])
        .arg(file)
        .arg(expr)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| Some(l.split_whitespace().next()?.to_string()))
            .collect(),
    )
}

fn netlens_frames(file: &Path, expr: &str) -> Vec<String> {
    let mut config = netlens::Config::for_files(vec![file.to_path_buf()]);
    config.filter = Some(expr.to_string());
    config.views.packets = true;
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("r.json");
    config.json = Some(json.clone());
    let mut out = Vec::new();
    let mut err = Vec::new();
    netlens::run(&config, &mut out, &mut err).expect("run");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("parse");
    v["packets"]
        .as_array()
        .expect("packets")
        .iter()
        .map(|p| {
            let ns = p["ts_ns"].as_i64().expect("ts_ns");
            format!("{}.{:06}", ns / 1_000_000_000, ns % 1_000_000_000 / 1000)
        })
        .collect()
}

#[test]
fn filter_selects_what_tcpdump_selects() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let probe = fixtures.join("tcp_graceful.pcap");
    if tcpdump_frames(&probe, "tcp").is_none() {
        eprintln!("note: tcpdump not available; filter comparison skipped");
        return;
    }
    let mut config = netlens::Config::for_files(vec![probe.clone()]);
    config.filter = Some("tcp".into());
    if let Err(e) = netlens::run(&config, &mut Vec::new(), &mut Vec::new()) {
        eprintln!("note: {e}; filter comparison skipped");
        return;
    }
    let mut files: Vec<_> = std::fs::read_dir(&fixtures)
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    files.sort();
    let mut cases = 0;
    for f in &files {
        for expr in EXPRS {
            let want = tcpdump_frames(f, expr).expect("tcpdump accepted the expression");
            let got = netlens_frames(f, expr);
            assert_eq!(got, want, "{} with filter {expr:?}", f.display());
            cases += 1;
        }
    }
    eprintln!("filter: {cases} (file, expression) cases agree with tcpdump");
    assert!(cases >= 50);
}

#[test]
fn invalid_filter_is_a_usage_error_quoting_libpcap() {
    let bin = env!("CARGO_BIN_EXE_netlens");
    let f = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tcp_graceful.pcap");
    let out = Command::new(bin)
        .arg("read")
        .arg(&f)
        .args(["-f", "tcp porrt 80"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("needs libpcap") {
        eprintln!("note: libpcap missing; {stderr}");
        assert_eq!(out.status.code(), Some(1));
        return;
    }
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains("invalid filter \"tcp porrt 80\"") && stderr.contains("syntax error"),
        "{stderr}"
    );
}
