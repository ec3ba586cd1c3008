//! netlens's own packet type: what the dissector found in one frame, layer by layer.
//!
//! Analyzers see only these types, never a parsing crate's. Everything is small and `Copy`
//! except the borrowed payload slices, so building a [`Packet`] allocates nothing.
//! Sizes follow the wire: `payload_len` fields come from the IP total length even where
//! the capture cut the frame short, and `payload` holds only the bytes actually captured.

use std::fmt;
use std::net::IpAddr;

/// A MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    pub const BROADCAST: Mac = Mac([0xff; 6]);

    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }
    /// Group (multicast or broadcast) address: the I/G bit.
    pub fn is_group(&self) -> bool {
        self.0[0] & 1 == 1
    }
    pub fn is_multicast(&self) -> bool {
        self.is_group() && !self.is_broadcast()
    }
    /// Locally administered: the U/L bit.
    pub fn is_local(&self) -> bool {
        self.0[0] & 2 == 2
    }
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The link layer of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Ethernet {
        src: Mac,
        dst: Mac,
        /// The ethertype field of the Ethernet header (the first TPID when tagged).
        ethertype: u16,
        /// The ethertype after any VLAN tags: what the payload is.
        inner_ethertype: u16,
    },
    /// Linux cooked capture (SLL or SLL2): a source address, no destination.
    Sll {
        version: u8,
        packet_type: u16,
        hatype: u16,
        /// The source link-layer address when it is a 6-byte MAC.
        src: Option<Mac>,
        protocol: u16,
        ifindex: Option<u32>,
    },
    /// BSD loopback/null: a 4-byte address family.
    Null { family: u32 },
    /// No link header: the frame starts with an IP header.
    Raw,
    /// A link type netlens does not dissect (counted, never misparsed).
    Unsupported { link_type: u32 },
}

/// Up to four 802.1Q / 802.1ad tags, outermost first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vlans {
    ids: [u16; 4],
    len: u8,
}

impl Vlans {
    pub fn push(&mut self, id: u16) -> bool {
        if (self.len as usize) < self.ids.len() {
            self.ids[self.len as usize] = id;
            self.len += 1;
            true
        } else {
            false
        }
    }
    pub fn as_slice(&self) -> &[u16] {
        &self.ids[..self.len as usize]
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The outermost tag, the one a switch port would classify on.
    pub fn outer(&self) -> Option<u16> {
        self.as_slice().first().copied()
    }
}

/// An ARP packet (Ethernet/IPv4 form; other hardware types keep only `op`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    pub op: u16,
    pub hw_type: u16,
    pub proto_type: u16,
    pub sender_mac: Mac,
    pub sender_ip: std::net::Ipv4Addr,
    pub target_mac: Mac,
    pub target_ip: std::net::Ipv4Addr,
    /// False when hardware/protocol sizes are not 6/4 and the addresses above are zero.
    pub is_eth_ipv4: bool,
}

impl Arp {
    pub const REQUEST: u16 = 1;
    pub const REPLY: u16 = 2;
}

/// IPv4 header facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4 {
    pub src: std::net::Ipv4Addr,
    pub dst: std::net::Ipv4Addr,
    pub ttl: u8,
    pub id: u16,
    pub df: bool,
    pub mf: bool,
    /// Fragment offset in bytes.
    pub frag_offset: u16,
    pub protocol: u8,
    pub total_len: u16,
    pub header_len: u8,
    pub tos: u8,
    /// Header checksum verdict (always checked: it is 20 bytes).
    pub checksum_ok: bool,
}

impl Ipv4 {
    pub fn is_fragment(&self) -> bool {
        self.mf || self.frag_offset != 0
    }
}

/// IPv6 header facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6 {
    pub src: std::net::Ipv6Addr,
    pub dst: std::net::Ipv6Addr,
    pub hop_limit: u8,
    pub flow_label: u32,
    pub traffic_class: u8,
    pub payload_len: u16,
    /// The upper-layer protocol after extension headers.
    pub protocol: u8,
    /// Set when a fragment header was present (the transport is then not dissected
    /// unless it is the first fragment of an unfragmented-in-effect datagram).
    pub fragment: bool,
}

/// The network layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Net {
    None,
    Arp(Arp),
    Ipv4(Ipv4),
    Ipv6(Ipv6),
    /// An ethertype netlens does not dissect.
    Other {
        ethertype: u16,
    },
}

/// TCP flag bits as on the wire (low 8 bits of the flags byte, plus NS in bit 8).
#[derive(Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct TcpFlags(pub u16);

impl TcpFlags {
    pub const FIN: u16 = 0x01;
    pub const SYN: u16 = 0x02;
    pub const RST: u16 = 0x04;
    pub const PSH: u16 = 0x08;
    pub const ACK: u16 = 0x10;
    pub const URG: u16 = 0x20;
    pub const ECE: u16 = 0x40;
    pub const CWR: u16 = 0x80;

