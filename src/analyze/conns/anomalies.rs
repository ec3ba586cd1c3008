//! Per-connection TCP anomalies counted by bytes, never by timing, so the counts do not
//! depend on when or how fast the capture is read (DESIGN.md):
//!
//! - `retransmissions`: segments all of whose payload bytes were already seen in that
//!   direction (spurious ones included);
//! - `out_of_order`: segments bringing new bytes below the highest sequence already seen
//!   (they fill a hole);
//! - `dup_acks`: as Wireshark counts them: no payload, same ACK and same (non-zero)
//!   window as the previous segment of that direction, sequence number at the next
//!   expected one, no SYN/FIN/RST, and data of the peer outstanding;
//! - `zero_window`, `keep_alives` (Wireshark's rule: at most one byte, one below the next
//!   expected sequence number, no SYN/FIN/RST);
//! - `lost_segments`: holes opened (a segment starting beyond the next expected byte);
//! - `missed_bytes`: bytes never seen at all: holes never filled, plus data the peer
//!   acknowledged beyond the last byte seen.
//!
//! Each direction keeps the highest sequence seen and the list of unfilled holes below
//! it (normally empty; capped at [`MAX_HOLES`], the smallest hole is forgotten beyond).

use crate::analyze::seq::Unwrapper;

use super::Pkt;

/// Unfilled holes remembered per direction.
pub const MAX_HOLES: usize = 32;

/// Sequence facts of one direction.
#[derive(Debug, Clone, Default)]
pub struct Dir {
    unw: Unwrapper,
    /// One past the highest data byte (or FIN) seen, as an offset.
    max_end: i64,
    /// Unfilled holes below `max_end`, sorted, disjoint.
    holes: Vec<(i64, i64)>,
    /// The peer's highest acknowledgement, as an offset in this direction.
    peer_ack: Option<i64>,
    last_ack: Option<u32>,
    last_window: u16,
    /// This direction sent payload or SYN/FIN (so `max_end` means something).
    has_seq: bool,
}

/// Anomaly counters of one connection, per slot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub retransmissions: u64,
    pub retransmitted_bytes: u64,
    pub out_of_order: u64,
    pub dup_acks: u64,
    pub zero_window: u64,
    pub keep_alives: u64,
    pub lost_segments: u64,
}

/// Anomaly state of one connection.
#[derive(Debug, Clone, Default)]
pub struct Anomalies {
    pub dir: [Dir; 2],
    pub counts: [Counts; 2],
    /// Holes were forgotten because of [`MAX_HOLES`].
    pub capped: bool,
}

impl Dir {
    fn init(&mut self, base: u32) {
        if !self.unw.is_init() {
            self.unw = Unwrapper::new(base);
        }
    }

    /// Marks `[s, e)` seen; returns the number of bytes that were in holes.
    fn fill(&mut self, s: i64, e: i64) -> i64 {
        let mut filled = 0;
        let mut i = 0;
        while i < self.holes.len() {
            let (hs, he) = self.holes[i];
            if he <= s {
                i += 1;
                continue;
            }
            if hs >= e {
                break;
            }
            let (os, oe) = (hs.max(s), he.min(e));
            filled += oe - os;
            match (hs < os, oe < he) {
                (false, false) => {
                    self.holes.remove(i);
                }
                (true, false) => {
                    self.holes[i].1 = os;
                    i += 1;
                }
                (false, true) => {
                    self.holes[i].0 = oe;
                    i += 1;
                }
                (true, true) => {
                    self.holes[i].1 = os;
                    self.holes.insert(i + 1, (oe, he));
                    i += 2;
                }
            }
        }
        filled
    }

    /// Forgets the smallest hole beyond [`MAX_HOLES`]; true if it did.
    fn cap_holes(&mut self) -> bool {
        if self.holes.len() <= MAX_HOLES {
            return false;
        }
        let k = (0..self.holes.len())
            .min_by_key(|&k| self.holes[k].1 - self.holes[k].0)
            .unwrap_or(0);
        self.holes.remove(k);
        true
    }

