//! Offline capture files: pcap (both byte orders, micro- and nanosecond) and pcapng (several
//! sections, several interfaces with their own link types and timestamp resolutions).
//!
//! The format is detected by magic bytes, never by file name. Headers and pcapng blocks are
//! parsed by `pcap-file`; buffering is ours so that every record's byte offset is known and
//! a record's length field is checked against `max_record` *before* the buffer grows: a
//! length of 4 GB is damage, not an allocation. Memory is one buffer, about the size of the
//! largest record seen (at least 1 MiB); it grows only as bytes arrive, so a length field
//! that lies (within the cap) costs what the input really holds, not what it claims.
//!
//! Files are opened up front (a bad path fails before any output) but many inputs
//! (`netlens read rotated-*.pcap`) must not cost a descriptor and a read buffer each while
//! they wait: after its header is read a regular file gives its descriptor back and keeps
//! 4 KiB, reopens at its position when its turn comes, and frees both when it ends.
//!
//! When a record cannot be read (cut short, absurd length, unparsable block) the reader
//! returns [`Next::Damaged`] with the byte offset and stops that file: a pcap has no
//! resynchronisation marker, and guessing one would invent packets.

use std::fs::File;
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use pcap_file::pcap::PcapHeader;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::{Endianness, TsResolution};

use super::ahead::{ReadAhead, AHEAD_HEADROOM};
use super::{linktype, Damage, InterfaceInfo, Next, RawPacket};
use crate::error::{Error, Result};

/// Largest record accepted by default (pcap record or pcapng block), in bytes.
pub const DEFAULT_MAX_RECORD: usize = 16 << 20;
const MIN_BUFFER: usize = 1 << 20;
/// The buffer of a file that has not started reading packets: enough for file headers.
const HEADER_BUFFER: usize = 4 << 10;
/// Most interfaces one file may declare (pcapng, all sections together). Real captures
/// have a handful; every one is kept for the report (and by pcap-file's parser), so a file
/// of nothing but interface blocks would otherwise grow memory with its length. Beyond the
/// cap the file is damaged from that block on, with a warning.
pub const MAX_INTERFACES: usize = 65_536;

/// The container format of one input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pcap,
    PcapNg,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Pcap => "pcap",
            Format::PcapNg => "pcapng",
        }
    }
}

/// Per-interface facts a pcapng section declares.
#[derive(Debug, Clone, Copy)]
struct NgIface {
    port: u32,
    link_type: u32,
    /// Timestamp units per second.
    units_per_sec: u64,
    offset_s: i64,
}

impl NgIface {
    /// Capture time in nanoseconds of a timestamp in this interface's units.
    fn ts_ns(&self, ticks: u64) -> i64 {
        // The common case, units dividing a second evenly (micro-, nanoseconds) and no
        // overflow, stays in u64 arithmetic: i128 division costs tens of cycles a packet.
        if 1_000_000_000 % self.units_per_sec == 0 && self.offset_s == 0 {
            if let Some(ns) = ticks.checked_mul(1_000_000_000 / self.units_per_sec) {
                return super::clamp_ts(i128::from(ns));
            }
        }
        // In i128 nothing here can overflow (ticks < 2^64, units >= 1, 10^9 < 2^30);
        // the result is clamped to the range every consumer can subtract in.
        let units = i128::from(self.units_per_sec.max(1));
        let ticks = i128::from(ticks);
        super::clamp_ts(
            (ticks / units) * 1_000_000_000
                + (ticks % units) * 1_000_000_000 / units
                + i128::from(self.offset_s) * 1_000_000_000,
        )
    }
}

/// The fixed fields of an enhanced packet block.
struct Epb {
    iface: u32,
    ticks: u64,
    cap_len: usize,
    wire_len: u32,
}

