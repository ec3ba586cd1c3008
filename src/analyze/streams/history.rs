//! The history window: the last delivered bytes of a direction, kept to compare re-sent
//! copies with (conflicting bytes are counted; the first copy wins).
//!
//! Invariant: the ring holds exactly the bytes at offsets `[end - len, end)`, the byte at
//! `offset` at index `(offset - base) % cap`, and `buf.len() == len`. `cap` is the
//! window's notional size (what the shared memory budget is charged for); `buf` only
//! grows towards it as bytes are delivered, so no byte is ever zeroed just to be
//! overwritten. While `len < cap` the bytes lie in order from index 0 (`base == end -
//! len`); once full, new bytes overwrite the oldest. The window grows geometrically up to
//! the configured size; growing re-lays the kept bytes in order, and a push that does not
//! continue the kept bytes (or a recorded gap) restarts the ring at its offset.

/// A ring of the last delivered bytes of a direction, indexed by stream offset.
#[derive(Default)]
pub(super) struct History {
    /// The kept bytes (see the module invariant); never longer than `cap`.
    buf: Vec<u8>,
    /// Notional capacity: the ring wraps at this size, and the budget is charged for it.
    cap: usize,
    /// Offset that maps to index 0 (modulo `cap`).
    base: u64,
    /// Offset after the last byte stored.
    end: u64,
    /// Valid bytes: offsets [end - len, end).
    len: usize,
}

impl History {
    /// Nothing before `offset` is kept any more (a gap ends there): the next bytes start
    /// the ring afresh. The allocation is kept for them.
    pub(super) fn clear_at(&mut self, offset: u64) {
        self.buf.clear();
        self.base = offset;
        self.end = offset;
        self.len = 0;
    }

    /// Frees the window for good, keeping its position; returns the capacity it was
    /// charged for.
    pub(super) fn release(&mut self) -> usize {
        let freed = self.cap;
        self.buf = Vec::new();
        self.cap = 0;
        self.clear_at(self.end);
        freed
    }

    /// Keeps `data`, delivered at `offset` (nothing without a window).
    pub(super) fn push(&mut self, offset: u64, data: &[u8]) {
        let cap = self.cap;
        if cap == 0 {
            return;
        }
        // Only the last `cap` bytes can be kept.
        let skip = data.len().saturating_sub(cap);
        let start = offset + skip as u64;
        let data = &data[skip..];
        if offset != self.end || skip > 0 || self.len == 0 {
            // Nothing kept continues into these bytes (or they replace all of it): start
            // the ring at them, in order from index 0.
            self.clear_at(start);
        }
        // Continue the ring: append while it is filling (the write position is then the
        // end of `buf`), overwrite the oldest bytes once it is full.
        let mut at = ((start - self.base) % cap as u64) as usize;
        let mut rest = data;
        while !rest.is_empty() {
            let (run, tail) = rest.split_at(rest.len().min(cap - at));
            let over = self.buf.len().saturating_sub(at).min(run.len());
            self.buf[at..at + over].copy_from_slice(&run[..over]);
            self.buf.extend_from_slice(&run[over..]);
            rest = tail;
            at = 0;
        }
        self.end = start + data.len() as u64;
        self.len = (self.len + data.len()).min(cap);
    }

    /// Makes room for `incoming` more bytes, growing geometrically up to `max` (so a short
    /// exchange never costs the whole window) within the shared budget. False when the
    /// budget refused to grow.
    pub(super) fn reserve(
        &mut self,
        incoming: usize,
        max: usize,
        mem: &mut usize,
        total: usize,
    ) -> bool {
        let cap = self.cap;
        let need = (self.len + incoming).min(max);
        if need <= cap {
            return true;
        }
        let new_cap = need.next_power_of_two().clamp(256, max.max(1));
        let extra = new_cap - cap;
        if *mem + extra > total {
            return false;
        }
        *mem += extra;
        // Re-lay the valid bytes (offsets end-len..end) in order from index 0 of the
        // bigger ring: at most two runs in the old one (one while it was filling).
        let len = self.len;
        let mut nb = Vec::with_capacity(new_cap);
        if len > 0 {
            let s = ((self.end - len as u64 - self.base) % cap as u64) as usize;
            let first = (self.buf.len() - s).min(len);
            nb.extend_from_slice(&self.buf[s..s + first]);
            nb.extend_from_slice(&self.buf[..len - first]);
        }
        self.buf = nb;
        self.cap = new_cap;
        self.base = self.end - len as u64;
        true
    }

