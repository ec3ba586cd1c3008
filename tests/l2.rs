//! Layer-2 analyzers (`mac_table`, `arp`) against independent facts.
//!
//! - Real traffic: `fixtures/arp_bridge.pcap` (one capture on a Linux bridge) and
//!   `fixtures/arp_bridge_ports.pcapng` (the same kind of bridge captured at each of its four
//!   ports) are checked against the kernel bridge's own table (`*.fdb.txt`, `bridge fdb
//!   show`), the kernel's own flood/forward decision for every frame
//!   (`arp_bridge_ports.egress.json`: which ports each frame left by), tshark's ARP fields
//!   (`*.tshark_arp.tsv`) and the tshark-derived facts of `fixtures/programs/pcap_facts.py`
//!   (`*.facts.json`). See fixtures/README.md.
//! - Synthetic captures built here with etherparse and pcap-file, one behaviour each:
//!   gratuitous ARP and probes, an IP conflict, retransmitted/unanswered requests, a MAC
//!   moving between ports (pcapng, two interfaces) and between VLANs, aging, a full table,
//!   a Linux cooked capture.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use etherparse::{ArpEthIpv4Packet, ArpOperation, PacketBuilder, VlanId};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
use pcap_file::pcapng::{PcapNgBlock, PcapNgWriter};
use pcap_file::DataLink;
use serde_json::Value;

use netlens::capture::file::{CaptureFile, DEFAULT_MAX_RECORD};
use netlens::capture::Next;
use netlens::dissect::{DissectOptions, Dissector};
use netlens::report::l2::{ArpSection, MacEntry, MacTable};
use netlens::report::Report;
use netlens::{Config, Views};

const BCAST: [u8; 6] = [0xff; 6];
const ZERO: [u8; 6] = [0; 6];
const A: [u8; 6] = [0x00, 0x00, 0x0c, 0x00, 0x00, 0x0a];
const B: [u8; 6] = [0x08, 0x00, 0x27, 0x00, 0x00, 0x0b];
const C: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x0c];
const D: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x0d];
const T0: f64 = 1_700_000_000.0;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn mac(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Runs netlens with the MAC-table and ARP views on `files`.
fn run_l2(files: Vec<PathBuf>, tweak: impl FnOnce(&mut Config)) -> Report {
    let mut c = Config::for_files(files);
    c.views = Views {
        mac_table: true,
        arp: true,
        ..Views::default()
    };
    c.quiet = true;
    tweak(&mut c);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let (report, _) = netlens::run(&c, &mut out, &mut err).expect("netlens run");
    // The views must render whatever the report holds.
    let text = String::from_utf8(out).expect("utf-8 output");
    assert!(text.contains("MAC learning table"), "{text}");
    report
}

fn mac_table(r: &Report) -> &MacTable {
    r.mac_table.as_ref().expect("mac_table section")
}

fn arp(r: &Report) -> &ArpSection {
    r.arp.as_ref().expect("arp section")
}

/// Frames of the unsolicited ARP replies.
fn unsolicited(a: &ArpSection) -> Vec<u64> {
    a.unsolicited_replies.iter().map(|u| u.frame).collect()
}

fn entry<'a>(m: &'a MacTable, mac: &str) -> &'a MacEntry {
    m.entries
        .iter()
        .find(|e| e.mac == mac)
        .unwrap_or_else(|| panic!("no entry for {mac}"))
}

// ------------------------------------------------------------------ frame builders

#[derive(Clone)]
struct Frame {
    t: f64,
    iface: u32,
    data: Vec<u8>,
}

fn at(t: f64, data: Vec<u8>) -> Frame {
    Frame { t, iface: 0, data }
}

fn on(iface: u32, t: f64, data: Vec<u8>) -> Frame {
    Frame { t, iface, data }
}

#[allow(clippy::too_many_arguments)]
fn arp_frame(
    src: [u8; 6],
    dst: [u8; 6],
    vlan: Option<u16>,
    op: u16,
    sha: [u8; 6],
    spa: [u8; 4],
    tha: [u8; 6],
    tpa: [u8; 4],
) -> Vec<u8> {
    let pkt = ArpEthIpv4Packet {
        operation: ArpOperation(op),
        sender_mac: sha,
        sender_ipv4: spa,
        target_mac: tha,
        target_ipv4: tpa,
    };
    let mut v = Vec::new();
    let b = PacketBuilder::ethernet2(src, dst);
    match vlan {
        Some(id) => b
            .single_vlan(VlanId::try_new(id).unwrap())
            .arp(pkt.into())
            .write(&mut v)
            .unwrap(),
        None => b.arp(pkt.into()).write(&mut v).unwrap(),
    }
    v
}

/// A UDP datagram from `src` to `dst` (MACs), optionally tagged.
fn udp_frame(src: [u8; 6], dst: [u8; 6], vlan: Option<u16>, ip: [u8; 4]) -> Vec<u8> {
    let mut v = Vec::new();
    let b = PacketBuilder::ethernet2(src, dst);
    match vlan {
        Some(id) => b
            .single_vlan(VlanId::try_new(id).unwrap())
            .ipv4(ip, [10, 0, 0, 254], 64)
            .udp(1000, 2000)
            .write(&mut v, b"hello")
            .unwrap(),
        None => b
            .ipv4(ip, [10, 0, 0, 254], 64)
            .udp(1000, 2000)
            .write(&mut v, b"hello")
            .unwrap(),
    }
    v
}

fn dur(t: f64) -> Duration {
    Duration::from_nanos((t * 1e9).round() as u64)
}