/// Reads an enhanced packet block (type 6) whose `len` bytes are all in `b`; None for any
/// other block, or an EPB whose captured length does not fit its block (left to pcap-file,
/// which reports the exact error).
fn read_epb(b: &[u8], big: bool) -> Option<Epb> {
    let word = |i: usize| -> Option<u32> {
        let x: [u8; 4] = b.get(i..i + 4)?.try_into().ok()?;
        Some(if big {
            u32::from_be_bytes(x)
        } else {
            u32::from_le_bytes(x)
        })
    };
    if word(0)? != 6 {
        return None;
    }
    let cap_len = word(20)? as usize;
    // 28 bytes of header before the data, 4 bytes of trailing length after it.
    if 28 + cap_len + 4 > b.len() {
        return None;
    }
    Some(Epb {
        iface: word(8)?,
        ticks: (u64::from(word(12)?) << 32) | u64::from(word(16)?),
        cap_len,
        wire_len: word(24)?,
    })
}

enum State {
    Pcap {
        big_endian: bool,
        nanos: bool,
        /// 16, or 24 in Kuznetsov's "modified pcap" (ifindex, protocol, type follow).
        record_header: usize,
        link_type: u32,
        port: u32,
    },
    PcapNg {
        parser: Box<PcapNgParser>,
        ifaces: Vec<NgIface>,
    },
}

/// A regular file that can give its descriptor back and reopen at the same position.
struct Reopen {
    path: PathBuf,
    file: Option<File>,
    /// Bytes read so far: where a reopened file continues.
    pos: u64,
}

impl Read for Reopen {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let file = match &mut self.file {
            Some(f) => f,
            None => {
                // The file may have vanished or changed since it was opened: that is a read
                // error here, which the reader reports as damage at this offset.
                let mut f = File::open(&self.path)?;
                f.seek(SeekFrom::Start(self.pos))?;
                self.file.insert(f)
            }
        };
        let n = file.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Where a capture's bytes come from.
enum Input {
    /// Standard input, pipes, and readers handed in by callers: kept open throughout.
    Stream(Box<dyn Read + Send>),
    File(Reopen),
    /// A regular file being read by its own thread (see [`ReadAhead`]).
    Ahead(ReadAhead),
    /// The capture ended; its descriptor is closed.
    Closed,
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Input::Stream(r) => r.read(buf),
            Input::File(r) => r.read(buf),
            Input::Ahead(a) => a.read(buf),
            Input::Closed => Ok(0),
        }
    }
}

impl Input {
    /// Gives a regular file's descriptor back until the next read.
    fn park(&mut self) {
        if let Input::File(r) = self {
            r.file = None;
        }
    }
}

/// A byte source with offsets: our own buffer so offsets and caps are exact.
struct Buffer {
    reader: Input,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    /// File offset of `buf[pos]`.
    offset: u64,
    eof: bool,
}

impl Buffer {
    fn new(reader: Input) -> Self {
        Buffer {
            reader,
            buf: vec![0; HEADER_BUFFER],
            pos: 0,
            len: 0,
            offset: 0,
            eof: false,
        }
    }

    fn available(&self) -> &[u8] {
        &self.buf[self.pos..self.len]
    }

