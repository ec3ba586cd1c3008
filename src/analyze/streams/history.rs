//! The history window: the last delivered bytes of a direction, kept to compare re-sent
//! copies with (conflicting bytes are counted; the first copy wins).
//!
//! The window is a list of pieces, in stream order, each either a position in a capture
//! file (the bytes are read again from there when a comparison needs them, see
//! `reread`) or bytes copied here, because they came from no file or the list is full
//! ([`MAX_PIECES`], so a window of one-byte segments does not cost 24 bytes a byte).
//! Consecutive copied pieces merge, and so do file pieces that are consecutive in the
//! file. (Copying only short segments was tried: the benchmark capture's segments average
//! 375 bytes, and copying those under 64 bytes still cost most of what copying all did,
//! a cache miss on the destination each.)
//!
//! Invariant: the pieces cover exactly the offsets `[end - len, end)`, contiguous and in
//! order (so a piece's offset is the sum of the lengths before it, and is not stored);
//! `len <= cap`; `owned` holds the bytes of the copied pieces, in order, and
//! nothing else; every file piece holds its slot in [`Files`] (released when the piece
//! goes). `cap` is the window's notional size, what the shared memory budget is charged
//! for: the bytes a window can compare are the same whether they are copied or not. The
//! window grows geometrically up to the configured size; a push that does not continue
//! the kept bytes (or a recorded gap) restarts it at its offset.

use std::collections::VecDeque;

use super::reread::Files;

/// Pieces a window keeps before it copies bytes again (one more may follow: the copied
/// piece that later copies merge into). So the list never holds more than 128 pieces of
/// 24 bytes, and its ring never grows past 128 (3 KiB); they hold a 16 KiB window of
/// 128-byte segments.
pub(super) const MAX_PIECES: usize = 127;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Src {
    /// In `History::owned`.
    Copied,
    /// In the file of `slot`, at `pos`.
    File { slot: u16, pos: u64 },
}

/// Bytes of the window, after those of the pieces before it.
#[derive(Clone, Copy, Debug)]
struct Piece {
    len: usize,
    src: Src,
}

/// The last delivered bytes of a direction, by stream offset.
#[derive(Default)]
pub(super) struct History {
    pieces: VecDeque<Piece>,
    /// The bytes of the copied pieces (see the module invariant).
    owned: VecDeque<u8>,
    /// Notional capacity: the window never holds more, and the budget is charged for it.
    cap: usize,
    /// Offset after the last byte kept.
    end: u64,
    /// Bytes kept: offsets [end - len, end).
    len: usize,
}

impl History {
    /// Nothing before `offset` is kept any more (a gap ends there): the next bytes start
    /// the window afresh.
    pub(super) fn clear_at(&mut self, offset: u64, files: &mut Files) {
        for p in self.pieces.drain(..) {
            if let Src::File { slot, .. } = p.src {
                files.release(slot);
            }
        }
        self.owned.clear();
        self.end = offset;
        self.len = 0;
    }

    /// Frees the window for good, keeping its position; returns the capacity it was
    /// charged for.
    pub(super) fn release(&mut self, files: &mut Files) -> usize {
        let freed = self.cap;
        self.clear_at(self.end, files);
        self.pieces = VecDeque::new();
        self.owned = VecDeque::new();
        self.cap = 0;
        freed
    }

    /// Keeps `data`, delivered at `offset` (nothing without a window). `at`: the (file
    /// slot, file offset) of `data` when it can be read again from there.
    pub(super) fn push(
        &mut self,
        offset: u64,
        data: &[u8],
        at: Option<(u16, u64)>,
        files: &mut Files,
    ) {
        let cap = self.cap;
        if cap == 0 {
            return;
        }
        // Only the last `cap` bytes can be kept.
        let skip = data.len().saturating_sub(cap);
        let start = offset + skip as u64;
        let data = &data[skip..];
        if offset != self.end || skip > 0 || self.len == 0 {
            // Nothing kept continues into these bytes (or they replace all of it).
            self.clear_at(start, files);
        }
        let n = data.len();
        match at {
            Some((slot, pos)) if self.pieces.len() < MAX_PIECES => {
                let pos = pos + skip as u64;
                match self.pieces.back_mut() {
                    // The next bytes of the same file (a record cut in two is not).
                    Some(Piece {
                        len,
                        src: Src::File { slot: s, pos: p },
                    }) if *s == slot && *p + *len as u64 == pos => *len += n,
                    _ => {
                        files.hold(slot);
                        self.pieces.push_back(Piece {
                            len: n,
                            src: Src::File { slot, pos },
                        });
                    }
                }
            }
            _ => {
                self.owned.extend(data);
                match self.pieces.back_mut() {
                    Some(Piece {
                        len,
                        src: Src::Copied,
                    }) => *len += n,
                    _ => self.pieces.push_back(Piece {
                        len: n,
                        src: Src::Copied,
                    }),
                }
            }
        }
        self.end = start + n as u64;
        self.len += n;
        self.trim(files);
    }

