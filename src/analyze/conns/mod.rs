//! TCP and UDP connection tracking: the `connections` section (handshakes, teardowns,
//! Zeek-compatible `conn_state` and `history`, anomalies) and the connection ids every
//! later analyzer keys its state by.
//!
//! Contract with the other analyzers (the tracker runs first): for every TCP and UDP
//! packet it sets `ctx.conn = Some(ConnRef { id, dir, opened })`, ids counting from 1 in
//! creation order (= `first_frame` order), and it pushes an id to `ctx.finalized` when
//! that connection is finalized: after its linger time past a complete close, on idle
//! timeout, on eviction by the table cap, when a new SYN reuses its 4-tuple, and when a
//! file begins well before the latest time seen (`rewind`). At the end of input `finish`
//! finalizes the rest (there is no packet, hence no `ctx`, then: later analyzers close
//! out their own state in their own `finish`). `dir` is relative to roles fixed when the
//! connection opens, so it never changes for a connection: Zeek's roles at that point,
//! except that a connection opening with a SYN-ACK takes the SYN-ACK's receiver as orig
//! at once. Zeek flips such a connection as soon as an ACK, data or the missing SYN
//! follows, so the entry's `orig` agrees with `dir` for every connection that carries
//! payload; only a SYN-ACK answered by nothing of that kind (a scan answered by RST, say)
//! keeps Zeek's `orig` = the SYN-ACK's sender in the entry.
//!
//! A new entry starts on a 4-tuple when none is tracked, when a SYN arrives after the
//! earlier connection closed, or a SYN carries a different ISN (Zeek's `IsReuse`); a
//! retransmitted SYN does not, and neither does the responder's SYN of a simultaneous
//! open. Timing uses capture time only: the latest timestamp seen is "now" (restarted by
//! such a file, see `rewind`).
//!
//! Memory is bounded by `max_connections` live entries (the entry with the earliest
//! deadline is evicted beyond it, and counted); finished entries are serialised at once
//! into a keyed spill file and copied out sorted by id at the end (nothing per
//! connection stays in memory), and only the first `--limit` rows the terminal views need
//! are kept. When the stream analysis has a thread of its own, the spill is lent to it
//! (`Analyzer::lend_spill`): finished connections ([`Finished`]) go there through
//! `ctx.conn_entries`, a bounded batch at a time, and the entries that only the spill
//! wants are built there too; the spill comes back after the join (`return_spill`).
//!
//! UDP flows that only wait out their idle timeout are kept packed (`cold`, about 40
//! bytes instead of a 256-byte allocation) and unpacked when they are touched again.
//!
//! Submodules: [`table`] (flow table, deadlines), `cold` (packed UDP flows), `entry` (the
//! report entry), `tally` (the aggregates, counted without entries), `rewind` (capture
//! time going back when a file begins), `sink` (where finished connections go: the
//! aggregates, the spill or the stream thread, the views' rows), [`zeek`] (Zeek's state machine, history and
//! conn_state), [`handshake`], [`teardown`], [`anomalies`], [`ports`] (Zeek's likely
//! server ports).

pub mod anomalies;
mod cold;
mod entry;
pub mod events;
pub mod handshake;
pub mod ports;
mod rewind;
mod sink;
pub mod table;
mod tally;
pub mod teardown;
pub mod zeek;

use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;

use super::{seq, Analyzer, ConnRef, Ctx, Dir};
use crate::config::ConnOptions;
use crate::dissect::{Net, Packet, TcpFlags, TcpOptions, Transport};
use crate::report::conns::{ConnStats, ConnView};
use crate::report::json::Spill;
use crate::report::ndjson::Event;
use crate::report::{Report, Warning};

use entry::build_entry;
use handshake::Handshake;
pub use sink::Finished;
use sink::{spill_failed, Done, Sink};
use table::{FlowKey, Table};
use tally::Tally;
use teardown::Teardown;
use zeek::{Seg, ZeekTcp, ZeekUdp};

const NS: f64 = 1e9;

