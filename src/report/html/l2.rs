//! The layer-2 part of the page: the MAC learning table as it grew (one lane per MAC on a
//! frame-number axis: which frame taught the switch each address, when frames to it
//! stopped being flooded and were forwarded, moves and ageing), the flood/forward totals,
//! and the ARP table with its exchanges, gratuitous ARP, probes and conflicts.
//!
//! Rendered from the report's `mac_table` and `arp` sections only. Lists are capped at
//! `--html-max-rows` rows (lanes at [`MAX_LANES`]) and the page says what it left out.

use maud::{html, Markup};

use super::svg::c;
use super::{bytes, n};
use crate::config::HtmlOptions;
use crate::report::l2::{ArpSection, MacEntry, MacTable};
use crate::report::Report;

/// Most MAC lanes drawn in the learning chart.
pub const MAX_LANES: usize = 200;

fn vlan(v: Option<u16>) -> String {
    v.map_or_else(|| "–".into(), |v| v.to_string())
}

fn frame(f: Option<u64>) -> String {
    f.map_or_else(|| "–".into(), |f| f.to_string())
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

fn entry_state(e: &MacEntry) -> &'static str {
    if e.in_table {
        "in table"
    } else if e.learned_frame.is_none() && (e.group || e.mac == "00:00:00:00:00:00") {
        "invalid source"
    } else if e.learned_frame.is_none() {
        "not learned"
    } else {
        "aged out"
    }
}

/// The `#mac` section.
pub fn mac_section(r: &Report, opts: &HtmlOptions) -> Markup {
    let Some(m) = &r.mac_table else {
        return html! {};
    };
    html! {
        section #mac {
            h2 { "MAC learning table" }
            p.intro {
                "A learning switch replaying every Ethernet frame (port = capture interface): it learns each frame's source "
                "address, then floods broadcast, multicast and unknown destinations and forwards frames to learned ones. "
                "Aging " (m.aging_s) " s; " (n(m.totals.in_table)) " of " (n(m.table_size)) " table entries in use at the end."
            }
            @if m.totals.frames > 0 {
                (totals_bar(m))
            } @else {
                p.note { "No Ethernet frame with both addresses: the switch made no decision." }
            }
            @if !m.entries.is_empty() {
                (lanes(r, m))
                (events(r, m, opts.max_rows))
                (entries(r, m, opts.max_rows))
            }
            @if m.ports.len() > 1 {
                h3 { "Switch ports" }
                table.data {
                    thead { tr { th { "port" } th { "frames in" } th { "learnings" } } }
                    tbody { @for p in &m.ports { tr { td { (port_name(r, p.port)) } td.num { (n(p.frames)) } td.num { (n(p.learned)) } } } }
                }
            }
            @if !m.destinations.is_empty() {
                h3 { "Destinations never seen as a source (always flooded)" }
                table.data {
                    thead { tr { th { "mac" } th { "kind" } th { "vendor" } th { "first frame" } th { "frames" } th { "bytes" } } }
                    tbody {
                        @for d in m.destinations.iter().take(opts.max_rows) {
                            tr { td { code { (d.mac) } } td { (d.kind) } td { (d.vendor.as_deref().unwrap_or("–")) } td.num { (d.first_frame) } td.num { (n(d.frames)) } td.num { (n(d.bytes)) } }
                        }
                    }
                }
                (cut_note(m.destinations.len(), opts.max_rows))
            }
            (not_learned(m))
        }
    }
}

fn cut_note(total: usize, max: usize) -> Markup {
    html! {
        @if total > max {
            p.limit-note { "The first " (n(max as u64)) " of " (n(total as u64)) " rows are shown (--html-max-rows); the JSON report has every one." }
        }
    }
}

