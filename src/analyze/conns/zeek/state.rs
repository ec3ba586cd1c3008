//! The endpoint state machine (`TCPSessionAdapter::Update*State`) and the `conn_state`
//! that `base/protocols/conn/main.zeek` derives from the two endpoints' final states.
//!
//! Each endpoint moves through [`EpState`] as its own flags arrive; the state it is in
//! when a segment arrives picks the update. A SYN/SYN-ACK pair captured in the wrong
//! order flips the roles here, exactly where Zeek does.

use super::{ZeekTcp, ORIG, RESP};
use crate::dissect::TcpFlags;

/// Zeek's `EndpointState` (the numbering of `TCP_ENDPOINT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpState {
    Inactive,
    SynSent,
    SynAckSent,
    Partial,
    Established,
    Closed,
    Reset,
}

impl EpState {
    /// RFC 793-style name used in the report.
    pub fn name(self) -> &'static str {
        match self {
            EpState::Inactive => "INACTIVE",
            EpState::SynSent => "SYN_SENT",
            EpState::SynAckSent => "SYN_ACK_SENT",
            EpState::Partial => "PARTIAL",
            EpState::Established => "ESTABLISHED",
            EpState::Closed => "CLOSED",
            EpState::Reset => "RESET",
        }
    }
}

impl ZeekTcp {
    pub(super) fn set_partial_status(&mut self, flags: TcpFlags, is_orig: bool) {
        if is_orig {
            if self.first_packet_seen & ORIG == 0 {
                self.is_partial = !flags.syn() || flags.ack();
            }
        } else if self.first_packet_seen & RESP == 0 && !self.is_partial {
            self.is_partial = !flags.syn();
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn update_inactive_state(
        &mut self,
        e: usize,
        base_seq: u32,
        len: u32,
        is_orig: bool,
        flags: TcpFlags,
        do_close: &mut bool,
        gen_event: &mut bool,
    ) {
        let p = e ^ 1;
        if flags.syn() {
            if is_orig {
                if flags.ack() {
                    self.ep[e].set_state(EpState::SynAckSent);
                } else {
                    self.ep[e].set_state(EpState::SynSent);
                }
            } else {
                if !flags.ack()
                    && self.ep[p].state == EpState::SynAckSent
                    && base_seq == self.ep[e].start_seq32()
                {
                    // SYN and SYN-ACK captured in the wrong order: flip and establish.
                    self.is_partial = false;
                    self.flip_roles();
                    self.ep[p].set_state(EpState::Established);
                    self.first_packet_seen |= ORIG;
                }
                if self.ep[p].state == EpState::SynSent {
                    self.ep[p].set_state(EpState::Established);
                }
                self.ep[e].set_state(EpState::Established);
            }
        }
        if flags.fin() {
            self.ep[e].set_state(EpState::Closed);
            *do_close = true;
            *gen_event = true;
        }
        if flags.rst() {
            self.ep[e].set_state(EpState::Reset);
            let is_reject = if is_orig {
                self.ep[p].state == EpState::Established
            } else {
                matches!(self.ep[p].state, EpState::SynSent | EpState::SynAckSent)
            };
            *do_close = true;
            *gen_event = !is_reject;
        }
        if self.ep[e].state == EpState::Inactive {
            let orig_state = self.ep[self.orig].state;
            if !is_orig && len == 0 && orig_state == EpState::SynSent {
                // An ACK of the SYN before the SYN-ACK: not a partial connection.
            } else if flags.ack() && self.ep[p].state == EpState::Established {
                self.ep[e].set_state(EpState::Established);
                self.is_partial = false;
                self.first_packet_seen |= if is_orig { ORIG } else { RESP };
            } else {
                self.ep[e].set_state(EpState::Partial);
            }
        }
    }

    pub(super) fn update_syn_sent_state(
        &mut self,
        e: usize,
        flags: TcpFlags,
        do_close: &mut bool,
        gen_event: &mut bool,
    ) {
        if flags.fin() {
            self.ep[e].set_state(EpState::Closed);
            *do_close = true;
            *gen_event = true;
        }
        if flags.rst() {
            self.ep[e].set_state(EpState::Reset);
            *do_close = true;
        }
    }

    pub(super) fn update_established_state(
        &mut self,
        e: usize,
        flags: TcpFlags,
        do_close: &mut bool,
        gen_event: &mut bool,
    ) {
        let p = e ^ 1;
        if flags.syn()
            && self.ep[e].state == EpState::Partial
            && self.ep[p].state == EpState::Inactive
            && !flags.ack()
        {
            self.ep[e].set_state(EpState::SynSent);
        }
        if flags.fin() && !flags.rst() {
            self.ep[e].set_state(EpState::Closed);
            if self.ep[p].state == EpState::Reset && self.ep[p].prev_state == EpState::Closed {
                // FIN followed by RST from the peer was a normal termination.
                self.ep[p].set_state(EpState::Closed);
            }
            *do_close = true;
            *gen_event = true;
        }
        if flags.rst() {
            self.ep[e].set_state(EpState::Reset);
            *do_close = true;
        }
    }

    pub(super) fn update_closed_state(&mut self, e: usize, flags: TcpFlags, do_close: &mut bool) {
        let p = e ^ 1;
        if flags.rst() && self.ep[p].state != EpState::Closed {
            self.ep[e].set_state(EpState::Reset);
            if !self.ep[e].did_close {
                *do_close = true;
            }
        }
    }

    /// `conn_state` as `base/protocols/conn/main.zeek` computes it.
    pub fn conn_state(&self) -> &'static str {
        use EpState::*;
        let os = self.ep[self.orig].state;
        let rs = self.ep[self.orig ^ 1].state;
        let o_inactive = matches!(os, Inactive | Partial);
        let r_inactive = matches!(rs, Inactive | Partial);
        if rs == Reset {
            if matches!(os, SynSent | SynAckSent)
                || (os == Reset && self.size(true) == 0 && self.size(false) == 0)
            {
                "REJ"
            } else if o_inactive {
                "RSTRH"
            } else {
                "RSTR"
            }
        } else if os == Reset {
            if r_inactive {
                if rstos0_pattern(&self.history) {
                    "RSTOS0"
                } else {
                    "OTH"
                }
            } else {
                "RSTO"
            }
        } else if rs == Closed && os == Closed {
            "SF"
        } else if os == Closed {
            if r_inactive {
                "SH"
            } else {
                "S2"
            }
        } else if rs == Closed {
            if o_inactive {
                "SHR"
            } else {
                "S3"
            }
        } else if os == SynSent && rs == Inactive {
            "S0"
        } else if os == Established && rs == Established {
            "S1"
        } else {
            "OTH"
        }
    }
}

/// `/\^?S[^HAFGIQ]*R.*/ == history` (an anchored match).
fn rstos0_pattern(h: &str) -> bool {
    let b = h.as_bytes();
    let b = b.strip_prefix(b"^").unwrap_or(b);
    let Some(rest) = b.strip_prefix(b"S") else {
        return false;
    };
    for &c in rest {
        match c {
            b'R' => return true,
            b'H' | b'A' | b'F' | b'G' | b'I' | b'Q' => return false,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rstos0_pattern_matches_zeek() {
        assert!(rstos0_pattern("SR"));
        assert!(rstos0_pattern("^SrR"));
        assert!(rstos0_pattern("SaR"));
        assert!(!rstos0_pattern("SaFR"));
        assert!(!rstos0_pattern("R"));
        // Only upper-case (originator) letters are excluded.
        assert!(rstos0_pattern("ShR"));
        assert!(!rstos0_pattern("SAR"));
    }
}
