//! Where packed records of idle UDP flows wait (the connection tracker's, see
//! `conns::cold`, and the stream analysis's, see `streams::udp_flow`): one arena per
//! record length, in 4 KiB chunks.
//!
//! Why not a box per record: the allocator rounds a 33- or 34-byte record (most of the
//! 1 GB benchmark capture's 58,000 cold flows in the tracker) up to its 40-byte size
//! class, and the tracker's slot naming a box took 16 bytes. Here a record takes its
//! exact length up to 64 bytes (longer ones are rare: IPv6, VLAN tags, long flows), and
//! a [`Ref`] fits in the tracker's 4-byte slot with the slot's kind (`conns::table`).
//!
//! Invariants: a [`Ref`] returned by [`Records::put`] names the same bytes until it is
//! given to [`Records::free`], and no other live `Ref` names them; a freed record holds
//! the arena's free list (the next free index, 4 bytes), so freeing allocates nothing.
//! Chunks are kept while any record of their arena lives, and all released when the
//! last one goes (memory then follows the flows, not the run's peak, per length).

/// Records per arena are indexed below this (26 bits: with the slot's kind they fit in a
/// `u32`); [`Records::put`] refuses a record beyond it, and the flow stays unpacked.
pub const INDEX_LIMIT: u32 = 1 << 26;

/// Bytes per chunk: a size class of the allocator, so no chunk is rounded up.
const CHUNK: usize = 4096;

/// The longest record kept; longer ones stay unpacked.
pub const MAX_LEN: usize = 256;

/// Record lengths with an arena of their own: every length from `EXACT_MIN` to
/// `EXACT_MAX`, then the coarse lengths below (a record takes the first that fits).
const EXACT_MIN: usize = 24;
const EXACT_MAX: usize = 64;
const COARSE: [usize; 9] = [72, 80, 96, 112, 128, 160, 192, 224, MAX_LEN];

/// Number of arenas (record lengths).
pub const CLASSES: usize = EXACT_MAX - EXACT_MIN + 1 + COARSE.len();

/// Marks the end of a free list.
const NONE: u32 = u32::MAX;

/// A stored record: its arena and its index there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ref {
    pub class: u8,
    pub idx: u32,
}

/// The arena holding records of `len` bytes, if any does.
fn class_of(len: usize) -> Option<usize> {
    if len <= EXACT_MAX {
        return Some(len.saturating_sub(EXACT_MIN));
    }
    let coarse = COARSE.iter().position(|&size| len <= size)?;
    Some(EXACT_MAX - EXACT_MIN + 1 + coarse)
}

fn class_len(class: usize) -> usize {
    match class.checked_sub(EXACT_MAX - EXACT_MIN + 1) {
        None => EXACT_MIN + class,
        Some(c) => COARSE[c.min(COARSE.len() - 1)],
    }
}

/// Records of one length.
struct Arena {
    /// Bytes per record, and records per chunk.
    len: usize,
    per_chunk: usize,
    chunks: Vec<Box<[u8; CHUNK]>>,
    /// Records handed out at least once (indices below it exist).
    used: u32,
    /// First free index, or `NONE`.
    free: u32,
    live: u32,
}

impl Arena {
    fn new(class: usize) -> Arena {
        let len = class_len(class);
        Arena {
            len,
            per_chunk: CHUNK / len,
            chunks: Vec::new(),
            used: 0,
            free: NONE,
            live: 0,
        }
    }

    fn bytes(&self, idx: u32) -> &[u8] {
        let (c, at) = (idx as usize / self.per_chunk, idx as usize % self.per_chunk);
        match self.chunks.get(c) {
            Some(chunk) => &chunk[at * self.len..][..self.len],
            None => &[],
        }
    }

    fn bytes_mut(&mut self, idx: u32) -> &mut [u8] {
        let (c, at) = (idx as usize / self.per_chunk, idx as usize % self.per_chunk);
        match self.chunks.get_mut(c) {
            Some(chunk) => &mut chunk[at * self.len..][..self.len],
            None => &mut [],
        }
    }

    /// A free index (from the free list, or a new one) now counted live, or None at the
    /// limit.
    fn take(&mut self) -> Option<u32> {
        if self.free != NONE {
            let idx = self.free;
            let b = self.bytes(idx);
            self.free = match b.get(..4) {
                Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]),
                _ => NONE,
            };
            self.live += 1;
            return Some(idx);
        }
        if self.used >= INDEX_LIMIT {
            return None;
        }
        let idx = self.used;
        if idx as usize / self.per_chunk >= self.chunks.len() {
            self.chunks.push(Box::new([0; CHUNK]));
        }
        self.used += 1;
        self.live += 1;
        Some(idx)
    }

    fn free(&mut self, idx: u32) {
        self.live = self.live.saturating_sub(1);
        if self.live == 0 {
            self.chunks = Vec::new();
            self.used = 0;
            self.free = NONE;
            return;
        }
        let next = self.free;
        if let Some(b) = self.bytes_mut(idx).get_mut(..4) {
            b.copy_from_slice(&next.to_le_bytes());
            self.free = idx;
        }
    }
}

