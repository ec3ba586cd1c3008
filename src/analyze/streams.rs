//! TCP stream reassembly (both directions of every connection) and UDP datagram flows:
//! the `streams` and `udp_flows` sections.
//!
//! Keyed by the connection tracker's `(id, dir)` from [`Ctx::conn`], so a reused 4-tuple is
//! a new connection here too. Per direction:
//! - stream offset 0 is the byte after the SYN (ISN + 1), or the first sequence number seen
//!   on a midstream pickup; raw numbers are unwrapped into 64-bit offsets ([`SeqUnwrapper`]),
//!   so wrap-around past 2^32 is invisible to everything downstream;
//! - bytes are delivered once, in order, each with the frame that first carried it; a
//!   re-sent byte is counted and compared with the first copy (kept in a bounded history
//!   window, or in the out-of-order buffer), never delivered twice: the first copy wins;
//! - a segment above a hole waits in the out-of-order buffer; when the per-connection or
//!   total buffer cap would be exceeded, the lowest hole is given up and recorded as a gap
//!   (`buffer-cap`) and reassembly resumes after it; holes still open at the end are `lost`;
//! - a SYN and a FIN each take one sequence number; data they carry is data;
//! - delivered bytes go to the [`MessageMapper`] (framing, segments versus messages) and to
//!   an optional [`StreamSink`] (`--extract`). No stream is ever held whole in memory.
//!
//! Finished entries (connection finalized by the tracker, or end of input) are written to
//! an [`EntryStore`] at once; only live state stays in memory. When an output consumes
//! events (`Ctx::want_events`), each finished entry is also a `stream` / `udp_flow` event.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use rustc_hash::FxHashMap;

use super::framing::{FramingConfig, FramingKind, DEFAULT_MAX_MESSAGE};
use super::messages::{MessageMapper, MessageSink, SegmentFacts};
use super::seq::SeqUnwrapper;
use super::{Analyzer, Ctx, Dir};
use crate::dissect::{Packet, Tcp, Udp};
use crate::report::ndjson::Event;
use crate::report::streams::{
    ConflictEntry, DatagramEntry, EntryStore, FinEntry, GapEntry, GapTotals, ListsCut,
    ReassemblyStats, StreamEntry, UdpFlowEntry,
};
use crate::report::{Report, Warning};

/// Bookkeeping charged per buffered out-of-order piece (map node, piece, segment state).
pub const PIECE_COST: usize = 64;

/// Settings of the streams analysis (`--framing`, caps, `--extract`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamOptions {
    pub framing: FramingConfig,
    /// Largest message length a framer accepts (`--max-message`).
    pub max_message: u64,
    /// Out-of-order bytes buffered per connection, both directions (`--stream-buffer`).
    pub conn_buffer: usize,
    /// Out-of-order bytes plus history windows over all connections (`--stream-memory`).
    pub total_buffer: usize,
    /// Delivered bytes kept per direction to compare re-sent copies with.
    pub history: usize,
    /// Entries kept per list (segments, messages, gaps, conflicts, datagrams) per stream.
    pub max_list: usize,
    /// When not 0, only the first N stream directions (and N UDP flow directions) by
    /// connection id keep their lists in the stored entries; the others keep their totals.
    /// Set by the pipeline when the terminal view is the only reader of the entries: it
    /// shows the first `--limit` directions in detail and counts the rest, so serialising
    /// the others' lists was a fifth of a `--streams` run for nothing.
    pub lists_for_first: usize,
    /// `--extract DIR`: write each direction's bytes (and messages) under DIR.
    pub extract: Option<PathBuf>,
    pub extract_messages: bool,
    /// Overwrite existing files in the extract directory.
    pub force: bool,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            framing: FramingConfig::default(),
            max_message: DEFAULT_MAX_MESSAGE,
            conn_buffer: 4 << 20,
            total_buffer: 256 << 20,
            history: 16 << 10,
            max_list: 10_000,
            lists_for_first: 0,
            extract: None,
            extract_messages: false,
            force: false,
        }
    }
}

/// Names one direction of one connection for a [`StreamSink`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamKey {
    pub conn: u64,
    pub dir: Dir,
    /// The sender of these bytes.
    pub src: SocketAddr,
    pub dst: SocketAddr,
}

/// Where delivered bytes go besides the analysis (`--extract`). Offsets are stream
/// offsets; a gap leaves a hole (the next `data` starts further on).
/// `Send`: the analysis, sink included, may run on its own thread (see
/// [`streams_thread`](super::streams_thread)).
pub trait StreamSink: Send {
    fn data(&mut self, key: &StreamKey, offset: u64, data: &[u8]);
    fn message_data(&mut self, key: &StreamKey, index: u64, data: &[u8]);
    fn message_end(&mut self, key: &StreamKey, index: u64);
    /// The direction is finished.
    fn end(&mut self, key: &StreamKey);
    /// Whether message bytes are wanted (they cost a copy of pending header bytes).
    fn wants_messages(&self) -> bool;
    /// Completes all output; the first I/O error, if any.
    fn close(&mut self) -> io::Result<()>;
}

/// Adapts a [`StreamSink`] to the mapper's per-direction [`MessageSink`].
struct KeyedSink<'a> {
    sink: &'a mut (dyn StreamSink + 'static),
    key: StreamKey,
}

impl MessageSink for KeyedSink<'_> {
    fn message_data(&mut self, index: u64, data: &[u8]) {
        self.sink.message_data(&self.key, index, data);
    }
    fn message_end(&mut self, index: u64) {
        self.sink.message_end(&self.key, index);
    }
}

/// What the analysis hands to the pipeline when it is done.
pub struct StreamsOutput {
    pub streams: EntryStore,
    pub udp_flows: EntryStore,
    pub warnings: Vec<Warning>,
    /// The first error writing the entries or the extracted files.
    pub error: Option<io::Error>,
}

