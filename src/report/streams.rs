//! The `streams` and `udp_flows` sections of the report (serde types = the JSON schema),
//! and [`EntryStore`], the temporary file that holds finished entries until the report is
//! written.
//!
//! Names from DESIGN.md (`conn`, `dir`, `bytes`, `gaps`, `framing`, `segments`,
//! `messages`, `stats` and the six stats counters; `flow`, `orig`, `resp`, `datagrams`)
//! are a contract; every other field is netlens's addition, documented in docs/report.md.
//!
//! Segment and message lists grow with the input, so each stream keeps at most a capped
//! number of them for the report (the counts in `stats` stay exact; `lists_cut` says when
//! a list was cut), and finished entries go to an [`EntryStore`] on disk, not memory.

use std::collections::BTreeMap;
use std::io;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::json::Spill;
use super::json_out::WriteJson;
use super::keyed_file::{KeyedFile, KeyedReader};

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_true(b: &bool) -> bool {
    *b
}

fn yes() -> bool {
    true
}

/// One direction of one TCP connection that carried payload.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct StreamEntry {
    /// The connection's id (`connections[].id`).
    pub conn: u64,
    /// "orig" or "resp": who sent these bytes.
    pub dir: String,
    /// The connection's endpoints, `ip:port` (`\[v6\]:port`).
    pub orig: String,
    pub resp: String,
    /// Payload bytes delivered in order (each byte once; gaps not included).
    pub bytes: u64,
    /// Stream length: the offset after the last byte delivered or lost (bytes + gap bytes).
    pub stream_len: u64,
    pub first_frame: u64,
    pub last_frame: u64,
    /// The SYN's sequence number (null on a midstream pickup).
    pub isn: Option<u32>,
    /// The raw sequence number of offset 0 (ISN + 1, or the first sequence number seen).
    pub base_seq: u32,
    /// No SYN was seen in this direction: offsets start at the first byte seen.
    pub midstream: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub syn_frame: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub fin: Option<FinEntry>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rst_frame: Option<u64>,
    /// Holes never filled, in stream order (capped like the other lists).
    pub gaps: Vec<GapEntry>,
    /// All gaps, also when `gaps` was cut.
    pub gaps_total: GapTotals,
    /// The framing used ("len32le", "http", "none", ...).
    pub framing: String,
    /// Why: "--framing 9000=len32le", "default", or what `auto` saw.
    pub framing_reason: String,
    /// Where framing broke; the rest of the direction is segments only.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub framing_error: Option<FramingError>,
    /// Delivered bytes that belong to no message (after a framing error, or framing none).
    pub unframed_bytes: u64,
    /// The MSS that segments of this direction are held against (the peer's SYN option).
    pub mss: Option<u16>,
    /// "syn" (announced by the peer) or "assumed" (no SYN seen: 1460, 1440 for IPv6).
    pub mss_source: String,
    /// Segments larger than the MSS: TSO/GSO on the sender or GRO on the receiver.
    pub oversized_segments: u64,
    /// First transmissions, in capture order (capped: see `lists_cut`).
    pub segments: Vec<SegmentEntry>,
    /// Messages in stream order (capped: see `lists_cut`).
    pub messages: Vec<MessageEntry>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub lists_cut: Option<ListsCut>,
    pub stats: StreamStats,
    pub reassembly: ReassemblyStats,
    /// Re-sent bytes that differ from the first copy (the first copy wins), capped.
    pub conflicts: Vec<ConflictEntry>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct FinEntry {
    pub frame: u64,
    /// Stream offset of the FIN (= the stream's length when nothing was lost at the end).
    pub offset: u64,
}