/// A pcapng file with `ifaces` Ethernet interfaces.
fn write_pcapng(path: &Path, ifaces: u32, frames: &[Frame]) {
    let mut w = PcapNgWriter::new(File::create(path).unwrap()).unwrap();
    for _ in 0..ifaces {
        w.write_block(
            &InterfaceDescriptionBlock {
                linktype: DataLink::ETHERNET,
                snaplen: 0xffff,
                options: vec![],
            }
            .into_block(),
        )
        .unwrap();
    }
    for f in frames {
        w.write_block(
            &EnhancedPacketBlock {
                interface_id: f.iface,
                timestamp: dur(f.t),
                original_len: f.data.len() as u32,
                data: Cow::Borrowed(&f.data),
                options: vec![],
            }
            .into_block(),
        )
        .unwrap();
    }
}

fn write_pcap(path: &Path, datalink: DataLink, frames: &[Frame]) {
    let header = PcapHeader {
        datalink,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(File::create(path).unwrap(), header).unwrap();
    for f in frames {
        w.write_packet(&PcapPacket::new(dur(f.t), f.data.len() as u32, &f.data))
            .unwrap();
    }
}

fn synthetic(frames: &[Frame], tweak: impl FnOnce(&mut Config)) -> Report {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l2.pcap");
    write_pcap(&path, DataLink::ETHERNET, frames);
    run_l2(vec![path], tweak)
}

// ------------------------------------------------------------------ synthetic cases

#[test]
fn gratuitous_arp_and_rfc5227_probes() {
    let ip1 = [10, 0, 0, 1];
    let r = synthetic(
        &[
            // A announces 10.0.0.1 (request, sender = target), then a gratuitous reply.
            at(T0, arp_frame(A, BCAST, None, 1, A, ip1, ZERO, ip1)),
            at(T0 + 0.1, arp_frame(A, BCAST, None, 2, A, ip1, BCAST, ip1)),
            // B probes 10.0.0.1; A defends it with a reply to 0.0.0.0.
            at(T0 + 0.2, arp_frame(B, BCAST, None, 1, B, [0; 4], ZERO, ip1)),
            at(T0 + 0.201, arp_frame(A, B, None, 2, A, ip1, B, [0; 4])),
            // C probes a free address: nobody answers.
            at(
                T0 + 0.3,
                arp_frame(C, BCAST, None, 1, C, [0; 4], ZERO, [10, 0, 0, 9]),
            ),
        ],
        |_| {},
    );
    let a = arp(&r);
    let g: Vec<(u64, &str, &str)> = a
        .gratuitous
        .iter()
        .map(|g| (g.frame, g.kind.as_str(), g.ip.as_str()))
        .collect();
    assert_eq!(
        g,
        vec![(1, "announcement", "10.0.0.1"), (2, "reply", "10.0.0.1")]
    );
    assert_eq!(a.probes.len(), 2);
    assert_eq!(
        (a.probes[0].frame, a.probes[0].ip.as_str()),
        (3, "10.0.0.1")
    );
    assert_eq!(a.probes[0].reply_frame, Some(4));
    assert_eq!(a.probes[0].defender_mac.as_deref(), Some(mac(A).as_str()));
    assert_eq!((a.probes[1].frame, a.probes[1].reply_frame), (5, None));
    // Probes claim nothing: the table holds A's binding only, from frames 1, 2 and 4.
    assert_eq!(a.table.len(), 1);
    assert_eq!(
        (a.table[0].ip.as_str(), a.table[0].mac.as_str()),
        ("10.0.0.1", mac(A).as_str())
    );
    assert_eq!(
        (
            a.table[0].first_frame,
            a.table[0].last_frame,
            a.table[0].packets
        ),
        (1, 4, 3)
    );
    assert!(a.exchanges.is_empty() && a.conflicts.is_empty());
    assert!(a.unsolicited_replies.is_empty());
    let t = &a.totals;
    assert_eq!(
        (
            t.requests,
            t.replies,
            t.gratuitous,
            t.announcements,
            t.probes
        ),
        (3, 2, 2, 1, 2)
    );
}

#[test]
fn ip_conflict_lists_each_claimant_and_frame_per_vlan() {
    let (ip1, ip2) = ([10, 0, 0, 1], [10, 0, 0, 2]);
    let r = synthetic(
        &[
            at(T0, arp_frame(A, BCAST, None, 1, A, ip1, ZERO, ip2)),
            at(T0 + 0.002, arp_frame(B, A, None, 2, B, ip2, A, ip1)),
            // C claims B's address, then B claims it back: the IP flaps.
            at(T0 + 1.0, arp_frame(C, BCAST, None, 1, C, ip2, ZERO, ip2)),
            at(T0 + 2.0, arp_frame(B, BCAST, None, 1, B, ip2, ZERO, ip2)),
            // The same address on VLAN 20 is another host, not a conflict.
            at(
                T0 + 3.0,
                arp_frame(D, BCAST, Some(20), 1, D, ip2, ZERO, ip2),
            ),
        ],
        |_| {},
    );
    let a = arp(&r);
    assert_eq!(a.exchanges.len(), 1);
    let x = &a.exchanges[0];
    assert_eq!((x.request_frame, x.reply_frame), (1, Some(2)));
    assert_eq!(x.answer_mac.as_deref(), Some(mac(B).as_str()));
    assert!((x.latency_ms.unwrap() - 2.0).abs() < 1e-6, "{x:?}");
    assert_eq!(a.conflicts.len(), 1);
    let c = &a.conflicts[0];
    assert_eq!((c.ip.as_str(), c.vlan), ("10.0.0.2", None));
    assert_eq!(c.macs, vec![mac(B), mac(C)]);
    assert_eq!(c.frames, vec![2, 3, 4]);
    assert_eq!(c.changes, 2);
    // Bindings: one row per (vlan, ip, mac).
    let rows: BTreeSet<(String, String, Option<u16>)> = a
        .table
        .iter()
        .map(|b| (b.ip.clone(), b.mac.clone(), b.vlan))
        .collect();
    assert_eq!(rows.len(), 4);
    assert!(rows.contains(&("10.0.0.2".into(), mac(D), Some(20))));
    assert_eq!(a.totals.conflicts, 1);
}

#[test]
fn a_reply_stamped_before_its_request_does_not_answer_it() {
    // Time goes back 10 s (merged captures, or one file given twice): the reply is not
    // the answer to the request with the same addresses that waits from later. A step
    // back of 0.2 s (clock skew between interfaces) still answers.
    let (a_ip, x_ip, y_ip) = ([10, 0, 0, 1], [10, 0, 0, 9], [10, 0, 0, 8]);
    let r = synthetic(
        &[
            at(T0 + 10.0, arp_frame(A, BCAST, None, 1, A, a_ip, ZERO, x_ip)),
            at(T0, arp_frame(B, A, None, 2, B, x_ip, A, a_ip)),
            at(T0 + 0.5, arp_frame(A, BCAST, None, 1, A, a_ip, ZERO, y_ip)),
            at(T0 + 0.3, arp_frame(C, A, None, 2, C, y_ip, A, a_ip)),
        ],
        |_| {},
    );
    let a = arp(&r);
    let ex: Vec<(u64, Option<u64>)> = a
        .exchanges
        .iter()
        .map(|x| (x.request_frame, x.reply_frame))
        .collect();
    assert_eq!(ex, vec![(1, None), (3, Some(4))]);
    assert!((a.exchanges[1].latency_ms.unwrap() + 200.0).abs() < 1e-3);
    assert_eq!(a.unanswered, vec![1]);
    assert_eq!(unsolicited(a), vec![2]);
}

#[test]
fn retransmitted_unanswered_and_late_replies() {
    let (a_ip, x_ip) = ([10, 0, 0, 1], [10, 0, 0, 9]);
    let r = synthetic(
        &[
            at(T0, arp_frame(A, BCAST, None, 1, A, a_ip, ZERO, x_ip)),
            at(T0 + 1.0, arp_frame(A, BCAST, None, 1, A, a_ip, ZERO, x_ip)),
            at(T0 + 1.5, arp_frame(B, A, None, 2, B, x_ip, A, a_ip)),
            // A unicast refresh nobody answers in time: the reply 20 s later is unsolicited.
            at(
                T0 + 20.0,
                arp_frame(A, C, None, 1, A, a_ip, C, [10, 0, 0, 7]),
            ),
            at(
                T0 + 40.0,
                arp_frame(C, A, None, 2, C, [10, 0, 0, 7], A, a_ip),
            ),
        ],
        |_| {},
    );
    let a = arp(&r);
    let ex: Vec<(u64, Option<u64>, bool, bool)> = a
        .exchanges
        .iter()
        .map(|x| (x.request_frame, x.reply_frame, x.retransmission, x.unicast))
        .collect();
    assert_eq!(
        ex,
        vec![
            (1, Some(3), false, false),
            (2, Some(3), true, false),
            (4, None, false, true)
        ]
    );
    assert!((a.exchanges[0].latency_ms.unwrap() - 1500.0).abs() < 1e-3);
    assert!((a.exchanges[1].latency_ms.unwrap() - 500.0).abs() < 1e-3);
    assert_eq!(a.unanswered, vec![4]);
    assert_eq!(unsolicited(a), vec![5]);
    assert_eq!((a.totals.answered, a.totals.unanswered), (2, 1));
}

#[test]
fn mac_moving_between_ports_of_a_two_interface_pcapng() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ports.pcapng");
    write_pcapng(
        &path,
        2,
        &[
            on(0, T0, udp_frame(A, BCAST, None, [10, 0, 0, 1])),
            on(1, T0 + 1.0, udp_frame(B, A, None, [10, 0, 0, 2])),
            // A now speaks on port 1: it moved; B is known on port 1 (same port).
            on(1, T0 + 2.0, udp_frame(A, B, None, [10, 0, 0, 1])),
            on(0, T0 + 3.0, udp_frame(C, A, None, [10, 0, 0, 3])),
        ],
    );
    let r = run_l2(vec![path], |_| {});
    let m = mac_table(&r);
    let a = entry(m, &mac(A));
    assert_eq!(a.port, 1);
    assert_eq!((a.learned_frame, a.learned_port), (Some(1), Some(0)));
    assert_eq!(a.moves.len(), 1);
    let mv = &a.moves[0];
    assert_eq!(
        (mv.frame, mv.kind.as_str(), mv.from_port, mv.to_port),
        (3, "port", 0, 1)
    );
    assert_eq!((a.rx_frames, a.first_forwarded_frame), (2, Some(2)));
    let t = &m.totals;
    assert_eq!(
        (
            t.frames,
            t.broadcast,
            t.unicast_forwarded,
            t.forwarded_same_port,
            t.unknown_unicast_flooded,
            t.moves
        ),
        (4, 1, 3, 1, 0, 1)
    );
    let ports: Vec<(u32, u64)> = m.ports.iter().map(|p| (p.port, p.frames)).collect();
    assert_eq!(ports, vec![(0, 2), (1, 2)]);
}

