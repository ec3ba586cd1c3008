//! Zeek's view of a UDP flow: `D`/`d` history letters, payload byte counts from the UDP
//! length field, and `conn_state` from which sides sent anything.

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
