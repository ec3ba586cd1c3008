//! Real traffic: the framing fixtures recorded by fixtures/record.sh from the Python programs
//! in fixtures/programs/. Each program logged every application message it sent
//! (fixtures/NAME.sends.json, merged from both sides): that log is the ground truth. For
//! each fixture, netlens's messages per direction must equal the logged sends (count and
//! lengths, in order), and every split/coalesced fact must follow from the segment list.
//! Last, over every capture: packing idle UDP flows (memory only) changes no report.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use netlens::analyze::framing::FramingConfig;
use netlens::analyze::streams::StreamOptions;
use netlens::report::streams::StreamEntry;
use netlens::Config;

/// The logged sends of one side, in order.
fn sends(name: &str, side: &str) -> Vec<u64> {
    let text = std::fs::read_to_string(common::fixture(&format!("{name}.sends.json"))).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .filter(|e| e["side"] == side)
        .map(|e| e["len"].as_u64().unwrap())
        .collect()
}

fn opts(framing: &[&str]) -> StreamOptions {
    StreamOptions {
        framing: FramingConfig::parse(framing).unwrap(),
        ..StreamOptions::default()
    }
}

/// Re-derives every split/coalesced fact of `s` from its segment and message ranges.
fn check_consistent(s: &StreamEntry) {
    assert!(s.lists_cut.is_none(), "lists cut");
    // Messages tile the stream from 0.
    let mut at = 0;
    for (i, m) in s.messages.iter().enumerate() {
        assert_eq!(m.index, i as u64);
        assert_eq!(m.offset, at, "message {i} does not follow the previous one");
        at += m.len;
    }
    // Segments (first transmissions, no overlap in these captures) tile the stream too.
    let mut segs = s.segments.clone();
    segs.sort_by_key(|g| g.offset);
    let mut at = 0;
    for g in &segs {
        assert_eq!(
            g.offset, at,
            "segment frame {} leaves a hole or overlaps",
            g.frame
        );
        at += g.len;
    }
    assert_eq!(at, s.bytes);
    let mut coalescing = 0;
    let mut max_per_seg = 0;
    for g in &s.segments {
        let carried: Vec<u64> = s
            .messages
            .iter()
            .filter(|m| m.offset < g.offset + g.len && g.offset < m.offset + m.len)
            .map(|m| m.index)
            .collect();
        assert_eq!(g.messages, carried, "frame {}", g.frame);
        for (i, part) in g.parts.iter().enumerate() {
            let m = &s.messages[g.messages[i] as usize];
            let head = m.offset >= g.offset;
            let tail = m.offset + m.len <= g.offset + g.len;
            let want = match (head, tail) {
                (true, true) => "whole",
                (true, false) => "head",
                (false, true) => "tail",
                (false, false) => "middle",
            };
            assert_eq!(part.name(), want, "frame {} message {}", g.frame, m.index);
        }
        assert_eq!(g.coalescing, carried.len() >= 2);
        coalescing += u64::from(carried.len() >= 2);
        max_per_seg = max_per_seg.max(carried.len() as u64);
    }
    let (mut split, mut coalesced, mut max_segs) = (0, 0, 0);
    for m in &s.messages {
        // Frames carrying its bytes, in stream order.
        let mut carrying: Vec<_> = s
            .segments
            .iter()
            .filter(|g| m.offset < g.offset + g.len && g.offset < m.offset + m.len)
            .collect();
        carrying.sort_by_key(|g| g.offset);
        let frames: Vec<u64> = carrying.iter().map(|g| g.frame).collect();
        // The frame list stops at 64 entries; segments_total then counts them all.
        let listed = frames.len().min(netlens::analyze::messages::MAX_REFS);
        assert_eq!(m.segments, frames[..listed], "message {}", m.index);
        let total = if m.segments_total > 0 {
            m.segments_total
        } else {
            m.segments.len() as u64
        };
        assert_eq!(total, frames.len() as u64, "message {}", m.index);
        assert_eq!(m.split, frames.len() >= 2, "message {}", m.index);
        let shares = carrying.iter().any(|g| g.messages.len() >= 2);
        assert_eq!(m.coalesced, shares, "message {}", m.index);
        split += u64::from(m.split);
        coalesced += u64::from(m.coalesced);
        max_segs = max_segs.max(frames.len() as u64);
    }
    let st = s.stats;
    assert_eq!(st.messages, s.messages.len() as u64);
    assert_eq!(st.split_messages, split);
    assert_eq!(st.coalesced_messages, coalesced);
    assert_eq!(st.coalescing_segments, coalescing);
    assert_eq!(st.max_messages_per_segment, max_per_seg);
    assert_eq!(st.max_segments_per_message, max_segs);
    assert_eq!(st.segments, s.segments.len() as u64);
}

