//! Connection tracking on the recorded fixtures and on synthetic captures.
//!
//! Fixture facts were checked independently with tshark (frame numbers, flags, raw
//! seq/ack, `tcp.stream` and `tcp.analysis` flags: `tshark -r F -T fields -e frame.number
//! -e tcp.flags.str -e tcp.seq_raw -e tcp.ack_raw -e tcp.analysis.flags`, and
//! `-q -z conv,tcp|udp`); Zeek's conn_state/history for them follow from Zeek's rules
//! (the README legend) and are the same values the corpus agreement test checks on
//! Zeek's own baselines. Synthetic cases are built with etherparse's PacketBuilder and
//! written with pcap-file to a temporary file.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::all_captures;
use etherparse::{PacketBuilder, TcpHeader};
use netlens::analyze::conns::ConnTracker;
use netlens::analyze::{Analyzer, ConnRef, Ctx, Dir};
use netlens::capture::file::{CaptureFile, DEFAULT_MAX_RECORD};
use netlens::capture::Next;
use netlens::config::ConnOptions;
use netlens::dissect::{DissectOptions, Dissector};
use netlens::report::conns::ConnEntry;
use netlens::report::Report;
use netlens::Config;
use pcap_file::pcap::{PcapPacket, PcapWriter};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// Runs netlens with `--conns --json` and reads the report back (deny_unknown_fields).
fn run_with(path: &Path, conns: ConnOptions) -> Report {
    try_run_with(path, conns).unwrap()
}

/// [`run_with`], or None when netlens cannot read the file at all.
fn try_run_with(path: &Path, conns: ConnOptions) -> Option<Report> {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let mut config = Config::for_files(vec![path.to_path_buf()]);
    config.views.conns = true;
    config.views.handshakes = true;
    config.views.teardowns = true;
    config.json = Some(json.clone());
    config.conns = conns;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    netlens::run(&config, &mut out, &mut err).ok()?;
    let text = std::fs::read_to_string(&json).unwrap();
    Some(serde_json::from_str(&text).unwrap())
}

fn conns_of(path: &Path) -> Vec<ConnEntry> {
    run_with(path, ConnOptions::default()).connections.unwrap()
}

fn only(path: &Path) -> ConnEntry {
    let mut c = conns_of(path);
    assert_eq!(c.len(), 1, "{c:#?}");
    c.remove(0)
}

// ------------------------------------------------------------------ fixtures

#[test]
fn graceful_close_is_a_four_way_fin() {
    let c = only(&fixture("tcp_graceful.pcap"));
    assert_eq!(
        (c.orig.as_str(), c.resp.as_str()),
        ("10.77.0.1:40001", "10.77.0.2:5001")
    );
    assert_eq!((c.first_frame, c.last_frame), (3, 17)); // frames 1-2 are ARP
    let h = c.handshake.as_ref().unwrap();
    assert_eq!(h.outcome, "complete");
    assert_eq!(h.syn_frames, vec![3]);
    assert_eq!(
        (h.synack_frame, h.ack_frame, h.rst_frame),
        (Some(4), Some(5), None)
    );
    assert_eq!(
        (h.orig_isn, h.resp_isn),
        (Some(3235874218), Some(3749831677))
    );
    assert!(h.acks_verified && h.mismatches.is_empty());
    assert_eq!(h.steps[1].ack, 3235874219); // x+1, on the wire
    assert_eq!(h.steps[1].ack_ok, Some(true));
    assert!(h.rtt_ms.syn_to_synack.unwrap() > 0.0 && h.rtt_ms.synack_to_ack.unwrap() > 0.0);
    let o = h.orig_options.as_ref().unwrap();
    assert_eq!(
        (o.mss, o.window_scale, o.sack_permitted),
        (Some(1460), Some(10), true)
    );
    let t = c.teardown.as_ref().unwrap();
    assert_eq!(
        (t.kind.as_str(), t.initiator.as_deref()),
        ("fin-4way", Some("orig"))
    );
    assert_eq!(t.frames, vec![14, 15, 16, 17]);
    // FIN at 0.000332 s, last ACK at 0.202393 s
    assert!((t.fin_to_last_ack_ms.unwrap() - 202.061).abs() < 0.001);
    assert_eq!(
        (c.conn_state.as_str(), c.history.as_str()),
        ("SF", "ShADadFf")
    );
    // tshark conv,tcp: 8 frames from the client, 7 from the server; 3x13 and 3x39 bytes
    assert_eq!(
        (c.orig_pkts, c.resp_pkts, c.orig_bytes, c.resp_bytes),
        (8, 7, 39, 117)
    );
    assert_eq!(c.anomalies.unwrap(), Default::default());
    assert!(!c.orig_guessed);
    assert_eq!(c.finalized_by, "end");
}