/// The four switch decisions as one stacked bar, each part with its own fill pattern and
/// a text label, then the numbers.
fn totals_bar(m: &MacTable) -> Markup {
    let t = &m.totals;
    let parts = [
        ("broadcast (flooded)", t.broadcast, "f-bcast"),
        ("multicast (flooded)", t.multicast_flooded, "f-mcast"),
        (
            "unknown unicast (flooded)",
            t.unknown_unicast_flooded,
            "f-unknown",
        ),
        ("known unicast (forwarded)", t.unicast_forwarded, "f-fwd"),
    ];
    let total = t.frames.max(1) as f64;
    const BW: f64 = 640.0;
    let mut x = 0.0;
    let mut segs = Vec::new();
    for (label, v, cls) in parts {
        let w = BW * v as f64 / total;
        segs.push((label, v, cls, x, w));
        x += w;
    }
    html! {
        figure.chart #mac-totals {
            figcaption { "What the switch did with the " (n(t.frames)) " Ethernet frames" }
            svg.stack viewBox="0 0 660 34" width="660" height="34" role="img" aria-label="flood and forward shares" {
                @for (label, v, cls, x, w) in &segs {
                    @if *v > 0 {
                        rect class=(cls) x=(c(x + 2.0)) y="4" width=(c(w.max(1.0))) height="26" {
                            title { (label) ": " (n(*v)) }
                        }
                    }
                }
            }
            ul.keys {
                @for (label, v, cls, _, _) in &segs {
                    li {
                        svg width="18" height="12" aria-hidden="true" { rect class=(cls) x="0" y="0" width="18" height="12" {} }
                        " " (label) ": " strong { (n(*v)) } " (" (format!("{:.1}", *v as f64 * 100.0 / total)) "%)"
                    }
                }
                li { "of the forwarded, to the ingress port itself: " (n(t.forwarded_same_port)) " · learnings " (n(t.learned)) " · moves " (n(t.moves)) " · aged out " (n(t.aged_out)) }
            }
        }
    }
}

