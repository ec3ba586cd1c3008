//! The `--streams` terminal view: per TCP stream direction a segment map a person reads at
//! a glance (frame, offset, length, the messages each segment carries and a bar marking
//! the message boundaries inside it; coalescing segments and split messages highlighted),
//! totals below; then each UDP flow's datagrams (one datagram = one message).
//!
//! Reads the finished entries back ([`EntryReader`]s of the stores) one at a time, so the
//! view costs no more memory than one entry. Writes to any `io::Write`; rows per table
//! follow `--limit` (0 = all; `--conn ID` shows that connection in full).

use std::io::{self, Write};

use comfy_table::{Cell, Color};

use super::streams::{EntryReader, MessageEntry, StreamEntry, UdpFlowEntry};
use super::table::{new_table, num, shown, write_table};

/// Width of the boundary bar, in characters.
const BAR: usize = 32;

/// How to render.
#[derive(Debug, Clone, Copy, Default)]
pub struct ViewOptions {
    /// Rows per table (0 = all).
    pub limit: usize,
    /// Only this connection (and all its rows).
    pub conn: Option<u64>,
    pub color: bool,
}

/// Writes the view of every stream and UDP flow.
pub fn write(
    w: &mut dyn Write,
    streams: &EntryReader,
    udp: &EntryReader,
    o: ViewOptions,
) -> io::Result<()> {
    let limit = if o.conn.is_some() { 0 } else { o.limit };
    let mut shown_streams = 0u64;
    writeln!(
        w,
        "TCP streams: messages vs segments ({} stream direction(s) with payload)",
        streams.len()
    )?;
    writeln!(w)?;
    // Each stream is a table of its own: without --conn, show the first `limit` stream
    // directions in detail and say how many more there are (the JSON has them all).
    let detail = if o.conn.is_some() { 0 } else { o.limit };
    streams.for_first(detail, |s: StreamEntry| {
        if o.conn.is_some_and(|c| c != s.conn) {
            return Ok(());
        }
        shown_streams += 1;
        write_stream(w, &s, limit, o.color)
    })?;
    if o.conn.is_none() && (shown_streams as usize) < streams.len() {
        writeln!(
            w,
            "… {} more stream direction(s) not shown (--limit {}; --conn ID shows one connection, --json has all)",
            streams.len() - shown_streams as usize,
            o.limit
        )?;
        writeln!(w)?;
    }
    if o.conn.is_some() && shown_streams == 0 {
        writeln!(
            w,
            "(no TCP stream with payload for connection {})",
            o.conn.unwrap_or(0)
        )?;
        writeln!(w)?;
    }
    if !udp.is_empty() {
        writeln!(
            w,
            "UDP flows: each datagram is one message, its boundaries survive ({} flow direction(s))",
            udp.len()
        )?;
        writeln!(w)?;
        let mut shown_udp = 0usize;
        udp.for_first(detail, |u: UdpFlowEntry| {
            if o.conn.is_some_and(|c| c != u.flow) {
                return Ok(());
            }
            shown_udp += 1;
            write_udp(w, &u, limit)
        })?;
        if o.conn.is_none() && shown_udp < udp.len() {
            writeln!(
                w,
                "… {} more UDP flow direction(s) not shown (--json has all)",
                udp.len() - shown_udp
            )?;
            writeln!(w)?;
        }
    }
    Ok(())
}

/// `m5` (whole), `m5>` (head), `<m5>` (middle), `<m5` (tail).
fn part_token(index: u64, part: &str) -> String {
    match part {
        "head" => format!("m{index}>"),
        "middle" => format!("<m{index}>"),
        "tail" => format!("<m{index}"),
        _ => format!("m{index}"),
    }
}

/// The message holding stream offset `at`, from the (sorted, tiling) message list.
fn message_at(msgs: &[MessageEntry], at: u64) -> Option<&MessageEntry> {
    let i = msgs.partition_point(|m| m.offset + m.len <= at);
    msgs.get(i).filter(|m| m.offset <= at)
}

/// The bar of a segment: message bytes alternate `=` and `-` by message index, `|` marks a
/// boundary inside the segment, `.` is unframed, `?` is beyond the kept message list.
fn bar(seg_off: u64, len: u64, msgs: &[MessageEntry], listed_all: bool) -> String {
    if len == 0 {
        return String::new();
    }
    let cols = BAR.min(len as usize).max(1);
    let mut out = String::with_capacity(cols + 2);
    out.push('[');
    let mut prev_end: Option<u64> = None;
    for c in 0..cols {
        let lo = seg_off + (c as u64 * len) / cols as u64;
        let hi = (seg_off + ((c as u64 + 1) * len) / cols as u64).max(lo + 1);
        let start = message_at(msgs, lo).map(|m| m.index);
        let end = message_at(msgs, hi - 1).map(|m| m.index);
        // A boundary at this column's start, or inside it.
        let boundary = (c > 0 && start != prev_end) || start != end;
        let ch = match start {
            _ if boundary && (start.is_some() || end.is_some()) => '|',
            None if !listed_all => '?',
            None => '.',
            Some(i) if i % 2 == 0 => '=',
            Some(_) => '-',
        };
        out.push(ch);
        prev_end = end;
    }
    out.push(']');
    out
}

