//! The per-frame view (`--packets`): each frame as layer objects for JSON, and as one
//! textbook line per frame for the terminal: every layer's header fields, then the size of
//! the data it carries.
//!
//! Invariant: the JSON layer list and the text line are built from the same [`Packet`], so
//! what the terminal shows is what the JSON says.

use std::io::{self, Write};

use crate::dissect::{Link, Net, Packet, Transport};

use super::{ts_secs, IssueEntry, LayerEntry, PacketEntry, TcpOptionsEntry};

fn ethertype_hex(et: u16) -> String {
    format!("0x{et:04x}")
}

fn frames(p: &Packet<'_>) -> Option<Vec<u64>> {
    (!p.reassembled_from.is_empty()).then(|| p.reassembled_from.to_vec())
}

/// The frame as the JSON `packets` entry.
pub fn entry(p: &Packet<'_>) -> PacketEntry {
    let mut layers = Vec::with_capacity(5);
    match p.link {
        Link::Ethernet {
            src,
            dst,
            ethertype,
            ..
        } => {
            let cast = if dst.is_broadcast() {
                "broadcast"
            } else if dst.is_group() {
                "multicast"
            } else {
                "unicast"
            };
            layers.push(LayerEntry::Ethernet {
                src: src.to_string(),
                dst: dst.to_string(),
                ethertype: ethertype_hex(ethertype),
                cast: cast.into(),
            });
            for &id in p.vlans.as_slice() {
                layers.push(LayerEntry::Vlan { id });
            }
        }
        Link::Sll {
            version,
            packet_type,
            hatype,
            src,
            protocol,
            ifindex,
        } => layers.push(LayerEntry::Sll {
            version,
            src: src.map(|m| m.to_string()),
            packet_type,
            hatype,
            protocol: ethertype_hex(protocol),
            ifindex,
        }),
        Link::Null { family } => layers.push(LayerEntry::Null { family }),
        Link::Raw => layers.push(LayerEntry::Raw {}),
        Link::Unsupported { link_type } => layers.push(LayerEntry::Data {
            what: format!("link type {link_type}"),
            len: p.wire_len,
        }),
    }
    match p.net {
        Net::None => {}
        Net::Arp(a) => layers.push(LayerEntry::Arp {
            op: match a.op {
                1 => "request".into(),
                2 => "reply".into(),
                n => n.into(),
            },
            sender_mac: a.sender_mac.to_string(),
            sender_ip: a.sender_ip.to_string(),
            target_mac: a.target_mac.to_string(),
            target_ip: a.target_ip.to_string(),
        }),
        Net::Ipv4(h) => layers.push(LayerEntry::Ipv4 {
            src: h.src.to_string(),
            dst: h.dst.to_string(),
            ttl: h.ttl,
            protocol: h.protocol,
            id: h.id,
            df: h.df,
            mf: h.mf,
            frag_offset: h.frag_offset,
            total_len: h.total_len,
            header_len: h.header_len,
            checksum_ok: h.checksum_ok,
            payload_len: u32::from(h.total_len).saturating_sub(u32::from(h.header_len)),
        }),
        Net::Ipv6(h) => layers.push(LayerEntry::Ipv6 {
            src: h.src.to_string(),
            dst: h.dst.to_string(),
            hop_limit: h.hop_limit,
            protocol: h.protocol,
            flow_label: h.flow_label,
            payload_len: h.payload_len,
            fragment: h.fragment,
        }),
        Net::Other { ethertype } => layers.push(LayerEntry::Data {
            what: if ethertype < 0x0600 {
                "802.3 LLC".into()
            } else {
                format!("ethertype {}", ethertype_hex(ethertype))
            },
            len: p.wire_len,
        }),
    }
    match p.transport {
        Transport::None => {}
        Transport::Tcp(t) => layers.push(LayerEntry::Tcp {
            src_port: t.src_port,
            dst_port: t.dst_port,
            seq: t.seq,
            ack: t.ack,
            flags: t.flags.names(),
            window: t.window,
            header_len: t.header_len,
            payload_len: t.payload_len,
            options: TcpOptionsEntry {
                mss: t.options.mss,
                window_scale: t.options.window_scale,
                sack_permitted: t.options.sack_permitted,
                sack_blocks: t.options.sack_blocks,
                tsval: t.options.timestamps.map(|x| x.0),
                tsecr: t.options.timestamps.map(|x| x.1),
            },
            checksum_ok: t.checksum_ok,
            reassembled_from: frames(p),
        }),
        Transport::Udp(u) => layers.push(LayerEntry::Udp {
            src_port: u.src_port,
            dst_port: u.dst_port,
            length: u.length,
            payload_len: u.payload_len,
            checksum_ok: u.checksum_ok,
            reassembled_from: frames(p),
        }),
        Transport::Icmp(i) if i.v6 => layers.push(LayerEntry::Icmpv6 {
            icmp_type: i.icmp_type,
            code: i.code,
        }),
        Transport::Icmp(i) => layers.push(LayerEntry::Icmp {
            icmp_type: i.icmp_type,
            code: i.code,
            reassembled_from: frames(p),
        }),
        Transport::Fragment => layers.push(LayerEntry::Data {
            what: "ip fragment".into(),
            len: fragment_len(p),
        }),
        Transport::Other { protocol } => layers.push(LayerEntry::Data {
            what: format!("ip protocol {protocol}"),
            len: ip_payload_len(p),
        }),
    }
    PacketEntry {
        frame: p.frame,
        file: p.file_index,
        ts: ts_secs(p.ts_ns),
        ts_ns: p.ts_ns,
        len: p.wire_len,
        caplen: p.cap_len,
        port: p.port,
        layers,
        issue: p.issue.map(|i| IssueEntry {
            layer: i.layer.name().into(),
            offset: i.offset,
            reason: i.reason.into(),
        }),
    }
}

