//! TCP stream reassembly (both directions of every connection) and UDP datagram flows:
//! the `streams` and `udp_flows` sections.
//!
//! Keyed by the connection tracker's `(id, dir)` from [`Ctx::conn`], so a reused 4-tuple is
//! a new connection here too. Per direction:
//! - stream offset 0 is the byte after the SYN (ISN + 1), or the first sequence number seen
//!   on a midstream pickup; raw numbers are unwrapped into 64-bit offsets ([`SeqUnwrapper`](crate::analyze::seq::SeqUnwrapper)),
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
//!
//! Parts: this module holds the analyzer (connections by id, UDP flows, entries, which
//! directions keep their lists); `half` the reassembly of one connection and its two
//! directions; `history` the window of delivered bytes that re-sent copies are compared
//! with; `reread` the capture files that window reads bytes back from instead of keeping
//! copies; `udp_flow` an open UDP flow and the packed form it waits in while idle (its
//! datagram list is `dgrams`); [`thread`] runs the analyzer on a thread of its own.

mod dgrams;
mod half;
mod history;
mod reread;
pub mod seg;
pub mod thread;
mod udp_flow;

use dgrams::DgramList;
use half::{Conn, Cx, Half};
use udp_flow::UdpFlow;

use std::collections::hash_map::Entry;
use std::io;
use std::mem;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use rustc_hash::FxHashMap;

use super::framing::{FramingConfig, FramingKind, DEFAULT_MAX_MESSAGE};
use super::messages::{MessageMapper, MessageSink};
use super::records::{Records, Ref};
use super::{Analyzer, Ctx, Dir};
use crate::capture::SharedBlock;
use crate::dissect::Packet;
use crate::report::json_out::{StreamWithSegments, UdpFlowParts};
use crate::report::ndjson::Event;
use crate::report::streams::{EntryStore, UdpFlowEntry};
use crate::report::{endpoint_string, Report, Warning};
use seg::{DgramHead, SegHead};

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
    /// connection id are stored, with their lists; the others are only counted (the
    /// store refuses to become a JSON spill then). Set by the pipeline when the terminal
    /// view is the only reader of the entries: it shows the first `--limit` directions in
    /// detail and counts the rest, so building, serialising and indexing the others was a
    /// fifth of a `--streams` run, and their index rows grew with the file, for nothing.
    pub lists_for_first: usize,
    /// `--extract DIR`: write each direction's bytes (and messages) under DIR.
    pub extract: Option<PathBuf>,
    pub extract_messages: bool,
    /// Overwrite existing files in the extract directory.
    pub force: bool,
    /// UDP datagrams per generation: a UDP flow with no datagram for a whole generation
    /// is packed until its next datagram (0: never). Memory only: results do not change
    /// (tests pack at every datagram to exercise the packed form).
    pub udp_generation: usize,
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
            // About 0.4 s of the 1 GB benchmark capture's UDP, whose flows (DNS-like
            // exchanges) are done in milliseconds; a flow with datagrams further apart
            // costs one unpack and pack per gap.
            udp_generation: 2048,
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
/// [`thread`]).
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
    /// UDP flows with a datagram in this generation (see `udp_generation`), boxed: the
    /// map's empty buckets cost as much as full ones.
    udp: FxHashMap<u64, Box<UdpFlow>>,
    /// UDP flows with a datagram in the previous generation but not (yet) this one.
    udp_old: FxHashMap<u64, Box<UdpFlow>>,
    /// UDP flows idle for a whole generation, packed (see [`udp_flow`]).
    udp_cold: FxHashMap<u64, Ref>,
    records: Records,
    /// Datagrams in this generation so far.
    udp_in_generation: usize,
    /// Scratch space for packing.
    packing: Vec<u8>,
    /// Bytes held in out-of-order buffers and history windows, all connections.
    mem: usize,
    /// The capture files history windows read bytes back from.
    files: reread::Files,
    store: Option<EntryStore>,
    udp_store: Option<EntryStore>,
    sink: Option<Box<dyn StreamSink>>,
    error: Option<io::Error>,
    totals: Totals,
    output: Option<StreamsOutput>,
    /// [`end_of_input`](Self::end_of_input) ran: open state is finalized, the output made.
    ended: bool,
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