/// A ring of the last delivered bytes of a direction, indexed by stream offset.
struct History {
    buf: Vec<u8>,
    /// Offset after the last byte stored.
    end: u64,
    /// Valid bytes: offsets [end - len, end).
    len: usize,
}

impl History {
    fn push(&mut self, offset: u64, data: &[u8]) {
        let cap = self.buf.len();
        if cap == 0 {
            return;
        }
        let contiguous = offset == self.end;
        // Only the last `cap` bytes can be kept.
        let skip = data.len().saturating_sub(cap);
        let start = offset + skip as u64;
        let data = &data[skip..];
        let mut at = (start % cap as u64) as usize;
        let mut rest = data;
        while !rest.is_empty() {
            let n = rest.len().min(cap - at);
            self.buf[at..at + n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            at = 0;
        }
        self.end = start + data.len() as u64;
        self.len = if contiguous {
            (self.len + data.len()).min(cap)
        } else {
            data.len()
        };
    }

    /// Makes room for `incoming` more bytes, growing geometrically up to `max` (so a short
    /// exchange never costs the whole window) within the shared budget. False when the
    /// budget refused to grow.
    fn reserve(&mut self, incoming: usize, max: usize, mem: &mut usize, total: usize) -> bool {
        let cap = self.buf.len();
        let need = (self.len + incoming).min(max);
        if need <= cap {
            return true;
        }
        let new_cap = need.next_power_of_two().clamp(256, max.max(1));
        let extra = new_cap - cap;
        if *mem + extra > total {
            return false;
        }
        *mem += extra;
        let mut nb = vec![0; new_cap];
        // Move the valid bytes (offsets end-len..end) to their slots in the bigger ring with
        // at most four slice copies: the old ring holds them in up to two runs, and each
        // run lands in the new ring with at most one wrap.
        let len = self.len.min(cap);
        if len > 0 {
            let start = self.end - len as u64;
            let s = (start % cap as u64) as usize;
            let first = (cap - s).min(len);
            let mut dst = (start % new_cap as u64) as usize;
            for run in [&self.buf[s..s + first], &self.buf[..len - first]] {
                let n = run.len().min(new_cap - dst);
                nb[dst..dst + n].copy_from_slice(&run[..n]);
                nb[..run.len() - n].copy_from_slice(&run[n..]);
                dst = (dst + run.len()) % new_cap;
            }
        }
        self.buf = nb;
        true
    }

    /// Compares `data` (bytes at `offset`) with the kept copy: (checked, differing, first
    /// differing offset).
    fn compare(&self, offset: u64, data: &[u8]) -> (u64, u64, Option<u64>) {
        let cap = self.buf.len() as u64;
        if cap == 0 || self.len == 0 {
            return (0, 0, None);
        }
        let lo = offset.max(self.end - self.len as u64);
        let hi = (offset + data.len() as u64).min(self.end);
        let (mut diff, mut first) = (0, None);
        let mut at = lo;
        while at < hi {
            let a = data[(at - offset) as usize];
            let b = self.buf[(at % cap) as usize];
            if a != b {
                diff += 1;
                first.get_or_insert(at);
            }
            at += 1;
        }
        (hi.saturating_sub(lo), diff, first)
    }
}

/// A buffered out-of-order piece: captured bytes, then `missing` bytes the capture cut.
struct Piece {
    seg: u64,
    frame: u64,
    data: Vec<u8>,
    missing: u64,
}

impl Piece {
    fn len(&self) -> u64 {
        self.data.len() as u64 + self.missing
    }
}

/// Reassembly state of one direction.
struct Half {
    unwrap: Option<SeqUnwrapper>,
    isn: Option<u32>,
    syn_frame: Option<u64>,
    fin: Option<FinEntry>,
    rst_frame: Option<u64>,
    first_frame: u64,
    last_frame: u64,
    /// Delivery point: every offset below it is delivered or a recorded gap.
    next: u64,
    /// End of the highest byte seen.
    highest: u64,
    /// The next offset the peer acknowledged.
    acked: Option<u64>,
    ooo: BTreeMap<u64, Piece>,
    ooo_bytes: usize,
    /// `ooo_bytes` plus [`PIECE_COST`] per piece: what the caps count.
    ooo_cost: usize,
    hist: History,
    /// No (more) growth of the history window: the budget refused it, or the direction
    /// ended.
    hist_denied: bool,
    last_delivered_frame: Option<u64>,
    bytes: u64,
    gaps: Vec<GapEntry>,
    gaps_total: GapTotals,
    oversized: u64,
    re: ReassemblyStats,
    conflicts: Vec<ConflictEntry>,
    /// Entries each of its lists keeps: `max_list`, or 0 (see `StreamAnalyzer::list_cap`).
    list_cap: usize,
    mapper: MessageMapper,
    /// Any payload seen (the direction gets an entry).
    payload: bool,
}

/// One TCP connection.
struct Conn {
    orig: SocketAddr,
    resp: SocketAddr,
    v6: bool,
    /// MSS announced in each direction's SYN.
    mss: [Option<u16>; 2],
    /// Out-of-order bytes buffered, both directions.
    buffered: usize,
    halves: [Half; 2],
}

/// One direction of a UDP flow.
#[derive(Default)]
struct UdpDir {
    datagrams: Vec<DatagramEntry>,
    total: u64,
    bytes: u64,
    fragmented: u64,
    max_len: u64,
}

struct UdpFlow {
    orig: SocketAddr,
    resp: SocketAddr,
    /// Per direction: datagrams its list keeps (see `StreamAnalyzer::list_cap`).
    list_cap: [usize; 2],
    dirs: [UdpDir; 2],
}

/// Counters over the whole run, for warnings.
#[derive(Default)]
struct Totals {
    gaps_from_cap: u64,
    conflicts: u64,
    history_denied: u64,
}

/// The `--streams` analysis.
pub struct StreamAnalyzer {
    opts: StreamOptions,
    /// Boxed: a `Conn` is about 2 KiB, and the map's buckets (and its doubling on growth)
    /// would multiply that for every slot, occupied or not.
    conns: FxHashMap<u64, Box<Conn>>,
    /// Boxed too: a flow is about 200 bytes, and a capture can hold tens of thousands
    /// under the 60 s UDP timeout (the map's empty buckets cost as much as full ones).
    udp: FxHashMap<u64, Box<UdpFlow>>,
    /// Bytes held in out-of-order buffers and history windows, all connections.
    mem: usize,
    store: Option<EntryStore>,
    udp_store: Option<EntryStore>,
    sink: Option<Box<dyn StreamSink>>,
    error: Option<io::Error>,
    totals: Totals,
    output: Option<StreamsOutput>,
    /// Build events (from `Ctx::want_events`), collected here until the packet is done.
    emit: bool,
    events: Vec<Event>,
    /// End of input with events wanted: ids still open, descending (batches pop the back).
    end_queue: Option<Vec<u64>>,
    /// The smallest keys stored with their lists so far, TCP and UDP (`lists_for_first`).
    listed: [FirstKeys; 2],
    /// Directions, TCP and UDP, sure to get an entry so far (TCP: payload seen; UDP: the
    /// direction of a flow's first datagram). Ids grow with creation, so a connection
    /// created after `lists_for_first` of them can never be among the first.
    sure: [usize; 2],
}

/// The `n` smallest keys seen so far (a max-heap of at most `n`).
#[derive(Default)]
struct FirstKeys(std::collections::BinaryHeap<u64>);

impl FirstKeys {
    /// Whether `key` is among the `n` smallest keys offered so far. A key that is among
    /// the `n` smallest at the end was among them when offered (keys only get company).
    fn offer(&mut self, key: u64, n: usize) -> bool {
        if self.0.len() < n {
            self.0.push(key);
            return true;
        }
        match self.0.peek() {
            Some(&max) if key < max => {
                self.0.pop();
                self.0.push(key);
                true
            }
            _ => false,
        }
    }

