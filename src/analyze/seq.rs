//! TCP sequence-number arithmetic: wrapping 32-bit comparisons (RFC 793 §3.3, RFC 1982
//! serial-number style) and 64-bit stream offsets that keep counting across wraps.
//!
//! Invariant: comparisons treat two sequence numbers less than 2^31 apart as ordered the
//! short way round, which is the only meaningful order on a 32-bit circle; nothing here
//! panics or allocates.

/// Signed distance `a - b` on the 32-bit sequence circle (Zeek's `seq_delta`).
#[inline]
pub fn delta(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

/// `a < b` on the sequence circle.
#[inline]
pub fn lt(a: u32, b: u32) -> bool {
    delta(a, b) < 0
}

/// `a <= b` on the sequence circle.
#[inline]
pub fn le(a: u32, b: u32) -> bool {
    delta(a, b) <= 0
}

/// `a > b` on the sequence circle.
#[inline]
pub fn gt(a: u32, b: u32) -> bool {
    delta(a, b) > 0
}

/// `a >= b` on the sequence circle.
#[inline]
pub fn ge(a: u32, b: u32) -> bool {
    delta(a, b) >= 0
}

/// Unwraps raw 32-bit sequence numbers of one direction into signed 64-bit offsets from
/// a base (the first byte after the SYN, or the first sequence number seen), following
/// the most recent value so that a stream longer than 4 GiB keeps counting up.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unwrapper {
    base: u32,
    /// The last value placed, as an offset from `base`.
    last: i64,
    init: bool,
}

impl Unwrapper {
    /// An unwrapper whose offset 0 is `base`.
    pub fn new(base: u32) -> Self {
        Unwrapper {
            base,
            last: 0,
            init: true,
        }
    }

    pub fn is_init(&self) -> bool {
        self.init
    }

    pub fn base(&self) -> u32 {
        self.base
    }

    /// The offset of `seq` from the base, taking the nearer of the candidates around the
    /// last value placed; moves the reference forward only (so a retransmission does not
    /// pull later values back).
    pub fn offset(&mut self, seq: u32) -> i64 {
        let off = self.peek(seq);
        if off > self.last {
            self.last = off;
        }
        off
    }

    /// Like [`Unwrapper::offset`] but without moving the reference.
    pub fn peek(&self, seq: u32) -> i64 {
        let last_raw = self.base.wrapping_add(self.last as u32);
        self.last + i64::from(delta(seq, last_raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_across_the_wrap() {
        assert!(lt(0xffff_fff0, 0x10));
        assert!(gt(0x10, 0xffff_fff0));
        assert!(le(5, 5) && ge(5, 5));
        assert_eq!(delta(3, 0xffff_ffff), 4);
        assert_eq!(delta(0xffff_ffff, 3), -4);
    }

    #[test]
    fn unwraps_past_four_gib() {
        let mut u = Unwrapper::new(0xffff_ff00);
        assert_eq!(u.offset(0xffff_ff00), 0);
        assert_eq!(u.offset(0x0000_0100), 0x200);
        // a retransmission before the wrap stays below
        assert_eq!(u.offset(0xffff_ff80), 0x80);
        // keep going for more than one full turn
        let mut raw = 0x0000_0100u32;
        let mut expect = 0x200i64;
        for _ in 0..20 {
            raw = raw.wrapping_add(0x4000_0000);
            expect += 0x4000_0000;
            assert_eq!(u.offset(raw), expect);
        }
        assert!(expect > 1 << 32);
    }
}
