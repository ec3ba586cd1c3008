//! TCP sequence-number arithmetic: wrapping 32-bit comparisons (RFC 793 §3.3, RFC 1982
//! serial-number style) and 64-bit stream offsets that keep counting across wraps.
//!
//! Invariant: comparisons treat two sequence numbers less than 2^31 apart as ordered the
//! short way round, which is the only meaningful order on a 32-bit circle; nothing here
//! panics or allocates.

use std::cmp::Ordering;

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

// Typed sequence numbers and the unwrapper used by stream reassembly.

/// A raw TCP sequence number with modulo-2^32 ordering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeqNum(pub u32);

impl SeqNum {
    /// The signed distance from `other` to `self` (positive when `self` is later).
    pub fn diff(self, other: SeqNum) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// `self + n` modulo 2^32.
    pub fn plus(self, n: u32) -> SeqNum {
        SeqNum(self.0.wrapping_add(n))
    }

    pub fn lt(self, other: SeqNum) -> bool {
        self.diff(other) < 0
    }

    pub fn le(self, other: SeqNum) -> bool {
        self.diff(other) <= 0
    }
}

impl PartialOrd for SeqNum {
    /// Wrapping order: not a total order over all of u32 (a and a + 2^31 are each "after"
    /// the other), which is why `Ord` is not implemented.
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.diff(*other).cmp(&0))
    }
}

/// Converts raw sequence numbers of one direction into stream offsets.
///
/// Offset 0 is the sequence number `base` (ISN + 1 after a SYN; the first sequence number
/// seen on a midstream pickup). Offsets are `i64` because a segment may start before the
/// base (a retransmitted SYN with data, data older than a midstream pickup).
#[derive(Debug, Clone, Copy)]
pub struct SeqUnwrapper {
    base: u32,
    /// An offset known to be near the current position of the stream.
    anchor: u64,
}

impl SeqUnwrapper {
    pub fn new(base: u32) -> Self {
        SeqUnwrapper { base, anchor: 0 }
    }

    /// The sequence number of offset 0.
    pub fn base(&self) -> u32 {
        self.base
    }

    /// The offset of `seq`: the one closest to the anchor (within ±2^31).
    pub fn offset(&self, seq: u32) -> i64 {
        let anchor_seq = self.base.wrapping_add(self.anchor as u32);
        let d = seq.wrapping_sub(anchor_seq) as i32;
        self.anchor as i64 + i64::from(d)
    }

    /// Moves the anchor forward to `offset` (the stream's delivery point), so later
    /// numbers are read relative to where the stream is now.
    pub fn advance(&mut self, offset: u64) {
        if offset > self.anchor {
            self.anchor = offset;
        }
    }

    /// The raw sequence number of a stream offset.
    pub fn seq_of(&self, offset: u64) -> u32 {
        self.base.wrapping_add(offset as u32)
    }
}

#[cfg(test)]
mod seqnum_tests {
    use super::*;

    #[test]
    fn wrapping_order() {
        let cases: &[(u32, u32, Ordering)] = &[
            (1, 2, Ordering::Less),
            (u32::MAX, 0, Ordering::Less),
            (0, u32::MAX, Ordering::Greater),
            (u32::MAX - 10, 5, Ordering::Less),
            (7, 7, Ordering::Equal),
            (0x7fff_ffff, 0, Ordering::Greater),
        ];
        for &(a, b, want) in cases {
            assert_eq!(SeqNum(a).partial_cmp(&SeqNum(b)), Some(want), "{a} vs {b}");
        }
        assert!(SeqNum(u32::MAX).lt(SeqNum(0)));
        assert_eq!(SeqNum(u32::MAX).plus(2), SeqNum(1));
        assert_eq!(SeqNum(3).diff(SeqNum(u32::MAX)), 4);
    }

    #[test]
    fn unwraps_across_2_32() {
        // ISN just below the wrap: offsets keep increasing through it.
        let isn = u32::MAX - 5;
        let mut u = SeqUnwrapper::new(isn.wrapping_add(1));
        assert_eq!(u.offset(isn.wrapping_add(1)), 0);
        assert_eq!(u.offset(0), 5);
        assert_eq!(u.offset(100), 105);
        assert_eq!(u.offset(isn), -1);
        // A stream longer than 4 GiB: advance in steps below 2^31.
        let mut at = 0u64;
        for _ in 0..5 {
            at += 1 << 30;
            u.advance(at);
            assert_eq!(u.offset(u.seq_of(at)), at as i64);
        }
        assert!(at > u64::from(u32::MAX));
        assert_eq!(u.offset(u.seq_of(at + 10)), at as i64 + 10);
        assert_eq!(u.offset(u.seq_of(at - 10)), at as i64 - 10);
    }
}
