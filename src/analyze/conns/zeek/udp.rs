//! Zeek's view of a UDP flow: `D`/`d` history letters, payload byte counts from the UDP
//! length field, and `conn_state` from which sides sent anything.

use crate::analyze::conns::cold::Reader;
use crate::analyze::varint::put_uv;

/// Zeek's view of one UDP flow (`UDPAnalyzer`, `UDPSessionAdapter`).
///
/// 24 bytes with no heap allocation: a capture can hold tens of thousands of UDP flows
/// at once under the 60 s timeout, and their history is at most `^Dd`.
#[derive(Debug, Clone)]
pub struct ZeekUdp {
    bytes: [u64; 2],
    /// Slot of the originator (0 or 1).
    orig: u8,
    active: [bool; 2],
    /// `D` and `d` seen (bits 0 and 1).
    hist_seen: u8,
    /// The history letters in order (ASCII), `hist_len` of them.
    history: [u8; 3],
    hist_len: u8,
}

impl ZeekUdp {
    /// A new flow; `flip` = the first packet's source port is a likely server port and
    /// its destination port is not (`UDPAnalyzer::WantConnection`).
    pub fn new(flip: bool) -> Self {
        let mut z = ZeekUdp {
            bytes: [0; 2],
            orig: 0,
            active: [false; 2],
            hist_seen: 0,
            history: [0; 3],
            hist_len: 0,
        };
        if flip {
            z.orig = 1;
            z.push_history(b'^');
        }
        z
    }

    /// Appends a letter; each of the three can be added once, so there is room.
    fn push_history(&mut self, letter: u8) {
        if let Some(slot) = self.history.get_mut(usize::from(self.hist_len)) {
            *slot = letter;
            self.hist_len += 1;
        }
    }

    pub fn orig_slot(&self) -> usize {
        usize::from(self.orig)
    }

    pub fn history(&self) -> &str {
        let letters = &self.history[..usize::from(self.hist_len).min(self.history.len())];
        // Only ASCII letters are ever stored.
        std::str::from_utf8(letters).unwrap_or("")
    }

    /// One datagram from slot `from`; `ulen` = the UDP header's length field.
    pub fn process(&mut self, from: usize, ulen: u16) {
        let is_orig = from == self.orig_slot();
        let (mask, code) = if is_orig { (0x1, b'D') } else { (0x2, b'd') };
        if self.hist_seen & mask == 0 {
            self.hist_seen |= mask;
            self.push_history(code);
        }
        self.active[from] = true;
        self.bytes[from] = self.bytes[from].saturating_add(u64::from(ulen.saturating_sub(8)));
    }

    pub fn size(&self, orig: bool) -> u64 {
        let o = self.orig_slot();
        self.bytes[if orig { o } else { o ^ 1 }]
    }

    pub fn conn_state(&self) -> &'static str {
        let o = self.active[self.orig_slot()];
        let r = self.active[self.orig_slot() ^ 1];
        match (o, r) {
            (true, true) => "SF",
            (true, false) => "S0",
            (false, true) => "SHR",
            (false, false) => "OTH",
        }
    }
}

/// Every history a UDP flow can have (`^` only first, `D` and `d` at most once each):
/// the packed form stores the index.
const HISTORIES: [&[u8]; 10] = [
    b"", b"D", b"d", b"Dd", b"dD", b"^", b"^D", b"^d", b"^Dd", b"^dD",
];

/// The packed form of a [`ZeekUdp`] for a cold flow (see `conns::cold`): one byte of
/// orig, active sides and history (`hist_seen` follows from the letters), then the byte
/// counts when they differ from the payload counts.
impl ZeekUdp {
    /// Writes the state; false if it has a history no flow can have. The byte counts are
    /// left out when they equal `payload` (the usual case: both sum the UDP length field
    /// minus 8).
    pub(in crate::analyze::conns) fn pack(&self, payload: &[u64; 2], out: &mut Vec<u8>) -> bool {
        let letters = &self.history[..usize::from(self.hist_len).min(3)];
        let Some(code) = HISTORIES.iter().position(|h| *h == letters) else {
            return false;
        };
        if self.hist_seen != seen(letters) {
            return false;
        }
        let same = self.bytes == *payload;
        out.push(
            self.orig & 1
                | u8::from(self.active[0]) << 1
                | u8::from(self.active[1]) << 2
                | u8::from(same) << 3
                | (code as u8) << 4,
        );
        if !same {
            put_uv(out, self.bytes[0]);
            put_uv(out, self.bytes[1]);
        }
        self.orig <= 1
    }

    /// Reads what [`ZeekUdp::pack`] wrote.
    pub(in crate::analyze::conns) fn unpack(r: &mut Reader<'_>, payload: &[u64; 2]) -> Self {
        let flags = r.byte();
        let bytes = if flags & 8 != 0 {
            *payload
        } else {
            [r.uv(), r.uv()]
        };
        let letters = HISTORIES
            .get(usize::from(flags >> 4))
            .copied()
            .unwrap_or_default();
        let mut history = [0; 3];
        history[..letters.len()].copy_from_slice(letters);
        ZeekUdp {
            bytes,
            orig: flags & 1,
            active: [flags & 2 != 0, flags & 4 != 0],
            hist_seen: seen(letters),
            history,
            hist_len: letters.len() as u8,
        }
    }
}

/// `hist_seen` for a history: bit 0 for `D`, bit 1 for `d`.
fn seen(letters: &[u8]) -> u8 {
    u8::from(letters.contains(&b'D')) | u8::from(letters.contains(&b'd')) << 1
}

#[cfg(test)]
mod tests {
    use super::*;

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