    /// Whether an [`offer`](Self::offer) of `key` could still succeed at some later time:
    /// the set only ever holds smaller keys, so once `key` is too big it stays too big.
    fn could_admit(&self, key: u64, n: usize) -> bool {
        self.0.len() < n || self.0.peek().is_none_or(|&max| key < max)
    }
}

fn endpoint(ip: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(ip, port)
}

impl StreamAnalyzer {
    /// A new analysis; `sink` receives delivered bytes (`--extract`).
    pub fn new(opts: StreamOptions, sink: Option<Box<dyn StreamSink>>) -> io::Result<Self> {
        Ok(StreamAnalyzer {
            opts,
            conns: FxHashMap::default(),
            udp: FxHashMap::default(),
            mem: 0,
            store: Some(EntryStore::new()?),
            udp_store: Some(EntryStore::new()?),
            sink,
            error: None,
            totals: Totals::default(),
            output: None,
            emit: false,
            events: Vec::new(),
            end_queue: None,
            listed: Default::default(),
            sure: [0; 2],
        })
    }

    /// The finished entries, after [`Analyzer::finish`].
    pub fn take_output(&mut self) -> Option<StreamsOutput> {
        self.output.take()
    }

    /// `list_cap`: entries its lists keep (0 when no reader will see them).
    fn new_half(
        &self,
        kind: &FramingKind,
        reason: &str,
        ports: (u16, u16),
        list_cap: usize,
    ) -> Half {
        let keep = self.sink.as_ref().is_some_and(|s| s.wants_messages());
        Half {
            unwrap: None,
            isn: None,
            syn_frame: None,
            fin: None,
            rst_frame: None,
            first_frame: 0,
            last_frame: 0,
            next: 0,
            highest: 0,
            acked: None,
            ooo: BTreeMap::new(),
            ooo_bytes: 0,
            ooo_cost: 0,
            hist: History {
                buf: Vec::new(),
                end: 0,
                len: 0,
            },
            hist_denied: false,
            last_delivered_frame: None,
            bytes: 0,
            gaps: Vec::new(),
            gaps_total: GapTotals::default(),
            oversized: 0,
            re: ReassemblyStats::default(),
            conflicts: Vec::new(),
            list_cap,
            mapper: MessageMapper::new(
                kind,
                reason.to_string(),
                ports,
                self.opts.max_message,
                list_cap,
                keep,
            ),
            payload: false,
        }
    }

    /// One TCP segment of connection `id` (as the tracker assigned it), sent from `src`
    /// to `dst` in frame `frame`.
    pub(crate) fn on_tcp(
        &mut self,
        id: u64,
        dir: Dir,
        frame: u64,
        (src, dst): (IpAddr, IpAddr),
        t: &Tcp<'_>,
    ) {
        if !self.conns.contains_key(&id) {
            let (orig, resp) = match dir {
                Dir::Orig => (endpoint(src, t.src_port), endpoint(dst, t.dst_port)),
                Dir::Resp => (endpoint(dst, t.dst_port), endpoint(src, t.src_port)),
            };
            let (kind, reason) = self.opts.framing.choose(orig.port(), resp.port());
            let ports = (orig.port(), resp.port());
            let cap = |dir: usize| self.list_cap(0, id * 2 + dir as u64);
            let halves = [
                self.new_half(&kind, &reason, ports, cap(0)),
                self.new_half(&kind, &reason, ports, cap(1)),
            ];
            self.conns.insert(
                id,
                Box::new(Conn {
                    orig,
                    resp,
                    v6: src.is_ipv6(),
                    mss: [None; 2],
                    buffered: 0,
                    halves,
                }),
            );
        }
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let key = StreamKey {
            conn: id,
            dir,
            src: endpoint(src, t.src_port),
            dst: endpoint(dst, t.dst_port),
        };
        let mut cx = Cx {
            opts: &self.opts,
            mem: &mut self.mem,
            sink: self.sink.as_deref_mut(),
            key,
            totals: &mut self.totals,
        };
        let had_payload = conn.halves[dir.index()].payload;
        conn.segment(dir, frame, t, &mut cx);
        if !had_payload && conn.halves[dir.index()].payload {
            self.sure[0] += 1;
        }
    }

