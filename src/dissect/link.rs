//! The link layer: what each capture link type puts before the network layer (Ethernet
//! with VLAN tags, Linux cooked v1/v2, BSD loopback, raw IP, IPoIB, NFLOG, PKTAP), and the
//! tunnels that carry IP directly (PPPoE sessions, MPLS).
//!
//! Each reader sets `p.link` (and `p.issue` on a problem) and returns the ethertype of what
//! follows and its offset in the frame, or None when nothing netlens reads follows.

use etherparse::{Ethernet2HeaderSlice, LinuxSllHeaderSlice, SingleVlanHeaderSlice};

use super::{issue, Layer, Link, Mac, Net, Packet};
use super::{ETH_IPV4, ETH_IPV6, ETH_PPPOE_SESSION, ETH_QINQ, ETH_QINQ_OLD, ETH_VLAN};
use crate::capture::linktype;

/// Ethernet II with any number (up to four) of 802.1Q/802.1ad tags.
fn ethernet(p: &mut Packet<'_>, data: &[u8]) -> Option<(u16, usize)> {
    let eth = match Ethernet2HeaderSlice::from_slice(data) {
        Ok(e) => e,
        Err(_) => {
            p.issue = issue(Layer::Link, 0, "truncated Ethernet header");
            return None;
        }
    };
    let src = Mac(eth.source());
    let dst = Mac(eth.destination());
    let outer = eth.ether_type().0;
    let mut ethertype = outer;
    let mut off = 14usize;
    while matches!(ethertype, ETH_VLAN | ETH_QINQ | ETH_QINQ_OLD) {
        match SingleVlanHeaderSlice::from_slice(&data[off..]) {
            Ok(v) => {
                if !p.vlans.push(v.vlan_identifier().value()) {
                    p.issue = issue(Layer::Vlan, off as u32, "more than four VLAN tags");
                    p.link = Link::Ethernet {
                        src,
                        dst,
                        ethertype: outer,
                        inner_ethertype: ethertype,
                    };
                    return None;
                }
                ethertype = v.ether_type().0;
                off += 4;
            }
            Err(_) => {
                p.link = Link::Ethernet {
                    src,
                    dst,
                    ethertype: outer,
                    inner_ethertype: ethertype,
                };
                p.issue = issue(Layer::Vlan, off as u32, "truncated VLAN tag");
                return None;
            }
        }
    }
    p.link = Link::Ethernet {
        src,
        dst,
        ethertype: outer,
        inner_ethertype: ethertype,
    };
    if ethertype < 0x0600 {
        // An 802.3 length field: LLC/SNAP follows (STP, CDP, ...), not dissected.
        p.net = Net::Other { ethertype };
        return None;
    }
    Some((ethertype, off))
}

