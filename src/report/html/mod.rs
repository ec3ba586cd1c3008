//! The HTML renderer (`--html PATH`): one self-contained page that draws what the tables
//! say — overview, a ladder diagram per TCP connection, a segment/message map per stream
//! direction, the MAC learning table as it grew and the ARP table — from the finished
//! [`Report`], never re-analysing anything.
//!
//! Invariants:
//! - One file, no network: CSS, SVG and a small script are inline; no font, image or
//!   script is fetched. The script only filters, pages and zooms: cards past the first
//!   page are written `hidden` (so a browser lays out one page of thousands), and a
//!   `<noscript>` style shows every card when scripting is off.
//! - Everything that came from the capture (file and interface names, addresses, warning
//!   texts, JSON-header fields, HTTP start lines, payload bytes quoted in a framing reason)
//!   goes through maud's escaping: the templates never write capture text with
//!   `PreEscaped`, and the script reads data attributes and toggles `hidden`, never builds
//!   markup from page text.
//! - Memory stays bounded: connection and stream entries are read back one at a time from
//!   the analyzers' spills ([`Spill::for_each_entry`]) and each card is written out as
//!   soon as it is rendered. Long lists (ladders, maps, segments per map, UDP flows, MAC
//!   lanes, table rows) are capped by [`HtmlOptions`] and the page says what it left out.
//! - Colour is never the only carrier of meaning: every coloured mark also has a text label,
//!   a dash pattern or a hatch, and the palette is Okabe–Ito (safe for the common colour-
//!   vision deficiencies).
//!
//! Submodules: [`conns`] (connection cards, ladders, legend), [`streams`] (segment/message
//! maps), [`l2`] (MAC and ARP), [`svg`] (small drawing helpers).

pub mod conns;
pub mod l2;
pub mod streams;
pub mod svg;

use std::collections::HashMap;
use std::io::{self, Write};

use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::conns::ConnEntry;
use super::json::Spill;
use super::table::utc;
use super::Report;
use crate::config::HtmlOptions;

const STYLE: &str = include_str!("style.css");
const SCRIPT: &str = include_str!("script.js");

/// Where the connection entries come from: the tracker's spill during a run, or the
/// `connections` array of a report read back from JSON.
pub enum Entries<'a> {
    Spill(&'a mut Spill),
    Memory(&'a [ConnEntry]),
    None,
}

impl Entries<'_> {
    /// Calls `f` with each connection entry in id order, one at a time.
    pub fn for_each(&mut self, f: &mut dyn FnMut(ConnEntry) -> io::Result<()>) -> io::Result<()> {
        match self {
            Entries::Spill(s) => s.for_each_entry(&mut |bytes| {
                let e: ConnEntry = serde_json::from_slice(bytes).map_err(io::Error::other)?;
                f(e)
            }),
            Entries::Memory(list) => list.iter().try_for_each(|e| f(e.clone())),
            Entries::None => Ok(()),
        }
    }
}

/// Writes the page for `report` to `w`; `spills` are the arrays the analyzers spilled
/// (the connection entries are read from the one named "connections", or from
/// `report.connections` when the report was read back from JSON).
pub fn write(
    w: &mut dyn Write,
    report: &Report,
    spills: &mut [(&'static str, Spill)],
    opts: &HtmlOptions,
) -> io::Result<()> {
    write_page(w, report, spills, opts)
}

/// The connection entries: the tracker's spill, or the report's own list.
fn entries<'a>(report: &'a Report, spills: &'a mut [(&'static str, Spill)]) -> Entries<'a> {
    match spills.iter_mut().find(|(k, _)| *k == "connections") {
        Some((_, s)) => Entries::Spill(s),
        None => match &report.connections {
            Some(list) => Entries::Memory(list),
            None => Entries::None,
        },
    }
}

/// Aggregates of one pass over the connection entries, needed before the cards are drawn.
#[derive(Default)]
pub struct ConnTotals {
    pub tcp: u64,
    pub udp: u64,
    /// Per IP address: bytes (IP level), packets, connections.
    talkers: HashMap<String, (u64, u64, u64)>,
    /// Addresses not tallied because the talker map was full.
    talkers_dropped: u64,
    /// TCP connections per (conn_state, handshake outcome, teardown kind): a few dozen
    /// combinations at most, from the analyzers' fixed vocabularies.
    pub combos: HashMap<String, u64>,
}