    /// Makes at least `need` bytes available unless the input ends first; returns how many
    /// are available. `need` must already be checked against the record cap.
    fn fill(&mut self, need: usize) -> std::io::Result<usize> {
        if self.len - self.pos >= need || self.eof {
            return Ok(self.len - self.pos);
        }
        if let Input::Ahead(_) = self.reader {
            return self.fill_ahead(need);
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.len, 0);
            self.len -= self.pos;
            self.pos = 0;
        }
        while self.len < need {
            if self.len == self.buf.len() {
                // Grow by doubling as bytes actually arrive, never straight to the declared
                // length: a record claiming the whole `--max-record` in a short file (or a
                // pipe that ends early) then costs about what was read, not what was claimed.
                // `target >= need > self.len == self.buf.len()`, so this always grows.
                let target = need.checked_next_power_of_two().unwrap_or(need);
                let grown = self.buf.len().saturating_mul(2).max(1).min(target);
                self.grow_to(grown);
            }
            match self.reader.read(&mut self.buf[self.len..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.len += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.len - self.pos)
    }

    /// [`Buffer::fill`] from the read-ahead thread's blocks. The usual case swaps buffers:
    /// the unread tail (part of one record) is copied into the new block's headroom, just
    /// before its bytes, and the old buffer goes back to the thread; so file bytes are
    /// copied once, by the kernel, on the other core. A tail longer than the headroom (a
    /// record bigger than 64 KiB) falls back to appending, growing as bytes arrive.
    fn fill_ahead(&mut self, need: usize) -> std::io::Result<usize> {
        while self.len - self.pos < need {
            let Input::Ahead(ahead) = &mut self.reader else {
                unreachable!("fill_ahead is called for Input::Ahead only");
            };
            let Some(mut block) = ahead.next_block()? else {
                self.eof = true;
                break;
            };
            let tail = self.len - self.pos;
            let got = block.len - AHEAD_HEADROOM;
            if tail <= AHEAD_HEADROOM {
                let start = AHEAD_HEADROOM - tail;
                block.data[start..AHEAD_HEADROOM].copy_from_slice(&self.buf[self.pos..self.len]);
                let old = std::mem::replace(&mut self.buf, block.data);
                ahead.recycle(old);
                self.pos = start;
                self.len = block.len;
            } else {
                if self.pos > 0 {
                    self.buf.copy_within(self.pos..self.len, 0);
                    self.len -= self.pos;
                    self.pos = 0;
                }
                if self.buf.len() < self.len + got {
                    let size = (self.len + got).checked_next_power_of_two();
                    let mut bigger = vec![0; size.unwrap_or(self.len + got)];
                    bigger[..self.len].copy_from_slice(&self.buf[..self.len]);
                    self.buf = bigger;
                }
                self.buf[self.len..self.len + got]
                    .copy_from_slice(&block.data[AHEAD_HEADROOM..block.len]);
                self.len += got;
                ahead.recycle(block.data);
            }
        }
        Ok(self.len - self.pos)
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
        self.offset += n as u64;
    }

    /// Replaces the buffer by a larger one (`size >= self.len`) holding the same bytes.
    /// A fresh zeroed
    /// allocation (calloc: pages are touched only when read into) rather than `resize`,
    /// which writes every new byte.
    fn grow_to(&mut self, size: usize) {
        let mut bigger = vec![0; size];
        bigger[..self.len].copy_from_slice(&self.buf[..self.len]);
        self.buf = bigger;
    }
}

impl Buffer {
    /// The input is being read: a regular file gets its read-ahead thread; anything else
    /// a buffer large enough for few, large reads.
    fn start_reading(&mut self) {
        if matches!(self.reader, Input::File(_)) {
            if let Input::File(file) = std::mem::replace(&mut self.reader, Input::Closed) {
                self.reader = Input::Ahead(ReadAhead::start(file));
            }
        }
        if self.buf.len() < MIN_BUFFER && !matches!(self.reader, Input::Ahead(_)) {
            self.grow_to(MIN_BUFFER);
        }
    }