#[test]
fn refused_is_rej_with_no_teardown() {
    let c = only(&fixture("tcp_refused.pcap"));
    let h = c.handshake.as_ref().unwrap();
    assert_eq!(h.outcome, "refused");
    assert_eq!(
        (h.syn_frames.clone(), h.rst_frame, h.synack_frame),
        (vec![1], Some(2), None)
    );
    // RST,ACK ack = x+1
    assert_eq!(h.steps[1].expected_ack, Some(3888866853));
    assert_eq!(h.steps[1].ack_ok, Some(true));
    let t = c.teardown.as_ref().unwrap();
    assert_eq!((t.kind.as_str(), t.initiator.as_ref()), ("none", None));
    assert!(t.frames.is_empty());
    assert_eq!((c.conn_state.as_str(), c.history.as_str()), ("REJ", "Sr"));
}

#[test]
fn unanswered_syns_are_one_attempt() {
    let c = only(&fixture("tcp_no_answer.pcap"));
    let h = c.handshake.as_ref().unwrap();
    assert_eq!(h.outcome, "no-answer");
    assert_eq!(h.syn_frames, vec![1, 2, 3]);
    assert_eq!(h.syn_retransmissions, 2); // tshark flags frames 2 and 3 as retransmissions
    assert_eq!(c.teardown.as_ref().unwrap().kind, "none");
    assert_eq!((c.conn_state.as_str(), c.history.as_str()), ("S0", "S"));
    assert_eq!((c.orig_pkts, c.resp_pkts), (3, 0));
}

#[test]
fn shutdown_wr_is_a_half_close() {
    let c = only(&fixture("tcp_half_close.pcap"));
    let t = c.teardown.as_ref().unwrap();
    assert_eq!(
        (t.kind.as_str(), t.initiator.as_deref()),
        ("half-close", Some("orig"))
    );
    assert_eq!(t.half_close_bytes, 5000);
    assert_eq!(t.frames, vec![6, 7, 17, 18]);
    assert_eq!((c.orig_bytes, c.resp_bytes), (19, 5000));
    assert_eq!(
        (c.conn_state.as_str(), c.history.as_str()),
        ("SF", "ShADaFdf")
    );
}

#[test]
fn so_linger_zero_is_an_rst_abort() {
    let c = only(&fixture("tcp_rst_abort.pcap"));
    let t = c.teardown.as_ref().unwrap();
    assert_eq!(
        (t.kind.as_str(), t.initiator.as_deref()),
        ("rst", Some("orig"))
    );
    assert_eq!(t.frames, vec![13]);
    assert!(t.fin_to_last_ack_ms.is_none());
    assert_eq!(
        (c.conn_state.as_str(), c.history.as_str()),
        ("RSTO", "ShADadR")
    );
}

#[test]
fn crossing_fins_are_a_simultaneous_close() {
    let c = only(&fixture("tcp_simultaneous_close.pcap"));
    let t = c.teardown.as_ref().unwrap();
    assert_eq!(
        (t.kind.as_str(), t.initiator.as_deref()),
        ("simultaneous", Some("both"))
    );
    assert_eq!(t.frames, vec![8, 9, 10, 11]);
    assert_eq!(c.conn_state, "SF");
}

