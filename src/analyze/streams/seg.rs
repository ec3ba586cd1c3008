//! What the stream analysis reads of a TCP segment or UDP datagram, apart from its bytes.
//!
//! The analysis reads a few header fields (ports, sequence and acknowledgement numbers,
//! flags, the MSS option, the payload length), never the rest of the dissected header.
//! Holding only those keeps the calls the pipeline thread queues for the stream thread
//! small (`thread`: every TCP and UDP packet crosses from one core to the other), and the
//! type says what the analysis depends on: the inline and threaded runs agree by
//! construction on everything else.

use crate::dissect::{Tcp, TcpFlags, Udp};

/// A TCP segment's header, as the stream analysis reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegHead {
    pub src_port: u16,
    pub dst_port: u16,
    /// Raw sequence number, as on the wire.
    pub seq: u32,
    /// Raw acknowledgement number, as on the wire.
    pub ack: u32,
    pub flags: TcpFlags,
    /// The MSS option, if the segment carries one.
    pub mss: Option<u16>,
    /// Payload length on the wire (the captured bytes may be fewer).
    pub payload_len: u32,
}

impl SegHead {
    pub fn of(t: &Tcp<'_>) -> SegHead {
        SegHead {
            src_port: t.src_port,
            dst_port: t.dst_port,
            seq: t.seq,
            ack: t.ack,
            flags: t.flags,
            mss: t.options.mss,
            payload_len: t.payload_len,
        }
    }
}

/// A UDP datagram's header, as the stream analysis reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DgramHead {
    pub src_port: u16,
    pub dst_port: u16,
    /// Payload length on the wire.
    pub payload_len: u32,
}

impl DgramHead {
    pub fn of(u: &Udp<'_>) -> DgramHead {
        DgramHead {
            src_port: u.src_port,
            dst_port: u.dst_port,
            payload_len: u.payload_len,
        }
    }
}