    /// The input ended: free the buffer and close the descriptor.
    fn release(&mut self) {
        self.buf = Vec::new();
        self.pos = 0;
        self.len = 0;
        self.reader = Input::Closed;
    }
}

/// One open capture file (or standard input).
pub struct CaptureFile {
    display: String,
    file_index: u16,
    format: Format,
    buf: Buffer,
    state: State,
    max_record: usize,
    /// Interfaces this file declared (pcapng may add more as it goes).
    pub interfaces: Vec<InterfaceInfo>,
    /// pcapng blocks skipped because their type is unknown or carries no packet.
    pub skipped_blocks: u64,
    next_port: u32,
    done: bool,
}

impl CaptureFile {
    /// Opens `path` (`-` = standard input) and reads its file header.
    pub fn open(path: &Path, file_index: u16, max_record: usize) -> Result<Self> {
        let input = if path == Path::new("-") {
            Input::Stream(Box::new(std::io::stdin()))
        } else {
            if path.is_dir() {
                return Err(Error::NotACapture {
                    path: path.to_path_buf(),
                    detail: "it is a directory".into(),
                });
            }
            let f = File::open(path).map_err(|source| Error::Open {
                path: path.to_path_buf(),
                source,
            })?;
            // Only a regular file can be reopened at a position; a FIFO or /dev/fd/N
            // (`netlens read <(zcat f.gz)`) stays open.
            if f.metadata().is_ok_and(|m| m.is_file()) {
                Input::File(Reopen {
                    path: path.to_path_buf(),
                    file: Some(f),
                    pos: 0,
                })
            } else {
                Input::Stream(Box::new(f))
            }
        };
        let display = if path == Path::new("-") {
            "<stdin>".to_string()
        } else {
            path.display().to_string()
        };
        let mut me = Self::from_input(input, display, file_index, max_record)?;
        me.buf.reader.park();
        Ok(me)
    }

    /// Reads a capture from any byte source (used by tests and fuzzing, and for stdin).
    pub fn from_reader(
        reader: Box<dyn Read + Send>,
        display: String,
        file_index: u16,
        max_record: usize,
    ) -> Result<Self> {
        Self::from_input(Input::Stream(reader), display, file_index, max_record)
    }

