//! The capture files that delivered bytes can be read again from, so the history window
//! (see `history`) keeps a file position instead of a copy of each byte.
//!
//! Why: copying every delivered byte into its direction's history window was the largest
//! single cost of the stream thread (the 1 GB benchmark capture delivers 648 MB), and the
//! copy is read only when a re-sent segment overlaps delivered bytes, which is rare. A
//! payload read from a regular file through the read-ahead thread knows its file offset
//! ([`SharedBlock::file_offset`]); the history keeps that, and this module reads the bytes
//! back when a comparison needs them.
//!
//! Invariants:
//! - A file stays open here while any history piece refers to its slot (a count per
//!   slot); a slot no piece refers to is reused for the next file.
//! - At most [`MAX_FILES`] files are held at once: beyond that, bytes are copied into the
//!   history as they are when they do not come from a file (a pipe, reassembled IP
//!   fragments, the out-of-order buffer), so a run over thousands of files holds a few
//!   descriptors, and the report is the same either way.
//! - A read that fails or comes back short (the file changed under us) leaves the bytes
//!   it did not return unchecked; it never fails the analysis.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use crate::capture::SharedBlock;

/// Files held at once (see the module docs).
pub(super) const MAX_FILES: usize = 16;

struct Slot {
    file: Arc<File>,
    /// History pieces that refer to this slot.
    pieces: usize,
}

/// The files history pieces refer to, by slot.
#[derive(Default)]
pub(super) struct Files {
    slots: Vec<Option<Slot>>,
    /// The slot found last: packets come from one file for long runs.
    last: usize,
    /// Bytes read back for a comparison.
    scratch: Vec<u8>,
}

/// Where the payload of the packet being analysed lies: the read-ahead block it is in and
/// the slot of that block's file.
#[derive(Clone, Copy)]
pub(super) struct Origin<'a> {
    pub(super) slot: u16,
    pub(super) block: &'a SharedBlock,
}

impl Origin<'_> {
    /// The (slot, file offset) of `bytes`, if they are file bytes of this block.
    pub(super) fn locate(&self, bytes: &[u8]) -> Option<(u16, u64)> {
        Some((self.slot, self.block.file_offset(bytes)?))
    }
}

impl Files {
    /// Where the bytes of `block` can be read again: None when it was not read from a
    /// file or [`MAX_FILES`] other files are in use.
    #[inline]
    pub(super) fn origin<'a>(&mut self, block: &'a SharedBlock) -> Option<Origin<'a>> {
        let file = block.file()?;
        let slot = match self.slots.get(self.last) {
            Some(Some(s)) if Arc::ptr_eq(&s.file, file) => self.last,
            _ => self.find(file)?,
        };
        Some(Origin {
            slot: slot as u16,
            block,
        })
    }

    #[inline(never)]
    fn find(&mut self, file: &Arc<File>) -> Option<usize> {
        let held = |s: &Option<Slot>| s.as_ref().is_some_and(|s| Arc::ptr_eq(&s.file, file));
        let i = match self.slots.iter().position(held) {
            Some(i) => i,
            None => {
                let unused = self
                    .slots
                    .iter()
                    .position(|s| s.as_ref().is_none_or(|s| s.pieces == 0));
                let i = match unused {
                    Some(i) => i,
                    None if self.slots.len() < MAX_FILES => {
                        self.slots.push(None);
                        self.slots.len() - 1
                    }
                    None => return None,
                };
                // A reused slot's file (no piece refers to it) is closed here.
                self.slots[i] = Some(Slot {
                    file: Arc::clone(file),
                    pieces: 0,
                });
                i
            }
        };
        self.last = i;
        Some(i)
    }

    /// A history piece now refers to `slot`.
    pub(super) fn hold(&mut self, slot: u16) {
        if let Some(Some(s)) = self.slots.get_mut(usize::from(slot)) {
            s.pieces += 1;
        }
    }

    /// A history piece that referred to `slot` is gone.
    pub(super) fn release(&mut self, slot: u16) {
        if let Some(Some(s)) = self.slots.get_mut(usize::from(slot)) {
            s.pieces = s.pieces.saturating_sub(1);
        }
    }

    /// Up to `len` bytes at `pos` of the file in `slot`: fewer when the file is shorter
    /// now or cannot be read.
    pub(super) fn read(&mut self, slot: u16, pos: u64, len: usize) -> &[u8] {
        let Some(Some(s)) = self.slots.get(usize::from(slot)) else {
            return &[];
        };
        self.scratch.clear();
        self.scratch.resize(len, 0);
        let mut got = 0;
        while got < len {
            match s.file.read_at(&mut self.scratch[got..], pos + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        &self.scratch[..got]
    }

    /// Holds `file` in a new slot (tests build no read-ahead blocks).
    #[cfg(test)]
    pub(super) fn add_for_test(&mut self, file: Arc<File>) -> u16 {
        self.slots.push(Some(Slot { file, pieces: 0 }));
        (self.slots.len() - 1) as u16
    }

    /// Pieces referring to each slot in use (for tests: all zero once every stream ended).
    #[cfg(test)]
    pub(super) fn held(&self) -> Vec<usize> {
        self.slots.iter().flatten().map(|s| s.pieces).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Slots are found again by file, reused once no piece holds them, and refused when
    /// MAX_FILES files are held.
    #[test]
    fn slots_are_bounded_and_reused() {
        let file = || Arc::new(tempfile::tempfile().unwrap());
        let mut files = Files::default();
        let held: Vec<Arc<File>> = (0..MAX_FILES).map(|_| file()).collect();
        for (i, f) in held.iter().enumerate() {
            assert_eq!(files.find(f), Some(i));
            files.hold(i as u16);
        }
        assert_eq!(files.find(&held[3]), Some(3));
        let extra = file();
        assert_eq!(files.find(&extra), None, "every slot is held");
        files.release(5);
        assert_eq!(files.find(&extra), Some(5), "slot 5 no longer held");
        assert_eq!(files.slots.len(), MAX_FILES);
        // The file that slot 5 held is closed here (only the test's handle is left).
        assert_eq!(Arc::strong_count(&held[5]), 1);
        assert_eq!(files.read(5, 0, 10), b"");
    }
}