#[test]
fn mac_moving_between_vlans_and_independent_vlan_learning() {
    let r = synthetic(
        &[
            at(T0, udp_frame(A, BCAST, Some(10), [10, 0, 0, 1])),
            at(T0 + 1.0, udp_frame(B, A, Some(10), [10, 0, 0, 2])),
            at(T0 + 2.0, udp_frame(A, BCAST, Some(20), [10, 0, 0, 1])),
            // A is unknown on VLAN 30 (flooded) and known on VLAN 20 (forwarded).
            at(T0 + 3.0, udp_frame(C, A, Some(30), [10, 0, 0, 3])),
            at(T0 + 4.0, udp_frame(D, A, Some(20), [10, 0, 0, 4])),
        ],
        |_| {},
    );
    let m = mac_table(&r);
    let a = entry(m, &mac(A));
    assert_eq!(a.vlans, vec![10, 20]);
    assert!(!a.untagged);
    assert_eq!(a.moves.len(), 1);
    let mv = &a.moves[0];
    assert_eq!(
        (mv.frame, mv.kind.as_str(), mv.from_vlan, mv.to_vlan),
        (3, "vlan", Some(10), Some(20))
    );
    assert_eq!(a.learned_count, 2);
    assert_eq!(
        (a.unknown_unicast_floods, a.first_forwarded_frame),
        (1, Some(2))
    );
    let t = &m.totals;
    assert_eq!(
        (t.broadcast, t.unicast_forwarded, t.unknown_unicast_flooded),
        (2, 2, 1)
    );
}

