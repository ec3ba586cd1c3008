//! Maps one direction's application messages onto its TCP segments: which segments carry
//! which messages (whole, head, middle, tail), which messages are split or coalesced.
//!
//! The reassembler ([`super::streams`]) registers each first transmission as a segment, in
//! capture order, then delivers its new bytes in stream order ([`MessageMapper::bytes`]) or
//! reports a hole ([`MessageMapper::gap`]). The mapper runs the framer over those bytes and
//! attributes every delivered byte either to a message or to "unframed".
//!
//! Invariants that keep memory bounded and the lists exact:
//! - Bytes whose message header is not yet validated (`confirmed`) wait as (segment, frame,
//!   length) pieces; a framer buffers at most [`super::framing::MAX_HEADER`] bytes of
//!   header, so this list is bounded. On confirmation they join a new message; on failure
//!   they become unframed: a message index is never handed out and then taken back.
//! - A segment's entry is final when all its new bytes are attributed and it is not the
//!   last segment of the message still being read (whose end may yet fall in it); entries
//!   leave in capture order, so only segments still waiting for bytes (out-of-order ones,
//!   bounded by the reassembly buffer caps) and those after them are held.
//! - A message's `coalesced` is final once the segment holding its last byte is fully
//!   attributed (the next message may start in it); at most one ended message waits.
//! - Lists kept for the report stop at `cap` entries; counters stay exact.

use std::collections::VecDeque;

mod seg_pack;

pub use seg_pack::SegPack;

use super::framing::{self, Framer, FramingKind};
use crate::report::json_out::SegmentHead;
use crate::report::streams::{FramingError, MessageEntry, MessagePart, SegmentEntry, StreamStats};

/// A direction's finished segment entries, in capture order.
#[derive(Debug)]
pub enum SegmentList {
    /// As report entries: for events, which carry the entry whole.
    Entries(Vec<SegmentEntry>),
    /// Packed, for the JSON report, which writes them from this form when the direction
    /// is finalized ([`SegPack`]). Most of a large report is segment entries; built as
    /// entries, each cost its two lists' allocations (three with the mapper's own) and the
    /// whole list was copied at every doubling; kept as their JSON text, they were most of
    /// the memory of connections waiting out their linger time.
    Packed(SegPack),
}