/// One lane per MAC on a frame axis: the table as it grew.
fn lanes(r: &Report, m: &MacTable) -> Markup {
    let mut rows: Vec<&MacEntry> = m.entries.iter().collect();
    // In the order the switch learned them (never-learned sources last, by first frame).
    rows.sort_by_key(|e| (e.learned_frame.unwrap_or(u64::MAX), e.first_frame));
    let shown = rows.len().min(MAX_LANES);
    let max_frame = m
        .entries
        .iter()
        .map(|e| e.last_frame)
        .max()
        .unwrap_or(0)
        .max(r.stats.packets)
        .max(1);
    const LABEL: f64 = 250.0;
    const PLOT: f64 = 560.0;
    const RIGHT: f64 = 200.0;
    const LANE: f64 = 26.0;
    const TOP: f64 = 34.0;
    let w = LABEL + PLOT + RIGHT;
    let h = TOP + LANE * shown as f64 + 10.0;
    let fx = |f: u64| {
        LABEL + PLOT * (f.saturating_sub(1)) as f64 / (max_frame.saturating_sub(1).max(1)) as f64
    };
    let ticks: Vec<u64> = {
        // 1, the round multiples, and the last frame; a tick closer than half a step to
        // its neighbour is left out so labels do not overlap.
        let step = nice_step(max_frame);
        let mut v = vec![1];
        let mut t = step;
        while t < max_frame {
            if t > step / 2 && max_frame - t >= step / 2 {
                v.push(t);
            }
            t += step;
        }
        if max_frame > 1 {
            v.push(max_frame);
        }
        v
    };
    html! {
        figure.chart #mac-lanes {
            figcaption {
                "The table as it grew: one lane per source MAC, in the order learned, on the frame-number axis. "
                span.key { span.sym.learn { "▲" } " learned (the frame that taught it)" } " · "
                span.key { span.sym.fwd { "●" } " first frame to it forwarded instead of flooded" } " · "
                span.key { span.sym.move { "◆" } " moved port/VLAN" } " · "
                span.key { span.sym.aged { "✕" } " aged out (last refresh)" } " · "
                "the bar spans its first to last frame sent."
            }
            div.scroll {
                svg.lanes viewBox=(format!("0 0 {} {}", c(w), c(h))) width=(c(w)) height=(c(h)) role="img" aria-label="MAC learning lanes" {
                    text.axis x=(c(LABEL)) y="12" { "frame" }
                    @for t in &ticks {
                        line.tick x1=(c(fx(*t))) y1="18" x2=(c(fx(*t))) y2=(c(h - 6.0)) {}
                        text.axis x=(c(fx(*t))) y="28" text-anchor="middle" { (t) }
                    }
                    @for (i, e) in rows.iter().take(shown).enumerate() {
                        @let y = TOP + LANE * i as f64 + LANE / 2.0;
                        g.lane data-mac=(e.mac) {
                            title { (lane_title(r, e)) }
                            text.mac x="4" y=(c(y + 4.0)) { (e.mac) }
                            text.vendor x="128" y=(c(y + 4.0)) { (short(e.vendor.as_deref().unwrap_or(""), 20)) }
                            line.base x1=(c(LABEL)) y1=(c(y)) x2=(c(LABEL + PLOT)) y2=(c(y)) {}
                            rect.seen x=(c(fx(e.first_frame))) y=(c(y - 4.0)) width=(c((fx(e.last_frame) - fx(e.first_frame)).max(2.0))) height="8" {}
                            @if let Some(f) = e.learned_frame {
                                path.learn d=(tri(fx(f), y)) { title { "frame " (f) ": learned " (e.mac) " on port " (port_name(r, e.learned_port.unwrap_or(e.port))) " vlan " (vlan(e.learned_vlan)) } }
                            }
                            @if let Some(f) = e.first_forwarded_frame {
                                circle.fwd cx=(c(fx(f))) cy=(c(y)) r="5" { title { "frame " (f) ": first frame to " (e.mac) " forwarded as unicast" } }
                            }
                            @for mv in &e.moves {
                                path.move d=(diamond(fx(mv.frame), y)) { title { "frame " (mv.frame) ": moved (" (mv.kind) ") port " (mv.from_port) " → " (mv.to_port) } }
                            }
                            @for a in &e.aged {
                                path.aged d=(cross(fx(a.last_frame), y)) { title { "aged out after frame " (a.last_frame) (a.relearned_frame.map(|f| format!(", learned again at frame {f}")).unwrap_or_default()) } }
                                @if let Some(f) = a.relearned_frame {
                                    path.learn d=(tri(fx(f), y)) { title { "frame " (f) ": learned again" } }
                                }
                            }
                            text.side x=(c(LABEL + PLOT + 10.0)) y=(c(y + 4.0)) {
                                "port " (e.port) " · " (n(e.frames)) " sent"
                                @if e.unknown_unicast_floods > 0 { " · " (n(e.unknown_unicast_floods)) " flooded to it" }
                            }
                        }
                    }
                }
            }
            @if rows.len() > shown {
                p.limit-note { (n(shown as u64)) " of " (n(rows.len() as u64)) " MACs drawn; the table below lists them all (up to --html-max-rows)." }
            }
        }
    }
}

fn lane_title(r: &Report, e: &MacEntry) -> String {
    format!(
        "{} · {} · port {} · {} · learned at frame {} · {} frames sent, {} to it ({} flooded before it was known) · first forwarded at frame {}",
        e.mac,
        e.vendor.as_deref().unwrap_or("unknown vendor"),
        port_name(r, e.port),
        entry_state(e),
        frame(e.learned_frame),
        e.frames,
        e.rx_frames,
        e.unknown_unicast_floods,
        frame(e.first_forwarded_frame)
    )
}

fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

fn tri(x: f64, y: f64) -> String {
    format!(
        "M{} {}L{} {}L{} {}Z",
        c(x),
        c(y - 7.0),
        c(x + 6.0),
        c(y + 5.0),
        c(x - 6.0),
        c(y + 5.0)
    )
}

fn diamond(x: f64, y: f64) -> String {
    format!(
        "M{} {}L{} {}L{} {}L{} {}Z",
        c(x),
        c(y - 6.0),
        c(x + 6.0),
        c(y),
        c(x),
        c(y + 6.0),
        c(x - 6.0),
        c(y)
    )
}

fn cross(x: f64, y: f64) -> String {
    format!(
        "M{} {}L{} {}M{} {}L{} {}",
        c(x - 5.0),
        c(y - 5.0),
        c(x + 5.0),
        c(y + 5.0),
        c(x - 5.0),
        c(y + 5.0),
        c(x + 5.0),
        c(y - 5.0)
    )
}