/// [`StreamAnalyzer::list_cap`] over the fields it reads, so a map entry being created can
/// call it: `sure` and `listed` are those of the key's kind (TCP or UDP).
fn list_cap(opts: &StreamOptions, emit: bool, sure: usize, listed: &FirstKeys, key: u64) -> usize {
    let n = opts.lists_for_first;
    if n == 0 || emit || (sure < n && listed.could_admit(key, n)) {
        opts.max_list
    } else {
        0
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
            udp_old: FxHashMap::default(),
            udp_cold: FxHashMap::default(),
            records: Records::default(),
            udp_in_generation: 0,
            packing: Vec::new(),
            mem: 0,
            files: reread::Files::default(),
            store: Some(EntryStore::new()?),
            udp_store: Some(EntryStore::new()?),
            sink,
            error: None,
            totals: Totals::default(),
            output: None,
            ended: false,
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
        let mapper = MessageMapper::new(
            kind,
            reason.to_string(),
            ports,
            self.opts.max_message,
            list_cap,
            keep,
            // Events carry whole entries; the report takes the segments as JSON text.
            !self.emit,
        );
        Half::new(mapper, list_cap)
    }

    /// One TCP segment of connection `id` (as the tracker assigned it), sent from `src`
    /// to `dst` in frame `frame`, with the captured `payload`; `block`: the read-ahead
    /// block its payload lies in, if any (the history then keeps file positions rather
    /// than copies).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_tcp(
        &mut self,
        id: u64,
        dir: Dir,
        frame: u64,
        (src, dst): (IpAddr, IpAddr),
        t: &SegHead,
        payload: &[u8],
        block: Option<&SharedBlock>,
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
        let origin = match block {
            Some(b) if !payload.is_empty() => self.files.origin(b),
            _ => None,
        };
        let mut cx = Cx {
            opts: &self.opts,
            mem: &mut self.mem,
            sink: self.sink.as_deref_mut(),
            key,
            totals: &mut self.totals,
            files: &mut self.files,
            origin,
        };
        let had_payload = conn.halves[dir.index()].payload;
        conn.segment(dir, frame, t, payload, &mut cx);
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
        u: &DgramHead,
        fragments: &[u64],
    ) {
        self.udp_in_generation += 1;
        if self.opts.udp_generation != 0 && self.udp_in_generation >= self.opts.udp_generation {
            self.next_udp_generation();
        }
        let (opts, emit, listed) = (&self.opts, self.emit, &self.listed[1]);
        let sure = &mut self.sure[1];
        let flow = match self.udp.entry(id) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(match self.udp_old.remove(&id) {
                Some(f) => f,
                None => match self.udp_cold.remove(&id) {
                    Some(r) => {
                        let f = UdpFlow::unpack(self.records.get(r));
                        self.records.free(r);
                        Box::new(f)
                    }
                    None => {
                        let cap = |key| list_cap(opts, emit, *sure, listed, key);
                        let list_cap =
                            [cap(id * 2), cap(id * 2 + 1)].map(|c| c.min(u32::MAX as usize) as u32);
                        *sure += 1;
                        let (orig, resp) = match dir {
                            Dir::Orig => (endpoint(src, u.src_port), endpoint(dst, u.dst_port)),
                            Dir::Resp => (endpoint(dst, u.dst_port), endpoint(src, u.src_port)),
                        };
                        Box::new(UdpFlow {
                            orig,
                            resp,
                            list_cap,
                            max_len: [0; 2],
                            dirs: Default::default(),
                            list: DgramList::default(),
                        })
                    }
                },
            }),
        };
        let i = dir.index();
        let d = &mut flow.dirs[i];
        let len = u64::from(u.payload_len);
        d.total += 1;
        d.bytes += len;
        flow.max_len[i] = flow.max_len[i].max(u.payload_len);
        if !fragments.is_empty() {
            d.fragmented += 1;
        }
        // Datagrams are listed while the direction has had at most `list_cap` of them.
        if d.total <= u64::from(flow.list_cap[i]) {
            flow.list.push(dir, frame, len, fragments);
        }
    }

    /// Starts a new generation of UDP flows: the flows of the previous one that had no
    /// datagram since are packed (one a record refuses stays open, in the new one).
    fn next_udp_generation(&mut self) {
        self.udp_in_generation = 0;
        for (id, flow) in self.udp_old.drain() {
            if flow.pack(&mut self.packing) {
                if let Some(r) = self.records.put(&self.packing) {
                    self.udp_cold.insert(id, r);
                    continue;
                }
            }
            self.udp.insert(id, flow);
        }
        mem::swap(&mut self.udp, &mut self.udp_old);
    }

    /// Connection `id` ended (the tracker finalized it): its entries are complete.
    pub(crate) fn finalize(&mut self, id: u64) {
        if let Some(conn) = self.conns.remove(&id) {
            self.finish_conn(id, *conn);
        }
        if let Some(flow) = self.udp.remove(&id).or_else(|| self.udp_old.remove(&id)) {
            self.finish_udp(id, &flow);
        } else if let Some(r) = self.udp_cold.remove(&id) {
            let flow = UdpFlow::unpack(self.records.get(r));
            self.records.free(r);
            self.finish_udp(id, &flow);
        }
    }

    /// Ids of every open connection and UDP flow, in no order (one id may appear twice).
    fn open_ids(&self) -> Vec<u64> {
        let udp = self.udp.keys().chain(self.udp_old.keys());
        let ids = self.conns.keys().chain(udp).chain(self.udp_cold.keys());
        ids.copied().collect()
    }

    /// Writes the entries of UDP flow `id`'s directions. Without events the entry is
    /// written from its parts ([`UdpFlowParts`]): the 1 GB benchmark capture ends with
    /// about 58,000 flows open (its 107 s are less than two 60 s UDP timeouts), all
    /// finalized at once on this thread, while the pipeline thread waits for it.
    fn finish_udp(&mut self, id: u64, flow: &UdpFlow) {
        // Made once for both directions, and only for a direction that is stored: a
        // terminal-only run stores the first few flows' entries alone.
        let mut names: Option<(String, String)> = None;
        let mut lists = if self.emit {
            flow.list.entries()
        } else {
            Default::default()
        };
        for dir in [Dir::Orig, Dir::Resp] {
            let i = dir.index();
            let d = &flow.dirs[i];
            if d.total == 0 {
                continue;
            }
            let key = id * 2 + i as u64;
            if !self.stores(1, key) {
                continue;
            }
            let max_len = u64::from(flow.max_len[i]);
            let (orig, resp) = names
                .get_or_insert_with(|| (endpoint_string(&flow.orig), endpoint_string(&flow.resp)));
            let stored = if self.emit {
                let e = UdpFlowEntry {
                    flow: id,
                    orig: orig.clone(),
                    resp: resp.clone(),
                    dir: dir.name().into(),
                    datagrams: std::mem::take(&mut lists[i]),
                    datagrams_total: d.total,
                    bytes: d.bytes,
                    fragmented: d.fragmented,
                    max_len,
                };
                let stored = self.udp_store.as_mut().map(|s| s.push_json(key, &e));
                self.events.push(Event::UdpFlow(Box::new(e)));
                stored
            } else {
                let e = UdpFlowParts {
                    flow: id,
                    orig,
                    resp,
                    dir: dir.name(),
                    datagrams: &flow.list.dir(dir),
                    datagrams_total: d.total,
                    bytes: d.bytes,
                    fragmented: d.fragmented,
                    max_len,
                };
                self.udp_store.as_mut().map(|s| s.push_json(key, &e))
            };
            if let Some(Err(e)) = stored {
                self.error.get_or_insert(e);
            }
        }
    }

    /// How many entries the lists of the direction under `key` keep while it runs:
    /// `max_list`, or 0 when [`keeps_lists`](Self::keeps_lists) is already sure to say no
    /// at its end (a key above the first `lists_for_first` finished ones), so the lists
    /// of directions no reader will see are never built (they were a tenth of a
    /// terminal-only `--streams` run).
    fn list_cap(&self, which: usize, key: u64) -> usize {
        list_cap(
            &self.opts,
            self.emit,
            self.sure[which],
            &self.listed[which],
            key,
        )
    }

    /// Whether the finished entry under `key` (`which`: 0 TCP, 1 UDP) is to be built and
    /// stored. When no reader will see it (see `lists_for_first`) it is only counted: the
    /// view says how many more there are, so the store counts it, but it is never built,
    /// serialised or indexed.
    fn stores(&mut self, which: usize, key: u64) -> bool {
        if self.keeps_lists(which, key) {
            return true;
        }
        let store = if which == 0 {
            &mut self.store
        } else {
            &mut self.udp_store
        };
        if let Some(s) = store.as_mut() {
            s.count_unstored();
        }
        false
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
                files: &mut self.files,
                origin: None,
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
            if !self.stores(0, key) {
                continue;
            }
            let entry = h.entry(
                id,
                dir,
                &conn.orig,
                &conn.resp,
                peer_mss,
                assumed,
                self.opts.max_list,
            );
            let segments = h.take_packed_segments();
            if let Some(s) = self.store.as_mut() {
                let pushed = match &segments {
                    Some(t) => s.push_json(
                        key,
                        &StreamWithSegments {
                            entry: &entry,
                            segments: t,
                        },
                    ),
                    None => s.push_json(key, &entry),
                };
                if let Err(e) = pushed {
                    self.error.get_or_insert(e);
                }
            }
            if self.emit {
                self.events.push(Event::Stream(Box::new(entry)));
            }
        }
    }
}