/// Most distinct addresses tallied for the top-talkers table.
const MAX_TALKERS: usize = 100_000;
/// Rows of the top-talkers table.
const TOP_TALKERS: usize = 15;

/// The address part of an `ip:port` / `\[v6\]:port` endpoint.
pub fn host_of(endpoint: &str) -> &str {
    let h = endpoint.rsplit_once(':').map_or(endpoint, |(h, _)| h);
    h.trim_start_matches('[').trim_end_matches(']')
}

impl ConnTotals {
    fn add(&mut self, e: &ConnEntry) {
        if e.proto == "tcp" {
            self.tcp += 1;
            *self.combos.entry(conns::combo(e)).or_insert(0) += 1;
        } else {
            self.udp += 1;
        }
        let sides = [
            (host_of(&e.orig), e.orig_ip_bytes + e.resp_ip_bytes),
            (host_of(&e.resp), e.orig_ip_bytes + e.resp_ip_bytes),
        ];
        let pkts = e.orig_pkts + e.resp_pkts;
        for (i, (h, bytes)) in sides.into_iter().enumerate() {
            // A connection to itself (same address both ends) counts once.
            if i == 1 && h == host_of(&e.orig) {
                continue;
            }
            if let Some(t) = self.talkers.get_mut(h) {
                t.0 += bytes;
                t.1 += pkts;
                t.2 += 1;
            } else if self.talkers.len() < MAX_TALKERS {
                self.talkers.insert(h.to_string(), (bytes, pkts, 1));
            } else {
                self.talkers_dropped += 1;
            }
        }
    }
}

fn write_page(
    w: &mut dyn Write,
    r: &Report,
    spills: &mut [(&'static str, Spill)],
    opts: &HtmlOptions,
) -> io::Result<()> {
    let mut totals = ConnTotals::default();
    let has_streams = streams::present(r, spills);
    // Which maps are drawn, before the connection cards that link to them.
    let plan = if has_streams {
        streams::plan(r, spills, opts)?
    } else {
        streams::Plan::default()
    };
    entries(r, spills).for_each(&mut |e| {
        totals.add(&e);
        Ok(())
    })?;
    let title = match (&r.source.interface, r.source.path.first()) {
        (Some(i), _) => format!("netlens: live capture on {i}"),
        (None, Some(p)) if r.source.path.len() > 1 => format!(
            "netlens: {} and {} more file(s)",
            file_name(p),
            r.source.path.len() - 1
        ),
        (None, Some(p)) => format!("netlens: {}", file_name(p)),
        _ => "netlens report".to_string(),
    };
    let head = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="generator" content=(format!("netlens {}", r.netlens));
                title { (title) }
                style { (PreEscaped(STYLE)) }
                // Without the script nothing pages the lists: show every card.
                noscript { style { "article[hidden] { display: block; }" } }
            }
        }
    };
    // maud closes what it opens, so the page is written in pieces: everything up to the
    // body's first child, the sections, then the closing tags. The head fragment ends with
    // `</head></html>`; cut those off.
    let head = head.into_string();
    let head = head
        .strip_suffix("</head></html>")
        .ok_or_else(|| io::Error::other("unexpected page head"))?;
    w.write_all(head.as_bytes())?;
    w.write_all(b"</head>\n<body>\n")?;
    w.write_all(svg::defs().into_string().as_bytes())?;
    w.write_all(
        header(r, &title, &totals, has_streams)
            .into_string()
            .as_bytes(),
    )?;
    w.write_all(b"\n<main>\n")?;
    w.write_all(overview(r, &totals).into_string().as_bytes())?;
    if r.connection_stats.is_some() {
        conns::write_section(w, r, &mut entries(r, spills), &totals, &plan, opts)?;
    }
    if has_streams {
        streams::write_section(w, r, spills, &plan, opts)?;
    }
    if r.connection_stats.is_some() && totals.udp > 0 {
        conns::write_udp(w, &mut entries(r, spills), &totals, opts)?;
    }
    if r.mac_table.is_some() {
        w.write_all(l2::mac_section(r, opts).into_string().as_bytes())?;
    }
    if r.arp.is_some() {
        w.write_all(l2::arp_section(r, opts).into_string().as_bytes())?;
    }
    w.write_all(conns::legend().into_string().as_bytes())?;
    w.write_all(b"</main>\n")?;
    let tail = html! {
        footer {
            p {
                "Written by netlens " (r.netlens) " (report schema " (r.schema) "). "
                "Frame numbers are Wireshark's (1-based). Everything here is also in the JSON report (--json)."
            }
        }
        script { (PreEscaped(SCRIPT)) }
    };
    w.write_all(tail.into_string().as_bytes())?;
    w.write_all(b"\n</body>\n</html>\n")?;
    w.flush()
}

