//! Reassembly of one TCP connection: [`Conn`] holds its two directions ([`Half`]), each
//! with its delivery point, out-of-order buffer, history window and message mapper.
//!
//! Invariants (see the parent module for the offsets): every offset below `Half::next` is
//! delivered or a recorded gap; bytes are delivered once, in order; out-of-order pieces
//! and history windows stay within the caps in [`StreamOptions`] and the shared budget
//! (`Cx::mem`).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::history::History;
use super::reread::{Files, Origin};
use super::seg::SegHead;
use super::{KeyedSink, StreamKey, StreamOptions, StreamSink, Totals, PIECE_COST};
use crate::analyze::messages::{MessageMapper, SegPack, SegmentFacts, SegmentList};
use crate::analyze::seq::SeqUnwrapper;
use crate::analyze::Dir;
use crate::report::endpoint_string;
use crate::report::streams::{
    ConflictEntry, FinEntry, GapEntry, GapTotals, ListsCut, ReassemblyStats, StreamEntry,
};

/// A buffered out-of-order piece: captured bytes, then `missing` bytes the capture cut.
pub(super) struct Piece {
    pub(super) seg: u64,
    pub(super) frame: u64,
    pub(super) data: Vec<u8>,
    pub(super) missing: u64,
}

impl Piece {
    pub(super) fn len(&self) -> u64 {
        self.data.len() as u64 + self.missing
    }
}

/// Reassembly state of one direction.
pub(super) struct Half {
    pub(super) unwrap: Option<SeqUnwrapper>,
    pub(super) isn: Option<u32>,
    pub(super) syn_frame: Option<u64>,
    pub(super) fin: Option<FinEntry>,
    pub(super) rst_frame: Option<u64>,
    pub(super) first_frame: u64,
    pub(super) last_frame: u64,
    /// Delivery point: every offset below it is delivered or a recorded gap.
    pub(super) next: u64,
    /// End of the highest byte seen.
    pub(super) highest: u64,
    /// The next offset the peer acknowledged.
    pub(super) acked: Option<u64>,
    pub(super) ooo: BTreeMap<u64, Piece>,
    pub(super) ooo_bytes: usize,
    /// `ooo_bytes` plus [`PIECE_COST`] per piece: what the caps count.
    pub(super) ooo_cost: usize,
    pub(super) hist: History,
    /// No (more) growth of the history window: the budget refused it, or the direction
    /// ended.
    pub(super) hist_denied: bool,
    pub(super) last_delivered_frame: Option<u64>,
    pub(super) bytes: u64,
    pub(super) gaps: Vec<GapEntry>,
    pub(super) gaps_total: GapTotals,
    pub(super) oversized: u64,
    pub(super) re: ReassemblyStats,
    pub(super) conflicts: Vec<ConflictEntry>,
    /// Entries each of its lists keeps: `max_list`, or 0 (see `StreamAnalyzer::list_cap`).
    pub(super) list_cap: usize,
    pub(super) mapper: MessageMapper,
    /// Any payload seen (the direction gets an entry).
    pub(super) payload: bool,
}

/// One TCP connection.
pub(super) struct Conn {
    pub(super) orig: SocketAddr,
    pub(super) resp: SocketAddr,
    pub(super) v6: bool,
    /// MSS announced in each direction's SYN.
    pub(super) mss: [Option<u16>; 2],
    /// Out-of-order bytes buffered, both directions.
    pub(super) buffered: usize,
    pub(super) halves: [Half; 2],
}

/// What a direction's processing borrows from the analyzer.
pub(super) struct Cx<'a> {
    pub(super) opts: &'a StreamOptions,
    pub(super) mem: &'a mut usize,
    pub(super) sink: Option<&'a mut (dyn StreamSink + 'static)>,
    pub(super) key: StreamKey,
    pub(super) totals: &'a mut Totals,
    /// The files history windows read bytes back from.
    pub(super) files: &'a mut Files,
    /// Where the current packet's payload can be read again, if anywhere.
    pub(super) origin: Option<Origin<'a>>,
}