/// One TCP segment as the sub-analyses see it: `slot` 0 = sender of the connection's
/// first packet, 1 = the other endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Pkt {
    pub frame: u64,
    pub ts: i64,
    pub slot: usize,
    pub flags: TcpFlags,
    pub seq: u32,
    pub ack: u32,
    pub len: u32,
    pub window: u16,
    pub options: TcpOptions,
}

/// Why an entry was finalized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finalized {
    Closed,
    Idle,
    Evicted,
    Reused,
    /// Capture time went back at a file boundary (see `rewind`).
    Rewound,
    End,
}

impl Finalized {
    pub fn name(self) -> &'static str {
        match self {
            Finalized::Closed => "closed",
            Finalized::Idle => "idle",
            Finalized::Evicted => "evicted",
            Finalized::Reused => "reused",
            Finalized::Rewound => "rewound",
            Finalized::End => "end",
        }
    }
}

/// TCP state of one connection.
#[derive(Debug, Clone)]
pub struct TcpConn {
    pub zeek: ZeekTcp,
    pub hs: Handshake,
    pub td: Teardown,
    pub an: anomalies::Anomalies,
    /// First sequence number seen per slot (for relative numbers of midstream sides).
    pub first_seq: [Option<u32>; 2],
    /// The handshake event was emitted (see [`events`]).
    pub hs_emitted: bool,
}

#[derive(Debug, Clone)]
pub enum Proto {
    Tcp(Box<TcpConn>),
    Udp(ZeekUdp),
}

/// One tracked connection.
#[derive(Debug, Clone)]
pub struct Conn {
    pub id: u64,
    pub key: FlowKey,
    /// Address and port of slot 0 (first packet's sender) and slot 1.
    pub addr: [(IpAddr, u16); 2],
    /// Whether slot 0 is the key's low endpoint.
    pub slot0_lo: bool,
    pub first_frame: u64,
    pub last_frame: u64,
    pub first_ts: i64,
    pub last_ts: i64,
    pub pkts: [u64; 2],
    pub ip_bytes: [u64; 2],
    pub payload: [u64; 2],
    pub vlan: Option<u16>,
    /// Zeek's port rule made the first packet's receiver the originator.
    pub start_flip: bool,
    /// The slot `ctx.conn.dir` calls orig, fixed when the connection opens (see the
    /// module docs): Zeek's orig then, except that a connection opening with a SYN-ACK
    /// takes its receiver as orig at once, as Zeek will as soon as anything follows.
    pub ctx_orig: usize,
    pub proto: Proto,
    /// Capture time of a complete close (finalized `linger` later).
    pub closed_at: Option<i64>,
    pub deadline: i64,
    pub heap_key: i64,
}

impl Conn {
    fn orig_slot(&self) -> usize {
        match &self.proto {
            Proto::Tcp(t) => t.zeek.orig_slot(),
            Proto::Udp(u) => u.orig_slot(),
        }
    }
}

/// Settings in nanoseconds.
#[derive(Debug, Clone, Copy)]
struct Limits {
    max: usize,
    tcp_idle: i64,
    udp_idle: i64,
    linger: i64,
}

fn secs_to_ns(s: f64) -> i64 {
    if !s.is_finite() || s <= 0.0 {
        0
    } else if s >= 9.0e9 {
        i64::MAX / 4
    } else {
        (s * NS) as i64
    }
}

/// The connection tracker (an [`Analyzer`]; must run first).
pub struct ConnTracker {
    limits: Limits,
    table: Table,
    next_id: u64,
    now: i64,
    sink: Sink,
    /// Build events (set from `Ctx::want_events` on every packet and end batch).
    emit: bool,
    /// Events of the current packet, handed to `ctx.events` when it is done.
    events: Vec<Event>,
    /// End of input with events wanted: (id, index) of the connections still open, in
    /// descending id order (batches pop from the back).
    end_queue: Option<Vec<(u64, u32)>>,
    /// File index of the latest packet, and each time capture time went back when a
    /// file began (see `rewind`).
    file_index: u16,
    rewinds: Vec<rewind::Rewind>,
    /// The input files' names, by index (empty when not reading files).
    file_names: Vec<String>,
}

