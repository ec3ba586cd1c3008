//! Table-driven synthetic reassembly cases: segments built directly as netlens `Packet`s
//! with the connection id and direction the tracker would assign, fed to the
//! `StreamAnalyzer`. Each case states the bytes the application sent; the delivered bytes,
//! gaps and counters must follow from the case alone.

mod common;

use std::net::Ipv4Addr;

use netlens::analyze::framing::FramingConfig;
use netlens::analyze::streams::{StreamAnalyzer, StreamOptions, PIECE_COST};
use netlens::analyze::{Analyzer, ConnRef, Ctx, Dir};
use netlens::dissect::{Ipv4, Link, Net, Packet, Tcp, TcpFlags, TcpOptions, Transport, Vlans};
use netlens::report::streams::StreamEntry;
use netlens::report::Report;

const S: u16 = TcpFlags::SYN;
const A: u16 = TcpFlags::ACK;
const F: u16 = TcpFlags::FIN;
const R: u16 = TcpFlags::RST;

/// One segment of a case: direction, raw seq, flags, payload, wire length override (a
/// snap-length cut: more bytes on the wire than captured), connection id.
#[derive(Clone)]
struct Seg {
    dir: Dir,
    seq: u32,
    flags: u16,
    data: Vec<u8>,
    wire: Option<u32>,
    conn: u64,
    mss: Option<u16>,
}

fn seg(dir: Dir, seq: u32, flags: u16, data: &[u8]) -> Seg {
    Seg {
        dir,
        seq,
        flags,
        data: data.to_vec(),
        wire: None,
        conn: 1,
        mss: None,
    }
}

fn o(seq: u32, flags: u16, data: &[u8]) -> Seg {
    seg(Dir::Orig, seq, flags, data)
}

fn r(seq: u32, flags: u16, data: &[u8]) -> Seg {
    seg(Dir::Resp, seq, flags, data)
}

const ISN: u32 = 1000;
const RISN: u32 = 5000;

/// SYN, SYN-ACK, ACK with the given ISNs.
fn handshake(isn: u32, risn: u32) -> Vec<Seg> {
    vec![
        o(isn, S, b""),
        r(risn, S | A, b""),
        o(isn.wrapping_add(1), A, b""),
    ]
}

struct Out {
    streams: Vec<StreamEntry>,
    bytes: common::Collected,
}

impl Out {
    fn get(&self, conn: u64, dir: &str) -> &StreamEntry {
        self.streams
            .iter()
            .find(|s| s.conn == conn && s.dir == dir)
            .unwrap_or_else(|| panic!("no stream {conn}/{dir}"))
    }
    fn data(&self, conn: u64, dir: Dir) -> Vec<u8> {
        self.bytes.padded(conn, dir)
    }
}

fn feed(segs: &[Seg], opts: StreamOptions) -> Out {
    let out = std::sync::Arc::new(std::sync::Mutex::new(common::Collected::default()));
    let sink = common::MemSink {
        out: out.clone(),
        messages: true,
    };
    let mut a = StreamAnalyzer::new(opts, Some(Box::new(sink))).unwrap();
    let (c, s) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
    let mut ctx = Ctx::default();
    for (i, g) in segs.iter().enumerate() {
        let (src, dst, sp, dp) = match g.dir {
            Dir::Orig => (c, s, 40000, 9000),
            Dir::Resp => (s, c, 9000, 40000),
        };
        let wire = g.wire.unwrap_or(g.data.len() as u32);
        let p = Packet {
            frame: i as u64 + 1,
            ts_ns: i as i64 * 1000,
            wire_len: 40 + wire,
            cap_len: 40 + g.data.len() as u32,
            link_type: 101,
            port: 0,
            file_index: 0,
            link: Link::Raw,
            vlans: Vlans::default(),
            net: Net::Ipv4(Ipv4 {
                src,
                dst,
                ttl: 64,
                id: 0,
                df: true,
                mf: false,
                frag_offset: 0,
                protocol: 6,
                total_len: (40 + wire) as u16,
                header_len: 20,
                tos: 0,
                checksum_ok: true,
            }),
            transport: Transport::Tcp(Tcp {
                src_port: sp,
                dst_port: dp,
                seq: g.seq,
                ack: 0,
                flags: TcpFlags(g.flags),
                window: 1000,
                header_len: 20,
                urgent: 0,
                options: TcpOptions {
                    mss: g.mss,
                    ..TcpOptions::default()
                },
                payload_len: wire,
                payload: &g.data,
                checksum_ok: None,
            }),
            reassembled_from: &[],
            issue: None,
        };
        ctx.reset();
        ctx.conn = Some(ConnRef {
            id: g.conn,
            dir: g.dir,
            opened: false,
        });
        a.on_packet(&p, &mut ctx);
    }
    a.finish(&mut Report::default());
    let mut o = a.take_output().unwrap();
    assert!(o.error.is_none());
    let mut streams = Vec::new();
    o.streams
        .for_each(|e: StreamEntry| {
            streams.push(e);
            Ok(())
        })
        .unwrap();
    let bytes = out.lock().expect("sink lock").clone();
    Out { streams, bytes }
}

