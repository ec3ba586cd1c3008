//! Terminal views of the connection tracker: the connection overview of the default
//! summary (counts by handshake outcome and teardown kind), `--handshakes` and
//! `--teardowns` (a compact table plus ladders for the first few), `--conns` (a table
//! like Zeek's conn.log) and `--conn ID` (one connection in full).
//!
//! Renders from [`ConnView`], the rows the tracker kept (the first `--limit` matching
//! `--host`/`--port`); the JSON report has every connection. Writes to any `io::Write`.

use std::collections::BTreeMap;
use std::io::{self, Write};

use comfy_table::Cell;

use super::conns::{ConnEntry, ConnStats, ConnView};
use super::ladder;
use super::table::{new_table, num, write_table};
use super::Report;
use crate::config::{Config, Views};

/// Ladders drawn under the `--handshakes` / `--teardowns` tables.
pub const LADDERS: usize = 3;

const OUTCOMES: [&str; 6] = [
    "complete",
    "refused",
    "no-answer",
    "synack-no-ack",
    "simultaneous-open",
    "midstream",
];
const KINDS: [&str; 8] = [
    "fin-4way",
    "fin-3way",
    "simultaneous",
    "half-close",
    "rst",
    "fin-one-side",
    "open",
    "none",
];

fn filter_note(v: &ConnView) -> String {
    if v.filter.is_empty() {
        String::new()
    } else {
        format!(" ({})", v.filter)
    }
}

fn ms(v: Option<f64>) -> Cell {
    num(v.map_or_else(|| "-".to_string(), |x| format!("{x:.3}")))
}

fn opt(v: Option<u64>) -> Cell {
    num(v.map_or_else(|| "-".to_string(), |x| x.to_string()))
}

fn counts_table(
    caption: &str,
    title: &str,
    names: &[&str],
    map: &BTreeMap<String, u64>,
    total: u64,
    w: &mut dyn Write,
) -> io::Result<()> {
    let mut t = new_table(&[title, "connections", "share"]);
    let mut any = false;
    let denom = total.max(1) as f64;
    for n in names {
        let v = map.get(*n).copied().unwrap_or(0);
        any |= v > 0;
        t.add_row(vec![
            Cell::new(n),
            num(v),
            num(format!("{:.1}%", v as f64 * 100.0 / denom)),
        ]);
    }
    if any {
        write_table(w, caption, &t, 0, 0)?;
    }
    Ok(())
}

/// The connection overview of the default summary.
pub fn write_overview(w: &mut dyn Write, v: &ConnView) -> io::Result<()> {
    let s: &ConnStats = &v.stats;
    writeln!(
        w,
        "Connections{}: {} ({} TCP, {} UDP); peak {} tracked at once (cap {}){}\n",
        filter_note(v),
        s.connections,
        s.tcp,
        s.udp,
        s.peak_tracked,
        s.max_connections,
        if s.evicted > 0 {
            format!(", {} evicted because the table was full", s.evicted)
        } else {
            String::new()
        }
    )?;
    if s.tcp > 0 {
        counts_table(
            "TCP handshake outcomes (--handshakes shows each)",
            "handshake outcome",
            &OUTCOMES,
            &s.handshake_outcomes,
            s.tcp,
            w,
        )?;
        counts_table(
            "TCP teardown kinds (--teardowns shows each)",
            "teardown kind",
            &KINDS,
            &s.teardown_kinds,
            s.tcp,
            w,
        )?;
    } else {
        writeln!(w)?;
    }
    Ok(())
}

fn handshake_table(w: &mut dyn Write, v: &ConnView) -> io::Result<()> {
    let mut t = new_table(&[
        "id",
        "orig",
        "resp",
        "outcome",
        "SYN",
        "SYN-ACK",
        "ACK",
        "x (orig ISN)",
        "y (resp ISN)",
        "acks",
        "SYN rtx",
        "SYN→SYN-ACK ms",
        "SYN-ACK→ACK ms",
    ]);
    for e in &v.tcp_rows {
        let Some(h) = &e.handshake else { continue };
        let syns = match h.syn_frames.as_slice() {
            [] => "-".to_string(),
            [one] => one.to_string(),
            [first, .., last] => format!("{first}…{last}"),
        };
        t.add_row(vec![
            num(e.id),
            Cell::new(&e.orig),
            Cell::new(&e.resp),
            Cell::new(&h.outcome),
            num(syns),
            opt(h.synack_frame),
            opt(h.ack_frame),
            opt(h.orig_isn.map(u64::from)),
            opt(h.resp_isn.map(u64::from)),
            Cell::new(if h.mismatches.is_empty() {
                "✓"
            } else {
                "✗"
            }),
            num(h.syn_retransmissions),
            ms(h.rtt_ms.syn_to_synack),
            ms(h.rtt_ms.synack_to_ack),
        ]);
    }
    let shown = v.tcp_rows.len();
    write_table(
        w,
        &format!("TCP handshakes{}", filter_note(v)),
        &t,
        shown,
        v.tcp_total as usize,
    )?;
    for e in v.tcp_rows.iter().take(LADDERS) {
        ladder::write_handshake(w, e)?;
    }
    Ok(())
}