    /// Drops the oldest bytes beyond `cap`.
    fn trim(&mut self, files: &mut Files) {
        while self.len > self.cap {
            let excess = self.len - self.cap;
            let Some(front) = self.pieces.front_mut() else {
                break;
            };
            let cut = excess.min(front.len);
            match &mut front.src {
                Src::Copied => {
                    self.owned.drain(..cut.min(self.owned.len()));
                }
                Src::File { pos, .. } => *pos += cut as u64,
            }
            front.len -= cut;
            self.len -= cut;
            if front.len == 0 {
                if let Some(Piece {
                    src: Src::File { slot, .. },
                    ..
                }) = self.pieces.pop_front()
                {
                    files.release(slot);
                }
            }
        }
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
        self.cap = new_cap;
        true
    }

    /// Compares `data` (bytes at `offset`) with the kept bytes: (checked, differing,
    /// first differing offset). Bytes a file no longer returns are not checked.
    pub(super) fn compare(
        &self,
        offset: u64,
        data: &[u8],
        files: &mut Files,
    ) -> (u64, u64, Option<u64>) {
        if self.cap == 0 || self.len == 0 {
            return (0, 0, None);
        }
        let lo = offset.max(self.end - self.len as u64);
        let hi = (offset + data.len() as u64).min(self.end);
        let (mut checked, mut diff, mut first) = (0u64, 0u64, None);
        let mut count = |theirs: &[u8], kept: &mut dyn Iterator<Item = u8>, at: u64| {
            for (i, (a, b)) in theirs.iter().zip(kept).enumerate() {
                checked += 1;
                if *a != b {
                    diff += 1;
                    first.get_or_insert(at + i as u64);
                }
            }
        };
        // Where the current piece starts, in the stream and (copied pieces) in `owned`.
        let mut start = self.end - self.len as u64;
        let mut owned_at = 0usize;
        for p in &self.pieces {
            if start >= hi {
                break;
            }
            let (a, b) = (lo.max(start), hi.min(start + p.len as u64));
            if a < b {
                let theirs = &data[(a - offset) as usize..(b - offset) as usize];
                let skip = (a - start) as usize;
                match p.src {
                    Src::Copied => {
                        let from = owned_at + skip;
                        let to = (from + theirs.len()).min(self.owned.len());
                        count(theirs, &mut self.owned.range(from.min(to)..to).copied(), a);
                    }
                    Src::File { slot, pos } => {
                        let kept = files.read(slot, pos + skip as u64, theirs.len());
                        count(theirs, &mut kept.iter().copied(), a);
                    }
                }
            }
            if p.src == Src::Copied {
                owned_at += p.len;
            }
            start += p.len as u64;
        }
        (checked, diff, first)
    }
}

#[cfg(test)]
mod tests {
    use super::{History, Src, MAX_PIECES};
    use crate::analyze::streams::reread::Files;
    use std::io::Write;

    /// The stream's byte at `offset`: period 251, so a piece read from the wrong place
    /// (or a wrong offset into the copies) shows as a difference.
    fn byte_at(offset: u64) -> u8 {
        (offset.wrapping_mul(7) % 251) as u8
    }

    fn bytes(offset: u64, n: usize) -> Vec<u8> {
        (offset..offset + n as u64).map(byte_at).collect()
    }

    /// Where stream offset 0 lies in the test file.
    const FILE_BASE: u64 = 1000;