fn opts() -> StreamOptions {
    StreamOptions {
        framing: FramingConfig::parse(&["none"]).unwrap(),
        ..StreamOptions::default()
    }
}

fn len32(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u32).to_le_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

/// What a case expects of the orig direction.
struct Want {
    name: &'static str,
    segs: Vec<Seg>,
    /// Delivered bytes (gap bytes as zeros).
    data: &'static [u8],
    /// (offset, len, reason) of each gap.
    gaps: &'static [(u64, u64, &'static str)],
    /// Frames listed as segments, in capture order.
    seg_frames: &'static [u64],
    retransmissions: u64,
    conflicting: u64,
    out_of_order: u64,
}

#[test]
fn reassembly_cases() {
    let b = ISN + 1;
    let hs = handshake(ISN, RISN);
    let with = |extra: Vec<Seg>| -> Vec<Seg> { hs.iter().cloned().chain(extra).collect() };
    let cases = vec![
        Want {
            name: "in order",
            segs: with(vec![o(b, A, b"hello "), o(b + 6, A, b"world")]),
            data: b"hello world",
            gaps: &[],
            seg_frames: &[4, 5],
            retransmissions: 0,
            conflicting: 0,
            out_of_order: 0,
        },
        Want {
            name: "reordered: the third segment arrives before the second",
            segs: with(vec![
                o(b, A, b"aaaa"),
                o(b + 8, A, b"cccc"),
                o(b + 4, A, b"bbbb"),
            ]),
            data: b"aaaabbbbcccc",
            gaps: &[],
            seg_frames: &[4, 5, 6],
            retransmissions: 0,
            conflicting: 0,
            out_of_order: 1,
        },
        Want {
            name: "retransmission of delivered bytes, same data",
            segs: with(vec![o(b, A, b"abcd"), o(b, A, b"abcd"), o(b + 4, A, b"ef")]),
            data: b"abcdef",
            gaps: &[],
            seg_frames: &[4, 6],
            retransmissions: 1,
            conflicting: 0,
            out_of_order: 0,
        },
        Want {
            name: "overlap with different data: the first copy wins",
            segs: with(vec![o(b, A, b"0123456789"), o(b + 5, A, b"XXXXXabcde")]),
            data: b"0123456789abcde",
            gaps: &[],
            seg_frames: &[4, 5],
            retransmissions: 0,
            conflicting: 5,
            out_of_order: 0,
        },
        Want {
            name: "overlap with a buffered out-of-order copy that differs",
            segs: with(vec![
                o(b, A, b"aa"),
                o(b + 4, A, b"cccc"),
                o(b + 4, A, b"CCcc"),
                o(b + 2, A, b"bb"),
            ]),
            data: b"aabbcccc",
            gaps: &[],
            seg_frames: &[4, 5, 7],
            retransmissions: 1,
            conflicting: 2,
            out_of_order: 1,
        },
        Want {
            name: "a lost segment is a gap; reassembly resumes after it",
            segs: with(vec![
                o(b, A, b"aaaa"),
                o(b + 8, A, b"cccc"),
                o(b + 12, F | A, b""),
            ]),
            data: b"aaaa\0\0\0\0cccc",
            gaps: &[(4, 4, "lost")],
            seg_frames: &[4, 5],
            retransmissions: 0,
            conflicting: 0,
            out_of_order: 0,
        },
        Want {
            name: "data on SYN and on FIN, each taking its sequence number",
            segs: vec![
                o(ISN, S, b"syn-data "),
                r(RISN, S | A, b""),
                o(b + 9, A | F, b"fin-data"),
                o(b + 17, A, b"after fin"),
            ],
            data: b"syn-data fin-data",
            gaps: &[],
            seg_frames: &[1, 3],
            retransmissions: 0,
            conflicting: 0,
            out_of_order: 0,
        },
        Want {
            name: "sequence numbers wrap past 2^32",
            segs: vec![
                o(u32::MAX - 4, S, b""),
                r(RISN, S | A, b""),
                o(u32::MAX - 3, A, b"abcd"),
                o(0, A, b"efgh"),
                o(4, A, b"ijkl"),
            ],
            data: b"abcdefghijkl",
            gaps: &[],
            seg_frames: &[3, 4, 5],
            retransmissions: 0,
            conflicting: 0,
            out_of_order: 0,
        },
        Want {
            name: "wrap-around with reordering across 2^32",
            segs: vec![
                o(u32::MAX - 1, S, b""),
                o(u32::MAX, A, b"a"),
                o(3, A, b"efgh"),
                o(0, A, b"bcd"),
            ],
            data: b"abcdefgh",
            gaps: &[],
            seg_frames: &[2, 3, 4],
            retransmissions: 0,
            conflicting: 0,
            out_of_order: 1,
        },
        Want {
            name: "midstream pickup: offset 0 is the first byte seen",
            segs: vec![o(777_777, A, b"mid"), o(777_780, A, b"stream")],
            data: b"midstream",
            gaps: &[],
            seg_frames: &[1, 2],
            retransmissions: 0,
            conflicting: 0,
            out_of_order: 0,
        },
        Want {
            name: "keep-alive probe is neither data nor a retransmission",
            segs: with(vec![o(b, A, b"abc"), o(b + 2, A, b"\0"), o(b + 3, A, b"d")]),
            data: b"abcd",
            gaps: &[],
            seg_frames: &[4, 6],
            retransmissions: 0,
            conflicting: 0,
            out_of_order: 0,
        },
        Want {
            name: "bytes cut by the snap length are a not-captured gap",
            segs: with(vec![
                Seg {
                    wire: Some(10),
                    ..o(b, A, b"abcd")
                },
                o(b + 10, A, b"xyz"),
            ]),
            data: b"abcd\0\0\0\0\0\0xyz",
            gaps: &[(4, 6, "not-captured")],
            seg_frames: &[4, 5],
            retransmissions: 0,
            conflicting: 0,
            out_of_order: 0,
        },
        Want {
            name: "payload on RST is not delivered",
            segs: with(vec![o(b, A, b"ok"), o(b + 2, R | A, b"rst text")]),
            data: b"ok",
            gaps: &[],
            seg_frames: &[4],
            retransmissions: 0,
            conflicting: 0,
            out_of_order: 0,
        },
    ];
    for c in cases {
        let out = feed(&c.segs, opts());
        let s = out.get(1, "orig");
        assert_eq!(
            out.data(1, Dir::Orig),
            c.data,
            "{}: delivered bytes {:?}",
            c.name,
            String::from_utf8_lossy(&out.data(1, Dir::Orig))
        );
        let gaps: Vec<(u64, u64, &str)> = s
            .gaps
            .iter()
            .map(|g| (g.offset, g.len, g.reason.as_str()))
            .collect();
        assert_eq!(gaps, c.gaps, "{}: gaps", c.name);
        let frames: Vec<u64> = s.segments.iter().map(|g| g.frame).collect();
        assert_eq!(frames, c.seg_frames, "{}: segments", c.name);
        assert_eq!(
            s.reassembly.retransmissions, c.retransmissions,
            "{}: retransmissions",
            c.name
        );
        assert_eq!(
            s.reassembly.conflicting_bytes, c.conflicting,
            "{}: conflicts",
            c.name
        );
        assert_eq!(
            s.reassembly.out_of_order, c.out_of_order,
            "{}: out of order",
            c.name
        );
        let gap_bytes: u64 = c.gaps.iter().map(|g| g.1).sum();
        assert_eq!(
            s.bytes + gap_bytes,
            c.data.len() as u64,
            "{}: bytes",
            c.name
        );
        assert_eq!(s.stream_len, c.data.len() as u64, "{}: stream_len", c.name);
    }
}

