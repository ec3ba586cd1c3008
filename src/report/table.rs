//! Terminal tables (comfy-table) rendered from a finished [`Report`].
//!
//! Each table shows at most `limit` rows (0 = all) and then says how many it left out; the
//! JSON report is never cut. Renderers write to any `io::Write`.

use std::io::{self, Write};

use comfy_table::{presets, Cell, CellAlignment, ContentArrangement, Table};

use super::Report;

/// A table in netlens's house style.
pub fn new_table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().map(Cell::new));
    t
}

/// Right-aligned numeric cell.
pub fn num(n: impl ToString) -> Cell {
    Cell::new(n.to_string()).set_alignment(CellAlignment::Right)
}

/// Writes `title`, the table, and a "N more rows" line when `shown < total`.
pub fn write_table(
    w: &mut dyn Write,
    title: &str,
    table: &Table,
    shown: usize,
    total: usize,
) -> io::Result<()> {
    writeln!(w, "{title}")?;
    writeln!(w, "{table}")?;
    if shown < total {
        writeln!(
            w,
            "… {} more row(s) not shown (--limit {shown}; --limit 0 shows all, --json has all)",
            total - shown
        )?;
    }
    writeln!(w)
}

/// Rows to show out of `total` for a table limit (0 = all).
pub fn shown(limit: usize, total: usize) -> usize {
    if limit == 0 {
        total
    } else {
        total.min(limit)
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {} ({n} B)", UNITS[u])
    }
}

/// UTC date-time of a timestamp in nanoseconds, without a time-zone library: civil-from-days
/// (Howard Hinnant's algorithm), so the output does not depend on the machine's zone.
pub fn utc(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let frac = ns.rem_euclid(1_000_000_000) / 1000;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{frac:06} UTC",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// The default summary: capture facts, protocol mix, dissect issues and warnings.
pub fn write_summary(w: &mut dyn Write, r: &Report, limit: usize) -> io::Result<()> {
    let s = &r.stats;
    let mut t = new_table(&["capture", ""]);
    match &r.source.interface {
        Some(i) => t.add_row(vec![Cell::new("interface"), Cell::new(i)]),
        None => t.add_row(vec![
            Cell::new("files"),
            Cell::new(r.source.path.join(", ")),
        ]),
    };
    t.add_row(vec![Cell::new("format"), Cell::new(&r.source.format)]);
    t.add_row(vec![
        Cell::new("link types"),
        Cell::new(r.source.link_types.join(", ")),
    ]);
    t.add_row(vec![
        Cell::new("interfaces"),
        num(r.source.interfaces.len()),
    ]);
    t.add_row(vec![Cell::new("packets"), num(s.packets)]);
    t.add_row(vec![
        Cell::new("bytes on the wire"),
        Cell::new(human_bytes(s.bytes)),
    ]);
    if s.snaplen_cut > 0 {
        t.add_row(vec![
            Cell::new("frames cut by snap length"),
            num(s.snaplen_cut),
        ]);
    }
    if let (Some(a), Some(b)) = (s.first_ts_ns, s.last_ts_ns) {
        t.add_row(vec![Cell::new("first packet"), Cell::new(utc(a))]);
        t.add_row(vec![Cell::new("last packet"), Cell::new(utc(b))]);
        t.add_row(vec![
            Cell::new("duration"),
            Cell::new(format!("{:.6} s", s.duration_s)),
        ]);
    }
    writeln!(w, "netlens {} summary", r.netlens)?;
    write_table(w, "", &t, 0, 0)?;

    let mut t = new_table(&["protocol", "frames", "share"]);
    let total = s.packets.max(1) as f64;
    for (k, &n) in &s.by_protocol {
        t.add_row(vec![
            Cell::new(k),
            num(n),
            num(format!("{:.1}%", n as f64 * 100.0 / total)),
        ]);
    }
    write_table(w, "Protocols (frames carrying each layer)", &t, 0, 0)?;

    if s.ipv4_defrag.fragments > 0 {
        let d = &s.ipv4_defrag;
        let mut t = new_table(&[
            "fragments",
            "reassembled",
            "timed out",
            "dropped (limits)",
            "conflicting overlaps",
            "pending",
        ]);
        t.add_row(vec![
            num(d.fragments),
            num(d.reassembled),
            num(d.timed_out),
            num(d.dropped_over_limit),
            num(d.conflicting_overlaps),
            num(d.pending),
        ]);
        write_table(w, "IPv4 fragment reassembly", &t, 0, 0)?;
    }

    if s.checksums.verified
        && (s.checksums.ipv4_bad + s.checksums.tcp_bad + s.checksums.udp_bad) > 0
    {
        let mut t = new_table(&["layer", "bad checksums"]);
        t.add_row(vec![Cell::new("ipv4 header"), num(s.checksums.ipv4_bad)]);
        t.add_row(vec![Cell::new("tcp"), num(s.checksums.tcp_bad)]);
        t.add_row(vec![Cell::new("udp"), num(s.checksums.udp_bad)]);
        write_table(
            w,
            "Checksums (offloaded checksums on the sending host look bad; no analysis skips them)",
            &t,
            0,
            0,
        )?;
    }

    if !s.dissect_issues.is_empty() {
        let mut rows: Vec<(&String, &u64)> = s.dissect_issues.iter().collect();
        rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let n = shown(limit, rows.len());
        let mut t = new_table(&["dissect issue", "frames"]);
        for (k, v) in rows.iter().take(n) {
            t.add_row(vec![Cell::new(k), num(v)]);
        }
        write_table(
            w,
            "Dissect issues (frames kept; see --packets for each)",
            &t,
            n,
            rows.len(),
        )?;
    }

    if !r.warnings.is_empty() {
        let n = shown(limit, r.warnings.len());
        let mut t = new_table(&["warning", "message"]);
        for x in r.warnings.iter().take(n) {
            t.add_row(vec![Cell::new(&x.kind), Cell::new(&x.message)]);
        }
        write_table(w, "Warnings", &t, n, r.warnings.len())?;
    }
    Ok(())
}

/// `netlens interfaces`.
pub fn write_interfaces(
    w: &mut dyn Write,
    list: &[crate::capture::live::InterfaceListing],
) -> io::Result<()> {
    let mut t = new_table(&[
        "#",
        "interface",
        "MAC",
        "addresses",
        "state",
        "link type",
        "capture",
    ]);
    for i in list {
        let state = match (i.up, i.running) {
            (true, true) => "up",
            (true, false) => "up, no carrier",
            _ => "down",
        };
        t.add_row(vec![
            num(i.index),
            Cell::new(&i.name),
            Cell::new(i.mac.as_deref().unwrap_or("-")),
            Cell::new(i.addresses.join("\n")),
            Cell::new(state),
            Cell::new(&i.link_type),
            Cell::new(if i.capture_permitted {
                "permitted"
            } else {
                "needs root or CAP_NET_RAW"
            }),
        ]);
    }
    writeln!(w, "{t}")
}
