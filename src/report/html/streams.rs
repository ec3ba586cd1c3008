//! The stream part of the page: for each TCP stream direction the segment/message map —
//! the segments as a row of boxes along the byte stream, the application messages as a
//! second row over the same bytes, each message boundary drawn as a line across both rows,
//! coalescing segments and split messages filled with their own colour and pattern, hover
//! details (frame, offset, length, message index) in `<title>` — and for UDP flows the
//! datagrams, whose boundaries survive.
//!
//! Geometry: both rows share one offset → x mapping, piecewise linear between every
//! boundary of a segment, message or gap, each piece at least [`MIN_PIECE`] pixels wide.
//! Widths grow with byte length, boundaries line up exactly, and a 4-byte length prefix
//! next to a 1448-byte segment stays visible (the legend says so).
//!
//! Entries are read one at a time from the `streams` / `udp_flows` spills; maps are drawn
//! for `max_maps` directions (shared among the kinds: split and coalesced, split only,
//! coalesced only, neither, unframed), at most `max_map_segments` segments each; the
//! others are counted by kind, and the page says so.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};

use maud::{html, Markup};

use super::conns::{controls, quotas, FIRST_PAGE};
use super::svg::c;
use super::{bytes, n};
use crate::config::HtmlOptions;
use crate::report::json::Spill;
use crate::report::streams::{GapEntry, MessageEntry, SegmentEntry, StreamEntry, UdpFlowEntry};
use crate::report::Report;

/// Narrowest piece of a map, in pixels.
pub const MIN_PIECE: f64 = 4.0;
/// Width a map aims at when its pieces allow.
const TARGET: f64 = 1000.0;
const LEFT: f64 = 78.0;
/// UDP flow directions drawn, and datagrams per flow.
const MAX_UDP_MAPS: usize = 50;
const MAX_DATAGRAMS: usize = 200;
/// Messages with header details listed under a map.
const MAX_INFO_ROWS: usize = 20;

