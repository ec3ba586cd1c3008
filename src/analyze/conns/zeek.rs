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

use crate::analyze::seq::delta as seq_delta;
use crate::dissect::TcpFlags;

const ORIG: u8 = 1;
const RESP: u8 = 2;
const TOO_LARGE_SEQ_DELTA: i32 = 1_048_576;
/// `tcp_max_above_hole_without_any_acks`.
const MAX_ABOVE_HOLE_WITHOUT_ACKS: u64 = 16_384;
/// `tcp_excessive_data_without_further_acks`.
const EXCESSIVE_DATA_WITHOUT_ACKS: u64 = 10 * 1024 * 1024;
/// Byte ranges the reassembler model keeps per endpoint; beyond it the two closest ranges
/// are merged (counted in [`ZeekTcp::capped`]), so hostile input cannot grow it.
pub const MAX_BLOCKS: usize = 64;
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

/// A history letter repeated on a log scale: the 1st, 10th, 100th, ... occurrence.
#[derive(Debug, Clone, Copy)]
struct Scaled {
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

/// The byte ranges Zeek's `TCP_Reassembler` would hold for one endpoint (relative
/// sequence numbers, first data byte = 1), without the bytes.
#[derive(Debug, Clone)]
struct Reasm {
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
        let i = self.blocks.partition_point(|b| b.1 < seq);
        let mut j = i;
        let (mut lo, mut hi) = (seq, upper);
        while j < self.blocks.len() && self.blocks[j].0 <= hi {
            lo = lo.min(self.blocks[j].0);
            hi = hi.max(self.blocks[j].1);
            j += 1;
        }
        self.blocks.splice(i..j, std::iter::once((lo, hi)));
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

/// One TCP endpoint (`TCP_Endpoint`).
#[derive(Debug, Clone)]
struct Endpoint {
    state: EpState,
    prev_state: EpState,
    /// Holds a 32-bit value (Zeek's `int64_t start_seq` only ever gets one).
    start_seq: i64,
    last_seq: u32,
    ack_seq: u32,
    seq_wraps: u32,
    ack_wraps: u32,
    did_close: bool,
    is_orig: bool,
    fin_cnt: u32,
    rst_cnt: u32,
    fin_seq: u64,
    hist_last_syn: u64,
    hist_last_fin: u64,
    hist_last_rst: u64,
    rxmt: Scaled,
    win0: Scaled,
    gap: Scaled,
    reasm: Reasm,
}

impl Endpoint {
    fn new(is_orig: bool) -> Self {
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

    fn set_state(&mut self, s: EpState) {
        if s != self.state {
            self.prev_state = self.state;
            self.state = s;
        }
    }

    fn start_seq32(&self) -> u32 {
        self.start_seq as u32
    }

    fn full(seq: u32, wraps: u32) -> u64 {
        (u64::from(wraps) << 32) + u64::from(seq)
    }

    fn to_relative(&self, seq: u32, wraps: u32) -> u64 {
        Self::full(seq, wraps).wrapping_sub(self.start_seq as u64)
    }

    fn init_seqs(&mut self, start: u32, last: u32) {
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

    fn no_data_acked(&self) -> bool {
        let ack = Self::full(self.ack_seq, self.ack_wraps);
        let start = self.start_seq as u64;
        ack == start || ack == start.wrapping_add(1)
    }

    fn is_clean(&self) -> bool {
        self.state == EpState::Established
            || (self.state == EpState::Closed && self.prev_state == EpState::Established)
    }
}

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

    // ------------------------------------------------------------------ history

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

    fn flip_roles(&mut self) {
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

    fn scaled(&mut self, e: usize, which: u8) {
        let hit = match which {
            b'T' => self.ep[e].rxmt.hit(),
            b'W' => self.ep[e].win0.hit(),
            _ => self.ep[e].gap.hit(),
        };
        if hit {
            self.ep_add_history(e, which);
        }
    }

    fn update_history(&mut self, e: usize, flags: TcpFlags, rel_seq: u64, len: u32) {
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

    // ------------------------------------------------------------------ sequence space

    fn get_relative_seq(
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

    fn init_endpoint(&mut self, e: usize, flags: TcpFlags, first: u32, last: u32, ts: i64) {
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

    fn update_ack_seq(&mut self, e: usize, ack: u32) {
        let d = seq_delta(ack, self.ep[e].ack_seq);
        if ack == 0 && d > TOO_LARGE_SEQ_DELTA {
            // More likely a broken ack than a connection landing on 0.
        } else if d > 0 {
            self.ep[e].update_ack_seq_raw(ack);
        }
    }

    fn update_last_seq(&mut self, e: usize, last: u32, flags: TcpFlags, len: u32) -> i32 {
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

    // ------------------------------------------------------------------ state machine

    fn set_partial_status(&mut self, flags: TcpFlags, is_orig: bool) {
        if is_orig {
            if self.first_packet_seen & ORIG == 0 {
                self.is_partial = !flags.syn() || flags.ack();
            }
        } else if self.first_packet_seen & RESP == 0 && !self.is_partial {
            self.is_partial = !flags.syn();
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn update_inactive_state(
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

    fn update_syn_sent_state(
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

    fn update_established_state(
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

    fn update_closed_state(&mut self, e: usize, flags: TcpFlags, do_close: &mut bool) {
        let p = e ^ 1;
        if flags.rst() && self.ep[p].state != EpState::Closed {
            self.ep[e].set_state(EpState::Reset);
            if !self.ep[e].did_close {
                *do_close = true;
            }
        }
    }

    // ------------------------------------------------------------------ reassembler model

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

    fn ack_received(&mut self, e: usize, seq: u64) {
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

    fn data_sent(&mut self, e: usize, seq: u64, len: u32) {
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

    fn check_eof(&mut self, e: usize) {
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

    fn connection_closed(&mut self, e: usize, gen_event: bool) {
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

    // ------------------------------------------------------------------ entry points

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

/// Zeek's view of one UDP flow (`UDPAnalyzer`, `UDPSessionAdapter`).
#[derive(Debug, Clone)]
pub struct ZeekUdp {
    orig: usize,
    active: [bool; 2],
    bytes: [u64; 2],
    hist_seen: u32,
    history: String,
}

impl ZeekUdp {
    /// A new flow; `flip` = the first packet's source port is a likely server port and
    /// its destination port is not (`UDPAnalyzer::WantConnection`).
    pub fn new(flip: bool) -> Self {
        let mut z = ZeekUdp {
            orig: 0,
            active: [false; 2],
            bytes: [0; 2],
            hist_seen: 0,
            history: String::new(),
        };
        if flip {
            z.orig = 1;
            z.history.push('^');
        }
        z
    }

    pub fn orig_slot(&self) -> usize {
        self.orig
    }

    pub fn history(&self) -> &str {
        &self.history
    }

    /// One datagram from slot `from`; `ulen` = the UDP header's length field.
    pub fn process(&mut self, from: usize, ulen: u16) {
        let is_orig = from == self.orig;
        let (mask, code) = if is_orig { (0x1, 'D') } else { (0x2, 'd') };
        if self.hist_seen & mask == 0 {
            self.hist_seen |= mask;
            self.history.push(code);
        }
        self.active[from] = true;
        self.bytes[from] = self.bytes[from].saturating_add(u64::from(ulen.saturating_sub(8)));
    }

    pub fn size(&self, orig: bool) -> u64 {
        self.bytes[if orig { self.orig } else { self.orig ^ 1 }]
    }

    pub fn conn_state(&self) -> &'static str {
        let o = self.active[self.orig];
        let r = self.active[self.orig ^ 1];
        match (o, r) {
            (true, true) => "SF",
            (true, false) => "S0",
            (false, true) => "SHR",
            (false, false) => "OTH",
        }
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

    #[test]
    fn udp_states() {
        let mut u = ZeekUdp::new(false);
        u.process(0, 20);
        assert_eq!((u.history(), u.conn_state()), ("D", "S0"));
        u.process(1, 30);
        u.process(1, 30);
        assert_eq!((u.history(), u.conn_state()), ("Dd", "SF"));
        assert_eq!((u.size(true), u.size(false)), (12, 44));
        let mut f = ZeekUdp::new(true);
        f.process(0, 40);
        assert_eq!((f.history(), f.conn_state()), ("^d", "SHR"));
    }
}