    /// Compares `data` (bytes at `offset`) with the kept copy: (checked, differing, first
    /// differing offset).
    pub(super) fn compare(&self, offset: u64, data: &[u8]) -> (u64, u64, Option<u64>) {
        let cap = self.cap as u64;
        if cap == 0 || self.len == 0 {
            return (0, 0, None);
        }
        let lo = offset.max(self.end - self.len as u64);
        let hi = (offset + data.len() as u64).min(self.end);
        let (mut diff, mut first) = (0, None);
        let mut at = lo;
        while at < hi {
            let a = data[(at - offset) as usize];
            let b = self.buf[((at - self.base) % cap) as usize];
            if a != b {
                diff += 1;
                first.get_or_insert(at);
            }
            at += 1;
        }
        (hi.saturating_sub(lo), diff, first)
    }
}

#[cfg(test)]
mod tests {
    use super::History;

    /// The stream's byte at `offset`: period 251, so no power-of-two ring size maps two
    /// different offsets to the same value pattern, and a wrong index shows as a difference.
    fn byte_at(offset: u64) -> u8 {
        (offset.wrapping_mul(7) % 251) as u8
    }

    fn bytes(offset: u64, n: usize) -> Vec<u8> {
        (offset..offset + n as u64).map(byte_at).collect()
    }

    /// The reference: the last min(len, cap) bytes of the stream since the last gap or
    /// non-contiguous push, as a start offset and the bytes.
    struct Model {
        start: u64,
        kept: Vec<u8>,
    }

    impl Model {
        fn push(&mut self, cap: usize, offset: u64, data: &[u8]) {
            if cap == 0 {
                return;
            }
            if offset != self.start + self.kept.len() as u64 {
                self.start = offset;
                self.kept.clear();
            }
            self.kept.extend_from_slice(data);
            let drop = self.kept.len().saturating_sub(cap);
            self.kept.drain(..drop);
            self.start += drop as u64;
        }

        fn compare(&self, offset: u64, data: &[u8]) -> (u64, u64, Option<u64>) {
            let lo = offset.max(self.start);
            let hi = (offset + data.len() as u64).min(self.start + self.kept.len() as u64);
            let (mut diff, mut first) = (0, None);
            for at in lo..hi.max(lo) {
                if data[(at - offset) as usize] != self.kept[(at - self.start) as usize] {
                    diff += 1;
                    first.get_or_insert(at);
                }
            }
            (hi.saturating_sub(lo), diff, first)
        }
    }

    /// Compares ranges in, across and around the window, with the true bytes and with
    /// every byte altered, against the model.
    fn check(h: &History, m: &Model, what: &str) {
        assert!(h.buf.len() <= h.cap, "{what}: buffer beyond the capacity");
        assert_eq!(h.buf.len(), h.len, "{what}: buffer length");
        let end = m.start + m.kept.len() as u64;
        assert_eq!((h.end, h.len), (end, m.kept.len()), "{what}: window");
        let lo = m.start.saturating_sub(300);
        let mut ranges = vec![(lo, end + 300 - lo), (m.start, m.kept.len() as u64)];
        for i in 0..40u64 {
            let a = lo + i * 97 % (end + 200 - lo);
            ranges.push((a, 1 + i * 53 % 700));
        }
        for (offset, n) in ranges {
            let good = bytes(offset, n as usize);
            let expect = m.compare(offset, &good);
            assert_eq!(h.compare(offset, &good), expect, "{what}: [{offset}; {n}]");
            assert_eq!(expect.1, 0);
            let bad: Vec<u8> = good.iter().map(|b| b ^ 0x5a).collect();
            let expect = m.compare(offset, &bad);
            assert_eq!(
                h.compare(offset, &bad),
                expect,
                "{what}: altered [{offset}; {n}]"
            );
            assert_eq!(expect.1, expect.0);
        }
    }