impl Analyzer for StreamAnalyzer {
    fn on_packet(&mut self, p: &Packet<'_>, ctx: &mut Ctx) {
        self.emit = ctx.want_events;
        if let (Some(c), Some(ips)) = (ctx.conn, p.ips()) {
            match &p.transport {
                crate::dissect::Transport::Tcp(t) => {
                    self.on_tcp(c.id, c.dir, p.frame, ips, &SegHead::of(t), t.payload, None)
                }
                crate::dissect::Transport::Udp(u) => self.on_udp(
                    c.id,
                    c.dir,
                    p.frame,
                    ips,
                    &DgramHead::of(u),
                    p.reassembled_from,
                ),
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
        if self.end_queue.is_none() {
            let mut ids = self.open_ids();
            ids.sort_unstable_by(|a, b| b.cmp(a));
            ids.dedup();
            self.end_queue = Some(ids);
        }
        let Some(queue) = self.end_queue.as_mut() else {
            return false;
        };
        let batch: Vec<u64> = (0..BATCH).map_while(|_| queue.pop()).collect();
        let more = !queue.is_empty();
        for id in batch {
            self.finalize(id);
        }
        ctx.events.append(&mut self.events);
        more
    }

    /// Writes nothing into the report: the entries go out through
    /// [`take_output`](StreamAnalyzer::take_output).
    fn finish(&mut self, _report: &mut Report) {
        self.end_of_input();
    }
}

impl StreamAnalyzer {
    /// The input ended: finalizes every open direction and makes the output
    /// ([`take_output`](Self::take_output)). What [`Analyzer::finish`] does, callable
    /// without a report so the stream thread can do it while the pipeline thread finishes
    /// the other analyses; a second call does nothing.
    pub fn end_of_input(&mut self) {
        if mem::replace(&mut self.ended, true) {
            return;
        }
        // Events were drained by `end_events` if anyone wanted them; none are built now.
        self.emit = false;
        let mut ids = self.open_ids();
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
mod size_tests {
    /// An open UDP flow is boxed and tens of thousands can be open at once: keep it at
    /// 160 bytes, a size class of the allocator (161 would take the 192-byte class).
    #[test]
    fn an_open_udp_flow_is_160_bytes() {
        assert_eq!(std::mem::size_of::<super::UdpFlow>(), 160);
    }
}
