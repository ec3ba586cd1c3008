//! Dissect: raw frame bytes in, netlens's own [`Packet`] out.
//!
//! This is the only module that uses `etherparse`. It never fails: every frame yields a
//! `Packet` holding every layer that could be parsed, and the first problem found becomes
//! the packet's [`Issue`] (layer, byte offset, reason). Truncation by the snap length is not
//! a problem of the packet; sizes still come from the headers (`payload_len`).
//!
//! IPv4 fragments are reassembled here ([`defrag`]) so that analyzers see each transport
//! segment once, on the frame that completed it, as Wireshark shows it.
//!
//! Invariant: `dissect` allocates nothing per packet in the steady state (fragment
//! reassembly aside), so the default summary runs at the speed of the bytes.
//!
//! Layer by layer: `link` reads the link layer of each link type and peels tunnels down to
//! an ethertype; `net` reads ARP, IPv4 (with reassembly) and IPv6 down to an `IpPayload`;
//! `transport` reads TCP, UDP and ICMP from it. This module holds the [`Dissector`] that
//! chains them.

pub mod defrag;
mod link;
mod net;
pub mod packet;
mod transport;

use crate::capture::RawPacket;
use link::{link_layer, peel_tunnel};
use net::{arp, ipv4, ipv6};
pub use packet::*;
use transport::transport;

const ETH_IPV4: u16 = 0x0800;
const ETH_ARP: u16 = 0x0806;
const ETH_RARP: u16 = 0x8035;
const ETH_PPPOE_SESSION: u16 = 0x8864;
const ETH_MPLS: u16 = 0x8847;
const ETH_MPLS_MC: u16 = 0x8848;
const ETH_IPV6: u16 = 0x86dd;
const ETH_VLAN: u16 = 0x8100;
const ETH_QINQ: u16 = 0x88a8;
const ETH_QINQ_OLD: u16 = 0x9100;

/// Settings of the dissector.
#[derive(Debug, Clone, Default)]
pub struct DissectOptions {
    /// Verify TCP and UDP checksums (costs a pass over every payload; the IPv4 header
    /// checksum is always verified).
    pub verify_checksums: bool,
    pub defrag: defrag::DefragLimits,
}

/// The dissector: holds IPv4 fragment reassembly state between frames.
pub struct Dissector {
    opts: DissectOptions,
    defrag: defrag::Defragmenter,
}

/// The transport protocol and payload of an IP datagram, before transport parsing.
struct IpPayload<'a> {
    protocol: u8,
    /// Captured bytes of the IP payload (trimmed to the IP length).
    data: &'a [u8],
    /// Wire length of the IP payload (from the IP header).
    wire_len: u32,
    /// Offset of the payload in the frame, for issue offsets.
    offset: u32,
    pseudo: Pseudo,
}

/// The pseudo-header addresses a transport checksum covers.
#[derive(Clone, Copy)]
enum Pseudo {
    V4([u8; 4], [u8; 4]),
    V6([u8; 16], [u8; 16]),
}

impl Dissector {
    pub fn new(opts: DissectOptions) -> Self {
        let defrag = defrag::Defragmenter::new(opts.defrag.clone());
        Dissector { opts, defrag }
    }

    /// Fragment reassembly counters, for the report.
    pub fn defrag_stats(&self) -> defrag::DefragStats {
        self.defrag.stats()
    }

    /// Dissects one frame. Never fails; see the module docs.
    pub fn dissect<'a>(&'a mut self, raw: &RawPacket<'a>) -> Packet<'a> {
        let mut p = Packet {
            frame: raw.frame,
            ts_ns: raw.ts_ns,
            wire_len: raw.wire_len,
            cap_len: raw.data.len() as u32,
            link_type: raw.link_type,
            port: raw.port,
            file_index: raw.file_index,
            link: Link::Unsupported {
                link_type: raw.link_type,
            },
            vlans: Vlans::default(),
            net: Net::None,
            transport: Transport::None,
            reassembled_from: &[],
            issue: None,
        };
        let data = raw.data;
        let Some((ethertype, off)) = link_layer(&mut p, data, raw.link_type, 0) else {
            return p;
        };
        let rest = &data[off.min(data.len())..];
        match ethertype {
            ETH_ARP | ETH_RARP => arp(&mut p, rest, off as u32),
            ETH_PPPOE_SESSION | ETH_MPLS | ETH_MPLS_MC => {
                // Tunnels that carry IP directly: peel them and go on with the IP inside.
                match peel_tunnel(ethertype, rest) {
                    Some((inner, skip)) => {
                        let at = off + skip;
                        let inner_data = &data[at.min(data.len())..];
                        if inner == ETH_IPV4 {
                            let verify = self.opts.verify_checksums;
                            if let Some(ip) = ipv4(&mut self.defrag, &mut p, inner_data, at as u32)
                            {
                                transport(verify, &mut p, ip);
                            }
                        } else if let Some(ip) = ipv6(&mut p, inner_data, at as u32) {
                            transport(self.opts.verify_checksums, &mut p, ip);
                        }
                    }
                    None => p.net = Net::Other { ethertype },
                }
            }
            ETH_IPV4 => {
                let verify = self.opts.verify_checksums;
                if let Some(ip) = ipv4(&mut self.defrag, &mut p, rest, off as u32) {
                    transport(verify, &mut p, ip);
                }
            }
            ETH_IPV6 => {
                if let Some(ip) = ipv6(&mut p, rest, off as u32) {
                    transport(self.opts.verify_checksums, &mut p, ip);
                }
            }
            other => p.net = Net::Other { ethertype: other },
        }
        p
    }
}

fn issue(layer: Layer, offset: u32, reason: &'static str) -> Option<Issue> {
    Some(Issue {
        layer,
        offset,
        reason,
    })
}
