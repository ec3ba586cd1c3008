//! What the MAC table reads of a frame, as a small owned value.
//!
//! The table needs the record fields, the link addresses, the outer VLAN tag and the
//! sender's IP address, nothing above. Holding just those (64 bytes, against 216 for a
//! [`Packet`]) lets the table run on another thread than the dissector: the pipeline hands
//! it one of these per frame (see `streams::thread`), and copying the whole packet instead
//! cost the pipeline thread about as much as the table itself.

use std::net::IpAddr;

use crate::dissect::{Link, Mac, Net, Packet};

/// The link-layer addresses of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameLink {
    Ethernet {
        src: Mac,
        dst: Mac,
    },
    /// Linux cooked capture: a source address (when it is a 6-byte MAC), no destination.
    Cooked {
        src: Option<Mac>,
    },
    /// No link addresses (raw IP, BSD loopback, link types not dissected).
    None,
}

/// One frame as the MAC table sees it.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    pub frame: u64,
    pub ts_ns: i64,
    pub wire_len: u32,
    /// The switch port: the capture interface ([`Packet::port`]).
    pub port: u32,
    pub link: FrameLink,
    /// The outer 802.1Q tag, if any.
    pub vlan: Option<u16>,
    /// The sender's IP address as the frame states it: the IPv4 or IPv6 source, or the
    /// sender address of an Ethernet/IPv4 ARP packet.
    pub sender: Option<IpAddr>,
}

impl Frame {
    pub fn of(p: &Packet<'_>) -> Frame {
        Frame {
            frame: p.frame,
            ts_ns: p.ts_ns,
            wire_len: p.wire_len,
            port: p.port,
            link: match p.link {
                Link::Ethernet { src, dst, .. } => FrameLink::Ethernet { src, dst },
                Link::Sll { src, .. } => FrameLink::Cooked { src },
                _ => FrameLink::None,
            },
            vlan: p.vlans.outer(),
            sender: match p.net {
                Net::Ipv4(h) => Some(IpAddr::V4(h.src)),
                Net::Ipv6(h) => Some(IpAddr::V6(h.src)),
                Net::Arp(a) if a.is_eth_ipv4 => Some(IpAddr::V4(a.sender_ip)),
                _ => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    /// The point of the type is to be small: keep it to one cache line.
    #[test]
    fn a_frame_fits_a_cache_line() {
        assert!(std::mem::size_of::<super::Frame>() <= 64);
    }
}