    /// A file holding the stream's first `n` bytes at `FILE_BASE`, registered in a new
    /// [`Files`]: (files, slot).
    fn stream_file(n: usize) -> (Files, u16, std::fs::File) {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&vec![0xee; FILE_BASE as usize]).unwrap();
        f.write_all(&bytes(0, n)).unwrap();
        let mut files = Files::default();
        let slot = files.add_for_test(std::sync::Arc::new(f.try_clone().unwrap()));
        (files, slot, f)
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

    /// Checks the invariant, then compares ranges in, across and around the window, with
    /// the true bytes and with every byte altered, against the model.
    fn check(h: &History, m: &Model, files: &mut Files, what: &str) {
        assert!(h.len <= h.cap, "{what}: more kept than the capacity");
        let end = m.start + m.kept.len() as u64;
        assert_eq!((h.end, h.len), (end, m.kept.len()), "{what}: window");
        let mut at = h.end - h.len as u64;
        let mut copied = 0;
        for p in &h.pieces {
            assert!(p.len > 0, "{what}: empty piece");
            at += p.len as u64;
            if p.src == Src::Copied {
                copied += p.len;
            }
        }
        assert_eq!(at, h.end, "{what}: pieces do not reach the end");
        assert_eq!(copied, h.owned.len(), "{what}: copied bytes");
        let lo = m.start.saturating_sub(300);
        let mut ranges = vec![(lo, end + 300 - lo), (m.start, m.kept.len() as u64)];
        for i in 0..40u64 {
            let a = lo + i * 97 % (end + 200 - lo);
            ranges.push((a, 1 + i * 53 % 700));
        }
        for (offset, n) in ranges {
            let good = bytes(offset, n as usize);
            let expect = m.compare(offset, &good);
            assert_eq!(
                h.compare(offset, &good, files),
                expect,
                "{what}: [{offset}; {n}]"
            );
            assert_eq!(expect.1, 0);
            let bad: Vec<u8> = good.iter().map(|b| b ^ 0x5a).collect();
            let expect = m.compare(offset, &bad);
            assert_eq!(
                h.compare(offset, &bad, files),
                expect,
                "{what}: altered [{offset}; {n}]"
            );
            assert_eq!(expect.1, expect.0);
        }
    }

    /// Growth, wraps, gaps and oversized pushes, each push kept as a file position when
    /// `from_file(step)` says so (and it is long enough), copied otherwise.
    fn history_matches_the_stream(from_file: fn(usize) -> bool, what: &str) {
        let (max, total) = (4096usize, 1usize << 20);
        let (mut files, slot, _f) = stream_file(80_000);
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
            // Past the capacity, in pieces that cut the oldest piece.
            (0, 3000),
            (0, 777),
            (0, 4095),
            (0, 1),
            (0, 2049),
            (0, 600),
            (0, 600),
            (0, 100),
            (0, 600),
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
        let mut step = |h: &mut History, m: &mut Model, files: &mut Files, i, at: u64, n| {
            let data = bytes(at, n);
            let from = from_file(i).then_some((slot, FILE_BASE + at));
            assert!(h.reserve(n, max, &mut mem, total));
            h.push(at, &data, from, files);
            m.push(h.cap, at, &data);
            check(h, m, files, &format!("{what}: step {i}"));
        };
        for (i, &(gap, n)) in steps.iter().enumerate() {
            at += gap;
            step(&mut h, &mut m, &mut files, i, at, n);
            at += n as u64;
        }
        assert_eq!(h.cap, max);
        // A recorded gap: nothing before it is kept; the window restarts after it.
        h.clear_at(at + 10, &mut files);
        assert_eq!(files.held(), [0], "{what}: a cleared window holds no file");
        m = Model {
            start: at + 10,
            kept: Vec::new(),
        };
        check(&h, &m, &mut files, &format!("{what}: after clear_at"));
        at += 10;
        for (i, n) in [1000usize, 3500, 2000].into_iter().enumerate() {
            step(&mut h, &mut m, &mut files, 100 + i, at, n);
            at += n as u64;
        }
        // A different byte is found, at its offset.
        let mut wrong = bytes(at - 10, 10);
        wrong[3] ^= 0xff;
        assert_eq!(
            h.compare(at - 10, &wrong, &mut files),
            (10, 1, Some(at - 7))
        );
        assert_eq!(h.release(&mut files), max);
        assert_eq!(files.held(), [0], "{what}: a released window holds no file");
        assert_eq!(
            (h.cap, h.compare(at - 10, &wrong, &mut files)),
            (0, (0, 0, None))
        );
    }