/// The last path component, for the title.
fn file_name(p: &str) -> &str {
    p.rsplit(['/', '\\']).next().unwrap_or(p)
}

fn header(r: &Report, title: &str, totals: &ConnTotals, has_streams: bool) -> Markup {
    html! {
        header #top {
            h1 { (title) }
            nav aria-label="sections" {
                a href="#overview" { "Overview" }
                @if r.connection_stats.is_some() {
                    a href="#conns" { "TCP connections (" (totals.tcp) ")" }
                }
                @if has_streams { a href="#streams" { "Streams" } }
                @if r.connection_stats.is_some() && totals.udp > 0 { a href="#udp" { "UDP flows (" (totals.udp) ")" } }
                @if r.mac_table.is_some() { a href="#mac" { "MAC table" } }
                @if r.arp.is_some() { a href="#arp" { "ARP" } }
                a href="#legend" { "Legend" }
            }
        }
    }
}

/// Thousands separators, for counts people read.
pub fn n(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes in binary units, exact count alongside.
pub fn bytes(v: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut f = v as f64;
    let mut u = 0;
    while f >= 1024.0 && u < UNITS.len() - 1 {
        f /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v} B")
    } else {
        format!("{f:.1} {} ({} B)", UNITS[u], n(v))
    }
}

/// Milliseconds with 3 decimals, or "–".
pub fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_string(), |x| format!("{x:.3} ms"))
}

