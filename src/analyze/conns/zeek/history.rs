//! The `history` string: Zeek's letters for what each side did (S, H, A, D, F, R, I, Q,
//! T, W, G and `^` for a role flip; upper case = originator, lower case = responder).
//!
//! Most letters are added once per side (masks in `hist_seen`); S, H, F and R again when
//! their sequence number changes; T, W and G on a log scale (1st, 10th, 100th...). The
//! string is capped at [`MAX_HISTORY`] letters; the ones beyond are counted in
//! [`ZeekTcp::history_dropped`].

use super::{ZeekTcp, ORIG, RESP};
use crate::dissect::TcpFlags;

/// Longest history kept; Zeek's is unbounded, but only repeated F/R/S/H with changing
/// sequence numbers can make it long, and that is an attack, not a connection.
pub const MAX_HISTORY: usize = 64;

// History masks (TCP_Endpoint::HistoryMasks); the responder's are shifted left by 16.
const HIST_SYN_PKT: u32 = 0x1;
const HIST_FIN_PKT: u32 = 0x2;
const HIST_RST_PKT: u32 = 0x4;
const HIST_FIN_RST_PKT: u32 = 0x8;
const HIST_DATA_PKT: u32 = 0x10;
const HIST_ACK_PKT: u32 = 0x20;
const HIST_MULTI_FLAG_PKT: u32 = 0x40;

/// A history letter repeated on a log scale: the 1st, 10th, 100th, ... occurrence.
#[derive(Debug, Clone, Copy)]
pub(super) struct Scaled {
    cnt: u32,
    thresh: u32,
}

impl Default for Scaled {
    fn default() -> Self {
        Scaled { cnt: 0, thresh: 1 }
    }
}

impl Scaled {
    /// `Session::ScaledHistoryEntry` with base 10: true when a letter is due.
    fn hit(&mut self) -> bool {
        self.cnt = self.cnt.wrapping_add(1);
        if self.cnt == self.thresh {
            match self.thresh.checked_mul(10) {
                Some(t) => self.thresh = t,
                None => self.cnt = 0,
            }
            true
        } else {
            false
        }
    }
}

impl ZeekTcp {
    fn add_history(&mut self, code: u8) {
        if self.history.len() < MAX_HISTORY {
            self.history.push(code as char);
        } else {
            self.history_dropped = self.history_dropped.saturating_add(1);
        }
    }

    fn conn_check_history(&mut self, mask: u32, code: u8) -> bool {
        if self.hist_seen & mask == 0 {
            self.hist_seen |= mask;
            self.add_history(code);
            false
        } else {
            true
        }
    }

    /// `TCP_Endpoint::CheckHistory`, with its flip of SYN-ACK-first connections.
    fn ep_check_history(&mut self, e: usize, mask: u32, code: u8) -> bool {
        if (code == b'A' || code == b'D') && self.history == "H" {
            self.flip_roles();
            self.history.clear();
            self.history.push_str("^h");
            self.first_packet_seen |= ORIG;
        }
        if self.ep[e].is_orig {
            self.conn_check_history(mask, code)
        } else {
            self.conn_check_history(mask << 16, code.to_ascii_lowercase())
        }
    }

    fn ep_add_history(&mut self, e: usize, code: u8) {
        let c = if self.ep[e].is_orig {
            code
        } else {
            code.to_ascii_lowercase()
        };
        self.add_history(c);
    }

    pub(super) fn flip_roles(&mut self) {
        self.orig ^= 1;
        self.ep[0].is_orig = !self.ep[0].is_orig;
        self.ep[1].is_orig = !self.ep[1].is_orig;
        let f = self.first_packet_seen;
        self.first_packet_seen =
            (if f & ORIG != 0 { RESP } else { 0 }) | (if f & RESP != 0 { ORIG } else { 0 });
        self.is_partial = false;
        self.add_history(b'^');
        self.flips += 1;
    }

    pub(super) fn scaled(&mut self, e: usize, which: u8) {
        let hit = match which {
            b'T' => self.ep[e].rxmt.hit(),
            b'W' => self.ep[e].win0.hit(),
            _ => self.ep[e].gap.hit(),
        };
        if hit {
            self.ep_add_history(e, which);
        }
    }

    pub(super) fn update_history(&mut self, e: usize, flags: TcpFlags, rel_seq: u64, len: u32) {
        let bits = u32::from(flags.syn()) + u32::from(flags.fin()) + u32::from(flags.rst());
        if bits > 1 {
            if flags.fin() && flags.rst() {
                self.ep_check_history(e, HIST_FIN_RST_PKT, b'I');
            } else {
                self.ep_check_history(e, HIST_MULTI_FLAG_PKT, b'Q');
            }
        } else if bits == 1 {
            if flags.syn() {
                let code = if flags.ack() { b'H' } else { b'S' };
                if self.ep_check_history(e, HIST_SYN_PKT, code)
                    && rel_seq != self.ep[e].hist_last_syn
                {
                    self.ep_add_history(e, code);
                }
                self.ep[e].hist_last_syn = rel_seq;
            }
            if flags.fin() {
                // A FIN's sequence number comes after its data.
                let at = rel_seq.wrapping_add(u64::from(len));
                if self.ep_check_history(e, HIST_FIN_PKT, b'F') && at != self.ep[e].hist_last_fin {
                    self.ep_add_history(e, b'F');
                }
                self.ep[e].hist_last_fin = at;
            }
            if flags.rst() {
                if self.ep_check_history(e, HIST_RST_PKT, b'R')
                    && rel_seq != self.ep[e].hist_last_rst
                {
                    self.ep_add_history(e, b'R');
                }
                self.ep[e].hist_last_rst = rel_seq;
            }
        } else if len > 0 {
            self.ep_check_history(e, HIST_DATA_PKT, b'D');
        } else if flags.ack() {
            self.ep_check_history(e, HIST_ACK_PKT, b'A');
        }
    }
}
