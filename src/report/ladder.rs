//! Ladder diagrams of a connection's handshake and teardown, drawn as the textbook does:
//! the originator on the left, the responder on the right, one arrow per segment with
//! its frame number, time, flags and real sequence numbers (raw, and relative: x and y
//! are the two ISNs), a check mark per acknowledgement verified against the handshake
//! arithmetic, then the RTTs and the outcome.
//!
//! Pure rendering from a [`ConnEntry`]; writes to any `io::Write`.

use std::io::{self, Write};

use super::conns::{ConnEntry, StepEntry};

/// Width of the arrow column.
const ARROW: usize = 64;

fn mark(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => " ✓",
        Some(false) => " ✗",
        None => "",
    }
}

/// `x`, `x+1`, `y+5` ... for a value relative to an ISN, or a plain relative number.
fn sym(v: u32, isn: Option<u32>, name: &str) -> Option<String> {
    let isn = isn?;
    let d = v.wrapping_sub(isn) as i32;
    Some(match d {
        0 => name.to_string(),
        d if d > 0 => format!("{name}+{d}"),
        d => format!("{name}{d}"),
    })
}

fn flags(f: &str) -> String {
    f.replace('|', ",")
}

/// The label of a handshake step, with x/y notation.
fn handshake_label(s: &StepEntry, e: &ConnEntry) -> String {
    let h = e.handshake.as_ref();
    let (mine, theirs, my_name, their_name) = if s.dir == "orig" {
        (
            h.and_then(|h| h.orig_isn),
            h.and_then(|h| h.resp_isn),
            "x",
            "y",
        )
    } else {
        (
            h.and_then(|h| h.resp_isn),
            h.and_then(|h| h.orig_isn),
            "y",
            "x",
        )
    };
    let mut out = flags(&s.flags);
    let seq_sym = sym(s.seq, mine, my_name).unwrap_or_else(|| format!("rel {}", s.rel_seq));
    out.push_str(&format!(" seq={} ({seq_sym})", s.seq));
    if s.flags.contains("ACK") {
        let ack_sym =
            sym(s.ack, theirs, their_name).unwrap_or_else(|| format!("rel {}", s.rel_ack));
        out.push_str(&format!(" ack={} ({ack_sym}{})", s.ack, mark(s.ack_ok)));
        if s.ack_ok == Some(false) {
            if let Some(exp) = s.expected_ack {
                out.push_str(&format!(" expected {exp}"));
            }
        }
    }
    if s.len > 0 {
        out.push_str(&format!(" len={}", s.len));
    }
    if s.what.ends_with("-retransmission") {
        out.push_str(" (retransmitted)");
    }
    out
}

/// The label of a teardown step: relative numbers, then the raw ones.
fn teardown_label(s: &StepEntry) -> String {
    let mut out = format!("{} seq={}", flags(&s.flags), s.rel_seq);
    if s.flags.contains("ACK") {
        out.push_str(&format!(" ack={}{}", s.rel_ack, mark(s.ack_ok)));
    }
    if s.len > 0 {
        out.push_str(&format!(" len={}", s.len));
    }
    out.push_str(&format!(" [raw {}/{}]", s.seq, s.ack));
    if s.what == "fin-retransmission" {
        out.push_str(" (retransmitted)");
    }
    out
}

fn arrow(label: &str, to_resp: bool) -> String {
    let n = label.chars().count();
    let dashes = ARROW.saturating_sub(n + 2).max(3);
    if to_resp {
        format!("{label} {}>", "-".repeat(dashes))
    } else {
        format!("<{} {label}", "-".repeat(dashes))
    }
}

fn header(w: &mut dyn Write, e: &ConnEntry) -> io::Result<()> {
    let left = format!("orig {}", e.orig);
    let right = format!("resp {}", e.resp);
    let gap = (ARROW + 16).saturating_sub(left.chars().count() + right.chars().count());
    writeln!(w, "{left}{}{right}", " ".repeat(gap.max(2)))
}