    #[test]
    fn history_matches_the_last_bytes_of_the_stream() {
        history_matches_the_stream(|_| false, "copied");
        history_matches_the_stream(|_| true, "file");
        history_matches_the_stream(|i| i % 2 == 0, "mixed");
        history_matches_the_stream(|i| i % 3 == 1, "mixed 2");
    }

    /// Consecutive positions in the file merge into one piece; past [`MAX_PIECES`],
    /// bytes are copied into one more piece.
    #[test]
    fn pieces_stay_few() {
        let (mut files, slot, _f) = stream_file(1 << 16);
        let mut h = History::default();
        let mut mem = 0;
        assert!(h.reserve(16 << 10, 16 << 10, &mut mem, 1 << 20));
        let mut at = 0u64;
        for _ in 0..40 {
            h.push(
                at,
                &bytes(at, 100),
                Some((slot, FILE_BASE + at)),
                &mut files,
            );
            at += 100;
        }
        assert_eq!((h.pieces.len(), files.held()), (1, vec![1]));
        // Not back to back in the file (a record header between each): a piece each, up
        // to the limit, then one copied piece.
        let mut gapped = |h: &mut History, files: &mut Files, n: u64| {
            for i in 0..n {
                h.push(
                    at,
                    &bytes(at, 20),
                    Some((slot, FILE_BASE + at + i + 1)),
                    files,
                );
                at += 20;
            }
        };
        gapped(&mut h, &mut files, 3 * MAX_PIECES as u64);
        assert_eq!(h.pieces.len(), MAX_PIECES + 1);
        // The list's memory: 128 pieces of 24 bytes at most, pushes and trims included.
        assert_eq!(std::mem::size_of::<super::Piece>(), 24);
        gapped(&mut h, &mut files, 1000);
        assert!(h.pieces.capacity() <= 128, "{}", h.pieces.capacity());
        // Each file piece holds its slot once; the copies are exactly the copied pieces.
        let (mut file_pieces, mut copied) = (0, 0);
        for p in &h.pieces {
            match p.src {
                Src::File { .. } => file_pieces += 1,
                Src::Copied => copied += p.len,
            }
        }
        assert_eq!(files.held(), [file_pieces]);
        assert_eq!((h.owned.len(), h.len), (copied, 16 << 10));
        let _ = h.release(&mut files);
        assert_eq!(files.held(), [0]);
    }

    /// Bytes the file no longer holds (it was cut short) are left unchecked.
    #[test]
    fn bytes_a_file_no_longer_returns_are_unchecked() {
        let (mut files, slot, f) = stream_file(4096);
        let mut h = History::default();
        let mut mem = 0;
        assert!(h.reserve(4096, 4096, &mut mem, 1 << 20));
        h.push(0, &bytes(0, 4096), Some((slot, FILE_BASE)), &mut files);
        assert_eq!(h.compare(0, &bytes(0, 4096), &mut files), (4096, 0, None));
        f.set_len(FILE_BASE + 1000).unwrap();
        assert_eq!(h.compare(0, &bytes(0, 4096), &mut files), (1000, 0, None));
    }

    #[test]
    fn a_refused_window_keeps_its_size_and_wraps() {
        let mut files = Files::default();
        // The budget refuses growth from nothing: no window, nothing kept.
        let mut g = History::default();
        let mut mem = 0;
        assert!(!g.reserve(1000, 4096, &mut mem, 100));
        g.push(0, &bytes(0, 1000), None, &mut files);
        assert_eq!((g.cap, g.compare(0, &bytes(0, 1000), &mut files).0), (0, 0));
        // It refuses growth past 256 bytes: that window keeps the last 256 bytes.
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
            h.push(at, &data, None, &mut files);
            m.push(h.cap, at, &data);
            at += n as u64;
            check(&h, &m, &mut files, &format!("refused, {n}"));
        }
        assert_eq!((h.cap, mem), (256, 256));
    }
}
