//! Agreement with Zeek's own conn.log baselines over the shared corpus
//! (../shared/corpus/ref/*.zeek.*): for every trace Zeek read whole without a packet
//! filter, netlens's connections are matched to Zeek's rows by 5-tuple (and start order
//! among equal tuples) and compared on `conn_state` and `history`.
//!
//! The baselines used are listed in [`BASELINES`] with the Zeek command behind each
//! (from ref/<trace>.zeek-tests.tsv); those left out are in [`EXCLUDED`] with the
//! reason. The table is written to target/zeek-agreement.txt and printed; the test
//! asserts the shares stated in [`MIN_STATE`] and [`MIN_HISTORY`]. Skipped with a printed
//! note where the corpus is absent.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use netlens::report::conns::ConnEntry;
use netlens::report::Report;
use netlens::Config;

/// Shares of matched Zeek rows that must agree (the targets).
const MIN_STATE: f64 = 0.95;
const MIN_HISTORY: f64 = 0.90;

/// How a baseline file is laid out.
#[derive(Clone, Copy)]
enum Layout {
    /// A conn.log (`#fields` header) or a `zeek-cut -m` / `btest-diff-cut -m` cut of one
    /// (a header line of column names).
    Log,
    /// `print c$history, c$conn$conn_state;` from connection_state_remove, several traces
    /// appended: the line for this trace (0-based).
    PrintLine(usize),
    /// Headerless rows starting with orig_h, orig_p, resp_h, resp_p, proto: the set of
    /// connections and their orientation only.
    Tuple,
}

/// (trace, baseline suffix after "<trace>.", layout, the Zeek command).
const BASELINES: &[(&str, &str, Layout, &str)] = &[
    (
        "zeek__wikipedia.pcap",
        "zeek.opt.basic.conn.log",
        Layout::Log,
        "zeek -r wikipedia.pcap",
    ),
    (
        "zeek__q-in-q.pcap",
        "zeek.core.q-in-q.conn.log",
        Layout::Log,
        "zeek -b -r q-in-q.pcap base/protocols/conn",
    ),
    (
        "zeek__tcp_http-on-irc-port-missing-syn.pcapng",
        "zeek.core.tcp.flip-without-syn.conn.log",
        Layout::Log,
        "zeek -r tcp/http-on-irc-port-missing-syn.pcapng",
    ),
    (
        "zeek__tcp_miss_end_data.pcap",
        "zeek.core.tcp.miss-end-data.conn.log",
        Layout::Log,
        "zeek -b -r tcp/miss_end_data.pcap (report_gaps_for_partial=T)",
    ),
    (
        "zeek__tcp_retransmit-fast009.pcap",
        "zeek.core.tcp.rxmit-history.conn-1.log",
        Layout::Log,
        "zeek -C -r tcp/retransmit-fast009.pcap",
    ),
    (
        "zeek__dns_dns-corrupt.pcap",
        "zeek.core.udp-corrupt.conn.log",
        Layout::Log,
        "zeek -r dns/dns-corrupt.pcap (checksums verified)",
    ),
    (
        "zeek__ldap_gap-data-missing.pcapng",
        "zeek.scripts.base.protocols.ldap.gap.conn.log",
        Layout::Log,
        "zeek -r ldap/gap-data-missing.pcapng",
    ),
    (
        "zeek__tcp_ctu-64702-888.pcap",
        "zeek.core.conn-size-flip.conn.log.ctu",
        Layout::Log,
        "zeek -C -b -r tcp/ctu-64702-888.pcap",
    ),
    (
        "zeek__tcp_handshake-reorder.pcap",
        "zeek.scripts.policy.protocols.conn.community-id-logging-flipped.conn.log.cut",
        Layout::Tuple,
        "zeek -b -r tcp/handshake-reorder.pcap (tuple only)",
    ),
    (
        "zeek__tcp_single-rst.pcap",
        "zeek.scripts.base.protocols.conn.conn_state-RST-behavior.out",
        Layout::PrintLine(0),
        "zeek -b -C -r tcp/single-rst.pcap",
    ),
    (
        "zeek__tcp_syn-then-rst.pcap",
        "zeek.scripts.base.protocols.conn.conn_state-RST-behavior.out",
        Layout::PrintLine(1),
        "zeek -b -C -r tcp/syn-then-rst.pcap",
    ),
    (
        "zeek__tcp_syn-then-ack-then-rst.pcap",
        "zeek.scripts.base.protocols.conn.conn_state-RST-behavior.out",
        Layout::PrintLine(2),
        "zeek -b -C -r tcp/syn-then-ack-then-rst.pcap",
    ),
];

