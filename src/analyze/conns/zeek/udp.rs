//! Zeek's view of a UDP flow: `D`/`d` history letters, payload byte counts from the UDP
//! length field, and `conn_state` from which sides sent anything.

/// Zeek's view of one UDP flow (`UDPAnalyzer`, `UDPSessionAdapter`).
#[derive(Debug, Clone)]
pub struct ZeekUdp {
    orig: usize,
    active: [bool; 2],
    bytes: [u64; 2],
    hist_seen: u32,
    history: String,
}

impl ZeekUdp {
    /// A new flow; `flip` = the first packet's source port is a likely server port and
    /// its destination port is not (`UDPAnalyzer::WantConnection`).
    pub fn new(flip: bool) -> Self {
        let mut z = ZeekUdp {
            orig: 0,
            active: [false; 2],
            bytes: [0; 2],
            hist_seen: 0,
            history: String::new(),
        };
        if flip {
            z.orig = 1;
            z.history.push('^');
        }
        z
    }

    pub fn orig_slot(&self) -> usize {
        self.orig
    }

    pub fn history(&self) -> &str {
        &self.history
    }

    /// One datagram from slot `from`; `ulen` = the UDP header's length field.
    pub fn process(&mut self, from: usize, ulen: u16) {
        let is_orig = from == self.orig;
        let (mask, code) = if is_orig { (0x1, 'D') } else { (0x2, 'd') };
        if self.hist_seen & mask == 0 {
            self.hist_seen |= mask;
            self.history.push(code);
        }
        self.active[from] = true;
        self.bytes[from] = self.bytes[from].saturating_add(u64::from(ulen.saturating_sub(8)));
    }

    pub fn size(&self, orig: bool) -> u64 {
        self.bytes[if orig { self.orig } else { self.orig ^ 1 }]
    }

    pub fn conn_state(&self) -> &'static str {
        let o = self.active[self.orig];
        let r = self.active[self.orig ^ 1];
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