fn write_stream(w: &mut dyn Write, s: &StreamEntry, limit: usize, color: bool) -> io::Result<()> {
    let (from, to) = if s.dir == "orig" {
        (&s.orig, &s.resp)
    } else {
        (&s.resp, &s.orig)
    };
    writeln!(
        w,
        "Stream conn {} {} {from} → {to}: {} bytes, framing {} ({})",
        s.conn, s.dir, s.bytes, s.framing, s.framing_reason
    )?;
    if s.midstream {
        writeln!(
            w,
            "  midstream: no SYN seen; offset 0 is the first byte seen (seq {})",
            s.base_seq
        )?;
    }
    if let Some(e) = &s.framing_error {
        writeln!(
            w,
            "  framing broke at offset {}{}: {}; segments only from there on",
            e.offset,
            e.frame.map(|f| format!(" (frame {f})")).unwrap_or_default(),
            e.reason
        )?;
    }
    if s.oversized_segments > 0 {
        writeln!(
            w,
            "  {} segment(s) larger than the MSS ({}, {}): TSO/GSO on the sender or GRO on the receiver; segment boundaries there show the NIC's offload, not the wire",
            s.oversized_segments,
            s.mss.unwrap_or(0),
            s.mss_source
        )?;
    }
    let listed_all = s.lists_cut.is_none();
    let mut t = new_table(&[
        "frame",
        "offset",
        "len",
        "messages",
        "map (| = message boundary)",
        "note",
    ]);
    let n = shown(limit, s.segments.len());
    for g in s.segments.iter().take(n) {
        let mut tokens: Vec<String> = g
            .messages
            .iter()
            .zip(&g.parts)
            .map(|(&i, p)| part_token(i, p.name()))
            .collect();
        if g.messages_total > g.messages.len() as u64 {
            tokens.push(format!("(+{})", g.messages_total - g.messages.len() as u64));
        }
        // Keep the column narrow: the first three and the last two of a long run.
        let msgs = if tokens.len() > 6 {
            format!(
                "{} … {} ({} msgs)",
                tokens[..3].join(" "),
                tokens[tokens.len() - 2..].join(" "),
                g.messages_total.max(g.messages.len() as u64)
            )
        } else {
            tokens.join(" ")
        };
        let mut notes = Vec::new();
        if g.coalescing {
            notes.push(format!(
                "coalescing {}",
                g.messages_total.max(g.messages.len() as u64)
            ));
        }
        if g.oversized {
            notes.push("> MSS (offload)".into());
        }
        if g.out_of_order {
            notes.push("waited (out of order)".into());
        }
        if let Some(nb) = g.new_bytes {
            notes.push(format!("{nb} new, rest re-sent"));
        }
        if let Some(c) = g.captured {
            notes.push(format!("{c} captured"));
        }
        let split = g
            .parts
            .iter()
            .any(|p| *p != super::streams::MessagePart::Whole);
        let mut mcell = Cell::new(msgs);
        let mut ncell = Cell::new(notes.join(", "));
        if color {
            if g.coalescing {
                ncell = ncell.fg(Color::Yellow);
                mcell = mcell.fg(Color::Yellow);
            } else if split {
                mcell = mcell.fg(Color::Cyan);
            }
        }
        t.add_row(vec![
            num(g.frame),
            num(g.offset),
            num(g.len),
            mcell,
            Cell::new(bar(g.offset, g.len, &s.messages, listed_all)),
            ncell,
        ]);
    }
    write_table(w, "", &t, n, s.segments.len())?;
    let st = &s.stats;
    writeln!(
        w,
        "  {} message(s) in {} segment(s): {} split (bytes in 2+ segments), {} coalesced (share a segment), {} coalescing segment(s); at most {} message(s) in one segment, {} segment(s) for one message{}",
        st.messages,
        st.segments,
        st.split_messages,
        st.coalesced_messages,
        st.coalescing_segments,
        st.max_messages_per_segment,
        st.max_segments_per_message,
        if st.incomplete_messages > 0 {
            format!("; {} incomplete", st.incomplete_messages)
        } else {
            String::new()
        }
    )?;
    let split: Vec<&MessageEntry> = s.messages.iter().filter(|m| m.split).collect();
    if !split.is_empty() {
        // A sample on one line; all of them with --limit 0 or --conn.
        let k = if limit == 0 {
            split.len()
        } else {
            split.len().min(10)
        };
        let list: Vec<String> = split
            .iter()
            .take(k)
            .map(|m| {
                let n = m.segments_total.max(m.segments.len() as u64);
                format!("m{} ({} bytes in {} segments)", m.index, m.len, n)
            })
            .collect();
        let more = split.len() - list.len();
        writeln!(
            w,
            "  split: {}{}",
            list.join(", "),
            if more > 0 {
                format!(", … {more} more")
            } else {
                String::new()
            }
        )?;
    }
    let with_summary: Vec<&MessageEntry> = s
        .messages
        .iter()
        .filter(|m| m.info.as_ref().is_some_and(|i| i.summary.is_some()))
        .collect();
    for m in with_summary.iter().take(shown(limit, with_summary.len())) {
        if let Some(info) = &m.info {
            writeln!(
                w,
                "  m{}: {}{} ({} bytes)",
                m.index,
                info.summary.as_deref().unwrap_or(""),
                info.body
                    .as_deref()
                    .map(|b| format!(", body {b}"))
                    .unwrap_or_default(),
                m.len
            )?;
        }
    }
    for m in &s.messages {
        if let Some(info) = &m.info {
            if let Some(h) = &info.header {
                let fields: Vec<String> = h.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let md5 = match info.md5_ok {
                    Some(true) => "MD5 matches",
                    Some(false) => "MD5 MISMATCH",
                    None if info.md5_unverifiable => "MD5 not checkable (bytes lost)",
                    None => "no MD5",
                };
                writeln!(w, "  m{} header: {} — {md5}", m.index, fields.join(", "))?;
            }
        }
    }
    let r = &s.reassembly;
    writeln!(
        w,
        "  reassembly: {} retransmission(s) ({} bytes re-sent, {} differing from the first copy), {} out of order, {} gap(s) ({} bytes lost){}",
        r.retransmissions,
        r.retransmitted_bytes,
        r.conflicting_bytes,
        r.out_of_order,
        s.gaps_total.count,
        s.gaps_total.bytes,
        if let Some(c) = s.lists_cut {
            format!(
                "; lists cut at {} entries ({} segments, {} messages in all; counts are exact)",
                c.cap, c.segments_total, c.messages_total
            )
        } else {
            String::new()
        }
    )?;
    for g in s.gaps.iter().take(shown(limit, s.gaps.len())) {
        writeln!(
            w,
            "  gap at offset {}: {} bytes ({}){}",
            g.offset,
            g.len,
            g.reason,
            g.after_frame
                .map(|f| format!(" after frame {f}"))
                .unwrap_or_default()
        )?;
    }
    writeln!(w)
}

