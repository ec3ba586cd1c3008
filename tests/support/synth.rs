//! Synthetic captures made on the fly: a pcap byte stream produced record by record as it
//! is read ([`GenPcap`]), so a million-frame input costs the test no memory of its own and
//! a memory measurement sees netlens alone; Ethernet + IPv4 + TCP frames are built into a
//! reused buffer ([`tcp_frame`]), checksums filled in.

use std::io::{self, Read};
use std::net::Ipv4Addr;

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

/// One TCP segment's addressing and header fields.
#[derive(Debug, Clone, Copy)]
pub struct Seg {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src: (Ipv4Addr, u16),
    pub dst: (Ipv4Addr, u16),
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
}

impl Seg {
    /// The same connection seen from the other end (addresses swapped), with `seq`,
    /// `ack` and `flags` given.
    pub fn reply(&self, seq: u32, ack: u32, flags: u8) -> Seg {
        Seg {
            src_mac: self.dst_mac,
            dst_mac: self.src_mac,
            src: self.dst,
            dst: self.src,
            seq,
            ack,
            flags,
        }
    }
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn sum16(bytes: &[u8]) -> u32 {
    let mut s = 0u32;
    for c in bytes.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    s
}

/// Appends an Ethernet + IPv4 + TCP frame carrying `payload` to `out`.
pub fn tcp_frame(out: &mut Vec<u8>, s: &Seg, payload: &[u8]) {
    let start = out.len();
    out.extend_from_slice(&s.dst_mac);
    out.extend_from_slice(&s.src_mac);
    out.extend_from_slice(&[0x08, 0x00]);
    let ip = out.len();
    let total = (20 + 20 + payload.len()) as u16;
    out.extend_from_slice(&[0x45, 0]);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&[0, 1, 0x40, 0, 64, 6, 0, 0]);
    out.extend_from_slice(&s.src.0.octets());
    out.extend_from_slice(&s.dst.0.octets());
    let c = fold(sum16(&out[ip..ip + 20]));
    out[ip + 10..ip + 12].copy_from_slice(&c.to_be_bytes());
    let tcp = out.len();
    out.extend_from_slice(&s.src.1.to_be_bytes());
    out.extend_from_slice(&s.dst.1.to_be_bytes());
    out.extend_from_slice(&s.seq.to_be_bytes());
    out.extend_from_slice(&s.ack.to_be_bytes());
    out.extend_from_slice(&[0x50, s.flags, 0xff, 0xff, 0, 0, 0, 0]);
    out.extend_from_slice(payload);
    let tcp_len = (out.len() - tcp) as u32;
    let pseudo = sum16(&s.src.0.octets()) + sum16(&s.dst.0.octets()) + 6 + tcp_len;
    let c = fold(pseudo + sum16(&out[tcp..]));
    out[tcp + 16..tcp + 18].copy_from_slice(&c.to_be_bytes());
    debug_assert_eq!(out.len() - start, 54 + payload.len());
}

/// A nanosecond pcap (Ethernet) whose records come from `next(i, frame)`: it writes frame
/// `i` (from 0) into the empty `frame` and returns its timestamp in ns, or `None` at the
/// end. Nothing is held but the current record.
pub struct GenPcap<F> {
    next: F,
    i: u64,
    buf: Vec<u8>,
    frame: Vec<u8>,
    pos: usize,
    ended: bool,
}

impl<F: FnMut(u64, &mut Vec<u8>) -> Option<i64>> GenPcap<F> {
    pub fn new(next: F) -> Self {
        let mut buf = Vec::with_capacity(1 << 16);
        buf.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
        buf.extend_from_slice(&2u16.to_le_bytes());
        buf.extend_from_slice(&4u16.to_le_bytes());
        buf.extend_from_slice(&[0; 8]);
        buf.extend_from_slice(&65_535u32.to_le_bytes());
        buf.extend_from_slice(&1u32.to_le_bytes());
        GenPcap {
            next,
            i: 0,
            buf,
            frame: Vec::with_capacity(1 << 16),
            pos: 0,
            ended: false,
        }
    }