fn overview(r: &Report, totals: &ConnTotals) -> Markup {
    let s = &r.stats;
    let cs = r.connection_stats.as_ref();
    html! {
        section #overview {
            h2 { "Overview" }
            dl.facts {
                @match &r.source.interface {
                    Some(i) => { dt { "interface" } dd { (i) } }
                    None => { dt { "files" } dd { @for (i, p) in r.source.path.iter().enumerate() { @if i > 0 { ", " } code { (p) } } } }
                }
                dt { "format" } dd { (r.source.format) " · link types " (r.source.link_types.join(", ")) }
                @if r.source.interfaces.iter().any(|i| i.name.is_some()) || r.source.interfaces.len() > 1 {
                    dt { "interfaces" } dd {
                        @for (k, i) in r.source.interfaces.iter().enumerate() {
                            @if k > 0 { " · " }
                            "port " (i.port) @if let Some(nm) = &i.name { " " code { (nm) } } " (" (i.link_type_name) ")"
                        }
                    }
                }
                dt { "packets" } dd { (n(s.packets)) }
                dt { "bytes on the wire" } dd { (bytes(s.bytes)) }
                @if let (Some(a), Some(b)) = (s.first_ts_ns, s.last_ts_ns) {
                    dt { "time span" } dd { (utc(a)) " → " (utc(b)) " (" (format!("{:.6}", s.duration_s)) " s)" }
                }
                @if let Some(c) = cs {
                    dt { "connections" } dd { (n(c.connections)) " (" (n(c.tcp)) " TCP, " (n(c.udp)) " UDP); peak " (n(c.peak_tracked)) " tracked at once" }
                }
                @if s.filtered_out > 0 { dt { "left out by the filter" } dd { (n(s.filtered_out)) " frames" } }
                @if s.snaplen_cut > 0 { dt { "cut by the snap length" } dd { (n(s.snaplen_cut)) " frames" } }
            }
            div.charts {
                figure.chart {
                    figcaption { "Protocol mix (frames carrying each layer)" }
                    (svg::bar_chart("proto", s.by_protocol.iter().map(|(k, v)| (k.as_str(), *v, "")).collect::<Vec<_>>().as_slice(), s.packets))
                }
                @if let Some(c) = cs {
                    @if c.tcp > 0 {
                        figure.chart {
                            figcaption { "TCP handshakes by outcome" }
                            (svg::bar_chart("outcome", &conns::ordered(&c.handshake_outcomes, conns::OUTCOMES), c.tcp))
                        }
                        figure.chart {
                            figcaption { "TCP teardowns by kind" }
                            (svg::bar_chart("teardown", &conns::ordered(&c.teardown_kinds, conns::TEARDOWNS), c.tcp))
                        }
                    }
                    @if c.connections > 0 {
                        figure.chart {
                            figcaption { "TCP and UDP connections by conn_state (Zeek; see the " a href="#legend" { "legend" } ")" }
                            (svg::bar_chart("state", &c.conn_states.iter().map(|(k, v)| (k.as_str(), *v, "")).collect::<Vec<_>>(), c.connections))
                        }
                    }
                }
            }
            @if !totals.talkers.is_empty() {
                (top_talkers(totals))
            }
            @if !r.warnings.is_empty() {
                h3 #warnings { "Warnings (" (r.warnings.len()) ")" }
                table.data {
                    thead { tr { th { "kind" } th { "message" } th { "frame" } th { "offset" } } }
                    tbody {
                        @for x in &r.warnings {
                            tr.warn {
                                td { code { (x.kind) } }
                                td { (x.message) @if let Some(p) = &x.path { " (" code { (p) } ")" } }
                                td.num { (x.frame.map(|f| f.to_string()).unwrap_or_default()) }
                                td.num { (x.offset.map(|f| f.to_string()).unwrap_or_default()) }
                            }
                        }
                    }
                }
            }
            @if !s.dissect_issues.is_empty() {
                h3 #issues { "Dissect issues (frames kept; netlens read --packets shows each)" }
                table.data {
                    thead { tr { th { "layer: reason" } th { "frames" } } }
                    tbody {
                        @for (k, v) in &s.dissect_issues {
                            tr { td { (k) } td.num { (n(*v)) } }
                        }
                    }
                }
            }
        }
    }
}

fn top_talkers(t: &ConnTotals) -> Markup {
    let mut rows: Vec<(&String, &(u64, u64, u64))> = t.talkers.iter().collect();
    rows.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(b.0)));
    let shown = rows.len().min(TOP_TALKERS);
    let max = rows.first().map_or(1, |r| r.1 .0.max(1));
    html! {
        h3 #talkers { "Top talkers (IP bytes of the TCP and UDP connections each address took part in)" }
        table.data.talkers {
            thead { tr { th { "address" } th { "bytes" } th { "packets" } th { "connections" } th.bar { "share of the top" } } }
            tbody {
                @for (h, (b, p, c)) in rows.iter().take(shown) {
                    tr {
                        td { code { (h) } }
                        td.num { (bytes(*b)) }
                        td.num { (n(*p)) }
                        td.num { (n(*c)) }
                        td.bar { (svg::inline_bar(*b, max)) }
                    }
                }
            }
        }
        @if rows.len() > shown || t.talkers_dropped > 0 {
            p.note {
                (n((rows.len() - shown) as u64)) " more address(es) not shown"
                @if t.talkers_dropped > 0 { "; " (n(t.talkers_dropped)) " connection end(s) not tallied (more than " (n(MAX_TALKERS as u64)) " addresses)" }
                "."
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(n(1234567), "1,234,567");
        assert_eq!(n(12), "12");
        assert_eq!(host_of("10.0.0.1:80"), "10.0.0.1");
        assert_eq!(host_of("[fe80::1]:443"), "fe80::1");
        assert_eq!(file_name("/a/b/c.pcap"), "c.pcap");
        assert_eq!(bytes(2048), "2.0 KiB (2,048 B)");
    }
}
