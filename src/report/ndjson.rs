//! Events and the NDJSON output (`--ndjson PATH|-`): one JSON object per line, written as
//! each event completes, so a live capture can feed jq or a log shipper indefinitely and a
//! huge file produces output while it is read.
//!
//! [`Event`] is the schema of a line: a `"type"` tag, then the fields of the report entry
//! it completes, under the names the JSON report uses (a `connection` line *is* a
//! `connections[]` entry; a `handshake` line carries a `connections[].handshake` object
//! with the connection it belongs to; an `arp` line *is* an `arp.exchanges[]` entry; a
//! `stream` line a `streams[]` entry, a `udp_flow` line a `udp_flows[]` entry). The
//! last line of a run is a `summary` with the report's `source`, `stats` and
//! `connection_stats`. docs/report.md ("ndjson events") documents every type.
//!
//! Invariants: a line is written only for a completed event (never a partial entry); the
//! writer holds at most one line in memory beyond its 64 KiB buffer; the sinks flush at
//! least every [`FLUSH_EVERY`] of wall-clock time while frames arrive, and whenever a live
//! capture is idle, so a reader downstream sees each event within a second.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::conns::{ConnEntry, ConnStats, HandshakeEntry};
use super::l2::ArpExchange;
use super::streams::{StreamEntry, UdpFlowEntry};
use super::{Source, Stats, Warning};

/// How long written lines may wait in the buffer while events keep arriving.
pub const FLUSH_EVERY: Duration = Duration::from_millis(250);

/// One completed event. Serialised with a `"type"` field naming the variant.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Event {
    /// A connection was finalized (closed and lingered, idle, evicted, reused, or the
    /// input ended): its final `connections[]` entry.
    Connection(Box<ConnEntry>),
    /// A TCP handshake resolved (see [`HandshakeEvent`]).
    Handshake(Box<HandshakeEvent>),
    /// An ARP request was answered, or its reply timeout passed (or the input ended)
    /// without an answer: its `arp.exchanges[]` entry.
    Arp(Box<ArpExchange>),
    /// A TCP stream direction was finalized (its connection was): its `streams[]` entry,
    /// framing stats, segments and messages included (lists capped by `--max-list`).
    Stream(Box<StreamEntry>),
    /// A UDP flow direction was finalized: its `udp_flows[]` entry.
    #[serde(rename = "udp_flow")]
    UdpFlow(Box<UdpFlowEntry>),
    /// The run ended: written last.
    Summary(Box<SummaryEvent>),
}

/// A TCP handshake as known when it resolved: at the ACK of the SYN-ACK, when data flows,
/// at an RST during the handshake, or else when its connection is finalized. The
/// connection's final `connection` line repeats the handshake as finalized (they differ
/// only where a segment after the resolution changed it, e.g. a late SYN retransmission).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HandshakeEvent {
    /// The connection's `id` (`connections[].id`).
    pub conn: u64,
    pub proto: String,
    pub orig: String,
    pub resp: String,
    pub first_frame: u64,
    pub start: f64,
    pub start_ns: i64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub vlan: Option<u16>,
    pub handshake: HandshakeEntry,
}

/// The end of a run: the report's top-level facts, for totals across many runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummaryEvent {
    pub schema: String,
    pub netlens: String,
    pub source: Source,
    pub stats: Stats,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub connection_stats: Option<ConnStats>,
    pub warnings: Vec<Warning>,
    /// Events written before this line, by type.
    pub events: BTreeMap<String, u64>,
}

impl Event {
    /// The value of the line's `"type"` field.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Connection(_) => "connection",
            Event::Handshake(_) => "handshake",
            Event::Arp(_) => "arp",
            Event::Stream(_) => "stream",
            Event::UdpFlow(_) => "udp_flow",
            Event::Summary(_) => "summary",
        }
    }
}

/// Writes events as NDJSON lines, to its own file or (for `--ndjson -`) to the writer each
/// call is given (standard output, which then carries nothing else).
pub struct NdjsonWriter {
    file: Option<BufWriter<File>>,
    counts: BTreeMap<String, u64>,
}

impl NdjsonWriter {
    /// `file` = None: lines go to the `out` of each call.
    pub fn new(file: Option<BufWriter<File>>) -> Self {
        NdjsonWriter {
            file,
            counts: BTreeMap::new(),
        }
    }

    fn dest<'a>(&'a mut self, out: &'a mut dyn Write) -> &'a mut dyn Write {
        match self.file.as_mut() {
            Some(f) => f,
            None => out,
        }
    }

    /// Writes one line.
    pub fn write(&mut self, ev: &Event, out: &mut dyn Write) -> io::Result<()> {
        let w = self.dest(out);
        // io::Error::from keeps the kind of a write error (a closed pipe stays BrokenPipe).
        serde_json::to_writer(&mut *w, ev).map_err(io::Error::from)?;
        w.write_all(b"\n")?;
        // At most one key per event type: no allocation after the first line of a type.
        let k = ev.kind();
        match self.counts.get_mut(k) {
            Some(n) => *n += 1,
            None => {
                self.counts.insert(k.to_string(), 1);
            }
        }
        Ok(())
    }

    pub fn flush(&mut self, out: &mut dyn Write) -> io::Result<()> {
        self.dest(out).flush()
    }

    /// Lines written so far, by type.
    pub fn counts(&self) -> &BTreeMap<String, u64> {
        &self.counts
    }
}
