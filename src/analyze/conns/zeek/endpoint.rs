//! One TCP endpoint's sequence space (`TCP_Endpoint`): its state, start sequence number,
//! last sequence and acknowledgment numbers with their wrap counts, and the conversion of
//! 32-bit sequence numbers to relative 64-bit ones.
//!
//! Zeek's rules for which sequence numbers to trust are kept: an outlandish SYN/RST
//! sequence number or a broken ack of 0 does not move the endpoint, nothing after a RST
//! does, and a partial connection is numbered as though its SYN had been seen.

use super::history::Scaled;
use super::reasm::Reasm;
use super::{EpState, ZeekTcp};
use crate::analyze::seq::delta as seq_delta;
use crate::dissect::TcpFlags;

const TOO_LARGE_SEQ_DELTA: i32 = 1_048_576;

/// One TCP endpoint (`TCP_Endpoint`).
#[derive(Debug, Clone)]
pub(super) struct Endpoint {
    pub(super) state: EpState,
    pub(super) prev_state: EpState,
    /// Holds a 32-bit value (Zeek's `int64_t start_seq` only ever gets one).
    pub(super) start_seq: i64,
    pub(super) last_seq: u32,
    pub(super) ack_seq: u32,
    pub(super) seq_wraps: u32,
    pub(super) ack_wraps: u32,
    pub(super) did_close: bool,
    pub(super) is_orig: bool,
    pub(super) fin_cnt: u32,
    pub(super) rst_cnt: u32,
    pub(super) fin_seq: u64,
    pub(super) hist_last_syn: u64,
    pub(super) hist_last_fin: u64,
    pub(super) hist_last_rst: u64,
    pub(super) rxmt: Scaled,
    pub(super) win0: Scaled,
    pub(super) gap: Scaled,
    pub(super) reasm: Reasm,
}

impl Endpoint {
    pub(super) fn new(is_orig: bool) -> Self {
        Endpoint {
            state: EpState::Inactive,
            prev_state: EpState::Inactive,
            start_seq: 0,
            last_seq: 0,
            ack_seq: 0,
            seq_wraps: 0,
            ack_wraps: 0,
            did_close: false,
            is_orig,
            fin_cnt: 0,
            rst_cnt: 0,
            fin_seq: 0,
            hist_last_syn: 0,
            hist_last_fin: 0,
            hist_last_rst: 0,
            rxmt: Scaled::default(),
            win0: Scaled::default(),
            gap: Scaled::default(),
            reasm: Reasm::default(),
        }
    }

    pub(super) fn set_state(&mut self, s: EpState) {
        if s != self.state {
            self.prev_state = self.state;
            self.state = s;
        }
    }

    pub(super) fn start_seq32(&self) -> u32 {
        self.start_seq as u32
    }

    pub(super) fn full(seq: u32, wraps: u32) -> u64 {
        (u64::from(wraps) << 32) + u64::from(seq)
    }

    pub(super) fn to_relative(&self, seq: u32, wraps: u32) -> u64 {
        Self::full(seq, wraps).wrapping_sub(self.start_seq as u64)
    }

    pub(super) fn init_seqs(&mut self, start: u32, last: u32) {
        self.start_seq = i64::from(start);
        self.ack_seq = start;
        self.last_seq = last;
    }

    fn update_last_seq_raw(&mut self, seq: u32) {
        if seq < self.last_seq {
            self.seq_wraps = self.seq_wraps.wrapping_add(1);
        }
        self.last_seq = seq;
    }

    fn update_ack_seq_raw(&mut self, seq: u32) {
        if seq < self.ack_seq {
            self.ack_wraps = self.ack_wraps.wrapping_add(1);
        }
        self.ack_seq = seq;
    }

    pub(super) fn no_data_acked(&self) -> bool {
        let ack = Self::full(self.ack_seq, self.ack_wraps);
        let start = self.start_seq as u64;
        ack == start || ack == start.wrapping_add(1)
    }

    pub(super) fn is_clean(&self) -> bool {
        self.state == EpState::Established
            || (self.state == EpState::Closed && self.prev_state == EpState::Established)
    }
}

impl ZeekTcp {
    pub(super) fn get_relative_seq(
        &self,
        e: usize,
        cur: u32,
        last: u32,
        wraps: u32,
        underflow: &mut bool,
    ) -> u64 {
        let d = seq_delta(cur, last);
        let mut wraps = wraps;
        if d < 0 {
            if wraps > 0 && cur > last {
                wraps -= 1;
            }
        } else if d > 0 && cur < last {
            wraps = wraps.wrapping_add(1);
        }
        if wraps == 0 {
            let d = seq_delta(cur, self.ep[e].start_seq32());
            if d < 0 {
                *underflow = true;
            }
            return i64::from(d) as u64;
        }
        self.ep[e].to_relative(cur, wraps)
    }

    pub(super) fn init_endpoint(
        &mut self,
        e: usize,
        flags: TcpFlags,
        first: u32,
        last: u32,
        ts: i64,
    ) {
        let _ = ts;
        let ep = &mut self.ep[e];
        match ep.state {
            EpState::Inactive => {
                if flags.syn() {
                    ep.init_seqs(first, last);
                } else {
                    // A partial connection: number as though a SYN had been seen, and do
                    // not let the first packet look like a retransmission.
                    ep.init_seqs(first.wrapping_sub(1), first);
                }
            }
            EpState::SynSent | EpState::SynAckSent => {
                if flags.syn() && first != ep.start_seq32() {
                    ep.init_seqs(first, last);
                }
            }
            EpState::Established | EpState::Partial => {
                if flags.syn() {
                    ep.init_seqs(first, last);
                }
            }
            EpState::Reset => {
                if flags.syn() && ep.prev_state == EpState::Inactive {
                    ep.init_seqs(first, last);
                }
            }
            EpState::Closed => {}
        }
    }

    pub(super) fn update_ack_seq(&mut self, e: usize, ack: u32) {
        let d = seq_delta(ack, self.ep[e].ack_seq);
        if ack == 0 && d > TOO_LARGE_SEQ_DELTA {
            // More likely a broken ack than a connection landing on 0.
        } else if d > 0 {
            self.ep[e].update_ack_seq_raw(ack);
        }
    }

    pub(super) fn update_last_seq(
        &mut self,
        e: usize,
        last: u32,
        flags: TcpFlags,
        len: u32,
    ) -> i32 {
        let ep = &self.ep[e];
        let d = seq_delta(last, ep.last_seq);
        if (flags.syn() || flags.rst())
            && !(-TOO_LARGE_SEQ_DELTA..=TOO_LARGE_SEQ_DELTA).contains(&d)
        {
            // Do not trust outlandish SYN/RST sequence numbers.
        } else if flags.fin() && ep.last_seq == ep.start_seq32().wrapping_add(1) {
            self.ep[e].update_last_seq_raw(last);
        } else if ep.state == EpState::Reset {
            // Nothing after a RST is trusted.
        } else if d > 0 {
            self.ep[e].update_last_seq_raw(last);
        } else if len > 0 {
            self.scaled(e, b'T');
        }
        d
    }
}