#[test]
fn conflicts_are_listed_with_frame_and_offset() {
    let b = ISN + 1;
    let mut segs = handshake(ISN, RISN);
    segs.extend([o(b, A, b"0123456789"), o(b + 2, A, b"23x5")]);
    let out = feed(&segs, opts());
    let s = out.get(1, "orig");
    assert_eq!(s.conflicts.len(), 1);
    assert_eq!(
        (
            s.conflicts[0].frame,
            s.conflicts[0].offset,
            s.conflicts[0].bytes
        ),
        (5, 4, 1)
    );
    assert_eq!(s.reassembly.retransmissions, 1);
}

#[test]
fn buffer_cap_gives_up_the_hole_and_counts_late_bytes() {
    let b = ISN + 1;
    let mut segs = handshake(ISN, RISN);
    segs.extend([
        o(b, A, b"aaaa"),
        o(b + 8, A, b"cccccc"),  // buffered: 6 bytes
        o(b + 14, A, b"dddddd"), // a second piece exceeds the cap: hole [4, 8) given up
        o(b + 4, A, b"bbbb"),    // arrives late
    ]);
    let o = StreamOptions {
        conn_buffer: 6 + PIECE_COST + 4, // one 6-byte piece and its bookkeeping, not two
        ..opts()
    };
    let out = feed(&segs, o);
    let s = out.get(1, "orig");
    assert_eq!(out.data(1, Dir::Orig), b"aaaa\0\0\0\0ccccccdddddd");
    assert_eq!(s.gaps.len(), 1);
    assert_eq!((s.gaps[0].offset, s.gaps[0].len), (4, 4));
    assert_eq!(s.gaps[0].reason, "buffer-cap");
    assert_eq!(s.reassembly.gaps_from_cap, 1);
    assert_eq!(s.reassembly.late_bytes, 4);
    assert_eq!(s.reassembly.buffered_peak, 6);
}