    /// One UDP datagram of flow `id`, reassembled from the IPv4 fragments in frames
    /// `fragments` (empty when it was not fragmented).
    pub(crate) fn on_udp(
        &mut self,
        id: u64,
        dir: Dir,
        frame: u64,
        (src, dst): (IpAddr, IpAddr),
        u: &Udp<'_>,
        fragments: &[u64],
    ) {
        let list_cap = [self.list_cap(1, id * 2), self.list_cap(1, id * 2 + 1)];
        let sure = &mut self.sure[1];
        let flow = self.udp.entry(id).or_insert_with(|| {
            *sure += 1;
            let (orig, resp) = match dir {
                Dir::Orig => (endpoint(src, u.src_port), endpoint(dst, u.dst_port)),
                Dir::Resp => (endpoint(dst, u.dst_port), endpoint(src, u.src_port)),
            };
            Box::new(UdpFlow {
                orig,
                resp,
                list_cap,
                dirs: Default::default(),
            })
        });
        let d = &mut flow.dirs[dir.index()];
        let len = u64::from(u.payload_len);
        d.total += 1;
        d.bytes += len;
        d.max_len = d.max_len.max(len);
        if !fragments.is_empty() {
            d.fragmented += 1;
        }
        if d.datagrams.len() < flow.list_cap[dir.index()] {
            d.datagrams.push(DatagramEntry {
                frame,
                len,
                fragments: fragments.to_vec(),
            });
        }
    }

    /// Connection `id` ended (the tracker finalized it): its entries are complete.
    pub(crate) fn finalize(&mut self, id: u64) {
        if let Some(conn) = self.conns.remove(&id) {
            self.finish_conn(id, *conn);
        }
        if let Some(flow) = self.udp.remove(&id) {
            for dir in [Dir::Orig, Dir::Resp] {
                let d = &flow.dirs[dir.index()];
                if d.total == 0 {
                    continue;
                }
                let key = id * 2 + dir.index() as u64;
                let listed = self.keeps_lists(1, key);
                let e = UdpFlowEntry {
                    flow: id,
                    orig: flow.orig.to_string(),
                    resp: flow.resp.to_string(),
                    dir: dir.name().into(),
                    datagrams: if listed {
                        d.datagrams.clone()
                    } else {
                        Vec::new()
                    },
                    datagrams_total: d.total,
                    bytes: d.bytes,
                    fragmented: d.fragmented,
                    max_len: d.max_len,
                };
                if let Some(s) = self.udp_store.as_mut() {
                    if let Err(e) = s.push(key, &e) {
                        self.error.get_or_insert(e);
                    }
                }
                if self.emit {
                    self.events.push(Event::UdpFlow(Box::new(e)));
                }
            }
        }
    }

    /// How many entries the lists of the direction under `key` keep while it runs:
    /// `max_list`, or 0 when [`keeps_lists`](Self::keeps_lists) is already sure to say no
    /// at its end (a key above the first `lists_for_first` finished ones), so the lists
    /// of directions no reader will see are never built (they were a tenth of a
    /// terminal-only `--streams` run).
    fn list_cap(&self, which: usize, key: u64) -> usize {
        let n = self.opts.lists_for_first;
        if n == 0 || self.emit || (self.sure[which] < n && self.listed[which].could_admit(key, n)) {
            self.opts.max_list
        } else {
            0
        }
    }

    /// Whether the entry under `key` keeps its lists (`which`: 0 TCP, 1 UDP). Events
    /// carry whole entries, so with events wanted every entry does.
    fn keeps_lists(&mut self, which: usize, key: u64) -> bool {
        let n = self.opts.lists_for_first;
        n == 0 || self.emit || self.listed[which].offer(key, n)
    }

    fn finish_conn(&mut self, id: u64, mut conn: Conn) {
        for dir in [Dir::Orig, Dir::Resp] {
            let (src, dst) = match dir {
                Dir::Orig => (conn.orig, conn.resp),
                Dir::Resp => (conn.resp, conn.orig),
            };
            let key = StreamKey {
                conn: id,
                dir,
                src,
                dst,
            };
            let mut cx = Cx {
                opts: &self.opts,
                mem: &mut self.mem,
                sink: self.sink.as_deref_mut(),
                key,
                totals: &mut self.totals,
            };
            let peer_mss = conn.mss[dir.other().index()];
            let assumed = if conn.v6 { 1440 } else { 1460 };
            let h = &mut conn.halves[dir.index()];
            conn.buffered = conn.buffered.saturating_sub(h.ooo_cost);
            h.close(&mut cx);
            if let Some(s) = cx.sink.as_deref_mut() {
                if h.payload {
                    s.end(&key);
                }
            }
            if !h.payload {
                continue;
            }
            let key = id * 2 + dir.index() as u64;
            let mut entry = h.entry(
                id,
                dir,
                &conn.orig,
                &conn.resp,
                peer_mss,
                assumed,
                self.opts.max_list,
            );
            if !self.keeps_lists(0, key) {
                // No reader will see this direction's lists (see `lists_for_first`).
                entry.segments = Vec::new();
                entry.messages = Vec::new();
                entry.gaps = Vec::new();
                entry.conflicts = Vec::new();
            }
            if let Some(s) = self.store.as_mut() {
                if let Err(e) = s.push(key, &entry) {
                    self.error.get_or_insert(e);
                }
            }
            if self.emit {
                self.events.push(Event::Stream(Box::new(entry)));
            }
        }
    }
}

/// What a direction's processing borrows from the analyzer.
struct Cx<'a> {
    opts: &'a StreamOptions,
    mem: &'a mut usize,
    sink: Option<&'a mut (dyn StreamSink + 'static)>,
    key: StreamKey,
    totals: &'a mut Totals,
}