/// The fixture's messages per side equal its send log; returns the two streams.
fn check_fixture(name: &str, framing: &[&str]) -> (StreamEntry, StreamEntry) {
    let run = common::run(&common::fixture(&format!("{name}.pcap")), opts(framing));
    let conns: BTreeSet<u64> = run.streams.iter().map(|s| s.conn).collect();
    assert_eq!(conns.len(), 1, "{name}: one connection");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join(format!("streams-view-{name}.txt")), &run.view).unwrap();
    let c = run.stream(1, "orig").clone();
    let s = run.stream(1, "resp").clone();
    for (entry, side) in [(&c, "client"), (&s, "server")] {
        assert!(
            entry.framing_error.is_none(),
            "{name} {side}: {:?}",
            entry.framing_error
        );
        assert_eq!(entry.gaps_total.count, 0, "{name} {side}: gaps");
        assert_eq!(entry.stats.incomplete_messages, 0, "{name} {side}");
        let got: Vec<u64> = entry.messages.iter().map(|m| m.len).collect();
        assert_eq!(
            got,
            sends(name, side),
            "{name}: {side} messages vs its send log"
        );
        check_consistent(entry);
    }
    (c, s)
}

fn show(tag: &str, s: &StreamEntry) {
    eprintln!(
        "{tag} {}: {} bytes, {} segments, stats {:?}, retrans {}",
        s.dir,
        s.bytes,
        s.segments.len(),
        s.stats,
        s.reassembly.retransmissions
    );
}

#[test]
fn len32le_nagle_coalesces_and_splits() {
    let (c, s) = check_fixture("frame_len32le_nagle", &["45001=len32le"]);
    show("nagle", &c);
    show("nagle", &s);
}

#[test]
fn len32le_nodelay() {
    let (c, s) = check_fixture("frame_len32le_nodelay", &["45002=len32le"]);
    show("nodelay", &c);
    show("nodelay", &s);
}

#[test]
fn json_header_file_transfer() {
    let (c, s) = check_fixture("frame_json_header", &["45003=json-header"]);
    show("json", &c);
    show("json", &s);
}

#[test]
fn http_keep_alive() {
    let (c, s) = check_fixture("frame_http", &["8080=http"]);
    show("http", &c);
    show("http", &s);
}

#[test]
fn line_chat() {
    let (c, s) = check_fixture("frame_lines", &["45005=line"]);
    show("lines", &c);
    show("lines", &s);
}

/// frame_lines.py's PLAN, with TCP_NODELAY on the client (each send() one segment):
/// 0 | 1 | 2+3+4 | 5 | 6 in two sends | 7+8 | 9 in two sends. So the client's 10 lines ride
/// in 9 segments; lines 6 and 9 are split; 2, 3, 4, 7 and 8 are coalesced, in 2
/// coalescing segments, at most 3 lines in one.
#[test]
fn line_chat_matches_the_programs_send_plan() {
    let (c, _) = check_fixture("frame_lines", &["45005=line"]);
    let st = c.stats;
    assert_eq!(st.segments, 9);
    let split: Vec<u64> = c
        .messages
        .iter()
        .filter(|m| m.split)
        .map(|m| m.index)
        .collect();
    assert_eq!(split, vec![6, 9]);
    let coalesced: Vec<u64> = c
        .messages
        .iter()
        .filter(|m| m.coalesced)
        .map(|m| m.index)
        .collect();
    assert_eq!(coalesced, vec![2, 3, 4, 7, 8]);
    assert_eq!(st.coalescing_segments, 2);
    assert_eq!(st.max_messages_per_segment, 3);
    assert_eq!(st.max_segments_per_message, 2);
}

/// The 100000-byte reply cannot fit one segment: split across many, in both recordings.
#[test]
fn large_reply_is_split() {
    for (name, port) in [
        ("frame_len32le_nagle", 45001),
        ("frame_len32le_nodelay", 45002),
    ] {
        let rule = format!("{port}=len32le");
        let (_, s) = check_fixture(name, &[rule.as_str()]);
        let big = &s.messages[1];
        assert_eq!(big.len, 100_004);
        assert!(big.split);
        let n = big.segments_total.max(big.segments.len() as u64);
        // At most 1448 payload bytes per segment on this veth (MSS 1460 minus timestamps).
        assert!(n >= 100_004 / 1448, "{name}: {n} segments");
    }
}

