//! A byte-range model of Zeek's `TCP_Reassembler`: which data each endpoint has seen,
//! delivered and had acknowledged, so content gaps (`missed_bytes`, the `G` letter) and
//! the moment a close is complete are found the way Zeek finds them.
//!
//! Only ranges are held, never payload, and at most [`MAX_BLOCKS`] of them per endpoint
//! (beyond it the two closest ranges merge and [`ZeekTcp::capped`] is set). As in Zeek,
//! an endpoint with too much unacknowledged data stops being modelled (`skip`).

use super::{Endpoint, EpState, ZeekTcp};

/// `tcp_max_above_hole_without_any_acks`.
const MAX_ABOVE_HOLE_WITHOUT_ACKS: u64 = 16_384;
/// `tcp_excessive_data_without_further_acks`.
const EXCESSIVE_DATA_WITHOUT_ACKS: u64 = 10 * 1024 * 1024;
/// Byte ranges the reassembler model keeps per endpoint; beyond it the two closest ranges
/// are merged (counted in [`ZeekTcp::capped`]), so hostile input cannot grow it.
pub const MAX_BLOCKS: usize = 64;

/// The byte ranges Zeek's `TCP_Reassembler` would hold for one endpoint (relative
/// sequence numbers, first data byte = 1), without the bytes.
#[derive(Debug, Clone)]
pub(super) struct Reasm {
    last_reassem: u64,
    trim: u64,
    /// Disjoint, sorted, merged ranges: delivered-but-unacknowledged and undelivered data.
    blocks: Vec<(u64, u64)>,
    skip: bool,
    did_eof: bool,
}

impl Default for Reasm {
    fn default() -> Self {
        Reasm {
            last_reassem: 1,
            trim: 1,
            blocks: Vec::new(),
            skip: false,
            did_eof: false,
        }
    }
}

impl Reasm {
    fn undelivered_bytes(&self) -> u64 {
        self.blocks
            .last()
            .map_or(0, |b| b.1.saturating_sub(self.last_reassem))
    }

    fn data_size(&self) -> u64 {
        self.blocks.iter().map(|b| b.1 - b.0).sum()
    }

    /// Inserts `[seq, upper)`, merging with what is there; returns true if ranges had to
    /// be merged because of the cap.
    fn insert(&mut self, seq: u64, upper: u64) -> bool {
        match self.blocks.last_mut() {
            // In-order data (nearly every segment): it starts inside or right at the end of
            // the last range, which blocks before it (strictly below that range) cannot
            // reach. Extending in place is what the merge below would do.
            Some(last) if last.0 <= seq && seq <= last.1 => {
                last.1 = last.1.max(upper);
                return false;
            }
            Some(last) if seq > last.1 => self.blocks.push((seq, upper)),
            None => self.blocks.push((seq, upper)),
            Some(_) => {
                let i = self.blocks.partition_point(|b| b.1 < seq);
                let mut j = i;
                let (mut lo, mut hi) = (seq, upper);
                while j < self.blocks.len() && self.blocks[j].0 <= hi {
                    lo = lo.min(self.blocks[j].0);
                    hi = hi.max(self.blocks[j].1);
                    j += 1;
                }
                self.blocks.splice(i..j, std::iter::once((lo, hi)));
            }
        }
        if self.blocks.len() > MAX_BLOCKS {
            // Merge the two ranges with the smallest hole between them.
            let mut best = 0;
            let mut best_hole = u64::MAX;
            for k in 0..self.blocks.len() - 1 {
                let hole = self.blocks[k + 1].0 - self.blocks[k].1;
                if hole < best_hole {
                    best_hole = hole;
                    best = k;
                }
            }
            let merged = (self.blocks[best].0, self.blocks[best + 1].1);
            self.blocks.splice(best..best + 2, std::iter::once(merged));
            return true;
        }
        false
    }

    /// `BlockInserted`: deliver from `last_reassem` through contiguous data.
    fn deliver(&mut self) {
        if let Some(b) = self
            .blocks
            .iter()
            .find(|b| b.0 <= self.last_reassem && self.last_reassem < b.1)
        {
            self.last_reassem = b.1;
        }
    }
}

impl ZeekTcp {
    fn gap(&mut self, e: usize, len: u64) {
        let p = e ^ 1;
        if self.ep[e].is_clean() && self.ep[p].is_clean() {
            self.scaled(e, b'G');
            // `content_gap` is only raised for cleanly established connections
            // (report_gaps_for_partial = F), and conn/main.zeek sums it.
            self.missed_bytes = self.missed_bytes.saturating_add(len);
        }
    }