    fn from_input(
        input: Input,
        display: String,
        file_index: u16,
        max_record: usize,
    ) -> Result<Self> {
        let first_port = 0; // renumbered by `begin`
        let path = PathBuf::from(&display);
        let mut buf = Buffer::new(input);
        let have = buf.fill(24).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        let head = buf.available();
        if have < 4 {
            let detail = if have == 0 {
                "it is empty".to_string()
            } else {
                format!("it is only {have} bytes long")
            };
            return Err(Error::NotACapture { path, detail });
        }
        let magic = [head[0], head[1], head[2], head[3]];
        let max_record = max_record.max(64);
        let mut me = match magic {
            [0xd4, 0xc3, 0xb2, 0xa1] | [0xa1, 0xb2, 0xc3, 0xd4] | [0x4d, 0x3c, 0xb2, 0xa1] | [0xa1, 0xb2, 0x3c, 0x4d] => {
                if have < 24 {
                    return Err(Error::NotACapture {
                        path,
                        detail: format!("pcap magic but the file header is cut at {have} of 24 bytes"),
                    });
                }
                let (_, header) = PcapHeader::from_slice(&head[..24]).map_err(|e| Error::NotACapture {
                    path: path.clone(),
                    detail: format!("bad pcap file header: {e}"),
                })?;
                // The upper bits of the link-type field carry FCS information (pcap-ng
                // draft); the link type itself is the low 16 bits.
                let link_type = u32::from(header.datalink) & 0xffff;
                let snaplen = header.snaplen;
                buf.consume(24);
                CaptureFile {
                    display,
                    file_index,
                    format: Format::Pcap,
                    buf,
                    state: State::Pcap {
                        big_endian: header.endianness == Endianness::Big,
                        nanos: header.ts_resolution == TsResolution::NanoSecond,
                        record_header: 16,
                        link_type,
                        port: first_port,
                    },
                    max_record,
                    interfaces: vec![InterfaceInfo {
                        port: first_port,
                        file_index,
                        link_type,
                        link_type_name: linktype::name(link_type),
                        name: None,
                        snaplen,
                    }],
                    skipped_blocks: 0,
                    next_port: first_port + 1,
                    done: false,
                }
            }
            [0x0a, 0x0d, 0x0d, 0x0a] => {
                let mut me = CaptureFile {
                    display,
                    file_index,
                    format: Format::PcapNg,
                    buf,
                    // Replaced by the section header read just below.
                    state: State::Pcap {
                        big_endian: false,
                        nanos: false,
                        record_header: 16,
                        link_type: 0,
                        port: first_port,
                    },
                    max_record,
                    interfaces: Vec::new(),
                    skipped_blocks: 0,
                    next_port: first_port,
                    done: false,
                };
                match me.read_first_section() {
                    Ok(()) => me,
                    Err(detail) => return Err(Error::NotACapture { path, detail }),
                }
            }
            [0x34, 0xcd, 0xb2, 0xa1] | [0xa1, 0xb2, 0xcd, 0x34] => {
                // Kuznetsov's "modified pcap" (old Red Hat tcpdump): the classic header with
                // 24-byte record headers. pcap-file does not know the magic; read it here.
                if have < 24 {
                    return Err(Error::NotACapture {
                        path,
                        detail: format!("pcap magic but the file header is cut at {have} of 24 bytes"),
                    });
                }
                let big_endian = magic[0] == 0xa1;
                let w = |i: usize| {
                    let b = [head[i], head[i + 1], head[i + 2], head[i + 3]];
                    if big_endian {
                        u32::from_be_bytes(b)
                    } else {
                        u32::from_le_bytes(b)
                    }
                };
                let snaplen = w(16);
                let link_type = w(20) & 0xffff;
                buf.consume(24);
                CaptureFile {
                    display,
                    file_index,
                    format: Format::Pcap,
                    buf,
                    state: State::Pcap {
                        big_endian,
                        nanos: false,
                        record_header: 24,
                        link_type,
                        port: first_port,
                    },
                    max_record,
                    interfaces: vec![InterfaceInfo {
                        port: first_port,
                        file_index,
                        link_type,
                        link_type_name: linktype::name(link_type),
                        name: None,
                        snaplen,
                    }],
                    skipped_blocks: 0,
                    next_port: first_port + 1,
                    done: false,
                }
            }
            [0x1f, 0x8b, ..] => {
                return Err(Error::Unsupported {
                    path,
                    detail: "is gzip-compressed; decompress it first (gunzip -k FILE) or pipe it: zcat FILE | netlens read -".into(),
                })
            }
            m => {
                return Err(Error::NotACapture {
                    path,
                    detail: format!(
                        "unknown magic {:02x} {:02x} {:02x} {:02x}",
                        m[0], m[1], m[2], m[3]
                    ),
                })
            }
        };
        me.done = false;
        Ok(me)
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn display(&self) -> &str {
        &self.display
    }

    /// Numbers this file's interfaces from `first_port` on (call before reading packets;
    /// files are opened up front so a bad path fails before any output, but numbered in
    /// the order they are read).
    pub fn begin(&mut self, first_port: u32) {
        if let State::Pcap { port, .. } = &mut self.state {
            *port = first_port;
            if let Some(i) = self.interfaces.first_mut() {
                i.port = first_port;
            }
            self.next_port = first_port + 1;
        } else {
            self.next_port = first_port;
        }
    }

    /// Bytes of the file consumed so far.
    pub fn offset(&self) -> u64 {
        self.buf.offset
    }

    /// True once the file returned its end or its damage.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The next global port number after the interfaces this file declared so far.
    pub fn next_port(&self) -> u32 {
        self.next_port
    }

    /// The file ended (cleanly or at damage): nothing more is read from it.
    fn finish(&mut self) {
        self.done = true;
        self.buf.release();
    }

    fn damage(&mut self, offset: u64, after_frame: u64, reason: String) -> Next<'static> {
        self.finish();
        Next::Damaged(Damage {
            path: self.display.clone(),
            offset,
            after_frame,
            reason,
        })
    }

