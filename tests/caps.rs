//! Resource caps of the reader and the dissector under floods (issue 9, part 3): each is a
//! synthetic input whose memory stays within the cap and whose report says what happened.
//! The record cap (a 4 GB length field) is in tests/cli.rs, the interface cap in
//! tests/regressions.rs.

mod support;

use netlens::capture::{linktype, RawPacket};
use netlens::dissect::defrag::DefragLimits;
use netlens::dissect::{DissectOptions, Dissector, Transport};

/// An Ethernet + IPv4 fragment carrying `payload` at byte offset `off` of datagram `id`.
fn fragment(id: u16, off: u16, mf: bool, payload: &[u8]) -> Vec<u8> {
    assert_eq!(off % 8, 0);
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
    let total = (20 + payload.len()) as u16;
    let flags_off = (off / 8) | if mf { 0x2000 } else { 0 };
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&id.to_be_bytes());
    f.extend_from_slice(&flags_off.to_be_bytes());
    f.extend_from_slice(&[64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    f.extend_from_slice(payload);
    f
}

fn raw(frame: u64, ts_ns: i64, data: &[u8]) -> RawPacket<'_> {
    RawPacket {
        frame,
        ts_ns,
        wire_len: data.len() as u32,
        data,
        link_type: linktype::ETHERNET,
        port: 0,
        file_index: 0,
        block: None,
    }
}

/// A UDP header + body, the first fragment's payload.
fn udp(body_len: usize) -> Vec<u8> {
    let mut u = vec![0x30, 0x39, 0x00, 0x35];
    u.extend_from_slice(&((8 + body_len) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u
}

#[test]
fn teardrop_of_100000_fragments_of_one_datagram_is_capped() {
    let limits = DefragLimits::default();
    let mut d = Dissector::new(DissectOptions::default());
    let chunk = [0xabu8; 8];
    let n = 100_000u64;
    for i in 0..n {
        // Every fragment of datagram 7, all "more fragments", offsets wrapping in 64 KiB.
        let off = ((i * 8) % 65_528) as u16;
        let f = fragment(7, off, true, &chunk);
        let p = d.dissect(&raw(i + 1, i as i64 * 1000, &f));
        assert!(
            matches!(p.transport, Transport::Fragment),
            "frame {}",
            i + 1
        );
    }
    let s = d.defrag_stats();
    assert_eq!(s.fragments, n);
    assert_eq!(s.reassembled, 0);
    // One datagram may hold max_fragments fragments; each overflow drops it (counted).
    assert!(s.dropped_over_limit >= n / (limits.max_fragments as u64 + 1));
    assert!(s.pending <= 1);
}

#[test]
fn flood_of_distinct_datagrams_is_capped() {
    let limits = DefragLimits::default();
    let mut d = Dissector::new(DissectOptions::default());
    let body = [0x55u8; 1472];
    let n = 100_000u64;
    for i in 0..n {
        let f = fragment(i as u16, 0, true, &body);
        // Source address varies too, so keys never repeat within the flood.
        let mut f = f;
        f[26] = (i >> 16) as u8;
        d.dissect(&raw(i + 1, 0, &f));
    }
    let s = d.defrag_stats();
    assert!(s.pending as usize <= limits.max_datagrams, "{s:?}");
    // Pending bytes are capped: at most max_bytes of fragment payload is held.
    assert!(s.pending as usize * body.len() <= limits.max_bytes, "{s:?}");
    assert_eq!(s.pending + s.dropped_over_limit, n, "{s:?}");
}

#[test]
fn fragments_time_out_in_capture_time() {
    let limits = DefragLimits::default();
    let mut d = Dissector::new(DissectOptions::default());
    let first = fragment(1, 0, true, &[1u8; 16]);
    d.dissect(&raw(1, 0, &first));
    // Another datagram long after the timeout sweeps the first away.
    let late = limits.timeout_ns + 2_000_000_000;
    let other = fragment(2, 0, true, &[2u8; 16]);
    d.dissect(&raw(2, late, &other));
    let s = d.defrag_stats();
    assert_eq!(s.timed_out, 1, "{s:?}");
    assert_eq!(s.pending, 1, "{s:?}");
    // The first datagram's tail now completes nothing.
    let tail = fragment(1, 16, false, &[1u8; 8]);
    let p = d.dissect(&raw(3, late, &tail));
    assert!(matches!(p.transport, Transport::Fragment));
}

#[test]
fn overlapping_fragments_with_conflicting_data_keep_the_first_copy() {
    let mut d = Dissector::new(DissectOptions::default());
    // Datagram: UDP header (8) + 24 body bytes. Fragment A: bytes 0..16 (header + 8 'a');
    // fragment B overlaps bytes 8..24 with 'b'; fragment C: bytes 24..32, the end.
    let mut a = udp(24);
    a.extend_from_slice(&[b'a'; 8]);
    let fa = fragment(9, 0, true, &a);
    let fb = fragment(9, 8, true, &[b'b'; 16]);
    let fc = fragment(9, 24, false, &[b'c'; 8]);
    d.dissect(&raw(1, 0, &fa));
    d.dissect(&raw(2, 1, &fb));
    let p = d.dissect(&raw(3, 2, &fc));
    let Transport::Udp(u) = p.transport else {
        panic!(
            "the last fragment completes the datagram: {:?}",
            p.transport
        );
    };
    assert_eq!(p.reassembled_from, &[1, 2, 3]);
    let mut want = vec![b'a'; 8];
    want.extend_from_slice(&[b'b'; 8]);
    want.extend_from_slice(&[b'c'; 8]);
    assert_eq!(
        u.payload,
        &want[..],
        "first copy kept where A and B overlap"
    );
    assert_eq!(d.defrag_stats().conflicting_overlaps, 1);
}

#[test]
fn the_report_says_what_the_fragment_caps_did() {
    // Through the whole pipeline: a pcap of a 1,000-fragment teardrop.
    let mut pcap = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    pcap.extend_from_slice(&65535u32.to_le_bytes());
    pcap.extend_from_slice(&1u32.to_le_bytes());
    let n = 1000u32;
    for i in 0..n {
        let f = fragment(3, ((i * 8) % 65_528) as u16, true, &[0u8; 8]);
        pcap.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        pcap.extend_from_slice(&i.to_le_bytes());
        pcap.extend_from_slice(&(f.len() as u32).to_le_bytes());
        pcap.extend_from_slice(&(f.len() as u32).to_le_bytes());
        pcap.extend_from_slice(&f);
    }
    let file = netlens::capture::file::CaptureFile::from_reader(
        Box::new(std::io::Cursor::new(pcap)),
        "teardrop.pcap".into(),
        0,
        netlens::capture::file::DEFAULT_MAX_RECORD,
    )
    .expect("pcap header");
    let mut config = netlens::Config::for_files(vec![std::path::PathBuf::from("teardrop.pcap")]);
    config.views = netlens::Views::all();
    let mut out = Vec::new();
    let mut err = Vec::new();
    let (report, _) =
        netlens::pipeline::run_captures(&config, vec![file], &mut out, &mut err).expect("runs");
    let s = report.stats.ipv4_defrag;
    assert_eq!(s.fragments, u64::from(n));
    assert!(s.dropped_over_limit > 0, "{s:?}");
    let issues = &report.stats.dissect_issues;
    assert!(
        issues.contains_key("ipv4: too many fragments for one IPv4 datagram"),
        "{issues:?}"
    );
    assert_eq!(
        report.stats.by_protocol.get("ip_fragment"),
        Some(&u64::from(n))
    );
}
