//! Several files read in order where capture time goes back when a file begins
//! (`analyze::conns::rewind`): two captures of the same period, or one file given twice.
//! Such a file must be analyzed as if alone, after the ones before it: its packets must
//! not join the earlier file's connections. A small step back (rotated captures) must
//! change nothing.
//!
//! Captures are built with etherparse's PacketBuilder and written with pcap-file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use etherparse::{PacketBuilder, TcpHeader};
use netlens::report::Report;
use netlens::Config;
use pcap_file::pcap::{PcapPacket, PcapWriter};

const CLIENT: [u8; 4] = [10, 0, 0, 1];
const SERVER: [u8; 4] = [10, 0, 0, 2];

fn frame(from: [u8; 4], to: [u8; 4], l4: impl FnOnce(PacketBuilderIp) -> Vec<u8>) -> Vec<u8> {
    l4(
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, from[3]], [2, 0, 0, 0, 0, to[3]])
            .ipv4(from, to, 64),
    )
}

type PacketBuilderIp = etherparse::PacketBuilderStep<etherparse::IpHeaders>;

fn tcp(
    from: [u8; 4],
    to: [u8; 4],
    ports: (u16, u16),
    flags: &str,
    seq: u32,
    ack: u32,
    data: &[u8],
) -> Vec<u8> {
    let mut h = TcpHeader::new(ports.0, ports.1, seq, 64240);
    h.syn = flags.contains('S');
    h.ack = flags.contains('A');
    h.fin = flags.contains('F');
    h.acknowledgment_number = ack;
    frame(from, to, |b| {
        let mut v = Vec::new();
        b.tcp_header(h).write(&mut v, data).unwrap();
        v
    })
}

fn udp(from: [u8; 4], to: [u8; 4], ports: (u16, u16), data: &[u8]) -> Vec<u8> {
    frame(from, to, |b| {
        let mut v = Vec::new();
        b.udp(ports.0, ports.1).write(&mut v, data).unwrap();
        v
    })
}

/// One capture, starting `start_ms` after an arbitrary epoch and lasting 3 s: a TCP
/// connection that opens and sends data but never closes, and a UDP exchange.
fn capture(dir: &Path, name: &str, start_ms: u64) -> PathBuf {
    let c = (CLIENT, 40_000);
    let s = (SERVER, 80);
    let pkts = [
        (0, tcp(c.0, s.0, (c.1, s.1), "S", 1000, 0, b"")),
        (10, tcp(s.0, c.0, (s.1, c.1), "SA", 5000, 1001, b"")),
        (20, tcp(c.0, s.0, (c.1, s.1), "A", 1001, 5001, b"")),
        (30, tcp(c.0, s.0, (c.1, s.1), "PA", 1001, 5001, b"hello")),
        (40, tcp(s.0, c.0, (s.1, c.1), "A", 5001, 1006, b"")),
        (1000, udp(CLIENT, SERVER, (5353, 53), b"question")),
        (1010, udp(SERVER, CLIENT, (53, 5353), b"answer")),
        (3000, tcp(c.0, s.0, (c.1, s.1), "PA", 1006, 5001, b"more")),
    ];
    let path = dir.join(name);
    let mut w = PcapWriter::new(std::fs::File::create(&path).unwrap()).unwrap();
    for (t, data) in &pkts {
        let ts = Duration::from_millis(1_700_000_000_000 + start_ms + t);
        w.write_packet(&PcapPacket::new(ts, data.len() as u32, data))
            .unwrap();
    }
    path
}

fn run(files: Vec<PathBuf>) -> Report {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let mut config = Config::for_files(files);
    config.views.conns = true;
    config.views.streams = true;
    config.json = Some(json.clone());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    netlens::run(&config, &mut out, &mut err).unwrap();
    serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap()
}

fn finalized_by(r: &Report) -> Vec<(String, u64)> {
    let st = r.connection_stats.as_ref().unwrap();
    st.finalized_by
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

#[test]
fn a_file_that_starts_earlier_is_analyzed_after_the_others_as_if_alone() {
    let dir = tempfile::tempdir().unwrap();
    let a = capture(dir.path(), "a.pcap", 0);
    let one = run(vec![a.clone()]);
    let one_conns = one.connections.clone().unwrap();
    assert_eq!(one_conns.len(), 2, "{one_conns:#?}");

    // The same file twice: the second starts 3 s before the first one's last packet.
    let two = run(vec![a.clone(), a.clone()]);
    let conns = two.connections.clone().unwrap();
    assert_eq!(conns.len(), 4, "{conns:#?}");
    for (first, again) in one_conns.iter().zip(&conns[2..]) {
        assert_eq!(first.conn_state, again.conn_state);
        assert_eq!(first.history, again.history);
        assert_eq!(first.orig_pkts, again.orig_pkts);
        assert_eq!(first.resp_pkts, again.resp_pkts);
    }
    assert!(
        conns[..2].iter().all(|c| c.finalized_by == "rewound"),
        "{conns:#?}"
    );
    assert!(!conns.iter().any(|c| c.conn_state == "OTH"), "{conns:#?}");
    assert_eq!(
        finalized_by(&two),
        vec![("end".to_string(), 2), ("rewound".to_string(), 2)]
    );
    let w: Vec<_> = two
        .warnings
        .iter()
        .filter(|w| w.kind == "time-rewound")
        .collect();
    assert_eq!(w.len(), 1, "{:#?}", two.warnings);
    assert_eq!(w[0].frame, Some(9), "{:#?}", w[0]);
    assert_eq!(w[0].path.as_deref(), Some(&*a.display().to_string()));
    assert!(
        w[0].message.starts_with(&format!("{}: ", a.display())),
        "{}",
        w[0].message
    );
    assert!(
        w[0].message.contains("input file 2 starts 3.000 s before"),
        "{}",
        w[0].message
    );
    assert!(
        w[0].message.contains("the 2 connection(s) open then"),
        "{}",
        w[0].message
    );

    // The stream analysis closed them too: each file's directions are there once each.
    let n = |r: &Report| {
        (
            r.streams.as_ref().unwrap().len(),
            r.udp_flows.as_ref().unwrap().len(),
        )
    };
    let (tcp1, udp1) = n(&one);
    assert_eq!(n(&two), (2 * tcp1, 2 * udp1));
}

#[test]
fn a_small_step_back_between_rotated_files_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let a = capture(dir.path(), "a.pcap", 0);
    // Starts 0.5 s before a's last packet: reordering across a file split, not a restart.
    let b = capture(dir.path(), "b.pcap", 2_500);
    let r = run(vec![a, b]);
    assert!(
        !r.warnings.iter().any(|w| w.kind == "time-rewound"),
        "{:#?}",
        r.warnings
    );
    assert!(!finalized_by(&r).iter().any(|(k, _)| k == "rewound"));
}
