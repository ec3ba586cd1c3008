//! The connection part of the page: one card per TCP connection with its ladder diagram
//! (handshake and teardown as the textbook draws them: the originator's time line on the
//! left, the responder's on the right, one slanted arrow per segment labelled with its
//! flags, relative seq/ack, length and frame number), its Zeek `conn_state` and `history`
//! and links to its stream maps; a capped table of UDP flows; and the legend of states,
//! history letters and arrows.
//!
//! Cards are rendered one connection at a time from [`Entries`] and written at once, so
//! memory does not grow with the number of connections. `max_ladders` ladders are drawn,
//! shared among the (conn_state, outcome, teardown) kinds by [`quotas`] so every kind is
//! drawn; the other connections get a one-line card, and the page lists the shares.
//!
//! The ladder's vertical axis is the order of the segments, not a time scale: a handshake
//! takes microseconds and a teardown may come minutes later, so each arrow is one row and
//! its capture time is written beside it. The arrows slant because a segment arrives after
//! it was sent; the capture shows one point on the path, so the slant is symbolic.
//!
//! The ladders are drawn in `ladder`; this module holds the cards, the section writers,
//! the ladder budget and the legend.

mod ladder;

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};

use maud::{html, Markup};

use super::svg::{c, class_part};
use super::{bytes, ms, n, ConnTotals, Entries};
use crate::config::HtmlOptions;
use crate::report::conns::ConnEntry;
use crate::report::Report;
pub use ladder::ladder;

/// Handshake outcomes in the order the charts show them.
pub const OUTCOMES: &[&str] = &[
    "complete",
    "refused",
    "no-answer",
    "synack-no-ack",
    "simultaneous-open",
    "midstream",
];

/// Teardown kinds in the order the charts show them.
pub const TEARDOWNS: &[&str] = &[
    "fin-4way",
    "fin-3way",
    "simultaneous",
    "half-close",
    "rst",
    "fin-one-side",
    "open",
    "none",
];

/// Zeek's conn_state codes and their meaning (Zeek's conn.log documentation).
pub const CONN_STATES: &[(&str, &str)] = &[
    ("S0", "Connection attempt seen, no reply."),
    ("S1", "Connection established, not terminated."),
    ("SF", "Normal establishment and termination."),
    ("REJ", "Connection attempt rejected."),
    ("S2", "Established, and a close attempt by the originator seen (but no reply from the responder)."),
    ("S3", "Established, and a close attempt by the responder seen (but no reply from the originator)."),
    ("RSTO", "Established, the originator aborted (sent a RST)."),
    ("RSTR", "The responder sent a RST."),
    ("RSTOS0", "The originator sent a SYN followed by a RST; no SYN-ACK from the responder was seen."),
    ("RSTRH", "The responder sent a SYN-ACK followed by a RST; no SYN from the (purported) originator was seen."),
    ("SH", "The originator sent a SYN followed by a FIN; no SYN-ACK from the responder was seen (half open)."),
    ("SHR", "The responder sent a SYN-ACK followed by a FIN; no SYN from the originator was seen."),
    ("OTH", "No SYN seen, just midstream traffic (one example: a partial connection that was not later closed)."),
];

/// Zeek's history letters: upper case = the originator, lower case = the responder.
pub const HISTORY: &[(char, &str)] = &[
    ('S', "a SYN without the ACK bit"),
    ('H', "a SYN-ACK (\"handshake\")"),
    ('A', "a pure ACK"),
    ('D', "a packet with payload (\"data\")"),
    ('F', "a packet with the FIN bit"),
    ('R', "a packet with the RST bit"),
    ('C', "a packet with a bad checksum"),
    ('G', "a content gap"),
    ('T', "a packet with retransmitted payload"),
    ('W', "a packet advertising a zero window"),
    ('I', "an inconsistent packet (e.g. FIN and RST both set)"),
    ('Q', "a multi-flag packet (SYN with FIN or RST)"),
    (
        '^',
        "the connection's direction was flipped by Zeek's heuristic",
    ),
];

/// `(name, count, class)` rows in `order`, then any name the report has beyond it.
pub fn ordered<'a>(
    map: &'a BTreeMap<String, u64>,
    order: &[&'a str],
) -> Vec<(&'a str, u64, &'a str)> {
    let mut rows: Vec<(&str, u64, &str)> = order
        .iter()
        .map(|k| (*k, map.get(*k).copied().unwrap_or(0), ""))
        .collect();
    for (k, v) in map {
        if !order.contains(&k.as_str()) {
            rows.push((k.as_str(), *v, ""));
        }
    }
    rows
}