    pub fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }
    pub fn fin(self) -> bool {
        self.has(Self::FIN)
    }
    pub fn syn(self) -> bool {
        self.has(Self::SYN)
    }
    pub fn rst(self) -> bool {
        self.has(Self::RST)
    }
    pub fn ack(self) -> bool {
        self.has(Self::ACK)
    }
    pub fn psh(self) -> bool {
        self.has(Self::PSH)
    }

    /// Names of the set bits joined by `|`, in the order FIN SYN RST PSH ACK URG ECE CWR.
    pub fn names(self) -> String {
        const NAMES: [(u16, &str); 8] = [
            (TcpFlags::FIN, "FIN"),
            (TcpFlags::SYN, "SYN"),
            (TcpFlags::RST, "RST"),
            (TcpFlags::PSH, "PSH"),
            (TcpFlags::ACK, "ACK"),
            (TcpFlags::URG, "URG"),
            (TcpFlags::ECE, "ECE"),
            (TcpFlags::CWR, "CWR"),
        ];
        let mut out = String::new();
        for (bit, name) in NAMES {
            if self.has(bit) {
                if !out.is_empty() {
                    out.push('|');
                }
                out.push_str(name);
            }
        }
        out
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names())
    }
}

/// The TCP options netlens reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpOptions {
    pub mss: Option<u16>,
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    /// Number of SACK blocks in the segment.
    pub sack_blocks: u8,
    /// (TSval, TSecr)
    pub timestamps: Option<(u32, u32)>,
    /// The options area could not be walked to its end.
    pub malformed: bool,
}

/// A TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tcp<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    /// Raw sequence number, as on the wire.
    pub seq: u32,
    /// Raw acknowledgement number, as on the wire.
    pub ack: u32,
    pub flags: TcpFlags,
    pub window: u16,
    pub header_len: u8,
    pub urgent: u16,
    pub options: TcpOptions,
    /// Payload length on the wire (from the IP length), even if the capture cut it.
    pub payload_len: u32,
    /// The payload bytes actually captured (a prefix of the wire payload).
    pub payload: &'a [u8],
    /// None when not verified (checksum verification off, or payload not whole).
    pub checksum_ok: Option<bool>,
}

/// A UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Udp<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    /// The header's length field (8 + payload), as on the wire.
    pub length: u16,
    pub payload_len: u32,
    pub payload: &'a [u8],
    pub checksum_ok: Option<bool>,
}

/// An ICMP or ICMPv6 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmp {
    pub v6: bool,
    pub icmp_type: u8,
    pub code: u8,
}

/// The transport layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport<'a> {
    None,
    Tcp(Tcp<'a>),
    Udp(Udp<'a>),
    Icmp(Icmp),
    /// A non-final IPv4 fragment: the transport appears on the frame completing it.
    Fragment,
    Other {
        protocol: u8,
    },
}

/// The layer a dissect issue is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layer {
    Frame,
    Link,
    Vlan,
    Arp,
    Ipv4,
    Ipv6,
    Tcp,
    Udp,
    Icmp,
}

impl Layer {
    pub fn name(self) -> &'static str {
        match self {
            Layer::Frame => "frame",
            Layer::Link => "link",
            Layer::Vlan => "vlan",
            Layer::Arp => "arp",
            Layer::Ipv4 => "ipv4",
            Layer::Ipv6 => "ipv6",
            Layer::Tcp => "tcp",
            Layer::Udp => "udp",
            Layer::Icmp => "icmp",
        }
    }
}

/// What was wrong with a frame: the layer, the byte offset in the frame where that layer
/// starts (or the bad field is), and a short fixed reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Issue {
    pub layer: Layer,
    pub offset: u32,
    pub reason: &'static str,
}

/// One dissected frame.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    pub frame: u64,
    pub ts_ns: i64,
    pub wire_len: u32,
    pub cap_len: u32,
    pub link_type: u32,
    pub port: u32,
    pub file_index: u16,
    pub link: Link,
    pub vlans: Vlans,
    pub net: Net,
    pub transport: Transport<'a>,
    /// Frames of the IPv4 fragments this frame's transport layer was reassembled from
    /// (empty when it was not fragmented).
    pub reassembled_from: &'a [u64],
    /// The first problem found; dissection keeps what it parsed before it.
    pub issue: Option<Issue>,
}

impl<'a> Packet<'a> {
    /// Source and destination IP addresses, if the frame has an IP layer.
    pub fn ips(&self) -> Option<(IpAddr, IpAddr)> {
        match self.net {
            Net::Ipv4(h) => Some((IpAddr::V4(h.src), IpAddr::V4(h.dst))),
            Net::Ipv6(h) => Some((IpAddr::V6(h.src), IpAddr::V6(h.dst))),
            _ => None,
        }
    }

    pub fn tcp(&self) -> Option<&Tcp<'a>> {
        match &self.transport {
            Transport::Tcp(t) => Some(t),
            _ => None,
        }
    }

    pub fn udp(&self) -> Option<&Udp<'a>> {
        match &self.transport {
            Transport::Udp(u) => Some(u),
            _ => None,
        }
    }

    pub fn arp(&self) -> Option<&Arp> {
        match &self.net {
            Net::Arp(a) => Some(a),
            _ => None,
        }
    }

    /// Ethernet source and destination, if the frame has an Ethernet header.
    pub fn eth(&self) -> Option<(Mac, Mac)> {
        match self.link {
            Link::Ethernet { src, dst, .. } => Some((src, dst)),
            _ => None,
        }
    }
}