/// The arenas, one per record length.
pub struct Records {
    arenas: Vec<Arena>,
}

impl Default for Records {
    fn default() -> Self {
        Records {
            arenas: (0..CLASSES).map(Arena::new).collect(),
        }
    }
}

impl Records {
    /// Stores `rec`; None if it is longer than [`MAX_LEN`] or its arena is full.
    pub fn put(&mut self, rec: &[u8]) -> Option<Ref> {
        let class = class_of(rec.len())?;
        let arena = self.arenas.get_mut(class)?;
        let idx = arena.take()?;
        let dst = arena.bytes_mut(idx);
        // The tail past a short record is zeroed: records are self-delimiting, so it is
        // never read, but it should not hold an earlier flow's bytes either.
        let (head, tail) = dst.split_at_mut(rec.len().min(dst.len()));
        head.copy_from_slice(&rec[..head.len()]);
        tail.fill(0);
        Some(Ref {
            class: class as u8,
            idx,
        })
    }

    /// The bytes of record `r` (its arena's length: the record, then zeros).
    pub fn get(&self, r: Ref) -> &[u8] {
        match self.arenas.get(usize::from(r.class)) {
            Some(a) => a.bytes(r.idx),
            None => &[],
        }
    }

    /// The same, to change in place (`cold::arm`).
    pub fn get_mut(&mut self, r: Ref) -> &mut [u8] {
        match self.arenas.get_mut(usize::from(r.class)) {
            Some(a) => a.bytes_mut(r.idx),
            None => &mut [],
        }
    }

    /// Releases record `r` (its `Ref` must not be used again).
    pub fn free(&mut self, r: Ref) {
        if let Some(a) = self.arenas.get_mut(usize::from(r.class)) {
            a.free(r.idx);
        }
    }

    /// Records stored, all arenas.
    #[cfg(test)]
    pub fn live(&self) -> usize {
        self.arenas.iter().map(|a| a.live as usize).sum()
    }

    /// Chunks held, all arenas.
    #[cfg(test)]
    pub fn chunks(&self) -> usize {
        self.arenas.iter().map(|a| a.chunks.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(len: usize, fill: u8) -> Vec<u8> {
        (0..len).map(|i| fill.wrapping_add(i as u8)).collect()
    }

    #[test]
    fn every_length_has_the_smallest_arena_that_fits() {
        for len in 0..=MAX_LEN {
            let class = class_of(len).unwrap();
            assert!(class < CLASSES);
            assert!(class_len(class) >= len, "{len}");
            if (EXACT_MIN..=EXACT_MAX).contains(&len) {
                assert_eq!(class_len(class), len);
            }
            if class > 0 {
                assert!(class_len(class - 1) < len.max(EXACT_MIN + 1), "{len}");
            }
        }
        assert_eq!(class_of(MAX_LEN + 1), None);
    }

    #[test]
    fn records_read_back_and_freed_ones_are_reused() {
        let mut r = Records::default();
        let mut held = Vec::new();
        // Enough 33-byte records for three chunks, and some of other lengths.
        for i in 0..400u32 {
            let len = [33, 33, 33, 20, 70, 256][i as usize % 6];
            let bytes = rec(len, i as u8);
            held.push((r.put(&bytes).unwrap(), bytes));
        }
        for (at, bytes) in &held {
            let got = r.get(*at);
            assert_eq!(&got[..bytes.len()], &bytes[..]);
            assert!(got[bytes.len()..].iter().all(|&b| b == 0));
        }
        let chunks = r.chunks();
        // Free every other record, store as many of the same lengths again: no new chunk,
        // nothing overwritten.
        let mut kept = Vec::new();
        for (i, (at, bytes)) in held.into_iter().enumerate() {
            if i % 2 == 0 {
                r.free(at);
            } else {
                kept.push((at, bytes));
            }
        }
        // (The freed ones: 134 of 33 bytes and 66 of 70.)
        for i in 0..200u32 {
            let len = [33, 33, 70][i as usize % 3];
            let bytes = rec(len, 100 + i as u8);
            kept.push((r.put(&bytes).unwrap(), bytes));
        }
        assert_eq!(r.chunks(), chunks);
        assert_eq!(r.live(), 400);
        for (at, bytes) in &kept {
            assert_eq!(&r.get(*at)[..bytes.len()], &bytes[..]);
        }
        // All gone: every chunk is released.
        for (at, _) in kept {
            r.free(at);
        }
        assert_eq!((r.live(), r.chunks()), (0, 0));
        assert_eq!(r.put(&[1; 257]), None);
    }

    #[test]
    fn a_record_changes_in_place() {
        let mut r = Records::default();
        let at = r.put(&[0xff; 40]).unwrap();
        r.get_mut(at)[0] = 1;
        assert_eq!(r.get(at)[..2], [1, 0xff]);
    }
}