    fn read_first_section(&mut self) -> std::result::Result<(), String> {
        let have = self.buf.fill(12).map_err(|e| e.to_string())?;
        if have < 12 {
            return Err(format!("pcapng section header cut at {have} bytes"));
        }
        let len = self
            .peek_block_len(true)
            .ok_or("pcapng section header has a bad byte-order magic")?;
        if len < 28 || len > self.max_record {
            return Err(format!(
                "pcapng section header declares a length of {len} bytes"
            ));
        }
        let have = self.buf.fill(len).map_err(|e| e.to_string())?;
        if have < len {
            return Err(format!(
                "pcapng section header cut at {have} of {len} bytes"
            ));
        }
        let (rem, parser) = PcapNgParser::new(&self.buf.available()[..len])
            .map_err(|e| format!("bad pcapng section header: {e}"))?;
        let used = len - rem.len();
        self.buf.consume(used);
        self.state = State::PcapNg {
            parser: Box::new(parser),
            ifaces: Vec::new(),
        };
        Ok(())
    }

    /// Length of the pcapng block at the buffer start, in the section's byte order (or, for a
    /// section header, the order its byte-order magic announces). None if it cannot be known.
    fn peek_block_len(&self, section_start: bool) -> Option<usize> {
        let b = self.buf.available();
        if b.len() < 8 {
            return None;
        }
        let is_shb = b[..4] == [0x0a, 0x0d, 0x0d, 0x0a];
        let big = if is_shb || section_start {
            if b.len() < 12 {
                return None;
            }
            match [b[8], b[9], b[10], b[11]] {
                [0x1a, 0x2b, 0x3c, 0x4d] => true,
                [0x4d, 0x3c, 0x2b, 0x1a] => false,
                _ => return None,
            }
        } else {
            match &self.state {
                State::PcapNg { parser, .. } => parser.section().endianness == Endianness::Big,
                State::Pcap { .. } => return None,
            }
        };
        let raw = [b[4], b[5], b[6], b[7]];
        Some(if big {
            u32::from_be_bytes(raw)
        } else {
            u32::from_le_bytes(raw)
        } as usize)
    }

    /// The next frame of this file. `frame` is the number the frame will get if one is
    /// returned; `last_frame` the number of the last frame already delivered.
    pub fn next_packet(&mut self, frame: u64) -> Next<'_> {
        if self.done {
            return Next::End;
        }
        self.buf.start_reading();
        match self.state {
            State::Pcap { .. } => self.next_pcap(frame),
            State::PcapNg { .. } => self.next_pcapng(frame),
        }
    }

    fn next_pcap(&mut self, frame: u64) -> Next<'_> {
        let State::Pcap {
            big_endian,
            nanos,
            record_header,
            link_type,
            port,
        } = self.state
        else {
            return Next::End;
        };
        let offset = self.buf.offset;
        let have = match self.buf.fill(record_header) {
            Ok(n) => n,
            Err(e) => return self.damage(offset, frame - 1, format!("read error: {e}")),
        };
        if have == 0 {
            self.finish();
            return Next::End;
        }
        if have < record_header {
            return self.damage(
                offset,
                frame - 1,
                format!("the file ends inside a record header ({have} of {record_header} bytes)"),
            );
        }
        let mut h = [0u8; 16];
        h.copy_from_slice(&self.buf.available()[..16]);
        let word = |i: usize| {
            let b = [h[i], h[i + 1], h[i + 2], h[i + 3]];
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let incl_len = word(8) as usize;
        if incl_len > self.max_record {
            return self.damage(
                offset,
                frame - 1,
                format!(
                    "record {frame} declares {incl_len} captured bytes, more than the {} byte limit (--max-record)",
                    self.max_record
                ),
            );
        }
        let need = record_header + incl_len;
        let have = match self.buf.fill(need) {
            Ok(n) => n,
            Err(e) => return self.damage(offset, frame - 1, format!("read error: {e}")),
        };
        if have < need {
            return self.damage(
                offset,
                frame - 1,
                format!(
                    "the file ends inside record {frame} ({} of {incl_len} data bytes present)",
                    have - record_header
                ),
            );
        }
        let ts_sec = i64::from(word(0));
        let frac = i64::from(word(4));
        let ts_ns = ts_sec * 1_000_000_000 + if nanos { frac } else { frac * 1000 };
        let wire_len = word(12);
        self.buf.consume(need);
        let start = self.buf.pos - incl_len;
        Next::Packet(RawPacket {
            frame,
            ts_ns,
            wire_len,
            data: &self.buf.buf[start..self.buf.pos],
            link_type,
            port,
            file_index: self.file_index,
        })
    }

