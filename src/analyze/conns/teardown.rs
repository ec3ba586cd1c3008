//! How a TCP connection ended: the FIN/ACK/RST steps with their frames, and the kind
//! decided exactly by DESIGN.md's ordered rules (A = first side to send a FIN, B = the
//! other):
//!
//! 1. handshake refused, unanswered or never acknowledged → `none`;
//! 2. any RST → `rst`, initiator = sender of the first RST;
//! 3. both sides FINed: B's FIN does not acknowledge A's FIN → `simultaneous`; else any
//!    segment of B from A's FIN up to and including B's FIN that acknowledges A's FIN
//!    carries payload → `half-close`; else B acknowledged A's FIN before its own FIN →
//!    `fin-4way`; else `fin-3way`; initiator = A;
//! 4. only one side FINed → `fin-one-side`; 5. otherwise `open`.
//!
//! The facts those rules need are gathered as segments arrive, per endpoint slot, so the
//! decision at the end is O(1) and memory is fixed but for the step list
//! ([`MAX_STEPS`]). Also named: data sent after one's own FIN, a FIN followed by a RST
//! from the same side, and a RST answering the peer's FIN.

use crate::analyze::seq;

use super::handshake::StepRec;
use super::Pkt;

/// Teardown steps kept (FINs, their first ACKs, RSTs, FIN retransmissions).
pub const MAX_STEPS: usize = 16;

/// Why a step is listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    Fin,
    FinRetransmission,
    AckOfFin,
    Rst,
}

impl StepKind {
    pub fn name(self) -> &'static str {
        match self {
            StepKind::Fin => "fin",
            StepKind::FinRetransmission => "fin-retransmission",
            StepKind::AckOfFin => "ack-of-fin",
            StepKind::Rst => "rst",
        }
    }
}

/// Per slot: the closing facts of what this endpoint sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Side {
    /// First FIN, and the sequence number just past it.
    pub fin: Option<StepRec>,
    pub fin_next: u32,
    pub fin_retransmissions: u32,
    /// First segment of the peer that acknowledges this side's FIN.
    pub fin_acked: Option<StepRec>,
    pub rst: Option<StepRec>,
    pub rst_count: u32,
    /// Payload bytes sent at or beyond this side's own FIN (a protocol violation).
    pub data_after_fin: u64,
    /// This side sent a RST after its own FIN.
    pub fin_then_rst: bool,
    /// This side answered the peer's FIN with a RST (before FINing itself).
    pub rst_after_peer_fin: bool,
}

/// Teardown state of one connection.
#[derive(Debug, Clone, Default)]
pub struct Teardown {
    pub side: [Side; 2],
    /// Slot of the first FIN (A).
    pub first_fin: Option<u8>,
    /// Slot of the first RST.
    pub first_rst: Option<u8>,
    /// B acknowledged A's FIN with a segment before B's own FIN.
    pub b_acked_before_fin: bool,
    /// A segment of B, from A's FIN up to and including B's FIN, acknowledging A's FIN,
    /// carried payload.
    pub b_data_after_ack: bool,
    /// B's FIN acknowledges A's FIN (None until B FINs).
    pub b_fin_acks_a: Option<bool>,
    /// Payload bytes B sent after A's FIN (the half-close data).
    pub half_close_bytes: u64,
    pub steps: Vec<(StepKind, StepRec)>,
    pub steps_dropped: u32,
}

impl Teardown {
    fn push(&mut self, kind: StepKind, p: &Pkt) {
        if self.steps.len() < MAX_STEPS {
            self.steps.push((kind, StepRec::of(p)));
        } else {
            self.steps_dropped = self.steps_dropped.saturating_add(1);
        }
    }