    fn refill(&mut self) -> bool {
        self.buf.clear();
        self.pos = 0;
        self.frame.clear();
        let Some(ts) = (self.next)(self.i, &mut self.frame) else {
            self.ended = true;
            return false;
        };
        self.i += 1;
        let len = self.frame.len() as u32;
        self.buf
            .extend_from_slice(&(ts.div_euclid(1_000_000_000) as u32).to_le_bytes());
        self.buf
            .extend_from_slice(&(ts.rem_euclid(1_000_000_000) as u32).to_le_bytes());
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(&self.frame);
        true
    }
}

impl<F: FnMut(u64, &mut Vec<u8>) -> Option<i64>> Read for GenPcap<F> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < out.len() {
            if self.pos == self.buf.len() && (self.ended || !self.refill()) {
                break;
            }
            let k = (out.len() - n).min(self.buf.len() - self.pos);
            out[n..n + k].copy_from_slice(&self.buf[self.pos..self.pos + k]);
            n += k;
            self.pos += k;
        }
        Ok(n)
    }
}

/// The frames of one TCP connection between `a` (client) and `b` (server): handshake,
/// `request` from a, `response` from b (each cut into `mss`-byte segments), FIN from a,
/// FIN-ACK from b, last ACK. `isn`/`risn` are the two initial sequence numbers.
pub struct Conversation {
    pub a: Seg,
    pub isn: u32,
    pub risn: u32,
    pub request: Vec<u8>,
    pub response: Vec<u8>,
    pub mss: usize,
}

impl Conversation {
    /// Number of frames [`Conversation::frame`] produces.
    pub fn frames(&self) -> u64 {
        let segs = |d: &[u8]| d.len().div_ceil(self.mss) as u64;
        3 + segs(&self.request) + segs(&self.response) + 3
    }

    /// Writes frame `i` (< `frames()`) into `out`.
    pub fn frame(&self, i: u64, out: &mut Vec<u8>) {
        let (c, s) = (self.isn, self.risn);
        let req_segs = self.request.len().div_ceil(self.mss) as u64;
        let resp_segs = self.response.len().div_ceil(self.mss) as u64;
        let req_end = c.wrapping_add(1 + self.request.len() as u32);
        let resp_end = s.wrapping_add(1 + self.response.len() as u32);
        let a = |seq, ack, flags| Seg {
            seq,
            ack,
            flags,
            ..self.a
        };
        let b = |seq, ack, flags| self.a.reply(seq, ack, flags);
        let piece = |d: &[u8], k: u64| {
            let at = k as usize * self.mss;
            (at, d[at..(at + self.mss).min(d.len())].to_vec())
        };
        match i {
            0 => tcp_frame(out, &a(c, 0, SYN), &[]),
            1 => tcp_frame(out, &b(s, c.wrapping_add(1), SYN | ACK), &[]),
            2 => tcp_frame(out, &a(c.wrapping_add(1), s.wrapping_add(1), ACK), &[]),
            i if i < 3 + req_segs => {
                let (at, d) = piece(&self.request, i - 3);
                let seq = c.wrapping_add(1 + at as u32);
                tcp_frame(out, &a(seq, s.wrapping_add(1), PSH | ACK), &d);
            }
            i if i < 3 + req_segs + resp_segs => {
                let (at, d) = piece(&self.response, i - 3 - req_segs);
                let seq = s.wrapping_add(1 + at as u32);
                tcp_frame(out, &b(seq, req_end, PSH | ACK), &d);
            }
            i if i == 3 + req_segs + resp_segs => {
                tcp_frame(out, &a(req_end, resp_end, FIN | ACK), &[])
            }
            i if i == 4 + req_segs + resp_segs => {
                tcp_frame(out, &b(resp_end, req_end.wrapping_add(1), FIN | ACK), &[])
            }
            _ => tcp_frame(
                out,
                &a(req_end.wrapping_add(1), resp_end.wrapping_add(1), ACK),
                &[],
            ),
        }
    }
}
