//! Both writers, byte for byte: every hand-written entry against `serde_json::to_vec` on
//! entries with every optional part present and absent, floats at their edges, and strings
//! needing every escape.

use std::collections::BTreeMap;

use super::*;
use crate::report::conns::{
    AnomaliesEntry, ConnEntry, HandshakeEntry, MismatchEntry, RttEntry, StepEntry, TcpStateEntry,
    TeardownEntry,
};
use crate::report::streams::{
    ConflictEntry, FinEntry, FramingError, GapEntry, GapTotals, ListsCut, MessageInfo, MessagePart,
    ReassemblyStats, StreamStats,
};
use crate::report::TcpOptionsEntry;

fn same<T: WriteJson>(v: &T) {
    let want = serde_json::to_vec(v).unwrap();
    let mut got = Vec::new();
    to_vec(v, &mut got).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want)
    );
}

/// Strings with everything `serde_json` escapes, and what it does not.
const NASTY: &str = "a\"b\\c\u{0}\u{1f}\u{8}\t\n\u{c}\r\u{7f}/é€😀 <>&'";

fn segment(i: u64) -> SegmentEntry {
    SegmentEntry {
        frame: i,
        offset: i * 1000,
        len: u64::MAX - i,
        messages: (0..i % 3).collect(),
        parts: [
            MessagePart::Whole,
            MessagePart::Head,
            MessagePart::Middle,
            MessagePart::Tail,
        ][..(i % 5) as usize]
            .to_vec(),
        messages_total: if i.is_multiple_of(2) { 0 } else { i },
        coalescing: i.is_multiple_of(3),
        oversized: i.is_multiple_of(4),
        new_bytes: i.is_multiple_of(5).then_some(i),
        captured: i.is_multiple_of(6).then_some(0),
        out_of_order: i.is_multiple_of(7),
    }
}

fn message(i: u64) -> MessageEntry {
    let mut header = BTreeMap::new();
    header.insert("k\n".to_string(), NASTY.to_string());
    MessageEntry {
        index: i,
        offset: i,
        len: 7,
        segments: (0..i % 4).collect(),
        segments_total: i % 2,
        split: i.is_multiple_of(3),
        coalesced: i.is_multiple_of(5),
        complete: !i.is_multiple_of(4),
        gap_bytes: i % 3,
        info: i.is_multiple_of(2).then(|| MessageInfo {
            summary: Some(NASTY.into()),
            header: Some(header),
            header_len: Some(3),
            body: None,
            body_len: Some(0),
            md5: None,
            md5_ok: Some(false),
            md5_unverifiable: i.is_multiple_of(4),
        }),
    }
}

fn stream(i: u64) -> StreamEntry {
    let on = i.is_multiple_of(2);
    StreamEntry {
        conn: i,
        dir: "orig".into(),
        orig: "10.0.0.1:80".into(),
        resp: "[::1]:443".into(),
        bytes: i,
        stream_len: i + 1,
        first_frame: 1,
        last_frame: u64::MAX,
        isn: on.then_some(u32::MAX),
        base_seq: 7,
        midstream: !on,
        syn_frame: on.then_some(3),
        fin: on.then_some(FinEntry {
            frame: 9,
            offset: 10,
        }),
        rst_frame: on.then_some(11),
        gaps: if on {
            vec![
                GapEntry {
                    offset: 1,
                    len: 2,
                    reason: "lost".into(),
                    after_frame: Some(4),
                },
                GapEntry {
                    offset: 5,
                    len: 6,
                    reason: NASTY.into(),
                    after_frame: None,
                },
            ]
        } else {
            Vec::new()
        },
        gaps_total: GapTotals { count: 2, bytes: 8 },
        framing: "len32le".into(),
        framing_reason: NASTY.into(),
        framing_error: on.then(|| FramingError {
            offset: 3,
            frame: None,
            reason: NASTY.into(),
        }),
        unframed_bytes: 12,
        mss: on.then_some(u16::MAX),
        mss_source: "syn".into(),
        oversized_segments: 13,
        segments: (0..if on { 50 } else { 0 }).map(segment).collect(),
        messages: (0..if on { 20 } else { 1 }).map(message).collect(),
        lists_cut: on.then_some(ListsCut {
            cap: 1,
            segments_total: 2,
            messages_total: 3,
        }),
        stats: StreamStats {
            messages: 1,
            split_messages: 2,
            coalesced_messages: 3,
            coalescing_segments: 4,
            max_messages_per_segment: 5,
            max_segments_per_message: 6,
            segments: 7,
            incomplete_messages: 8,
        },
        reassembly: ReassemblyStats {
            payload_segments: 1,
            buffered_peak: 2,
            gaps_from_cap: 3,
            ..Default::default()
        },
        conflicts: if on {
            vec![ConflictEntry {
                frame: 1,
                offset: 2,
                bytes: 3,
            }]
        } else {
            Vec::new()
        },
    }
}

