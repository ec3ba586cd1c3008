//! Terminal views of the layer-2 sections: `--mac-table` (the switch table as a textbook
//! draws it, a learning timeline, flood/forward totals) and `--arp` (ARP table, exchanges,
//! unanswered requests, gratuitous ARP and probes, conflicts).
//!
//! Rendered from the finished [`Report`] only, so a report read back from JSON renders the
//! same. Every table shows at most `limit` rows and says how many it left out.

use std::io::{self, Write};

use comfy_table::Cell;

use super::l2::{ArpSection, MacEntry, MacTable};
use super::table::{new_table, num, shown, write_table};
use super::Report;

fn vlan(v: Option<u16>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn opt_frame(f: Option<u64>) -> String {
    f.map_or_else(|| "-".into(), |f| f.to_string())
}

/// Seconds since the first frame of the capture, for the timeline and tables.
fn rel(r: &Report, ts: f64) -> String {
    let t0 = r.stats.first_ts.unwrap_or(ts);
    format!("{:.6}", ts - t0)
}

fn port_name(r: &Report, port: u32) -> String {
    match r
        .source
        .interfaces
        .iter()
        .find(|i| i.port == port)
        .and_then(|i| i.name.as_deref())
    {
        Some(name) => format!("{port} ({name})"),
        None => port.to_string(),
    }
}

fn entry_vlans(e: &MacEntry) -> String {
    let mut parts: Vec<String> = Vec::new();
    if e.untagged || e.vlans.is_empty() {
        parts.push("-".into());
    }
    parts.extend(e.vlans.iter().map(|v| v.to_string()));
    parts.join(",")
}

fn entry_ips(e: &MacEntry) -> String {
    let mut s = e.ips.join(", ");
    if e.ips_truncated {
        s.push_str(", …");
    }
    if !e.ipv6.is_empty() {
        if !s.is_empty() {
            s.push_str("; ");
        }
        s.push_str(&format!("{} IPv6", e.ipv6.len()));
        if e.ipv6_truncated {
            s.push('+');
        }
    }
    s
}

/// `--mac-table`: the table, the learning timeline, aged-out entries, ports and totals.
pub fn write_mac_table(w: &mut dyn Write, r: &Report, limit: usize) -> io::Result<()> {
    let Some(m) = &r.mac_table else {
        return Ok(());
    };
    write_entries(w, r, m, limit)?;
    write_timeline(w, r, m, limit)?;
    write_aged(w, r, m, limit)?;
    if m.ports.len() > 1 {
        let mut t = new_table(&["port", "frames in", "learnings"]);
        for p in &m.ports {
            t.add_row(vec![
                Cell::new(port_name(r, p.port)),
                num(p.frames),
                num(p.learned),
            ]);
        }
        write_table(w, "Switch ports (one per capture interface)", &t, 0, 0)?;
    }
    write_destinations(w, m, limit)?;
    write_totals(w, m)
}

fn write_entries(w: &mut dyn Write, r: &Report, m: &MacTable, limit: usize) -> io::Result<()> {
    let mut t = new_table(&[
        "vlan",
        "mac",
        "port",
        "vendor",
        "U/L",
        "ips",
        "learned",
        "first",
        "last",
        "frames",
        "bytes",
        "to it",
        "flooded to it",
        "moves",
        "state",
    ]);
    let n = shown(limit, m.entries.len());
    for e in m.entries.iter().take(n) {
        let state = if e.in_table {
            "in table"
        } else if e.learned_frame.is_none() && (e.group || e.mac == "00:00:00:00:00:00") {
            "invalid source"
        } else if e.learned_frame.is_none() {
            "not learned"
        } else {
            "aged out"
        };
        t.add_row(vec![
            Cell::new(entry_vlans(e)),
            Cell::new(&e.mac),
            Cell::new(port_name(r, e.port)),
            Cell::new(e.vendor.as_deref().unwrap_or("-")),
            Cell::new(if e.locally_administered {
                "local"
            } else {
                "global"
            }),
            Cell::new(entry_ips(e)),
            num(opt_frame(e.learned_frame)),
            num(e.first_frame),
            num(e.last_frame),
            num(e.frames),
            num(e.bytes),
            num(e.rx_frames),
            num(e.unknown_unicast_floods),
            num(e.moves_total),
            Cell::new(state),
        ]);
    }
    let title = format!(
        "MAC learning table (a switch replaying every Ethernet frame; port = capture interface; \
         aging {} s; {} of {} entries in the table at the end)",
        m.aging_s, m.totals.in_table, m.table_size
    );
    write_table(w, &title, &t, n, m.entries.len())
}

/// One line of the learning timeline.
struct Event {
    frame: u64,
    order: u8,
    text: String,
}

fn write_timeline(w: &mut dyn Write, r: &Report, m: &MacTable, limit: usize) -> io::Result<()> {
    let mut ev: Vec<Event> = Vec::new();
    for e in &m.entries {
        if let Some(f) = e.learned_frame {
            let port = e.learned_port.unwrap_or(e.port);
            ev.push(Event {
                frame: f,
                order: 0,
                text: format!(
                    "learned {} on port {} vlan {}",
                    e.mac,
                    port_name(r, port),
                    vlan(e.learned_vlan)
                ),
            });
        }
        if let Some(f) = e.first_forwarded_frame {
            ev.push(Event {
                frame: f,
                order: 1,
                text: format!("first frame to {} forwarded as unicast, not flooded", e.mac),
            });
        }
        for mv in &e.moves {
            ev.push(Event {
                frame: mv.frame,
                order: 2,
                text: format!(
                    "{} moved ({}): port {} vlan {} → port {} vlan {}",
                    e.mac,
                    mv.kind,
                    port_name(r, mv.from_port),
                    vlan(mv.from_vlan),
                    port_name(r, mv.to_port),
                    vlan(mv.to_vlan)
                ),
            });
        }
        for a in &e.aged {
            if let Some(f) = a.relearned_frame {
                ev.push(Event {
                    frame: f,
                    order: 0,
                    text: format!(
                        "relearned {} (its entry aged out at +{} s)",
                        e.mac,
                        rel(r, a.expired_ts)
                    ),
                });
            }
        }
    }
    ev.sort_by(|a, b| a.frame.cmp(&b.frame).then(a.order.cmp(&b.order)));
    let n = shown(limit, ev.len());
    let mut t = new_table(&["frame", "event"]);
    for e in ev.iter().take(n) {
        t.add_row(vec![num(e.frame), Cell::new(&e.text)]);
    }
    write_table(
        w,
        "Learning timeline (each source learned before its frame's destination is looked up)",
        &t,
        n,
        ev.len(),
    )
}

fn write_aged(w: &mut dyn Write, r: &Report, m: &MacTable, limit: usize) -> io::Result<()> {
    let rows: Vec<(&MacEntry, &super::l2::MacAged)> = m
        .entries
        .iter()
        .flat_map(|e| e.aged.iter().map(move |a| (e, a)))
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let n = shown(limit, rows.len());
    let mut t = new_table(&[
        "mac",
        "vlan",
        "port",
        "last frame",
        "expired at (s)",
        "relearned",
    ]);
    for (e, a) in rows.iter().take(n) {
        t.add_row(vec![
            Cell::new(&e.mac),
            Cell::new(vlan(a.vlan)),
            Cell::new(port_name(r, a.port)),
            num(a.last_frame),
            num(rel(r, a.expired_ts)),
            num(opt_frame(a.relearned_frame)),
        ]);
    }
    let title = format!(
        "Aged out ({} entries; not refreshed for more than {} s of capture time)",
        m.totals.aged_out, m.aging_s
    );
    write_table(w, &title, &t, n, rows.len())
}

fn write_destinations(w: &mut dyn Write, m: &MacTable, limit: usize) -> io::Result<()> {
    if m.destinations.is_empty() {
        return Ok(());
    }
    let mut rows: Vec<&super::l2::MacDestination> = m.destinations.iter().collect();
    rows.sort_by(|a, b| {
        b.frames
            .cmp(&a.frames)
            .then(a.first_frame.cmp(&b.first_frame))
    });
    let n = shown(limit, rows.len());
    let mut t = new_table(&["mac", "kind", "vendor", "first", "frames", "bytes"]);
    for d in rows.iter().take(n) {
        t.add_row(vec![
            Cell::new(&d.mac),
            Cell::new(&d.kind),
            Cell::new(d.vendor.as_deref().unwrap_or("-")),
            num(d.first_frame),
            num(d.frames),
            num(d.bytes),
        ]);
    }
    write_table(
        w,
        "Destinations never seen as a source (always flooded)",
        &t,
        n,
        rows.len(),
    )
}

fn write_totals(w: &mut dyn Write, m: &MacTable) -> io::Result<()> {
    let s = &m.totals;
    let pct = |n: u64| {
        if s.frames == 0 {
            "-".to_string()
        } else {
            format!("{:.1}%", n as f64 * 100.0 / s.frames as f64)
        }
    };
    let mut t = new_table(&["switch decision", "frames", "share"]);
    for (k, v) in [
        ("broadcast (flooded)", s.broadcast),
        ("multicast (flooded)", s.multicast_flooded),
        ("unknown unicast (flooded)", s.unknown_unicast_flooded),
        ("known unicast (forwarded)", s.unicast_forwarded),
    ] {
        t.add_row(vec![Cell::new(k), num(v), num(pct(v))]);
    }
    t.add_row(vec![
        Cell::new("  of which to the ingress port itself"),
        num(s.forwarded_same_port),
        num(pct(s.forwarded_same_port)),
    ]);
    t.add_row(vec![Cell::new("Ethernet frames"), num(s.frames), num("")]);
    t.add_row(vec![Cell::new("learnings"), num(s.learned), num("")]);
    t.add_row(vec![Cell::new("moves"), num(s.moves), num("")]);
    t.add_row(vec![Cell::new("aged out"), num(s.aged_out), num("")]);
    write_table(w, "Flood / forward totals", &t, 0, 0)?;
    let nl = &m.not_learned;
    if nl.cooked_frames > 0 {
        writeln!(
            w,
            "note: {} Linux cooked (SLL) frame(s): a cooked capture records the source address only, \
             so their sources were learned ({} had no MAC source) but no flood/forward decision \
             can be made for them and they are not in the totals above.",
            nl.cooked_frames, nl.cooked_without_source_mac
        )?;
    }
    if nl.no_link_addresses > 0 {
        writeln!(
            w,
            "note: {} frame(s) have no link-layer addresses (raw IP, loopback or other link types): \
             nothing to learn from them.",
            nl.no_link_addresses
        )?;
    }
    if nl.invalid_source > 0 {
        writeln!(
            w,
            "note: {} frame(s) had a group or all-zero source MAC: counted in their rows, never learned.",
            nl.invalid_source
        )?;
    }
    if nl.table_full > 0 {
        writeln!(
            w,
            "note: the table was full ({} entries) {} time(s): those sources were not learned \
             and frames to them were flooded.",
            m.table_size, nl.table_full
        )?;
    }
    if nl.macs_untracked + nl.destinations_untracked > 0 {
        writeln!(
            w,
            "note: per-MAC cap reached: {} frame(s) from and {} frame(s) to untracked MACs.",
            nl.macs_untracked, nl.destinations_untracked
        )?;
    }
    let notes = nl.cooked_frames
        + nl.no_link_addresses
        + nl.invalid_source
        + nl.table_full
        + nl.macs_untracked
        + nl.destinations_untracked;
    if notes > 0 {
        writeln!(w)?;
    }
    Ok(())
}

/// `--arp` (`full`), or the ARP table alone for the default summary.
pub fn write_arp(w: &mut dyn Write, r: &Report, limit: usize, full: bool) -> io::Result<()> {
    let Some(a) = &r.arp else {
        return Ok(());
    };
    if a.totals.packets == 0 {
        return writeln!(w, "ARP: no ARP packets in the capture.\n");
    }
    write_arp_table(w, a, limit)?;
    if full {
        write_exchanges(w, a, limit)?;
        write_unanswered(w, a, limit)?;
        write_gratuitous(w, a, limit)?;
        write_probes(w, a, limit)?;
        write_conflicts(w, a, limit)?;
        write_unsolicited(w, a, limit)?;
    }
    let t = &a.totals;
    writeln!(
        w,
        "ARP: {} packet(s), {} request(s), {} reply(ies); {} exchange(s) answered, {} unanswered; \
         {} gratuitous ({} announcement(s)), {} probe(s), {} conflict(s), {} unsolicited repl(ies){}",
        t.packets,
        t.requests,
        t.replies,
        t.answered,
        t.unanswered,
        t.gratuitous,
        t.announcements,
        t.probes,
        t.conflicts,
        t.unsolicited_replies,
        if full { "" } else { " (--arp shows them)" }
    )?;
    let l = &a.limits;
    if l.bindings_dropped + l.pending_dropped + l.list_dropped > 0 {
        writeln!(
            w,
            "note: caps reached: {} binding(s), {} waiting request(s), {} list entr(ies) not kept.",
            l.bindings_dropped, l.pending_dropped, l.list_dropped
        )?;
    }
    writeln!(w)
}

fn write_arp_table(w: &mut dyn Write, a: &ArpSection, limit: usize) -> io::Result<()> {
    let n = shown(limit, a.table.len());
    let mut t = new_table(&[
        "ip", "mac", "vendor", "vlan", "first", "last", "packets", "note",
    ]);
    for b in a.table.iter().take(n) {
        let conflict = a.conflicts.iter().any(|c| c.ip == b.ip && c.vlan == b.vlan);
        t.add_row(vec![
            Cell::new(&b.ip),
            Cell::new(&b.mac),
            Cell::new(b.vendor.as_deref().unwrap_or("-")),
            Cell::new(vlan(b.vlan)),
            num(b.first_frame),
            num(b.last_frame),
            num(b.packets),
            Cell::new(if conflict { "CONFLICT" } else { "" }),
        ]);
    }
    write_table(
        w,
        "ARP table (sender IP → MAC of every ARP packet, requests included)",
        &t,
        n,
        a.table.len(),
    )
}

fn write_exchanges(w: &mut dyn Write, a: &ArpSection, limit: usize) -> io::Result<()> {
    let n = shown(limit, a.exchanges.len());
    let mut t = new_table(&[
        "request",
        "who-has",
        "tell",
        "reply",
        "is-at",
        "latency ms",
        "note",
    ]);
    for x in a.exchanges.iter().take(n) {
        let mut note = Vec::new();
        if x.unicast {
            note.push("unicast request");
        }
        if x.retransmission {
            note.push("retransmission");
        }
        if x.reply_frame.is_none() {
            note.push("unanswered");
        }
        t.add_row(vec![
            num(x.request_frame),
            Cell::new(&x.target_ip),
            Cell::new(format!("{} ({})", x.sender_ip, x.sender_mac)),
            num(opt_frame(x.reply_frame)),
            Cell::new(x.answer_mac.as_deref().unwrap_or("-")),
            num(x
                .latency_ms
                .map_or_else(|| "-".into(), |l| format!("{l:.3}"))),
            Cell::new(note.join(", ")),
        ]);
    }
    write_table(w, "ARP exchanges", &t, n, a.exchanges.len())
}

fn write_unanswered(w: &mut dyn Write, a: &ArpSection, limit: usize) -> io::Result<()> {
    let rows: Vec<_> = a
        .exchanges
        .iter()
        .filter(|x| x.reply_frame.is_none())
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let n = shown(limit, rows.len());
    let mut t = new_table(&["request", "who-has", "tell", "retransmission"]);
    for x in rows.iter().take(n) {
        t.add_row(vec![
            num(x.request_frame),
            Cell::new(&x.target_ip),
            Cell::new(&x.sender_ip),
            Cell::new(if x.retransmission { "yes" } else { "" }),
        ]);
    }
    write_table(w, "Unanswered ARP requests", &t, n, rows.len())
}

fn write_gratuitous(w: &mut dyn Write, a: &ArpSection, limit: usize) -> io::Result<()> {
    if a.gratuitous.is_empty() {
        return Ok(());
    }
    let n = shown(limit, a.gratuitous.len());
    let mut t = new_table(&["frame", "kind", "ip", "mac", "vlan"]);
    for g in a.gratuitous.iter().take(n) {
        t.add_row(vec![
            num(g.frame),
            Cell::new(&g.kind),
            Cell::new(&g.ip),
            Cell::new(&g.mac),
            Cell::new(vlan(g.vlan)),
        ]);
    }
    write_table(
        w,
        "Gratuitous ARP (sender IP = target IP; a request is an RFC 5227 announcement)",
        &t,
        n,
        a.gratuitous.len(),
    )
}

fn write_probes(w: &mut dyn Write, a: &ArpSection, limit: usize) -> io::Result<()> {
    if a.probes.is_empty() {
        return Ok(());
    }
    let n = shown(limit, a.probes.len());
    let mut t = new_table(&["frame", "probed ip", "mac", "defended by", "reply"]);
    for p in a.probes.iter().take(n) {
        t.add_row(vec![
            num(p.frame),
            Cell::new(&p.ip),
            Cell::new(&p.mac),
            Cell::new(p.defender_mac.as_deref().unwrap_or("-")),
            num(opt_frame(p.reply_frame)),
        ]);
    }
    write_table(
        w,
        "ARP probes (RFC 5227: sender IP 0.0.0.0, is the address free?)",
        &t,
        n,
        a.probes.len(),
    )
}

fn write_conflicts(w: &mut dyn Write, a: &ArpSection, limit: usize) -> io::Result<()> {
    if a.conflicts.is_empty() {
        return Ok(());
    }
    let n = shown(limit, a.conflicts.len());
    let mut t = new_table(&["ip", "vlan", "macs", "frames", "changes"]);
    for c in a.conflicts.iter().take(n) {
        t.add_row(vec![
            Cell::new(&c.ip),
            Cell::new(vlan(c.vlan)),
            Cell::new(c.macs.join(", ")),
            Cell::new(
                c.frames
                    .iter()
                    .map(|f| f.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            num(c.changes),
        ]);
    }
    write_table(
        w,
        "ARP conflicts (one IP claimed by several MACs: duplicate address or spoofing)",
        &t,
        n,
        a.conflicts.len(),
    )
}

fn write_unsolicited(w: &mut dyn Write, a: &ArpSection, limit: usize) -> io::Result<()> {
    if a.unsolicited_replies.is_empty() {
        return Ok(());
    }
    let n = shown(limit, a.unsolicited_replies.len());
    let mut t = new_table(&["frame", "sender ip", "sender mac", "to ip", "to mac"]);
    for u in a.unsolicited_replies.iter().take(n) {
        t.add_row(vec![
            num(u.frame),
            Cell::new(&u.sender_ip),
            Cell::new(&u.sender_mac),
            Cell::new(&u.target_ip),
            Cell::new(&u.target_mac),
        ]);
    }
    write_table(
        w,
        "Unsolicited ARP replies (no request seen for them)",
        &t,
        n,
        a.unsolicited_replies.len(),
    )
}