impl Conn {
    /// One TCP segment of direction `dir`.
    fn segment(&mut self, dir: Dir, frame: u64, t: &Tcp<'_>, cx: &mut Cx<'_>) {
        let di = dir.index();
        let flags = t.flags;
        // The peer's acknowledgement tells how far this side's stream got (for the end).
        if flags.ack() {
            let o = &mut self.halves[1 - di];
            if let Some(u) = o.unwrap {
                let a = u.offset(t.ack);
                if a >= 0 {
                    o.acked = Some(o.acked.map_or(a as u64, |x| x.max(a as u64)));
                }
            }
        }
        let h = &mut self.halves[di];
        if h.first_frame == 0 {
            h.first_frame = frame;
        }
        h.last_frame = frame;
        if flags.syn() {
            if h.unwrap.is_none() {
                h.isn = Some(t.seq);
                h.syn_frame = Some(frame);
                h.unwrap = Some(SeqUnwrapper::new(t.seq.wrapping_add(1)));
                self.mss[di] = t.options.mss;
            }
        } else if h.unwrap.is_none() && (t.payload_len > 0 || flags.fin()) {
            // Midstream pickup: offsets count from the first byte seen.
            h.unwrap = Some(SeqUnwrapper::new(t.seq));
        }
        let Some(unwrap) = h.unwrap else {
            return;
        };
        let data_seq = if flags.syn() {
            t.seq.wrapping_add(1)
        } else {
            t.seq
        };
        let offset = unwrap.offset(data_seq);
        if flags.rst() {
            h.rst_frame.get_or_insert(frame);
            h.re.rst_payload_bytes += u64::from(t.payload_len);
            // This side sends nothing more: its history window is no longer needed.
            h.release_history(cx.mem);
            return;
        }
        if t.payload_len > 0 {
            h.payload = true;
            let mss = self.mss[1 - di].unwrap_or(if self.v6 { 1440 } else { 1460 });
            let oversized = t.payload_len > u32::from(mss);
            h.data(
                frame,
                offset,
                t.payload_len,
                t.payload,
                oversized,
                &mut self.buffered,
                cx,
            );
        }
        if flags.fin() {
            let fin_off = offset + i64::from(t.payload_len);
            if h.fin.is_none() && fin_off >= 0 {
                h.fin = Some(FinEntry {
                    frame,
                    offset: fin_off as u64,
                });
            }
        }
        // Everything up to the FIN is delivered: only late copies can still come, and
        // they count as unchecked. Memory then follows open streams, not lingering ones.
        if h.fin.is_some_and(|f| h.next >= f.offset) && h.ooo.is_empty() {
            h.release_history(cx.mem);
        }
    }
}

impl Half {
    /// Payload of one segment: `len` bytes on the wire at `offset`, `captured` of them in
    /// the capture.
    #[allow(clippy::too_many_arguments)]
    fn data(
        &mut self,
        frame: u64,
        offset: i64,
        len: u32,
        captured: &[u8],
        oversized: bool,
        conn_buffered: &mut usize,
        cx: &mut Cx<'_>,
    ) {
        self.re.payload_segments += 1;
        let mut len = u64::from(len);
        let mut captured = &captured[..captured.len().min(len as usize)];
        let mut start = offset;
        // Bytes before offset 0 are older than the stream as we know it.
        if start < 0 {
            let before = start.unsigned_abs().min(len);
            self.re.before_start_bytes += before;
            len -= before;
            captured = &captured[(before as usize).min(captured.len())..];
            start = 0;
            if len == 0 {
                return;
            }
        }
        let start = start as u64;
        let mut end = start + len;
        if let Some(f) = self.fin {
            if end > f.offset {
                let after = end - start.max(f.offset);
                self.re.after_fin_bytes += after;
                end -= after;
                captured = &captured[..captured.len().min((end - start) as usize)];
                if end <= start {
                    return;
                }
            }
        }
        // A keep-alive: one byte (or none) just below the delivery point.
        if end - start <= 1 && start + 1 == self.next && self.ooo.is_empty() {
            self.re.keepalives += 1;
            return;
        }
        let wire_len = end - start;
        let cap_end = start + captured.len() as u64;

        // The common case, in order with nothing buffered: no classification needed.
        if start == self.next && self.ooo.is_empty() {
            if start < self.highest {
                self.re.out_of_order += 1;
            }
            self.highest = self.highest.max(end);
            if oversized {
                self.oversized += 1;
            }
            let seg = self.mapper.add_segment(SegmentFacts {
                frame,
                offset: start,
                len: wire_len,
                new_bytes: wire_len,
                new_captured: captured.len() as u64,
                captured: (cap_end < end).then_some(captured.len() as u64),
                oversized,
                buffered: false,
            });
            let missing = wire_len - captured.len() as u64;
            self.place(seg, frame, start, captured, missing, conn_buffered, cx);
            return;
        }

        // Classify every byte: already delivered (compare), in a recorded gap (late),
        // already buffered (compare), or new.
        let mut seen = 0u64;
        let mut late = 0u64;
        let mut diff = 0u64;
        let mut first_diff: Option<u64> = None;
        let mut unchecked = 0u64;
        let below = end.min(self.next);
        if start < below {
            let in_gaps = self.gap_overlap(start, below);
            late += in_gaps;
            let old = below - start - in_gaps;
            seen += old;
            let cmp_end = below.min(cap_end);
            let (checked, d, f) = if start < cmp_end {
                self.hist
                    .compare(start, &captured[..(cmp_end - start) as usize])
            } else {
                (0, 0, None)
            };
            diff += d;
            if let Some(f) = f {
                first_diff.get_or_insert(f);
            }
            unchecked += old.saturating_sub(checked);
        }
        let mut new_ranges: Vec<(u64, u64)> = Vec::new();
        let lo = start.max(self.next);
        if lo < end {
            let mut at = lo;
            // Pieces that may overlap [lo, end): the one starting at or before lo, and
            // those starting inside.
            let first_key = self.ooo.range(..=lo).next_back().map(|(&k, _)| k);
            let keys: Vec<u64> = first_key
                .into_iter()
                .chain(self.ooo.range(lo + 1..end).map(|(&k, _)| k))
                .collect();
            for k in keys {
                let Some(p) = self.ooo.get(&k) else {
                    continue;
                };
                let p_end = k + p.len();
                if p_end <= at {
                    continue;
                }
                if k > at {
                    new_ranges.push((at, k.min(end)));
                }
                let ov_lo = k.max(at);
                let ov_hi = p_end.min(end);
                if ov_lo < ov_hi {
                    seen += ov_hi - ov_lo;
                    // Compare the captured parts of both copies.
                    let c_hi = ov_hi.min(cap_end).min(k + p.data.len() as u64);
                    let mut checked = 0;
                    for x in ov_lo..c_hi.max(ov_lo) {
                        checked += 1;
                        if captured[(x - start) as usize] != p.data[(x - k) as usize] {
                            diff += 1;
                            first_diff.get_or_insert(x);
                        }
                    }
                    unchecked += (ov_hi - ov_lo) - checked;
                }
                at = at.max(p_end);
                if at >= end {
                    break;
                }
            }
            if at < end {
                new_ranges.push((at, end));
            }
        }
        let new: u64 = new_ranges.iter().map(|r| r.1 - r.0).sum();
        self.re.retransmitted_bytes += seen;
        self.re.late_bytes += late;
        self.re.unchecked_bytes += unchecked;
        if diff > 0 {
            self.re.conflicting_bytes += diff;
            cx.totals.conflicts += diff;
            if self.conflicts.len() < self.list_cap {
                self.conflicts.push(ConflictEntry {
                    frame,
                    offset: first_diff.unwrap_or(start),
                    bytes: diff,
                });
            }
        }
        if new == 0 {
            if late == 0 {
                self.re.retransmissions += 1;
            }
            return;
        }
        if seen > 0 {
            self.re.overlaps += 1;
        }
        if new_ranges[0].0 < self.highest {
            self.re.out_of_order += 1;
        }
        self.highest = self.highest.max(end);
        if oversized {
            self.oversized += 1;
        }
        let new_captured: u64 = new_ranges
            .iter()
            .map(|&(a, b)| b.min(cap_end).saturating_sub(a))
            .sum();
        let buffered = new_ranges[0].0 > self.next;
        let seg = self.mapper.add_segment(SegmentFacts {
            frame,
            offset: start,
            len: wire_len,
            new_bytes: new,
            new_captured,
            captured: (cap_end < end).then_some(captured.len() as u64),
            oversized,
            buffered,
        });
        // Deliver or buffer each new range.
        for (a, b) in new_ranges {
            let c_hi = b.min(cap_end).max(a);
            let n = captured.len();
            let lo_i = ((a - start) as usize).min(n);
            let hi_i = ((c_hi - start) as usize).min(n).max(lo_i);
            let bytes = &captured[lo_i..hi_i];
            let missing = (b - a) - bytes.len() as u64;
            self.place(seg, frame, a, bytes, missing, conn_buffered, cx);
        }
    }