#[test]
fn aging_floods_to_expired_entries_and_reports_them() {
    let frames = [
        at(T0, udp_frame(A, BCAST, None, [10, 0, 0, 1])),
        at(T0 + 100.0, udp_frame(B, A, None, [10, 0, 0, 2])),
        // 400.5 s: A (last seen at 0) and B (at 100) have both aged out: flooded.
        at(T0 + 400.5, udp_frame(B, A, None, [10, 0, 0, 2])),
        at(T0 + 401.0, udp_frame(A, B, None, [10, 0, 0, 1])),
        // Exactly 300 s after A's last frame: not expired yet (aging is "more than").
        at(T0 + 701.0, udp_frame(B, A, None, [10, 0, 0, 2])),
    ];
    let r = synthetic(&frames, |_| {});
    let m = mac_table(&r);
    assert_eq!(m.aging_s, 300);
    let t = &m.totals;
    assert_eq!(
        (
            t.broadcast,
            t.unknown_unicast_flooded,
            t.unicast_forwarded,
            t.aged_out
        ),
        (1, 1, 3, 3)
    );
    let a = entry(m, &mac(A));
    assert_eq!(a.aged.len(), 1);
    assert_eq!(
        (a.aged[0].last_frame, a.aged[0].relearned_frame),
        (1, Some(4))
    );
    assert!((a.aged[0].expired_ts - (T0 + 300.0)).abs() < 1e-6);
    assert_eq!(a.unknown_unicast_floods, 1);
    let b = entry(m, &mac(B));
    let aged: Vec<(u64, Option<u64>)> = b
        .aged
        .iter()
        .map(|x| (x.last_frame, x.relearned_frame))
        .collect();
    assert_eq!(aged, vec![(2, Some(3)), (3, Some(5))]);
    assert!(a.in_table && b.in_table);

    // --aging 0: entries never expire, every unicast is forwarded.
    let r = synthetic(&frames, |c| c.l2.aging_s = 0);
    let t = &mac_table(&r).totals;
    assert_eq!((t.unicast_forwarded, t.aged_out), (4, 0));
    // --aging 60: the 100 s gap ages A before frame 2 as well.
    let r = synthetic(&frames, |c| c.l2.aging_s = 60);
    let t = &mac_table(&r).totals;
    assert_eq!((t.unknown_unicast_flooded, t.unicast_forwarded), (3, 1));
}

#[test]
fn source_is_learned_before_the_destination_is_looked_up() {
    // A loopback test frame (source = destination) on a fresh table: learned, then found.
    let r = synthetic(&[at(T0, udp_frame(A, A, None, [10, 0, 0, 1]))], |_| {});
    let m = mac_table(&r);
    assert_eq!(
        (m.totals.unicast_forwarded, m.totals.unknown_unicast_flooded),
        (1, 0)
    );
    let a = entry(m, &mac(A));
    assert_eq!(
        (a.frames, a.rx_frames, a.first_forwarded_frame),
        (1, 1, Some(1))
    );
}

#[test]
fn full_table_refuses_learning_and_counts_it() {
    let r = synthetic(
        &[
            at(T0, udp_frame(A, BCAST, None, [10, 0, 0, 1])),
            at(T0 + 1.0, udp_frame(B, BCAST, None, [10, 0, 0, 2])),
            at(T0 + 2.0, udp_frame(C, BCAST, None, [10, 0, 0, 3])),
            at(T0 + 3.0, udp_frame(A, C, None, [10, 0, 0, 1])),
        ],
        |c| c.l2.mac_table_size = 2,
    );
    let m = mac_table(&r);
    assert_eq!(m.table_size, 2);
    assert_eq!(m.not_learned.table_full, 1);
    let c = entry(m, &mac(C));
    assert_eq!((c.learned_frame, c.in_table), (None, false));
    assert_eq!(c.unknown_unicast_floods, 1);
    assert_eq!(m.totals.learned, 2);

    // A one-entry table with 10 s aging: B is refused while A's entry lives, learned once
    // A's entry has expired (and been swept).
    let r = synthetic(
        &[
            at(T0, udp_frame(A, BCAST, None, [10, 0, 0, 1])),
            at(T0 + 5.0, udp_frame(B, BCAST, None, [10, 0, 0, 2])),
            at(T0 + 20.0, udp_frame(B, BCAST, None, [10, 0, 0, 2])),
            // A again: the table slot A's entry used now holds B's, so A is refused (the
            // table is full) and the frame to B is forwarded on B's entry.
            at(T0 + 21.0, udp_frame(A, B, None, [10, 0, 0, 1])),
        ],
        |c| {
            c.l2.mac_table_size = 1;
            c.l2.aging_s = 10;
        },
    );
    let m = mac_table(&r);
    assert_eq!(m.not_learned.table_full, 2);
    assert_eq!(entry(m, &mac(B)).learned_frame, Some(3));
    assert_eq!(entry(m, &mac(B)).first_forwarded_frame, Some(4));
    assert!(!entry(m, &mac(A)).in_table);
    assert_eq!(m.totals.aged_out, 1);
    assert_eq!(m.totals.unicast_forwarded, 1);
}