/// A hole in the stream that was never filled.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct GapEntry {
    pub offset: u64,
    pub len: u64,
    /// "lost" (never seen), "buffer-cap" (the out-of-order buffer was full: reassembly gave
    /// up waiting), "not-captured" (cut by the snap length), "acked-not-seen" (the peer
    /// acknowledged bytes the capture never had).
    pub reason: String,
    /// The frame whose bytes end just before the gap, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub after_frame: Option<u64>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct GapTotals {
    pub count: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct FramingError {
    /// Stream offset where framing broke: the start of the message that could not be
    /// framed, or the byte where a started message went wrong.
    pub offset: u64,
    /// The frame carrying that byte (null when it fell into a gap).
    pub frame: Option<u64>,
    pub reason: String,
}

/// One segment: a first transmission with payload.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct SegmentEntry {
    pub frame: u64,
    /// Stream offset of its first payload byte.
    pub offset: u64,
    /// Payload length on the wire (from the IP length).
    pub len: u64,
    /// Indices of the messages it carries bytes of, in stream order (capped at 64).
    pub messages: Vec<u64>,
    /// Per entry of `messages`: "whole", "head", "middle" or "tail" of that message.
    pub parts: Vec<MessagePart>,
    /// How many messages it carries (when more than `messages` lists).
    #[serde(skip_serializing_if = "is_zero", default)]
    pub messages_total: u64,
    /// It carries bytes of two or more messages.
    #[serde(skip_serializing_if = "is_false", default)]
    pub coalescing: bool,
    /// Larger than the MSS (an offload artefact: not the wire's segmentation).
    #[serde(skip_serializing_if = "is_false", default)]
    pub oversized: bool,
    /// Bytes it brought first, when fewer than `len` (part of it repeated earlier bytes).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub new_bytes: Option<u64>,
    /// Payload bytes in the capture, when the snap length cut the frame.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub captured: Option<u64>,
    /// It arrived above a hole (out of order) and waited in the buffer.
    #[serde(skip_serializing_if = "is_false", default)]
    pub out_of_order: bool,
}

/// How a segment carries a message.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MessagePart {
    /// All of the message.
    Whole,
    /// Its first byte, not its last.
    Head,
    /// Neither its first nor its last byte.
    Middle,
    /// Its last byte, not its first.
    Tail,
}

impl MessagePart {
    pub fn of(first: bool, last: bool) -> MessagePart {
        match (first, last) {
            (true, true) => MessagePart::Whole,
            (true, false) => MessagePart::Head,
            (false, false) => MessagePart::Middle,
            (false, true) => MessagePart::Tail,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            MessagePart::Whole => "whole",
            MessagePart::Head => "head",
            MessagePart::Middle => "middle",
            MessagePart::Tail => "tail",
        }
    }
}

/// One application message found by the framing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct MessageEntry {
    pub index: u64,
    pub offset: u64,
    /// All of its bytes, length prefix and header included.
    pub len: u64,
    /// Frames carrying any of its bytes, in stream order (capped at 64).
    pub segments: Vec<u64>,
    /// How many segments carry it (when more than `segments` lists).
    #[serde(skip_serializing_if = "is_zero", default)]
    pub segments_total: u64,
    /// Its bytes lie in two or more segments.
    pub split: bool,
    /// It shares a segment with another message.
    pub coalesced: bool,
    /// False for a message the stream ended (or framing broke) in the middle of.
    #[serde(skip_serializing_if = "is_true", default = "yes")]
    pub complete: bool,
    /// Bytes of it lost in gaps (a body of known length spans the hole).
    #[serde(skip_serializing_if = "is_zero", default)]
    pub gap_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub info: Option<MessageInfo>,
}

/// What a framer read from a message's header.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct MessageInfo {
    /// HTTP start line, TLS record type.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub summary: Option<String>,
    /// json-header: every header field as escaped text.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub header: Option<BTreeMap<String, String>>,
    /// Bytes of the header (JSON header, HTTP header block).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub header_len: Option<u64>,
    /// HTTP: how the body is delimited ("content-length N", "chunked", "until close", "none").
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub body_len: Option<u64>,
    /// json-header: MD5 of the body as received (hex).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub md5: Option<String>,
    /// json-header: the body's MD5 equals the header's `MD5` (null: no `MD5` given).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub md5_ok: Option<bool>,
    /// json-header: body bytes were lost in a gap, so the MD5 could not be checked.
    #[serde(skip_serializing_if = "is_false", default)]
    pub md5_unverifiable: bool,
}

