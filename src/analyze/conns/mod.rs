//! TCP and UDP connection tracking: the `connections` section (handshakes, teardowns,
//! Zeek-compatible `conn_state` and `history`, anomalies) and the connection ids every
//! later analyzer keys its state by.
//!
//! Contract with the other analyzers (the tracker runs first): for every TCP and UDP
//! packet it sets `ctx.conn = Some(ConnRef { id, dir, opened })`, ids counting from 1 in
//! creation order (= `first_frame` order), and it pushes an id to `ctx.finalized` when
//! that connection is finalized: after its linger time past a complete close, on idle
//! timeout, on eviction by the table cap, and when a new SYN reuses its 4-tuple. At the
//! end of input `finish` finalizes the rest (there is no packet, hence no `ctx`, then:
//! later analyzers close out their own state in their own `finish`). `dir` is the
//! packet's role as known once the packet was processed; Zeek's rules can flip the roles
//! of a connection that began with a SYN-ACK, but only before any payload is assigned.
//!
//! A new entry starts on a 4-tuple when none is tracked, when a SYN arrives after the
//! earlier connection closed, or a SYN carries a different ISN (Zeek's `IsReuse`); a
//! retransmitted SYN does not, and neither does the responder's SYN of a simultaneous
//! open. Timing uses capture time only: the latest timestamp seen is "now".
//!
//! Memory is bounded by `max_connections` live entries (the entry with the earliest
//! deadline is evicted beyond it, and counted); finished entries are serialised at once
//! into a keyed spill file and copied out sorted by id at the end (16 bytes of index per
//! connection stay in memory), and only the first `--limit` rows the terminal views need
//! are kept.
//!
//! Submodules: [`table`] (flow table, deadlines), [`zeek`] (Zeek's state machine, history
//! and conn_state), [`handshake`], [`teardown`], [`anomalies`], [`ports`] (Zeek's likely
//! server ports).

pub mod anomalies;
pub mod events;
pub mod handshake;
pub mod ports;
pub mod table;
pub mod teardown;
pub mod zeek;

use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;

use super::{Analyzer, ConnRef, Ctx, Dir};
use crate::config::ConnOptions;
use crate::dissect::{Net, Packet, TcpFlags, TcpOptions, Transport};
use crate::report::conns::{
    AnomaliesEntry, ConnEntry, ConnStats, ConnView, HandshakeEntry, MismatchEntry, RttEntry,
    StepEntry, TcpStateEntry, TeardownEntry,
};
use crate::report::json::Spill;
use crate::report::ndjson::Event;
use crate::report::{Report, TcpOptionsEntry, Warning};

use handshake::{Handshake, StepRec};
use table::{FlowKey, Table};
use teardown::{StepKind, Teardown};
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
    End,
}