#[test]
fn arp_pending_cap_is_counted() {
    let a_ip = [10, 0, 0, 1];
    let r = synthetic(
        &[
            at(
                T0,
                arp_frame(A, BCAST, None, 1, A, a_ip, ZERO, [10, 0, 0, 2]),
            ),
            at(
                T0 + 0.1,
                arp_frame(A, BCAST, None, 1, A, a_ip, ZERO, [10, 0, 0, 3]),
            ),
            at(
                T0 + 0.2,
                arp_frame(A, BCAST, None, 1, A, a_ip, ZERO, [10, 0, 0, 4]),
            ),
            at(
                T0 + 0.3,
                arp_frame(B, A, None, 2, B, [10, 0, 0, 4], A, a_ip),
            ),
            at(
                T0 + 0.4,
                arp_frame(C, A, None, 2, C, [10, 0, 0, 2], A, a_ip),
            ),
        ],
        |c| c.l2.arp_max_pending = 2,
    );
    let a = arp(&r);
    assert_eq!(a.limits.pending_dropped, 1);
    assert_eq!(a.exchanges.len(), 3);
    assert_eq!(a.exchanges[0].reply_frame, Some(5));
    assert_eq!(
        a.exchanges[2].reply_frame, None,
        "not kept waiting: not matched"
    );
    assert_eq!(a.unsolicited_replies.len(), 1);
    assert_eq!(a.unanswered, vec![2, 3]);
}

#[test]
fn arp_table_and_list_caps_are_counted_and_said() {
    // Five hosts announce their addresses (gratuitous requests): two bindings fit the
    // table, three announcements fit the list; the totals stay exact.
    let hosts = [A, B, C, D, [0x02, 0, 0, 0, 0, 0x0e]];
    let frames: Vec<Frame> = hosts
        .iter()
        .enumerate()
        .map(|(i, &h)| {
            let ip = [10, 0, 0, i as u8 + 1];
            at(T0 + i as f64, arp_frame(h, BCAST, None, 1, h, ip, ZERO, ip))
        })
        .collect();
    let r = synthetic(&frames, |c| {
        c.l2.arp_max_bindings = 2;
        c.l2.arp_max_list = 3;
    });
    let a = arp(&r);
    assert_eq!((a.limits.max_bindings, a.limits.max_list), (2, 3));
    assert_eq!(a.table.len(), 2);
    assert_eq!(a.limits.bindings_dropped, 3);
    assert_eq!(a.gratuitous.len(), 3);
    assert_eq!(a.totals.gratuitous, 5);
    assert_eq!(a.limits.list_dropped, 2);
    let w = r
        .warnings
        .iter()
        .find(|w| w.kind == "arp-caps")
        .expect("a warning says the ARP caps were reached");
    assert!(
        w.message.contains("3 binding(s)") && w.message.contains("--arp-table-size"),
        "{}",
        w.message
    );
    assert!(
        w.message.contains("2 entr(ies)") && w.message.contains("--arp-max-list"),
        "{}",
        w.message
    );

    // Under the caps: no warning.
    let r = synthetic(&frames, |_| {});
    assert_eq!(
        arp(&r).limits.bindings_dropped + arp(&r).limits.list_dropped,
        0
    );
    assert!(r.warnings.iter().all(|w| w.kind != "arp-caps"));
}

#[test]
fn mac_row_cap_counts_untracked_frames_and_says_so() {
    let r = synthetic(
        &[
            at(T0, udp_frame(A, BCAST, None, [10, 0, 0, 1])),
            at(T0 + 1.0, udp_frame(B, BCAST, None, [10, 0, 0, 2])),
            // A third source is past the cap: counted, not tracked.
            at(T0 + 2.0, udp_frame(C, A, None, [10, 0, 0, 3])),
            // Destination-only addresses: BCAST and C fill their list, D is past it.
            at(T0 + 3.0, udp_frame(A, C, None, [10, 0, 0, 1])),
            at(T0 + 4.0, udp_frame(A, D, None, [10, 0, 0, 1])),
        ],
        |c| c.l2.max_macs = 2,
    );
    let m = mac_table(&r);
    let rows: Vec<String> = m.entries.iter().map(|e| e.mac.clone()).collect();
    assert_eq!(rows, vec![mac(A), mac(B)]);
    assert_eq!(m.not_learned.macs_untracked, 1);
    assert_eq!(m.destinations.len(), 2);
    assert_eq!(m.not_learned.destinations_untracked, 1);
    let w = r
        .warnings
        .iter()
        .find(|w| w.kind == "mac-rows-cap")
        .expect("a warning says the MAC cap was reached");
    assert!(w.message.contains("--max-macs"), "{}", w.message);
    assert!(
        w.message
            .contains("1 frame(s) from untracked sources and 1 to untracked"),
        "{}",
        w.message
    );
}