fn ip_payload_len(p: &Packet<'_>) -> u32 {
    match p.net {
        Net::Ipv4(h) => u32::from(h.total_len).saturating_sub(u32::from(h.header_len)),
        Net::Ipv6(h) => u32::from(h.payload_len),
        _ => 0,
    }
}

fn fragment_len(p: &Packet<'_>) -> u32 {
    ip_payload_len(p)
}

/// Writes the textbook line for one frame. `t0` is the first frame's timestamp.
pub fn write_line(w: &mut dyn Write, p: &Packet<'_>, t0: i64) -> io::Result<()> {
    let rel = (p.ts_ns - t0) as f64 / 1e9;
    write!(w, "#{:<6} {:>11.6}  {:>5} B  ", p.frame, rel, p.wire_len)?;
    match p.link {
        Link::Ethernet {
            src,
            dst,
            inner_ethertype,
            ..
        } => {
            write!(w, "Ethernet {src} > {dst}")?;
            for id in p.vlans.as_slice() {
                write!(w, " | VLAN {id}")?;
            }
            if matches!(p.net, Net::Other { .. }) {
                write!(w, " type {}", ethertype_hex(inner_ethertype))?;
            }
        }
        Link::Sll {
            src, packet_type, ..
        } => {
            write!(
                w,
                "SLL from {} (packet type {packet_type})",
                src.map_or("?".into(), |m| m.to_string())
            )?;
        }
        Link::Null { family } => write!(w, "Loopback family {family}")?,
        Link::Raw => write!(w, "Raw")?,
        Link::Unsupported { link_type } => write!(w, "link type {link_type} (not dissected)")?,
    }
    match p.net {
        Net::None => {}
        Net::Arp(a) => match a.op {
            1 => write!(
                w,
                " | ARP request who-has {} tell {} ({})",
                a.target_ip, a.sender_ip, a.sender_mac
            )?,
            2 => write!(
                w,
                " | ARP reply {} is-at {} (to {})",
                a.sender_ip, a.sender_mac, a.target_ip
            )?,
            n => write!(w, " | ARP op {n}")?,
        },
        Net::Ipv4(h) => {
            write!(w, " | IPv4 {} > {} ttl {} id {}", h.src, h.dst, h.ttl, h.id)?;
            if h.df {
                write!(w, " DF")?;
            }
            if h.is_fragment() {
                write!(
                    w,
                    " frag off {}{}",
                    h.frag_offset,
                    if h.mf { " MF" } else { "" }
                )?;
            }
            if !h.checksum_ok {
                write!(w, " [bad hdr cksum]")?;
            }
        }
        Net::Ipv6(h) => write!(w, " | IPv6 {} > {} hlim {}", h.src, h.dst, h.hop_limit)?,
        Net::Other { .. } => {}
    }
    match p.transport {
        Transport::None => {}
        Transport::Tcp(t) => {
            write!(
                w,
                " | TCP {} > {} [{}] seq {} ack {} win {}",
                t.src_port,
                t.dst_port,
                t.flags.names(),
                t.seq,
                t.ack,
                t.window
            )?;
            let o = t.options;
            let mut opts = Vec::new();
            if let Some(m) = o.mss {
                opts.push(format!("mss {m}"));
            }
            if o.sack_permitted {
                opts.push("sackOK".into());
            }
            if o.sack_blocks > 0 {
                opts.push(format!("sack {}", o.sack_blocks));
            }
            if let Some((a, b)) = o.timestamps {
                opts.push(format!("TS {a}:{b}"));
            }
            if let Some(s) = o.window_scale {
                opts.push(format!("wscale {s}"));
            }
            if !opts.is_empty() {
                write!(w, " <{}>", opts.join(","))?;
            }
            if t.checksum_ok == Some(false) {
                write!(w, " [bad cksum]")?;
            }
            write!(w, " | {} B data", t.payload_len)?;
        }
        Transport::Udp(u) => {
            write!(w, " | UDP {} > {} len {}", u.src_port, u.dst_port, u.length)?;
            if u.checksum_ok == Some(false) {
                write!(w, " [bad cksum]")?;
            }
            write!(w, " | {} B data", u.payload_len)?;
        }
        Transport::Icmp(i) => write!(
            w,
            " | {} type {} code {}",
            if i.v6 { "ICMPv6" } else { "ICMP" },
            i.icmp_type,
            i.code
        )?,
        Transport::Fragment => write!(w, " | fragment {} B", fragment_len(p))?,
        Transport::Other { protocol } => {
            write!(w, " | IP proto {protocol} {} B", ip_payload_len(p))?
        }
    }
    if !p.reassembled_from.is_empty() {
        let list: Vec<String> = p.reassembled_from.iter().map(|f| format!("#{f}")).collect();
        write!(w, " (reassembled from {})", list.join(" "))?;
    }
    if let Some(i) = p.issue {
        write!(
            w,
            "  !! {} at byte {}: {}",
            i.layer.name(),
            i.offset,
            i.reason
        )?;
    }
    writeln!(w)
}