#[test]
fn total_memory_cap_applies_across_connections() {
    let b = ISN + 1;
    let mut segs = Vec::new();
    for conn in [1u64, 2] {
        for mut g in handshake(ISN, RISN) {
            g.conn = conn;
            segs.push(g);
        }
    }
    // Each connection buffers 8 bytes above a hole; the total cap holds one (no history).
    for conn in [1u64, 2] {
        let mut g = o(b + 4, A, b"xxxxxxxx");
        g.conn = conn;
        segs.push(g);
    }
    let o = StreamOptions {
        total_buffer: 8 + PIECE_COST + 4,
        history: 0,
        ..opts()
    };
    let out = feed(&segs, o);
    assert_eq!(out.get(1, "orig").reassembly.gaps_from_cap, 0);
    let s2 = out.get(2, "orig");
    assert_eq!(s2.reassembly.gaps_from_cap, 1);
    assert_eq!(s2.gaps[0].reason, "buffer-cap");
    // Connection 1's hole stays open until the end: lost.
    assert_eq!(out.get(1, "orig").gaps[0].reason, "lost");
}

#[test]
fn framing_survives_reordering_and_segments_stay_in_capture_order() {
    let b = ISN + 1;
    let m1 = len32(b"first");
    let m2 = len32(b"second message");
    let all: Vec<u8> = [m1.clone(), m2.clone()].concat();
    // Three segments: [0,6) [6,15) [15,27), sent 1, 3, 2.
    let mut segs = handshake(ISN, RISN);
    segs.extend([
        o(b, A, &all[..6]),
        o(b + 15, A, &all[15..]),
        o(b + 6, A, &all[6..15]),
    ]);
    let o = StreamOptions {
        framing: FramingConfig::parse(&["9000=len32le"]).unwrap(),
        ..opts()
    };
    let out = feed(&segs, o);
    let s = out.get(1, "orig");
    assert_eq!(out.data(1, Dir::Orig), all);
    let lens: Vec<u64> = s.messages.iter().map(|m| m.len).collect();
    assert_eq!(lens, vec![m1.len() as u64, m2.len() as u64]);
    let frames: Vec<u64> = s.segments.iter().map(|g| g.frame).collect();
    assert_eq!(frames, vec![4, 5, 6], "capture order");
    assert!(s.segments[1].out_of_order, "frame 5 waited in the buffer");
    // m0 = [0,9): frames 4 and 6; m1 = [9,27): frames 6 and 5, in stream order.
    assert_eq!(s.messages[0].segments, vec![4, 6]);
    assert_eq!(s.messages[1].segments, vec![6, 5]);
    assert!(s.messages.iter().all(|m| m.split && m.coalesced));
    // The messages' own bytes, through the message sink.
    assert_eq!(out.bytes.messages[&(1, Dir::Orig, 0)], m1);
    assert_eq!(out.bytes.messages[&(1, Dir::Orig, 1)], m2);
}