impl ConnTracker {
    /// A tracker with `opts`; `limit` = rows the views keep (0 = all); `spill` = write
    /// entries for the JSON report; `keep_views` = keep rows for terminal tables.
    pub fn new(
        opts: &ConnOptions,
        limit: usize,
        spill: bool,
        keep_views: bool,
    ) -> io::Result<Self> {
        let limits = Limits {
            // The table's own limit (about 67 million) is far beyond what memory holds.
            max: opts.max_connections.clamp(1, table::MAX_TRACKED),
            tcp_idle: secs_to_ns(opts.tcp_idle_timeout_s),
            udp_idle: secs_to_ns(opts.udp_idle_timeout_s),
            linger: secs_to_ns(opts.linger_s),
        };
        let mut filter = Vec::new();
        if let Some(h) = opts.host {
            filter.push(format!("host {h}"));
        }
        if let Some(p) = opts.port {
            filter.push(format!("port {p}"));
        }
        let stats = ConnStats {
            max_connections: limits.max as u64,
            tcp_idle_timeout_s: opts.tcp_idle_timeout_s,
            udp_idle_timeout_s: opts.udp_idle_timeout_s,
            linger_s: opts.linger_s,
            ..ConnStats::default()
        };
        Ok(ConnTracker {
            limits,
            table: Table::with_cooling(secs_to_ns(opts.cold_after_s), limits.udp_idle),
            next_id: 1,
            now: i64::MIN,
            emit: false,
            events: Vec::new(),
            end_queue: None,
            file_index: 0,
            rewinds: Vec::new(),
            file_names: Vec::new(),
            sink: Sink {
                spill: if spill { Some(Spill::new()?) } else { None },
                spill_error: None,
                lent: false,
                outbox: Vec::new(),
                spill_warning_at: None,
                tally: Tally::default(),
                view_tally: Tally::default(),
                view: ConnView {
                    focus_id: opts.conn,
                    filter: filter.join(" and "),
                    stats: stats.clone(),
                    ..ConnView::default()
                },
                stats,
                rows: BTreeMap::new(),
                tcp_rows: BTreeMap::new(),
                limit,
                keep_views,
                host: opts.host,
                port: opts.port,
            },
        })
    }

    fn finalize(&mut self, idx: u32, why: Finalized, out: Option<&mut Vec<u64>>) {
        let Some(mut c) = self.table.remove(idx) else {
            return;
        };
        if self.emit {
            events::maybe_handshake(&mut c, true, &mut self.events);
        }
        if let Some(out) = out {
            out.push(c.id);
        }
        if why == Finalized::Evicted {
            self.sink.stats.evicted += 1;
            self.sink.view.stats.evicted += 1;
        }
        // The aggregates need four names; a full entry is built only for what keeps it
        // (see `tally`).
        let keys = tally::keys(&c, why);
        let wants = self.sink.count(&c, &keys);
        if !wants.spill && !wants.here && !self.emit {
            return;
        }
        if self.sink.lent && !wants.here && !self.emit {
            self.sink
                .outbox
                .push(Finished(Done::Conn(Box::new(c), why)));
            return;
        }
        let e = build_entry(&c, why);
        // Events are built only inline, and the spill is lent only without them.
        if let Some(e) = self.sink.put(&c, e).filter(|_| self.emit) {
            self.events.push(Event::Connection(Box::new(e)));
        }
    }

    /// (id, table index) of every open connection, in id order.
    fn open_by_id(&self) -> Vec<(u64, u32)> {
        let mut open: Vec<(u64, u32)> = self
            .table
            .indices()
            .into_iter()
            .filter_map(|i| self.table.id_of(i).map(|id| (id, i)))
            .collect();
        open.sort_unstable();
        open
    }

    /// Finalizes every open connection, in id order; returns how many.
    fn finalize_all(&mut self, why: Finalized, mut out: Option<&mut Vec<u64>>) -> u64 {
        let open = self.open_by_id();
        for &(_, idx) in &open {
            self.finalize(idx, why, out.as_deref_mut());
        }
        open.len() as u64
    }

