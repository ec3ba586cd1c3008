//! The ladder diagram of one TCP connection: its handshake and teardown segments as
//! slanted arrows between the originator's time line (left) and the responder's (right),
//! each labelled with its flags, relative seq/ack and length, with the frame number and
//! capture time in the gutter.
//!
//! One row per segment, not a time scale; the segments not drawn between the handshake and
//! the teardown (and steps beyond the report's caps) are a break with a note, so a ladder's
//! height depends only on the steps the report holds.

use maud::{html, Markup};

use crate::report::conns::{ConnEntry, StepEntry};
use crate::report::html::n;
use crate::report::html::svg::c;

fn t_label(t_ms: f64) -> String {
    if t_ms.abs() < 1000.0 {
        format!("+{t_ms:.3} ms")
    } else {
        format!("+{:.3} s", t_ms / 1000.0)
    }
}

// Ladder geometry (SVG user units = CSS pixels at zoom 100%).
const W: f64 = 800.0;
const XO: f64 = 190.0;
const XR: f64 = 600.0;
const TOP: f64 = 48.0;
const ROW: f64 = 42.0;
const DROP: f64 = 24.0;
const BREAK: f64 = 34.0;

/// The kind class of a step (colour and dash come from it; the label says it too).
fn step_class(s: &StepEntry) -> &'static str {
    let f = &s.flags;
    if f.contains("RST") {
        "k-rst"
    } else if f.contains("SYN") {
        "k-syn"
    } else if f.contains("FIN") {
        "k-fin"
    } else {
        "k-ack"
    }
}

fn step_label(s: &StepEntry) -> String {
    let mut out = s.flags.replace('|', ",");
    out.push_str(&format!(" seq={}", s.rel_seq));
    if s.flags.contains("ACK") {
        out.push_str(&format!(" ack={}", s.rel_ack));
        match s.ack_ok {
            Some(true) => out.push_str(" ✓"),
            Some(false) => {
                out.push_str(" ✗");
                if let Some(x) = s.expected_ack {
                    out.push_str(&format!(" (expected raw {x})"));
                }
            }
            None => {}
        }
    }
    if s.len > 0 {
        out.push_str(&format!(" len={}", s.len));
    }
    if s.what.ends_with("-retransmission") {
        out.push_str(" ⟲ retransmission");
    }
    out
}

fn step_title(s: &StepEntry) -> String {
    let mut t = format!(
        "frame {} · {} · {} · seq {}",
        s.frame,
        if s.dir == "orig" {
            "orig→resp"
        } else {
            "resp→orig"
        },
        s.what,
        s.seq
    );
    if s.flags.contains("ACK") {
        t.push_str(&format!(" · ack {}", s.ack));
        if let (Some(false), Some(x)) = (s.ack_ok, s.expected_ack) {
            t.push_str(&format!(" (expected {x})"));
        }
    }
    t.push_str(&format!(" · {} bytes", s.len));
    t
}

/// One arrow, with its label along it and the frame/time gutter.
fn arrow(s: &StepEntry, y0: f64) -> Markup {
    let to_resp = s.dir == "orig";
    let (xs, xd) = if to_resp { (XO, XR) } else { (XR, XO) };
    let y1 = y0 + DROP;
    let (dx, dy) = (xd - xs, y1 - y0);
    let len = (dx * dx + dy * dy).sqrt();
    let (ux, uy) = (dx / len, dy / len);
    let (bx, by) = (xd - ux * 10.0, y1 - uy * 10.0);
    let (nx, ny) = (-uy * 5.0, ux * 5.0);
    let mut d = format!(
        "M{} {}L{} {}M{} {}L{} {}L{} {}",
        c(xs),
        c(y0),
        c(xd),
        c(y1),
        c(bx + nx),
        c(by + ny),
        c(xd),
        c(y1),
        c(bx - nx),
        c(by - ny)
    );
    if s.flags.contains("RST") {
        // A cross where the reset lands: the connection ends there.
        let x = xd + if to_resp { 9.0 } else { -9.0 };
        d.push_str(&format!(
            "M{} {}l10 10m0 -10l-10 10",
            c(x - 5.0),
            c(y1 - 5.0)
        ));
    }
    let cls = format!(
        "step {}{}{}",
        step_class(s),
        if s.what.ends_with("-retransmission") {
            " retrans"
        } else {
            ""
        },
        if s.ack_ok == Some(false) { " bad" } else { "" }
    );
    // The label runs along the arrow, just above it (the slope's angle, never upside down).
    let (mx, my) = ((XO + XR) / 2.0, y0 + DROP / 2.0);
    let angle = (dy / dx).atan().to_degrees();
    html! {
        g class=(cls) {
            title { (step_title(s)) }
            path.arr d=(d) {}
            text.lbl x=(c(mx)) y=(c(my - 5.0)) transform=(format!("rotate({:.2} {} {})", angle, c(mx), c(my))) { (step_label(s)) }
            text.fr x="6" y=(c(y0 + 4.0)) { "#" (s.frame) }
            text.tm x="6" y=(c(y0 + 17.0)) { (t_label(s.t_ms)) }
        }
    }
}