    /// Delivers a new range at once when it is next in line, else buffers it (giving up
    /// holes when a cap is reached).
    #[allow(clippy::too_many_arguments)]
    fn place(
        &mut self,
        seg: u64,
        frame: u64,
        at: u64,
        bytes: &[u8],
        missing: u64,
        conn_buffered: &mut usize,
        cx: &mut Cx<'_>,
    ) {
        loop {
            if at <= self.next {
                // `at < next` cannot happen for a new range (the delivery point only moves
                // over bytes it delivered or gave up, and those are not new); deliver what
                // lies at or above it.
                let skip = (self.next - at) as usize;
                if skip == 0 {
                    self.deliver(seg, frame, bytes, missing, cx);
                } else if skip < bytes.len() {
                    self.deliver(seg, frame, &bytes[skip..], missing, cx);
                }
                self.drain(conn_buffered, cx);
                return;
            }
            let need = bytes.len();
            // Count the bookkeeping too, so a flood of 1-byte pieces is capped as well.
            let cost = need + PIECE_COST;
            let fits = *conn_buffered + cost <= cx.opts.conn_buffer
                && *cx.mem + cost <= cx.opts.total_buffer;
            if fits {
                self.ooo.insert(
                    at,
                    Piece {
                        seg,
                        frame,
                        data: bytes.to_vec(),
                        missing,
                    },
                );
                self.ooo_bytes += need;
                self.ooo_cost += cost;
                *conn_buffered += cost;
                *cx.mem += cost;
                self.re.buffered_peak = self.re.buffered_peak.max(self.ooo_bytes as u64);
                return;
            }
            // Over a cap: give up the lowest hole (up to the first buffered piece, or up
            // to this range), record it as a gap, and deliver what follows it.
            // (Buffered pieces always lie above the delivery point, and `at` does here, so
            // the gap is never empty and the loop always advances.)
            let first = self
                .ooo
                .keys()
                .next()
                .copied()
                .filter(|&k| k < at && k > self.next);
            let to = first.unwrap_or(at);
            self.re.gaps_from_cap += 1;
            cx.totals.gaps_from_cap += 1;
            self.record_gap(self.next, to - self.next, "buffer-cap", cx);
            self.drain(conn_buffered, cx);
        }
    }

    /// Delivers buffered pieces that are now next in line.
    fn drain(&mut self, conn_buffered: &mut usize, cx: &mut Cx<'_>) {
        while let Some((&k, _)) = self.ooo.iter().next() {
            if k > self.next {
                break;
            }
            let Some(p) = self.ooo.remove(&k) else {
                break;
            };
            let n = p.data.len();
            self.ooo_bytes -= n;
            self.ooo_cost = self.ooo_cost.saturating_sub(n + PIECE_COST);
            *conn_buffered = conn_buffered.saturating_sub(n + PIECE_COST);
            *cx.mem = cx.mem.saturating_sub(n + PIECE_COST);
            // Pieces never overlap and the delivery point only stops at piece edges or
            // gap ends, so k == next here; a defensive trim keeps bytes from repeating.
            let skip = self.next - k;
            if skip == 0 {
                self.deliver(p.seg, p.frame, &p.data, p.missing, cx);
            } else if (skip as usize) < p.data.len() {
                self.deliver(p.seg, p.frame, &p.data[skip as usize..], p.missing, cx);
            } else {
                let m = (k + p.len()).saturating_sub(self.next);
                if m > 0 {
                    self.record_gap(self.next, m, "not-captured", cx);
                }
            }
        }
    }

