//! The network layer: ARP, IPv4 and IPv6 headers into [`Net`], and the [`IpPayload`]
//! (protocol, bytes, wire length, checksum pseudo-header) the transport layer reads.
//!
//! IPv4 fragments go to the [`defrag::Defragmenter`]: a fragment yields no payload until
//! the frame that completes its datagram, which yields the whole. IPv6 fragments are not
//! reassembled. A header cut short keeps what its fixed part holds, as Wireshark does.

use std::net::{Ipv4Addr, Ipv6Addr};

use etherparse::{
    checksum::Sum16BitWords, IpNumber, Ipv4HeaderSlice, Ipv6ExtensionsSlice, Ipv6HeaderSlice,
};

use super::{defrag, issue, Arp, IpPayload, Ipv4, Ipv6, Layer, Mac, Net, Packet, Pseudo};
use super::{Transport, ETH_ARP, ETH_IPV4, ETH_IPV6};

pub(super) fn ipv4<'a>(
    defrag: &'a mut defrag::Defragmenter,
    p: &mut Packet<'a>,
    data: &'a [u8],
    off: u32,
) -> Option<IpPayload<'a>> {
    let h = match Ipv4HeaderSlice::from_slice(data) {
        Ok(h) => h,
        Err(_) => {
            // The fixed 20 bytes may still be whole (options cut by the snap length): keep
            // the addresses, as Wireshark does, and stop before the transport.
            if data.len() >= 20 && data[0] >> 4 == 4 && data[0] & 0xf >= 5 {
                p.net = Net::Ipv4(ipv4_fixed(data));
                p.issue = issue(Layer::Ipv4, off, "truncated IPv4 header (options cut)");
            } else {
                p.net = Net::Other {
                    ethertype: ETH_IPV4,
                };
                let reason = if data.len() < 20 {
                    "truncated IPv4 header"
                } else if data[0] >> 4 != 4 {
                    "IPv4 header with a version other than 4"
                } else {
                    "IPv4 header length below 20 bytes"
                };
                p.issue = issue(Layer::Ipv4, off, reason);
            }
            return None;
        }
    };
    let hlen = h.slice().len();
    let checksum_ok = Sum16BitWords::new().add_slice(h.slice()).ones_complement() == 0;
    let total_len = h.total_len();
    let frag_offset = h.fragments_offset().value() * 8;
    let info = Ipv4 {
        src: Ipv4Addr::from(h.source()),
        dst: Ipv4Addr::from(h.destination()),
        ttl: h.ttl(),
        id: h.identification(),
        df: h.dont_fragment(),
        mf: h.more_fragments(),
        frag_offset,
        protocol: h.protocol().0,
        total_len,
        header_len: hlen as u8,
        tos: data[1],
        checksum_ok,
    };
    p.net = Net::Ipv4(info);
    // A total length of 0 is what TSO leaves on the sending host: the NIC fills it in.
    // Trust the captured length then, as Wireshark does.
    let wire_payload = if total_len == 0 {
        p.issue = issue(
            Layer::Ipv4,
            off + 2,
            "total length 0 (TSO on the capturing host)",
        );
        (p.wire_len.saturating_sub(off)).saturating_sub(hlen as u32)
    } else if usize::from(total_len) < hlen {
        // A bogus length: Wireshark stops dissecting the header here, and so do we (the
        // addresses could be anything).
        p.net = Net::Other {
            ethertype: ETH_IPV4,
        };
        p.issue = issue(Layer::Ipv4, off + 2, "total length shorter than the header");
        return None;
    } else {
        u32::from(total_len) - hlen as u32
    };
    let avail = &data[hlen..];
    let payload = &avail[..avail.len().min(wire_payload as usize)];
    let pseudo = Pseudo::V4(h.source(), h.destination());
    if info.is_fragment() {
        let whole = payload.len() as u32 == wire_payload;
        match defrag.add(&info, p.frame, p.ts_ns, payload, whole) {
            defrag::Outcome::Pending => {
                p.transport = Transport::Fragment;
                return None;
            }
            defrag::Outcome::Dropped(reason) => {
                p.transport = Transport::Fragment;
                p.issue = issue(Layer::Ipv4, off, reason);
                return None;
            }
            defrag::Outcome::Complete => {
                let (bytes, frames) = defrag.completed();
                p.reassembled_from = frames;
                return Some(IpPayload {
                    protocol: info.protocol,
                    data: bytes,
                    wire_len: bytes.len() as u32,
                    offset: off + hlen as u32,
                    pseudo,
                });
            }
        }
    }
    Some(IpPayload {
        protocol: info.protocol,
        data: payload,
        wire_len: wire_payload,
        offset: off + hlen as u32,
        pseudo,
    })
}

