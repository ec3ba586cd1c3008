//! The `connections` section of the JSON report (`ConnEntry`, one per TCP connection
//! attempt and per UDP flow), the `connection_stats` aggregates, and the rows the
//! terminal views keep (not part of the JSON).
//!
//! Field names in DESIGN.md are a contract; everything else here is documented in
//! docs/report.md ("connections"). Every type denies unknown fields so a test can prove
//! the output is exactly what is documented.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::TcpOptionsEntry;

/// One connection (TCP attempt or UDP flow).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConnEntry {
    pub id: u64,
    /// "tcp" or "udp".
    pub proto: String,
    /// "ip:port" of the originator ("\[v6\]:port").
    pub orig: String,
    pub resp: String,
    pub first_frame: u64,
    pub last_frame: u64,
    /// Seconds since the epoch of the first packet.
    pub start: f64,
    pub start_ns: i64,
    /// Last packet minus first packet.
    pub duration_s: f64,
    /// Zeek's conn_state.
    pub conn_state: String,
    /// Zeek's history ("" when empty).
    pub history: String,
    pub orig_pkts: u64,
    pub resp_pkts: u64,
    /// Zeek's orig_bytes/resp_bytes: payload bytes from sequence space for TCP (so
    /// bytes of gaps count), UDP payload for UDP.
    pub orig_bytes: u64,
    pub resp_bytes: u64,
    /// Zeek's missed_bytes: bytes in content gaps (data acknowledged but never seen).
    pub missed_bytes: u64,
    /// IP-level bytes (the IP total length of every packet), as Zeek's orig_ip_bytes.
    pub orig_ip_bytes: u64,
    pub resp_ip_bytes: u64,
    /// Transport payload bytes on the wire, every packet counted (retransmissions too).
    pub orig_payload_bytes: u64,
    pub resp_payload_bytes: u64,
    /// How orig was chosen: "syn" (sent the first SYN), "synack" (received the first
    /// SYN-ACK), "server-port" (Zeek's likely-server-port rule), "first-packet".
    pub orig_by: String,
    /// True unless orig sent the connection's first SYN: the roles are a guess.
    pub orig_guessed: bool,
    /// Why the entry was closed out: "closed" (linger after a complete close), "idle"
    /// (idle timeout), "evicted" (table full), "reused" (a new SYN on the 4-tuple),
    /// "end" (end of input).
    pub finalized_by: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub vlan: Option<u16>,
    /// TCP only.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub handshake: Option<HandshakeEntry>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub teardown: Option<TeardownEntry>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub anomalies: Option<AnomaliesEntry>,
    /// TCP only: Zeek's endpoint states at the end (RFC 793-like names).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tcp_state: Option<TcpStateEntry>,
}

/// One segment of a handshake or teardown ladder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StepEntry {
    pub frame: u64,
    /// "orig" or "resp": who sent it.
    pub dir: String,
    /// Milliseconds since the connection's first packet.
    pub t_ms: f64,
    pub flags: String,
    /// Raw sequence and acknowledgement numbers, as on the wire.
    pub seq: u32,
    pub ack: u32,
    /// Relative to the sender's ISN (or first sequence number) / the peer's.
    pub rel_seq: i64,
    pub rel_ack: i64,
    pub len: u32,
    /// What the step is: "syn", "syn-retransmission", "synack", "ack", "rst", "fin",
    /// "fin-retransmission", "ack-of-fin".
    pub what: String,
    /// The ack this step should carry by the handshake arithmetic, and whether it does.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub expected_ack: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ack_ok: Option<bool>,
}

/// RTT legs of the handshake, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct RttEntry {
    pub syn_to_synack: Option<f64>,
    pub synack_to_ack: Option<f64>,
}

/// An acknowledgement that does not follow the handshake arithmetic.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MismatchEntry {
    pub frame: u64,
    /// "synack.ack", "ack.ack", "rst.ack".
    pub field: String,
    pub expected: u32,
    pub got: u32,
}