#[test]
fn cooked_capture_learns_sources_and_invents_no_destination() {
    // Linux cooked (SLL) header: packet type, ARPHRD, address length, address (8), protocol.
    fn sll(packet_type: u16, hatype: u16, addr: [u8; 6], proto: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&packet_type.to_be_bytes());
        v.extend_from_slice(&hatype.to_be_bytes());
        v.extend_from_slice(&6u16.to_be_bytes());
        v.extend_from_slice(&addr);
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(&proto.to_be_bytes());
        v.extend_from_slice(payload);
        v
    }
    let req = arp_frame(A, BCAST, None, 1, A, [10, 0, 0, 1], ZERO, [10, 0, 0, 2]);
    let rep = arp_frame(B, A, None, 2, B, [10, 0, 0, 2], A, [10, 0, 0, 1]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sll.pcap");
    write_pcap(
        &path,
        DataLink::LINUX_SLL,
        &[
            at(T0, sll(4, 1, A, 0x0806, &req[14..])),
            at(T0 + 0.001, sll(0, 1, B, 0x0806, &rep[14..])),
            // Loopback: an all-zero "address", nothing to learn.
            at(
                T0 + 0.002,
                sll(
                    0,
                    772,
                    ZERO,
                    0x0800,
                    &udp_frame(A, B, None, [127, 0, 0, 1])[14..],
                ),
            ),
        ],
    );
    let r = run_l2(vec![path], |_| {});
    let m = mac_table(&r);
    assert_eq!(m.totals.frames, 0, "no Ethernet frame, no switch decision");
    assert_eq!(m.not_learned.cooked_frames, 3);
    assert_eq!(m.not_learned.cooked_without_source_mac, 1);
    assert!(m.destinations.is_empty());
    let macs: Vec<&str> = m.entries.iter().map(|e| e.mac.as_str()).collect();
    assert_eq!(macs, vec![mac(A), mac(B)]);
    assert!(m
        .entries
        .iter()
        .all(|e| e.cooked_frames == 1 && e.rx_frames == 0));
    let a = arp(&r);
    assert_eq!(a.exchanges.len(), 1);
    assert_eq!(a.exchanges[0].reply_frame, Some(2));
}

#[test]
fn vendor_and_address_bits() {
    let r = synthetic(
        &[
            at(T0, udp_frame(A, BCAST, None, [10, 0, 0, 1])),
            at(
                T0 + 1.0,
                udp_frame(C, [0x01, 0, 0x5e, 0, 0, 1], None, [10, 0, 0, 3]),
            ),
            // A group address as source: reported, never learned.
            at(
                T0 + 2.0,
                udp_frame([5, 4, 3, 2, 1, 0], A, None, [10, 0, 0, 5]),
            ),
        ],
        |_| {},
    );
    let m = mac_table(&r);
    let a = entry(m, &mac(A));
    assert!(a.vendor.as_deref().unwrap_or("").contains("Cisco"), "{a:?}");
    assert!(!a.locally_administered && !a.group);
    let c = entry(m, &mac(C));
    assert!(c.locally_administered && c.vendor.is_none());
    let kinds: Vec<(&str, &str)> = m
        .destinations
        .iter()
        .map(|d| (d.mac.as_str(), d.kind.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("ff:ff:ff:ff:ff:ff", "broadcast"),
            ("01:00:5e:00:00:01", "multicast")
        ]
    );
    assert_eq!(m.totals.multicast_flooded, 1);
    let g = entry(m, "05:04:03:02:01:00");
    assert!(g.group && g.learned_frame.is_none() && !g.in_table);
    assert_eq!((g.frames, g.ips.clone()), (1, vec!["10.0.0.5".to_string()]));
    assert_eq!(m.not_learned.invalid_source, 1);
    assert_eq!(m.totals.learned, 2);
}

#[test]
fn json_sections_round_trip_and_default_views_include_arp() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out/report.json");
    let r = run_l2(vec![fixture("arp_bridge_ports.pcapng")], |c| {
        c.json = Some(json.clone());
    });
    let text = std::fs::read_to_string(&json).unwrap();
    let back: Report = serde_json::from_str(&text).expect("report deserialises strictly");
    assert!(back.mac_table.is_some() && back.arp.is_some());
    // serde_json's default float parser may differ in the last bit: compare numbers with
    // a relative tolerance, everything else exactly.
    let v: Value = serde_json::from_str(&text).unwrap();
    same_json(
        &serde_json::to_value(&r.mac_table).unwrap(),
        &v["mac_table"],
        "mac_table",
    );
    same_json(&serde_json::to_value(&r.arp).unwrap(), &v["arp"], "arp");
    // Contract names from DESIGN.md.
    for k in [
        "frames",
        "broadcast",
        "multicast_flooded",
        "unknown_unicast_flooded",
        "unicast_forwarded",
        "aged_out",
    ] {
        assert!(v["mac_table"]["totals"][k].is_u64(), "{k}");
    }
    for k in [
        "mac",
        "vendor",
        "port",
        "vlans",
        "ips",
        "learned_frame",
        "first_frame",
        "last_frame",
        "frames",
        "bytes",
        "moves",
    ] {
        assert!(v["mac_table"]["entries"][0].get(k).is_some(), "{k}");
    }
    for k in [
        "request_frame",
        "reply_frame",
        "sender_ip",
        "target_ip",
        "answer_mac",
        "latency_ms",
    ] {
        assert!(v["arp"]["exchanges"][0].get(k).is_some(), "{k}");
    }

    let mut c = Config::for_files(vec![fixture("arp_bridge.pcap")]);
    c.quiet = true;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let (r, _) = netlens::run(&c, &mut out, &mut err).unwrap();
    assert!(r.arp.is_some() && r.mac_table.is_none());
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("ARP table"), "{text}");
    assert!(
        !text.contains("ARP exchanges"),
        "the default shows the table only"
    );
}

fn same_json(a: &Value, b: &Value, path: &str) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(
                (x - y).abs() <= 1e-12 * x.abs().max(1.0),
                "{path}: {x} != {y}"
            );
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{path}");
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                same_json(x, y, &format!("{path}[{i}]"));
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(
                x.keys().collect::<Vec<_>>(),
                y.keys().collect::<Vec<_>>(),
                "{path}"
            );
            for (k, x) in x {
                same_json(x, &y[k], &format!("{path}.{k}"));
            }
        }
        _ => assert_eq!(a, b, "{path}"),
    }
}