/// The ladder SVG of a TCP connection.
pub fn ladder(e: &ConnEntry) -> Markup {
    let hs: &[StepEntry] = e.handshake.as_ref().map_or(&[], |h| &h.steps);
    let td: &[StepEntry] = e.teardown.as_ref().map_or(&[], |t| &t.steps);
    let hs_dropped = e.handshake.as_ref().map_or(0, |h| h.steps_dropped);
    let td_dropped = e.teardown.as_ref().map_or(0, |t| t.steps_dropped);
    let drawn = (hs.len() + td.len()) as u64 + u64::from(hs_dropped) + u64::from(td_dropped);
    let others = (e.orig_pkts + e.resp_pkts).saturating_sub(drawn);
    let outcome = e.handshake.as_ref().map_or("", |h| h.outcome.as_str());
    let kind = e.teardown.as_ref().map_or("", |t| t.kind.as_str());
    let initiator = e.teardown.as_ref().and_then(|t| t.initiator.as_deref());

    // Vertical layout: handshake rows, a break (packets not drawn), teardown rows.
    let mut y = TOP;
    let hs_y = y;
    y += ROW * hs.len() as f64;
    let mid_note = if hs.is_empty() {
        Some("no handshake captured: picked up midstream".to_string())
    } else if others > 0 || hs_dropped > 0 {
        let mut s = format!(
            "⋮ {} more packet(s) of this connection, not drawn",
            n(others)
        );
        if hs_dropped > 0 {
            s.push_str(&format!(
                " (and {hs_dropped} handshake step(s) beyond the cap)"
            ));
        }
        Some(s)
    } else {
        None
    };
    let mid_y = y;
    if mid_note.is_some() {
        y += BREAK;
    }
    let td_y = y;
    y += ROW * td.len() as f64;
    let end_note = match kind {
        "open" => Some("no FIN or RST: open when the capture ended (or idle)".to_string()),
        "none" if td.is_empty() && outcome != "refused" => {
            Some("no teardown: the connection never opened".to_string())
        }
        _ if td_dropped > 0 => Some(format!("… {td_dropped} more teardown step(s) not drawn")),
        _ => None,
    };
    let end_y = y;
    if end_note.is_some() {
        y += BREAK;
    }
    let height = y + 8.0;
    let aria = format!(
        "Ladder of connection {}: handshake {}, teardown {}",
        e.id,
        if outcome.is_empty() { "none" } else { outcome },
        if kind.is_empty() { "none" } else { kind }
    );
    let td_label = match initiator {
        Some("both") => format!("{kind} (both at once)"),
        Some(i) => format!("{kind} ({i} first)"),
        None => kind.to_string(),
    };
    let px = c(W - 4.0);
    let mut lanes = String::new();
    let mut gaps = String::new();
    for x in [XO, XR] {
        lanes.push_str(&format!("M{} 36V{}", c(x), c(mid_y)));
        lanes.push_str(&format!("M{} {}V{}", c(x), c(td_y), c(end_y)));
        if mid_note.is_some() {
            gaps.push_str(&format!("M{} {}V{}", c(x), c(mid_y), c(td_y)));
        }
        if end_note.is_some() {
            gaps.push_str(&format!(
                "M{} {}V{}",
                c(x),
                c(end_y),
                c(end_y + BREAK - 6.0)
            ));
        }
    }
    html! {
        svg.ladder viewBox=(format!("0 0 {} {}", c(W), c(height))) width=(c(W)) height=(c(height)) role="img" aria-label=(aria) {
            text.role x=(c(XO)) y="14" { "orig" }
            text.ep x=(c(XO)) y="30" { (e.orig) }
            text.role x=(c(XR)) y="14" { "resp" }
            text.ep x=(c(XR)) y="30" { (e.resp) }
            // The two time lines: solid where segments are drawn, dotted across a break.
            path.lane d=(lanes) {}
            @if !gaps.is_empty() { path.lane.gap d=(gaps) {} }
            @if !hs.is_empty() {
                text.phase x=(px) y=(c(hs_y + 4.0)) { "handshake" tspan x=(px) dy="14" { (outcome) } }
            }
            @for (i, s) in hs.iter().enumerate() {
                (arrow(s, hs_y + ROW * i as f64))
            }
            @if let Some(note) = &mid_note {
                text.brk x=(c((XO + XR) / 2.0)) y=(c(mid_y + BREAK / 2.0 + 4.0)) { (note) }
            }
            @if !td.is_empty() {
                text.phase x=(px) y=(c(td_y + 4.0)) { "teardown" tspan x=(px) dy="14" { (td_label) } }
            }
            @for (i, s) in td.iter().enumerate() {
                (arrow(s, td_y + ROW * i as f64))
            }
            @if let Some(note) = &end_note {
                text.brk x=(c((XO + XR) / 2.0)) y=(c(end_y + BREAK / 2.0 + 4.0)) { (note) }
            }
        }
    }
}
