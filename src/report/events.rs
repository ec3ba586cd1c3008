//! Event lines: one line per event as it happens (a connection opened, a connection
//! finalized), for live captures whose output is not a terminal (pipes into jq, grep, a
//! log shipper). The NDJSON output of the ecosystem issue builds on the same events.

use std::io::{self, Write};

use crate::analyze::{Ctx, Dir};
use crate::dissect::{Packet, Transport};

use super::table::utc;

/// Writes the events the analyzers recorded in `ctx` while handling `p`.
pub fn write_ctx_events(w: &mut dyn Write, p: &Packet<'_>, ctx: &Ctx) -> io::Result<()> {
    if let Some(c) = ctx.conn.filter(|c| c.opened) {
        let (proto, sport, dport) = match p.transport {
            Transport::Tcp(t) => ("tcp", t.src_port, t.dst_port),
            Transport::Udp(u) => ("udp", u.src_port, u.dst_port),
            _ => ("?", 0, 0),
        };
        if let Some((src, dst)) = p.ips() {
            // The opening packet goes from orig to resp unless the tracker flipped it.
            let (o, r) = if c.dir == Dir::Orig {
                ((src, sport), (dst, dport))
            } else {
                ((dst, dport), (src, sport))
            };
            writeln!(
                w,
                "{} conn-open   #{} {proto} {} > {} frame {}",
                utc(p.ts_ns),
                c.id,
                endpoint(o.0, o.1),
                endpoint(r.0, r.1),
                p.frame
            )?;
        }
    }
    for id in &ctx.finalized {
        writeln!(w, "{} conn-final  #{id} frame {}", utc(p.ts_ns), p.frame)?;
    }
    Ok(())
}

/// `ip:port`, with IPv6 in brackets.
pub fn endpoint(ip: std::net::IpAddr, port: u16) -> String {
    match ip {
        std::net::IpAddr::V4(a) => format!("{a}:{port}"),
        std::net::IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}