#[test]
fn reused_tuple_is_three_connections() {
    let cs = conns_of(&fixture("tcp_reused_tuple.pcap"));
    assert_eq!(cs.len(), 3); // tshark: tcp.stream 0, 1, 2 (reused_ports on 11 and 21)
    for (i, c) in cs.iter().enumerate() {
        assert_eq!(c.id, i as u64 + 1);
        assert_eq!(c.first_frame, 1 + 10 * i as u64);
        assert_eq!(c.last_frame, 10 + 10 * i as u64);
        assert_eq!(c.orig, "10.77.0.1:40007");
        assert_eq!(c.handshake.as_ref().unwrap().outcome, "complete");
        let t = c.teardown.as_ref().unwrap();
        // the server closes first and the client's FIN acknowledges it
        assert_eq!(
            (t.kind.as_str(), t.initiator.as_deref()),
            ("fin-3way", Some("resp"))
        );
        assert_eq!(
            (c.conn_state.as_str(), c.history.as_str()),
            ("SF", "ShADadfF")
        );
    }
    assert_eq!(cs[0].finalized_by, "reused");
    assert_eq!(cs[1].finalized_by, "reused");
    assert_eq!(cs[0].handshake.as_ref().unwrap().orig_isn, Some(1781606336));
    assert_eq!(cs[2].handshake.as_ref().unwrap().orig_isn, Some(1787884796));
}

#[test]
fn udp_exchange_is_one_flow_with_zeek_states() {
    let c = only(&fixture("udp_exchange.pcap"));
    assert_eq!(c.proto, "udp");
    assert_eq!((c.conn_state.as_str(), c.history.as_str()), ("SF", "Dd"));
    // tshark conv,udp: 5 frames each way (the fragmented datagram counts on its last frame)
    assert_eq!((c.orig_pkts, c.resp_pkts), (5, 5));
    assert_eq!((c.orig_bytes, c.resp_bytes), (5000, 5000));
    assert!(c.handshake.is_none() && c.teardown.is_none() && c.anomalies.is_none());
}

/// Runs the tracker alone over a capture and returns, per frame, what it put in the ctx.
fn ctx_trace(path: &Path, opts: &ConnOptions) -> Vec<(u64, Option<ConnRef>, Vec<u64>)> {
    let Ok(mut file) = CaptureFile::open(path, 0, DEFAULT_MAX_RECORD) else {
        return Vec::new();
    };
    file.begin(0);
    let mut dissector = Dissector::new(DissectOptions::default());
    let mut t = ConnTracker::new(opts, 50, false, false).unwrap();
    let mut ctx = Ctx::default();
    let mut out = Vec::new();
    let mut frame = 1;
    loop {
        match file.next_packet(frame) {
            Next::Packet(raw) => {
                let pkt = dissector.dissect(&raw);
                ctx.reset();
                t.on_packet(&pkt, &mut ctx);
                out.push((frame, ctx.conn, ctx.finalized.clone()));
            }
            Next::End => break,
            _ => {}
        }
        frame += 1;
    }
    out
}

#[test]
fn ctx_carries_ids_directions_and_finalizations() {
    let tr = ctx_trace(&fixture("tcp_reused_tuple.pcap"), &ConnOptions::default());
    for (frame, conn, fin) in &tr {
        let c = conn.expect("every TCP packet is assigned");
        assert_eq!(c.id, (frame - 1) / 10 + 1, "frame {frame}");
        assert_eq!(c.opened, frame % 10 == 1, "frame {frame}");
        // the reusing SYN closes out the previous connection first
        let want: Vec<u64> = if *frame == 11 || *frame == 21 {
            vec![c.id - 1]
        } else {
            vec![]
        };
        assert_eq!(fin, &want, "frame {frame}");
    }
    // client (10.77.0.1) packets are orig: frames 1, 3, 4, 7, 9
    let dirs: Vec<Dir> = tr[..10].iter().map(|x| x.1.unwrap().dir).collect();
    use Dir::{Orig as O, Resp as R};
    assert_eq!(dirs, vec![O, R, O, O, R, R, O, R, O, R]);
    // ARP frames get no connection
    let g = ctx_trace(&fixture("tcp_graceful.pcap"), &ConnOptions::default());
    assert!(g[0].1.is_none() && g[1].1.is_none() && g[2].1.is_some());
}