    /// Finalizes every connection whose deadline is at or before `now`.
    fn expire(&mut self, now: i64, out: &mut Vec<u64>) {
        while let Some(idx) = self.table.earliest(now) {
            let why = if self.table.is_closed(idx) {
                Finalized::Closed
            } else {
                Finalized::Idle
            };
            self.finalize(idx, why, Some(out));
        }
    }

    fn new_conn(
        &mut self,
        pkt: &Packet<'_>,
        key: FlowKey,
        src_lo: bool,
        src: (IpAddr, u16),
        dst: (IpAddr, u16),
        out: &mut Vec<u64>,
    ) -> u32 {
        if self.table.len() >= self.limits.max {
            if let Some(victim) = self.table.earliest(i64::MAX) {
                self.finalize(victim, Finalized::Evicted, Some(out));
            }
        }
        let broadcast = matches!(dst.0, IpAddr::V4(a) if a.is_broadcast());
        let (proto, start_flip) = match &pkt.transport {
            Transport::Tcp(t) => {
                let flip = !broadcast
                    && zeek::tcp_flip_first(t.flags, t.src_port, t.dst_port, ports::likely_tcp);
                (
                    Proto::Tcp(Box::new(TcpConn {
                        zeek: ZeekTcp::new(pkt.ts_ns, flip),
                        hs: Handshake::default(),
                        td: Teardown::default(),
                        an: anomalies::Anomalies::default(),
                        first_seq: [None; 2],
                        hs_emitted: false,
                    })),
                    flip,
                )
            }
            _ => {
                let flip = !broadcast && ports::likely_udp(src.1) && !ports::likely_udp(dst.1);
                (Proto::Udp(ZeekUdp::new(flip)), flip)
            }
        };
        let is_tcp = matches!(proto, Proto::Tcp(_));
        let synack_first = pkt.tcp().is_some_and(|t| t.flags.syn() && t.flags.ack());
        let id = self.next_id;
        self.next_id += 1;
        let c = Conn {
            id,
            key,
            addr: [src, dst],
            slot0_lo: src_lo,
            first_frame: pkt.frame,
            last_frame: pkt.frame,
            first_ts: pkt.ts_ns,
            last_ts: pkt.ts_ns,
            pkts: [0; 2],
            ip_bytes: [0; 2],
            payload: [0; 2],
            vlan: pkt.vlans.outer(),
            start_flip,
            ctx_orig: usize::from(start_flip || synack_first),
            proto,
            closed_at: None,
            // Set before insertion so the heap entry pushed with it is a real deadline.
            deadline: pkt.ts_ns.saturating_add(if is_tcp {
                self.limits.tcp_idle
            } else {
                self.limits.udp_idle
            }),
            heap_key: i64::MAX,
        };
        let idx = self.table.insert(key, Box::new(c));
        let n = self.table.len() as u64;
        if n > self.sink.stats.peak_tracked {
            self.sink.stats.peak_tracked = n;
            self.sink.view.stats.peak_tracked = n;
        }
        idx
    }
}

fn ip_len(pkt: &Packet<'_>) -> u64 {
    match pkt.net {
        Net::Ipv4(h) => u64::from(h.total_len),
        Net::Ipv6(h) => u64::from(h.payload_len) + 40,
        _ => 0,
    }
}

impl Analyzer for ConnTracker {
    fn on_packet(&mut self, pkt: &Packet<'_>, ctx: &mut Ctx) {
        self.emit = ctx.want_events;
        self.track(pkt, ctx);
        if !self.events.is_empty() {
            ctx.events.append(&mut self.events);
        }
        if !self.sink.outbox.is_empty() {
            ctx.conn_entries.append(&mut self.sink.outbox);
        }
    }

    fn end_events(&mut self, ctx: &mut Ctx) -> bool {
        /// Connections finalized per batch: bounds the events held at once.
        const BATCH: usize = 256;
        self.emit = ctx.want_events;
        if self.end_queue.is_none() {
            let mut rest = self.open_by_id();
            rest.reverse();
            self.end_queue = Some(rest);
        }
        for _ in 0..BATCH {
            let Some((_, idx)) = self.end_queue.as_mut().and_then(Vec::pop) else {
                break;
            };
            self.finalize(idx, Finalized::End, None);
        }
        ctx.events.append(&mut self.events);
        self.end_queue.as_ref().is_some_and(|q| !q.is_empty())
    }

