//! Capture: where frames come from.
//!
//! A source yields [`RawPacket`]s: the captured bytes of one frame with its 1-based frame
//! number (Wireshark's numbering, running on across several input files as `mergecap -a`
//! would number them), its capture timestamp, its length on the wire, the link type of the
//! interface it was captured on, and that interface as a global port number.
//!
//! Invariants: frame numbers increase by one per yielded packet; timestamps lie within
//! ±[`TS_LIMIT_NS`], so the difference of any two fits an `i64` and consumers may subtract
//! them freely (a pcapng can express far more); `data.len() <= wire_len`
//! is *not* guaranteed (broken writers exist), consumers use `data` for bytes and
//! `wire_len` for sizes; nothing here allocates per packet in the steady state.
//!
//! Threads: a regular file is read ahead by a thread of its own (`ahead.rs`: read into
//! blocks, or memory-mapped a window at a time when the pipeline asks); the records are
//! still parsed and delivered on the caller's thread, in order. A live capture has its
//! capture thread ([`live`]).

mod ahead;
pub use ahead::SharedBlock;
pub mod file;
pub mod filter;
pub mod live;
mod sigbus;
pub mod source;
pub mod writer;

use serde::Serialize;

/// Link-layer header types (LINKTYPE_* numbers from tcpdump.org) that netlens dissects.
pub mod linktype {
    pub const NULL: u32 = 0;
    pub const ETHERNET: u32 = 1;
    pub const RAW_OPENBSD: u32 = 12;
    pub const RAW_BSDOS: u32 = 14;
    pub const RAW: u32 = 101;
    pub const LOOP: u32 = 108;
    pub const LINUX_SLL: u32 = 113;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const LINUX_SLL2: u32 = 276;
    pub const NFLOG: u32 = 239;
    pub const IPOIB: u32 = 242;
    pub const PKTAP: u32 = 258;

    /// The name tcpdump gives a link type, for reports.
    pub fn name(lt: u32) -> String {
        match lt {
            NULL => "NULL".into(),
            ETHERNET => "EN10MB".into(),
            RAW | RAW_OPENBSD | RAW_BSDOS => "RAW".into(),
            LOOP => "LOOP".into(),
            LINUX_SLL => "LINUX_SLL".into(),
            IPV4 => "IPV4".into(),
            IPV6 => "IPV6".into(),
            LINUX_SLL2 => "LINUX_SLL2".into(),
            NFLOG => "NFLOG".into(),
            IPOIB => "IPOIB".into(),
            PKTAP => "PKTAP".into(),
            105 => "IEEE802_11".into(),
            127 => "IEEE802_11_RADIOTAP".into(),
            9 => "PPP".into(),
            50 => "PPP_HDLC".into(),
            other => format!("LINKTYPE_{other}"),
        }
    }

    /// True for the link types the dissector understands.
    pub fn supported(lt: u32) -> bool {
        matches!(
            lt,
            NULL | ETHERNET
                | RAW_OPENBSD
                | RAW_BSDOS
                | RAW
                | LOOP
                | LINUX_SLL
                | IPV4
                | IPV6
                | LINUX_SLL2
        )
    }
}

/// Bound of every capture timestamp: ±(2^62 - 1) ns, about 146 years either side of 1970.
/// A pcap timestamp (32-bit seconds) always fits; pcapng tick counts and offsets beyond it
/// are clamped, because two timestamps further apart than `i64::MAX` ns could not be
/// subtracted (durations, relative times) without overflow.
pub const TS_LIMIT_NS: i64 = (1 << 62) - 1;

/// `ns` clamped to ±[`TS_LIMIT_NS`].
pub fn clamp_ts(ns: i128) -> i64 {
    // The clamp makes the narrowing exact.
    ns.clamp(-i128::from(TS_LIMIT_NS), i128::from(TS_LIMIT_NS)) as i64
}

/// One captured frame, borrowed from the source's buffer.
#[derive(Debug, Clone, Copy)]
pub struct RawPacket<'a> {
    /// 1-based frame number across all inputs.
    pub frame: u64,
    /// Capture time, nanoseconds since the Unix epoch, within ±[`TS_LIMIT_NS`].
    pub ts_ns: i64,
    /// Length of the frame on the wire (the record's original length).
    pub wire_len: u32,
    /// The captured bytes (may be shorter than `wire_len` when the snap length cut it).
    pub data: &'a [u8],
    /// LINKTYPE_* of the interface the frame was captured on.
    pub link_type: u32,
    /// Global interface number: every interface of every input file gets its own.
    pub port: u32,
    /// Index of the input file (0-based) the frame came from.
    pub file_index: u16,
    /// The read-ahead block `data` lies in, when it does: later stages may keep the block
    /// (a reference count) instead of copying bytes out of it.
    pub block: Option<&'a std::sync::Arc<SharedBlock>>,
}

/// Where a capture file stopped making sense. Everything before `offset` was delivered.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Damage {
    pub path: String,
    /// Byte offset in the file of the record that could not be read.
    pub offset: u64,
    /// Number of the last frame read intact before the damage (0 = none).
    pub after_frame: u64,
    pub reason: String,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} at byte offset {}; kept the {} frame(s) read before it",
            self.path, self.reason, self.offset, self.after_frame
        )
    }
}

/// One capture interface as the report lists it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct InterfaceInfo {
    /// Global port number (what `RawPacket::port` refers to).
    pub port: u32,
    pub file_index: u16,
    pub link_type: u32,
    pub link_type_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub snaplen: u32,
}

/// Result of asking a source for its next frame.
#[derive(Debug)]
pub enum Next<'a> {
    Packet(RawPacket<'a>),
    /// A record Wireshark numbers as a frame but that carries no packet (pcapng custom
    /// blocks): it takes frame number `frame` so later numbers stay Wireshark's.
    Record {
        frame: u64,
    },
    /// No frame this time; ask again (a live capture's read timed out, or a file ended and
    /// the next one starts on the next call).
    Idle,
    /// The input ended cleanly.
    End,
    /// The input ended at damage; what came before was delivered.
    Damaged(Damage),
}