/// Zeek connection baselines in the corpus that are not used, and why.
const EXCLUDED: &[(&str, &str)] = &[
    (
        "zeek__wikipedia.pcap.zeek.core.pcap.dynamic-filter.conn.log",
        "the test script installs packet filters while reading",
    ),
    (
        "zeek__wikipedia.pcap.zeek.core.pcap.read-trace-with-filter.conn.log",
        "read with -f \"port 50000\"",
    ),
    (
        "zeek__wikipedia.pcap.zeek.core.tcp.rxmit-history.conn-2.log",
        "same trace and rows as opt.basic (counted once)",
    ),
    (
        "zeek__q-in-q.pcap.zeek.scripts.policy.protocols.conn.vlan-logging.conn.log",
        "same trace and rows as core.q-in-q (counted once)",
    ),
    (
        "zeek__tcp_ctu-64702-888.pcap.zeek.core.conn-size-flip.conn.log.one-sided",
        "baseline of another trace (one-sided-2745.pcap, not in the corpus)",
    ),
    (
        "zeek__http-qinq-0.pcap.zeek.scripts.base.protocols.vlan.vlan-0-qinq.conn.log.cut",
        "no conn_state or history column",
    ),
    (
        "zeek__http-vlan-0.pcap.zeek.scripts.base.protocols.vlan.vlan-0.conn.log.cut",
        "no conn_state or history column",
    ),
    (
        "zeek__tcp_syn.pcap.zeek.core.conn-generic-packet-threshold.out",
        "no conn_state or history",
    ),
];

fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("NETLENS_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
    dir.join("captures").is_dir().then_some(dir)
}

/// One Zeek row: whatever of the tuple it has, conn_state and history when present.
#[derive(Debug, Default, Clone)]
struct ZeekRow {
    orig_h: Option<String>,
    orig_p: Option<String>,
    resp_h: Option<String>,
    resp_p: Option<String>,
    proto: Option<String>,
    conn_state: Option<String>,
    history: Option<String>,
}