/// Where the per-stream lists were cut (the stats still count everything).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct ListsCut {
    /// The cap per list (`--max-list`).
    pub cap: u64,
    pub segments_total: u64,
    pub messages_total: u64,
}

/// The six contract counters, plus netlens's own.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct StreamStats {
    /// Complete messages.
    pub messages: u64,
    pub split_messages: u64,
    pub coalesced_messages: u64,
    pub coalescing_segments: u64,
    pub max_messages_per_segment: u64,
    pub max_segments_per_message: u64,
    /// Segments listed: first transmissions that brought payload.
    pub segments: u64,
    /// Messages the stream ended in (or framing broke in) the middle of.
    pub incomplete_messages: u64,
}

/// How reassembly went for this direction.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct ReassemblyStats {
    /// Every segment with payload, retransmissions included.
    pub payload_segments: u64,
    /// Segments all of whose payload bytes were already seen.
    pub retransmissions: u64,
    /// Bytes seen again (whole and partial retransmissions).
    pub retransmitted_bytes: u64,
    /// Segments that repeat some seen bytes and bring new ones.
    pub overlaps: u64,
    /// Re-sent bytes that differ from the first copy.
    pub conflicting_bytes: u64,
    /// Re-sent bytes that could not be compared (the first copy was no longer kept).
    pub unchecked_bytes: u64,
    /// Segments bringing new bytes above a hole (they waited in the buffer).
    pub out_of_order: u64,
    /// Keep-alive probes (one byte or none at the delivery point minus one).
    pub keepalives: u64,
    /// Bytes that arrived after their hole had been recorded as a gap (dropped).
    pub late_bytes: u64,
    /// Bytes before offset 0 (older than a midstream pickup or the SYN).
    pub before_start_bytes: u64,
    /// Bytes beyond the FIN.
    pub after_fin_bytes: u64,
    /// Payload carried on RST segments (not delivered).
    pub rst_payload_bytes: u64,
    /// Most bytes waiting in the out-of-order buffer at once.
    pub buffered_peak: u64,
    /// Holes given up because a buffer cap was reached.
    pub gaps_from_cap: u64,
}

/// Re-sent bytes that differ from the first copy.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct ConflictEntry {
    /// The frame that re-sent them.
    pub frame: u64,
    /// Offset of the first differing byte.
    pub offset: u64,
    /// Differing bytes in that segment.
    pub bytes: u64,
}

/// One direction of one UDP flow that carried datagrams.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct UdpFlowEntry {
    /// The flow's id (`connections[].id`).
    pub flow: u64,
    pub orig: String,
    pub resp: String,
    pub dir: String,
    /// Each datagram is one message: boundaries survive (capped: see `datagrams_total`).
    pub datagrams: Vec<DatagramEntry>,
    pub datagrams_total: u64,
    /// UDP payload bytes over all datagrams.
    pub bytes: u64,
    /// Datagrams reassembled from IPv4 fragments.
    pub fragmented: u64,
    pub max_len: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct DatagramEntry {
    pub frame: u64,
    /// UDP payload bytes (0 is a datagram too).
    pub len: u64,
    /// The IPv4 fragment frames it was reassembled from (empty when not fragmented).
    pub fragments: Vec<u64>,
}

/// Finished entries on disk, written as they complete and read back sorted by key.
///
/// Memory: none per entry; the entries and their index are in anonymous temporary files
/// (a [`KeyedFile`]). Entries no reader will read (see
/// `StreamOptions::lists_for_first`) are only counted: a store with such entries reads
/// back its stored ones but refuses to become a JSON spill, which must list every entry.
pub struct EntryStore {
    file: KeyedFile,
    /// Entries pushed.
    pushed: usize,
    /// Entries counted without being stored.
    unstored: usize,
}