    #[test]
    fn history_matches_the_last_bytes_of_the_stream() {
        let (max, total) = (4096usize, 1usize << 20);
        let mut h = History::default();
        let mut m = Model {
            start: 0,
            kept: Vec::new(),
        };
        let mut mem = 0usize;
        let mut at = 0u64;
        // (bytes skipped before the push: a gap, then its length)
        let steps: &[(u64, usize)] = &[
            // Growth while not full: 256, 512, 1024, 2048, 4096, each partly filled.
            (0, 1),
            (0, 10),
            (0, 300),
            (0, 700),
            (0, 1500),
            (0, 1200),
            // Wrap after full, in pieces that straddle the ring's end.
            (0, 3000),
            (0, 777),
            (0, 4095),
            (0, 1),
            (0, 2049),
            // A gap (non-contiguous push), then growth after it.
            (5000, 100),
            (0, 4000),
            (0, 1234),
            // Bigger than the window, contiguous and not.
            (0, 9489),
            (1, 4097),
            (0, 4096),
            (0, 50),
            (77, 4096),
            (0, 3),
        ];
        for (i, &(gap, n)) in steps.iter().enumerate() {
            at += gap;
            let data = bytes(at, n);
            assert!(h.reserve(n, max, &mut mem, total));
            h.push(at, &data);
            m.push(h.cap, at, &data);
            at += n as u64;
            check(&h, &m, &format!("step {i}"));
        }
        assert_eq!((h.cap, mem), (max, max));
        // A recorded gap: nothing before it is kept; the ring restarts after it.
        h.clear_at(at + 10);
        m = Model {
            start: at + 10,
            kept: Vec::new(),
        };
        check(&h, &m, "after clear_at");
        at += 10;
        for n in [1000usize, 3500, 2000] {
            let data = bytes(at, n);
            assert!(h.reserve(n, max, &mut mem, total));
            h.push(at, &data);
            m.push(h.cap, at, &data);
            at += n as u64;
            check(&h, &m, &format!("after the gap, {n}"));
        }
        // A different byte is found, at its offset.
        let mut wrong = bytes(at - 10, 10);
        wrong[3] ^= 0xff;
        assert_eq!(h.compare(at - 10, &wrong), (10, 1, Some(at - 7)));
        assert_eq!(h.release(), max);
        assert_eq!((h.cap, h.compare(at - 10, &wrong)), (0, (0, 0, None)));
    }

    #[test]
    fn a_refused_window_keeps_its_size_and_wraps() {
        // The budget refuses growth from nothing: no window, nothing kept.
        let mut g = History::default();
        let mut mem = 0;
        assert!(!g.reserve(1000, 4096, &mut mem, 100));
        g.push(0, &bytes(0, 1000));
        assert_eq!((g.cap, g.compare(0, &bytes(0, 1000)).0), (0, 0));
        // It refuses growth past 256 bytes: that window keeps wrapping at 256.
        let mut h = History::default();
        let mut m = Model {
            start: 0,
            kept: Vec::new(),
        };
        let mut mem = 0;
        let mut at = 0u64;
        for n in [200usize, 100, 700, 30, 256, 5] {
            let _ = h.reserve(n, 4096, &mut mem, 300);
            let data = bytes(at, n);
            h.push(at, &data);
            m.push(h.cap, at, &data);
            at += n as u64;
            check(&h, &m, &format!("refused, {n}"));
        }
        assert_eq!((h.cap, mem), (256, 256));
    }
}
