//! The history window: the last delivered bytes of a direction, kept to compare re-sent
//! copies with (conflicting bytes are counted; the first copy wins).
//!
//! Invariant: the ring holds exactly the bytes at offsets `[end - len, end)`, at index
//! `offset % buf.len()`; it grows geometrically up to the configured window, charged to
//! the analysis's shared memory budget.

/// A ring of the last delivered bytes of a direction, indexed by stream offset.
#[derive(Default)]
pub(super) struct History {
    pub(super) buf: Vec<u8>,
    /// Offset after the last byte stored.
    pub(super) end: u64,
    /// Valid bytes: offsets [end - len, end).
    pub(super) len: usize,
}

impl History {
    pub(super) fn push(&mut self, offset: u64, data: &[u8]) {
        let cap = self.buf.len();
        if cap == 0 {
            return;
        }
        let contiguous = offset == self.end;
        // Only the last `cap` bytes can be kept.
        let skip = data.len().saturating_sub(cap);
        let start = offset + skip as u64;
        let data = &data[skip..];
        let mut at = (start % cap as u64) as usize;
        let mut rest = data;
        while !rest.is_empty() {
            let n = rest.len().min(cap - at);
            self.buf[at..at + n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            at = 0;
        }
        self.end = start + data.len() as u64;
        self.len = if contiguous {
            (self.len + data.len()).min(cap)
        } else {
            data.len()
        };
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
        let cap = self.buf.len();
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
        let mut nb = vec![0; new_cap];
        // Move the valid bytes (offsets end-len..end) to their slots in the bigger ring with
        // at most four slice copies: the old ring holds them in up to two runs, and each
        // run lands in the new ring with at most one wrap.
        let len = self.len.min(cap);
        if len > 0 {
            let start = self.end - len as u64;
            let s = (start % cap as u64) as usize;
            let first = (cap - s).min(len);
            let mut dst = (start % new_cap as u64) as usize;
            for run in [&self.buf[s..s + first], &self.buf[..len - first]] {
                let n = run.len().min(new_cap - dst);
                nb[dst..dst + n].copy_from_slice(&run[..n]);
                nb[..run.len() - n].copy_from_slice(&run[n..]);
                dst = (dst + run.len()) % new_cap;
            }
        }
        self.buf = nb;
        true
    }

    /// Compares `data` (bytes at `offset`) with the kept copy: (checked, differing, first
    /// differing offset).
    pub(super) fn compare(&self, offset: u64, data: &[u8]) -> (u64, u64, Option<u64>) {
        let cap = self.buf.len() as u64;
        if cap == 0 || self.len == 0 {
            return (0, 0, None);
        }
        let lo = offset.max(self.end - self.len as u64);
        let hi = (offset + data.len() as u64).min(self.end);
        let (mut diff, mut first) = (0, None);
        let mut at = lo;
        while at < hi {
            let a = data[(at - offset) as usize];
            let b = self.buf[(at % cap) as usize];
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

    #[test]
    fn history_grows_and_keeps_the_last_bytes() {
        let mut h = History {
            buf: Vec::new(),
            end: 0,
            len: 0,
        };
        let (mut mem, max, total) = (0usize, 4096usize, 1 << 20);
        let stream: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut at = 0usize;
        for n in [1usize, 10, 300, 700, 1500, 3000, 5000, 9489] {
            let chunk = &stream[at..at + n];
            assert!(h.reserve(n, max, &mut mem, total));
            h.push(at as u64, chunk);
            at += n;
            // Every kept byte equals the stream's byte at that offset.
            let keep = at.min(max);
            let (checked, diff, _) = h.compare((at - keep) as u64, &stream[at - keep..at]);
            assert_eq!((checked, diff), (keep as u64, 0), "after {at} bytes");
        }
        assert_eq!(at, 20_000);
        assert_eq!(h.buf.len(), max);
        assert_eq!(mem, max);
        // A different byte is found, at its offset.
        let mut wrong = stream[19_000..19_010].to_vec();
        wrong[3] ^= 0xff;
        assert_eq!(h.compare(19_000, &wrong), (10, 1, Some(19_003)));
        // Bytes older than the window are not checked.
        assert_eq!(h.compare(100, &stream[100..110]).0, 0);
        // The budget refuses growth: the window stays as it is.
        let mut g = History {
            buf: Vec::new(),
            end: 0,
            len: 0,
        };
        let mut mem = 0;
        assert!(!g.reserve(1000, 4096, &mut mem, 100));
        assert!(g.buf.is_empty());
    }
}
