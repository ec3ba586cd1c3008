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

pub mod defrag;
pub mod packet;

use std::net::{Ipv4Addr, Ipv6Addr};

use etherparse::{
    checksum::Sum16BitWords, Ethernet2HeaderSlice, IpNumber, Ipv4HeaderSlice, Ipv6ExtensionsSlice,
    Ipv6HeaderSlice, LinuxSllHeaderSlice, SingleVlanHeaderSlice, TcpHeaderSlice, TcpOptionElement,
    UdpHeaderSlice,
};

use crate::capture::{linktype, RawPacket};
pub use packet::*;

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

const IP_ICMP: u8 = 1;
const IP_TCP: u8 = 6;
const IP_UDP: u8 = 17;
const IP_ICMPV6: u8 = 58;

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
fn link_layer<'a>(
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
fn peel_tunnel(ethertype: u16, d: &[u8]) -> Option<(u16, usize)> {
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

fn ipv4<'a>(
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

/// A TCP header etherparse rejects (cut short, or a data offset that does not fit): keep
/// the fixed fields when the first 20 bytes are there, as Wireshark does, with no payload.
fn tcp_fixed(p: &mut Packet<'_>, ip: &IpPayload<'_>) {
    let d = ip.data;
    if d.len() < 20 {
        p.transport = Transport::Other { protocol: IP_TCP };
        if p.issue.is_none() {
            p.issue = issue(Layer::Tcp, ip.offset, "truncated TCP header");
        }
        return;
    }
    let hlen = u32::from(d[12] >> 4) * 4;
    let (payload_len, reason) = if hlen < 20 {
        (0, "TCP data offset smaller than 5")
    } else if hlen > ip.wire_len {
        (0, "TCP header longer than the IP payload")
    } else {
        (ip.wire_len - hlen, "truncated TCP header")
    };
    p.transport = Transport::Tcp(Tcp {
        src_port: u16::from_be_bytes([d[0], d[1]]),
        dst_port: u16::from_be_bytes([d[2], d[3]]),
        seq: u32::from_be_bytes([d[4], d[5], d[6], d[7]]),
        ack: u32::from_be_bytes([d[8], d[9], d[10], d[11]]),
        flags: TcpFlags((u16::from(d[12] & 0x0f) << 8) | u16::from(d[13])),
        window: u16::from_be_bytes([d[14], d[15]]),
        header_len: hlen as u8,
        urgent: u16::from_be_bytes([d[18], d[19]]),
        options: TcpOptions {
            malformed: true,
            ..TcpOptions::default()
        },
        payload_len,
        payload: &[],
        checksum_ok: None,
    });
    if p.issue.is_none() {
        p.issue = issue(Layer::Tcp, ip.offset, reason);
    }
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

fn transport<'a>(verify: bool, p: &mut Packet<'a>, ip: IpPayload<'a>) {
    let data = ip.data;
    match ip.protocol {
        IP_TCP => {
            let h = match TcpHeaderSlice::from_slice(data) {
                Ok(h) => h,
                Err(_) => {
                    tcp_fixed(p, &ip);
                    return;
                }
            };
            let hlen = h.slice().len();
            let payload_len = ip.wire_len.saturating_sub(hlen as u32);
            let payload = &data[hlen..];
            let mut options = TcpOptions::default();
            for opt in h.options_iterator() {
                match opt {
                    Ok(TcpOptionElement::MaximumSegmentSize(m)) => options.mss = Some(m),
                    Ok(TcpOptionElement::WindowScale(w)) => options.window_scale = Some(w),
                    Ok(TcpOptionElement::SelectiveAcknowledgementPermitted) => {
                        options.sack_permitted = true
                    }
                    Ok(TcpOptionElement::SelectiveAcknowledgement(_, rest)) => {
                        options.sack_blocks = 1 + rest.iter().filter(|r| r.is_some()).count() as u8
                    }
                    Ok(TcpOptionElement::Timestamp(a, b)) => options.timestamps = Some((a, b)),
                    Ok(TcpOptionElement::Noop) => {}
                    Err(_) => {
                        options.malformed = true;
                        break;
                    }
                }
            }
            // Twelve flag bits, as Wireshark's tcp.flags: three reserved bits, NS, then
            // CWR ECE URG ACK PSH RST SYN FIN.
            let flags = (u16::from(h.slice()[12] & 0x0f) << 8) | u16::from(h.slice()[13]);
            let checksum_ok = if verify && payload.len() as u32 == payload_len {
                Some(transport_checksum_ok(
                    ip.pseudo,
                    IP_TCP,
                    data,
                    hlen + payload.len(),
                ))
            } else {
                None
            };
            p.transport = Transport::Tcp(Tcp {
                src_port: h.source_port(),
                dst_port: h.destination_port(),
                seq: h.sequence_number(),
                ack: h.acknowledgment_number(),
                flags: TcpFlags(flags),
                window: h.window_size(),
                header_len: hlen as u8,
                urgent: h.urgent_pointer(),
                options,
                payload_len,
                payload,
                checksum_ok,
            });
            if options.malformed && p.issue.is_none() {
                p.issue = issue(Layer::Tcp, ip.offset + 20, "malformed TCP options");
            }
        }
        IP_UDP => {
            let h = match UdpHeaderSlice::from_slice(data) {
                Ok(h) => h,
                Err(_) => {
                    p.transport = Transport::Other { protocol: IP_UDP };
                    if p.issue.is_none() {
                        p.issue = issue(Layer::Udp, ip.offset, "truncated UDP header");
                    }
                    return;
                }
            };
            let length = h.length();
            // The UDP length field is the wire truth unless it is impossible; then the
            // IP length decides (as Wireshark does, with an expert note).
            let payload_len = if usize::from(length) < 8 || u32::from(length) > ip.wire_len {
                if p.issue.is_none() {
                    p.issue = issue(
                        Layer::Udp,
                        ip.offset + 4,
                        "UDP length disagrees with the IP length",
                    );
                }
                ip.wire_len.saturating_sub(8)
            } else {
                u32::from(length) - 8
            };
            let avail = &data[8..];
            let payload = &avail[..avail.len().min(payload_len as usize)];
            let checksum_ok = if verify && payload.len() as u32 == payload_len {
                let zero = h.checksum() == 0;
                match ip.pseudo {
                    Pseudo::V4(..) if zero => None,
                    _ => Some(transport_checksum_ok(
                        ip.pseudo,
                        IP_UDP,
                        data,
                        8 + payload.len(),
                    )),
                }
            } else {
                None
            };
            p.transport = Transport::Udp(Udp {
                src_port: h.source_port(),
                dst_port: h.destination_port(),
                length,
                payload_len,
                payload,
                checksum_ok,
            });
        }
        IP_ICMP | IP_ICMPV6 => {
            if data.len() < 2 {
                p.transport = Transport::Other {
                    protocol: ip.protocol,
                };
                if p.issue.is_none() {
                    p.issue = issue(Layer::Icmp, ip.offset, "truncated ICMP header");
                }
                return;
            }
            p.transport = Transport::Icmp(Icmp {
                v6: ip.protocol == IP_ICMPV6,
                icmp_type: data[0],
                code: data[1],
            });
        }
        other => p.transport = Transport::Other { protocol: other },
    }
}

fn issue(layer: Layer, offset: u32, reason: &'static str) -> Option<Issue> {
    Some(Issue {
        layer,
        offset,
        reason,
    })
}

/// One's-complement check over the pseudo-header and `len` bytes of the transport segment.
fn transport_checksum_ok(pseudo: Pseudo, protocol: u8, data: &[u8], len: usize) -> bool {
    let seg = &data[..len.min(data.len())];
    let mut sum = match pseudo {
        Pseudo::V4(s, d) => Sum16BitWords::new().add_4bytes(s).add_4bytes(d),
        Pseudo::V6(s, d) => Sum16BitWords::new().add_16bytes(s).add_16bytes(d),
    };
    sum = sum.add_2bytes([0, protocol]);
    // The pseudo-header length is 16 bits for IPv4, 32 for IPv6; a jumbo length cannot occur
    // here because IPv6 payload lengths are 16 bits in the header we read.
    sum = sum.add_2bytes((seg.len() as u16).to_be_bytes());
    sum.add_slice(seg).ones_complement() == 0
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

fn arp(p: &mut Packet<'_>, d: &[u8], off: u32) {
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

fn ipv6<'a>(p: &mut Packet<'a>, data: &'a [u8], off: u32) -> Option<IpPayload<'a>> {
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
