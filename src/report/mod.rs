//! Report: the serde types that *are* the JSON schema `netlens-report/1`, and the
//! renderers that turn a finished [`Report`] into JSON ([`json`]) or terminal tables
//! ([`table`]), plus the per-frame views ([`packets`]).
//!
//! Field names here are a contract (docs/report.md documents each). Fields may be added,
//! never renamed. Every type derives `Deserialize` with `deny_unknown_fields` so a test can
//! prove that what we write is exactly what we document.
//!
//! Renderers write to any `io::Write` and never print on their own.

pub mod conns;
pub mod conns_view;
pub mod entry_file;
pub mod events;
pub mod extract;
pub mod html;
pub mod json;
pub mod json_out;
pub mod keyed_file;
pub mod l2;
pub mod l2_view;
pub mod ladder;
pub mod live;
pub mod ndjson;
pub mod packets;
#[cfg(feature = "parquet")]
pub mod parquet;
pub mod progress;
pub mod sinks;
pub mod streams;
pub mod streams_view;
pub mod table;
pub mod zeek;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::capture::InterfaceInfo;

pub const SCHEMA: &str = "netlens-report/1";

/// The whole report. Sections are `None` when their analysis did not run.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Report {
    pub schema: String,
    pub netlens: String,
    pub source: Source,
    pub stats: Stats,
    pub warnings: Vec<Warning>,
    /// Streamed to the JSON output as frames are read (see `json::PacketSpill`), so this
    /// is only filled when a report is read back from JSON.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub packets: Option<Vec<PacketEntry>>,
    /// Connection tracker aggregates, caps and timeouts.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub connection_stats: Option<conns::ConnStats>,
    /// Spliced into the JSON output from the tracker's spill (sorted by id), so this is
    /// only filled when a report is read back from JSON.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub connections: Option<Vec<conns::ConnEntry>>,
    /// Rows kept for the terminal connection views (never serialised).
    #[serde(skip)]
    pub conn_view: Option<conns::ConnView>,
    /// The learning-switch simulation (`--mac-table`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mac_table: Option<l2::MacTable>,
    /// The ARP table and exchanges (`--arp`, and the default set).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub arp: Option<l2::ArpSection>,
    /// `--streams`: one entry per TCP connection and direction with payload. Spilled to
    /// the JSON output at the end (see `streams::EntryStore`), so, like `packets`, only
    /// filled when a report is read back from JSON.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub streams: Option<Vec<streams::StreamEntry>>,
    /// `--streams`: one entry per UDP flow and direction with datagrams (spilled likewise).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub udp_flows: Option<Vec<streams::UdpFlowEntry>>,
}

/// Where the frames came from.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// "file" or "live".
    pub kind: String,
    /// The input files in the order read (kind "file").
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub path: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub interface: Option<String>,
    /// "pcap", "pcapng", "mixed" (several files of both formats) or "live".
    pub format: String,
    /// Per input file: its format.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub formats: Vec<String>,
    /// Distinct link-type names seen among the interfaces.
    pub link_types: Vec<String>,
    pub interfaces: Vec<InterfaceEntry>,
}

/// One capture interface (a switch port in the MAC table view).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct InterfaceEntry {
    pub port: u32,
    pub file: u16,
    pub link_type: u32,
    pub link_type_name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    pub snaplen: u32,
    /// False when netlens cannot dissect this link type (its frames are counted only).
    pub supported: bool,
}

impl From<&InterfaceInfo> for InterfaceEntry {
    fn from(i: &InterfaceInfo) -> Self {
        InterfaceEntry {
            port: i.port,
            file: i.file_index,
            link_type: i.link_type,
            link_type_name: i.link_type_name.clone(),
            name: i.name.clone(),
            snaplen: i.snaplen,
            supported: crate::capture::linktype::supported(i.link_type),
        }
    }
}

/// Totals over the whole input.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Stats {
    pub packets: u64,
    /// Sum of the frames' lengths on the wire.
    pub bytes: u64,
    /// Sum of the captured lengths.
    pub captured_bytes: u64,
    pub first_ts: Option<f64>,
    pub last_ts: Option<f64>,
    pub first_ts_ns: Option<i64>,
    pub last_ts_ns: Option<i64>,
    pub duration_s: f64,
    /// Frames per protocol layer (a frame counts once for each layer it carries).
    pub by_protocol: BTreeMap<String, u64>,
    /// Frames per link-type name.
    pub by_link_type: BTreeMap<String, u64>,
    /// Dissect issues by "layer: reason".
    pub dissect_issues: BTreeMap<String, u64>,
    /// Frames whose captured length is shorter than their wire length.
    pub snaplen_cut: u64,
    /// Checksum verdicts (only when checksums were verified: `--packets`, `--checksums`).
    pub checksums: ChecksumStats,
    pub ipv4_defrag: crate::dissect::defrag::DefragStats,
    /// pcapng blocks skipped (unknown types, statistics, name resolution, ...).
    pub skipped_blocks: u64,
    /// Records that take a frame number but carry no packet (pcapng custom blocks), so
    /// frame numbers stay Wireshark's; `packets` does not count them.
    pub records_without_packet: u64,
    /// Frames left out by `--filter` (counted, not in `packets`).
    pub filtered_out: u64,
    /// Live capture counters (live runs only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub live: Option<crate::capture::live::LiveStats>,
}

/// Checksum verification counts.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ChecksumStats {
    pub verified: bool,
    pub ipv4_bad: u64,
    pub tcp_bad: u64,
    pub udp_bad: u64,
}

/// Something the user should know about the run (damage, caps hit, unsupported input).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Warning {
    /// A stable machine-readable kind, e.g. "damaged-file", "unsupported-link-type".
    pub kind: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub frame: Option<u64>,
}