/// The json-header fixture's two files: names, sizes and MD5 checked against the
/// program's own data (hello.txt 20000 bytes, data.bin 13107 bytes).
#[test]
fn json_header_fields_and_md5() {
    let (c, s) = check_fixture("frame_json_header", &["45003=json-header"]);
    let want = [("hello.txt", "20000"), ("data.bin", "13107")];
    for (m, (name, size)) in c.messages.iter().zip(want) {
        let info = m.info.as_ref().expect("header info");
        let h = info.header.as_ref().expect("header fields");
        assert_eq!(h["file_name"], name);
        assert_eq!(h["file_size"], size);
        assert_eq!(info.md5_ok, Some(true), "{name}");
        assert_eq!(info.md5.as_deref(), Some(h["MD5"].as_str()));
    }
    // The replies have no file_size: header-only messages, no MD5 to check.
    for m in &s.messages {
        let info = m.info.as_ref().unwrap();
        assert_eq!(info.header.as_ref().unwrap()["status"], "ok");
        assert_eq!(info.md5_ok, None);
    }
}

/// Without --framing, `auto` recognises HTTP and text lines by their first bytes (and
/// never guesses a length prefix).
#[test]
fn auto_picks_self_identifying_framings() {
    let (c, s) = check_fixture("frame_http", &[]);
    for e in [&c, &s] {
        assert_eq!(e.framing, "http");
        assert!(
            e.framing_reason.starts_with("auto:"),
            "{}",
            e.framing_reason
        );
    }
    assert!(c.messages[0]
        .info
        .as_ref()
        .unwrap()
        .summary
        .as_deref()
        .unwrap()
        .starts_with("GET /hello HTTP/1.1"));
    let (c, _) = check_fixture("frame_lines", &[]);
    assert_eq!(c.framing, "line");
    let run = common::run(&common::fixture("frame_len32le_nagle.pcap"), opts(&[]));
    let c = run.stream(1, "orig");
    assert_eq!(c.framing, "none");
    assert_eq!(c.stats.messages, 0);
    assert_eq!(c.unframed_bytes, c.bytes);
}

/// A wrong framing breaks at the first message and says where.
#[test]
fn wrong_framing_reports_where_it_broke() {
    let run = common::run(
        &common::fixture("frame_http.pcap"),
        opts(&["8080=json-header"]),
    );
    let c = run.stream(1, "orig");
    let e = c
        .framing_error
        .as_ref()
        .expect("GET is not a JSON header length");
    assert_eq!(e.offset, 0);
    assert_eq!(c.stats.messages, 0);
    assert_eq!(c.unframed_bytes, c.bytes);
}

/// UDP: one entry per direction, one datagram per frame, as tshark counts them.
#[test]
fn udp_datagrams_are_messages() {
    let path = common::fixture("udp_exchange.pcap");
    let run = common::run(&path, opts(&[]));
    let Ok(out) = std::process::Command::new("tshark")
        .arg("-r")
        .arg(&path)
        .args([
            "-Y",
            "udp",
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "udp.length",
        ])
        .output()
    else {
        eprintln!("tshark not installed: skipped");
        return;
    };
    let want: Vec<(u64, u64)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some((f.next()?.parse().ok()?, f.next()?.parse::<u64>().ok()? - 8))
        })
        .collect();
    let mut got: Vec<(u64, u64)> = run
        .udp
        .iter()
        .flat_map(|u| u.datagrams.iter().map(|d| (d.frame, d.len)))
        .collect();
    got.sort();
    assert!(!want.is_empty());
    assert_eq!(got, want);
    for u in &run.udp {
        assert_eq!(u.datagrams_total, u.datagrams.len() as u64);
    }
}

