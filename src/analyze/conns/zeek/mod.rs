//! Zeek's view of a connection: `conn_state`, `history`, `orig_bytes`/`resp_bytes` and
//! `missed_bytes` computed the way Zeek computes them, so netlens's `connections` agree
//! with Zeek's `conn.log`.
//!
//! This is a port of the parts of Zeek (zeek/zeek, `src/packet_analysis/protocol/tcp/
//! TCPSessionAdapter.cc`, `src/analyzer/protocol/tcp/TCP_Endpoint.cc`,
//! `TCP_Reassembler.cc`, `src/Reassem.cc`, `src/session/Session.h`, `src/Conn.cc`,
//! `src/packet_analysis/protocol/udp/UDP.cc` and `scripts/base/protocols/conn/main.zeek`)
//! that decide those four fields: the endpoint state machine, relative sequence numbers
//! with wrap counting, the history letters with their once-only masks and log-scaled
//! repeats, the direction flips (`^`), and a byte-range model of the reassembler that
//! finds content gaps the way Zeek does (a gap is data the peer acknowledged but that was
//! never seen). Function names follow Zeek's so the two can be read side by side; where
//! Zeek passes a stale `is_orig` after a flip, so does this port, on purpose.
//!
//! Differences, by design: netlens never drops a packet for a bad checksum (Zeek's `-C`
//! behaviour, so no `C`/`c` letters), and payload is never kept: the reassembler model
//! holds byte ranges only, capped in number ([`MAX_BLOCKS`]).
//!
//! Endpoints live in two fixed slots (0 = the sender of the connection's first packet,
//! 1 = the other); `orig` names the slot that is currently the originator, so a flip
//! swaps roles without moving state, exactly as Zeek swaps its endpoint pointers.
//!
//! This module holds the connection ([`ZeekTcp`]) and its entry points (`process`,
//! `is_reuse`, `size`); the parts of the port live beside it: `endpoint` (one side's
//! sequence space), `history` (the history letters and role flips), `state` (the endpoint
//! state machine and `conn_state`), `reasm` (the reassembler model: gaps and closes) and
//! `udp` ([`ZeekUdp`]).

mod endpoint;
mod history;
mod reasm;
mod state;
mod udp;

use crate::dissect::TcpFlags;

use endpoint::Endpoint;
pub use history::MAX_HISTORY;
pub use reasm::MAX_BLOCKS;
pub use state::EpState;
pub use udp::ZeekUdp;

const ORIG: u8 = 1;
const RESP: u8 = 2;

/// A TCP segment as the model needs it.
#[derive(Debug, Clone, Copy)]
pub struct Seg {
    pub flags: TcpFlags,
    pub seq: u32,
    pub ack: u32,
    /// Payload length on the wire.
    pub len: u32,
    /// Payload bytes captured.
    pub caplen: u32,
    pub window: u16,
}

/// Zeek's state for one TCP connection.
#[derive(Debug, Clone)]
pub struct ZeekTcp {
    ep: [Endpoint; 2],
    /// The slot that is currently the originator.
    orig: usize,
    hist_seen: u32,
    history: String,
    is_partial: bool,
    first_packet_seen: u8,
    close_deferred: bool,
    deferred_gen_event: bool,
    last_time: i64,
    /// Content-gap bytes (Zeek's `missed_bytes`).
    pub missed_bytes: u64,
    /// Times the roles were flipped.
    pub flips: u32,
    /// Capture time when Zeek would have seen a complete close (its session is then
    /// removed `tcp_close_delay` later).
    pub closed_at: Option<i64>,
    /// The reassembler model had to merge ranges (beyond [`MAX_BLOCKS`]).
    pub capped: bool,
    /// History letters dropped beyond [`MAX_HISTORY`].
    pub history_dropped: u32,
}

/// Whether the first packet should make its receiver the originator (Zeek's
/// `TCPAnalyzer::WantConnection` port heuristic; `likely` = `likely_server_ports`).
pub fn tcp_flip_first(
    flags: TcpFlags,
    src_port: u16,
    dst_port: u16,
    likely: fn(u16) -> bool,
) -> bool {
    if flags.syn() && !flags.ack() {
        return false;
    }
    if likely(src_port) {
        if likely(dst_port) {
            !flags.syn() && src_port < dst_port
        } else {
            true
        }
    } else {
        false
    }
}

impl ZeekTcp {
    /// A new connection; `flip` = Zeek's port heuristic decided that the first packet's
    /// receiver is the originator.
    pub fn new(ts: i64, flip: bool) -> Self {
        let mut z = ZeekTcp {
            ep: [Endpoint::new(true), Endpoint::new(false)],
            orig: 0,
            hist_seen: 0,
            history: String::new(),
            is_partial: false,
            first_packet_seen: 0,
            close_deferred: false,
            deferred_gen_event: false,
            last_time: ts,
            missed_bytes: 0,
            flips: 0,
            closed_at: None,
            capped: false,
            history_dropped: 0,
        };
        if flip {
            z.flip_roles();
        }
        z
    }