impl EntryStore {
    pub fn new() -> io::Result<Self> {
        Ok(EntryStore {
            file: KeyedFile::new()?,
            pushed: 0,
            unstored: 0,
        })
    }

    /// Counts an entry that no reader will read, without storing it.
    pub fn count_unstored(&mut self) {
        self.unstored += 1;
    }

    /// Stores `value` under `key` (entries read back in key order, then insertion order).
    pub fn push<T: Serialize>(&mut self, key: u64, value: &T) -> io::Result<()> {
        self.file.push(key, value)?;
        self.pushed += 1;
        Ok(())
    }

    /// [`push`](Self::push) through the entry's hand-written JSON writer (same bytes).
    pub fn push_json<T: WriteJson>(&mut self, key: u64, value: &T) -> io::Result<()> {
        self.file.push_json(key, value)?;
        self.pushed += 1;
        Ok(())
    }

    /// Entries pushed or counted.
    pub fn len(&self) -> usize {
        self.pushed + self.unstored
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `f` with each entry's JSON bytes in key order until it returns `false`.
    pub fn for_each_raw(&mut self, mut f: impl FnMut(&[u8]) -> io::Result<bool>) -> io::Result<()> {
        self.file.for_each(&mut f)
    }

    /// Calls `f` with each entry in key order.
    pub fn for_each<T: DeserializeOwned>(
        &mut self,
        mut f: impl FnMut(T) -> io::Result<()>,
    ) -> io::Result<()> {
        self.for_each_raw(|bytes| {
            let v: T = serde_json::from_slice(bytes).map_err(io::Error::other)?;
            f(v)?;
            Ok(true)
        })
    }

    /// A reader of the entries stored so far, which may go to another thread
    /// ([`KeyedFile::reader`]).
    pub fn reader(&mut self) -> io::Result<EntryReader> {
        Ok(EntryReader {
            file: self.file.reader()?,
            len: self.len(),
        })
    }

    /// The entries in key order as a JSON [`Spill`] for the report writer: the same
    /// files, handed over without copying or decoding an entry.
    pub fn into_spill(self) -> io::Result<Spill> {
        if self.unstored > 0 {
            return Err(io::Error::other(
                "internal: stream entries were counted without being stored, so the JSON report cannot list them",
            ));
        }
        Ok(Spill::from_keyed(self.file, self.pushed as u64))
    }
}

/// The entries of an [`EntryStore`] as they were when [`EntryStore::reader`] made it.
pub struct EntryReader {
    file: KeyedReader,
    /// Entries stored or counted.
    len: usize,
}

impl EntryReader {
    /// Entries stored or counted (as [`EntryStore::len`]).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Calls `f` with at most `n` entries (all when `n` is 0) in key order, decoding only
    /// those.
    pub fn for_first<T: DeserializeOwned>(
        &self,
        n: usize,
        mut f: impl FnMut(T) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut seen = 0;
        self.file.for_each(&mut |bytes| {
            let v: T = serde_json::from_slice(bytes).map_err(io::Error::other)?;
            f(v)?;
            seen += 1;
            Ok(n == 0 || seen < n)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::EntryStore;

    /// Counted entries are in `len` and absent from reading; a store holding any refuses
    /// to become a JSON spill, which must list every entry.
    #[test]
    fn counted_entries_are_counted_not_read_and_never_spilled() -> std::io::Result<()> {
        let mut s = EntryStore::new()?;
        s.push(3, &"c")?;
        s.count_unstored();
        s.push(1, &"a")?;
        assert_eq!(s.len(), 3);
        let mut read = Vec::new();
        s.for_each(|v: String| {
            read.push(v);
            Ok(())
        })?;
        assert_eq!(read, ["a", "c"]);
        assert!(s.into_spill().is_err());
        let mut full = EntryStore::new()?;
        full.push(1, &"a")?;
        assert!(full.into_spill().is_ok());
        Ok(())
    }
}