/// A round tick step giving about 5–10 ticks up to `max`.
fn nice_step(max: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for m in [1u64, 2, 5] {
            let s = step.saturating_mul(m);
            if max / s.max(1) <= 8 {
                return s.max(1);
            }
        }
        step = step.saturating_mul(10);
    }
}

/// Learning events in frame order.
fn events(r: &Report, m: &MacTable, max_rows: usize) -> Markup {
    let mut ev: Vec<(u64, u8, &str, String, &MacEntry)> = Vec::new();
    for e in &m.entries {
        if let Some(f) = e.learned_frame {
            let port = e.learned_port.unwrap_or(e.port);
            ev.push((
                f,
                0,
                "learned",
                format!(
                    "on port {} vlan {}",
                    port_name(r, port),
                    vlan(e.learned_vlan)
                ),
                e,
            ));
        }
        if let Some(f) = e.first_forwarded_frame {
            let floods = if e.unknown_unicast_floods > 0 {
                format!(" (after {} flooded)", n(e.unknown_unicast_floods))
            } else {
                String::new()
            };
            ev.push((
                f,
                1,
                "forwarded",
                format!("first frame to it forwarded as unicast{floods}"),
                e,
            ));
        }
        for mv in &e.moves {
            ev.push((
                mv.frame,
                2,
                "moved",
                format!(
                    "{}: port {} vlan {} → port {} vlan {}",
                    mv.kind,
                    port_name(r, mv.from_port),
                    vlan(mv.from_vlan),
                    port_name(r, mv.to_port),
                    vlan(mv.to_vlan)
                ),
                e,
            ));
        }
        for a in &e.aged {
            if let Some(f) = a.relearned_frame {
                ev.push((
                    f,
                    0,
                    "relearned",
                    format!(
                        "after its entry aged out (last refreshed at frame {})",
                        a.last_frame
                    ),
                    e,
                ));
            }
        }
    }
    ev.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    html! {
        h3 { "Learning timeline (each source is learned before its frame's destination is looked up)" }
        table.data.events {
            thead { tr { th { "frame" } th { "event" } th { "mac" } th { "vendor" } th { "detail" } } }
            tbody {
                @for (f, _, what, detail, e) in ev.iter().take(max_rows) {
                    tr class=(format!("ev-{what}")) { td.num { (f) } td { span class=(format!("sym {}", sym_class(what))) { (sym(what)) } " " (what) } td { code { (e.mac) } } td { (e.vendor.as_deref().unwrap_or("–")) } td { (detail) } }
                }
            }
        }
        (cut_note(ev.len(), max_rows))
    }
}

fn sym(what: &str) -> &'static str {
    match what {
        "learned" | "relearned" => "▲",
        "forwarded" => "●",
        "moved" => "◆",
        _ => "✕",
    }
}

fn sym_class(what: &str) -> &'static str {
    match what {
        "learned" | "relearned" => "learn",
        "forwarded" => "fwd",
        "moved" => "move",
        _ => "aged",
    }
}

fn entries(r: &Report, m: &MacTable, max_rows: usize) -> Markup {
    html! {
        h3 { "Entries (" (n(m.entries.len() as u64)) " source MACs, in the order first seen)" }
        table.data.mac {
            thead { tr {
                th { "mac" } th { "vendor" } th { "U/L" } th { "port" } th { "vlans" } th { "ips" }
                th { "learned" } th { "first" } th { "last" } th { "frames" } th { "bytes" }
                th { "to it" } th { "flooded to it" } th { "first forwarded" } th { "moves" } th { "state" }
            } }
            tbody {
                @for e in m.entries.iter().take(max_rows) {
                    tr class=(if e.in_table { "in" } else { "out" }) {
                        td { code { (e.mac) } }
                        td { (e.vendor.as_deref().unwrap_or("–")) }
                        td { (if e.locally_administered { "local" } else { "global" }) }
                        td { (port_name(r, e.port)) }
                        td { @if e.untagged || e.vlans.is_empty() { "–" } @for v in &e.vlans { " " (v) } }
                        td {
                            (e.ips.join(", ")) @if e.ips_truncated { ", …" }
                            @if !e.ipv6.is_empty() { " · " (e.ipv6.len()) " IPv6" @if e.ipv6_truncated { "+" } }
                        }
                        td.num { (frame(e.learned_frame)) }
                        td.num { (e.first_frame) } td.num { (e.last_frame) }
                        td.num { (n(e.frames)) } td.num { (bytes(e.bytes)) }
                        td.num { (n(e.rx_frames)) } td.num { (n(e.unknown_unicast_floods)) }
                        td.num { (frame(e.first_forwarded_frame)) }
                        td.num { (n(e.moves_total)) }
                        td { (entry_state(e)) }
                    }
                }
            }
        }
        (cut_note(m.entries.len(), max_rows))
    }
}