    /// The slot that is currently the originator (0 = first packet's sender).
    pub fn orig_slot(&self) -> usize {
        self.orig
    }

    pub fn history(&self) -> &str {
        &self.history
    }

    pub fn state(&self, orig: bool) -> EpState {
        self.ep[if orig { self.orig } else { self.orig ^ 1 }].state
    }

    /// Either side closed (`TCPSessionAdapter::IsClosed`).
    pub fn is_closed(&self) -> bool {
        self.ep[0].did_close || self.ep[1].did_close
    }

    /// `TCPSessionAdapter::IsReuse`: does this SYN start a new connection on the tuple?
    /// `from` is the sender's slot. netlens keeps one deviation: a SYN without ACK from
    /// the responder while it has sent nothing yet is a simultaneous open, not a reuse.
    pub fn is_reuse(&self, from: usize, seg: &Seg) -> bool {
        let f = seg.flags;
        if !f.syn() {
            return false;
        }
        let o = self.orig;
        let r = o ^ 1;
        let conn_orig = if f.ack() {
            if self.ep[o].state != EpState::Inactive {
                return false;
            }
            r
        } else {
            o
        };
        if !self.is_closed() {
            if seg.seq == self.ep[conn_orig].start_seq32() {
                return false;
            }
            if !f.ack()
                && self.ep[conn_orig].state == EpState::SynAckSent
                && self.ep[r].state == EpState::Inactive
                && seg.seq == self.ep[r].start_seq32()
            {
                return false;
            }
            if !f.ack()
                && from == r
                && self.ep[r].state == EpState::Inactive
                && self.ep[o].state == EpState::SynSent
            {
                return false;
            }
        }
        true
    }

    /// `TCPSessionAdapter::Process` for one segment from slot `from` at time `ts`.
    pub fn process(&mut self, from: usize, seg: &Seg, ts: i64) {
        let flags = seg.flags;
        let e = from;
        let p = e ^ 1;
        let is_orig = self.ep[e].is_orig;
        let base_seq = seg.seq;
        let ack_seq = seg.ack;
        let len = seg.len;

        self.set_partial_status(flags, is_orig);

        let mut seg_len = len;
        if flags.syn() {
            seg_len = seg_len.wrapping_add(1);
        }
        if flags.fin() {
            seg_len = seg_len.wrapping_add(1);
        }
        if flags.rst() {
            seg_len = seg_len.wrapping_sub(len);
        }
        let past = base_seq.wrapping_add(seg_len);

        self.init_endpoint(e, flags, base_seq, past, ts);

        let mut seq_underflow = false;
        let (last, wraps) = (self.ep[e].last_seq, self.ep[e].seq_wraps);
        let rel_seq = self.get_relative_seq(e, base_seq, last, wraps, &mut seq_underflow);

        self.update_history(e, flags, rel_seq, len);

        // update_window: only the zero-window letter matters here.
        if seg.window == 0
            && !flags.rst()
            && self.ep[p].state != EpState::Closed
            && self.ep[e].state != EpState::Reset
        {
            self.scaled(e, b'W');
        }

        if !self.ep[0].did_close || !self.ep[1].did_close {
            self.last_time = ts;
        }

        if flags.fin() {
            self.ep[e].fin_cnt = self.ep[e].fin_cnt.saturating_add(1);
            self.ep[e].fin_seq = rel_seq.wrapping_add(u64::from(seg_len));
        }
        if flags.rst() {
            self.ep[e].rst_cnt = self.ep[e].rst_cnt.saturating_add(1);
        }

        let mut rel_ack = 0u64;
        if flags.ack() {
            if self.ep[p].state == EpState::Inactive {
                rel_ack = 1;
                let a = ack_seq.wrapping_sub(1);
                self.ep[p].init_seqs(a, a);
            } else {
                let mut under = false;
                let (a, w) = (self.ep[p].ack_seq, self.ep[p].ack_wraps);
                rel_ack = self.get_relative_seq(p, ack_seq, a, w, &mut under);
                if under {
                    rel_ack = 0;
                } else if !flags.rst() {
                    self.update_ack_seq(p, ack_seq);
                }
            }
        }

        self.update_last_seq(e, past, flags, len);

        let mut do_close = false;
        let mut gen_event = false;
        match self.ep[e].state {
            EpState::Inactive => self.update_inactive_state(
                e,
                base_seq,
                len,
                is_orig,
                flags,
                &mut do_close,
                &mut gen_event,
            ),
            EpState::SynSent | EpState::SynAckSent => {
                self.update_syn_sent_state(e, flags, &mut do_close, &mut gen_event)
            }
            EpState::Established | EpState::Partial => {
                self.update_established_state(e, flags, &mut do_close, &mut gen_event)
            }
            EpState::Closed => self.update_closed_state(e, flags, &mut do_close),
            EpState::Reset => {}
        }

        if flags.ack() {
            self.ack_received(p, rel_ack);
        }

        // CheckPIA_FirstPacket, with the is_orig of the packet's start (as Zeek does).
        self.first_packet_seen |= if is_orig { ORIG } else { RESP };

        let rel_data_seq = if flags.syn() {
            rel_seq.wrapping_add(1)
        } else {
            rel_seq
        };
        if len > 0 && !flags.rst() && !seq_underflow && seg.caplen >= len {
            // Zeek hands truncated payload to its packet children but not to the
            // reassembler, so a snap-length cut later shows as a content gap.
            self.data_sent(e, rel_data_seq, len);
        }
        self.check_eof(e);

        if do_close {
            self.connection_closed(e, gen_event);
        }
    }