#[test]
fn hand_written_json_is_serde_json_byte_for_byte() {
    for i in 0..60 {
        same(&segment(i));
        same(&message(i));
    }
    for i in 0..4 {
        same(&stream(i));
    }
    same(&StreamEntry::default());
    for i in 0..4u64 {
        same(&UdpFlowEntry {
            flow: i,
            orig: NASTY.into(),
            resp: "1.2.3.4:5".into(),
            dir: "resp".into(),
            datagrams: (0..i)
                .map(|k| DatagramEntry {
                    frame: k,
                    len: k * 3,
                    fragments: (0..k).collect(),
                })
                .collect(),
            datagrams_total: i,
            bytes: 1,
            fragmented: 2,
            max_len: 3,
        });
    }
    // Every control character and the characters around the escaped ones.
    let all: String = (0u32..0x100).filter_map(char::from_u32).collect();
    let mut got = Vec::new();
    write_str(&mut got, &all);
    assert_eq!(got, serde_json::to_vec(&all).unwrap());
    // One byte to escape (or none) at every place of strings around the widths the
    // escape check works in.
    for len in 0..70 {
        for at in 0..=len {
            for c in ['"', '\\', '\n', '\u{1f}', '\u{7f}', 'é', ' '] {
                let s: String = (0..len).map(|i| if i == at { c } else { 'a' }).collect();
                got.clear();
                write_str(&mut got, &s);
                assert_eq!(got, serde_json::to_vec(&s).unwrap(), "{s:?}");
            }
        }
    }
}

/// Floats `serde_json` writes in its own ways: exponents, the shortest round trip,
/// signed zero, subnormals, and `null` for what JSON cannot hold.
const FLOATS: [f64; 16] = [
    0.0,
    -0.0,
    1.0,
    0.1,
    -2.5,
    1e15,
    1e16,
    1.5e17,
    1e-7,
    123_456.789_012_345,
    1_764_113_062.793_805,
    f64::MAX,
    f64::MIN_POSITIVE / 4.0,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
];

fn float(i: u64) -> f64 {
    FLOATS[(i % FLOATS.len() as u64) as usize]
}

fn step(i: u64) -> StepEntry {
    StepEntry {
        frame: i,
        dir: if i.is_multiple_of(2) { "orig" } else { NASTY }.into(),
        t_ms: float(i),
        flags: "SA".into(),
        seq: u32::MAX - i as u32,
        ack: i as u32,
        rel_seq: -(i as i64),
        rel_ack: i64::MIN + i as i64,
        len: i as u32,
        what: "syn".into(),
        expected_ack: i.is_multiple_of(3).then_some(u32::MAX),
        ack_ok: (!i.is_multiple_of(5)).then_some(i.is_multiple_of(2)),
    }
}

fn options(i: u64) -> TcpOptionsEntry {
    // Bit k of i says whether field k is set: all 64 combinations.
    let on = |k: u32| i & (1 << k) != 0;
    TcpOptionsEntry {
        mss: on(0).then_some(u16::MAX),
        window_scale: on(1).then_some(14),
        sack_permitted: on(2),
        sack_blocks: if on(3) { 3 } else { 0 },
        tsval: on(4).then_some(u32::MAX),
        tsecr: on(5).then_some(0),
    }
}

fn conn(i: u64) -> ConnEntry {
    let on = |k: u32| i & (1 << k) != 0;
    ConnEntry {
        id: i,
        proto: if on(0) { "tcp" } else { "udp" }.into(),
        orig: "10.0.0.1:80".into(),
        resp: if on(1) { NASTY } else { "[::1]:443" }.into(),
        first_frame: 1,
        last_frame: u64::MAX,
        start: float(i),
        start_ns: if on(2) { i64::MIN } else { i64::MAX },
        duration_s: float(i + 7),
        conn_state: "SF".into(),
        history: if on(3) { "ShADadFf" } else { "" }.into(),
        orig_pkts: 1,
        resp_pkts: 2,
        orig_bytes: 3,
        resp_bytes: 4,
        missed_bytes: 5,
        orig_ip_bytes: 6,
        resp_ip_bytes: 7,
        orig_payload_bytes: 8,
        resp_payload_bytes: u64::MAX,
        orig_by: "server-port".into(),
        orig_guessed: on(1),
        finalized_by: NASTY.into(),
        vlan: on(4).then_some(u16::MAX),
        handshake: on(5).then(|| HandshakeEntry {
            outcome: "complete".into(),
            syn_frames: (0..i % 3).collect(),
            synack_frame: on(6).then_some(2),
            ack_frame: on(7).then_some(3),
            rst_frame: on(8).then_some(4),
            orig_isn: on(6).then_some(u32::MAX),
            resp_isn: on(7).then_some(0),
            syn_retransmissions: i,
            rtt_ms: RttEntry {
                syn_to_synack: on(8).then(|| float(i)),
                synack_to_ack: on(6).then(|| float(i + 3)),
            },
            synack_retransmissions: 1,
            acks_verified: on(7),
            mismatches: (0..i % 3)
                .map(|k| MismatchEntry {
                    frame: k,
                    field: NASTY.into(),
                    expected: u32::MAX,
                    got: 0,
                })
                .collect(),
            orig_options: on(8).then(|| options(i)),
            resp_options: on(6).then(|| options(i / 3)),
            syn_data_bytes: 9,
            steps: (0..i % 5).map(step).collect(),
            steps_dropped: u32::MAX,
        }),
        teardown: on(6).then(|| TeardownEntry {
            kind: "fin-4way".into(),
            initiator: on(7).then(|| NASTY.to_string()),
            frames: (0..i % 4).collect(),
            steps: (0..i % 4).map(|k| step(k + i)).collect(),
            steps_dropped: 0,
            fin_to_last_ack_ms: on(8).then(|| float(i + 5)),
            half_close_bytes: 10,
            notes: (0..i % 3).map(|k| format!("{NASTY}{k}")).collect(),
        }),
        anomalies: on(7).then_some(AnomaliesEntry {
            retransmissions: 1,
            out_of_order: 2,
            dup_acks: 3,
            zero_window: 4,
            keep_alives: 5,
            lost_segments: 6,
            missed_bytes: 7,
            retransmitted_bytes: u64::MAX,
        }),
        tcp_state: on(8).then(|| TcpStateEntry {
            orig: "S1".into(),
            resp: NASTY.into(),
        }),
    }
}

