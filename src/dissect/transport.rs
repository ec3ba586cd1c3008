//! The transport layer: TCP, UDP and ICMP headers of an [`IpPayload`] into [`Transport`],
//! with optional TCP/UDP checksum verification (only over a whole captured segment).
//!
//! A TCP header etherparse rejects keeps its fixed fields; lengths come from the headers
//! (`payload_len`), so snap-length truncation does not change them.

use etherparse::{checksum::Sum16BitWords, TcpHeaderSlice, TcpOptionElement, UdpHeaderSlice};

use super::{issue, Icmp, IpPayload, Layer, Packet, Pseudo, Tcp, TcpFlags, TcpOptions};
use super::{Transport, Udp};

const IP_ICMP: u8 = 1;
const IP_TCP: u8 = 6;
const IP_UDP: u8 = 17;
const IP_ICMPV6: u8 = 58;

pub(super) fn transport<'a>(verify: bool, p: &mut Packet<'a>, ip: IpPayload<'a>) {
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
