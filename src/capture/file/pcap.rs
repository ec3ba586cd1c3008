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
            block: self.buf.shared(),
        })
    }
}