    fn undelivered(&mut self, e: usize, up_to: u64) {
        if up_to <= 2 && self.is_partial {
            // The faked-up SYN octet of a partial connection, or a keep-alive.
            return;
        }
        if !self.ep[e].reasm.skip {
            let mut i = 0;
            while i < self.ep[e].reasm.blocks.len() {
                let (bseq, _) = self.ep[e].reasm.blocks[i];
                let last = self.ep[e].reasm.last_reassem;
                if bseq < last {
                    i += 1;
                    continue;
                }
                if bseq >= up_to {
                    break;
                }
                self.gap(e, bseq - last);
                self.ep[e].reasm.last_reassem = bseq;
                self.ep[e].reasm.deliver();
                i += 1;
            }
            let last = self.ep[e].reasm.last_reassem;
            if up_to > last {
                self.gap(e, up_to - last);
            }
        }
        if up_to > self.ep[e].reasm.last_reassem {
            self.ep[e].reasm.last_reassem = up_to;
        }
    }

    fn trim_to_seq(&mut self, e: usize, seq: u64) {
        if seq > self.ep[e].reasm.last_reassem {
            self.undelivered(e, seq);
        }
        let r = &mut self.ep[e].reasm;
        let k = r.blocks.partition_point(|b| b.1 <= seq);
        r.blocks.drain(..k);
        if let Some(first) = r.blocks.first_mut() {
            first.0 = first.0.max(seq);
            if first.0 == r.last_reassem {
                r.deliver();
            }
        }
        if seq > r.trim {
            r.trim = seq;
        }
    }

    pub(super) fn ack_received(&mut self, e: usize, seq: u64) {
        let mut seq = seq;
        let ep = &self.ep[e];
        if ep.fin_cnt > 0 && seq >= ep.fin_seq {
            seq = ep.fin_seq.wrapping_sub(1);
        }
        if seq <= ep.reasm.trim {
            return;
        }
        self.trim_to_seq(e, seq);
        self.check_eof(e);
    }

    pub(super) fn data_sent(&mut self, e: usize, seq: u64, len: u32) {
        if self.ep[e].reasm.skip {
            return;
        }
        let ep = &self.ep[e];
        let ack = ep.to_relative(ep.ack_seq, ep.ack_wraps);
        let mut seq = seq;
        let upper = seq.saturating_add(u64::from(len));
        if seq < ack {
            if upper <= ack {
                return;
            }
            seq = ack;
        }
        // NewBlock
        let r = &mut self.ep[e].reasm;
        if upper <= r.trim || upper <= seq {
            return;
        }
        let seq = seq.max(r.trim);
        if r.insert(seq, upper) {
            self.capped = true;
        }
        let r = &mut self.ep[e].reasm;
        r.deliver();
        let no_acks = self.ep[e].no_data_acked();
        let r = &mut self.ep[e].reasm;
        if (no_acks && r.undelivered_bytes() > MAX_ABOVE_HOLE_WITHOUT_ACKS)
            || r.data_size() > EXCESSIVE_DATA_WITHOUT_ACKS
        {
            r.blocks.clear();
            r.skip = true;
        }
    }

    fn data_pending(&self, e: usize) -> bool {
        let ep = &self.ep[e];
        if ep.reasm.skip {
            return false;
        }
        let delivered = (ep.start_seq as u64).wrapping_add(ep.reasm.last_reassem);
        let last = Endpoint::full(ep.last_seq, ep.seq_wraps);
        if last < delivered {
            return false;
        }
        if delivered != last.wrapping_sub(1) && delivered != last {
            return true;
        }
        ep.state != EpState::Reset && !self.ep[e ^ 1].reasm.blocks.is_empty()
    }

    pub(super) fn check_eof(&mut self, e: usize) {
        let ep = &self.ep[e];
        if !ep.reasm.did_eof
            && (ep.fin_cnt > 0 || matches!(ep.state, EpState::Closed | EpState::Reset))
            && !self.data_pending(e)
        {
            self.ep[e].reasm.did_eof = true;
            if self.close_deferred {
                let g = self.deferred_gen_event;
                self.connection_closed(e, g);
                self.close_deferred = false;
            }
        }
    }

    pub(super) fn connection_closed(&mut self, e: usize, gen_event: bool) {
        if self.data_pending(e) {
            self.close_deferred = true;
            if !self.deferred_gen_event {
                self.deferred_gen_event = gen_event;
            }
            return;
        }
        self.close_deferred = false;
        if self.ep[e].did_close {
            return;
        }
        self.ep[e].did_close = true;
        let p = e ^ 1;
        let complete = self.ep[e].state == EpState::Reset
            || self.ep[p].did_close
            || self.ep[p].state == EpState::Inactive;
        if complete {
            self.deferred_gen_event = false;
            if self.closed_at.is_none() {
                self.closed_at = Some(self.last_time);
            }
        }
    }
}