impl SegmentList {
    pub fn len(&self) -> usize {
        match self {
            SegmentList::Entries(v) => v.len(),
            SegmentList::Packed(p) => p.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// At most this many message indices per segment entry and frames per message entry.
pub const MAX_REFS: usize = 64;

/// Receives message bytes as they are attributed (for `--extract-messages`).
pub trait MessageSink {
    fn message_data(&mut self, index: u64, data: &[u8]);
    fn message_end(&mut self, index: u64);
}

/// Facts about a segment known when it arrives.
#[derive(Debug, Clone, Copy, Default)]
pub struct SegmentFacts {
    pub frame: u64,
    pub offset: u64,
    /// Payload length on the wire.
    pub len: u64,
    /// Bytes it brought first (captured or not).
    pub new_bytes: u64,
    /// Of those, the bytes present in the capture (these will be delivered).
    pub new_captured: u64,
    /// Payload bytes present in the capture, when cut short.
    pub captured: Option<u64>,
    pub oversized: bool,
    pub buffered: bool,
}

struct SegState {
    facts: SegmentFacts,
    /// New captured bytes not yet attributed.
    pending: u64,
    /// (message index, has its first byte, has its last byte), capped at MAX_REFS.
    msgs: Vec<(u64, bool, bool)>,
    n_msgs: u64,
    last_msg: Option<u64>,
}

struct CurMsg {
    start: u64,
    index: Option<u64>,
    /// Bytes attributed (delivered bytes of a confirmed message, plus gap bytes).
    len: u64,
    gap_bytes: u64,
    frames: Vec<u64>,
    n_segs: u64,
    last_seg: Option<u64>,
    coalesced: bool,
    /// Unconfirmed header bytes: (segment id, frame, length).
    pending: Vec<(u64, u64, u64)>,
    pending_len: u64,
    /// Their bytes, kept only for message extraction.
    pending_bytes: Vec<u8>,
    last_was_gap: bool,
}

impl CurMsg {
    fn new(start: u64) -> Self {
        CurMsg {
            start,
            index: None,
            len: 0,
            gap_bytes: 0,
            frames: Vec::new(),
            n_segs: 0,
            last_seg: None,
            coalesced: false,
            pending: Vec::new(),
            pending_len: 0,
            pending_bytes: Vec::new(),
            last_was_gap: false,
        }
    }
}

enum Mode {
    /// `auto`, before the first byte.
    Undecided,
    Framing(Box<dyn Framer>),
    /// `none`, or framing broke: bytes are unframed.
    Off,
}

/// Segment and message bookkeeping of one direction.
pub struct MessageMapper {
    mode: Mode,
    /// The framing in use ("len32le", "http", ...): the chosen one under `auto`.
    pub framing: String,
    pub framing_reason: String,
    pub error: Option<FramingError>,
    ports: (u16, u16),
    max_message: u64,
    cap: usize,
    keep_message_bytes: bool,
    cur: Option<CurMsg>,
    /// An ended message waiting for its last segment to be fully attributed.
    tail: Option<(MessageEntry, u64)>,
    next_index: u64,
    segs: VecDeque<SegState>,
    seg_base: u64,
    next_seg: u64,
    pub segments: SegmentList,
    pub messages: Vec<MessageEntry>,
    pub stats: StreamStats,
    pub unframed: u64,
}

impl MessageMapper {
    pub fn new(
        kind: &FramingKind,
        reason: String,
        ports: (u16, u16),
        max_message: u64,
        cap: usize,
        keep_message_bytes: bool,
        json_segments: bool,
    ) -> Self {
        let mode = match kind {
            FramingKind::Auto => Mode::Undecided,
            FramingKind::None => Mode::Off,
            k => framing::framer(k, max_message).map_or(Mode::Off, Mode::Framing),
        };
        MessageMapper {
            mode,
            framing: kind.to_string(),
            framing_reason: reason,
            error: None,
            ports,
            max_message,
            cap,
            keep_message_bytes,
            cur: None,
            tail: None,
            next_index: 0,
            segs: VecDeque::new(),
            seg_base: 0,
            next_seg: 0,
            segments: if json_segments {
                SegmentList::Packed(SegPack::default())
            } else {
                SegmentList::Entries(Vec::new())
            },
            messages: Vec::new(),
            stats: StreamStats::default(),
            unframed: 0,
        }
    }

    /// Registers a first transmission (capture order); returns its id for [`Self::bytes`].
    pub fn add_segment(&mut self, facts: SegmentFacts) -> u64 {
        let id = self.next_seg;
        self.next_seg += 1;
        self.segs.push_back(SegState {
            facts,
            pending: facts.new_captured,
            msgs: Vec::new(),
            n_msgs: 0,
            last_msg: None,
        });
        self.emit_segments();
        id
    }

    fn seg_mut(&mut self, id: u64) -> Option<&mut SegState> {
        let i = id.checked_sub(self.seg_base)?;
        self.segs.get_mut(usize::try_from(i).ok()?)
    }

    /// Delivers `data`, the next bytes of the stream at `offset`, first sent by segment
    /// `seg` (frame `frame`).
    pub fn bytes(
        &mut self,
        seg: u64,
        frame: u64,
        mut offset: u64,
        mut data: &[u8],
        mut sink: Option<&mut (dyn MessageSink + '_)>,
    ) {
        if let Mode::Undecided = self.mode {
            if data.is_empty() {
                return;
            }
            let (kind, why) = framing::detect(data, self.ports.0, self.ports.1);
            self.framing = kind.to_string();
            self.framing_reason = why;
            self.mode = framing::framer(&kind, self.max_message).map_or(Mode::Off, Mode::Framing);
        }
        while !data.is_empty() {
            let Mode::Framing(f) = &mut self.mode else {
                self.unframed_bytes(seg, data.len() as u64);
                break;
            };
            let r = f.feed(data);
            let taken = (r.taken as usize).min(data.len());
            let cur = self.cur.get_or_insert_with(|| CurMsg::new(offset));
            if taken > 0 {
                if cur.index.is_some() {
                    self.attribute(seg, frame, taken as u64);
                    if let (Some(s), Some(i)) = (sink.as_deref_mut(), self.cur_index()) {
                        s.message_data(i, &data[..taken]);
                    }
                } else {
                    cur.pending.push((seg, frame, taken as u64));
                    cur.pending_len += taken as u64;
                    if self.keep_message_bytes {
                        cur.pending_bytes.extend_from_slice(&data[..taken]);
                    }
                }
            }
            if (r.confirmed || r.ended) && self.cur_index().is_none() && r.error.is_none() {
                self.confirm(sink.as_deref_mut());
            }
            if let Some(reason) = r.error {
                self.fail(reason, Some(frame), sink.as_deref_mut());
                data = &data[taken..];
                self.unframed_bytes(seg, data.len() as u64);
                break;
            }
            if r.ended {
                self.end_message(true, sink.as_deref_mut());
            } else if taken == 0 {
                // A framer must take a byte, end a message or fail; guard against a bug
                // turning into an endless loop on hostile input.
                self.fail(
                    "framer made no progress".into(),
                    Some(frame),
                    sink.as_deref_mut(),
                );
                self.unframed_bytes(seg, data.len() as u64);
                break;
            }
            data = &data[taken..];
            offset += taken as u64;
        }
        self.emit_segments();
    }

    /// `len` bytes at `offset` will never be delivered (a gap).
    pub fn gap(
        &mut self,
        mut offset: u64,
        mut len: u64,
        mut sink: Option<&mut (dyn MessageSink + '_)>,
    ) {
        while len > 0 {
            let Mode::Framing(f) = &mut self.mode else {
                break;
            };
            let r = f.skip(len);
            let taken = r.taken.min(len);
            let cur = self.cur.get_or_insert_with(|| CurMsg::new(offset));
            if taken == 0 {
                let start = if cur.index.is_some() {
                    cur.start + cur.len + cur.pending_len
                } else {
                    cur.start
                };
                let reason = format!(
                    "{len} bytes lost at offset {offset} where the framing needed them (a gap in the capture)"
                );
                self.fail_at(start, reason, None, sink.as_deref_mut());
                break;
            }
            cur.len += taken;
            cur.gap_bytes += taken;
            cur.last_was_gap = true;
            if r.ended {
                if cur.index.is_none() {
                    self.confirm(sink.as_deref_mut());
                }
                self.end_message(true, sink.as_deref_mut());
            }
            len -= taken;
            offset += taken;
        }
        self.emit_segments();
    }

    /// The stream ended: close the message in progress, flush everything.
    pub fn finish(&mut self, mut sink: Option<&mut (dyn MessageSink + '_)>) {
        let complete = match &self.mode {
            Mode::Framing(f) => f.complete_at_eof(),
            _ => false,
        };
        if let Some(cur) = &self.cur {
            if cur.len + cur.pending_len > 0 {
                if cur.index.is_none() {
                    self.confirm(sink.as_deref_mut());
                }
                self.end_message(complete, sink);
            } else {
                self.cur = None;
            }
        }
        if let Some((m, _)) = self.tail.take() {
            self.emit_message(m);
        }
        // Every byte is attributed by now; release anything still held.
        for s in &mut self.segs {
            s.pending = 0;
        }
        self.emit_segments();
    }

    fn cur_index(&self) -> Option<u64> {
        self.cur.as_ref().and_then(|c| c.index)
    }

    /// The current message's header is valid: it gets the next index and its pending
    /// header bytes join it.
    fn confirm(&mut self, sink: Option<&mut (dyn MessageSink + '_)>) {
        let Some(cur) = self.cur.as_mut() else {
            return;
        };
        if cur.index.is_some() {
            return;
        }
        let index = self.next_index;
        self.next_index += 1;
        cur.index = Some(index);
        let pending = std::mem::take(&mut cur.pending);
        let bytes = std::mem::take(&mut cur.pending_bytes);
        cur.pending_len = 0;
        for (seg, frame, len) in pending {
            self.attribute(seg, frame, len);
        }
        if let Some(s) = sink {
            if !bytes.is_empty() {
                s.message_data(index, &bytes);
            }
        }
    }

    /// `len` delivered bytes of segment `seg` belong to the current, confirmed message.
    fn attribute(&mut self, seg_id: u64, frame: u64, len: u64) {
        let Some(cur) = self.cur.as_mut() else {
            return;
        };
        let Some(idx) = cur.index else {
            return;
        };
        let first = cur.len == 0;
        if cur.last_seg != Some(seg_id) {
            cur.n_segs += 1;
            if cur.frames.len() < MAX_REFS && cur.frames.last() != Some(&frame) {
                cur.frames.push(frame);
            }
            cur.last_seg = Some(seg_id);
        }
        cur.len += len;
        cur.last_was_gap = false;
        let mut joins_other = false;
        let i = seg_id
            .checked_sub(self.seg_base)
            .and_then(|i| usize::try_from(i).ok());
        if let Some(s) = i.and_then(|i| self.segs.get_mut(i)) {
            if s.last_msg != Some(idx) {
                joins_other = s.n_msgs > 0;
                s.n_msgs += 1;
                if s.msgs.len() < MAX_REFS {
                    s.msgs.push((idx, first, false));
                }
                s.last_msg = Some(idx);
            }
            s.pending = s.pending.saturating_sub(len);
        }
        if joins_other {
            cur.coalesced = true;
        }
        if let Some((m, tseg)) = self.tail.as_mut() {
            if *tseg == seg_id {
                // The next message starts in the segment the previous one ended in.
                m.coalesced |= joins_other;
                if let Some((m, _)) = self.tail.take() {
                    self.emit_message(m);
                }
            }
        }
    }

    fn unframed_bytes(&mut self, seg_id: u64, len: u64) {
        if len == 0 {
            return;
        }
        self.unframed += len;
        let mut done = false;
        if let Some(s) = self.seg_mut(seg_id) {
            s.pending = s.pending.saturating_sub(len);
            done = s.pending == 0;
        }
        if done && self.tail.as_ref().is_some_and(|t| t.1 == seg_id) {
            if let Some((m, _)) = self.tail.take() {
                self.emit_message(m);
            }
        }
    }

    fn fail(
        &mut self,
        reason: String,
        frame: Option<u64>,
        sink: Option<&mut (dyn MessageSink + '_)>,
    ) {
        let at = match &self.cur {
            Some(c) if c.index.is_some() => c.start + c.len,
            Some(c) => c.start,
            None => 0,
        };
        let frame = match &self.cur {
            Some(c) if c.index.is_none() => c.pending.first().map(|p| p.1).or(frame),
            _ => frame,
        };
        self.fail_at(at, reason, frame, sink);
    }

    /// Framing broke at stream offset `at`: the message in progress ends incomplete (or,
    /// never confirmed, its bytes become unframed) and the rest of the direction is
    /// segments only.
    fn fail_at(
        &mut self,
        at: u64,
        reason: String,
        frame: Option<u64>,
        sink: Option<&mut (dyn MessageSink + '_)>,
    ) {
        if self.error.is_none() {
            self.error = Some(FramingError {
                offset: at,
                frame,
                reason,
            });
        }
        self.mode = Mode::Off;
        if let Some(cur) = self.cur.as_mut() {
            if cur.index.is_some() {
                self.end_message(false, sink);
            } else {
                let pending = std::mem::take(&mut cur.pending);
                self.cur = None;
                for (seg, _, len) in pending {
                    self.unframed_bytes(seg, len);
                }
            }
        }
    }

    fn end_message(&mut self, complete: bool, sink: Option<&mut (dyn MessageSink + '_)>) {
        let Some(cur) = self.cur.take() else {
            return;
        };
        let Some(index) = cur.index else {
            return;
        };
        let info = match &mut self.mode {
            Mode::Framing(f) => f.take_info(),
            _ => None,
        };
        if let Some(seg) = cur.last_seg {
            if complete && !cur.last_was_gap {
                if let Some(s) = self.seg_mut(seg) {
                    if let Some(e) = s.msgs.iter_mut().rev().find(|e| e.0 == index) {
                        e.2 = true;
                    }
                }
            }
        }
        if let Some(s) = sink {
            s.message_end(index);
        }
        let entry = MessageEntry {
            index,
            offset: cur.start,
            len: cur.len,
            segments: cur.frames,
            segments_total: if cur.n_segs as usize > MAX_REFS {
                cur.n_segs
            } else {
                0
            },
            split: cur.n_segs >= 2,
            coalesced: cur.coalesced,
            complete,
            gap_bytes: cur.gap_bytes,
            info,
        };
        // An earlier message still waiting would be resolved by now unless this one never
        // touched its segment (it began in a gap): its flags are final either way.
        if let Some((m, _)) = self.tail.take() {
            self.emit_message(m);
        }
        let waits = cur
            .last_seg
            .and_then(|s| self.seg_mut(s).map(|x| x.pending > 0).map(|w| (w, s)));
        match waits {
            Some((true, seg)) => self.tail = Some((entry, seg)),
            _ => self.emit_message(entry),
        }
    }

    fn emit_message(&mut self, m: MessageEntry) {
        let s = &mut self.stats;
        let n_segs = if m.segments_total > 0 {
            m.segments_total
        } else {
            m.segments.len() as u64
        };
        if m.complete {
            s.messages += 1;
            s.split_messages += u64::from(m.split);
            s.coalesced_messages += u64::from(m.coalesced);
            s.max_segments_per_message = s.max_segments_per_message.max(n_segs);
        } else {
            s.incomplete_messages += 1;
        }
        if self.messages.len() < self.cap {
            self.messages.push(m);
        }
    }

    /// Moves final segment entries (front of the capture-order queue) to the list.
    fn emit_segments(&mut self) {
        let held = self.cur.as_ref().and_then(|c| c.last_seg);
        while let Some(front) = self.segs.front() {
            if front.pending > 0 || held == Some(self.seg_base) {
                break;
            }
            let Some(s) = self.segs.pop_front() else {
                break;
            };
            self.seg_base += 1;
            self.finish_segment(s);
        }
    }

    fn finish_segment(&mut self, s: SegState) {
        let st = &mut self.stats;
        st.segments += 1;
        if s.n_msgs >= 2 {
            st.coalescing_segments += 1;
        }
        st.max_messages_per_segment = st.max_messages_per_segment.max(s.n_msgs);
        if self.segments.len() >= self.cap {
            return;
        }
        let f = s.facts;
        let head = SegmentHead {
            frame: f.frame,
            offset: f.offset,
            len: f.len,
            messages_total: if s.n_msgs as usize > s.msgs.len() {
                s.n_msgs
            } else {
                0
            },
            coalescing: s.n_msgs >= 2,
            oversized: f.oversized,
            new_bytes: (f.new_bytes < f.len).then_some(f.new_bytes),
            captured: f.captured,
            out_of_order: f.buffered,
        };
        match &mut self.segments {
            SegmentList::Packed(p) => p.push(&head, &s.msgs),
            SegmentList::Entries(v) => v.push(SegmentEntry {
                frame: head.frame,
                offset: head.offset,
                len: head.len,
                messages: s.msgs.iter().map(|m| m.0).collect(),
                parts: s.msgs.iter().map(|m| MessagePart::of(m.1, m.2)).collect(),
                messages_total: head.messages_total,
                coalescing: head.coalescing,
                oversized: head.oversized,
                new_bytes: head.new_bytes,
                captured: head.captured,
                out_of_order: head.out_of_order,
            }),
        }
    }
}

#[cfg(test)]
mod tests;