/// The fixed IPv4 header fields from raw bytes (`data.len() >= 20` checked by the caller).
fn ipv4_fixed(d: &[u8]) -> Ipv4 {
    let flags_frag = u16::from_be_bytes([d[6], d[7]]);
    Ipv4 {
        src: Ipv4Addr::new(d[12], d[13], d[14], d[15]),
        dst: Ipv4Addr::new(d[16], d[17], d[18], d[19]),
        ttl: d[8],
        id: u16::from_be_bytes([d[4], d[5]]),
        df: flags_frag & 0x4000 != 0,
        mf: flags_frag & 0x2000 != 0,
        frag_offset: (flags_frag & 0x1fff) * 8,
        protocol: d[9],
        total_len: u16::from_be_bytes([d[2], d[3]]),
        header_len: (d[0] & 0xf) * 4,
        tos: d[1],
        checksum_ok: false,
    }
}

pub(super) fn arp(p: &mut Packet<'_>, d: &[u8], off: u32) {
    if d.len() < 8 {
        p.net = Net::Other { ethertype: ETH_ARP };
        p.issue = issue(Layer::Arp, off, "truncated ARP header");
        return;
    }
    let hw_type = u16::from_be_bytes([d[0], d[1]]);
    let proto_type = u16::from_be_bytes([d[2], d[3]]);
    let (hlen, plen) = (d[4], d[5]);
    let op = u16::from_be_bytes([d[6], d[7]]);
    let mut a = Arp {
        op,
        hw_type,
        proto_type,
        sender_mac: Mac::default(),
        sender_ip: Ipv4Addr::UNSPECIFIED,
        target_mac: Mac::default(),
        target_ip: Ipv4Addr::UNSPECIFIED,
        is_eth_ipv4: false,
    };
    if hlen == 6 && plen == 4 {
        if d.len() < 28 {
            p.net = Net::Arp(a);
            p.issue = issue(Layer::Arp, off + 8, "truncated ARP addresses");
            return;
        }
        a.sender_mac = Mac([d[8], d[9], d[10], d[11], d[12], d[13]]);
        a.sender_ip = Ipv4Addr::new(d[14], d[15], d[16], d[17]);
        a.target_mac = Mac([d[18], d[19], d[20], d[21], d[22], d[23]]);
        a.target_ip = Ipv4Addr::new(d[24], d[25], d[26], d[27]);
        a.is_eth_ipv4 = true;
    }
    p.net = Net::Arp(a);
}

pub(super) fn ipv6<'a>(p: &mut Packet<'a>, data: &'a [u8], off: u32) -> Option<IpPayload<'a>> {
    let h = match Ipv6HeaderSlice::from_slice(data) {
        Ok(h) => h,
        Err(_) => {
            p.net = Net::Other {
                ethertype: ETH_IPV6,
            };
            p.issue = issue(
                Layer::Ipv6,
                off,
                if data.len() < 40 {
                    "truncated IPv6 header"
                } else {
                    "malformed IPv6 header"
                },
            );
            return None;
        }
    };
    let payload_len = h.payload_length();
    let after = &data[40..];
    let body = &after[..after.len().min(usize::from(payload_len))];
    let mut info = Ipv6 {
        src: Ipv6Addr::from(h.source()),
        dst: Ipv6Addr::from(h.destination()),
        hop_limit: h.hop_limit(),
        flow_label: h.flow_label().value(),
        traffic_class: h.traffic_class(),
        payload_len,
        protocol: h.next_header().0,
        fragment: false,
    };
    let (protocol, rest) = match Ipv6ExtensionsSlice::from_slice(h.next_header(), body) {
        Ok((exts, next, rest)) => {
            info.fragment = exts.is_fragmenting_payload();
            (next, rest)
        }
        Err(_) => {
            info.protocol = IpNumber::IPV6_NO_NEXT_HEADER.0;
            p.net = Net::Ipv6(info);
            p.issue = issue(
                Layer::Ipv6,
                off + 40,
                "truncated or malformed IPv6 extension headers",
            );
            return None;
        }
    };
    info.protocol = protocol.0;
    p.net = Net::Ipv6(info);
    if info.fragment {
        // IPv6 fragments are not reassembled (rare on real networks); shown as fragments.
        p.transport = Transport::Fragment;
        return None;
    }
    let ext_len = (body.len() - rest.len()) as u32;
    Some(IpPayload {
        protocol: protocol.0,
        data: rest,
        wire_len: u32::from(payload_len).saturating_sub(ext_len),
        offset: off + 40 + ext_len,
        pseudo: Pseudo::V6(h.source(), h.destination()),
    })
}