#[test]
fn a_gap_in_a_length_prefixed_body_keeps_framing_a_gap_in_a_header_breaks_it() {
    let b = ISN + 1;
    let m = len32(b"0123456789");
    let mut segs = handshake(ISN, RISN);
    // Lose body bytes [6, 10) of message 0, then a second message whole.
    segs.extend([
        o(b, A, &m[..6]),
        o(b + 10, A, &m[10..]),
        o(b + 14, A, &len32(b"ok")),
    ]);
    // Then lose the first 2 bytes of message 2's header: framing breaks there.
    let m3 = len32(b"zz");
    segs.push(o(b + 22, A, &m3[2..]));
    let o = StreamOptions {
        framing: FramingConfig::parse(&["len32le"]).unwrap(),
        ..opts()
    };
    let out = feed(&segs, o);
    let s = out.get(1, "orig");
    assert_eq!(s.stats.messages, 2);
    assert_eq!(s.messages[0].gap_bytes, 4);
    assert_eq!(s.messages[0].len, 14);
    let e = s
        .framing_error
        .as_ref()
        .expect("framing breaks at the lost header");
    assert_eq!(e.offset, 20);
    assert!(e.reason.contains("gap"), "{}", e.reason);
    assert_eq!(s.unframed_bytes, 4);
}

#[test]
fn two_connections_on_one_tuple_are_two_streams() {
    let b = ISN + 1;
    let mut segs = handshake(ISN, RISN);
    segs.push(o(b, A, b"first"));
    for mut g in handshake(90_000, 70_000) {
        g.conn = 2;
        segs.push(g);
    }
    let mut g = o(90_001, A, b"second");
    g.conn = 2;
    segs.push(g);
    let out = feed(&segs, opts());
    assert_eq!(out.data(1, Dir::Orig), b"first");
    assert_eq!(out.data(2, Dir::Orig), b"second");
    assert_eq!(out.get(2, "orig").isn, Some(90_000));
}

#[test]
fn oversized_segments_are_flagged_against_the_peer_mss() {
    let b = ISN + 1;
    let mut segs = handshake(ISN, RISN);
    segs[1].mss = Some(100); // the responder can take 100-byte segments
    segs.extend([o(b, A, &[b'x'; 100]), o(b + 100, A, &[b'y'; 300])]);
    let out = feed(&segs, opts());
    let s = out.get(1, "orig");
    assert_eq!(s.mss, Some(100));
    assert_eq!(s.mss_source, "syn");
    assert_eq!(s.oversized_segments, 1);
    assert!(!s.segments[0].oversized && s.segments[1].oversized);
}

/// Hostile: 100 000 one-byte segments, each above a hole (every other byte missing). The
/// bookkeeping per piece counts against the cap, so the buffer stays bounded and holes are
/// given up (counted) instead of growing without bound.
#[test]
fn one_byte_pieces_cannot_exhaust_memory() {
    let b = ISN + 1;
    let mut segs = handshake(ISN, RISN);
    for i in 0..100_000u32 {
        segs.push(o(b + 1 + 2 * i, A, b"x"));
    }
    let cap = 64 * 1024;
    let o = StreamOptions {
        conn_buffer: cap,
        ..opts()
    };
    let out = feed(&segs, o);
    let s = out.get(1, "orig");
    assert!(s.reassembly.gaps_from_cap > 0);
    let most_pieces = cap / (1 + PIECE_COST);
    assert!(
        s.reassembly.buffered_peak as usize <= most_pieces,
        "{}",
        s.reassembly.buffered_peak
    );
    assert_eq!(s.bytes, 100_000);
    assert_eq!(s.gaps_total.bytes, 100_000);
}