    /// Bytes never seen, given everything up to now.
    pub fn missed(&self) -> u64 {
        let holes: i64 = self.holes.iter().map(|h| h.1 - h.0).sum();
        let tail = match self.peer_ack {
            Some(a) if self.has_seq && a > self.max_end => a - self.max_end,
            _ => 0,
        };
        (holes + tail).max(0) as u64
    }
}

impl Anomalies {
    /// Sees one segment of the connection.
    pub fn on_segment(&mut self, p: &Pkt) {
        let s = p.slot;
        let o = s ^ 1;
        let f = p.flags;
        let control = f.syn() || f.fin() || f.rst();

        // Where this segment's data starts, as an offset of this direction.
        let data_seq = if f.syn() {
            p.seq.wrapping_add(1)
        } else {
            p.seq
        };
        self.dir[s].init(data_seq);
        let start = self.dir[s].unw.offset(data_seq);
        let len = if f.rst() { 0 } else { i64::from(p.len) };
        let end = start + len;

        if p.window == 0 && !control {
            self.counts[s].zero_window += 1;
        }

        if !self.dir[s].has_seq {
            // The first segment of this direction tells where its next byte is.
            self.dir[s].max_end = start;
            self.dir[s].has_seq = true;
        }
        let d = &self.dir[s];
        let next = d.max_end;
        let keep_alive = len <= 1 && !control && start == next - 1;

        // Duplicate ACK (judged before this segment updates the direction's state).
        if len == 0
            && !control
            && f.ack()
            && p.window != 0
            && d.last_ack == Some(p.ack)
            && d.last_window == p.window
            && start == next
        {
            let peer = &self.dir[o];
            let outstanding = peer.has_seq && peer.max_end > peer.unw.peek(p.ack);
            if outstanding {
                self.counts[s].dup_acks += 1;
            }
        }

        if keep_alive {
            self.counts[s].keep_alives += 1;
        } else if len > 0 {
            let d = &mut self.dir[s];
            if start >= d.max_end {
                if start > d.max_end {
                    d.holes.push((d.max_end, start));
                    self.counts[s].lost_segments += 1;
                    self.capped |= d.cap_holes();
                }
                d.max_end = end;
            } else {
                let filled = d.fill(start, end.min(d.max_end));
                let old_top = d.max_end;
                if end > d.max_end {
                    d.max_end = end;
                }
                if filled > 0 {
                    self.counts[s].out_of_order += 1;
                } else if end <= old_top {
                    self.counts[s].retransmissions += 1;
                    self.counts[s].retransmitted_bytes += len as u64;
                }
            }
        }
        if f.fin() {
            // A FIN occupies one sequence number after its data.
            let d = &mut self.dir[s];
            if end > d.max_end {
                d.holes.push((d.max_end, end));
                self.counts[s].lost_segments += 1;
                self.capped |= d.cap_holes();
            }
            if end + 1 > d.max_end {
                d.max_end = end + 1;
            }
        }

        let d = &mut self.dir[s];
        d.last_window = p.window;
        if f.ack() {
            d.last_ack = Some(p.ack);
            // The acknowledgement, placed in the peer's sequence space.
            let peer = &mut self.dir[o];
            peer.init(p.ack);
            if !f.rst() {
                let a = peer.unw.peek(p.ack);
                if peer.peer_ack.is_none_or(|x| a > x) {
                    peer.peer_ack = Some(a);
                }
            }
        }
    }

    /// Totals over both directions.
    pub fn total(&self) -> Counts {
        let (a, b) = (&self.counts[0], &self.counts[1]);
        Counts {
            retransmissions: a.retransmissions + b.retransmissions,
            retransmitted_bytes: a.retransmitted_bytes + b.retransmitted_bytes,
            out_of_order: a.out_of_order + b.out_of_order,
            dup_acks: a.dup_acks + b.dup_acks,
            zero_window: a.zero_window + b.zero_window,
            keep_alives: a.keep_alives + b.keep_alives,
            lost_segments: a.lost_segments + b.lost_segments,
        }
    }

    pub fn missed_bytes(&self) -> u64 {
        self.dir[0].missed() + self.dir[1].missed()
    }
}