// ------------------------------------------------------------------ synthetic

type Ep = ([u8; 4], u16);
const CLI: Ep = ([10, 0, 0, 1], 51234);
const SRV: Ep = ([10, 0, 0, 2], 80);

/// A synthetic capture under construction.
#[derive(Default)]
struct Cap {
    pkts: Vec<(Duration, Vec<u8>)>,
}

fn mac(e: Ep) -> [u8; 6] {
    [2, 0, e.0[0], e.0[1], e.0[2], e.0[3]]
}

impl Cap {
    /// `flags` letters: S A F R P.
    #[allow(clippy::too_many_arguments)]
    fn tcp(
        &mut self,
        t_ms: u64,
        from: Ep,
        to: Ep,
        flags: &str,
        seq: u32,
        ack: u32,
        payload: &[u8],
    ) -> &mut Self {
        let mut h = TcpHeader::new(from.1, to.1, seq, 64240);
        h.syn = flags.contains('S');
        h.ack = flags.contains('A');
        h.fin = flags.contains('F');
        h.rst = flags.contains('R');
        h.psh = flags.contains('P');
        h.acknowledgment_number = ack;
        let mut v = Vec::new();
        PacketBuilder::ethernet2(mac(from), mac(to))
            .ipv4(from.0, to.0, 64)
            .tcp_header(h)
            .write(&mut v, payload)
            .unwrap();
        self.pkts.push((
            Duration::from_micros(1_700_000_000_000_000 + t_ms * 1000),
            v,
        ));
        self
    }

    fn udp(&mut self, t_ms: u64, from: Ep, to: Ep, payload: &[u8]) -> &mut Self {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(mac(from), mac(to))
            .ipv4(from.0, to.0, 64)
            .udp(from.1, to.1)
            .write(&mut v, payload)
            .unwrap();
        self.pkts.push((
            Duration::from_micros(1_700_000_000_000_000 + t_ms * 1000),
            v,
        ));
        self
    }

    fn write(&self, dir: &Path) -> PathBuf {
        let path = dir.join("synthetic.pcap");
        let f = std::fs::File::create(&path).unwrap();
        let mut w = PcapWriter::new(f).unwrap();
        for (ts, data) in &self.pkts {
            w.write_packet(&PcapPacket::new(*ts, data.len() as u32, data))
                .unwrap();
        }
        path
    }

    fn conns(&self) -> Vec<ConnEntry> {
        self.conns_with(ConnOptions::default())
    }

    fn conns_with(&self, o: ConnOptions) -> Vec<ConnEntry> {
        let dir = tempfile::tempdir().unwrap();
        run_with(&self.write(dir.path()), o).connections.unwrap()
    }
}

/// SYN, SYN-ACK, ACK from ISNs x and y at t = 0, 10, 20 ms.
fn handshake(c: &mut Cap, x: u32, y: u32) {
    c.tcp(0, CLI, SRV, "S", x, 0, b"")
        .tcp(10, SRV, CLI, "SA", y, x.wrapping_add(1), b"")
        .tcp(20, CLI, SRV, "A", x.wrapping_add(1), y.wrapping_add(1), b"");
}