impl Conn {
    /// One TCP segment of direction `dir`.
    pub(super) fn segment(
        &mut self,
        dir: Dir,
        frame: u64,
        t: &SegHead,
        payload: &[u8],
        cx: &mut Cx<'_>,
    ) {
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
                self.mss[di] = t.mss;
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
            h.release_history(cx);
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
                payload,
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
            h.release_history(cx);
        }
    }
}

impl Half {
    /// A direction before its first segment; `list_cap`: see `StreamAnalyzer::list_cap`.
    pub(super) fn new(mapper: MessageMapper, list_cap: usize) -> Half {
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
            hist: History::default(),
            hist_denied: false,
            last_delivered_frame: None,
            bytes: 0,
            gaps: Vec::new(),
            gaps_total: GapTotals::default(),
            oversized: 0,
            re: ReassemblyStats::default(),
            conflicts: Vec::new(),
            list_cap,
            mapper,
            payload: false,
        }
    }

    /// Payload of one segment: `len` bytes on the wire at `offset`, `captured` of them in
    /// the capture.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn data(
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
                    .compare(start, &captured[..(cmp_end - start) as usize], cx.files)
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
    pub(super) fn place(
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
    pub(super) fn drain(&mut self, conn_buffered: &mut usize, cx: &mut Cx<'_>) {
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
    pub(super) fn deliver(
        &mut self,
        seg: u64,
        frame: u64,
        bytes: &[u8],
        missing: u64,
        cx: &mut Cx<'_>,
    ) {
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
            // A direction without a window (none yet, or refused) keeps nothing. Bytes
            // of the packet being read are kept as a file position when they can be.
            let from = cx.origin.and_then(|o| o.locate(bytes));
            self.hist.push(at, bytes, from, cx.files);
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
    pub(super) fn record_gap(&mut self, offset: u64, len: u64, reason: &str, cx: &mut Cx<'_>) {
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
        self.hist.clear_at(offset + len, cx.files);
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
    pub(super) fn release_history(&mut self, cx: &mut Cx<'_>) {
        // A released window keeps and compares nothing, and `hist_denied` keeps it from
        // growing again, so where it stands no longer matters.
        *cx.mem = cx.mem.saturating_sub(self.hist.release(cx.files));
        self.hist_denied = true;
    }

    /// Bytes of [a, b) that lie in recorded gaps.
    pub(super) fn gap_overlap(&self, a: u64, b: u64) -> u64 {
        let i = self.gaps.partition_point(|g| g.offset + g.len <= a);
        self.gaps[i..]
            .iter()
            .take_while(|g| g.offset < b)
            .map(|g| (g.offset + g.len).min(b) - g.offset.max(a))
            .sum()
    }

    /// The direction ends: buffered pieces are delivered across their holes (now lost),
    /// bytes the FIN or the peer's ACKs show were sent but never seen become gaps.
    pub(super) fn close(&mut self, cx: &mut Cx<'_>) {
        while let Some((&k, _)) = self.ooo.iter().next() {
            if k > self.next {
                self.record_gap(self.next, k - self.next, "lost", cx);
            }
            let mut dummy = 0usize;
            self.drain(&mut dummy, cx);
        }
        *cx.mem = cx.mem.saturating_sub(self.hist.release(cx.files));
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

    /// The segment list, if it was kept packed for the JSON report (see [`SegmentList`]);
    /// the entry built by [`entry`](Self::entry) then has an empty `segments` list.
    pub(super) fn take_packed_segments(&mut self) -> Option<SegPack> {
        match &mut self.mapper.segments {
            SegmentList::Packed(p) => Some(std::mem::take(p)),
            SegmentList::Entries(_) => None,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn entry(
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
            orig: endpoint_string(orig),
            resp: endpoint_string(resp),
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
            segments: match &mut m.segments {
                SegmentList::Entries(v) => std::mem::take(v),
                SegmentList::Packed(_) => Vec::new(),
            },
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