/// One frame of the `packets` array.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PacketEntry {
    pub frame: u64,
    /// Index of the input file the frame came from.
    pub file: u16,
    pub ts: f64,
    pub ts_ns: i64,
    pub len: u32,
    pub caplen: u32,
    pub port: u32,
    pub layers: Vec<LayerEntry>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub issue: Option<IssueEntry>,
}

/// A dissect problem of one frame.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IssueEntry {
    pub layer: String,
    pub offset: u32,
    pub reason: String,
}

/// TCP options as the report shows them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct TcpOptionsEntry {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mss: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub window_scale: Option<u8>,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub sack_permitted: bool,
    #[serde(skip_serializing_if = "is_zero_u8", default)]
    pub sack_blocks: u8,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tsval: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tsecr: Option<u32>,
}

fn is_zero_u8(v: &u8) -> bool {
    *v == 0
}

/// One layer of a frame, outermost first; `"layer"` names it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "layer", rename_all = "lowercase", deny_unknown_fields)]
pub enum LayerEntry {
    Ethernet {
        src: String,
        dst: String,
        ethertype: String,
        /// "unicast", "multicast" or "broadcast" (of the destination).
        cast: String,
    },
    Vlan {
        id: u16,
    },
    Sll {
        version: u8,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        src: Option<String>,
        packet_type: u16,
        hatype: u16,
        protocol: String,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        ifindex: Option<u32>,
    },
    Null {
        family: u32,
    },
    Raw {},
    Arp {
        /// "request", "reply" or the number.
        op: serde_json::Value,
        sender_mac: String,
        sender_ip: String,
        target_mac: String,
        target_ip: String,
    },
    Ipv4 {
        src: String,
        dst: String,
        ttl: u8,
        protocol: u8,
        id: u16,
        df: bool,
        mf: bool,
        frag_offset: u16,
        total_len: u16,
        header_len: u8,
        checksum_ok: bool,
        payload_len: u32,
    },
    Ipv6 {
        src: String,
        dst: String,
        hop_limit: u8,
        protocol: u8,
        flow_label: u32,
        payload_len: u16,
        #[serde(skip_serializing_if = "std::ops::Not::not", default)]
        fragment: bool,
    },
    Tcp {
        src_port: u16,
        dst_port: u16,
        seq: u32,
        ack: u32,
        flags: String,
        window: u16,
        header_len: u8,
        payload_len: u32,
        options: TcpOptionsEntry,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        checksum_ok: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        reassembled_from: Option<Vec<u64>>,
    },
    Udp {
        src_port: u16,
        dst_port: u16,
        length: u16,
        payload_len: u32,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        checksum_ok: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        reassembled_from: Option<Vec<u64>>,
    },
    Icmp {
        #[serde(rename = "type")]
        icmp_type: u8,
        code: u8,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        reassembled_from: Option<Vec<u64>>,
    },
    Icmpv6 {
        #[serde(rename = "type")]
        icmp_type: u8,
        code: u8,
    },
    /// A payload netlens does not dissect further.
    Data {
        /// What it is: "ethertype 0x88cc", "ip protocol 47", "ipv4 fragment", ...
        what: String,
        len: u32,
    },
}

/// Seconds since the epoch as a JSON number (microsecond precision survives in an f64).
pub fn ts_secs(ns: i64) -> f64 {
    ns as f64 / 1e9
}

/// `ip:port` (`[v6]:port`) exactly as `SocketAddr`'s `Display` writes it: every connection,
/// stream direction and UDP flow entry names two endpoints, and for IPv4 the formatting
/// machinery costs many times more than writing these few digits.
pub fn endpoint_string(a: &SocketAddr) -> String {
    let SocketAddr::V4(a) = a else {
        return a.to_string();
    };
    let mut buf = [0u8; 21];
    let mut n = 0;
    for (i, &octet) in a.ip().octets().iter().enumerate() {
        if i > 0 {
            buf[n] = b'.';
            n += 1;
        }
        n += put_decimal(&mut buf[n..], octet.into());
    }
    buf[n] = b':';
    n += 1;
    n += put_decimal(&mut buf[n..], a.port());
    // Digits, dots and a colon: always valid UTF-8 (checked on the fast ASCII path; the
    // lossy conversion cost a third of this function), so the default is never taken.
    std::str::from_utf8(&buf[..n])
        .map(str::to_owned)
        .unwrap_or_default()
}

/// Writes `v` in decimal (no padding) at the start of `out`; returns the digits written.
fn put_decimal(out: &mut [u8], mut v: u16) -> usize {
    let len = match v {
        0..=9 => 1,
        10..=99 => 2,
        100..=999 => 3,
        1000..=9999 => 4,
        _ => 5,
    };
    for d in out[..len].iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
    len
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6};

    use super::*;

    #[test]
    fn endpoint_string_is_display() {
        let mut addrs: Vec<SocketAddr> = Vec::new();
        for ip in [
            [0, 0, 0, 0],
            [255, 255, 255, 255],
            [10, 0, 0, 1],
            [1, 22, 100, 9],
            [192, 168, 200, 99],
        ] {
            for port in [0, 7, 80, 443, 9999, 10000, 65535] {
                addrs.push(SocketAddr::new(Ipv4Addr::from(ip).into(), port));
            }
        }
        addrs.push(SocketAddr::new(Ipv6Addr::LOCALHOST.into(), 443));
        addrs.push(SocketAddr::V6(SocketAddrV6::new(
            "fe80::1:2".parse().unwrap(),
            53,
            7,
            3,
        )));
        for a in addrs {
            assert_eq!(endpoint_string(&a), a.to_string());
        }
    }
}
