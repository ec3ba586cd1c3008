//! Ecosystem outputs, checked against the JSON report and against Zeek itself:
//!
//! - `--zeek-logs`: conn.log is read by column name (as zeek-cut reads it) and every row is
//!   compared with the connection of the JSON report it stands for; the header is compared
//!   with the header of a conn.log Zeek wrote (corpus baseline); the rows are compared with
//!   Zeek's own rows for the corpus traces whose full conn.log baseline exists; zeek-cut (or
//!   its Debian name bro-cut, package bro-aux) reads the file when installed; two runs
//!   write the same bytes.
//! - `--ndjson`: every line parses as an event; the connection, handshake and ARP lines
//!   are exactly the JSON report's entries; the summary line carries the report's stats;
//!   lines come out while the input is still being read (a pcap fed through a pipe).

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use netlens::report::conns::ConnEntry;
use netlens::report::ndjson::Event;
use netlens::report::Report;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_netlens");

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    v.sort();
    assert!(v.len() >= 10, "fixtures missing: {v:?}");
    v
}

fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("NETLENS_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
    dir.join("captures").is_dir().then_some(dir)
}

/// Runs the binary; panics unless it exits 0.
fn netlens(args: &[&std::ffi::OsStr]) -> std::process::Output {
    let out = Command::new(BIN).args(args).output().expect("run netlens");
    assert!(
        out.status.success(),
        "netlens {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `netlens read FILE --all --json J --zeek-logs D --ndjson N -q`; returns (report, dir).
fn run_all(file: &Path, dir: &Path) -> Report {
    let json = dir.join("r.json");
    netlens(&[
        "read".as_ref(),
        file.as_os_str(),
        "--all".as_ref(),
        "-q".as_ref(),
        "--json".as_ref(),
        json.as_os_str(),
        "--zeek-logs".as_ref(),
        dir.join("zeek").as_os_str(),
        "--ndjson".as_ref(),
        dir.join("events.ndjson").as_os_str(),
    ]);
    serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("report")
}

// ------------------------------------------------------------------ Zeek logs

/// A Zeek ASCII log read the way zeek-cut reads it: by the names of `#fields`.
#[derive(Debug)]
struct ZeekLog {
    header: Vec<String>,
    fields: Vec<String>,
    types: Vec<String>,
    rows: Vec<Vec<String>>,
    closed: bool,
}

impl ZeekLog {
    fn read(path: &Path) -> ZeekLog {
        let text = std::fs::read_to_string(path).expect("read log");
        let mut log = ZeekLog {
            header: Vec::new(),
            fields: Vec::new(),
            types: Vec::new(),
            rows: Vec::new(),
            closed: false,
        };
        for line in text.lines() {
            if line.starts_with("###") {
                continue; // btest's banner in the corpus baselines
            }
            if let Some(f) = line.strip_prefix("#fields\t") {
                log.fields = f.split('\t').map(str::to_string).collect();
            } else if let Some(t) = line.strip_prefix("#types\t") {
                log.types = t.split('\t').map(str::to_string).collect();
            } else if line.starts_with("#close") {
                log.closed = true;
            } else if line.starts_with('#') {
                log.header.push(line.to_string());
            } else {
                let row: Vec<String> = line.split('\t').map(str::to_string).collect();
                assert_eq!(row.len(), log.fields.len(), "row width in {path:?}: {line}");
                log.rows.push(row);
            }
        }
        log
    }

    fn col(&self, name: &str) -> usize {
        self.fields
            .iter()
            .position(|f| f == name)
            .unwrap_or_else(|| panic!("no column {name} in {:?}", self.fields))
    }

    /// Rows as name → value maps.
    fn records(&self) -> Vec<HashMap<&str, &str>> {
        self.rows
            .iter()
            .map(|r| {
                self.fields
                    .iter()
                    .map(String::as_str)
                    .zip(r.iter().map(String::as_str))
                    .collect()
            })
            .collect()
    }
}

/// Host and port of "ip:port" / "[v6]:port", parsed independently of the library.
fn host_port(ep: &str) -> (String, String) {
    let (h, p) = ep.rsplit_once(':').expect("endpoint has a port");
    (
        h.trim_matches(|c| c == '[' || c == ']').to_string(),
        p.to_string(),
    )
}

fn secs6(ns: i64) -> String {
    // Rounded to the microsecond, as Zeek prints times.
    let us = (ns as i128 * 1000 + 500_000).div_euclid(1_000_000) as i64;
    format!(
        "{}.{:06}",
        us.div_euclid(1_000_000),
        us.rem_euclid(1_000_000)
    )
}

/// What Zeek's conn.log row for this connection holds, column by column, from the JSON
/// report's entry and Zeek's rules (base/protocols/conn/main.zeek, set_conn).
fn expected_row(c: &ConnEntry) -> Vec<(&'static str, String)> {
    let (oh, op) = host_port(&c.orig);
    let (rh, rp) = host_port(&c.resp);
    let timed = c.duration_s > 0.0;
    let unset = || "-".to_string();
    vec![
        ("ts", secs6(c.start_ns)),
        ("id.orig_h", oh),
        ("id.orig_p", op),
        ("id.resp_h", rh),
        ("id.resp_p", rp),
        ("proto", c.proto.clone()),
        ("service", unset()),
        (
            "duration",
            if timed {
                format!("{:.6}", c.duration_s)
            } else {
                unset()
            },
        ),
        (
            "orig_bytes",
            if timed {
                c.orig_bytes.to_string()
            } else {
                unset()
            },
        ),
        (
            "resp_bytes",
            if timed {
                c.resp_bytes.to_string()
            } else {
                unset()
            },
        ),
        ("conn_state", c.conn_state.clone()),
        ("local_orig", unset()),
        ("local_resp", unset()),
        ("missed_bytes", c.missed_bytes.to_string()),
        (
            "history",
            if c.history.is_empty() {
                unset()
            } else {
                c.history.clone()
            },
        ),
        ("orig_pkts", c.orig_pkts.to_string()),
        ("orig_ip_bytes", c.orig_ip_bytes.to_string()),
        ("resp_pkts", c.resp_pkts.to_string()),
        ("resp_ip_bytes", c.resp_ip_bytes.to_string()),
        ("tunnel_parents", unset()),
        (
            "ip_proto",
            if c.proto == "tcp" { "6" } else { "17" }.to_string(),
        ),
    ]
}

/// Checks conn.log and handshakes.log of one run against its JSON report; returns the
/// number of rows checked.
fn check_logs(report: &Report, dir: &Path, what: &str) -> usize {
    let conns = report.connections.clone().unwrap_or_default();
    let log = ZeekLog::read(&dir.join("zeek/conn.log"));
    assert!(log.closed, "{what}: conn.log has no #close");
    assert_eq!(
        log.rows.len(),
        conns.len(),
        "{what}: one conn.log row per connection"
    );
    // Rows are in finalization order; match each to its connection by 4-tuple and start.
    let mut by_key: HashMap<(String, String, String, String, String), &ConnEntry> = HashMap::new();
    for c in &conns {
        let (oh, op) = host_port(&c.orig);
        let (rh, rp) = host_port(&c.resp);
        by_key.insert((oh, op, rh, rp, secs6(c.start_ns)), c);
    }
    let mut uids = std::collections::HashSet::new();
    for rec in log.records() {
        let key = (
            rec["id.orig_h"].to_string(),
            rec["id.orig_p"].to_string(),
            rec["id.resp_h"].to_string(),
            rec["id.resp_p"].to_string(),
            rec["ts"].to_string(),
        );
        let c = by_key
            .remove(&key)
            .unwrap_or_else(|| panic!("{what}: conn.log row {key:?} has no connection"));
        for (name, want) in expected_row(c) {
            assert_eq!(rec[name], want, "{what}: conn {} column {name}", c.id);
        }
        let uid = rec["uid"];
        assert!(
            uid.starts_with('C')
                && uid.len() >= 12
                && uid[1..].bytes().all(|b| b.is_ascii_alphanumeric()),
            "{what}: uid {uid}"
        );
        assert!(uids.insert(uid.to_string()), "{what}: uid {uid} repeats");
    }
    assert!(by_key.is_empty(), "{what}: connections without a row");

    // handshakes.log: one row per TCP connection, the same uid as its conn.log row.
    let uid_of: HashMap<(String, String), String> = log
        .records()
        .iter()
        .map(|r| {
            (
                (
                    format!("{}|{}", r["id.orig_h"], r["id.orig_p"]),
                    format!("{}|{}|{}", r["id.resp_h"], r["id.resp_p"], r["ts"]),
                ),
                r["uid"].to_string(),
            )
        })
        .collect();
    let hs = ZeekLog::read(&dir.join("zeek/handshakes.log"));
    assert!(hs.closed);
    let tcp: BTreeMap<u64, &ConnEntry> = conns
        .iter()
        .filter(|c| c.proto == "tcp")
        .map(|c| (c.id, c))
        .collect();
    assert_eq!(
        hs.rows.len(),
        tcp.len(),
        "{what}: one handshake row per TCP conn"
    );
    for r in hs.records() {
        let id: u64 = r["conn"].parse().expect("conn id");
        let c = tcp[&id];
        let h = c.handshake.as_ref().expect("tcp has a handshake");
        assert_eq!(r["outcome"], h.outcome, "{what}: conn {id} outcome");
        let frames: Vec<String> = h.syn_frames.iter().map(u64::to_string).collect();
        let frames = if frames.is_empty() {
            "(empty)".to_string()
        } else {
            frames.join(",")
        };
        assert_eq!(r["syn_frames"], frames, "{what}: conn {id} syn_frames");
        let opt = |v: Option<u64>| v.map_or("-".to_string(), |x| x.to_string());
        assert_eq!(r["synack_frame"], opt(h.synack_frame));
        assert_eq!(r["ack_frame"], opt(h.ack_frame));
        assert_eq!(r["rst_frame"], opt(h.rst_frame));
        assert_eq!(r["orig_isn"], opt(h.orig_isn.map(u64::from)));
        let ms = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{:.6}", x / 1000.0));
        assert_eq!(r["syn_to_synack"], ms(h.rtt_ms.syn_to_synack));
        assert_eq!(r["synack_to_ack"], ms(h.rtt_ms.synack_to_ack));
        assert_eq!(r["acks_verified"], if h.acks_verified { "T" } else { "F" });
        let key = (
            format!("{}|{}", r["id.orig_h"], r["id.orig_p"]),
            format!("{}|{}|{}", r["id.resp_h"], r["id.resp_p"], r["ts"]),
        );
        assert_eq!(
            Some(&r["uid"].to_string()),
            uid_of.get(&key),
            "{what}: handshake uid = conn uid"
        );
    }
    // streams.log: one row per streams[] entry, with its connection's uid and ts.
    let st = ZeekLog::read(&dir.join("zeek/streams.log"));
    assert!(st.closed);
    let streams: Vec<netlens::report::streams::StreamEntry> =
        report.streams.clone().unwrap_or_default();
    assert_eq!(
        st.rows.len(),
        streams.len(),
        "{what}: one streams.log row per stream"
    );
    let conn_row: HashMap<u64, (String, String)> = log
        .records()
        .iter()
        .map(|r| {
            let c = conns
                .iter()
                .find(|c| secs6(c.start_ns) == r["ts"] && host_port(&c.orig).1 == r["id.orig_p"])
                .expect("conn of row");
            (c.id, (r["uid"].to_string(), r["ts"].to_string()))
        })
        .collect();
    for r in st.records() {
        let id: u64 = r["conn"].parse().unwrap();
        let s = streams
            .iter()
            .find(|s| s.conn == id && s.dir == r["dir"])
            .unwrap_or_else(|| panic!("{what}: streams.log row {id} {} has no entry", r["dir"]));
        let (uid, ts) = &conn_row[&id];
        assert_eq!(
            (r["uid"], r["ts"]),
            (uid.as_str(), ts.as_str()),
            "{what}: stream {id} uid"
        );
        assert_eq!(
            host_port(&s.orig),
            (r["id.orig_h"].to_string(), r["id.orig_p"].to_string())
        );
        for (col, v) in [
            ("bytes", s.bytes),
            ("stream_len", s.stream_len),
            ("first_frame", s.first_frame),
            ("messages", s.stats.messages),
            ("split_messages", s.stats.split_messages),
            ("coalesced_messages", s.stats.coalesced_messages),
            ("coalescing_segments", s.stats.coalescing_segments),
            ("segments", s.stats.segments),
            ("gaps", s.gaps_total.count),
            ("retransmissions", s.reassembly.retransmissions),
        ] {
            assert_eq!(r[col], v.to_string(), "{what}: stream {id} {} {col}", s.dir);
        }
        assert_eq!(r["framing"], s.framing, "{what}: stream {id} framing");
    }
    conns.len()
}

#[test]
fn conn_log_rows_are_the_json_connections() {
    let mut files = fixtures();
    if let Some(c) = corpus_dir() {
        // Traces with IPv6, VLANs, midstream and many connections.
        for t in [
            "zeek__wikipedia.pcap",
            "zeek__q-in-q.pcap",
            "zeek__tcp_http-on-irc-port-missing-syn.pcapng",
            "zeek__ipv6-http-atomic-frag.pcap",
            "zeek__tcp_handshake-reorder.pcap",
        ] {
            let p = c.join("captures").join(t);
            if p.exists() {
                files.push(p);
            }
        }
    } else {
        eprintln!("note: corpus not found; conn.log checked on the fixtures only");
    }
    let mut rows = 0;
    for f in &files {
        let dir = tempfile::tempdir().expect("tempdir");
        let report = run_all(f, dir.path());
        rows += check_logs(&report, dir.path(), &f.display().to_string());
    }
    eprintln!(
        "conn.log: {rows} rows over {} captures match the JSON",
        files.len()
    );
    assert!(rows >= 20, "too few connections to tell: {rows}");
}

#[test]
fn conn_log_header_is_zeeks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = &fixtures()[0];
    run_all(f, dir.path());
    let ours = ZeekLog::read(&dir.path().join("zeek/conn.log"));
    let text = std::fs::read_to_string(dir.path().join("zeek/conn.log")).unwrap();
    let first: Vec<&str> = text.lines().take(6).collect();
    assert_eq!(
        first[..5],
        [
            "#separator \\x09",
            "#set_separator\t,",
            "#empty_field\t(empty)",
            "#unset_field\t-",
            "#path\tconn"
        ]
    );
    assert!(first[5].starts_with("#open\t") && first[5].len() == "#open\t".len() + 19);
    assert!(text.lines().last().unwrap().starts_with("#close\t"));
    // The columns and types of a conn.log Zeek itself wrote (corpus baseline).
    let Some(c) = corpus_dir() else {
        eprintln!("note: corpus not found; conn.log columns not compared with Zeek's");
        return;
    };
    let zeek = ZeekLog::read(&c.join("ref/zeek__q-in-q.pcap.zeek.core.q-in-q.conn.log"));
    assert_eq!(ours.fields, zeek.fields);
    assert_eq!(ours.types, zeek.types);
    assert_eq!(
        ours.header[..5],
        zeek.header[..5],
        "separator lines and #path"
    );
}

/// Zeek's full conn.log baselines (all columns) in the corpus.
const ZEEK_BASELINES: &[(&str, &str)] = &[
    ("zeek__q-in-q.pcap", "zeek.core.q-in-q.conn.log"),
    ("zeek__wikipedia.pcap", "zeek.opt.basic.conn.log"),
    (
        "zeek__tcp_http-on-irc-port-missing-syn.pcapng",
        "zeek.core.tcp.flip-without-syn.conn.log",
    ),
    (
        "zeek__tcp_miss_end_data.pcap",
        "zeek.core.tcp.miss-end-data.conn.log",
    ),
];

/// Our conn.log next to Zeek's for the same trace, by column name: rows matched by
/// 4-tuple (in order among equal tuples), then the columns both sides compute compared.
#[test]
fn conn_log_agrees_with_zeeks_own() {
    let Some(c) = corpus_dir() else {
        eprintln!("note: corpus not found; Zeek conn.log comparison skipped");
        return;
    };
    let cols = [
        "proto",
        "conn_state",
        "history",
        "orig_pkts",
        "resp_pkts",
        "orig_ip_bytes",
        "resp_ip_bytes",
        "missed_bytes",
        "ip_proto",
        "orig_bytes",
        "resp_bytes",
    ];
    let (mut total, mut agree, mut rows) = (0usize, 0usize, 0usize);
    let mut lines = String::new();
    for (trace, base) in ZEEK_BASELINES {
        let ref_path = c.join("ref").join(format!("{trace}.{base}"));
        if !ref_path.exists() {
            continue;
        }
        let zeek = ZeekLog::read(&ref_path);
        if zeek.fields.first().map(String::as_str) != Some("ts") {
            continue;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        run_all(&c.join("captures").join(trace), dir.path());
        let ours = ZeekLog::read(&dir.path().join("zeek/conn.log"));
        let key = |l: &ZeekLog, r: &Vec<String>| {
            ["id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p"]
                .map(|n| r[l.col(n)].clone())
                .join(" ")
        };
        // Zeek rows in its order, ours sorted by ts (Zeek masks ts in baselines).
        let mut our_rows = ours.rows.clone();
        let ts = ours.col("ts");
        our_rows.sort_by(|a, b| {
            a[ts]
                .parse::<f64>()
                .unwrap_or(0.0)
                .total_cmp(&b[ts].parse::<f64>().unwrap_or(0.0))
        });
        let mut used = vec![false; our_rows.len()];
        for zr in &zeek.rows {
            let k = key(&zeek, zr);
            let Some(i) = (0..our_rows.len()).find(|&i| !used[i] && key(&ours, &our_rows[i]) == k)
            else {
                lines.push_str(&format!("{trace}: Zeek row {k} unmatched\n"));
                continue;
            };
            used[i] = true;
            rows += 1;
            for name in cols {
                let (a, b) = (&our_rows[i][ours.col(name)], &zr[zeek.col(name)]);
                total += 1;
                if a == b {
                    agree += 1;
                } else {
                    lines.push_str(&format!("{trace} {k} {name}: ours {a} zeek {b}\n"));
                }
            }
            // Zeek leaves the duration unset when it is zero: so must we. (Its value may
            // differ: Zeek's stops at the last productive packet.)
            let (a, b) = (
                &our_rows[i][ours.col("duration")],
                &zr[zeek.col("duration")],
            );
            total += 1;
            if (a == "-") == (b == "-") {
                agree += 1;
            } else {
                lines.push_str(&format!("{trace} {k} duration set: ours {a} zeek {b}\n"));
            }
        }
    }
    eprint!("{lines}");
    eprintln!("conn.log vs Zeek: {rows} rows, {agree}/{total} cells agree");
    assert!(rows >= 10, "too few Zeek rows matched: {rows}");
    // The same bar as the JSON agreement test (tests/zeek_agreement.rs): conn_state 95 %,
    // history 90 %; over all these columns together 95 %.
    assert!(
        agree as f64 >= 0.95 * total as f64,
        "only {agree} of {total} cells agree with Zeek"
    );
}

/// zeek-cut (Debian: bro-cut from bro-aux) picks columns by name from our conn.log.
#[test]
fn zeek_cut_reads_conn_log() {
    let cut = ["zeek-cut", "bro-cut"].into_iter().find(|c| {
        Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {c}"))
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    let Some(cut) = cut else {
        eprintln!(
            "note: neither zeek-cut nor bro-cut (apt: bro-aux) installed; zeek-cut check skipped"
        );
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let f = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tcp_reused_tuple.pcap");
    let report = run_all(&f, dir.path());
    let cols = [
        "uid",
        "id.orig_h",
        "id.resp_p",
        "conn_state",
        "history",
        "orig_bytes",
    ];
    let out = Command::new(cut)
        .args(cols)
        .stdin(std::fs::File::open(dir.path().join("zeek/conn.log")).unwrap())
        .output()
        .expect("run zeek-cut");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let ours = ZeekLog::read(&dir.path().join("zeek/conn.log"));
    let want: Vec<String> = ours
        .records()
        .iter()
        .map(|r| cols.map(|c| r[c]).join("\t"))
        .collect();
    assert_eq!(text.lines().collect::<Vec<_>>(), want, "{cut} output");
    assert_eq!(
        want.len(),
        report.connections.map_or(0, |c| c.len()),
        "{cut}: one line per connection"
    );
    eprintln!("{cut} read {} rows", want.len());
}

#[test]
fn zeek_logs_are_reproducible() {
    let f = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/arp_bridge_ports.pcapng");
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run_all(&f, a.path());
    run_all(&f, b.path());
    for name in ["conn.log", "handshakes.log", "streams.log"] {
        let x = std::fs::read(a.path().join("zeek").join(name)).unwrap();
        let y = std::fs::read(b.path().join("zeek").join(name)).unwrap();
        assert_eq!(x, y, "{name} differs between two runs");
    }
    let x = std::fs::read(a.path().join("events.ndjson")).unwrap();
    let y = std::fs::read(b.path().join("events.ndjson")).unwrap();
    assert_eq!(x, y, "NDJSON differs between two runs");
}

// ------------------------------------------------------------------ NDJSON

fn ndjson_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn without_type(v: &Value) -> Value {
    let mut v = v.clone();
    v.as_object_mut().expect("object").remove("type");
    v
}

#[test]
fn ndjson_lines_are_the_report_entries() {
    let mut files = fixtures();
    if let Some(c) = corpus_dir() {
        for t in ["zeek__wikipedia.pcap", "zeek__arp-who-has.pcap"] {
            files.push(c.join("captures").join(t));
        }
    }
    let (mut n_conn, mut n_arp, mut n_streams) = (0, 0, 0);
    for f in &files {
        let dir = tempfile::tempdir().expect("tempdir");
        let report = run_all(f, dir.path());
        let raw: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("r.json")).unwrap())
                .unwrap();
        let text = std::fs::read_to_string(dir.path().join("events.ndjson")).unwrap();
        // Every line is a typed event of the documented schema.
        for l in text.lines() {
            serde_json::from_str::<Event>(l).unwrap_or_else(|e| panic!("{f:?}: {e}: {l}"));
        }
        let lines = ndjson_lines(&text);
        let of = |t: &str| -> Vec<&Value> { lines.iter().filter(|l| l["type"] == t).collect() };

        // connection lines = connections[] (in finalization order; sorted by id here).
        let mut conns: Vec<Value> = of("connection").into_iter().map(without_type).collect();
        conns.sort_by_key(|c| c["id"].as_u64());
        let want = raw["connections"].as_array().cloned().unwrap_or_default();
        assert_eq!(conns, want, "{f:?}: connection lines");
        n_conn += conns.len();

        // One handshake line per TCP connection, before its connection line, with the
        // handshake the report holds (fixtures: nothing changes after resolution).
        let hs = of("handshake");
        let tcp: Vec<&Value> = want.iter().filter(|c| c["proto"] == "tcp").collect();
        assert_eq!(hs.len(), tcp.len(), "{f:?}: handshake lines");
        for h in &hs {
            let id = h["conn"].as_u64().unwrap();
            let c = tcp.iter().find(|c| c["id"] == id).expect("its connection");
            assert_eq!(h["handshake"]["outcome"], c["handshake"]["outcome"]);
            assert_eq!(h["handshake"]["syn_frames"], c["handshake"]["syn_frames"]);
            assert_eq!(h["handshake"]["ack_frame"], c["handshake"]["ack_frame"]);
            assert_eq!((&h["orig"], &h["resp"]), (&c["orig"], &c["resp"]));
            let pos = |t: &str, key: &str| {
                lines
                    .iter()
                    .position(|l| l["type"] == t && l[key] == id)
                    .unwrap()
            };
            assert!(pos("handshake", "conn") < pos("connection", "id"));
        }

        // arp lines = arp.exchanges[] (answered ones at the reply, so not in order).
        let mut arp: Vec<Value> = of("arp").into_iter().map(without_type).collect();
        arp.sort_by_key(|a| a["request_frame"].as_u64());
        let want_arp = raw["arp"]["exchanges"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(arp, want_arp, "{f:?}: arp lines");
        n_arp += arp.len();

        // stream lines = streams[], udp_flow lines = udp_flows[], each after its connection.
        for (ty, section, key) in [
            ("stream", "streams", "conn"),
            ("udp_flow", "udp_flows", "flow"),
        ] {
            let mut got: Vec<Value> = of(ty).into_iter().map(without_type).collect();
            got.sort_by_key(|s| (s[key].as_u64(), s["dir"] != "orig"));
            let want = raw[section].as_array().cloned().unwrap_or_default();
            assert_eq!(got, want, "{f:?}: {ty} lines");
            for s in &got {
                let at = |t: &str, k: &str| {
                    lines
                        .iter()
                        .position(|l| {
                            l["type"] == t && l[k] == s[key] && (k == "id" || l["dir"] == s["dir"])
                        })
                        .unwrap()
                };
                assert!(
                    at("connection", "id") < at(ty, key),
                    "{f:?}: {ty} before its connection"
                );
            }
            n_streams += got.len();
        }

        // The summary is last and carries the report's stats and counts.
        let last = lines.last().expect("lines");
        assert_eq!(last["type"], "summary");
        assert_eq!(last["stats"], raw["stats"], "{f:?}: summary stats");
        assert_eq!(last["source"], raw["source"]);
        assert_eq!(last["connection_stats"], raw["connection_stats"]);
        assert_eq!(
            last["events"]["connection"].as_u64().unwrap_or(0) as usize,
            conns.len()
        );
        assert_eq!(of("summary").len(), 1);
        assert_eq!(
            report.stats.packets,
            last["stats"]["packets"].as_u64().unwrap()
        );
    }
    eprintln!(
        "ndjson: {n_conn} connection, {n_arp} arp, {n_streams} stream/udp_flow lines over {} captures",
        files.len()
    );
    assert!(
        n_conn >= 20 && n_arp >= 5 && n_streams >= 20,
        "too few events to tell"
    );
}

#[test]
fn ndjson_to_stdout_carries_only_ndjson() {
    let f = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/arp_bridge_ports.pcapng");
    let out = netlens(&[
        "read".as_ref(),
        f.as_os_str(),
        "--all".as_ref(),
        "--ndjson".as_ref(),
        "-".as_ref(),
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    let lines = ndjson_lines(&text);
    assert!(lines.len() > 3);
    for l in &lines {
        assert!(l["type"].is_string(), "{l}");
    }
    // With a file instead, stdout has the tables and no JSON lines.
    let dir = tempfile::tempdir().unwrap();
    let out = netlens(&[
        "read".as_ref(),
        f.as_os_str(),
        "--ndjson".as_ref(),
        dir.path().join("sub/e.ndjson").as_os_str(),
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.lines().any(|l| l.starts_with('{')));
    assert!(
        dir.path().join("sub/e.ndjson").exists(),
        "directory created"
    );
}

#[test]
fn json_and_ndjson_cannot_both_take_stdout() {
    let f = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tcp_graceful.pcap");
    let out = Command::new(BIN)
        .args(["read"])
        .arg(&f)
        .args(["--json", "-", "--ndjson", "-"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("standard output"));
}

/// A capture fed through a pipe: each event's line comes out while netlens still waits
/// for more input (here: the handshake line after the third frame, a connection line when
/// a frame 2 minutes later times the first flow out), not only at the end.
#[test]
fn ndjson_streams_while_the_input_is_still_open() {
    use etherparse::PacketBuilder;
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};

    let mut child = Command::new(BIN)
        .args(["read", "-", "--ndjson", "-", "--udp-timeout", "60"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut w = PcapWriter::with_header(stdin, PcapHeader::default()).expect("pcap header");
    let (a, b) = ([10, 0, 0, 1], [10, 0, 0, 2]);
    let frame = |w: &mut PcapWriter<std::process::ChildStdin>, t: u64, buf: Vec<u8>| {
        w.write_packet(&PcapPacket::new(
            Duration::from_secs(1_700_000_000 + t),
            buf.len() as u32,
            &buf,
        ))
        .unwrap();
    };
    let (ma, mb) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let tcp = |fwd: bool, seq: u32, syn: bool, ack: Option<u32>| {
        let (s, d, sm, dm, sp, dp) = if fwd {
            (a, b, ma, mb, 40000, 80)
        } else {
            (b, a, mb, ma, 80, 40000)
        };
        let mut step = PacketBuilder::ethernet2(sm, dm)
            .ipv4(s, d, 64)
            .tcp(sp, dp, seq, 64240);
        if syn {
            step = step.syn();
        }
        if let Some(n) = ack {
            step = step.ack(n);
        }
        let mut buf = Vec::new();
        step.write(&mut buf, &[]).unwrap();
        buf
    };
    let udp = |fwd: bool, payload: &[u8]| {
        let (s, d, sm, dm, sp, dp) = if fwd {
            (a, b, ma, mb, 5353, 53)
        } else {
            (b, a, mb, ma, 53, 5353)
        };
        let mut buf = Vec::new();
        PacketBuilder::ethernet2(sm, dm)
            .ipv4(s, d, 64)
            .udp(sp, dp)
            .write(&mut buf, payload)
            .unwrap();
        buf
    };
    frame(&mut w, 0, tcp(true, 1000, true, None));
    frame(&mut w, 0, tcp(false, 5000, true, Some(1001)));
    frame(&mut w, 0, tcp(true, 1001, false, Some(5001)));
    frame(&mut w, 1, udp(true, b"query"));
    let wait = |rx: &std::sync::mpsc::Receiver<String>, ty: &str| -> Value {
        loop {
            let l = rx
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("no {ty} line while the input is open"));
            let v: Value = serde_json::from_str(&l).unwrap();
            if v["type"] == ty {
                return v;
            }
        }
    };
    let h = wait(&rx, "handshake");
    assert_eq!(h["handshake"]["outcome"], "complete");
    assert_eq!(h["handshake"]["ack_frame"], 3);
    // 120 s later: the UDP flow (60 s timeout) is finalized by this frame's arrival.
    frame(&mut w, 121, udp(false, b"late"));
    let c = wait(&rx, "connection");
    assert_eq!(
        (c["proto"].as_str(), c["finalized_by"].as_str()),
        (Some("udp"), Some("idle"))
    );
    drop(w); // end of input
    let s = wait(&rx, "summary");
    assert_eq!(s["stats"]["packets"], 5);
    assert!(child.wait().unwrap().success());
    reader.join().unwrap();
}

/// Writes a pcap of `n` short TCP connections (SYN, SYN-ACK, ACK, RST), 1 ms apart.
fn many_connections(path: &Path, n: u32) {
    use etherparse::PacketBuilder;
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    let mut w =
        PcapWriter::with_header(std::fs::File::create(path).unwrap(), PcapHeader::default())
            .unwrap();
    let (ma, mb) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    for i in 0..n {
        let c = [10, 1, (i >> 8) as u8, i as u8];
        let s = [10, 2, 0, 1];
        let port = 1024 + (i % 60_000) as u16;
        let t = Duration::from_millis(1_700_000_000_000 + u64::from(i));
        let steps: [(bool, u32, u32, u8); 4] = [
            (true, 1000, 0, 0b10),        // SYN
            (false, 5000, 1001, 0b10010), // SYN-ACK
            (true, 1001, 5001, 0b10000),  // ACK
            (true, 1001, 5001, 0b10100),  // RST-ACK
        ];
        for (fwd, seq, ack, flags) in steps {
            let (src, dst, sm, dm, sp, dp) = if fwd {
                (c, s, ma, mb, port, 80)
            } else {
                (s, c, mb, ma, 80, port)
            };
            let mut b = PacketBuilder::ethernet2(sm, dm)
                .ipv4(src, dst, 64)
                .tcp(sp, dp, seq, 1024);
            if flags & 0b10 != 0 {
                b = b.syn();
            }
            if flags & 0b10000 != 0 {
                b = b.ack(ack);
            }
            if flags & 0b100 != 0 {
                b = b.rst();
            }
            let mut buf = Vec::new();
            b.write(&mut buf, &[]).unwrap();
            w.write_packet(&PcapPacket::new(t, buf.len() as u32, &buf))
                .unwrap();
        }
    }
}

/// `--ndjson - | head`: a closed stdout ends the run quietly with exit 0, as for tables
/// (several MB of lines, so the pipe closes while lines are being serialised).
#[test]
fn ndjson_to_a_closed_pipe_ends_quietly() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("many.pcap");
    many_connections(&f, 4000);
    for _ in 0..3 {
        let mut child = Command::new(BIN)
            .arg("read")
            .arg(&f)
            .args(["--ndjson", "-", "--linger", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut first = [0u8; 10];
        child
            .stdout
            .take()
            .expect("stdout")
            .read_exact(&mut first)
            .expect("some output");
        // stdout is dropped (closed) here, long before the run is done.
        let out = child.wait_with_output().expect("wait");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(first.starts_with(b"{\"type\":"));
    }
}