impl Finalized {
    pub fn name(self) -> &'static str {
        match self {
            Finalized::Closed => "closed",
            Finalized::Idle => "idle",
            Finalized::Evicted => "evicted",
            Finalized::Reused => "reused",
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

/// Where finished entries go: the spill, the aggregates, the rows the views keep.
struct Sink {
    spill: Option<Spill>,
    spill_error: Option<io::Error>,
    stats: ConnStats,
    view: ConnView,
    rows: BTreeMap<u64, ConnEntry>,
    tcp_rows: BTreeMap<u64, ConnEntry>,
    limit: usize,
    keep_views: bool,
    host: Option<IpAddr>,
    port: Option<u16>,
}

fn count(map: &mut BTreeMap<String, u64>, k: &str) {
    *map.entry(k.to_string()).or_insert(0) += 1;
}

fn add_stats(s: &mut ConnStats, e: &ConnEntry, capped: bool) {
    s.connections += 1;
    if e.proto == "tcp" {
        s.tcp += 1;
    } else {
        s.udp += 1;
    }
    if let Some(h) = &e.handshake {
        count(&mut s.handshake_outcomes, &h.outcome);
    }
    if let Some(t) = &e.teardown {
        count(&mut s.teardown_kinds, &t.kind);
    }
    count(&mut s.conn_states, &e.conn_state);
    count(&mut s.finalized_by, &e.finalized_by);
    if capped {
        s.capped += 1;
    }
}

fn keep_first(map: &mut BTreeMap<u64, ConnEntry>, limit: usize, e: &ConnEntry) {
    if limit != 0 && map.len() >= limit {
        match map.last_key_value() {
            Some((&k, _)) if k > e.id => {
                map.remove(&k);
            }
            _ => return,
        }
    }
    map.insert(e.id, e.clone());
}

impl Sink {
    fn matches(&self, c: &Conn) -> bool {
        self.host
            .is_none_or(|h| c.addr[0].0 == h || c.addr[1].0 == h)
            && self
                .port
                .is_none_or(|p| c.addr[0].1 == p || c.addr[1].1 == p)
    }

    fn put(&mut self, c: &Conn, e: ConnEntry, capped: bool) {
        add_stats(&mut self.stats, &e, capped);
        if let Some(sp) = self.spill.as_mut() {
            if let Err(err) = sp.push_keyed(e.id, &e) {
                if self.spill_error.is_none() {
                    self.spill_error = Some(err);
                }
                self.spill = None;
            }
        }
        if !self.keep_views {
            return;
        }
        if self.view.focus_id == Some(e.id) {
            self.view.focus = Some(e.clone());
        }
        if !self.matches(c) {
            return;
        }
        add_stats(&mut self.view.stats, &e, capped);
        self.view.rows_total += 1;
        keep_first(&mut self.rows, self.limit, &e);
        if e.proto == "tcp" {
            self.view.tcp_total += 1;
            keep_first(&mut self.tcp_rows, self.limit, &e);
        }
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
            max: opts.max_connections.max(1),
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
            table: Table::default(),
            next_id: 1,
            now: i64::MIN,
            emit: false,
            events: Vec::new(),
            end_queue: None,
            sink: Sink {
                spill: if spill { Some(Spill::new()?) } else { None },
                spill_error: None,
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
        let (e, capped) = build_entry(&c, why);
        if self.emit {
            self.events.push(Event::Connection(Box::new(e.clone())));
        }
        self.sink.put(&c, e, capped);
    }

    /// Finalizes every connection whose deadline is at or before `now`.
    fn expire(&mut self, now: i64, out: &mut Vec<u64>) {
        while let Some(idx) = self.table.earliest(now) {
            let why = match self.table.conn_mut(idx) {
                Some(c) if c.closed_at.is_some() => Finalized::Closed,
                _ => Finalized::Idle,
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
            proto,
            closed_at: None,
            deadline: i64::MAX,
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
    }

    fn end_events(&mut self, ctx: &mut Ctx) -> bool {
        /// Connections finalized per batch: bounds the events held at once.
        const BATCH: usize = 256;
        self.emit = ctx.want_events;
        if self.end_queue.is_none() {
            let mut rest: Vec<(u64, u32)> = self
                .table
                .indices()
                .into_iter()
                .filter_map(|i| self.table.conn_mut(i).map(|c| (c.id, i)))
                .collect();
            rest.sort_unstable_by(|a, b| b.cmp(a));
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
}

impl ConnTracker {
    fn track(&mut self, pkt: &Packet<'_>, ctx: &mut Ctx) {
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
        let dir = if slot == c.orig_slot() {
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
        let mut rest: Vec<(u64, u32)> = self
            .table
            .indices()
            .into_iter()
            .filter_map(|i| self.table.conn_mut(i).map(|c| (c.id, i)))
            .collect();
        rest.sort_unstable();
        for (_, idx) in rest {
            self.finalize(idx, Finalized::End, None);
        }
        let sink = &mut self.sink;
        report.connection_stats = Some(sink.stats.clone());
        if let Some(err) = sink.spill_error.take() {
            report.warnings.push(Warning {
                kind: "spill-failed".into(),
                message: format!("could not write connection entries to a temporary file: {err}; the JSON report lacks them"),
                path: None,
                offset: None,
                frame: None,
            });
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

// ---------------------------------------------------------------------- entries

fn endpoint(a: (IpAddr, u16)) -> String {
    match a.0 {
        IpAddr::V4(ip) => format!("{ip}:{}", a.1),
        IpAddr::V6(ip) => format!("[{ip}]:{}", a.1),
    }
}

fn dir_name(slot: usize, orig: usize) -> &'static str {
    if slot == orig {
        "orig"
    } else {
        "resp"
    }
}

fn ms(ns: i64) -> f64 {
    ns as f64 / 1e6
}

fn options(o: &TcpOptions) -> TcpOptionsEntry {
    TcpOptionsEntry {
        mss: o.mss,
        window_scale: o.window_scale,
        sack_permitted: o.sack_permitted,
        sack_blocks: o.sack_blocks,
        tsval: o.timestamps.map(|x| x.0),
        tsecr: o.timestamps.map(|x| x.1),
    }
}

/// Per slot: the number that relative sequence numbers count from (the ISN, or one
/// before the first sequence number of a side whose SYN was not seen).
fn bases(t: &TcpConn) -> [Option<u32>; 2] {
    let mut b = [None; 2];
    for (s, slot) in b.iter_mut().enumerate() {
        let side = &t.hs.side[s];
        *slot = side
            .syn
            .map(|x| x.seq)
            .or(side.synack.map(|x| x.seq))
            .or(t.first_seq[s].map(|x| x.wrapping_sub(1)));
    }
    b
}

fn step(r: &StepRec, what: &str, orig: usize, first_ts: i64, base: &[Option<u32>; 2]) -> StepEntry {
    let s = usize::from(r.slot);
    let rel =
        |v: u32, b: Option<u32>| b.map_or(i64::from(v), |b| i64::from(v.wrapping_sub(b) as i32));
    StepEntry {
        frame: r.frame,
        dir: dir_name(s, orig).into(),
        t_ms: ms(r.ts - first_ts),
        flags: r.flags.names(),
        seq: r.seq,
        ack: r.ack,
        rel_seq: rel(r.seq, base[s]),
        rel_ack: if r.flags.ack() {
            rel(r.ack, base[s ^ 1])
        } else {
            0
        },
        len: r.len,
        what: what.into(),
        expected_ack: None,
        ack_ok: None,
    }
}

fn handshake_entry(c: &Conn, t: &TcpConn, orig: usize) -> HandshakeEntry {
    let (o, r) = (&t.hs.side[orig], &t.hs.side[orig ^ 1]);
    let outcome = t.hs.outcome(orig);
    let base = bases(t);
    let orig_isn = o.syn.map(|x| x.seq).or(o.synack.map(|x| x.seq));
    let resp_isn = r.synack.map(|x| x.seq).or(r.syn.map(|x| x.seq));
    let rst_frame = match outcome {
        "refused" => r.rst.map(|x| x.frame),
        "no-answer" | "synack-no-ack" => match (o.rst, r.rst) {
            (Some(a), Some(b)) => Some(a.frame.min(b.frame)),
            (a, b) => a.or(b).map(|x| x.frame),
        },
        _ => None,
    };
    let mut seen_syn = [false; 2];
    let mut seen_synack = [false; 2];
    let mut mismatches = Vec::new();
    let mut steps = Vec::with_capacity(t.hs.steps.len());
    for rec in &t.hs.steps {
        let s = usize::from(rec.slot);
        let f = rec.flags;
        let (what, expected) = if f.syn() && !f.ack() {
            let w = if seen_syn[s] {
                "syn-retransmission"
            } else {
                "syn"
            };
            seen_syn[s] = true;
            (w, None)
        } else if f.syn() {
            let w = if seen_synack[s] {
                "synack-retransmission"
            } else {
                "synack"
            };
            seen_synack[s] = true;
            // A SYN-ACK acknowledges the peer's SYN.
            let peer = &t.hs.side[s ^ 1];
            (w, peer.syn.map(|x| x.seq.wrapping_add(1)))
        } else if f.rst() {
            let peer = &t.hs.side[s ^ 1];
            let exp = if f.ack() && outcome == "refused" && s != orig {
                peer.syn.map(|x| x.seq.wrapping_add(1))
            } else {
                None
            };
            ("rst", exp)
        } else {
            // The ACK of the peer's SYN-ACK.
            let peer = &t.hs.side[s ^ 1];
            ("ack", peer.synack.map(|x| x.seq.wrapping_add(1)))
        };
        let mut e = step(rec, what, orig, c.first_ts, &base);
        if let Some(exp) = expected {
            e.expected_ack = Some(exp);
            e.ack_ok = Some(rec.ack == exp);
            if rec.ack != exp && mismatches.len() < 8 {
                mismatches.push(MismatchEntry {
                    frame: rec.frame,
                    field: format!("{what}.ack"),
                    expected: exp,
                    got: rec.ack,
                });
            }
        }
        steps.push(e);
    }
    let synack = r.synack;
    let ack = if synack.is_some() {
        o.ack_after_synack
    } else {
        None
    };
    let rtt = RttEntry {
        syn_to_synack: match (synack, r.synack_answers_ts) {
            (Some(sa), Some(syn_ts)) if sa.ts >= syn_ts => Some(ms(sa.ts - syn_ts)),
            _ => None,
        },
        synack_to_ack: match (synack, ack) {
            (Some(sa), Some(a)) if a.ts >= sa.ts => Some(ms(a.ts - sa.ts)),
            _ => None,
        },
    };
    HandshakeEntry {
        outcome: outcome.into(),
        syn_frames: o.syn_frames.clone(),
        synack_frame: synack.map(|x| x.frame),
        ack_frame: ack.map(|x| x.frame),
        rst_frame,
        orig_isn,
        resp_isn,
        syn_retransmissions: u64::from(o.syn_count.saturating_sub(1)),
        rtt_ms: rtt,
        synack_retransmissions: u64::from(r.synack_count.saturating_sub(1)),
        acks_verified: mismatches.is_empty(),
        mismatches,
        orig_options: o.options.as_ref().map(options),
        resp_options: r.options.as_ref().map(options),
        syn_data_bytes: o.syn_payload + r.syn_payload,
        steps,
        steps_dropped: t.hs.steps_dropped,
    }
}

fn teardown_entry(c: &Conn, t: &TcpConn, orig: usize, outcome: &str) -> TeardownEntry {
    let failed = matches!(outcome, "refused" | "no-answer" | "synack-no-ack");
    let (kind, init) = t.td.kind(failed);
    let initiator = init.map(|s| {
        if s == 2 {
            "both".to_string()
        } else {
            dir_name(usize::from(s), orig).to_string()
        }
    });
    let base = bases(t);
    let mut steps = Vec::with_capacity(t.td.steps.len());
    // Rule 1: a failed handshake has no teardown; its RST is the handshake's rst_frame.
    let listed: &[(StepKind, StepRec)] = if kind == "none" { &[] } else { &t.td.steps };
    for (k, rec) in listed {
        let mut e = step(rec, k.name(), orig, c.first_ts, &base);
        if *k == StepKind::AckOfFin {
            let peer = &t.td.side[usize::from(rec.slot) ^ 1];
            e.expected_ack = Some(peer.fin_next);
            e.ack_ok = Some(rec.ack == peer.fin_next);
        }
        steps.push(e);
    }
    let mut notes = Vec::new();
    let sides = &t.td.side;
    if sides.iter().any(|s| s.data_after_fin > 0) {
        notes.push("data-after-fin".to_string());
    }
    if sides.iter().any(|s| s.fin_then_rst) {
        notes.push("fin-then-rst".to_string());
    }
    if sides.iter().any(|s| s.rst_after_peer_fin) {
        notes.push("rst-after-fin".to_string());
    }
    if sides.iter().any(|s| s.fin_retransmissions > 0) {
        notes.push("fin-retransmission".to_string());
    }
    TeardownEntry {
        kind: kind.into(),
        initiator,
        frames: steps.iter().map(|s| s.frame).collect(),
        steps,
        steps_dropped: t.td.steps_dropped,
        fin_to_last_ack_ms: t.td.fin_to_last_ack_ns().map(ms),
        half_close_bytes: t.td.half_close_bytes,
        notes,
    }
}

/// Builds the report entry of a connection; the flag says a cap cut its analysis.
fn build_entry(c: &Conn, why: Finalized) -> (ConnEntry, bool) {
    let orig = c.orig_slot();
    let resp = orig ^ 1;
    let (proto, conn_state, history, ob, rb, missed) = match &c.proto {
        Proto::Tcp(t) => (
            "tcp",
            t.zeek.conn_state(),
            t.zeek.history().to_string(),
            t.zeek.size(true),
            t.zeek.size(false),
            t.zeek.missed_bytes,
        ),
        Proto::Udp(u) => (
            "udp",
            u.conn_state(),
            u.history().to_string(),
            u.size(true),
            u.size(false),
            0,
        ),
    };
    let orig_by = match &c.proto {
        Proto::Tcp(t) => {
            if t.hs.side[orig].syn.is_some() {
                "syn"
            } else if t.zeek.flips > u32::from(c.start_flip) || t.hs.side[resp].synack.is_some() {
                "synack"
            } else if c.start_flip {
                "server-port"
            } else {
                "first-packet"
            }
        }
        Proto::Udp(_) => {
            if c.start_flip {
                "server-port"
            } else {
                "first-packet"
            }
        }
    };
    let mut capped = false;
    let (handshake, teardown, anomalies, tcp_state) = match &c.proto {
        Proto::Tcp(t) => {
            let h = handshake_entry(c, t, orig);
            let td = teardown_entry(c, t, orig, &h.outcome);
            let tot = t.an.total();
            let an = AnomaliesEntry {
                retransmissions: tot.retransmissions,
                out_of_order: tot.out_of_order,
                dup_acks: tot.dup_acks,
                zero_window: tot.zero_window,
                keep_alives: tot.keep_alives,
                lost_segments: tot.lost_segments,
                missed_bytes: t.an.missed_bytes(),
                retransmitted_bytes: tot.retransmitted_bytes,
            };
            capped = t.zeek.capped || t.zeek.history_dropped > 0 || t.an.capped;
            let st = TcpStateEntry {
                orig: t.zeek.state(true).name().into(),
                resp: t.zeek.state(false).name().into(),
            };
            (Some(h), Some(td), Some(an), Some(st))
        }
        Proto::Udp(_) => (None, None, None, None),
    };
    let e = ConnEntry {
        id: c.id,
        proto: proto.into(),
        orig: endpoint(c.addr[orig]),
        resp: endpoint(c.addr[resp]),
        first_frame: c.first_frame,
        last_frame: c.last_frame,
        start: crate::report::ts_secs(c.first_ts),
        start_ns: c.first_ts,
        duration_s: (c.last_ts - c.first_ts) as f64 / NS,
        conn_state: conn_state.into(),
        history,
        orig_pkts: c.pkts[orig],
        resp_pkts: c.pkts[resp],
        orig_bytes: ob,
        resp_bytes: rb,
        missed_bytes: missed,
        orig_ip_bytes: c.ip_bytes[orig],
        resp_ip_bytes: c.ip_bytes[resp],
        orig_payload_bytes: c.payload[orig],
        resp_payload_bytes: c.payload[resp],
        orig_by: orig_by.into(),
        orig_guessed: orig_by != "syn",
        finalized_by: why.name().into(),
        vlan: c.vlan,
        handshake,
        teardown,
        anomalies,
        tcp_state,
    };
    (e, capped)
}
