//! Real traffic: the framing fixtures recorded by fixtures/record.sh from the Python programs
//! in fixtures/programs/. Each program logged every application message it sent
//! (fixtures/NAME.sends.json, merged from both sides): that log is the ground truth. For
//! each fixture, netlens's messages per direction must equal the logged sends (count and
//! lengths, in order), and every split/coalesced fact must follow from the segment list.

mod common;

use std::collections::BTreeSet;

use netlens::analyze::framing::FramingConfig;
use netlens::analyze::streams::StreamOptions;
use netlens::report::streams::StreamEntry;

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
            assert_eq!(part, want, "frame {} message {}", g.frame, m.index);
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
