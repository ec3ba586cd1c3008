//! Layer-2 report sections: `mac_table` (the learning-switch simulation) and `arp` (the ARP
//! table and exchanges). Serde types only: they are the JSON schema, documented field by
//! field in docs/report.md ("mac_table", "arp").
//!
//! Invariants: MACs are lower-case colon-separated strings, IPs their usual text form;
//! frame numbers are Wireshark's (1-based); timestamps are seconds since the epoch; a VLAN
//! of `null` means untagged. Lists that could grow with the input are capped by the
//! analyzers' limits, and what a cap left out is counted in the section, never silently
//! dropped.

use serde::{Deserialize, Serialize};

/// The `mac_table` section.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MacTable {
    /// Aging time of a learned entry, in capture seconds.
    pub aging_s: u64,
    /// Most entries the simulated table holds at once (its CAM size).
    pub table_size: u64,
    /// One row per MAC address seen as a source, in the order first seen.
    pub entries: Vec<MacEntry>,
    /// Addresses seen only as destinations (broadcast, multicast, unicast never heard from).
    pub destinations: Vec<MacDestination>,
    /// Per capture interface (switch port): frames in and MACs learned there.
    pub ports: Vec<MacPort>,
    pub totals: MacTotals,
    /// What the capture did not let the switch learn or decide, and what caps left out.
    pub not_learned: MacNotLearned,
}

/// One MAC address seen as a source.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MacEntry {
    pub mac: String,
    /// Organization of the IEEE assignment (MA-L, MA-M, MA-S, IAB or CID) holding it.
    pub vendor: Option<String>,
    /// The U/L bit: set by software, not a burned-in address.
    pub locally_administered: bool,
    /// The I/G bit. A group (or all-zero) source is invalid: its row counts the frames it
    /// sent, but it is never learned (`learned_frame` null).
    pub group: bool,
    /// Port (capture interface) of the last frame it sent.
    pub port: u32,
    /// VLAN ids (outer tag) it sent on, in the order first seen.
    pub vlans: Vec<u16>,
    /// True when it also sent untagged frames.
    pub untagged: bool,
    /// IPv4 sources and ARP sender addresses of the frames it sent (0.0.0.0 excluded).
    pub ips: Vec<String>,
    /// True when it sent from more IPv4 addresses than the per-MAC list keeps (a router's
    /// MAC carries every routed source address).
    pub ips_truncated: bool,
    /// IPv6 sources of the frames it sent (:: excluded).
    pub ipv6: Vec<String>,
    pub ipv6_truncated: bool,
    /// Frame that first put it in the table (null: never learned, e.g. the table was full).
    pub learned_frame: Option<u64>,
    /// Port and VLAN of that first learning.
    pub learned_port: Option<u32>,
    pub learned_vlan: Option<u16>,
    /// Times it was (re)learned: 1 + relearnings after aging (or on a new VLAN).
    pub learned_count: u64,
    pub first_frame: u64,
    pub last_frame: u64,
    pub first_ts: f64,
    pub last_ts: f64,
    /// Frames and bytes (on the wire) it sent.
    pub frames: u64,
    pub bytes: u64,
    /// Unicast frames and bytes addressed to it (before and after it was learned).
    pub rx_frames: u64,
    pub rx_bytes: u64,
    /// Frames to it flooded because it was not (or no longer) in the table.
    pub unknown_unicast_floods: u64,
    /// First frame to it forwarded as unicast (it was in the table).
    pub first_forwarded_frame: Option<u64>,
    /// Frames it sent in Linux cooked captures (source known, destination not).
    pub cooked_frames: u64,
    pub moves: Vec<MacMove>,
    pub moves_total: u64,
    pub aged: Vec<MacAged>,
    pub aged_total: u64,
    /// Still in the table when the capture ended.
    pub in_table: bool,
}

/// The MAC was heard on another port or VLAN than where the table had it.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MacMove {
    pub frame: u64,
    pub ts: f64,
    /// "port", "vlan" or "port+vlan".
    pub kind: String,
    pub from_port: u32,
    pub to_port: u32,
    pub from_vlan: Option<u16>,
    pub to_vlan: Option<u16>,
}

/// A table entry of this MAC that aged out.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MacAged {
    pub vlan: Option<u16>,
    pub port: u32,
    /// Last frame the entry was refreshed by.
    pub last_frame: u64,
    /// Capture time at which it expired: last refresh + aging time.
    pub expired_ts: f64,
    /// Frame that learned it again (null: never heard from again on that VLAN).
    pub relearned_frame: Option<u64>,
}

/// An address seen only as a destination.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MacDestination {
    pub mac: String,
    pub vendor: Option<String>,
    /// "broadcast", "multicast" or "unicast".
    pub kind: String,
    pub first_frame: u64,
    pub frames: u64,
    pub bytes: u64,
}

/// One switch port (capture interface).
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MacPort {
    pub port: u32,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    /// Ethernet frames that came in on it.
    pub frames: u64,
    /// Learning events on it: MACs learned (or relearned) there, moves to it included.
    pub learned: u64,
}

/// How the switch handled the Ethernet frames: the first four partition `frames`.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MacTotals {
    pub frames: u64,
    pub broadcast: u64,
    pub multicast_flooded: u64,
    pub unknown_unicast_flooded: u64,
    pub unicast_forwarded: u64,
    /// Of `unicast_forwarded`: destination learned on the ingress port itself (a real
    /// switch filters these; in a one-port capture every known destination is here).
    pub forwarded_same_port: u64,
    /// Learning events (first learning and relearning after aging).
    pub learned: u64,
    pub moves: u64,
    pub aged_out: u64,
    /// Entries in the table when the capture ended.
    pub in_table: u64,
}