    /// Sees one segment of the connection.
    pub fn on_segment(&mut self, p: &Pkt) {
        let s = p.slot;
        let o = s ^ 1;
        let f = p.flags;

        // Facts relative to A's FIN, for segments of B (rule 3).
        if let Some(a) = self.first_fin.map(usize::from) {
            if s != a {
                let acks_a = f.ack() && seq::ge(p.ack, self.side[a].fin_next);
                let b_first_fin = f.fin() && self.side[s].fin.is_none();
                if self.side[s].fin.is_none() || b_first_fin {
                    if p.len > 0 && !f.rst() {
                        self.half_close_bytes += u64::from(p.len);
                    }
                    if acks_a {
                        if p.len > 0 && !f.rst() {
                            self.b_data_after_ack = true;
                        }
                        if !b_first_fin {
                            self.b_acked_before_fin = true;
                        }
                    }
                }
                if b_first_fin {
                    self.b_fin_acks_a = Some(acks_a);
                }
            }
        }

        // The peer's FIN acknowledged by this segment.
        if self.side[o].fin.is_some()
            && self.side[o].fin_acked.is_none()
            && f.ack()
            && !f.rst()
            && seq::ge(p.ack, self.side[o].fin_next)
        {
            self.side[o].fin_acked = Some(StepRec::of(p));
            if !f.fin() {
                self.push(StepKind::AckOfFin, p);
            }
        }

        // Data beyond one's own FIN.
        if self.side[s].fin.is_some() && p.len > 0 && !f.rst() {
            let fin_seq = self.side[s].fin_next.wrapping_sub(1);
            if seq::ge(p.seq, fin_seq) && !f.fin() {
                self.side[s].data_after_fin += u64::from(p.len);
            }
        }

        if f.fin() && !f.syn() {
            let next = p.seq.wrapping_add(p.len).wrapping_add(1);
            match self.side[s].fin {
                None => {
                    self.side[s].fin = Some(StepRec::of(p));
                    self.side[s].fin_next = next;
                    if self.first_fin.is_none() {
                        self.first_fin = Some(s as u8);
                    }
                    self.push(StepKind::Fin, p);
                }
                Some(_) if next == self.side[s].fin_next => {
                    self.side[s].fin_retransmissions += 1;
                    self.push(StepKind::FinRetransmission, p);
                }
                Some(_) => {
                    // A FIN at another place in sequence space: list it, keep the first.
                    self.push(StepKind::Fin, p);
                }
            }
        }

        if f.rst() {
            let me = &mut self.side[s];
            me.rst_count += 1;
            if me.fin.is_some() {
                me.fin_then_rst = true;
            }
            let peer_fin = self.side[o].fin.is_some();
            let me = &mut self.side[s];
            if peer_fin && me.fin.is_none() {
                me.rst_after_peer_fin = true;
            }
            if me.rst.is_none() {
                me.rst = Some(StepRec::of(p));
            }
            if self.first_rst.is_none() {
                self.first_rst = Some(s as u8);
            }
            if self.side[s].rst_count <= 2 {
                self.push(StepKind::Rst, p);
            }
        }
    }

    /// The kind and initiator slot (None = null, Some(2) = both) by DESIGN's rules;
    /// `handshake_failed` = rule 1 applies.
    pub fn kind(&self, handshake_failed: bool) -> (&'static str, Option<u8>) {
        if handshake_failed {
            return ("none", None);
        }
        if let Some(r) = self.first_rst {
            return ("rst", Some(r));
        }
        let Some(a) = self.first_fin else {
            return ("open", None);
        };
        let b = (a ^ 1) as usize;
        if self.side[b].fin.is_none() {
            return ("fin-one-side", Some(a));
        }
        if self.b_fin_acks_a != Some(true) {
            ("simultaneous", Some(2))
        } else if self.b_data_after_ack {
            ("half-close", Some(a))
        } else if self.b_acked_before_fin {
            ("fin-4way", Some(a))
        } else {
            ("fin-3way", Some(a))
        }
    }

    /// Time from the first FIN to the last ACK that completes the close: the later of
    /// the first acknowledgements of each FIN (null while a FIN is unacknowledged).
    pub fn fin_to_last_ack_ns(&self) -> Option<i64> {
        let a = usize::from(self.first_fin?);
        let start = self.side[a].fin?.ts;
        let mut end = self.side[a].fin_acked?.ts;
        let b = a ^ 1;
        if self.side[b].fin.is_some() {
            end = end.max(self.side[b].fin_acked?.ts);
        }
        Some(end - start)
    }
}