/// `--extract`: the files hold exactly the bytes tshark-verified reassembly delivered, and
/// with `--extract-messages` one file per message, each as long as its logged send.
#[test]
fn extract_writes_streams_and_messages() {
    use netlens::analyze::streams::StreamAnalyzer;
    use netlens::report::extract::Extractor;
    let dir = tempfile::tempdir().unwrap();
    let path = common::fixture("frame_json_header.pcap");
    let reference = common::run(&path, opts(&["45003=json-header"]));
    let o = StreamOptions {
        extract: Some(dir.path().to_path_buf()),
        ..opts(&["45003=json-header"])
    };
    let ex = Extractor::new(dir.path(), true, false).unwrap();
    let mut a = StreamAnalyzer::new(o, Some(Box::new(ex))).unwrap();
    if let Err(e) = common::drive(&path, &mut a) {
        panic!("extract failed: {e}");
    }
    let mut files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    files.sort();
    let orig = "c000001-10.77.0.1.41003-10.77.0.2.45003.orig.bin";
    let resp = "c000001-10.77.0.2.45003-10.77.0.1.41003.resp.bin";
    assert!(
        files.contains(&orig.to_string()) && files.contains(&resp.to_string()),
        "{files:?}"
    );
    use netlens::analyze::Dir;
    assert_eq!(
        std::fs::read(dir.path().join(orig)).unwrap(),
        reference.bytes.data[&(1, Dir::Orig)]
    );
    assert_eq!(
        std::fs::read(dir.path().join(resp)).unwrap(),
        reference.bytes.data[&(1, Dir::Resp)]
    );
    for (side, d) in [("client", "orig"), ("server", "resp")] {
        let lens: Vec<u64> = files
            .iter()
            .filter(|f| f.contains(&format!(".{d}.m")))
            .map(|f| std::fs::metadata(dir.path().join(f)).unwrap().len())
            .collect();
        assert_eq!(lens, sends("frame_json_header", side), "{d} message files");
    }
    // A second run into the same directory refuses to overwrite.
    let ex = Extractor::new(dir.path(), false, false).unwrap();
    let mut a = StreamAnalyzer::new(opts(&[]), Some(Box::new(ex))).unwrap();
    let Err(err) = common::drive(&path, &mut a) else {
        panic!("existing files must be kept");
    };
    assert!(err.to_string().contains("--force"), "{err}");
}

/// The JSON document with spliced `streams`/`udp_flows` reads back into `Report` with
/// `deny_unknown_fields`: what we write is what docs/report.md documents.
#[test]
fn json_sections_round_trip() {
    use netlens::analyze::streams::StreamAnalyzer;
    for name in [
        "frame_len32le_nagle.pcap",
        "udp_exchange.pcap",
        "frame_json_header.pcap",
    ] {
        let mut a =
            StreamAnalyzer::new(opts(&["45001=len32le", "45003=json-header"]), None).unwrap();
        let o = common::drive(&common::fixture(name), &mut a).unwrap();
        let spills = vec![
            ("streams", o.streams.into_spill().unwrap()),
            ("udp_flows", o.udp_flows.into_spill().unwrap()),
        ];
        let mut buf = Vec::new();
        netlens::report::json::write(&mut buf, &netlens::report::Report::default(), spills)
            .unwrap();
        let back: netlens::report::Report = serde_json::from_slice(&buf).unwrap();
        let direct = common::run(
            &common::fixture(name),
            opts(&["45001=len32le", "45003=json-header"]),
        );
        assert_eq!(back.streams.unwrap(), direct.streams, "{name}");
        assert_eq!(back.udp_flows.unwrap(), direct.udp, "{name}");
    }
}

/// Packing idle UDP flows in the stream analysis (`udp_generation`, memory only)
/// changes nothing either: with every flow packed once a datagram of another flow went by,
/// each report's `udp_flows` (and everything else in `--all --json`) is what it is with
/// packing off.
#[test]
fn packed_udp_flows_change_no_stream_result() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let run = |path: &Path, udp_generation: usize| -> Option<String> {
        let mut config = Config::for_files(vec![path.to_path_buf()]);
        config.views = netlens::config::Views::all();
        config.json = Some(json.clone());
        config.streams.udp_generation = udp_generation;
        let (mut out, mut err) = (Vec::new(), Vec::new());
        netlens::run(&config, &mut out, &mut err).ok()?;
        let mut r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        r.as_object_mut().unwrap().remove("generated_at");
        Some(r.to_string())
    };
    let mut udp_flows = 0;
    for path in &common::all_captures() {
        let never = run(path, 0);
        let packed = run(path, 1);
        assert_eq!(never, packed, "{}", path.display());
        if let Some(text) = never {
            let r: serde_json::Value = serde_json::from_str(&text).unwrap();
            udp_flows += r["udp_flows"].as_array().map_or(0, |a| a.len());
        }
    }
    assert!(udp_flows >= 100, "{udp_flows} UDP flow directions");
}