/// What could not be learned or decided.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MacNotLearned {
    /// Linux cooked (SLL/SLL2) frames: the source was learned where it is a MAC, but the
    /// capture has no destination MAC, so no flood/forward decision is made for them.
    pub cooked_frames: u64,
    /// Cooked frames whose source is not a MAC (other hardware types, or none).
    pub cooked_without_source_mac: u64,
    /// Frames with no link-layer addresses at all (raw IP, BSD loopback, other link types).
    pub no_link_addresses: u64,
    /// Frames whose source is a group or all-zero address (counted in that address's row,
    /// never learned, as on a switch).
    pub invalid_source: u64,
    /// Learnings refused because the table was full (those frames' sources stay unknown).
    pub table_full: u64,
    /// Source MACs not tracked at all because the per-MAC row cap was reached.
    pub macs_untracked: u64,
    /// Destination-only addresses not listed because the cap was reached.
    pub destinations_untracked: u64,
}

/// The `arp` section.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ArpSection {
    /// One row per (VLAN, IP, MAC) binding claimed by an ARP sender, requests included.
    pub table: Vec<ArpBinding>,
    /// Every request for another address, with its reply if one came.
    pub exchanges: Vec<ArpExchange>,
    /// Request frames of the exchanges that got no reply.
    pub unanswered: Vec<u64>,
    /// Gratuitous ARP: sender IP = target IP (requests are RFC 5227 announcements).
    pub gratuitous: Vec<ArpGratuitous>,
    /// RFC 5227 probes: requests with sender IP 0.0.0.0.
    pub probes: Vec<ArpProbe>,
    /// One IP claimed by two or more MACs (or its MAC changing) on one VLAN.
    pub conflicts: Vec<ArpConflict>,
    /// Replies that answered no pending request and are not gratuitous.
    pub unsolicited_replies: Vec<ArpUnsolicited>,
    pub totals: ArpTotals,
    /// Limits in force and what they left out.
    pub limits: ArpLimits,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ArpBinding {
    pub ip: String,
    pub mac: String,
    pub vendor: Option<String>,
    pub vlan: Option<u16>,
    pub first_frame: u64,
    pub last_frame: u64,
    pub first_ts: f64,
    pub last_ts: f64,
    /// ARP packets whose sender claimed this binding.
    pub packets: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ArpExchange {
    pub request_frame: u64,
    pub reply_frame: Option<u64>,
    /// Who asked ("tell"), and its MAC.
    pub sender_ip: String,
    pub sender_mac: String,
    /// Who was asked for ("who-has").
    pub target_ip: String,
    /// The MAC the reply gave ("is-at").
    pub answer_mac: Option<String>,
    pub latency_ms: Option<f64>,
    pub request_ts: f64,
    pub vlan: Option<u16>,
    /// The request went to a unicast MAC (a cache refresh), not to broadcast.
    pub unicast: bool,
    /// An earlier request for the same pair was still unanswered.
    pub retransmission: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ArpGratuitous {
    pub frame: u64,
    pub ts: f64,
    pub ip: String,
    pub mac: String,
    pub vlan: Option<u16>,
    /// "announcement" (a request, RFC 5227) or "reply".
    pub kind: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ArpProbe {
    pub frame: u64,
    pub ts: f64,
    /// The address being probed.
    pub ip: String,
    pub mac: String,
    pub vlan: Option<u16>,
    /// A reply defending the address (it is in use), if one came.
    pub reply_frame: Option<u64>,
    pub defender_mac: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ArpConflict {
    pub ip: String,
    pub vlan: Option<u16>,
    /// Every MAC that claimed the IP, in the order first seen.
    pub macs: Vec<String>,
    /// The last frame of the earlier claimant, then each frame where the claimant changed.
    pub frames: Vec<u64>,
    /// Times the claimant changed (more than `macs.len() - 1` means the MACs alternate).
    pub changes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ArpUnsolicited {
    pub frame: u64,
    pub sender_ip: String,
    pub sender_mac: String,
    pub target_ip: String,
    pub target_mac: String,
    pub vlan: Option<u16>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ArpTotals {
    /// Frames carrying ARP (or RARP).
    pub packets: u64,
    pub requests: u64,
    pub replies: u64,
    pub answered: u64,
    pub unanswered: u64,
    pub gratuitous: u64,
    pub announcements: u64,
    pub probes: u64,
    pub conflicts: u64,
    pub unsolicited_replies: u64,
    /// Opcodes other than request/reply (RARP 3/4, InARP 8/9, ...).
    pub other_ops: u64,
    /// Not Ethernet/IPv4 ARP, or cut before its addresses.
    pub not_ethernet_ipv4: u64,
    /// The ARP sender MAC differs from the frame's link-layer source (proxy or forgery).
    pub sender_mac_mismatch: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ArpLimits {
    /// A reply more than this long after a request does not answer it.
    pub reply_timeout_s: f64,
    pub max_bindings: u64,
    pub max_pending: u64,
    /// Cap on each list (exchanges, gratuitous, probes, conflicts, unsolicited).
    pub max_list: u64,
    /// Bindings not recorded because the table was full.
    pub bindings_dropped: u64,
    /// Requests not kept waiting for a reply because the pending cap was reached (they
    /// are listed as unanswered even if a reply came).
    pub pending_dropped: u64,
    /// Entries left out of the lists by the cap (counted in the totals).
    pub list_dropped: u64,
}
