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
//!
//! The byte source and its buffer live in `buffer`; the record formats in `pcap` and
//! `pcapng`. This module opens files, tells the formats apart and holds [`CaptureFile`].

mod buffer;
mod pcap;
mod pcapng;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pcap_file::pcap::PcapHeader;
use pcap_file::pcapng::PcapNgParser;
use pcap_file::{Endianness, TsResolution};

use super::{linktype, Damage, InterfaceInfo, Next};
use crate::error::{Error, Result};
use buffer::{Buffer, Input, Reopen};
use pcapng::NgIface;

/// Largest record accepted by default (pcap record or pcapng block), in bytes.
pub const DEFAULT_MAX_RECORD: usize = 16 << 20;
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
    /// The buffer was set up for reading records (`Buffer::start_reading`, once).
    reading: bool,
    done: bool,
}

/// What a pcap file header (classic or Kuznetsov's modified) says about its records.
struct PcapLayout {
    big_endian: bool,
    nanos: bool,
    /// 16, or 24 in the modified format.
    record_header: usize,
    link_type: u32,
    snaplen: u32,
}

impl CaptureFile {
    /// A pcap file past its 24-byte header: one interface, then records.
    fn pcap(
        display: String,
        file_index: u16,
        buf: Buffer,
        max_record: usize,
        port: u32,
        l: PcapLayout,
    ) -> CaptureFile {
        CaptureFile {
            display,
            file_index,
            format: Format::Pcap,
            buf,
            state: State::Pcap {
                big_endian: l.big_endian,
                nanos: l.nanos,
                record_header: l.record_header,
                link_type: l.link_type,
                port,
            },
            max_record,
            interfaces: vec![InterfaceInfo {
                port,
                file_index,
                link_type: l.link_type,
                link_type_name: linktype::name(l.link_type),
                name: None,
                snaplen: l.snaplen,
            }],
            skipped_blocks: 0,
            next_port: port + 1,
            reading: false,
            done: false,
        }
    }

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
                    file: Some(Arc::new(f)),
                    pos: 0,
                    map: false,
                    map_from: None,
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
                Self::pcap(
                    display,
                    file_index,
                    buf,
                    max_record,
                    first_port,
                    PcapLayout {
                        big_endian: header.endianness == Endianness::Big,
                        nanos: header.ts_resolution == TsResolution::NanoSecond,
                        record_header: 16,
                        link_type,
                        snaplen,
                    },
                )
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
                    reading: false,
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
                Self::pcap(
                    display,
                    file_index,
                    buf,
                    max_record,
                    first_port,
                    PcapLayout {
                        big_endian,
                        nanos: false,
                        record_header: 24,
                        link_type,
                        snaplen,
                    },
                )
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

    /// Whether the file, if it is a regular one, is memory-mapped when it starts being
    /// read (rather than read into buffers; see `capture::ahead`).
    pub fn map_file(&mut self, on: bool) {
        self.buf.map_file = on;
    }

    /// Bytes of the file consumed so far.
    pub fn offset(&self) -> u64 {
        self.buf.offset
    }

    /// Read-ahead blocks made for this file so far (each `capture::ahead::BLOCK` plus
    /// headroom of memory; 0 when it is not read ahead, or once it ended).
    pub fn read_ahead_blocks(&self) -> usize {
        self.buf.blocks_made()
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

    /// The next frame of this file. `frame` is the number the frame will get if one is
    /// returned; `last_frame` the number of the last frame already delivered.
    #[inline]
    pub fn next_packet(&mut self, frame: u64) -> Next<'_> {
        if self.done {
            return Next::End;
        }
        if !self.reading {
            self.reading = true;
            self.buf.start_reading();
        }
        match self.state {
            State::Pcap { .. } => self.next_pcap(frame),
            State::PcapNg { .. } => self.next_pcapng(frame),
        }
    }
}