/// The link layer of a frame of link type `lt` starting at `base`: sets `p.link` and
/// returns the ethertype of what follows and its offset, or None when nothing follows.
pub(super) fn link_layer<'a>(
    p: &mut Packet<'a>,
    data: &'a [u8],
    lt: u32,
    base: usize,
) -> Option<(u16, usize)> {
    let here = &data[base.min(data.len())..];
    let (et, off) = match lt {
        linktype::ETHERNET => ethernet(p, here)?,
        linktype::LINUX_SLL => sll(p, here)?,
        linktype::LINUX_SLL2 => sll2(p, here)?,
        linktype::NULL | linktype::LOOP => null(p, here, lt == linktype::LOOP)?,
        // LINKTYPE_IPV4 goes to Wireshark's IP dissector, which hands version 6 on to IPv6;
        // LINKTYPE_IPV6 goes to the IPv6 dissector, which accepts only version 6.
        linktype::RAW | linktype::RAW_OPENBSD | linktype::RAW_BSDOS | linktype::IPV4 => {
            p.link = Link::Raw;
            match here.first().map(|b| b >> 4) {
                Some(4) => (ETH_IPV4, 0),
                Some(6) => (ETH_IPV6, 0),
                Some(_) => {
                    p.issue = issue(
                        Layer::Link,
                        base as u32,
                        "raw IP frame with an unknown IP version",
                    );
                    return None;
                }
                None => {
                    p.issue = issue(Layer::Link, base as u32, "empty frame");
                    return None;
                }
            }
        }
        // These two link types say which IP version follows; the version nibble does not.
        linktype::IPV6 => {
            p.link = Link::Raw;
            (ETH_IPV6, 0)
        }
        linktype::IPOIB => {
            // IP over InfiniBand: a 40-byte pseudo-header (addresses), then RFC 4391's
            // 4-byte encapsulation header: an ethertype and 2 reserved bytes.
            if here.len() < 44 {
                p.issue = issue(Layer::Link, base as u32, "truncated IPoIB header");
                return None;
            }
            p.link = Link::Raw;
            (u16::from_be_bytes([here[40], here[41]]), 44)
        }
        linktype::NFLOG => return nflog(p, data, base),
        linktype::PKTAP => {
            // Apple PKTAP: a little-endian header length, then the DLT of what follows.
            if here.len() < 8 {
                p.issue = issue(Layer::Link, base as u32, "truncated PKTAP header");
                return None;
            }
            let hdr = u32::from_le_bytes([here[0], here[1], here[2], here[3]]) as usize;
            let inner = u32::from_le_bytes([here[4], here[5], here[6], here[7]]);
            if hdr < 8 || hdr > here.len() || inner == linktype::PKTAP {
                p.issue = issue(Layer::Link, base as u32, "bad PKTAP header length");
                return None;
            }
            return link_layer(p, data, inner, base + hdr);
        }
        _ => return None,
    };
    Some((et, base + off))
}

/// PPPoE session and MPLS: the ethertype of the IP inside and how many bytes to skip, or
/// None when what is inside is not IP (PPP control protocols, non-IP pseudowires).
pub(super) fn peel_tunnel(ethertype: u16, d: &[u8]) -> Option<(u16, usize)> {
    if ethertype == ETH_PPPOE_SESSION {
        // 6-byte PPPoE header, then the 2-byte PPP protocol.
        if d.len() < 8 {
            return None;
        }
        return match u16::from_be_bytes([d[6], d[7]]) {
            0x0021 => Some((ETH_IPV4, 8)),
            0x0057 => Some((ETH_IPV6, 8)),
            _ => None,
        };
    }
    // MPLS: 4-byte labels until the bottom-of-stack bit; then the IP version nibble decides.
    let mut off = 0;
    loop {
        if d.len() < off + 4 || off >= 64 {
            return None;
        }
        let bottom = d[off + 2] & 1 == 1;
        off += 4;
        if bottom {
            break;
        }
    }
    match d.get(off).map(|b| b >> 4) {
        Some(4) => Some((ETH_IPV4, off)),
        Some(6) => Some((ETH_IPV6, off)),
        _ => None,
    }
}

/// BSD loopback (NULL: family in the capturing host's byte order; LOOP: network order).
fn null(p: &mut Packet<'_>, data: &[u8], network_order: bool) -> Option<(u16, usize)> {
    if data.len() < 4 {
        p.issue = issue(Layer::Link, 0, "truncated loopback header");
        return None;
    }
    let b = [data[0], data[1], data[2], data[3]];
    let (le, be) = (u32::from_le_bytes(b), u32::from_be_bytes(b));
    // A family is small, so whichever reading is small is right. When neither is, old Linux
    // loopback captures carry an ethertype in the last two bytes (Wireshark reads it so).
    let family = if network_order {
        be
    } else if le < 0x10000 {
        le
    } else {
        be
    };
    p.link = Link::Null { family };
    let et = match family {
        2 => ETH_IPV4,
        24 | 28 | 30 => ETH_IPV6,
        f if f >= 0x10000 && !network_order => (f & 0xffff) as u16,
        _ => {
            p.net = Net::Other { ethertype: 0 };
            p.issue = issue(Layer::Link, 0, "unknown loopback address family");
            return None;
        }
    };
    Some((et, 4))
}