/// Calls `f` with each entry of the spill named `key`, or of `memory` (a report read back
/// from JSON).
fn for_each<T: serde::de::DeserializeOwned + Clone>(
    spills: &mut [(&'static str, Spill)],
    key: &str,
    memory: Option<&[T]>,
    f: &mut dyn FnMut(T) -> io::Result<()>,
) -> io::Result<()> {
    if let Some((_, s)) = spills.iter_mut().find(|(k, _)| *k == key) {
        return s.for_each_entry(&mut |b| f(serde_json::from_slice(b).map_err(io::Error::other)?));
    }
    memory.unwrap_or(&[]).iter().try_for_each(|e| f(e.clone()))
}

/// What kind of map a stream gets: the unit the map budget is shared by, and the filter.
pub fn kind(s: &StreamEntry) -> &'static str {
    let st = &s.stats;
    if s.messages.is_empty() && st.messages == 0 {
        "unframed"
    } else if st.split_messages > 0 && st.coalesced_messages > 0 {
        "split+coalesced"
    } else if st.split_messages > 0 {
        "split"
    } else if st.coalesced_messages > 0 {
        "coalesced"
    } else {
        "one-to-one"
    }
}

/// True when the report has stream sections (the analysis ran).
pub fn present(r: &Report, spills: &[(&'static str, Spill)]) -> bool {
    spills.iter().any(|(k, _)| *k == "streams") || r.streams.is_some()
}

/// Which stream directions get a map: decided before any section is written, so the
/// connection cards can link to the maps. `drawn` holds at most `max_maps` keys.
#[derive(Default)]
pub struct Plan {
    kinds: HashMap<String, u64>,
    quota: HashMap<String, u64>,
    total: u64,
    /// (connection id, direction is orig) of every map drawn.
    pub drawn: HashSet<(u64, bool)>,
}

impl Plan {
    /// The maps drawn for connection `id`: (orig, resp).
    pub fn maps_of(&self, id: u64) -> (bool, bool) {
        (
            self.drawn.contains(&(id, true)),
            self.drawn.contains(&(id, false)),
        )
    }
}

/// Two passes over the stream entries: counts per kind, then the first ones of each kind
/// within its share of the budget.
pub fn plan(
    r: &Report,
    spills: &mut [(&'static str, Spill)],
    opts: &HtmlOptions,
) -> io::Result<Plan> {
    let mut p = Plan::default();
    for_each(
        spills,
        "streams",
        r.streams.as_deref(),
        &mut |s: StreamEntry| {
            p.total += 1;
            *p.kinds.entry(kind(&s).to_string()).or_insert(0) += 1;
            Ok(())
        },
    )?;
    p.quota = quotas(&p.kinds, opts.max_maps as u64);
    let mut used: HashMap<&'static str, u64> = HashMap::new();
    let (quota, drawn) = (&p.quota, &mut p.drawn);
    for_each(
        spills,
        "streams",
        r.streams.as_deref(),
        &mut |s: StreamEntry| {
            let k = kind(&s);
            let u = used.entry(k).or_insert(0);
            if *u < quota.get(k).copied().unwrap_or(0) {
                *u += 1;
                drawn.insert((s.conn, s.dir == "orig"));
            }
            Ok(())
        },
    )?;
    Ok(p)
}

/// Writes the `#streams` section: the maps `plan` chose.
pub fn write_section(
    w: &mut dyn Write,
    r: &Report,
    spills: &mut [(&'static str, Spill)],
    plan: &Plan,
    opts: &HtmlOptions,
) -> io::Result<()> {
    let (kinds, quota, total) = (&plan.kinds, &plan.quota, plan.total);
    let drawn: u64 = quota.values().sum();
    let mut kind_names: Vec<&str> = kinds.keys().map(String::as_str).collect();
    kind_names.sort_unstable();
    let head = html! {
        section #streams {
            h2 { "TCP streams: segments and messages (" (n(total)) " directions with payload)" }
            @if total == 0 {
                p.note { "No TCP stream carried payload." }
            }
            @if total > 0 {
                p.intro {
                    "One map per direction of a connection: the upper row is what TCP carried (one box per segment, "
                    "a first transmission, labelled with its frame number), the lower row what the application sent "
                    "(one box per message found by the framing), both along the same byte stream. "
                    "A vertical line marks each message boundary. A segment carrying bytes of two or more messages is "
                    span.sw.seg-coal { "coalescing" } "; a message whose bytes lie in two or more segments is "
                    span.sw.msg-split { "split" } "; a message sharing a segment with another is "
                    span.sw.msg-coal { "coalesced" } ". Widths grow with the byte count; pieces shorter than a few bytes are "
                    "drawn at a minimum width so they stay visible. Hover a box for its frame, offset, length and messages. "
                    a href="#legend" { "Legend" } "."
                }
            }
            @if drawn < total {
                div.limit-note #map-limit {
                    p {
                        "Maps are drawn for " (n(drawn)) " of the " (n(total)) " stream directions (--html-max-maps "
                        (opts.max_maps) ", shared among the kinds so every kind is drawn: the rarer kinds in full, "
                        "the first ones of each common kind). The others are only counted here; the JSON report "
                        "(--json) and the --streams view have every one. To draw a particular stream, run again with a "
                        "--filter that selects it or a larger --html-max-maps."
                    }
                    table.data.quota {
                        thead { tr { th { "kind" } th { "directions" } th { "maps drawn" } } }
                        tbody {
                            @for k in &kind_names {
                                tr { td { (k) } td.num { (n(kinds.get(*k).copied().unwrap_or(0))) } td.num { (n(quota.get(*k).copied().unwrap_or(0))) } }
                            }
                        }
                    }
                }
            }
            @if total > 0 {
                (controls("stream", "address, port or #conn", &[("kind", "kind", kind_names.clone())]))
            }
        }
    };
    let head = head.into_string();
    let head = head
        .strip_suffix("</section>")
        .ok_or_else(|| io::Error::other("unexpected section markup"))?;
    w.write_all(head.as_bytes())?;
    w.write_all(b"\n<div id=\"stream-list\">\n")?;
    let mut shown = 0usize;
    for_each(
        spills,
        "streams",
        r.streams.as_deref(),
        &mut |s: StreamEntry| {
            if !plan.drawn.contains(&(s.conn, s.dir == "orig")) {
                return Ok(());
            }
            shown += 1;
            let m = stream_card(&s, opts.max_map_segments, shown > FIRST_PAGE);
            w.write_all(m.into_string().as_bytes())?;
            w.write_all(b"\n")
        },
    )?;
    w.write_all(b"</div>\n")?;
    write_udp(w, r, spills)?;
    w.write_all(b"</section>\n")
}

/// "orig → resp" in the direction the bytes went.
fn direction(s: &StreamEntry) -> (String, &str, &str) {
    if s.dir == "orig" {
        (s.dir.clone(), s.orig.as_str(), s.resp.as_str())
    } else {
        (s.dir.clone(), s.resp.as_str(), s.orig.as_str())
    }
}

fn stream_card(s: &StreamEntry, max_segments: usize, hide: bool) -> Markup {
    let (dir, from, to) = direction(s);
    let st = &s.stats;
    let k = kind(s);
    html! {
        article.stream hidden[hide] id=(format!("s{}-{}", s.conn, s.dir)) data-kind=(k) data-q=(format!("#{} {} {}", s.conn, s.orig, s.resp)) {
            h3 {
                a href=(format!("#c{}", s.conn)) { "#" (s.conn) } " " (dir) ": " code { (from) } " → " code { (to) }
                " " span.badge { "framing " (s.framing) }
                " " span class=(format!("badge kind k-{}", k.replace('+', "-"))) { (k) }
            }
            p.sf {
                (bytes(s.bytes)) " in " (n(st.segments)) " segments"
                @if k != "unframed" {
                    " · " (n(st.messages)) " messages: " strong { (n(st.split_messages)) " split" } ", "
                    strong { (n(st.coalesced_messages)) " coalesced" } "; " (n(st.coalescing_segments)) " coalescing segments; "
                    "up to " (st.max_messages_per_segment) " messages per segment and " (st.max_segments_per_message) " segments per message"
                    @if st.incomplete_messages > 0 { "; " (st.incomplete_messages) " incomplete" }
                }
                " · framing: " (s.framing_reason)
                @if s.gaps_total.count > 0 { " · " span.bad { (n(s.gaps_total.count)) " gap(s), " (n(s.gaps_total.bytes)) " bytes never seen" } }
                @if s.reassembly.retransmissions > 0 { " · " (n(s.reassembly.retransmissions)) " retransmissions (not drawn)" }
                @if s.midstream { " · picked up midstream: offsets start at the first byte seen" }
            }
            @if let Some(e) = &s.framing_error {
                p.bad { "Framing broke at offset " (e.offset) (e.frame.map(|f| format!(" (frame {f})")).unwrap_or_default()) ": " (e.reason) "; the rest is drawn as segments only." }
            }
            @if s.oversized_segments > 0 {
                p.note { (n(s.oversized_segments)) " segment(s) larger than the MSS (" (s.mss.map(|m| m.to_string()).unwrap_or_default()) "): the sender's TSO/GSO or the receiver's GRO made them, so boundaries there show the NIC's offload, not the wire." }
            }
            (map(s, max_segments))
            (info_table(&s.messages))
        }
    }
}

/// Offset → x, piecewise linear between the sorted boundaries.
struct Scale {
    bounds: Vec<u64>,
    xs: Vec<f64>,
}

impl Scale {
    fn new(mut bounds: Vec<u64>) -> Scale {
        bounds.sort_unstable();
        bounds.dedup();
        let deltas: Vec<f64> = bounds.windows(2).map(|p| (p[1] - p[0]) as f64).collect();
        let width = |s: f64| deltas.iter().map(|d| (d * s).max(MIN_PIECE)).sum::<f64>();
        let target = TARGET.max(MIN_PIECE * 2.0 * deltas.len() as f64);
        let min_delta = deltas
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min)
            .max(1.0);
        let (mut lo, mut hi) = (0.0f64, target / min_delta);
        if width(0.0) < target {
            for _ in 0..60 {
                let mid = (lo + hi) / 2.0;
                if width(mid) < target {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
        }
        let mut xs = Vec::with_capacity(bounds.len());
        let mut x = LEFT;
        xs.push(x);
        for d in &deltas {
            x += (d * lo).max(MIN_PIECE);
            xs.push(x);
        }
        Scale { bounds, xs }
    }

    fn x(&self, off: u64) -> f64 {
        match self.bounds.binary_search(&off) {
            Ok(i) => self.xs[i],
            Err(0) => LEFT,
            Err(i) if i >= self.bounds.len() => self.xs.last().copied().unwrap_or(LEFT),
            Err(i) => {
                let (b0, b1) = (self.bounds[i - 1], self.bounds[i]);
                let t = (off - b0) as f64 / (b1 - b0) as f64;
                self.xs[i - 1] + t * (self.xs[i] - self.xs[i - 1])
            }
        }
    }

    fn end(&self) -> f64 {
        self.xs.last().copied().unwrap_or(LEFT)
    }
}

/// Whether `label` fits in a box `w` wide (about 6.5 px per character at 11 px).
fn fits(label: &str, w: f64) -> bool {
    label.chars().count() as f64 * 6.5 + 4.0 <= w
}

fn seg_title(s: &SegmentEntry) -> String {
    let mut t = format!(
        "segment: frame {} · offset {} · {} bytes",
        s.frame, s.offset, s.len
    );
    if !s.messages.is_empty() {
        let parts: Vec<String> = s
            .messages
            .iter()
            .zip(
                s.parts
                    .iter()
                    .map(|p| p.name())
                    .chain(std::iter::repeat("")),
            )
            .map(|(m, p)| format!("{m} ({p})"))
            .collect();
        t.push_str(&format!(" · messages {}", parts.join(", ")));
        if s.messages_total > s.messages.len() as u64 {
            t.push_str(&format!(" … {} in all", s.messages_total));
        }
    }
    if s.coalescing {
        t.push_str(" · coalescing: carries bytes of several messages");
    }
    if s.oversized {
        t.push_str(" · larger than the MSS (offload)");
    }
    if s.out_of_order {
        t.push_str(" · arrived out of order");
    }
    if let Some(nb) = s.new_bytes {
        t.push_str(&format!(" · {nb} new bytes"));
    }
    t
}

fn msg_title(m: &MessageEntry) -> String {
    let mut t = format!(
        "message {} · offset {} · {} bytes · in segment(s) {}",
        m.index,
        m.offset,
        m.len,
        m.segments
            .iter()
            .map(|f| format!("#{f}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    if m.segments_total > m.segments.len() as u64 {
        t.push_str(&format!(" … {} segments in all", m.segments_total));
    }
    if m.split {
        t.push_str(" · split across segments");
    }
    if m.coalesced {
        t.push_str(" · coalesced with another message");
    }
    if !m.complete {
        t.push_str(" · incomplete");
    }
    if m.gap_bytes > 0 {
        t.push_str(&format!(" · {} bytes lost in a gap", m.gap_bytes));
    }
    if let Some(sm) = m.info.as_ref().and_then(|i| i.summary.as_ref()) {
        t.push_str(&format!(" · {sm}"));
    }
    t
}

/// The segment/message map of one stream direction.
fn map(s: &StreamEntry, max_segments: usize) -> Markup {
    let mut segs: Vec<&SegmentEntry> = s.segments.iter().collect();
    segs.sort_by_key(|x| (x.offset, x.frame));
    let cut_segments = segs.len() > max_segments;
    segs.truncate(max_segments);
    let end = segs
        .iter()
        .map(|x| x.offset + x.len)
        .max()
        .unwrap_or(0)
        .max(if cut_segments { 0 } else { s.stream_len });
    // Messages are capped like segments (thousands of tiny messages can share a few
    // segments): the map then ends where the last drawn message ends.
    let mut msgs: Vec<&MessageEntry> = s.messages.iter().filter(|m| m.offset < end).collect();
    msgs.sort_by_key(|m| (m.offset, m.index));
    let cut_messages = msgs.len() > max_segments;
    msgs.truncate(max_segments);
    let end = match msgs.last() {
        Some(m) if cut_messages => end.min(m.offset + m.len),
        _ => end,
    };
    segs.retain(|x| x.offset < end);
    let gaps: Vec<&GapEntry> = s
        .gaps
        .iter()
        .filter(|g| g.offset < end)
        .take(max_segments)
        .collect();
    let mut bounds = vec![0, end];
    for x in &segs {
        bounds.push(x.offset);
        bounds.push(x.offset + x.len);
    }
    for m in &msgs {
        bounds.push(m.offset);
        bounds.push((m.offset + m.len).min(end));
    }
    for g in &gaps {
        bounds.push(g.offset);
        bounds.push((g.offset + g.len).min(end));
    }
    let sc = Scale::new(bounds);
    let framed = !msgs.is_empty();
    let (seg_y, msg_y, row_h) = (18.0, 58.0, 30.0);
    let height = if framed {
        msg_y + row_h + 22.0
    } else {
        seg_y + row_h + 22.0
    };
    let width = sc.end() + 70.0;
    let more_msgs =
        cut_messages || s.messages.iter().any(|m| m.offset + m.len > end) || s.lists_cut.is_some();
    html! {
        div.scroll {
            svg.smap viewBox=(format!("0 0 {} {}", c(width), c(height))) width=(c(width)) height=(c(height)) role="img"
                aria-label=(format!("segment and message map of connection {} {}", s.conn, s.dir)) {
                text.rowl x="4" y=(c(seg_y + 19.0)) { "segments" }
                @if framed { text.rowl x="4" y=(c(msg_y + 19.0)) { "messages" } }
                @for g in &gaps {
                    @let (x0, x1) = (sc.x(g.offset), sc.x((g.offset + g.len).min(end)));
                    rect.gap x=(c(x0)) y=(c(seg_y)) width=(c((x1 - x0).max(1.0))) height=(c(if framed { msg_y + row_h - seg_y } else { row_h })) {
                        title { "gap: offset " (g.offset) " · " (g.len) " bytes never seen (" (g.reason) ")" }
                    }
                }
                @for x in &segs {
                    @let (x0, x1) = (sc.x(x.offset), sc.x(x.offset + x.len));
                    @let label = format!("#{}", x.frame);
                    g class=(seg_class(x)) {
                        title { (seg_title(x)) }
                        rect x=(c(x0)) y=(c(seg_y)) width=(c((x1 - x0).max(1.0))) height=(c(row_h)) {}
                        @if fits(&label, x1 - x0) { text x=(c((x0 + x1) / 2.0)) y=(c(seg_y + 19.0)) { (label) } }
                    }
                }
                @for m in &msgs {
                    @let (x0, x1) = (sc.x(m.offset), sc.x((m.offset + m.len).min(end)));
                    @let label = m.index.to_string();
                    g class=(msg_class(m)) {
                        title { (msg_title(m)) }
                        rect x=(c(x0)) y=(c(msg_y)) width=(c((x1 - x0).max(1.0))) height=(c(row_h)) {}
                        @if fits(&label, x1 - x0) { text x=(c((x0 + x1) / 2.0)) y=(c(msg_y + 19.0)) { (label) } }
                    }
                }
                // Message boundaries, across both rows.
                @if framed {
                    path.mb d=(boundaries(&sc, &msgs, seg_y - 6.0, msg_y + row_h + 6.0)) {}
                }
                text.axis x=(c(LEFT)) y=(c(height - 4.0)) { "0" }
                text.axis.end x=(c(sc.end())) y=(c(height - 4.0)) { (n(end)) " bytes" @if cut_segments || more_msgs { " …" } }
            }
        }
        @if cut_segments || more_msgs {
            p.limit-note {
                "Drawn: the first " (n(segs.len() as u64)) " of " (n(s.stats.segments)) " segments and "
                (n(msgs.len() as u64)) " of " (n(s.stats.messages + s.stats.incomplete_messages)) " messages (up to offset " (n(end)) ")"
                @if let Some(cut) = &s.lists_cut { "; the report lists " (n(s.segments.len() as u64)) " segments and " (n(s.messages.len() as u64)) " messages (--max-list " (cut.cap) ")" }
                "."
            }
        }
    }
}

fn seg_class(s: &SegmentEntry) -> String {
    let mut c = String::from("seg");
    if s.coalescing {
        c.push_str(" coal");
    }
    if s.oversized {
        c.push_str(" big");
    }
    if s.out_of_order {
        c.push_str(" ooo");
    }
    c
}

fn msg_class(m: &MessageEntry) -> String {
    let mut c = String::from("msg");
    if m.split {
        c.push_str(" split");
    }
    if m.coalesced {
        c.push_str(" coal");
    }
    if !m.complete {
        c.push_str(" part");
    }
    c
}

fn boundaries(sc: &Scale, msgs: &[&MessageEntry], y0: f64, y1: f64) -> String {
    let mut d = String::new();
    for m in msgs {
        let x = c(sc.x(m.offset));
        d.push_str(&format!("M{x} {}V{}", c(y0), c(y1)));
    }
    if let Some(last) = msgs.last() {
        let x = c(sc.x(last.offset + last.len));
        d.push_str(&format!("M{x} {}V{}", c(y0), c(y1)));
    }
    d
}

/// Header details the framing read (json-header fields, HTTP start lines), first rows.
fn info_table(msgs: &[MessageEntry]) -> Markup {
    let rows: Vec<&MessageEntry> = msgs.iter().filter(|m| m.info.is_some()).collect();
    html! {
        @if !rows.is_empty() {
            details.minfo {
                summary { "Message headers (" (rows.len()) ")" }
                table.data {
                    thead { tr { th { "message" } th { "offset" } th { "bytes" } th { "summary" } th { "header fields" } th { "body" } } }
                    tbody {
                        @for m in rows.iter().take(MAX_INFO_ROWS) {
                            @let i = m.info.as_ref();
                            tr {
                                td.num { (m.index) } td.num { (m.offset) } td.num { (n(m.len)) }
                                td { (i.and_then(|i| i.summary.as_deref()).unwrap_or("")) }
                                td {
                                    @if let Some(h) = i.and_then(|i| i.header.as_ref()) {
                                        @for (k, v) in h { code { (k) } "=" code { (v) } " " }
                                    }
                                }
                                td {
                                    @if let Some(i) = i {
                                        @if let Some(b) = &i.body { (b) " " }
                                        @if let Some(l) = i.body_len { (n(l)) " bytes " }
                                        @match i.md5_ok {
                                            Some(true) => { "MD5 ✓" }
                                            Some(false) => { span.bad { "MD5 ✗ (got " (i.md5.as_deref().unwrap_or("")) ")" } }
                                            None => {}
                                        }
                                        @if i.md5_unverifiable { " MD5 not checked (gap)" }
                                    }
                                }
                            }
                        }
                    }
                }
                @if rows.len() > MAX_INFO_ROWS { p.note { "The first " (MAX_INFO_ROWS) " of " (rows.len()) " are listed." } }
            }
        }
    }
}

fn write_udp(
    w: &mut dyn Write,
    r: &Report,
    spills: &mut [(&'static str, Spill)],
) -> io::Result<()> {
    let mut seen = 0usize;
    let mut total = 0usize;
    let mut body = Vec::new();
    for_each(
        spills,
        "udp_flows",
        r.udp_flows.as_deref(),
        &mut |u: UdpFlowEntry| {
            total += 1;
            if seen < MAX_UDP_MAPS {
                seen += 1;
                body.extend_from_slice(udp_map(&u).into_string().as_bytes());
                body.push(b'\n');
            }
            Ok(())
        },
    )?;
    if total == 0 {
        return Ok(());
    }
    let head = html! {
        h3 #datagrams { "UDP datagrams: each one is a message, its boundaries survive (" (n(total as u64)) " flow directions)" }
        @if total > seen { p.limit-note { "The first " (seen) " flow directions are drawn." } }
    };
    w.write_all(head.into_string().as_bytes())?;
    w.write_all(&body)
}

fn udp_map(u: &UdpFlowEntry) -> Markup {
    let (from, to) = if u.dir == "orig" {
        (&u.orig, &u.resp)
    } else {
        (&u.resp, &u.orig)
    };
    let shown: Vec<_> = u.datagrams.iter().take(MAX_DATAGRAMS).collect();
    // Consecutive boxes, widths by length (at least MIN_PIECE), a small gap between.
    let max = shown.iter().map(|d| d.len).max().unwrap_or(0).max(1) as f64;
    let scale = (TARGET / shown.len().max(1) as f64).min(160.0) / max;
    let mut x = LEFT;
    let mut boxes = Vec::new();
    for d in &shown {
        let wd = (d.len as f64 * scale).max(MIN_PIECE);
        boxes.push((x, wd, *d));
        x += wd + 3.0;
    }
    let width = x + 20.0;
    html! {
        article.udpmap id=(format!("u{}-{}", u.flow, u.dir)) {
            h4 {
                a href=(format!("#c{}", u.flow)) { "#" (u.flow) } " " (u.dir) ": " code { (from) } " → " code { (to) }
                " · " (n(u.datagrams_total)) " datagrams, " (bytes(u.bytes))
                @if u.fragmented > 0 { " · " (u.fragmented) " reassembled from IPv4 fragments" }
            }
            div.scroll {
                svg.dmap viewBox=(format!("0 0 {} 52", c(width))) width=(c(width)) height="52" role="img" aria-label="datagrams" {
                    text.rowl x="4" y="27" { "datagrams" }
                    @for (x0, wd, d) in &boxes {
                        @let label = format!("#{}", d.frame);
                        g class=(if d.fragments.is_empty() { "dg" } else { "dg frag" }) {
                            title {
                                "datagram: frame " (d.frame) " · " (d.len) " bytes"
                                @if !d.fragments.is_empty() { " · reassembled from fragment frames " (d.fragments.iter().map(|f| f.to_string()).collect::<Vec<_>>().join(", ")) }
                            }
                            rect x=(c(*x0)) y="8" width=(c(*wd)) height="30" {}
                            @if fits(&label, *wd) { text x=(c(x0 + wd / 2.0)) y="27" { (label) } }
                        }
                    }
                }
            }
            @if u.datagrams_total > shown.len() as u64 { p.note { "The first " (shown.len()) " of " (n(u.datagrams_total)) " datagrams are drawn." } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_is_monotone_and_keeps_small_pieces_visible() {
        let sc = Scale::new(vec![0, 4, 1452, 1456, 2900]);
        let xs: Vec<f64> = [0u64, 4, 1452, 1456, 2900]
            .iter()
            .map(|&o| sc.x(o))
            .collect();
        assert!(xs.windows(2).all(|p| p[1] > p[0]), "{xs:?}");
        assert!(xs[1] - xs[0] >= MIN_PIECE - 1e-9);
        assert!(
            xs[2] - xs[1] > 10.0 * (xs[1] - xs[0]),
            "big pieces stay big: {xs:?}"
        );
        assert!((sc.end() - LEFT - TARGET).abs() < 1.0, "{}", sc.end());
        // Between boundaries: linear.
        let mid = sc.x(728);
        assert!((mid - (xs[1] + xs[2]) / 2.0).abs() < 0.01);
    }

    /// Thousands of 1-byte messages in two segments: the map draws at most the cap of
    /// messages and says so.
    #[test]
    fn messages_are_capped_like_segments() {
        let mut s = StreamEntry {
            conn: 1,
            dir: "orig".into(),
            stream_len: 3000,
            ..StreamEntry::default()
        };
        for (frame, offset) in [(5u64, 0u64), (6, 1500)] {
            s.segments.push(SegmentEntry {
                frame,
                offset,
                len: 1500,
                ..SegmentEntry::default()
            });
        }
        for i in 0..3000 {
            s.messages.push(MessageEntry {
                index: i,
                offset: i,
                len: 1,
                segments: vec![if i < 1500 { 5 } else { 6 }],
                coalesced: true,
                ..MessageEntry::default()
            });
        }
        s.stats.messages = 3000;
        s.stats.segments = 2;
        let m = map(&s, 50).into_string();
        assert_eq!(m.matches("<g class=\"msg").count(), 50);
        assert_eq!(
            m.matches("<g class=\"seg").count(),
            1,
            "the second segment is past the cut"
        );
        assert!(m.contains("50 of 3,000 messages"));
    }

    #[test]
    fn many_pieces_overflow_the_target_and_scroll() {
        let bounds: Vec<u64> = (0..=1000).collect();
        let sc = Scale::new(bounds);
        assert!(sc.end() - LEFT >= 1000.0 * MIN_PIECE);
    }
}