    fn finish(&mut self, report: &mut Report) {
        self.finish_section(report);
    }

    fn take_spills(&mut self) -> Vec<(&'static str, Spill)> {
        self.sink
            .spill
            .take()
            .map(|s| ("connections", s))
            .into_iter()
            .collect()
    }

    fn lend_spill(&mut self) -> Option<Spill> {
        let spill = self.sink.spill.take()?;
        self.sink.lent = true;
        Some(spill)
    }

    fn return_spill(&mut self, spill: io::Result<Spill>, report: &mut Report) {
        let sink = &mut self.sink;
        sink.lent = false;
        match spill {
            Ok(s) => {
                sink.spill = Some(s);
                // What the end of input finalized, after the entries the thread wrote
                // (the spill sorts by id, so the order of pushes does not show).
                for f in std::mem::take(&mut sink.outbox) {
                    sink.spill_one(&f.into_entry());
                }
            }
            Err(e) => {
                sink.outbox.clear();
                sink.spill_error.get_or_insert(e);
            }
        }
        if let Some(err) = sink.spill_error.take() {
            let at = sink
                .spill_warning_at
                .take()
                .map_or(report.warnings.len(), |i| i.min(report.warnings.len()));
            report.warnings.insert(at, spill_failed(&err));
        }
    }
}

impl ConnTracker {
    fn track(&mut self, pkt: &Packet<'_>, ctx: &mut Ctx) {
        if pkt.file_index != self.file_index {
            self.file_index = pkt.file_index;
            self.check_rewind(pkt, &mut ctx.finalized);
        }
        let Some((sip, dip)) = pkt.ips() else {
            return;
        };
        let (proto, sport, dport) = match &pkt.transport {
            Transport::Tcp(t) => (6u8, t.src_port, t.dst_port),
            Transport::Udp(u) => (17u8, u.src_port, u.dst_port),
            _ => return,
        };
        if pkt.ts_ns > self.now {
            self.now = pkt.ts_ns;
        }
        let now = self.now;
        self.table.cool(now);
        self.expire(now, &mut ctx.finalized);

        let (key, src_lo) = FlowKey::new(proto, sip, sport, dip, dport);
        let tcp = pkt.tcp().copied();
        let seg = tcp.map(|t| Seg {
            flags: t.flags,
            seq: t.seq,
            ack: t.ack,
            len: t.payload_len,
            caplen: t.payload.len() as u32,
            window: t.window,
        });

        let mut opened = false;
        let idx = match self.table.get(&key) {
            Some(idx) => {
                let reuse = match (self.table.conn_mut(idx), &seg) {
                    (Some(c), Some(seg)) => {
                        let slot = usize::from(src_lo != c.slot0_lo);
                        match &c.proto {
                            Proto::Tcp(t) => t.zeek.is_reuse(slot, seg),
                            Proto::Udp(_) => false,
                        }
                    }
                    _ => false,
                };
                if reuse {
                    self.finalize(idx, Finalized::Reused, Some(&mut ctx.finalized));
                    opened = true;
                    self.new_conn(
                        pkt,
                        key,
                        src_lo,
                        (sip, sport),
                        (dip, dport),
                        &mut ctx.finalized,
                    )
                } else {
                    idx
                }
            }
            None => {
                opened = true;
                self.new_conn(
                    pkt,
                    key,
                    src_lo,
                    (sip, sport),
                    (dip, dport),
                    &mut ctx.finalized,
                )
            }
        };

        let limits = self.limits;
        let Some(c) = self.table.conn_mut(idx) else {
            return;
        };
        let slot = usize::from(src_lo != c.slot0_lo);
        c.last_frame = pkt.frame;
        if pkt.ts_ns > c.last_ts {
            c.last_ts = pkt.ts_ns;
        }
        c.pkts[slot] += 1;
        c.ip_bytes[slot] += ip_len(pkt);
        match (&mut c.proto, tcp, seg) {
            (Proto::Tcp(t), Some(tcp), Some(seg)) => {
                c.payload[slot] += u64::from(tcp.payload_len);
                t.zeek.process(slot, &seg, pkt.ts_ns);
                if t.first_seq[slot].is_none() {
                    t.first_seq[slot] = Some(tcp.seq);
                }
                let p = Pkt {
                    frame: pkt.frame,
                    ts: pkt.ts_ns,
                    slot,
                    flags: tcp.flags,
                    seq: tcp.seq,
                    ack: tcp.ack,
                    len: tcp.payload_len,
                    window: tcp.window,
                    options: tcp.options,
                };
                t.hs.on_segment(&p);
                t.td.on_segment(&p);
                t.an.on_segment(&p);
                if c.closed_at.is_none() {
                    if let Some(at) = t.zeek.closed_at {
                        c.closed_at = Some(at);
                    }
                }
            }
            (Proto::Udp(u), _, _) => {
                if let Some(udp) = pkt.udp() {
                    c.payload[slot] += u64::from(udp.payload_len);
                    u.process(slot, udp.length);
                }
            }
            _ => {}
        }
        let dir = if slot == c.ctx_orig {
            Dir::Orig
        } else {
            Dir::Resp
        };
        let id = c.id;
        let deadline = match c.closed_at {
            Some(at) => at.saturating_add(limits.linger),
            None => c.last_ts.saturating_add(match c.proto {
                Proto::Tcp(_) => limits.tcp_idle,
                Proto::Udp(_) => limits.udp_idle,
            }),
        };
        c.deadline = deadline;
        self.table.deadline_changed(idx);
        ctx.conn = Some(ConnRef { id, dir, opened });
        if self.emit {
            if let Some(c) = self.table.conn_mut(idx) {
                events::maybe_handshake(c, false, &mut self.events);
            }
        }
    }

