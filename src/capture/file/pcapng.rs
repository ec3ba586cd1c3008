//! Reading pcapng blocks: sections with their own byte order, interfaces with their own
//! link types and timestamp resolutions, and the packet blocks (enhanced, simple,
//! obsolete) that reference them.
//!
//! A block's length is checked against `--max-record` before its bytes are asked for.
//! Enhanced packet blocks, nearly every block of a capture, are read by hand
//! ([`read_epb`]); every other block goes through pcap-file's parser. At most
//! [`MAX_INTERFACES`] interfaces are accepted per file; a packet naming an interface its
//! section did not describe is damage.

use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::Endianness;

use super::{CaptureFile, State, MAX_INTERFACES};
use crate::capture::{clamp_ts, linktype, InterfaceInfo, Next, RawPacket};

/// Per-interface facts a pcapng section declares.
#[derive(Debug, Clone, Copy)]
pub(super) struct NgIface {
    port: u32,
    link_type: u32,
    /// Timestamp units per second.
    units_per_sec: u64,
    offset_s: i64,
    /// Nanoseconds per unit when a unit is a whole number of them and there is no offset
    /// (micro- and nanoseconds: nearly every capture), else 0. Worked out once here: the
    /// per-packet test and quotient were two 64-bit divisions, tens of cycles each.
    ns_per_tick: u64,
}

impl NgIface {
    fn new(port: u32, link_type: u32, units_per_sec: u64, offset_s: i64) -> NgIface {
        let units_per_sec = units_per_sec.max(1);
        let exact = 1_000_000_000 % units_per_sec == 0 && offset_s == 0;
        NgIface {
            port,
            link_type,
            units_per_sec,
            offset_s,
            ns_per_tick: if exact {
                1_000_000_000 / units_per_sec
            } else {
                0
            },
        }
    }

    /// Capture time in nanoseconds of a timestamp in this interface's units.
    #[inline]
    fn ts_ns(&self, ticks: u64) -> i64 {
        // The common case, units dividing a second evenly (micro-, nanoseconds) and no
        // overflow, stays in u64 arithmetic: i128 division costs tens of cycles a packet.
        if self.ns_per_tick != 0 {
            if let Some(ns) = ticks.checked_mul(self.ns_per_tick) {
                return clamp_ts(i128::from(ns));
            }
        }
        // In i128 nothing here can overflow (ticks < 2^64, units >= 1, 10^9 < 2^30);
        // the result is clamped to the range every consumer can subtract in.
        let units = i128::from(self.units_per_sec.max(1));
        let ticks = i128::from(ticks);
        clamp_ts(
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

/// An enhanced packet block at the start of `avail` that is whole there, with its block
/// length: a multiple of 4, at least 12 and at most `max_record` bytes (what the checked
/// path requires before it reads a block). None for anything else.
#[inline]
fn buffered_epb(avail: &[u8], big: bool, max_record: usize) -> Option<(Epb, usize)> {
    let raw: [u8; 4] = avail.get(4..8)?.try_into().ok()?;
    let len = if big {
        u32::from_be_bytes(raw)
    } else {
        u32::from_le_bytes(raw)
    } as usize;
    if len < 12 || !len.is_multiple_of(4) || len > max_record {
        return None;
    }
    let epb = read_epb(avail.get(..len)?, big)?;
    Some((epb, len))
}

impl CaptureFile {
    /// Delivers the enhanced packet block of `len` bytes at the buffer's position (read
    /// into `epb`, for interface `iface`) and moves past it.
    #[inline]
    fn epb_packet(&mut self, frame: u64, epb: &Epb, len: usize, iface: NgIface) -> Next<'_> {
        let start = self.buf.pos + 28;
        self.buf.consume(len);
        Next::Packet(RawPacket {
            frame,
            ts_ns: iface.ts_ns(epb.ticks),
            wire_len: epb.wire_len,
            data: &self.buf.buf[start..start + epb.cap_len],
            link_type: iface.link_type,
            port: iface.port,
            file_index: self.file_index,
            block: self.buf.shared(),
        })
    }

    pub(super) fn read_first_section(&mut self) -> std::result::Result<(), String> {
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

    pub(super) fn next_pcapng(&mut self, frame: u64) -> Next<'_> {
        loop {
            // The usual block: an enhanced packet block already in the buffer, its length
            // valid and within the cap, for an interface the section described. Read with
            // one look at the buffer; anything else takes the checked path below, which
            // fills the buffer and reports damage.
            if let State::PcapNg { parser, ifaces } = &self.state {
                let big = parser.section().endianness == Endianness::Big;
                let avail = self.buf.available();
                if let Some((epb, len)) = buffered_epb(avail, big, self.max_record) {
                    if let Some(iface) = ifaces.get(epb.iface as usize).copied() {
                        return self.epb_packet(frame, &epb, len, iface);
                    }
                }
            }
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
                return self.epb_packet(frame, &epb, len, iface);
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
                    ifaces.push(NgIface::new(port, link_type, units_per_sec, offset_s));
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
                block: self.buf.shared(),
            });
        }
    }
}