fn state_meaning(s: &str) -> &'static str {
    CONN_STATES
        .iter()
        .find(|(k, _)| *k == s)
        .map_or("(not a Zeek state)", |(_, m)| m)
}

fn history_letter(ch: char) -> String {
    let (who, up) = if ch.is_ascii_lowercase() {
        ("responder", ch.to_ascii_uppercase())
    } else if ch == '^' {
        ("", ch)
    } else {
        ("originator", ch)
    };
    let what = HISTORY
        .iter()
        .find(|(k, _)| *k == up)
        .map_or("(unknown letter)", |(_, m)| m);
    if who.is_empty() {
        what.to_string()
    } else {
        format!("{who}: {what}")
    }
}

/// A history string as letters, originator's and responder's marked differently, with
/// the decoded history on hover (`decode`; compact rows leave it to the legend).
pub fn history(h: &str, decode: bool) -> Markup {
    let decoded: Vec<String> = if decode {
        h.chars()
            .map(|ch| format!("{ch}: {}", history_letter(ch)))
            .collect()
    } else {
        Vec::new()
    };
    html! {
        span.hist title=[(decode.then(|| decoded.join("\n")))] {
            @if h.is_empty() { span.none { "(empty)" } }
            @for ch in h.chars() {
                @let cls = if ch.is_ascii_lowercase() { "r" } else if ch == '^' { "x" } else { "o" };
                span class=(cls) { (ch) }
            }
        }
    }
}

/// The (conn_state, handshake outcome, teardown kind) combination of a TCP connection:
/// the unit the ladder budget is shared by.
pub fn combo(e: &ConnEntry) -> String {
    format!(
        "{} · {} · {}",
        e.conn_state,
        e.handshake.as_ref().map_or("", |h| h.outcome.as_str()),
        e.teardown.as_ref().map_or("", |t| t.kind.as_str())
    )
}

/// Shares `budget` ladders among the combinations by water-filling: combinations are
/// served from the rarest up, each taking all its connections or an equal share of what
/// is left, so every kind of connection gets ladders and the common kinds share the rest.
pub fn quotas(combos: &HashMap<String, u64>, budget: u64) -> HashMap<String, u64> {
    let mut v: Vec<(&String, u64)> = combos.iter().map(|(k, v)| (k, *v)).collect();
    v.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(b.0)));
    let mut left = budget;
    let mut k = v.len() as u64;
    let mut out = HashMap::new();
    for (name, count) in v {
        let q = count.min(left / k.max(1));
        left -= q;
        k -= 1;
        out.insert(name.clone(), q);
    }
    out
}