#[test]
fn sequence_numbers_wrap_around() {
    let (x, y) = (0xffff_ff00u32, 0xffff_fff0u32);
    let mut c = Cap::default();
    handshake(&mut c, x, y);
    // 4 x 100 bytes from the client across 2^32, each acknowledged; the server answers
    // 50 bytes across its own wrap.
    let mut s = x.wrapping_add(1);
    for i in 0..4 {
        c.tcp(
            30 + i * 10,
            CLI,
            SRV,
            "AP",
            s,
            y.wrapping_add(1),
            &[b'a'; 100],
        );
        s = s.wrapping_add(100);
        c.tcp(35 + i * 10, SRV, CLI, "A", y.wrapping_add(1), s, b"");
    }
    c.tcp(80, SRV, CLI, "AP", y.wrapping_add(1), s, &[b'b'; 50]);
    let r = y.wrapping_add(51);
    c.tcp(90, CLI, SRV, "AF", s, r, b"")
        .tcp(100, SRV, CLI, "AF", r, s.wrapping_add(1), b"")
        .tcp(
            110,
            CLI,
            SRV,
            "A",
            s.wrapping_add(1),
            r.wrapping_add(1),
            b"",
        );
    let cs = c.conns();
    assert_eq!(cs.len(), 1);
    let e = &cs[0];
    assert_eq!(e.handshake.as_ref().unwrap().outcome, "complete");
    assert_eq!((e.orig_bytes, e.resp_bytes), (400, 50));
    assert_eq!(
        (e.conn_state.as_str(), e.history.as_str()),
        ("SF", "ShADadFf")
    );
    assert_eq!(e.anomalies.unwrap(), Default::default());
    assert_eq!(e.missed_bytes, 0);
    let t = e.teardown.as_ref().unwrap();
    // the server's FIN acknowledges the client's: a three-way close
    assert_eq!(
        (t.kind.as_str(), t.initiator.as_deref()),
        ("fin-3way", Some("orig"))
    );
    // relative numbers keep counting across the wrap
    assert_eq!(t.steps[0].rel_seq, 401);
}

#[test]
fn retransmitted_syn_is_the_same_attempt_and_a_new_isn_is_not() {
    let mut c = Cap::default();
    c.tcp(0, CLI, SRV, "S", 1000, 0, b"")
        .tcp(1000, CLI, SRV, "S", 1000, 0, b"")
        .tcp(1010, SRV, CLI, "SA", 5000, 1001, b"")
        .tcp(1020, CLI, SRV, "A", 1001, 5001, b"")
        // a SYN with another ISN on the same 4-tuple starts a new attempt
        .tcp(2000, CLI, SRV, "S", 9000, 0, b"");
    let cs = c.conns();
    assert_eq!(cs.len(), 2);
    let h = cs[0].handshake.as_ref().unwrap();
    assert_eq!(h.syn_frames, vec![1, 2]);
    assert_eq!(h.syn_retransmissions, 1);
    assert_eq!(h.outcome, "complete");
    // the RTT is measured from the SYN the SYN-ACK answers (the retransmission)
    assert!((h.rtt_ms.syn_to_synack.unwrap() - 10.0).abs() < 1e-6);
    assert_eq!(h.steps[1].what, "syn-retransmission");
    assert_eq!(cs[0].history, "ShA"); // Zeek: same-seq SYN adds no letter
    assert_eq!(cs[0].finalized_by, "reused");
    assert_eq!(cs[1].handshake.as_ref().unwrap().orig_isn, Some(9000));
    assert_eq!(cs[1].handshake.as_ref().unwrap().outcome, "no-answer");
}

#[test]
fn syn_with_data() {
    let mut c = Cap::default();
    c.tcp(0, CLI, SRV, "S", 1000, 0, b"0123456789")
        .tcp(10, SRV, CLI, "SA", 5000, 1011, b"")
        .tcp(20, CLI, SRV, "A", 1011, 5001, b"");
    let cs = c.conns();
    let h = cs[0].handshake.as_ref().unwrap();
    assert_eq!(h.outcome, "complete");
    assert_eq!(h.syn_data_bytes, 10);
    // the SYN-ACK acknowledges the SYN and its data: x+11, not the textbook x+1
    assert_eq!(h.mismatches.len(), 1);
    assert_eq!(
        (h.mismatches[0].expected, h.mismatches[0].got),
        (1001, 1011)
    );
    assert_eq!(cs[0].orig_bytes, 10);
}