fn not_learned(m: &MacTable) -> Markup {
    let nl = &m.not_learned;
    html! {
        @if nl.cooked_frames + nl.no_link_addresses + nl.invalid_source + nl.table_full + nl.macs_untracked + nl.destinations_untracked > 0 {
            ul.notes {
                @if nl.cooked_frames > 0 { li { (n(nl.cooked_frames)) " Linux cooked (SLL) frame(s): only the source is recorded, so no flood/forward decision was made for them (" (n(nl.cooked_without_source_mac)) " had no MAC source)." } }
                @if nl.no_link_addresses > 0 { li { (n(nl.no_link_addresses)) " frame(s) without link-layer addresses (raw IP, loopback)." } }
                @if nl.invalid_source > 0 { li { (n(nl.invalid_source)) " frame(s) from a group or all-zero source (never learned)." } }
                @if nl.table_full > 0 { li.bad { (n(nl.table_full)) " learning(s) refused: the table was full." } }
                @if nl.macs_untracked > 0 { li.bad { (n(nl.macs_untracked)) " source MAC(s) not tracked (row cap)." } }
                @if nl.destinations_untracked > 0 { li.bad { (n(nl.destinations_untracked)) " destination(s) not listed (cap)." } }
            }
        }
    }
}

/// The `#arp` section.
pub fn arp_section(r: &Report, opts: &HtmlOptions) -> Markup {
    let Some(a) = &r.arp else {
        return html! {};
    };
    let t = &a.totals;
    let max = opts.max_rows;
    html! {
        section #arp {
            h2 { "ARP" }
            @if t.packets == 0 {
                p { "No ARP packets in the capture." }
            } @else {
                p.intro {
                    (n(t.packets)) " ARP packets: " (n(t.requests)) " requests, " (n(t.replies)) " replies; "
                    (n(t.answered)) " exchanges answered, " (n(t.unanswered)) " unanswered; "
                    (n(t.gratuitous)) " gratuitous (" (n(t.announcements)) " announcements), " (n(t.probes)) " probes, "
                    (n(t.conflicts)) " conflicts, " (n(t.unsolicited_replies)) " unsolicited replies."
                    @if t.sender_mac_mismatch > 0 { " " (n(t.sender_mac_mismatch)) " packets whose ARP sender MAC differs from the frame's source (proxy or forgery)." }
                }
                @if !a.conflicts.is_empty() {
                    div.alert #arp-conflicts role="note" {
                        h3 { "⚠ Conflicts: one IP claimed by several MACs" }
                        ul {
                            @for x in a.conflicts.iter().take(max) {
                                li {
                                    code { (x.ip) } @if let Some(v) = x.vlan { " (vlan " (v) ")" } " claimed by "
                                    @for (i, m) in x.macs.iter().enumerate() { @if i > 0 { ", " } code { (m) } }
                                    " · frames " (x.frames.iter().map(|f| f.to_string()).collect::<Vec<_>>().join(", "))
                                    " · " (x.changes) " change(s) of claimant"
                                }
                            }
                        }
                    }
                }
                (arp_table(a, max))
                (exchanges(a, max))
                @if !a.gratuitous.is_empty() {
                    h3 { "Gratuitous ARP (sender IP = target IP)" }
                    table.data {
                        thead { tr { th { "frame" } th { "kind" } th { "ip" } th { "mac" } th { "vlan" } } }
                        tbody { @for g in a.gratuitous.iter().take(max) { tr { td.num { (g.frame) } td { (g.kind) } td { code { (g.ip) } } td { code { (g.mac) } } td { (vlan(g.vlan)) } } } }
                    }
                    (cut_note(a.gratuitous.len(), max))
                }
                @if !a.probes.is_empty() {
                    h3 { "Probes (RFC 5227: sender IP 0.0.0.0)" }
                    table.data {
                        thead { tr { th { "frame" } th { "probed ip" } th { "mac" } th { "defended by" } } }
                        tbody { @for p in a.probes.iter().take(max) { tr { td.num { (p.frame) } td { code { (p.ip) } } td { code { (p.mac) } } td { @if let Some(d) = &p.defender_mac { code { (d) } " (frame " (frame(p.reply_frame)) ")" } @else { "–" } } } } }
                    }
                    (cut_note(a.probes.len(), max))
                }
                @if !a.unsolicited_replies.is_empty() {
                    h3 { "Unsolicited replies" }
                    table.data {
                        thead { tr { th { "frame" } th { "sender ip" } th { "sender mac" } th { "target ip" } th { "target mac" } } }
                        tbody { @for u in a.unsolicited_replies.iter().take(max) { tr { td.num { (u.frame) } td { code { (u.sender_ip) } } td { code { (u.sender_mac) } } td { code { (u.target_ip) } } td { code { (u.target_mac) } } } } }
                    }
                    (cut_note(a.unsolicited_replies.len(), max))
                }
                @if a.limits.bindings_dropped + a.limits.pending_dropped + a.limits.list_dropped > 0 {
                    p.limit-note { "Caps reached: " (n(a.limits.bindings_dropped)) " binding(s), " (n(a.limits.pending_dropped)) " waiting request(s), " (n(a.limits.list_dropped)) " list entr(ies) not kept." }
                }
            }
        }
    }
}