fn write_udp(w: &mut dyn Write, u: &UdpFlowEntry, limit: usize) -> io::Result<()> {
    let (from, to) = if u.dir == "orig" {
        (&u.orig, &u.resp)
    } else {
        (&u.resp, &u.orig)
    };
    let mut t = new_table(&["frame", "len", "fragments"]);
    let n = shown(limit, u.datagrams.len());
    for d in u.datagrams.iter().take(n) {
        let frags: Vec<String> = d.fragments.iter().map(|f| f.to_string()).collect();
        t.add_row(vec![num(d.frame), num(d.len), Cell::new(frags.join(","))]);
    }
    let title = format!(
        "UDP flow {} {} {from} → {to}: {} datagram(s) = {} message(s), {} bytes, {} reassembled from IPv4 fragments",
        u.flow, u.dir, u.datagrams_total, u.datagrams_total, u.bytes, u.fragmented
    );
    write_table(w, &title, &t, n, u.datagrams_total as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(index: u64, offset: u64, len: u64) -> MessageEntry {
        MessageEntry {
            index,
            offset,
            len,
            complete: true,
            ..MessageEntry::default()
        }
    }

    #[test]
    fn bars_mark_boundaries() {
        let msgs = [m(0, 0, 10), m(1, 10, 10), m(2, 20, 12)];
        // One segment holding all three: two boundaries.
        let b = bar(0, 32, &msgs, true);
        assert_eq!(b.len(), 34);
        assert_eq!(b.matches('|').count(), 2, "{b}");
        // A segment inside one message: no boundary.
        let b = bar(21, 8, &msgs, true);
        assert_eq!(b.matches('|').count(), 0, "{b}");
        assert!(b.chars().skip(1).take(8).all(|c| c == '='), "{b}");
        // Unframed bytes.
        assert_eq!(bar(40, 3, &msgs, true), "[...]");
    }
}