/// UDP: every datagram is one message, empty ones included; a datagram reassembled from
/// IPv4 fragments lists its fragment frames.
#[test]
fn udp_datagrams_keep_their_boundaries_and_fragments() {
    use netlens::dissect::Udp;
    use netlens::report::streams::UdpFlowEntry;
    let mut a = StreamAnalyzer::new(opts(), None).unwrap();
    let frags: [u64; 2] = [1, 2];
    let payloads: [(&[u8], Dir, &[u64]); 4] = [
        (b"", Dir::Orig, &[]),
        (&[7u8; 3000], Dir::Orig, &frags),
        (b"pong", Dir::Resp, &[]),
        (b"x", Dir::Orig, &[]),
    ];
    let mut ctx = Ctx::default();
    for (i, (data, dir, from)) in payloads.iter().enumerate() {
        let (c, s) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let (src, dst, sp, dp) = match dir {
            Dir::Orig => (c, s, 5353, 53),
            Dir::Resp => (s, c, 53, 5353),
        };
        let p = Packet {
            frame: i as u64 + 3,
            ts_ns: 0,
            wire_len: 28 + data.len() as u32,
            cap_len: 28 + data.len() as u32,
            link_type: 101,
            port: 0,
            file_index: 0,
            link: Link::Raw,
            vlans: Vlans::default(),
            net: Net::Ipv4(Ipv4 {
                src,
                dst,
                ttl: 64,
                id: 0,
                df: false,
                mf: false,
                frag_offset: 0,
                protocol: 17,
                total_len: 0,
                header_len: 20,
                tos: 0,
                checksum_ok: true,
            }),
            transport: Transport::Udp(Udp {
                src_port: sp,
                dst_port: dp,
                length: 8 + data.len() as u16,
                payload_len: data.len() as u32,
                payload: data,
                checksum_ok: None,
            }),
            reassembled_from: from,
            issue: None,
        };
        ctx.reset();
        ctx.conn = Some(ConnRef {
            id: 1,
            dir: *dir,
            opened: i == 0,
        });
        a.on_packet(&p, &mut ctx);
    }
    a.finish(&mut Report::default());
    let mut o = a.take_output().unwrap();
    let mut flows = Vec::new();
    o.udp_flows
        .for_each(|e: UdpFlowEntry| {
            flows.push(e);
            Ok(())
        })
        .unwrap();
    assert_eq!(flows.len(), 2);
    let orig = &flows[0];
    assert_eq!(
        (orig.dir.as_str(), orig.orig.as_str()),
        ("orig", "10.0.0.1:5353")
    );
    let d: Vec<(u64, u64, Vec<u64>)> = orig
        .datagrams
        .iter()
        .map(|d| (d.frame, d.len, d.fragments.clone()))
        .collect();
    assert_eq!(
        d,
        vec![(3, 0, vec![]), (4, 3000, vec![1, 2]), (6, 1, vec![])]
    );
    assert_eq!(
        (
            orig.datagrams_total,
            orig.bytes,
            orig.fragmented,
            orig.max_len
        ),
        (3, 3001, 1, 3000)
    );
    assert_eq!(flows[1].dir, "resp");
    assert_eq!(flows[1].datagrams[0].len, 4);
}

#[test]
fn messages_kept_per_stream_stop_at_the_cap_and_counts_stay_exact() {
    // 50 length-prefixed messages, two per segment, with room for 10 in each list.
    let b = ISN + 1;
    let msgs: Vec<Vec<u8>> = (0..50u32)
        .map(|i| len32(format!("message {i:02}").as_bytes()))
        .collect();
    let mut segs = handshake(ISN, RISN);
    let mut off = 0u32;
    for pair in msgs.chunks(2) {
        let data = pair.concat();
        segs.push(o(b + off, A, &data));
        off += data.len() as u32;
    }
    let o = StreamOptions {
        framing: FramingConfig::parse(&["len32le"]).unwrap(),
        max_list: 10,
        ..opts()
    };
    let out = feed(&segs, o);
    let s = out.get(1, "orig");
    assert_eq!(s.bytes, u64::from(off));
    assert_eq!(s.stats.messages, 50);
    assert_eq!(s.stats.segments, 25);
    assert_eq!(s.stats.coalesced_messages, 50);
    assert_eq!(s.stats.incomplete_messages, 0);
    assert_eq!(s.messages.len(), 10);
    assert_eq!(s.segments.len(), 10);
    let idx: Vec<u64> = s.messages.iter().map(|m| m.index).collect();
    assert_eq!(idx, (0..10).collect::<Vec<u64>>(), "the first ten are kept");
    let cut = s.lists_cut.as_ref().expect("the cut is said");
    assert_eq!(
        (cut.cap, cut.messages_total, cut.segments_total),
        (10, 50, 25)
    );
    // Every message still reaches the message sink: the cap is on the report only.
    assert_eq!(out.bytes.messages.len(), 50);
}