fn arp_table(a: &ArpSection, max: usize) -> Markup {
    html! {
        h3 { "ARP table (sender IP → MAC of every ARP packet, requests included)" }
        table.data.arp {
            thead { tr { th { "ip" } th { "mac" } th { "vendor" } th { "vlan" } th { "first frame" } th { "last frame" } th { "packets" } th { "note" } } }
            tbody {
                @for b in a.table.iter().take(max) {
                    @let conflict = a.conflicts.iter().any(|c| c.ip == b.ip && c.vlan == b.vlan);
                    tr class=(if conflict { "conflict" } else { "" }) {
                        td { code { (b.ip) } } td { code { (b.mac) } } td { (b.vendor.as_deref().unwrap_or("–")) } td { (vlan(b.vlan)) }
                        td.num { (b.first_frame) } td.num { (b.last_frame) } td.num { (n(b.packets)) }
                        td { @if conflict { strong.bad { "⚠ conflict" } } }
                    }
                }
            }
        }
        (cut_note(a.table.len(), max))
    }
}

fn exchanges(a: &ArpSection, max: usize) -> Markup {
    html! {
        @if !a.exchanges.is_empty() {
            h3 { "Exchanges (who-has → is-at)" }
            table.data.exchanges {
                thead { tr { th { "request" } th { "who-has" } th { "tell" } th { "reply" } th { "is-at" } th { "latency" } th { "note" } } }
                tbody {
                    @for x in a.exchanges.iter().take(max) {
                        tr class=(if x.reply_frame.is_some() { "answered" } else { "unanswered" }) {
                            td.num { (x.request_frame) }
                            td { code { (x.target_ip) } }
                            td { code { (x.sender_ip) } " " span.sub { "(" (x.sender_mac) ")" } }
                            td.num { (frame(x.reply_frame)) }
                            td { @if let Some(m) = &x.answer_mac { code { (m) } } @else { span.bad { "✗ no reply" } } }
                            td.num { (super::ms(x.latency_ms)) }
                            td {
                                @if x.unicast { "unicast request (cache refresh) " }
                                @if x.retransmission { "⟲ retransmission" }
                            }
                        }
                    }
                }
            }
            (cut_note(a.exchanges.len(), max))
        }
    }
}