#[test]
fn midstream_pickup_guesses_orig_by_zeek_rules() {
    // Data from the web server first: port 80 is a likely server port, so the client is
    // orig (Zeek flips: history starts with ^).
    let mut c = Cap::default();
    c.tcp(0, SRV, CLI, "AP", 7000, 3000, &[b'x'; 20])
        .tcp(10, CLI, SRV, "A", 3000, 7020, b"")
        .tcp(20, CLI, SRV, "AP", 3000, 7020, &[b'y'; 5]);
    let cs = c.conns();
    assert_eq!(cs.len(), 1);
    let e = &cs[0];
    assert_eq!(
        (e.orig.as_str(), e.resp.as_str()),
        ("10.0.0.1:51234", "10.0.0.2:80")
    );
    assert_eq!(e.handshake.as_ref().unwrap().outcome, "midstream");
    assert!(e.orig_guessed);
    assert_eq!(e.orig_by, "server-port");
    assert_eq!((e.conn_state.as_str(), e.history.as_str()), ("OTH", "^dAD"));
    assert_eq!(e.teardown.as_ref().unwrap().kind, "open");

    // Between two unknown ports the first sender stays orig.
    let (a, b): (Ep, Ep) = (([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 40001));
    let mut c = Cap::default();
    c.tcp(0, b, a, "AP", 7000, 3000, b"hello")
        .tcp(10, a, b, "A", 3000, 7005, b"");
    let e = &c.conns()[0];
    assert_eq!(e.orig, "10.0.0.2:40001");
    assert_eq!(e.orig_by, "first-packet");
    assert_eq!(e.history, "Da");
}

#[test]
fn simultaneous_open_is_one_connection() {
    let (a, b): (Ep, Ep) = (([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 40001));
    let mut c = Cap::default();
    c.tcp(0, a, b, "S", 100, 0, b"")
        .tcp(1, b, a, "S", 500, 0, b"")
        .tcp(2, a, b, "SA", 100, 501, b"")
        .tcp(3, b, a, "SA", 500, 101, b"");
    let cs = c.conns();
    assert_eq!(cs.len(), 1);
    let h = cs[0].handshake.as_ref().unwrap();
    assert_eq!(h.outcome, "simultaneous-open");
    assert!(h.acks_verified);
    assert_eq!((h.orig_isn, h.resp_isn), (Some(100), Some(500)));
}

#[test]
fn anomalies_count_bytes() {
    let mut c = Cap::default();
    handshake(&mut c, 0, 0);
    let d = [b'd'; 100];
    c.tcp(30, CLI, SRV, "AP", 1, 1, &d) // 1..101
        .tcp(31, CLI, SRV, "AP", 201, 1, &d) // 201..301: a hole 101..201
        .tcp(32, SRV, CLI, "A", 1, 101, b"")
        .tcp(33, SRV, CLI, "A", 1, 101, b"") // duplicate ACK, data outstanding
        .tcp(34, CLI, SRV, "AP", 101, 1, &d) // fills the hole: out of order
        .tcp(35, CLI, SRV, "AP", 1, 1, &d) // all seen: retransmission
        .tcp(36, SRV, CLI, "A", 1, 301, b"")
        .tcp(37, CLI, SRV, "AP", 401, 1, &d) // a hole never filled: 301..401
        .tcp(38, SRV, CLI, "A", 1, 501, b"") // acknowledges it
        .tcp(39, CLI, SRV, "A", 500, 1, b""); // keep-alive: one below the next byte
    let e = &c.conns()[0];
    let a = e.anomalies.unwrap();
    assert_eq!(
        (
            a.retransmissions,
            a.out_of_order,
            a.dup_acks,
            a.lost_segments,
            a.keep_alives
        ),
        (1, 1, 1, 2, 1)
    );
    assert_eq!((a.missed_bytes, a.retransmitted_bytes), (100, 100));
    // Zeek: the acknowledged hole is a content gap; the rest was seen before its ACK
    assert_eq!(e.missed_bytes, 100);
    assert_eq!(e.history, "ShADaTG");
}

#[test]
fn table_cap_evicts_and_idle_flows_time_out() {
    let mut c = Cap::default();
    let p = |n: u16| -> Ep { ([10, 0, 0, 1], n) };
    c.udp(0, p(1000), SRV, b"a")
        .udp(1, p(1001), SRV, b"b")
        .udp(2, p(1002), SRV, b"c") // the table holds two: flow 1 is evicted
        .udp(3, p(1001), SRV, b"d")
        .udp(200_000, p(1001), SRV, b"e"); // 200 s later: flow 2 idled out (60 s)
    let cs = c.conns_with(ConnOptions {
        max_connections: 2,
        ..ConnOptions::default()
    });
    let by: Vec<(u64, &str, u64)> = cs
        .iter()
        .map(|e| (e.id, e.finalized_by.as_str(), e.orig_pkts))
        .collect();
    assert_eq!(
        by,
        vec![
            (1, "evicted", 1),
            (2, "idle", 2),
            (3, "idle", 1),
            (4, "end", 1)
        ]
    );
}

#[test]
fn late_ack_within_linger_joins_and_after_it_is_a_new_entry() {
    let build = |late_ms: u64| {
        let mut c = Cap::default();
        handshake(&mut c, 0, 0);
        c.tcp(30, CLI, SRV, "AF", 1, 1, b"")
            .tcp(40, SRV, CLI, "AF", 1, 2, b"")
            .tcp(50, CLI, SRV, "A", 2, 2, b"")
            .tcp(50 + late_ms, CLI, SRV, "A", 2, 2, b""); // a late duplicate ACK
        c.conns()
    };
    let within = build(1000);
    assert_eq!(within.len(), 1);
    assert_eq!(within[0].orig_pkts, 5);
    let after = build(6000);
    assert_eq!(after.len(), 2);
    assert_eq!(after[0].finalized_by, "closed");
    assert_eq!(after[1].handshake.as_ref().unwrap().outcome, "midstream");
}

#[test]
fn views_render_ladders_and_filters() {
    let mut config = Config::for_files(vec![fixture("tcp_reused_tuple.pcap")]);
    config.views.handshakes = true;
    config.views.teardowns = true;
    config.conns.port = Some(5007);
    config.conns.conn = Some(2);
    config.limit = 2;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    netlens::run(&config, &mut out, &mut err).unwrap();
    let s = String::from_utf8(out).unwrap();
    assert!(s.contains("TCP handshakes (port 5007)"), "{s}");
    assert!(s.contains("1 more row(s) not shown"), "{s}");
    assert!(s.contains("SYN seq=1781606336 (x) -"), "{s}");
    assert!(s.contains("ack=1781606337 (x+1 ✓)"), "{s}");
    assert!(
        s.contains("Connection 2 teardown: fin-3way (initiator resp)"),
        "{s}"
    );
    // --host that matches nothing empties the tables
    let mut config = Config::for_files(vec![fixture("tcp_graceful.pcap")]);
    config.views.conns = true;
    config.conns.host = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    let mut out = Vec::new();
    netlens::run(&config, &mut out, &mut err).unwrap();
    let s = String::from_utf8(out).unwrap();
    assert!(s.contains("Connections (host 192.0.2.1): 0"), "{s}");
}

#[test]
fn default_summary_has_the_connection_overview() {
    let config = Config::for_files(vec![fixture("tcp_refused.pcap")]);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let (r, _) = netlens::run(&config, &mut out, &mut err).unwrap();
    let s = String::from_utf8(out).unwrap();
    assert!(s.contains("handshake outcome"), "{s}");
    assert!(s.contains("teardown kind"), "{s}");
    let st = r.connection_stats.unwrap();
    assert_eq!(st.handshake_outcomes.get("refused"), Some(&1));
    assert_eq!(st.teardown_kinds.get("none"), Some(&1));
}

#[test]
fn teardown_oddities_are_named() {
    // orig FINs, keeps sending data after it, then resets; resp answers the FIN with RST.
    let mut c = Cap::default();
    handshake(&mut c, 0, 0);
    c.tcp(30, CLI, SRV, "AF", 1, 1, b"")
        .tcp(31, CLI, SRV, "AP", 2, 1, b"late") // beyond its own FIN
        .tcp(32, SRV, CLI, "AR", 1, 2, b"")
        .tcp(33, CLI, SRV, "R", 6, 0, b"");
    let e = &c.conns()[0];
    let t = e.teardown.as_ref().unwrap();
    assert_eq!(
        (t.kind.as_str(), t.initiator.as_deref()),
        ("rst", Some("resp"))
    );
    assert_eq!(
        t.notes,
        vec!["data-after-fin", "fin-then-rst", "rst-after-fin"]
    );
    assert_eq!(t.frames, vec![4, 6, 7]);
    assert_eq!(e.conn_state, "RSTR");

    // A FIN retransmitted, then acknowledged: one side only.
    let mut c = Cap::default();
    handshake(&mut c, 0, 0);
    c.tcp(30, CLI, SRV, "AF", 1, 1, b"")
        .tcp(230, CLI, SRV, "AF", 1, 1, b"")
        .tcp(231, SRV, CLI, "A", 1, 2, b"");
    let e = &c.conns()[0];
    let t = e.teardown.as_ref().unwrap();
    assert_eq!(
        (t.kind.as_str(), t.initiator.as_deref()),
        ("fin-one-side", Some("orig"))
    );
    assert_eq!(t.notes, vec!["fin-retransmission"]);
    assert_eq!(t.steps[1].what, "fin-retransmission");
    assert_eq!(t.steps[2].ack_ok, Some(true));
    assert!((t.fin_to_last_ack_ms.unwrap() - 201.0).abs() < 1e-6);
    assert_eq!((e.conn_state.as_str(), e.history.as_str()), ("S2", "ShAFa"));
}

#[test]
fn ctx_dir_is_fixed_when_a_connection_opens_with_a_synack() {
    // SYN-ACK from a server on an unlikely port (no port-rule flip), then the client's
    // ACK and data: Zeek flips (^h); ctx marks the SYN-ACK as resp from the start.
    let (cli, srv): (Ep, Ep) = (([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 5001));
    let mut c = Cap::default();
    c.tcp(0, srv, cli, "SA", 500, 101, b"")
        .tcp(1, cli, srv, "A", 101, 501, b"")
        .tcp(2, cli, srv, "AP", 101, 501, b"hi")
        .tcp(3, srv, cli, "A", 501, 103, b"");
    let dir = tempfile::tempdir().unwrap();
    let path = c.write(dir.path());
    let tr = ctx_trace(&path, &ConnOptions::default());
    let dirs: Vec<Dir> = tr.iter().map(|x| x.1.unwrap().dir).collect();
    assert_eq!(dirs, vec![Dir::Resp, Dir::Orig, Dir::Orig, Dir::Resp]);
    let e = &run_with(&path, ConnOptions::default()).connections.unwrap()[0];
    assert_eq!(
        (e.orig.as_str(), e.history.as_str()),
        ("10.0.0.1:40000", "^hADa")
    );
    assert_eq!(e.orig_by, "synack");
    assert_eq!(e.handshake.as_ref().unwrap().outcome, "midstream");
}

// ------------------------------------------------------------------ packed flows

/// Packing idle UDP flows (`cold_after_s`, memory only) changes nothing: with every UDP
/// flow packed at every packet, each report's connections and their statistics, and the
/// per-packet ids and finalizations, are what they are with packing off.
#[test]
fn packed_udp_flows_change_no_result() {
    let packed = ConnOptions {
        cold_after_s: 0.0,
        ..ConnOptions::default()
    };
    let never = ConnOptions {
        cold_after_s: 1e12,
        ..ConnOptions::default()
    };
    let mut udp_flows = 0;
    let files = all_captures();
    for path in &files {
        let Some(a) = try_run_with(path, never.clone()) else {
            assert!(try_run_with(path, packed.clone()).is_none());
            continue;
        };
        let b = run_with(path, packed.clone());
        let json = |r: &Report| {
            serde_json::to_string(&(&r.connections, &r.connection_stats, &r.warnings)).unwrap()
        };
        assert_eq!(json(&a), json(&b), "{}", path.display());
        udp_flows += a
            .connections
            .iter()
            .flatten()
            .filter(|e| e.proto == "udp")
            .count();
        assert_eq!(
            format!("{:?}", ctx_trace(path, &never)),
            format!("{:?}", ctx_trace(path, &packed)),
            "{}",
            path.display()
        );
    }
    // The comparison means something only if UDP flows went through the packed form.
    assert!(
        udp_flows >= 1,
        "{udp_flows} UDP flows in {} captures",
        files.len()
    );
}