    /// Delivers captured bytes at the delivery point, then records the `missing` bytes
    /// that the snap length cut as a gap.
    fn deliver(&mut self, seg: u64, frame: u64, bytes: &[u8], missing: u64, cx: &mut Cx<'_>) {
        if !bytes.is_empty() {
            let at = self.next;
            if cx.opts.history > 0
                && !self.hist_denied
                && !self
                    .hist
                    .reserve(bytes.len(), cx.opts.history, cx.mem, cx.opts.total_buffer)
            {
                // Counted once per direction; it keeps the window it has.
                self.hist_denied = true;
                cx.totals.history_denied += 1;
            }
            if !self.hist.buf.is_empty() {
                self.hist.push(at, bytes);
            }
            let key = cx.key;
            match cx.sink.as_deref_mut() {
                Some(s) => {
                    s.data(&key, at, bytes);
                    let mut ks = KeyedSink { sink: s, key };
                    self.mapper.bytes(seg, frame, at, bytes, Some(&mut ks));
                }
                None => self.mapper.bytes(seg, frame, at, bytes, None),
            }
            self.bytes += bytes.len() as u64;
            self.next += bytes.len() as u64;
            self.last_delivered_frame = Some(frame);
        }
        if missing > 0 {
            self.record_gap(self.next, missing, "not-captured", cx);
            self.last_delivered_frame = Some(frame);
        }
        if let Some(u) = self.unwrap.as_mut() {
            u.advance(self.next);
        }
    }

    /// Bytes at `offset` will never be delivered: a gap; the delivery point moves past it.
    fn record_gap(&mut self, offset: u64, len: u64, reason: &str, cx: &mut Cx<'_>) {
        if len == 0 {
            return;
        }
        self.gaps_total.bytes += len;
        // Merge with the previous gap when they touch (consecutive cut segments): one hole.
        let merge =
            matches!(self.gaps.last(), Some(g) if g.offset + g.len == offset && g.reason == reason);
        if merge {
            if let Some(g) = self.gaps.last_mut() {
                g.len += len;
            }
        } else {
            self.gaps_total.count += 1;
            if self.gaps.len() < self.list_cap {
                self.gaps.push(GapEntry {
                    offset,
                    len,
                    reason: reason.into(),
                    after_frame: self.last_delivered_frame,
                });
            }
        }
        self.hist.len = 0;
        self.hist.end = offset + len;
        let key = cx.key;
        match cx.sink.as_deref_mut() {
            Some(s) => {
                let mut ks = KeyedSink { sink: s, key };
                self.mapper.gap(offset, len, Some(&mut ks));
            }
            None => self.mapper.gap(offset, len, None),
        }
        self.next = offset + len;
        if let Some(u) = self.unwrap.as_mut() {
            u.advance(self.next);
        }
    }

    /// Frees the history window for good (the direction has ended).
    fn release_history(&mut self, mem: &mut usize) {
        *mem = mem.saturating_sub(self.hist.buf.len());
        self.hist = History {
            buf: Vec::new(),
            end: self.next,
            len: 0,
        };
        self.hist_denied = true;
    }

    /// Bytes of [a, b) that lie in recorded gaps.
    fn gap_overlap(&self, a: u64, b: u64) -> u64 {
        let i = self.gaps.partition_point(|g| g.offset + g.len <= a);
        self.gaps[i..]
            .iter()
            .take_while(|g| g.offset < b)
            .map(|g| (g.offset + g.len).min(b) - g.offset.max(a))
            .sum()
    }

