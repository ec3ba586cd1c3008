//! TCP sequence-number arithmetic: wrapping 32-bit comparison (RFC 793 §3.3, "modulo 2^32")
//! and the unwrapping of raw sequence numbers into 64-bit stream offsets.
//!
//! Invariants: two sequence numbers compare by the sign of their 32-bit wrapping difference,
//! so the comparison is meaningful only within half the sequence space (2^31 bytes), exactly
//! as in TCP itself. A [`SeqUnwrapper`] turns each raw number into the 64-bit offset closest
//! to the last offset it confirmed, so a stream longer than 4 GiB, or one whose numbers wrap
//! past 2^32, keeps increasing offsets.

use std::cmp::Ordering;

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
mod tests {
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