/// Connection entries with every optional part present and absent (bit k of the index
/// switches part k), every float case and escaped strings.
#[test]
fn hand_written_conn_json_is_serde_json_byte_for_byte() {
    for i in 0..64 {
        same(&options(i));
    }
    for i in 0..40 {
        same(&step(i));
    }
    for i in 0..1024 {
        same(&conn(i));
    }
}

/// The checkpoint runs between list items and can stop the entry.
#[test]
fn checkpoint_can_refuse() {
    let e = stream(0);
    let mut buf = Vec::new();
    let mut calls = 0;
    let mut check = |b: &mut Vec<u8>| {
        calls += 1;
        if b.len() > 500 {
            Err(io::Error::other("over"))
        } else {
            Ok(())
        }
    };
    let r = e.write_json(&mut JsonOut {
        buf: &mut buf,
        check: &mut check,
    });
    assert!(r.is_err());
    assert!(calls > 1);
}

/// A stream entry with its segments kept apart (a [`JsonList`]) writes the same bytes as
/// the entry with them in its list, with the list's checkpoints on the way, and through
/// serde too.
#[test]
fn segments_kept_apart_write_as_the_entry_does() {
    /// Segment entries written one by one, with a checkpoint after each.
    struct Apart(Vec<SegmentEntry>);
    impl JsonList for Apart {
        fn write_list(&self, o: &mut JsonOut<'_>) -> io::Result<()> {
            o.raw(b"[");
            for (i, s) in self.0.iter().enumerate() {
                if i > 0 {
                    o.raw(b",");
                }
                s.write_json(o)?;
                o.check()?;
            }
            o.raw(b"]");
            Ok(())
        }
    }
    let full = stream(2);
    assert!(!full.segments.is_empty());
    let mut big = full.clone();
    let seg = full.segments[0].clone();
    big.segments = (0..500)
        .map(|i| SegmentEntry {
            frame: i,
            ..seg.clone()
        })
        .collect();
    for e in [full, big] {
        let apart = Apart(e.segments.clone());
        let bare = StreamEntry {
            segments: Vec::new(),
            ..e.clone()
        };
        let mut calls = 0;
        let mut got = Vec::new();
        StreamWithSegments {
            entry: &bare,
            segments: &apart,
        }
        .write_json(&mut JsonOut {
            buf: &mut got,
            check: &mut |_| {
                calls += 1;
                Ok(())
            },
        })
        .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&got),
            serde_json::to_string(&e).unwrap()
        );
        assert!(calls >= e.segments.len());
        // And through serde, the way `WriteJson` allows.
        let via_serde = serde_json::to_string(&StreamWithSegments {
            entry: &bare,
            segments: &apart,
        })
        .unwrap();
        assert_eq!(via_serde, serde_json::to_string(&e).unwrap());
    }
}

/// Numbers come out as `serde_json` writes them: every digit count, the edges around each
/// power of ten, and both ends of `u64` and `i64`.
#[test]
fn numbers_are_serde_json_byte_for_byte() {
    let mut values = vec![0u64, 1, 9, u64::MAX, u64::MAX - 1];
    let mut p = 1u64;
    while let Some(q) = p.checked_mul(10) {
        values.extend([q - 1, q, q + 1, q + q / 2 + 7]);
        p = q;
    }
    let mut buf = Vec::new();
    for &n in &values {
        buf.clear();
        push_u64(&mut buf, n);
        assert_eq!(buf, serde_json::to_vec(&n).unwrap(), "{n}");
        for m in [n as i64, (n as i64).wrapping_neg(), i64::MIN, i64::MAX] {
            buf.clear();
            let mut check = |_: &mut Vec<u8>| Ok(());
            JsonOut {
                buf: &mut buf,
                check: &mut check,
            }
            .i64(m);
            assert_eq!(buf, serde_json::to_vec(&m).unwrap(), "{m}");
        }
    }
    // Appending keeps what was there.
    buf.clear();
    buf.extend_from_slice(b"[");
    push_u64(&mut buf, 1234567);
    assert_eq!(buf, b"[1234567");
}