// ------------------------------------------------------------------ real traffic

fn facts(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// `bridge fdb show` lines: MAC → port device.
fn kernel_fdb(name: &str) -> BTreeMap<String, String> {
    std::fs::read_to_string(fixture(name))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dev = f.iter().position(|&x| x == "dev")?;
            Some((f[0].to_string(), f.get(dev + 1)?.to_string()))
        })
        .collect()
}

/// tshark's ARP fields, one map per ARP frame.
fn tshark_arp(name: &str) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    lines
        .map(|l| {
            header
                .iter()
                .zip(l.split('\t').chain(std::iter::repeat("")))
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// Compares exchanges, unanswered requests, gratuitous frames and the table with the
/// tshark-derived facts (pcap_facts.py pairs a request with the next matching reply).
fn check_arp_against_facts(a: &ArpSection, f: &Value) {
    let fa = &f["arp"];
    // pcap_facts counts a probe as an exchange; netlens lists probes apart.
    let mut ours: Vec<Value> = a
        .exchanges
        .iter()
        .map(|x| {
            serde_json::json!({"request_frame": x.request_frame, "reply_frame": x.reply_frame,
                "sender_ip": x.sender_ip, "target_ip": x.target_ip, "answer_mac": x.answer_mac})
        })
        .collect();
    ours.extend(a.probes.iter().map(|p| {
        serde_json::json!({"request_frame": p.frame, "reply_frame": p.reply_frame,
            "sender_ip": "0.0.0.0", "target_ip": p.ip, "answer_mac": p.defender_mac})
    }));
    ours.sort_by_key(|v| v["request_frame"].as_u64());
    assert_eq!(Value::Array(ours), fa["exchanges"]);
    assert_eq!(
        serde_json::to_value(&a.unanswered).unwrap(),
        fa["unanswered_request_frames"]
    );
    let grat: Vec<u64> = a.gratuitous.iter().map(|g| g.frame).collect();
    assert_eq!(
        serde_json::to_value(&grat).unwrap(),
        fa["gratuitous_frames"]
    );
    assert_eq!(a.totals.requests, fa["requests"].as_u64().unwrap());
    assert_eq!(a.totals.replies, fa["replies"].as_u64().unwrap());
    // facts' table keeps the first MAC seen per sender IP (0.0.0.0 apart).
    for (ip, m) in fa["table"].as_object().unwrap() {
        if ip == "0.0.0.0" {
            continue;
        }
        let first = a
            .table
            .iter()
            .filter(|b| &b.ip == ip)
            .min_by_key(|b| b.first_frame)
            .unwrap_or_else(|| panic!("no binding for {ip}"));
        assert_eq!(Some(first.mac.as_str()), m.as_str(), "{ip}");
    }
}

/// Gratuitous, probe and duplicate-address verdicts per frame, as tshark gives them.
fn check_arp_against_tshark(a: &ArpSection, rows: &[BTreeMap<String, String>]) {
    let frames = |k: &str| -> Vec<u64> {
        rows.iter()
            .filter(|r| r[k] == "1")
            .map(|r| r["frame.number"].parse().unwrap())
            .collect()
    };
    let grat: Vec<u64> = a.gratuitous.iter().map(|g| g.frame).collect();
    assert_eq!(grat, frames("arp.isgratuitous"));
    let ann: Vec<u64> = a
        .gratuitous
        .iter()
        .filter(|g| g.kind == "announcement")
        .map(|g| g.frame)
        .collect();
    assert_eq!(ann, frames("arp.isannouncement"));
    let probes: Vec<u64> = a.probes.iter().map(|p| p.frame).collect();
    assert_eq!(probes, frames("arp.isprobe"));
    // tshark flags a frame whose sender IP was used by another MAC, naming the earlier
    // frame: exactly netlens's conflict frames (earlier claimant's last frame, then the new).
    let dups: Vec<(String, Vec<u64>)> = rows
        .iter()
        .filter(|r| !r["arp.duplicate-address-frame"].is_empty())
        .map(|r| {
            (
                r["arp.src.proto_ipv4"].clone(),
                vec![
                    r["arp.duplicate-address-frame"].parse().unwrap(),
                    r["frame.number"].parse().unwrap(),
                ],
            )
        })
        .collect();
    let ours: Vec<(String, Vec<u64>)> = a
        .conflicts
        .iter()
        .map(|c| (c.ip.clone(), c.frames.clone()))
        .collect();
    assert_eq!(ours, dups);
    let requests = rows.iter().filter(|r| r["arp.opcode"] == "1").count() as u64;
    assert_eq!(a.totals.requests, requests);
}

#[test]
fn arp_bridge_matches_kernel_fdb_and_tshark() {
    let r = run_l2(vec![fixture("arp_bridge.pcap")], |_| {});
    let m = mac_table(&r);
    let f = facts("arp_bridge.facts.json");
    // One capture point: every MAC the kernel bridge learned, and no other.
    let ours: BTreeSet<String> = m.entries.iter().map(|e| e.mac.clone()).collect();
    let kernel: BTreeSet<String> = kernel_fdb("arp_bridge.fdb.txt").into_keys().collect();
    assert_eq!(ours, kernel);
    for (k, v) in f["mac_table"]["learned"].as_object().unwrap() {
        assert_eq!(entry(m, k).learned_frame, v.as_u64(), "{k}");
    }
    let t = serde_json::to_value(&m.totals).unwrap();
    for (k, v) in f["mac_table"]["totals"].as_object().unwrap() {
        assert_eq!(&t[k], v, "totals.{k}");
    }
    check_arp_against_facts(arp(&r), &f);
    check_arp_against_tshark(arp(&r), &tshark_arp("arp_bridge.tshark_arp.tsv"));
}

/// Ethernet source and destination of every frame of a capture, by frame number.
fn eth_of(path: &Path) -> Vec<(String, String)> {
    let mut file = CaptureFile::open(path, 0, DEFAULT_MAX_RECORD).unwrap();
    file.begin(0);
    let mut d = Dissector::new(DissectOptions::default());
    let mut out = Vec::new();
    let mut frame = 1;
    while let Next::Packet(raw) = file.next_packet(frame) {
        let p = d.dissect(&raw);
        let (s, t) = p.eth().expect("ethernet");
        out.push((s.to_string(), t.to_string()));
        frame += 1;
    }
    out
}

#[test]
fn arp_bridge_ports_matches_the_kernel_bridge_frame_by_frame() {
    let path = fixture("arp_bridge_ports.pcapng");
    // The bridge was recorded with ageing_time 2 s.
    let r = run_l2(vec![path.clone()], |c| c.l2.aging_s = 2);
    let m = mac_table(&r);
    let eg = facts("arp_bridge_ports.egress.json");
    assert_eq!(eg["unmatched_egress"], 0);
    let eth = eth_of(&path);
    let frames = eg["frames"].as_array().unwrap();
    assert_eq!(frames.len(), eth.len());
    let name_of = |port: u32| {
        r.source
            .interfaces
            .iter()
            .find(|i| i.port == port)
            .and_then(|i| i.name.clone())
            .unwrap()
    };

    // The kernel's decisions: >= 2 egress ports = flooded, 1 = forwarded, 0 = filtered.
    let (mut flooded, mut forwarded, mut filtered) = (0, 0, 0);
    let mut uu_floods: BTreeMap<String, u64> = BTreeMap::new();
    let mut first_fwd: BTreeMap<String, u64> = BTreeMap::new();
    for (f, (_, dst)) in frames.iter().zip(eth.iter()) {
        let out = f["out"].as_array().unwrap().len();
        let n = f["frame"].as_u64().unwrap();
        let unicast = u8::from_str_radix(&dst[..2], 16).unwrap() & 1 == 0;
        match out {
            0 => filtered += 1,
            1 => {
                forwarded += 1;
                first_fwd.entry(dst.clone()).or_insert(n);
            }
            _ => {
                flooded += 1;
                if unicast {
                    *uu_floods.entry(dst.clone()).or_default() += 1;
                }
            }
        }
    }
    let t = &m.totals;
    assert_eq!(
        t.broadcast + t.multicast_flooded + t.unknown_unicast_flooded,
        flooded
    );
    assert_eq!(t.unicast_forwarded - t.forwarded_same_port, forwarded);
    assert_eq!(t.forwarded_same_port, filtered);
    assert!(
        t.unknown_unicast_flooded > 0,
        "the fixture has an aging flood"
    );
    for e in &m.entries {
        assert_eq!(
            e.unknown_unicast_floods,
            uu_floods.get(&e.mac).copied().unwrap_or(0),
            "{}",
            e.mac
        );
        assert_eq!(
            e.first_forwarded_frame,
            first_fwd.get(&e.mac).copied(),
            "{}",
            e.mac
        );
    }

    // Learning: each MAC learned on the port its first frame came in by, moves where its
    // ingress port changed, and at the end exactly the kernel's table, on the same ports.
    let mut seen: BTreeMap<String, Vec<(u64, String)>> = BTreeMap::new();
    for (f, (src, _)) in frames.iter().zip(eth.iter()) {
        let port = f["in"].as_str().unwrap().to_string();
        let v = seen.entry(src.clone()).or_default();
        if v.last().map(|x| &x.1) != Some(&port) {
            v.push((f["frame"].as_u64().unwrap(), port));
        }
    }
    for e in &m.entries {
        let path = &seen[&e.mac];
        assert_eq!(e.learned_frame, Some(path[0].0), "{}", e.mac);
        assert_eq!(name_of(e.learned_port.unwrap()), path[0].1, "{}", e.mac);
        let moves: Vec<(u64, String, String)> = e
            .moves
            .iter()
            .map(|mv| (mv.frame, name_of(mv.from_port), name_of(mv.to_port)))
            .collect();
        let expected: Vec<(u64, String, String)> = path
            .windows(2)
            .map(|w| (w[1].0, w[0].1.clone(), w[1].1.clone()))
            .collect();
        assert_eq!(moves, expected, "{}", e.mac);
    }
    let ours: BTreeMap<String, String> = m
        .entries
        .iter()
        .filter(|e| e.in_table)
        .map(|e| (e.mac.clone(), name_of(e.port)))
        .collect();
    assert_eq!(ours, kernel_fdb("arp_bridge_ports.fdb.txt"));
    assert!(t.aged_out >= 2);

    check_arp_against_facts(arp(&r), &facts("arp_bridge_ports.facts.json"));
    check_arp_against_tshark(arp(&r), &tshark_arp("arp_bridge_ports.tshark_arp.tsv"));
}

/// The terminal views of a real fixture, compared with a reviewed golden file
/// (`NETLENS_UPDATE_GOLDEN=1 cargo test --test l2` rewrites it).
#[test]
fn views_match_golden_output() {
    let r = run_l2(vec![fixture("arp_bridge_ports.pcapng")], |c| {
        c.l2.aging_s = 2
    });
    let mut out = Vec::new();
    netlens::report::l2_view::write_mac_table(&mut out, &r, 0).unwrap();
    netlens::report::l2_view::write_arp(&mut out, &r, 0, true).unwrap();
    let text = String::from_utf8(out).unwrap();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/arp_bridge_ports.l2.txt");
    if std::env::var_os("NETLENS_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, &text).unwrap();
    }
    let want = std::fs::read_to_string(&golden).expect("golden file (NETLENS_UPDATE_GOLDEN=1)");
    assert_eq!(text, want);
}