fn teardown_table(w: &mut dyn Write, v: &ConnView) -> io::Result<()> {
    let mut t = new_table(&[
        "id",
        "orig",
        "resp",
        "kind",
        "initiator",
        "frames",
        "FIN→last ACK ms",
        "notes",
    ]);
    for e in &v.tcp_rows {
        let Some(td) = &e.teardown else { continue };
        let frames: Vec<String> = td.frames.iter().map(u64::to_string).collect();
        t.add_row(vec![
            num(e.id),
            Cell::new(&e.orig),
            Cell::new(&e.resp),
            Cell::new(&td.kind),
            Cell::new(td.initiator.as_deref().unwrap_or("-")),
            Cell::new(frames.join(" ")),
            ms(td.fin_to_last_ack_ms),
            Cell::new(td.notes.join(", ")),
        ]);
    }
    write_table(
        w,
        &format!("TCP teardowns{}", filter_note(v)),
        &t,
        v.tcp_rows.len(),
        v.tcp_total as usize,
    )?;
    for e in v.tcp_rows.iter().take(LADDERS) {
        ladder::write_teardown(w, e)?;
    }
    Ok(())
}

fn conns_table(w: &mut dyn Write, v: &ConnView) -> io::Result<()> {
    let mut t = new_table(&[
        "id",
        "proto",
        "orig",
        "resp",
        "first frame",
        "duration s",
        "conn_state",
        "history",
        "orig pkts",
        "orig bytes",
        "resp pkts",
        "resp bytes",
        "missed",
        "rtx",
        "ooo",
        "dup ack",
        "zero win",
    ]);
    for e in &v.rows {
        let a = e.anomalies.unwrap_or_default();
        let tcp = e.anomalies.is_some();
        let an = |x: u64| if tcp { num(x) } else { num("-") };
        t.add_row(vec![
            num(e.id),
            Cell::new(&e.proto),
            Cell::new(&e.orig),
            Cell::new(&e.resp),
            num(e.first_frame),
            num(format!("{:.6}", e.duration_s)),
            Cell::new(&e.conn_state),
            Cell::new(if e.history.is_empty() {
                "-"
            } else {
                &e.history
            }),
            num(e.orig_pkts),
            num(e.orig_bytes),
            num(e.resp_pkts),
            num(e.resp_bytes),
            num(e.missed_bytes),
            an(a.retransmissions),
            an(a.out_of_order),
            an(a.dup_acks),
            an(a.zero_window),
        ]);
    }
    write_table(
        w,
        &format!(
            "Connections{} (Zeek conn.log style; see README \"Connections\" for the legend)",
            filter_note(v)
        ),
        &t,
        v.rows.len(),
        v.rows_total as usize,
    )
}

/// One connection in full: every field, then both ladders.
pub fn write_conn(w: &mut dyn Write, e: &ConnEntry) -> io::Result<()> {
    let mut t = new_table(&["connection", &e.id.to_string()]);
    let mut row = |k: &str, v: String| {
        t.add_row(vec![Cell::new(k), Cell::new(v)]);
    };
    row("proto", e.proto.clone());
    row("orig", format!("{} ({})", e.orig, e.orig_by));
    row("resp", e.resp.clone());
    row("frames", format!("{} … {}", e.first_frame, e.last_frame));
    row("start", super::table::utc(e.start_ns));
    row("duration", format!("{:.6} s", e.duration_s));
    row("conn_state", e.conn_state.clone());
    row("history", e.history.clone());
    row(
        "orig → resp",
        format!(
            "{} pkts, {} bytes (payload on the wire {}, IP {})",
            e.orig_pkts, e.orig_bytes, e.orig_payload_bytes, e.orig_ip_bytes
        ),
    );
    row(
        "resp → orig",
        format!(
            "{} pkts, {} bytes (payload on the wire {}, IP {})",
            e.resp_pkts, e.resp_bytes, e.resp_payload_bytes, e.resp_ip_bytes
        ),
    );
    row("missed bytes", e.missed_bytes.to_string());
    if let Some(s) = &e.tcp_state {
        row("TCP state", format!("orig {}, resp {}", s.orig, s.resp));
    }
    if let Some(a) = &e.anomalies {
        row(
            "anomalies",
            format!(
                "{} retransmissions ({} bytes), {} out of order, {} dup ACKs, {} zero windows, {} keep-alives, {} lost segments, {} bytes never seen",
                a.retransmissions,
                a.retransmitted_bytes,
                a.out_of_order,
                a.dup_acks,
                a.zero_window,
                a.keep_alives,
                a.lost_segments,
                a.missed_bytes
            ),
        );
    }
    row("finalized by", e.finalized_by.clone());
    write_table(w, "", &t, 0, 0)?;
    ladder::write_handshake(w, e)?;
    ladder::write_teardown(w, e)
}

/// Writes the connection views asked for in `views` (and `--conn`).
pub fn write_views(
    w: &mut dyn Write,
    r: &Report,
    views: &Views,
    config: &Config,
) -> io::Result<()> {
    let Some(v) = &r.conn_view else {
        return Ok(());
    };
    // The overview goes with the capture summary, which every view but --packets shows.
    if views.summary || !views.packets {
        write_overview(w, v)?;
    }
    if views.handshakes {
        handshake_table(w, v)?;
    }
    if views.teardowns {
        teardown_table(w, v)?;
    }
    if views.conns {
        conns_table(w, v)?;
    }
    if let Some(id) = config.conns.conn {
        match &v.focus {
            Some(e) => write_conn(w, e)?,
            None => writeln!(
                w,
                "No connection with id {id} (ids run from 1; see --conns).\n"
            )?,
        }
    }
    Ok(())
}