    fn finish_section(&mut self, report: &mut Report) {
        // Events were drained by `end_events` if anyone wanted them; none are built now.
        self.emit = false;
        // The rest, in id order (no ctx here: see the module docs).
        self.finalize_all(Finalized::End, None);
        self.rewind_warnings(report);
        let sink = &mut self.sink;
        std::mem::take(&mut sink.tally).fold_into(&mut sink.stats);
        std::mem::take(&mut sink.view_tally).fold_into(&mut sink.view.stats);
        report.connection_stats = Some(sink.stats.clone());
        if sink.lent {
            sink.spill_warning_at = Some(report.warnings.len());
        } else if let Some(err) = sink.spill_error.take() {
            report.warnings.push(spill_failed(&err));
        }
        if sink.keep_views {
            let mut view = std::mem::take(&mut sink.view);
            view.rows = std::mem::take(&mut sink.rows).into_values().collect();
            view.tcp_rows = std::mem::take(&mut sink.tcp_rows).into_values().collect();
            report.conn_view = Some(view);
        }
        if sink.stats.evicted > 0 {
            report.warnings.push(Warning {
                kind: "conn-table-full".into(),
                message: format!(
                    "{} connection(s) were closed out early because more than {} were tracked at once (--max-conns)",
                    sink.stats.evicted, sink.stats.max_connections
                ),
                path: None,
                offset: None,
                frame: None,
            });
        }
    }
}

/// A UDP flow from 10.0.0.1:`port` to 10.0.0.1:53, id `port`, for tests.
#[cfg(test)]
pub(crate) fn test_udp_conn(port: u16, deadline: i64) -> (FlowKey, Box<Conn>) {
    let ip = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    let (key, slot0_lo) = FlowKey::new(17, ip, port, ip, 53);
    let c = Conn {
        id: u64::from(port),
        key,
        addr: [(ip, port), (ip, 53)],
        slot0_lo,
        first_frame: 1,
        last_frame: 1,
        first_ts: 0,
        last_ts: 0,
        pkts: [0; 2],
        ip_bytes: [0; 2],
        payload: [0; 2],
        vlan: None,
        start_flip: false,
        ctx_orig: 0,
        proto: Proto::Udp(ZeekUdp::new(false)),
        closed_at: None,
        deadline,
        heap_key: i64::MAX,
    };
    (key, Box::new(c))
}

#[cfg(test)]
mod lend_tests;
#[cfg(test)]
mod size_tests;