/// Writes the `#conns` section (and `#udp`): a pass over `entries` per part.
pub fn write_section(
    w: &mut dyn Write,
    r: &Report,
    entries: &mut Entries<'_>,
    totals: &ConnTotals,
    plan: &super::streams::Plan,
    opts: &HtmlOptions,
) -> io::Result<()> {
    let cs = r.connection_stats.clone().unwrap_or_default();
    let quota = quotas(&totals.combos, opts.max_ladders as u64);
    let drawn: u64 = quota.values().sum();
    let head = html! {
        section #conns {
            h2 { "TCP connections (" (n(totals.tcp)) ")" }
            p.intro {
                "Each card draws the connection's handshake and teardown as a ladder: the originator's "
                "time line on the left, the responder's on the right, one arrow per segment with its flags, "
                "sequence and acknowledgement numbers relative to each side's initial sequence number, "
                "payload length, frame number and time since the connection's first packet. "
                "Rows are in capture order (not to time scale). Data packets between handshake and teardown are counted, not drawn. "
                a href="#legend" { "Legend" } "."
            }
            @if drawn < totals.tcp {
                div.limit-note #ladder-limit {
                    p {
                        "Ladders are drawn for " (n(drawn)) " of the " (n(totals.tcp)) " TCP connections (--html-max-ladders "
                        (opts.max_ladders) ", shared among the kinds of connection so every kind is drawn: "
                        "the rarer kinds in full, the first ones of each common kind). The other connections get a one-line card. "
                        "To draw a particular connection, run again with a --filter that selects it, or a larger --html-max-ladders."
                    }
                    table.data.quota {
                        thead { tr { th { "conn_state · handshake · teardown" } th { "connections" } th { "ladders drawn" } } }
                        tbody {
                            @for (k, v) in sorted_combos(&totals.combos) {
                                tr { td { (k) } td.num { (n(v)) } td.num { (n(quota.get(k).copied().unwrap_or(0))) } }
                            }
                        }
                    }
                }
            }
            @if totals.tcp == 0 {
                p.note { "No TCP connection in the capture." }
            }
            @if totals.tcp > 0 {
                (controls("conn", "address, port or #id", &[
                    ("state", "conn_state", cs.conn_states.keys().map(String::as_str).collect()),
                    ("hs", "handshake", cs.handshake_outcomes.keys().map(String::as_str).collect()),
                    ("td", "teardown", cs.teardown_kinds.keys().map(String::as_str).collect()),
                ]))
            }
        }
    };
    // The section stays open while the cards stream in: cut its closing tag.
    let head = head.into_string();
    let head = head
        .strip_suffix("</section>")
        .ok_or_else(|| io::Error::other("unexpected section markup"))?;
    w.write_all(head.as_bytes())?;
    w.write_all(b"\n<div id=\"conn-list\">\n")?;
    let mut used: HashMap<String, u64> = HashMap::new();
    let mut shown = 0usize;
    entries.for_each(&mut |e| {
        if e.proto != "tcp" {
            return Ok(());
        }
        let key = combo(&e);
        let u = used.entry(key).or_insert(0);
        let draw = *u < quota.get(&combo(&e)).copied().unwrap_or(0);
        if draw {
            *u += 1;
        }
        // Cards past the first page start hidden, as the script would hide them: the
        // browser then lays out one page, not thousands (a <noscript> style shows all).
        shown += 1;
        let hide = shown > FIRST_PAGE;
        let maps = plan.maps_of(e.id);
        let m = if draw {
            card(&e, hide, maps)
        } else {
            compact_card(&e, hide, maps)
        };
        w.write_all(m.into_string().as_bytes())?;
        w.write_all(b"\n")
    })?;
    w.write_all(b"</div>\n</section>\n")
}

