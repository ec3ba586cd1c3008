//! The three-way handshake of one TCP connection attempt, as the textbook draws it:
//! SYN (seq = x), SYN-ACK (seq = y, ack = x+1), ACK (ack = y+1), with the arithmetic
//! checked, SYN retransmissions counted, the two RTT legs timed and the options each side
//! offered kept.
//!
//! Everything is recorded per endpoint *slot* (0 = sender of the connection's first
//! packet), not per role: Zeek's rules may flip the roles later (a SYN-ACK seen before its
//! SYN), so roles are applied only when the entry is built. The outcome is decided then
//! too, from what was seen, whatever the capture order. Memory per connection is fixed
//! apart from the step list, which is capped ([`MAX_STEPS`]).

use crate::analyze::seq;
use crate::dissect::{TcpFlags, TcpOptions};

use super::Pkt;

/// Handshake steps kept for the ladder; more SYN retransmissions are counted, not listed.
pub const MAX_STEPS: usize = 12;
/// SYN frames listed in `syn_frames`.
pub const MAX_SYN_FRAMES: usize = 16;

/// One segment of the handshake or teardown, as recorded.
#[derive(Debug, Clone, Copy)]
pub struct StepRec {
    pub frame: u64,
    pub ts: i64,
    pub slot: u8,
    pub flags: TcpFlags,
    pub seq: u32,
    pub ack: u32,
    pub len: u32,
}

impl StepRec {
    pub fn of(p: &Pkt) -> Self {
        StepRec {
            frame: p.frame,
            ts: p.ts,
            slot: p.slot as u8,
            flags: p.flags,
            seq: p.seq,
            ack: p.ack,
            len: p.len,
        }
    }
}

/// Per slot: what this endpoint sent during the handshake.
#[derive(Debug, Clone, Default)]
pub struct Side {
    /// First SYN without ACK.
    pub syn: Option<StepRec>,
    pub syn_count: u32,
    pub syn_frames: Vec<u64>,
    /// Time of the latest SYN (for the RTT to the SYN-ACK that answers it).
    pub last_syn_ts: Option<i64>,
    /// First SYN-ACK.
    pub synack: Option<StepRec>,
    pub synack_count: u32,
    /// Time of the peer's latest SYN when this side's first SYN-ACK was seen.
    pub synack_answers_ts: Option<i64>,
    /// First segment with ACK (no SYN) sent after the peer's SYN-ACK.
    pub ack_after_synack: Option<StepRec>,
    /// First such segment that acknowledges the SYN-ACK: ack = y+1, or beyond it but not
    /// beyond anything the peer sent (its own ACK may not have been captured).
    pub synack_acked: Option<StepRec>,
    /// One past the highest sequence number this side used (SYN and FIN count).
    pub max_end: Option<u32>,
    /// First RST sent before this side's peer completed the handshake.
    pub rst: Option<StepRec>,
    /// Options of the first SYN or SYN-ACK.
    pub options: Option<TcpOptions>,
    /// Payload carried on SYN or SYN-ACK segments.
    pub syn_payload: u64,
    /// Sent anything at all.
    pub active: bool,
}

/// Handshake state of one connection.
#[derive(Debug, Clone, Default)]
pub struct Handshake {
    pub side: [Side; 2],
    /// Handshake segments in capture order (for the ladder).
    pub steps: Vec<StepRec>,
    pub steps_dropped: u32,
    /// Set once a data segment or a completed handshake makes later segments irrelevant.
    pub settled: bool,
}

impl Handshake {
    fn push_step(&mut self, p: &Pkt) {
        if self.steps.len() < MAX_STEPS {
            self.steps.push(StepRec::of(p));
        } else {
            self.steps_dropped = self.steps_dropped.saturating_add(1);
        }
    }

    /// Sees one segment of the connection.
    pub fn on_segment(&mut self, p: &Pkt) {
        let s = p.slot;
        let o = s ^ 1;
        let f = p.flags;
        self.side[s].active = true;
        let end = p
            .seq
            .wrapping_add(if f.rst() { 0 } else { p.len })
            .wrapping_add(u32::from(f.syn()) + u32::from(f.fin()));
        let me = &mut self.side[s];
        if me.max_end.is_none_or(|m| seq::gt(end, m)) {
            me.max_end = Some(end);
        }
        if self.settled && !f.syn() {
            return;
        }
        if f.syn() {
            if p.len > 0 {
                self.side[s].syn_payload += u64::from(p.len);
            }
            if f.ack() {
                let peer_last_syn = self.side[o].last_syn_ts;
                let me = &mut self.side[s];
                me.synack_count += 1;
                if me.synack.is_none() {
                    me.synack = Some(StepRec::of(p));
                    me.synack_answers_ts = peer_last_syn;
                    if me.options.is_none() {
                        me.options = Some(p.options);
                    }
                }
            } else {
                let me = &mut self.side[s];
                me.syn_count += 1;
                me.last_syn_ts = Some(p.ts);
                if me.syn_frames.len() < MAX_SYN_FRAMES {
                    me.syn_frames.push(p.frame);
                }
                if me.syn.is_none() {
                    me.syn = Some(StepRec::of(p));
                    if me.options.is_none() {
                        me.options = Some(p.options);
                    }
                }
            }
            self.push_step(p);
            return;
        }
        if f.rst() {
            if self.side[s].rst.is_none() && self.side[o].synack_acked.is_none() {
                self.side[s].rst = Some(StepRec::of(p));
                self.push_step(p);
            }
            return;
        }
        if let (true, Some(sa)) = (f.ack(), self.side[o].synack) {
            let y1 = sa.seq.wrapping_add(1);
            let upto = self.side[o].max_end.unwrap_or(y1);
            let valid = p.ack == y1 || (seq::gt(p.ack, y1) && seq::le(p.ack, upto));
            let first = self.side[s].ack_after_synack.is_none();
            if first {
                self.side[s].ack_after_synack = Some(StepRec::of(p));
            }
            if valid && self.side[s].synack_acked.is_none() {
                self.side[s].synack_acked = Some(StepRec::of(p));
                self.settled = true;
            }
            if first || valid {
                self.push_step(p);
                return;
            }
        }
        if p.len > 0 && self.side[0].synack.is_none() && self.side[1].synack.is_none() {
            // Data flows without a SYN-ACK waiting for its ACK: the handshake is over.
            self.settled = true;
        }
    }

    /// The outcome with `orig` as the originator's slot (DESIGN's names).
    pub fn outcome(&self, orig: usize) -> &'static str {
        let (o, r) = (&self.side[orig], &self.side[orig ^ 1]);
        if o.syn.is_some() && r.syn.is_some() {
            "simultaneous-open"
        } else if o.syn.is_some() {
            if r.synack.is_some() {
                if o.synack_acked.is_some() {
                    "complete"
                } else {
                    "synack-no-ack"
                }
            } else if r.rst.is_some() {
                "refused"
            } else {
                "no-answer"
            }
        } else {
            "midstream"
        }
    }
}