fn line(w: &mut dyn Write, s: &StepEntry, label: &str) -> io::Result<()> {
    writeln!(
        w,
        "#{:<6} {:>9.3} ms  {}",
        s.frame,
        s.t_ms,
        arrow(label, s.dir == "orig")
    )
}

fn opt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{x:.3} ms"))
}

/// Draws the handshake ladder of `e` (TCP only).
pub fn write_handshake(w: &mut dyn Write, e: &ConnEntry) -> io::Result<()> {
    let Some(h) = &e.handshake else {
        return Ok(());
    };
    writeln!(w, "Connection {} handshake: {}", e.id, h.outcome)?;
    header(w, e)?;
    if h.steps.is_empty() {
        writeln!(w, "  (no handshake segment captured: picked up midstream)")?;
    }
    for s in &h.steps {
        line(w, s, &handshake_label(s, e))?;
    }
    if h.steps_dropped > 0 {
        writeln!(
            w,
            "  … {} more handshake segment(s) not drawn",
            h.steps_dropped
        )?;
    }
    let mut facts = vec![format!(
        "RTT SYN→SYN-ACK {}, SYN-ACK→ACK {}",
        opt_ms(h.rtt_ms.syn_to_synack),
        opt_ms(h.rtt_ms.synack_to_ack)
    )];
    if h.syn_retransmissions > 0 {
        facts.push(format!("{} SYN retransmission(s)", h.syn_retransmissions));
    }
    if h.synack_retransmissions > 0 {
        facts.push(format!(
            "{} SYN-ACK retransmission(s)",
            h.synack_retransmissions
        ));
    }
    if h.syn_data_bytes > 0 {
        facts.push(format!("{} byte(s) of data on SYN", h.syn_data_bytes));
    }
    facts.push(if h.acks_verified {
        "acks verified".to_string()
    } else {
        format!("{} ack mismatch(es)", h.mismatches.len())
    });
    if e.orig_guessed {
        facts.push(format!("orig guessed ({})", e.orig_by));
    }
    writeln!(w, "  {} · outcome: {}", facts.join(" · "), h.outcome)?;
    for (who, o) in [("orig", &h.orig_options), ("resp", &h.resp_options)] {
        if let Some(o) = o {
            let mut parts = Vec::new();
            if let Some(m) = o.mss {
                parts.push(format!("MSS {m}"));
            }
            if let Some(s) = o.window_scale {
                parts.push(format!("WS {s}"));
            }
            if o.sack_permitted {
                parts.push("SACK".to_string());
            }
            if o.tsval.is_some() {
                parts.push("TS".to_string());
            }
            if parts.is_empty() {
                parts.push("none".to_string());
            }
            writeln!(w, "  {who} offered: {}", parts.join(", "))?;
        }
    }
    writeln!(w)
}

/// Draws the teardown ladder of `e` (TCP only).
pub fn write_teardown(w: &mut dyn Write, e: &ConnEntry) -> io::Result<()> {
    let Some(t) = &e.teardown else {
        return Ok(());
    };
    writeln!(
        w,
        "Connection {} teardown: {} (initiator {})",
        e.id,
        t.kind,
        t.initiator.as_deref().unwrap_or("-")
    )?;
    header(w, e)?;
    if t.steps.is_empty() {
        writeln!(w, "  (no FIN or RST captured)")?;
    }
    for s in &t.steps {
        line(w, s, &teardown_label(s))?;
    }
    if t.steps_dropped > 0 {
        writeln!(w, "  … {} more step(s) not drawn", t.steps_dropped)?;
    }
    let mut facts = vec![format!("FIN→last ACK {}", opt_ms(t.fin_to_last_ack_ms))];
    if t.half_close_bytes > 0 {
        facts.push(format!(
            "{} byte(s) sent after the first FIN",
            t.half_close_bytes
        ));
    }
    if !t.notes.is_empty() {
        facts.push(t.notes.join(", "));
    }
    writeln!(w, "  {} · kind: {}", facts.join(" · "), t.kind)?;
    writeln!(w)
}