/// Combinations, most connections first.
fn sorted_combos(combos: &HashMap<String, u64>) -> Vec<(&String, u64)> {
    let mut v: Vec<(&String, u64)> = combos.iter().map(|(k, v)| (k, *v)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v
}

/// Cards per page before the script runs; the script's default page size (script.js).
pub const FIRST_PAGE: usize = 50;

/// The filter, pager and zoom bar of a card list (`{prefix}-list`), hidden until the
/// script shows it; `selects` are (data key, label, values).
pub fn controls(prefix: &str, search: &str, selects: &[(&str, &str, Vec<&str>)]) -> Markup {
    html! {
        div.controls id=(format!("{prefix}-controls")) data-list=(format!("{prefix}-list")) hidden {
            label { "Find " input type="search" placeholder=(search); }
            @for (key, label, values) in selects {
                label { (label) " "
                    select data-key=(key) {
                        option value="" { "any" }
                        @for v in values { option value=(v) { (v) } }
                    }
                }
            }
            label { "per page "
                select.size { option value="20" { "20" } option value="50" selected { "50" } option value="200" { "200" } }
            }
            label { "zoom " input.zoom type="range" min="50" max="250" step="10" value="100"; }
            span.pager {
                button.prev type="button" { "◀ previous" }
                span.info id=(format!("{prefix}-info")) aria-live="polite" {}
                button.next type="button" { "next ▶" }
            }
        }
    }
}

/// The heading of a card: id, endpoints, badges.
fn card_head(e: &ConnEntry) -> Markup {
    let outcome = e.handshake.as_ref().map_or("", |h| h.outcome.as_str());
    let kind = e.teardown.as_ref().map_or("", |t| t.kind.as_str());
    html! {
        a.id href=(format!("#c{}", e.id)) { "#" (e.id) }
        " " code { (e.orig) } " → " code { (e.resp) }
        " " span class=(format!("badge st st-{}", class_part(&e.conn_state))) title=(state_meaning(&e.conn_state)) { (e.conn_state) }
        @if !outcome.is_empty() { " " span class=(format!("badge hs hs-{}", class_part(outcome))) { "handshake " (outcome) } }
        @if !kind.is_empty() { " " span class=(format!("badge td td-{}", class_part(kind))) { "teardown " (kind) } }
    }
}

/// A connection whose ladder is not drawn (beyond the budget): one line of facts.
pub fn compact_card(e: &ConnEntry, hide: bool, maps: (bool, bool)) -> Markup {
    let outcome = e.handshake.as_ref().map_or("", |h| h.outcome.as_str());
    let kind = e.teardown.as_ref().map_or("", |t| t.kind.as_str());
    html! {
        article.conn.compact hidden[hide] id=(format!("c{}", e.id)) data-state=(e.conn_state) data-hs=(outcome) data-td=(kind) data-q=(format!("#{} {} {}", e.id, e.orig, e.resp)) {
            p {
                (card_head(e)) " · " (history(&e.history, false))
                " · " (n(e.orig_pkts)) "/" (n(e.resp_pkts)) " pkts · " (n(e.orig_bytes)) "/" (n(e.resp_bytes)) " bytes · frames "
                (e.first_frame) "–" (e.last_frame) " · " (format!("{:.3}", e.duration_s)) " s"
                @if let Some(a) = &e.anomalies { @let list = anomalies(a); @if !list.is_empty() { " · " span.bad { (list) } } }
                (map_links(e.id, maps))
            }
        }
    }
}

/// One connection: header, facts, ladder.
pub fn card(e: &ConnEntry, hide: bool, maps: (bool, bool)) -> Markup {
    let h = e.handshake.as_ref();
    let t = e.teardown.as_ref();
    let outcome = h.map_or("", |h| h.outcome.as_str());
    let kind = t.map_or("", |t| t.kind.as_str());
    let q = format!("#{} {} {}", e.id, e.orig, e.resp);
    html! {
        article.conn hidden[hide] id=(format!("c{}", e.id)) data-state=(e.conn_state) data-hs=(outcome) data-td=(kind) data-q=(q) {
            h3 { (card_head(e)) }
            dl.cf {
                dt { "conn_state" } dd { code { (e.conn_state) } " — " (state_meaning(&e.conn_state)) }
                dt { "history" } dd { (history(&e.history, true)) }
                dt { "packets · payload" } dd {
                    "orig " (n(e.orig_pkts)) " pkts, " (bytes(e.orig_bytes)) " · resp " (n(e.resp_pkts)) " pkts, " (bytes(e.resp_bytes))
                    @if e.missed_bytes > 0 { " · " strong { (n(e.missed_bytes)) " bytes missed" } }
                }
                dt { "frames · time" } dd {
                    (e.first_frame) "–" (e.last_frame) " · " (super::utc(e.start_ns)) " · " (format!("{:.6}", e.duration_s)) " s · ended by " (e.finalized_by)
                }
                @if e.orig_guessed { dt { "roles" } dd { "orig guessed (" (e.orig_by) "): no SYN from it was seen" } }
                @if let Some(h) = h {
                    dt { "handshake" } dd {
                        (h.outcome) " · SYN→SYN-ACK " (ms(h.rtt_ms.syn_to_synack)) " · SYN-ACK→ACK " (ms(h.rtt_ms.synack_to_ack))
                        @if h.syn_retransmissions > 0 { " · " (h.syn_retransmissions) " SYN retransmission(s)" }
                        @if h.synack_retransmissions > 0 { " · " (h.synack_retransmissions) " SYN-ACK retransmission(s)" }
                        @if h.syn_data_bytes > 0 { " · " (h.syn_data_bytes) " bytes of data on SYN" }
                        @if !h.acks_verified { " · " strong.bad { (h.mismatches.len()) " ack mismatch(es)" } }
                    }
                }
                @if let Some(t) = t {
                    dt { "teardown" } dd {
                        (t.kind)
                        @if let Some(i) = &t.initiator { " · initiator " (i) }
                        @if t.fin_to_last_ack_ms.is_some() { " · FIN→last ACK " (ms(t.fin_to_last_ack_ms)) }
                        @if t.half_close_bytes > 0 { " · " (n(t.half_close_bytes)) " bytes after the first FIN" }
                        @if !t.notes.is_empty() { " · " (t.notes.join(", ")) }
                    }
                }
                @if let Some(a) = &e.anomalies {
                    @let list = anomalies(a);
                    @if !list.is_empty() { dt { "anomalies" } dd.bad { (list) } }
                }
                @if maps.0 || maps.1 { dt { "streams" } dd { "segment/message " (map_links(e.id, maps)) } }
            }
            (ladder(e))
        }
    }
}

/// Links to the connection's segment/message maps.
fn map_links(id: u64, maps: (bool, bool)) -> Markup {
    html! {
        @if maps.0 || maps.1 { " · maps:" }
        @if maps.0 { " " a.maplink href=(format!("#s{id}-orig")) title="segment/message map of the originator's bytes" { "orig→resp" } }
        @if maps.1 { " " a.maplink href=(format!("#s{id}-resp")) title="segment/message map of the responder's bytes" { "resp→orig" } }
    }
}

fn anomalies(a: &crate::report::conns::AnomaliesEntry) -> String {
    let mut parts = Vec::new();
    for (name, v) in [
        ("retransmissions", a.retransmissions),
        ("out of order", a.out_of_order),
        ("dup acks", a.dup_acks),
        ("zero window", a.zero_window),
        ("keep-alives", a.keep_alives),
        ("lost segments", a.lost_segments),
        ("missed bytes", a.missed_bytes),
    ] {
        if v > 0 {
            parts.push(format!("{} {name}", n(v)));
        }
    }
    parts.join(" · ")
}

/// Writes the `#udp` section: the first `max_rows` UDP flows.
pub fn write_udp(
    w: &mut dyn Write,
    entries: &mut Entries<'_>,
    totals: &ConnTotals,
    opts: &HtmlOptions,
) -> io::Result<()> {
    let shown = totals.udp.min(opts.max_rows as u64);
    let head = html! {
        section #udp {
            h2 { "UDP flows (" (n(totals.udp)) ")" }
            @if shown < totals.udp {
                p.limit-note { "The first " (n(shown)) " of " (n(totals.udp)) " flows are listed (--html-max-rows " (opts.max_rows) "); the JSON report has every one." }
            }
            table.data.udp {
                thead { tr {
                    th { "id" } th { "orig" } th { "resp" } th { "conn_state" } th { "history" }
                    th { "orig pkts" } th { "orig bytes" } th { "resp pkts" } th { "resp bytes" } th { "first frame" } th { "duration s" }
                } }
                tbody {}
            }
        }
    };
    let head = head.into_string();
    let head = head
        .strip_suffix("</tbody></table></section>")
        .ok_or_else(|| io::Error::other("unexpected table markup"))?;
    w.write_all(head.as_bytes())?;
    w.write_all(b"\n")?;
    let mut seen = 0u64;
    entries.for_each(&mut |e| {
        if e.proto == "tcp" || seen >= shown {
            return Ok(());
        }
        seen += 1;
        let row = html! {
            tr id=(format!("c{}", e.id)) {
                td.num { (e.id) } td { code { (e.orig) } } td { code { (e.resp) } }
                td { span title=(state_meaning(&e.conn_state)) { (e.conn_state) } }
                td { (history(&e.history, false)) }
                td.num { (n(e.orig_pkts)) } td.num { (n(e.orig_bytes)) }
                td.num { (n(e.resp_pkts)) } td.num { (n(e.resp_bytes)) }
                td.num { (e.first_frame) } td.num { (format!("{:.6}", e.duration_s)) }
            }
        };
        w.write_all(row.into_string().as_bytes())?;
        w.write_all(b"\n")
    })?;
    w.write_all(b"</tbody></table></section>\n")
}