    /// `Size()` of the originator (`orig == true`) or responder: Zeek's byte count from
    /// sequence space.
    pub fn size(&self, orig: bool) -> u64 {
        let e = if orig { self.orig } else { self.orig ^ 1 };
        let ep = &self.ep[e];
        let peer = &self.ep[e ^ 1];
        if ep.prev_state == EpState::SynSent
            && ep.state == EpState::Reset
            && peer.state == EpState::Inactive
            && !ep.no_data_acked()
        {
            return 0;
        }
        let last = Endpoint::full(ep.last_seq, ep.seq_wraps);
        let ack = Endpoint::full(ep.ack_seq, ep.ack_wraps);
        let start = ep.start_seq as u64;
        let mut size = if last > ack {
            last.wrapping_sub(start)
        } else {
            ack.wrapping_sub(start)
        };
        // Not the SYN octet (nor, below, the FIN's).
        size = size.saturating_sub(1);
        if ep.fin_cnt > 0 && size != 0 {
            size -= 1;
        }
        size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(flags: u16, seq: u32, ack: u32, len: u32) -> Seg {
        Seg {
            flags: TcpFlags(flags),
            seq,
            ack,
            len,
            caplen: len,
            window: 512,
        }
    }
    const S: u16 = TcpFlags::SYN;
    const A: u16 = TcpFlags::ACK;
    const F: u16 = TcpFlags::FIN;
    const R: u16 = TcpFlags::RST;
    const P: u16 = TcpFlags::PSH;

    #[test]
    fn graceful_close_is_sf() {
        let mut z = ZeekTcp::new(0, false);
        z.process(0, &seg(S, 100, 0, 0), 1);
        z.process(1, &seg(S | A, 500, 101, 0), 2);
        z.process(0, &seg(A, 101, 501, 0), 3);
        z.process(0, &seg(A | P, 101, 501, 10), 4);
        z.process(1, &seg(A, 501, 111, 0), 5);
        z.process(1, &seg(A | P, 501, 111, 20), 6);
        z.process(0, &seg(A | F, 111, 521, 0), 7);
        z.process(1, &seg(A | F, 521, 112, 0), 8);
        z.process(0, &seg(A, 112, 522, 0), 9);
        assert_eq!(z.history(), "ShADadFf");
        assert_eq!(z.conn_state(), "SF");
        assert_eq!((z.size(true), z.size(false)), (10, 20));
        assert!(z.closed_at.is_some());
    }

    #[test]
    fn refused_is_rej() {
        let mut z = ZeekTcp::new(0, false);
        z.process(0, &seg(S, 100, 0, 0), 1);
        z.process(1, &seg(R | A, 0, 101, 0), 2);
        assert_eq!(z.history(), "Sr");
        assert_eq!(z.conn_state(), "REJ");
    }

    #[test]
    fn syn_then_rst_is_rstos0_and_retransmitted_syn_adds_no_letter() {
        let mut z = ZeekTcp::new(0, false);
        z.process(0, &seg(S, 100, 0, 0), 1);
        z.process(0, &seg(S, 100, 0, 0), 2);
        assert_eq!(z.conn_state(), "S0");
        z.process(0, &seg(R, 101, 0, 0), 3);
        assert_eq!(z.history(), "SR");
        assert_eq!(z.conn_state(), "RSTOS0");
    }

    #[test]
    fn synack_first_then_ack_flips() {
        let mut z = ZeekTcp::new(0, false);
        z.process(0, &seg(S | A, 500, 101, 0), 1);
        assert_eq!(z.history(), "H");
        z.process(1, &seg(A, 101, 501, 0), 2);
        assert_eq!(z.history(), "^hA");
        assert_eq!(z.orig_slot(), 1);
    }

    #[test]
    fn lost_segment_acked_is_a_gap() {
        let mut z = ZeekTcp::new(0, false);
        z.process(0, &seg(S, 100, 0, 0), 1);
        z.process(1, &seg(S | A, 500, 101, 0), 2);
        z.process(0, &seg(A, 101, 501, 0), 3);
        z.process(0, &seg(A | P, 101, 501, 10), 4);
        // 111..121 never seen
        z.process(0, &seg(A | P, 121, 501, 10), 5);
        z.process(1, &seg(A, 501, 131, 0), 6);
        assert_eq!(z.missed_bytes, 10);
        assert_eq!(z.history(), "ShADaG");
    }
}
