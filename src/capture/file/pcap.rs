//! Reading pcap records (classic and Kuznetsov's modified pcap, both byte orders, micro-
//! or nanosecond timestamps; the file header is read in `from_input`).
//!
//! A record's captured length is checked against `--max-record` before its bytes are
//! asked for; a record cut short is damage at its offset, and the file stops there.

use super::{CaptureFile, State};
use crate::capture::{Next, RawPacket};

impl CaptureFile {
    pub(super) fn next_pcap(&mut self, frame: u64) -> Next<'_> {
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
        // The usual record: its header and data are already in the buffer and its length is
        // within the cap. One look at the buffer (each is a branch on where its bytes live)
        // and no copy of the header; anything else takes the checked path below, which
        // fills the buffer and reports damage.
        let avail = self.buf.available();
        if let Some(h) = avail.get(..16) {
            let r = RecordHeader::parse(h, big_endian);
            let incl_len = r.incl_len as usize;
            let need = record_header + incl_len;
            if incl_len <= self.max_record && avail.len() >= need {
                return self.record_packet(frame, &r, record_header, (link_type, port), nanos);
            }
        }
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
        // `have >= record_header >= 16` (checked above), so the slice cannot fail.
        let r = RecordHeader::parse(&self.buf.available()[..16], big_endian);
        let incl_len = r.incl_len as usize;
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
        self.record_packet(frame, &r, record_header, (link_type, port), nanos)
    }

    /// Delivers the record at the buffer's position, whose header `r` (of `header_len`
    /// bytes) and data are all buffered, and moves past it.
    #[inline]
    fn record_packet(
        &mut self,
        frame: u64,
        r: &RecordHeader,
        header_len: usize,
        (link_type, port): (u32, u32),
        nanos: bool,
    ) -> Next<'_> {
        let start = self.buf.pos + header_len;
        let len = r.incl_len as usize;
        self.buf.consume(header_len + len);
        Next::Packet(RawPacket {
            frame,
            ts_ns: r.ts_nanos(nanos),
            wire_len: r.orig_len,
            data: &self.buf.buf[start..start + len],
            link_type,
            port,
            file_index: self.file_index,
            block: self.buf.shared(),
        })
    }
}

/// The four words of a pcap record header (the modified format's extra 8 bytes follow).
struct RecordHeader {
    ts_sec: u32,
    ts_frac: u32,
    incl_len: u32,
    orig_len: u32,
}

impl RecordHeader {
    /// `h` is at least 16 bytes (callers slice it so).
    #[inline]
    fn parse(h: &[u8], big_endian: bool) -> RecordHeader {
        let word = |i: usize| {
            let b = [h[i], h[i + 1], h[i + 2], h[i + 3]];
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        RecordHeader {
            ts_sec: word(0),
            ts_frac: word(4),
            incl_len: word(8),
            orig_len: word(12),
        }
    }

    /// Nanoseconds since the epoch. An unsigned 32-bit second count times 1e9, plus a
    /// fraction below 2^32 µs times 1000, stays far inside an `i64`: no overflow.
    #[inline]
    fn ts_nanos(&self, nanos: bool) -> i64 {
        let frac = i64::from(self.ts_frac);
        i64::from(self.ts_sec) * 1_000_000_000 + if nanos { frac } else { frac * 1000 }
    }
}