/// The legend: arrows, conn_state codes, history letters.
pub fn legend() -> Markup {
    let sample = |cls: &str, label: &str, y: f64| -> Markup {
        html! {
            g class=(format!("sample {cls}")) {
                path.arr d=(format!(
                    "M10 {}L150 {}M141 {}L150 {}L141 {}{}",
                    c(y), c(y + 8.0), c(y + 3.0), c(y + 8.0), c(y + 11.0),
                    if cls == "k-rst" { format!("M154 {}l10 10m0 -10l-10 10", c(y + 3.0)) } else { String::new() }
                )) {}
                text.lbl x="172" y=(c(y + 9.0)) { (label) }
            }
        }
    };
    html! {
        section #legend {
            h2 { "Legend" }
            div.legend-grid {
                figure {
                    figcaption { "Ladder arrows (colour, line style and label all say the kind)" }
                    svg.legend-arrows viewBox="0 0 560 150" width="560" height="150" role="img" aria-label="arrow kinds" {
                        (sample("k-syn", "SYN / SYN,ACK: opening (green)", 8.0))
                        (sample("k-ack", "ACK: acknowledgement (black)", 36.0))
                        (sample("k-fin", "FIN: closing (blue)", 64.0))
                        (sample("k-rst", "RST: reset, with ✕ where it lands (vermillion, thick)", 92.0))
                        (sample("k-syn retrans", "⟲ retransmission: dashed", 120.0))
                    }
                    p.note { "seq and ack are relative to each side's initial sequence number (0 = the SYN); ✓ = the ack matches the handshake arithmetic, ✗ = it does not. #N is the frame number, +t the time since the connection's first packet." }
                }
                figure {
                    figcaption { "Segment/message maps" }
                    svg.smap.legend-map viewBox="0 0 520 150" width="520" height="150" role="img" aria-label="map legend" {
                        g.seg { rect x="4" y="4" width="60" height="22" {} }
                        text.rowl x="74" y="19" { "segment (a first transmission; #frame inside)" }
                        g.seg.coal { rect x="4" y="32" width="60" height="22" {} }
                        text.rowl x="74" y="47" { "coalescing segment: bytes of 2+ messages (orange hatch, thick)" }
                        g.msg { rect x="4" y="60" width="60" height="22" {} }
                        text.rowl x="74" y="75" { "message, one segment to itself (pale green)" }
                        g.msg.split { rect x="4" y="88" width="60" height="22" {} }
                        text.rowl x="74" y="103" { "split message: in 2+ segments (blue stripes)" }
                        g.msg.coal { rect x="4" y="116" width="60" height="22" {} }
                        text.rowl x="74" y="131" { "coalesced message: shares a segment (purple dashes)" }
                    }
                    p.note {
                        "A dashed vertical line is a message boundary; a grey cross-hatched band is a gap (bytes never seen); "
                        "a dashed segment outline is larger than the MSS (offload). Widths grow with the byte count, "
                        "each piece at least " (super::streams::MIN_PIECE) " px wide."
                    }
                }
                figure {
                    figcaption { "conn_state (Zeek)" }
                    table.data.legend {
                        @for (k, m) in CONN_STATES { tr { td { code { (k) } } td { (m) } } }
                    }
                }
                figure {
                    figcaption { "history letters (Zeek): " span.hist { span.o { "upper case" } } " = originator, " span.hist { span.r { "lower case" } } " = responder" }
                    table.data.legend {
                        @for (k, m) in HISTORY { tr { td { code { (k) } } td { (m) } } }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_letters_say_who() {
        assert_eq!(history_letter('S'), "originator: a SYN without the ACK bit");
        assert_eq!(history_letter('h'), "responder: a SYN-ACK (\"handshake\")");
        assert!(history_letter('^').contains("flipped"));
        let m = history("ShA", true).into_string();
        assert_eq!(m.matches("<span class=\"o\"").count(), 2);
        assert_eq!(m.matches("<span class=\"r\"").count(), 1);
    }

    #[test]
    fn quotas_serve_rare_kinds_in_full() {
        let mut m = HashMap::new();
        m.insert("SF".to_string(), 9923);
        m.insert("RSTO".to_string(), 1225);
        m.insert("REJ".to_string(), 519);
        m.insert("RSTR".to_string(), 381);
        let q = quotas(&m, 2000);
        assert_eq!(q["RSTR"], 381);
        assert_eq!(q["REJ"], 519);
        assert_eq!(q["RSTO"], 550);
        assert_eq!(q["SF"], 550);
        assert!(q.values().sum::<u64>() <= 2000);
        let all = quotas(&m, 20_000);
        assert_eq!(all.values().sum::<u64>(), 9923 + 1225 + 519 + 381);
        assert!(quotas(&m, 0).values().all(|&v| v == 0));
    }

    #[test]
    fn ordered_keeps_unknown_kinds() {
        let mut m = BTreeMap::new();
        m.insert("rst".to_string(), 2);
        m.insert("weird".to_string(), 1);
        let rows = ordered(&m, TEARDOWNS);
        assert_eq!(rows.len(), TEARDOWNS.len() + 1);
        assert_eq!(rows[4], ("rst", 2, ""));
        assert_eq!(rows.last().unwrap().0, "weird");
    }
}