/// The three-way handshake.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HandshakeEntry {
    /// "complete", "refused", "no-answer", "synack-no-ack", "simultaneous-open",
    /// "midstream".
    pub outcome: String,
    pub syn_frames: Vec<u64>,
    pub synack_frame: Option<u64>,
    pub ack_frame: Option<u64>,
    pub rst_frame: Option<u64>,
    pub orig_isn: Option<u32>,
    pub resp_isn: Option<u32>,
    pub syn_retransmissions: u64,
    pub rtt_ms: RttEntry,
    pub synack_retransmissions: u64,
    /// Every ack checked against the arithmetic passed.
    pub acks_verified: bool,
    pub mismatches: Vec<MismatchEntry>,
    /// Options offered in the first SYN / SYN-ACK of each side.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub orig_options: Option<TcpOptionsEntry>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub resp_options: Option<TcpOptionsEntry>,
    /// Payload bytes carried on SYN or SYN-ACK segments (TCP Fast Open, T/TCP).
    pub syn_data_bytes: u64,
    pub steps: Vec<StepEntry>,
    /// Steps beyond the cap, counted only.
    pub steps_dropped: u32,
}

/// How the connection ended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TeardownEntry {
    /// "fin-4way", "fin-3way", "simultaneous", "half-close", "rst", "fin-one-side",
    /// "open", "none".
    pub kind: String,
    /// "orig", "resp", "both" or null.
    pub initiator: Option<String>,
    /// Frames of the steps, in capture order.
    pub frames: Vec<u64>,
    pub steps: Vec<StepEntry>,
    pub steps_dropped: u32,
    /// From the first FIN to the last ACK completing the close.
    pub fin_to_last_ack_ms: Option<f64>,
    /// Payload the other side sent after the first FIN (the half-close data).
    pub half_close_bytes: u64,
    /// Named oddities: "data-after-fin" (payload beyond one's own FIN), "fin-then-rst"
    /// (a side sent RST after its own FIN), "rst-after-fin" (a side answered the peer's
    /// FIN with RST), "fin-retransmission".
    pub notes: Vec<String>,
}

/// TCP anomalies, counted by bytes (see docs/report.md).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct AnomaliesEntry {
    pub retransmissions: u64,
    pub out_of_order: u64,
    pub dup_acks: u64,
    pub zero_window: u64,
    pub keep_alives: u64,
    pub lost_segments: u64,
    pub missed_bytes: u64,
    pub retransmitted_bytes: u64,
}

/// Zeek's endpoint states at the end of the connection.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TcpStateEntry {
    pub orig: String,
    pub resp: String,
}

/// Whole-input aggregates of the connection tracker (`connection_stats`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ConnStats {
    pub connections: u64,
    pub tcp: u64,
    pub udp: u64,
    pub handshake_outcomes: BTreeMap<String, u64>,
    pub teardown_kinds: BTreeMap<String, u64>,
    pub conn_states: BTreeMap<String, u64>,
    pub finalized_by: BTreeMap<String, u64>,
    /// Most connections tracked at once.
    pub peak_tracked: u64,
    /// The caps and timeouts in force.
    pub max_connections: u64,
    /// Connections evicted because the table was full (counted in finalized_by too).
    pub evicted: u64,
    pub tcp_idle_timeout_s: f64,
    pub udp_idle_timeout_s: f64,
    pub linger_s: f64,
    /// Connections whose history hit its length cap, or whose gap model hit its cap.
    pub capped: u64,
}

/// What the terminal views keep: the first `--limit` rows matching `--host`/`--port`
/// (never written to JSON).
#[derive(Debug, Clone, Default)]
pub struct ConnView {
    /// First rows by id, all protocols.
    pub rows: Vec<ConnEntry>,
    /// Matching connections in all.
    pub rows_total: u64,
    /// First TCP rows by id.
    pub tcp_rows: Vec<ConnEntry>,
    pub tcp_total: u64,
    /// Aggregates over the matching connections.
    pub stats: ConnStats,
    /// `--conn ID`.
    pub focus: Option<ConnEntry>,
    pub focus_id: Option<u64>,
    /// A description of the filter, empty when none.
    pub filter: String,
}
