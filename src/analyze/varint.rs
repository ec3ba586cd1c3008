//! LEB128 varints: the packed forms of state that waits in memory (cold UDP flows in the
//! connection tracker, UDP datagram lists in the stream analysis) store their integers
//! this way, because most are small (deltas, counts, lengths) and a fixed `u64` would be
//! most of each record.
//!
//! Invariant: [`get_uv`] reads back what [`put_uv`] wrote, and [`get_iv`] what [`put_iv`]
//! wrote; reading past the end of the bytes yields zeros rather than panicking (records
//! are written by their own module only, so it cannot happen).

/// Appends `v` as an unsigned LEB128 varint (1 byte below 128, at most 10).
pub fn put_uv(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `v` zigzag-encoded, so small magnitudes of either sign stay short.
pub fn put_iv(out: &mut Vec<u8>, v: i64) {
    put_uv(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Reads one unsigned varint from the front of `rest` and advances it past it.
pub fn get_uv(rest: &mut &[u8]) -> u64 {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let Some((&b, tail)) = rest.split_first() else {
            break;
        };
        *rest = tail;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
    }
    v
}

/// Reads one zigzag-encoded varint (see [`put_iv`]).
pub fn get_iv(rest: &mut &[u8]) -> i64 {
    let u = get_uv(rest);
    (u >> 1) as i64 ^ -((u & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_at_every_length() {
        let mut vals: Vec<u64> = vec![0, 1, u64::MAX, u64::MAX - 1];
        for bits in 1..64 {
            vals.extend([(1 << bits) - 1, 1 << bits, (1 << bits) + 1]);
        }
        let mut out = Vec::new();
        for &v in &vals {
            put_uv(&mut out, v);
            put_iv(&mut out, v as i64);
            put_iv(&mut out, (v as i64).wrapping_neg());
        }
        let mut rest = &out[..];
        for &v in &vals {
            assert_eq!(get_uv(&mut rest), v);
            assert_eq!(get_iv(&mut rest), v as i64);
            assert_eq!(get_iv(&mut rest), (v as i64).wrapping_neg());
        }
        assert!(rest.is_empty());
        // Short forms: a byte below 128, and small negative numbers too.
        let mut one = Vec::new();
        put_uv(&mut one, 127);
        put_iv(&mut one, -64);
        assert_eq!(one.len(), 2);
        // Past the end: zeros, no panic.
        assert_eq!(get_uv(&mut &[][..]), 0);
        assert_eq!(get_uv(&mut &[0x80u8][..]), 0);
    }
}