    fn next_pcapng(&mut self, frame: u64) -> Next<'_> {
        loop {
            let offset = self.buf.offset;
            let have = match self.buf.fill(12) {
                Ok(n) => n,
                Err(e) => return self.damage(offset, frame - 1, format!("read error: {e}")),
            };
            if have == 0 {
                self.finish();
                return Next::End;
            }
            if have < 12 {
                // A block is at least 12 bytes: type, length, trailing length.
                return self.damage(
                    offset,
                    frame - 1,
                    format!("the file ends inside a block header ({have} bytes left)"),
                );
            }
            let Some(len) = self.peek_block_len(false) else {
                return self.damage(
                    offset,
                    frame - 1,
                    "a section header with a bad byte-order magic".to_string(),
                );
            };
            if len < 12 || len % 4 != 0 {
                return self.damage(
                    offset,
                    frame - 1,
                    format!("a block declares an invalid length of {len} bytes"),
                );
            }
            if len > self.max_record {
                return self.damage(
                    offset,
                    frame - 1,
                    format!(
                        "a block declares {len} bytes, more than the {} byte limit (--max-record)",
                        self.max_record
                    ),
                );
            }
            let have = match self.buf.fill(len) {
                Ok(n) => n,
                Err(e) => return self.damage(offset, frame - 1, format!("read error: {e}")),
            };
            if have < len {
                return self.damage(
                    offset,
                    frame - 1,
                    format!("the file ends inside a block ({have} of {len} bytes present)"),
                );
            }
            let State::PcapNg { parser, ifaces } = &mut self.state else {
                return Next::End;
            };
            let bytes = &self.buf.buf[self.buf.pos..self.buf.pos + len];
            let big = parser.section().endianness == Endianness::Big;
            // Enhanced packet blocks are nearly every block of a capture: read their five
            // fixed fields here instead of through pcap-file's generic block parser, which
            // also collects the options into a Vec (a 20-30% cost per packet).
            if let Some(epb) = read_epb(bytes, big) {
                let Some(iface) = ifaces.get(epb.iface as usize).copied() else {
                    let id = epb.iface;
                    return self.damage(
                        offset,
                        frame - 1,
                        format!("a packet block names interface {id}, which the section did not describe"),
                    );
                };
                let start = self.buf.pos + 28;
                self.buf.consume(len);
                return Next::Packet(RawPacket {
                    frame,
                    ts_ns: iface.ts_ns(epb.ticks),
                    wire_len: epb.wire_len,
                    data: &self.buf.buf[start..start + epb.cap_len],
                    link_type: iface.link_type,
                    port: iface.port,
                    file_index: self.file_index,
                });
            }
            let block = match parser.next_block(bytes) {
                Ok((_, b)) => b,
                Err(e) => {
                    let reason = format!("unreadable block: {e}");
                    return self.damage(offset, frame - 1, reason);
                }
            };
            // What the block yields, decided while `block` borrows the buffer.
            let mut packet: Option<(u32, u64, u32, usize, usize)> = None; // iface, ticks, wire, data start, data len
            let mut skipped = false;
            let base = self.buf.buf.as_ptr() as usize;
            match block {
                Block::SectionHeader(shb) => {
                    // A reader must not guess at a section of an unknown major version.
                    if shb.major_version != 1 {
                        let reason = format!(
                            "a section of pcapng version {}.{}, which netlens does not read, starts",
                            shb.major_version, shb.minor_version
                        );
                        return self.damage(offset, frame - 1, reason);
                    }
                    ifaces.clear()
                }
                Block::InterfaceDescription(idb) => {
                    if self.interfaces.len() >= MAX_INTERFACES {
                        let reason = format!(
                            "more than {MAX_INTERFACES} interfaces are declared (netlens's limit)"
                        );
                        return self.damage(offset, frame - 1, reason);
                    }
                    let mut units_per_sec = 1_000_000u64;
                    let mut offset_s = 0i64;
                    let mut name = None;
                    for opt in &idb.options {
                        match opt {
                            InterfaceDescriptionOption::IfTsResol(r) => {
                                units_per_sec = if r & 0x80 != 0 {
                                    1u64.checked_shl(u32::from(r & 0x7f)).unwrap_or(0)
                                } else {
                                    10u64.checked_pow(u32::from(*r)).unwrap_or(0)
                                };
                            }
                            InterfaceDescriptionOption::IfTsOffset(o) => offset_s = *o as i64,
                            InterfaceDescriptionOption::IfName(n) => name = Some(n.to_string()),
                            _ => {}
                        }
                    }
                    let link_type = u32::from(idb.linktype) & 0xffff;
                    let port = self.next_port;
                    self.next_port += 1;
                    ifaces.push(NgIface {
                        port,
                        link_type,
                        units_per_sec: units_per_sec.max(1),
                        offset_s,
                    });
                    self.interfaces.push(InterfaceInfo {
                        port,
                        file_index: self.file_index,
                        link_type,
                        link_type_name: linktype::name(link_type),
                        name,
                        snaplen: idb.snaplen,
                    });
                }
                Block::EnhancedPacket(epb) => {
                    // pcap-file reads the raw 64-bit timestamp as nanoseconds; it is really
                    // in the interface's units, so take the raw count back and rescale.
                    let ticks = epb.timestamp.as_nanos() as u64;
                    let data_start = epb.data.as_ptr() as usize - base;
                    packet = Some((
                        epb.interface_id,
                        ticks,
                        epb.original_len,
                        data_start,
                        epb.data.len(),
                    ));
                }
                Block::SimplePacket(spb) => {
                    let data_start = spb.data.as_ptr() as usize - base;
                    packet = Some((0, 0, spb.original_len, data_start, spb.data.len()));
                }
                Block::Packet(pb) => {
                    let data_start = pb.data.as_ptr() as usize - base;
                    packet = Some((
                        u32::from(pb.interface_id),
                        pb.timestamp,
                        pb.original_len,
                        data_start,
                        pb.data.len(),
                    ));
                }
                // Custom blocks are records Wireshark numbers as frames.
                Block::Unknown(u) if u.type_ == 0x0000_0bad || u.type_ == 0x4000_0bad => {
                    self.buf.consume(len);
                    return Next::Record { frame };
                }
                _ => skipped = true,
            }
            if skipped {
                self.skipped_blocks += 1;
            }
            let Some((iface_id, ticks, wire_len, start, data_len)) = packet else {
                self.buf.consume(len);
                continue;
            };
            let Some(iface) = ifaces.get(iface_id as usize).copied() else {
                return self.damage(
                    offset,
                    frame - 1,
                    format!("a packet block names interface {iface_id}, which the section did not describe"),
                );
            };
            let ts_ns = iface.ts_ns(ticks);
            self.buf.consume(len);
            return Next::Packet(RawPacket {
                frame,
                ts_ns,
                wire_len,
                data: &self.buf.buf[start..start + data_len],
                link_type: iface.link_type,
                port: iface.port,
                file_index: self.file_index,
            });
        }
    }
}