    /// The direction ends: buffered pieces are delivered across their holes (now lost),
    /// bytes the FIN or the peer's ACKs show were sent but never seen become gaps.
    fn close(&mut self, cx: &mut Cx<'_>) {
        while let Some((&k, _)) = self.ooo.iter().next() {
            if k > self.next {
                self.record_gap(self.next, k - self.next, "lost", cx);
            }
            let mut dummy = 0usize;
            self.drain(&mut dummy, cx);
        }
        *cx.mem = cx.mem.saturating_sub(self.hist.buf.len());
        self.hist.buf = Vec::new();
        if let Some(f) = self.fin {
            if f.offset > self.next {
                self.record_gap(self.next, f.offset - self.next, "lost", cx);
            }
        } else if let Some(a) = self.acked {
            // Within 2^31 of the delivery point: an acknowledgement, not noise.
            if a > self.next && a - self.next < 1 << 31 && self.payload {
                self.record_gap(self.next, a - self.next, "acked-not-seen", cx);
            }
        }
        let key = cx.key;
        match cx.sink.as_deref_mut() {
            Some(s) => {
                let mut ks = KeyedSink { sink: s, key };
                self.mapper.finish(Some(&mut ks));
            }
            None => self.mapper.finish(None),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn entry(
        &mut self,
        id: u64,
        dir: Dir,
        orig: &SocketAddr,
        resp: &SocketAddr,
        peer_mss: Option<u16>,
        assumed: u16,
        cap: usize,
    ) -> StreamEntry {
        let m = &mut self.mapper;
        let stats = m.stats;
        // Against `cap`, not the lists' lengths: a direction that built no lists (its
        // `list_cap` was 0) reports a cut exactly when a full one would have.
        let cut = stats.segments as usize > cap
            || (stats.messages + stats.incomplete_messages) as usize > cap;
        StreamEntry {
            conn: id,
            dir: dir.name().into(),
            orig: orig.to_string(),
            resp: resp.to_string(),
            bytes: self.bytes,
            stream_len: self.next,
            first_frame: self.first_frame,
            last_frame: self.last_frame,
            isn: self.isn,
            base_seq: self.unwrap.map_or(0, |u| u.base()),
            midstream: self.isn.is_none(),
            syn_frame: self.syn_frame,
            fin: self.fin,
            rst_frame: self.rst_frame,
            gaps: std::mem::take(&mut self.gaps),
            gaps_total: self.gaps_total,
            framing: m.framing.clone(),
            framing_reason: m.framing_reason.clone(),
            framing_error: m.error.clone(),
            unframed_bytes: m.unframed,
            mss: Some(peer_mss.unwrap_or(assumed)),
            mss_source: if peer_mss.is_some() { "syn" } else { "assumed" }.into(),
            oversized_segments: self.oversized,
            segments: std::mem::take(&mut m.segments),
            messages: std::mem::take(&mut m.messages),
            lists_cut: cut.then_some(ListsCut {
                cap: cap as u64,
                segments_total: stats.segments,
                messages_total: stats.messages + stats.incomplete_messages,
            }),
            stats,
            reassembly: self.re,
            conflicts: std::mem::take(&mut self.conflicts),
        }
    }
}

impl Analyzer for StreamAnalyzer {
    fn on_packet(&mut self, p: &Packet<'_>, ctx: &mut Ctx) {
        self.emit = ctx.want_events;
        if let (Some(c), Some(ips)) = (ctx.conn, p.ips()) {
            match &p.transport {
                crate::dissect::Transport::Tcp(t) => self.on_tcp(c.id, c.dir, p.frame, ips, t),
                crate::dissect::Transport::Udp(u) => {
                    self.on_udp(c.id, c.dir, p.frame, ips, u, p.reassembled_from)
                }
                _ => {}
            }
        }
        for i in 0..ctx.finalized.len() {
            let id = ctx.finalized[i];
            self.finalize(id);
        }
        if !self.events.is_empty() {
            ctx.events.append(&mut self.events);
        }
    }

    fn end_events(&mut self, ctx: &mut Ctx) -> bool {
        /// Connections finalized per batch: bounds the events held at once.
        const BATCH: usize = 256;
        self.emit = ctx.want_events;
        let queue = self.end_queue.get_or_insert_with(|| {
            let mut ids: Vec<u64> = self.conns.keys().chain(self.udp.keys()).copied().collect();
            ids.sort_unstable_by(|a, b| b.cmp(a));
            ids.dedup();
            ids
        });
        let batch: Vec<u64> = (0..BATCH).map_while(|_| queue.pop()).collect();
        let more = !queue.is_empty();
        for id in batch {
            self.finalize(id);
        }
        ctx.events.append(&mut self.events);
        more
    }

    fn finish(&mut self, _report: &mut Report) {
        // Events were drained by `end_events` if anyone wanted them; none are built now.
        self.emit = false;
        let mut ids: Vec<u64> = self.conns.keys().chain(self.udp.keys()).copied().collect();
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            self.finalize(id);
        }
        let mut warnings = Vec::new();
        if self.totals.gaps_from_cap > 0 {
            warnings.push(Warning {
                kind: "stream-buffer-cap".into(),
                message: format!(
                    "{} hole(s) in TCP streams were given up as gaps because the out-of-order buffer cap was reached (--stream-buffer {} per connection, --stream-memory {} in total)",
                    self.totals.gaps_from_cap, self.opts.conn_buffer, self.opts.total_buffer
                ),
                path: None,
                offset: None,
                frame: None,
            });
        }
        if self.totals.history_denied > 0 {
            warnings.push(Warning {
                kind: "stream-history-cap".into(),
                message: format!(
                    "{} stream direction(s) kept no history to compare retransmitted bytes with (--stream-memory {} reached); their re-sent bytes count as unchecked",
                    self.totals.history_denied, self.opts.total_buffer
                ),
                path: None,
                offset: None,
                frame: None,
            });
        }
        let mut error = self.error.take();
        if let Some(s) = self.sink.as_mut() {
            if let Err(e) = s.close() {
                error.get_or_insert(e);
            }
        }
        if let (Some(streams), Some(udp_flows)) = (self.store.take(), self.udp_store.take()) {
            self.output = Some(StreamsOutput {
                streams,
                udp_flows,
                warnings,
                error,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::History;

    #[test]
    fn history_grows_and_keeps_the_last_bytes() {
        let mut h = History {
            buf: Vec::new(),
            end: 0,
            len: 0,
        };
        let (mut mem, max, total) = (0usize, 4096usize, 1 << 20);
        let stream: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut at = 0usize;
        for n in [1usize, 10, 300, 700, 1500, 3000, 5000, 9489] {
            let chunk = &stream[at..at + n];
            assert!(h.reserve(n, max, &mut mem, total));
            h.push(at as u64, chunk);
            at += n;
            // Every kept byte equals the stream's byte at that offset.
            let keep = at.min(max);
            let (checked, diff, _) = h.compare((at - keep) as u64, &stream[at - keep..at]);
            assert_eq!((checked, diff), (keep as u64, 0), "after {at} bytes");
        }
        assert_eq!(at, 20_000);
        assert_eq!(h.buf.len(), max);
        assert_eq!(mem, max);
        // A different byte is found, at its offset.
        let mut wrong = stream[19_000..19_010].to_vec();
        wrong[3] ^= 0xff;
        assert_eq!(h.compare(19_000, &wrong), (10, 1, Some(19_003)));
        // Bytes older than the window are not checked.
        assert_eq!(h.compare(100, &stream[100..110]).0, 0);
        // The budget refuses growth: the window stays as it is.
        let mut g = History {
            buf: Vec::new(),
            end: 0,
            len: 0,
        };
        let mut mem = 0;
        assert!(!g.reserve(1000, 4096, &mut mem, 100));
        assert!(g.buf.is_empty());
    }
}