/// Linux NFLOG: a 4-byte header (family, version, resource id) then TLVs in host byte
/// order; the packet is the payload TLV (type 9).
fn nflog(p: &mut Packet<'_>, data: &[u8], base: usize) -> Option<(u16, usize)> {
    p.link = Link::Raw;
    let d = &data[base.min(data.len())..];
    if d.len() < 4 {
        p.issue = issue(Layer::Link, base as u32, "truncated NFLOG header");
        return None;
    }
    let et = match d[0] {
        2 => ETH_IPV4,
        10 => ETH_IPV6,
        _ => {
            p.issue = issue(
                Layer::Link,
                base as u32,
                "NFLOG family is neither IPv4 nor IPv6",
            );
            return None;
        }
    };
    let mut off = 4;
    while off + 4 <= d.len() {
        let len = usize::from(u16::from_le_bytes([d[off], d[off + 1]]));
        let ty = u16::from_le_bytes([d[off + 2], d[off + 3]]) & 0x7fff;
        if len < 4 {
            break;
        }
        if ty == 9 {
            return Some((et, base + off + 4));
        }
        off += (len + 3) & !3;
    }
    p.issue = issue(Layer::Link, base as u32, "NFLOG record without a payload");
    None
}

fn sll<'a>(p: &mut Packet<'a>, data: &'a [u8]) -> Option<(u16, usize)> {
    let h = match LinuxSllHeaderSlice::from_slice(data) {
        Ok(h) => h,
        Err(_) => {
            // etherparse rejects unknown hardware types; read the fixed 16 bytes ourselves.
            if data.len() < 16 {
                p.issue = issue(Layer::Link, 0, "truncated Linux cooked (SLL) header");
                return None;
            }
            let packet_type = u16::from_be_bytes([data[0], data[1]]);
            let hatype = u16::from_be_bytes([data[2], data[3]]);
            let protocol = u16::from_be_bytes([data[14], data[15]]);
            p.link = Link::Sll {
                version: 1,
                packet_type,
                hatype,
                src: None,
                protocol,
                ifindex: None,
            };
            return Some((protocol, 16));
        }
    };
    let s = h.slice();
    let packet_type = u16::from_be_bytes([s[0], s[1]]);
    let hatype = u16::from_be_bytes([s[2], s[3]]);
    let alen = u16::from_be_bytes([s[4], s[5]]);
    let protocol = u16::from_be_bytes([s[14], s[15]]);
    let src = (alen == 6).then(|| Mac([s[6], s[7], s[8], s[9], s[10], s[11]]));
    p.link = Link::Sll {
        version: 1,
        packet_type,
        hatype,
        src,
        protocol,
        ifindex: None,
    };
    Some((protocol, 16))
}

/// Linux cooked capture v2 (LINKTYPE_LINUX_SLL2): 20 bytes, protocol first.
fn sll2(p: &mut Packet<'_>, d: &[u8]) -> Option<(u16, usize)> {
    if d.len() < 20 {
        p.issue = issue(Layer::Link, 0, "truncated Linux cooked (SLL2) header");
        return None;
    }
    let protocol = u16::from_be_bytes([d[0], d[1]]);
    let ifindex = u32::from_be_bytes([d[4], d[5], d[6], d[7]]);
    let hatype = u16::from_be_bytes([d[8], d[9]]);
    let packet_type = u16::from(d[10]);
    let alen = d[11];
    let src = (alen == 6).then(|| Mac([d[12], d[13], d[14], d[15], d[16], d[17]]));
    p.link = Link::Sll {
        version: 2,
        packet_type,
        hatype,
        src,
        protocol,
        ifindex: Some(ifindex),
    };
    Some((protocol, 20))
}