fn parse_log(text: &str) -> Vec<ZeekRow> {
    let mut cols: Vec<String> = Vec::new();
    let mut rows = Vec::new();
    for line in text.lines() {
        if line.starts_with("###") || line.is_empty() {
            continue;
        }
        if let Some(f) = line.strip_prefix("#fields\t") {
            cols = f.split('\t').map(str::to_string).collect();
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let vals: Vec<&str> = line.split('\t').collect();
        if cols.is_empty() {
            // A cut: the first line names the columns.
            cols = vals.iter().map(|s| s.to_string()).collect();
            continue;
        }
        let get = |name: &str| {
            cols.iter()
                .position(|c| c == name)
                .and_then(|i| vals.get(i))
                .map(|v| v.to_string())
        };
        let hist = get("history").map(|h| {
            if h == "-" || h == "(empty)" {
                String::new()
            } else {
                h
            }
        });
        rows.push(ZeekRow {
            orig_h: get("id.orig_h"),
            orig_p: get("id.orig_p"),
            resp_h: get("id.resp_h"),
            resp_p: get("id.resp_p"),
            proto: get("proto"),
            conn_state: get("conn_state"),
            history: hist,
        });
    }
    rows
}

fn split_endpoint(s: &str) -> (String, String) {
    let (h, p) = s.rsplit_once(':').unwrap_or((s, ""));
    (
        h.trim_start_matches('[').trim_end_matches(']').to_string(),
        p.to_string(),
    )
}

/// Does netlens entry `e` have the tuple of row `z` (as far as the row gives it), in
/// the same (`flipped == false`) or the reversed orientation?
fn tuple_matches(z: &ZeekRow, e: &ConnEntry, flipped: bool) -> bool {
    if z.proto.as_deref().is_some_and(|p| p != e.proto) {
        return false;
    }
    let (mut oh, mut op) = split_endpoint(&e.orig);
    let (mut rh, mut rp) = split_endpoint(&e.resp);
    if flipped {
        std::mem::swap(&mut oh, &mut rh);
        std::mem::swap(&mut op, &mut rp);
    }
    let eq = |a: &Option<String>, b: &str| a.as_deref().is_none_or(|a| a == b);
    eq(&z.orig_h, &oh) && eq(&z.orig_p, &op) && eq(&z.resp_h, &rh) && eq(&z.resp_p, &rp)
}

fn run_netlens(capture: &Path, json: &Path) -> Report {
    let mut config = Config::for_files(vec![capture.to_path_buf()]);
    config.views.conns = true;
    config.json = Some(json.to_path_buf());
    config.quiet = true;
    let mut out = Vec::new();
    let mut err = Vec::new();
    netlens::run(&config, &mut out, &mut err).expect("netlens run");
    let text = std::fs::read_to_string(json).expect("json written");
    serde_json::from_str(&text).expect("JSON report deserialises with deny_unknown_fields")
}

#[test]
fn zeek_conn_state_and_history_agreement() {
    let Some(dir) = corpus_dir() else {
        println!("note: ../shared/corpus not found; Zeek agreement test skipped");
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut report = String::new();
    let mut diffs = String::new();
    let (mut n_state, mut ok_state, mut n_hist, mut ok_hist) = (0u32, 0u32, 0u32, 0u32);
    let (mut zeek_rows, mut matched_rows, mut flipped_rows, mut extra) = (0u32, 0u32, 0u32, 0u32);
    writeln!(
        report,
        "{:<48} {:>5} {:>7} {:>11} {:>9}  command",
        "trace", "zeek", "matched", "conn_state", "history"
    )
    .unwrap();
    for (i, (trace, suffix, layout, cmd)) in BASELINES.iter().enumerate() {
        let capture = dir.join("captures").join(trace);
        let base = dir.join("ref").join(format!("{trace}.{suffix}"));
        if !capture.is_file() || !base.is_file() {
            writeln!(report, "{trace:<48} (missing in this corpus copy)").unwrap();
            continue;
        }
        let text = std::fs::read_to_string(&base).expect("baseline readable");
        let rows: Vec<ZeekRow> = match layout {
            Layout::Log => parse_log(&text),
            Layout::PrintLine(k) => text
                .lines()
                .filter(|l| !l.starts_with('#'))
                .nth(*k)
                .map(|l| {
                    let (h, s) = l.split_once(", ").unwrap_or((l, ""));
                    vec![ZeekRow {
                        proto: Some("tcp".into()),
                        history: Some(h.to_string()),
                        conn_state: Some(s.to_string()),
                        ..ZeekRow::default()
                    }]
                })
                .unwrap_or_default(),
            Layout::Tuple => text
                .lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
                .map(|l| {
                    let v: Vec<&str> = l.split('\t').collect();
                    let at = |i: usize| v.get(i).map(|s| s.to_string());
                    ZeekRow {
                        orig_h: at(0),
                        orig_p: at(1),
                        resp_h: at(2),
                        resp_p: at(3),
                        proto: at(4),
                        ..ZeekRow::default()
                    }
                })
                .collect(),
        };
        // netlens tracks TCP and UDP only; Zeek's ICMP rows are not compared.
        let rows: Vec<ZeekRow> = rows
            .into_iter()
            .filter(|r| r.proto.as_deref().is_none_or(|p| p == "tcp" || p == "udp"))
            .collect();
        let r = run_netlens(&capture, &tmp.path().join(format!("{i}.json")));
        let conns = r.connections.unwrap_or_default();
        let mut used = vec![false; conns.len()];
        let (mut t_match, mut t_state, mut t_hist, mut t_state_n, mut t_hist_n) = (0, 0, 0, 0, 0);
        for z in &rows {
            zeek_rows += 1;
            let mut found = None;
            for flipped in [false, true] {
                found =
                    (0..conns.len()).find(|&k| !used[k] && tuple_matches(z, &conns[k], flipped));
                if found.is_some() {
                    if flipped {
                        flipped_rows += 1;
                    }
                    break;
                }
            }
            let Some(k) = found else {
                writeln!(
                    diffs,
                    "{trace}: Zeek row {:?}:{:?} -> {:?}:{:?} {:?} has no netlens connection",
                    z.orig_h, z.orig_p, z.resp_h, z.resp_p, z.proto
                )
                .unwrap();
                if z.conn_state.is_some() {
                    n_state += 1;
                }
                if z.history.is_some() {
                    n_hist += 1;
                }
                continue;
            };
            used[k] = true;
            t_match += 1;
            matched_rows += 1;
            let e = &conns[k];
            if let Some(s) = &z.conn_state {
                n_state += 1;
                t_state_n += 1;
                if *s == e.conn_state {
                    ok_state += 1;
                    t_state += 1;
                }
            }
            if let Some(h) = &z.history {
                n_hist += 1;
                t_hist_n += 1;
                if *h == e.history {
                    ok_hist += 1;
                    t_hist += 1;
                }
            }
            let state_differs = z.conn_state.as_ref().is_some_and(|s| *s != e.conn_state);
            let hist_differs = z.history.as_ref().is_some_and(|h| *h != e.history);
            if state_differs || hist_differs {
                writeln!(
                    diffs,
                    "{trace}: #{} {} {} -> {}: zeek {} {:?}, netlens {} {:?}",
                    e.id,
                    e.proto,
                    e.orig,
                    e.resp,
                    z.conn_state.as_deref().unwrap_or("-"),
                    z.history.as_deref().unwrap_or("-"),
                    e.conn_state,
                    e.history
                )
                .unwrap();
            }
        }
        // The set of connections: netlens entries Zeek did not log (full logs only).
        if matches!(layout, Layout::Log | Layout::Tuple)
            && rows
                .iter()
                .all(|z| z.orig_h.is_some() && z.resp_p.is_some())
        {
            for (k, e) in conns.iter().enumerate() {
                if !used[k] {
                    extra += 1;
                    writeln!(
                        diffs,
                        "{trace}: netlens #{} {} {} -> {} ({} {:?}) is not in Zeek's log",
                        e.id, e.proto, e.orig, e.resp, e.conn_state, e.history
                    )
                    .unwrap();
                }
            }
        }
        writeln!(
            report,
            "{trace:<48} {:>5} {:>7} {:>5}/{:<5} {:>4}/{:<4}  {cmd}",
            rows.len(),
            t_match,
            t_state,
            t_state_n,
            t_hist,
            t_hist_n
        )
        .unwrap();
    }
    let share = |a: u32, n: u32| {
        if n == 0 {
            1.0
        } else {
            f64::from(a) / f64::from(n)
        }
    };
    let (s_state, s_hist) = (share(ok_state, n_state), share(ok_hist, n_hist));
    writeln!(
        report,
        "\nZeek rows (tcp/udp): {zeek_rows}; matched to a netlens connection: {matched_rows} \
         ({flipped_rows} with orig/resp reversed); netlens connections not in Zeek's full logs: {extra}"
    )
    .unwrap();
    writeln!(
        report,
        "conn_state equal: {ok_state}/{n_state} = {:.1}%   history equal: {ok_hist}/{n_hist} = {:.1}%",
        s_state * 100.0,
        s_hist * 100.0
    )
    .unwrap();
    writeln!(
        report,
        "\nDifferences:\n{}",
        if diffs.is_empty() { "(none)\n" } else { &diffs }
    )
    .unwrap();
    writeln!(report, "Baselines not used:").unwrap();
    for (f, why) in EXCLUDED {
        writeln!(report, "  {f}: {why}").unwrap();
    }
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/zeek-agreement.txt");
    let _ = std::fs::create_dir_all(out.parent().unwrap());
    std::fs::write(&out, &report).expect("write target/zeek-agreement.txt");
    println!("{report}");
    assert!(n_state > 0 && n_hist > 0, "no Zeek rows compared");
    assert_eq!(
        matched_rows, zeek_rows,
        "every Zeek connection has a netlens entry"
    );
    assert_eq!(flipped_rows, 0, "netlens's orig/resp are Zeek's");
    assert_eq!(extra, 0, "netlens has no connection Zeek did not log");
    assert!(
        s_state >= MIN_STATE,
        "conn_state agreement {:.1}% below {:.0}%",
        s_state * 100.0,
        MIN_STATE * 100.0
    );
    assert!(
        s_hist >= MIN_HISTORY,
        "history agreement {:.1}% below {:.0}%",
        s_hist * 100.0,
        MIN_HISTORY * 100.0
    );
}
