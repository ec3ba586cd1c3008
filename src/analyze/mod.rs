//! Analyze: analyzers that consume dissected packets and fill their report section.
//!
//! Every analyzer implements [`Analyzer`]: it sees each [`Packet`] once, in frame order,
//! and at the end writes its section into the [`Report`]. Analyzers never print and never
//! read the wall clock: they use capture timestamps only, so a pcap of a live session gives
//! the same report as the live run.
//!
//! Analyzers run in a fixed order for each packet and share a per-packet [`Ctx`]: the
//! connection tracker runs first and records which connection and direction the packet
//! belongs to, so later analyzers (stream reassembly) key their state by the same
//! connection id the report uses.

pub mod arp;
pub mod conns;
pub mod framing;
pub mod mac_table;
pub mod messages;
pub mod oui;
pub mod records;
pub mod seq;
pub mod stats;
pub mod streams;
pub mod varint;

use crate::dissect::Packet;
use crate::report::Report;

/// Direction of a packet within its connection: from the originator or the responder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    Orig,
    Resp,
}

impl Dir {
    pub fn index(self) -> usize {
        match self {
            Dir::Orig => 0,
            Dir::Resp => 1,
        }
    }
    pub fn other(self) -> Dir {
        match self {
            Dir::Orig => Dir::Resp,
            Dir::Resp => Dir::Orig,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Dir::Orig => "orig",
            Dir::Resp => "resp",
        }
    }
}

/// The connection a packet was assigned to by the connection tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnRef {
    /// The connection's id in the report (`connections[].id`, from 1).
    pub id: u64,
    pub dir: Dir,
    /// True for the packet that opened this connection entry.
    pub opened: bool,
}

/// Per-packet facts shared between analyzers, reset for every packet.
#[derive(Debug, Default)]
pub struct Ctx {
    /// Set by the connection tracker for TCP and UDP packets.
    pub conn: Option<ConnRef>,
    /// Connections finalized (closed and lingered, or evicted) while handling this packet.
    pub finalized: Vec<u64>,
    /// Set by the pipeline when an output consumes events (`--ndjson`, `--zeek-logs`);
    /// analyzers build events only then, so the default run allocates nothing for them.
    pub want_events: bool,
    /// Events completed while handling this packet (or a batch at the end of input), in
    /// the order they completed; the pipeline drains them after every analyzer ran.
    pub events: Vec<crate::report::ndjson::Event>,
    /// Connections finalized while handling this packet, when the tracker has lent its
    /// spill to the stream thread ([`Analyzer::lend_spill`]), which writes their entries.
    pub conn_entries: Vec<conns::Finished>,
}

impl Ctx {
    pub fn reset(&mut self) {
        self.conn = None;
        self.finalized.clear();
        self.events.clear();
        self.conn_entries.clear();
    }
}

/// One analysis over the packet stream.
pub trait Analyzer {
    /// Sees one packet, in frame order.
    fn on_packet(&mut self, pkt: &Packet<'_>, ctx: &mut Ctx);
    /// The input ended: finalize open state and write this analysis's report section.
    fn finish(&mut self, report: &mut Report);
    /// The input ended and events are wanted (`ctx.want_events`): finalize open state a
    /// bounded batch at a time, pushing the events into `ctx.events`; returns true while
    /// more remains. Called until it returns false, before `finish`; what it finalized
    /// `finish` still reports. The default has nothing to emit.
    fn end_events(&mut self, _ctx: &mut Ctx) -> bool {
        false
    }
    /// Arrays this analyzer spilled to temporary files as they grew, to be spliced into
    /// the JSON document under their keys; taken once, after `finish`.
    fn take_spills(&mut self) -> Vec<(&'static str, crate::report::json::Spill)> {
        Vec::new()
    }
    /// Lends the spill of entries this analyzer completes while packets arrive, so
    /// another thread serialises them: from now on they go into `ctx.conn_entries`
    /// instead, and those completed at the end of input wait for
    /// [`return_spill`](Self::return_spill). None (the default) when it spills nothing.
    fn lend_spill(&mut self) -> Option<crate::report::json::Spill> {
        None
    }
    /// Gives back what [`lend_spill`](Self::lend_spill) lent, after `finish`: the spill,
    /// or the error that ended it (reported into `report` where `finish` would have).
    fn return_spill(
        &mut self,
        _spill: std::io::Result<crate::report::json::Spill>,
        _report: &mut Report,
    ) {
    }
}
