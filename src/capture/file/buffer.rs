//! The byte source of a capture file: where its bytes come from ([`Input`]: a stream, a
//! regular file that can give its descriptor back and reopen at its position, or the
//! read-ahead thread) and our own [`Buffer`] over it, which knows every byte's file offset.
//!
//! Invariants: the buffer grows only as bytes actually arrive (doubling, up to what a
//! record needs), never straight to a length a record claims; callers check a length
//! against the record cap before asking for it. A file that has not started reading keeps
//! a 4 KiB buffer, one being read at least 1 MiB; one that ended keeps nothing.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use std::ops::Deref;
use std::sync::Arc;

use crate::capture::ahead::{
    Chunk, ReadAhead, SharedBlock, Source, Window, AHEAD_HEADROOM, WINDOW,
};
use crate::capture::sigbus;

const MIN_BUFFER: usize = 1 << 20;
/// The buffer of a file that has not started reading packets: enough for file headers.
const HEADER_BUFFER: usize = 4 << 10;

/// A regular file that can give its descriptor back and reopen at the same position.
/// (Shared: the read-ahead blocks hand it on, so the stream history can read bytes again.)
pub(super) struct Reopen {
    pub(super) path: PathBuf,
    pub(super) file: Option<Arc<File>>,
    /// Bytes read so far: where a reopened file continues.
    pub(super) pos: u64,
    /// Whether to try mapping windows of the file (off once a map fails or reaches the
    /// size the file had: the rest, if it grows, is read).
    pub(super) map: bool,
    /// Where the first window starts, when not at `pos` (the unread offset: the bytes
    /// buffered while the headers were read are then mapped again, not copied).
    pub(super) map_from: Option<u64>,
}

impl Reopen {
    fn open(&mut self) -> std::io::Result<&Arc<File>> {
        let file = match self.file.take() {
            Some(f) => f,
            None => {
                // The file may have vanished or changed since it was opened: that is a read
                // error here, which the reader reports as damage at this offset.
                Arc::new(File::open(&self.path)?)
            }
        };
        Ok(self.file.insert(file))
    }
}

impl Read for Reopen {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // At `pos`, not at the descriptor's offset: mapped windows move `pos` only.
        let pos = self.pos;
        let n = self.open()?.read_at(buf, pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Source for Reopen {
    fn origin(&mut self) -> Option<(Arc<File>, u64)> {
        // An open error comes back from the read that follows.
        let pos = self.pos;
        self.open().ok().map(|f| (Arc::clone(f), pos))
    }

    fn window(&mut self) -> Option<std::io::Result<Window>> {
        if !self.map {
            return None;
        }
        let start = self.map_from.unwrap_or(self.pos);
        // The size now: a window never passes the end of the file (its pages would raise
        // SIGBUS), and a file that grows after this is read for the rest.
        let (file, size) = match self
            .open()
            .and_then(|f| Ok((Arc::clone(f), f.metadata()?.len())))
        {
            Ok(f) => f,
            Err(e) => return Some(Err(e)),
        };
        let left = size.saturating_sub(start);
        if left == 0 {
            self.map = false;
            return None;
        }
        // Both below `WINDOW + AHEAD_HEADROOM`, so the casts keep their values.
        let own = left.min(WINDOW as u64) as usize;
        let len = left.min((own + AHEAD_HEADROOM) as u64) as usize;
        if self.map_from.is_some() {
            // This file's first window.
            sigbus::watch(&self.path);
        }
        match Window::map(&file, start, own, len) {
            Ok(w) => {
                self.map_from = None;
                self.pos = start + own as u64;
                Some(Ok(w))
            }
            // A file system that cannot map (some network and FUSE ones): read instead.
            Err(_) => {
                self.map = false;
                None
            }
        }
    }
}

/// Where a capture's bytes come from.
pub(super) enum Input {
    /// Standard input, pipes, and readers handed in by callers: kept open throughout.
    Stream(Box<dyn Read + Send>),
    File(Reopen),
    /// A regular file being read by its own thread (see [`ReadAhead`]).
    Ahead(ReadAhead),
    /// The capture ended; its descriptor is closed.
    Closed,
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Input::Stream(r) => r.read(buf),
            Input::File(r) => r.read(buf),
            Input::Ahead(a) => a.read(buf),
            Input::Closed => Ok(0),
        }
    }
}

impl Input {
    /// Gives a regular file's descriptor back until the next read.
    pub(super) fn park(&mut self) {
        if let Input::File(r) = self {
            r.file = None;
        }
    }
}

/// The buffer's memory: our own, or a read-ahead block shared with later stages.
pub(super) enum Storage {
    Own(Vec<u8>),
    Shared(Arc<SharedBlock>),
}

impl Deref for Storage {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Storage::Own(v) => v,
            Storage::Shared(b) => b,
        }
    }
}

impl Storage {
    /// The bytes as a vector of our own, to write to (a shared block is copied: only on
    /// the rare paths that move bytes, such as a record longer than the headroom).
    fn own_mut(&mut self) -> &mut Vec<u8> {
        if let Storage::Shared(b) = self {
            *self = Storage::Own(b.to_vec());
        }
        match self {
            Storage::Own(v) => v,
            Storage::Shared(_) => unreachable!("made our own above"),
        }
    }
}

/// A byte source with offsets: our own buffer so offsets and caps are exact.
pub(super) struct Buffer {
    pub(super) reader: Input,
    pub(super) buf: Storage,
    pub(super) pos: usize,
    pub(super) len: usize,
    /// File offset of `buf[pos]`.
    pub(super) offset: u64,
    pub(super) eof: bool,
    /// Holds a block's unread tail while the next block is awaited (reused).
    spare: Vec<u8>,
    /// Map a regular file rather than read it, when it starts being read.
    pub(super) map_file: bool,
}

impl Buffer {
    pub(super) fn new(reader: Input) -> Self {
        Buffer {
            reader,
            buf: Storage::Own(vec![0; HEADER_BUFFER]),
            pos: 0,
            len: 0,
            offset: 0,
            eof: false,
            spare: Vec::new(),
            map_file: false,
        }
    }

    pub(super) fn available(&self) -> &[u8] {
        &self.buf[self.pos..self.len]
    }

    /// Makes at least `need` bytes available unless the input ends first; returns how many
    /// are available. `need` must already be checked against the record cap.
    #[inline]
    pub(super) fn fill(&mut self, need: usize) -> std::io::Result<usize> {
        if self.len - self.pos >= need || self.eof {
            return Ok(self.len - self.pos);
        }
        self.fill_more(need)
    }

    /// [`Buffer::fill`] when the buffered bytes are too few: apart, so the check that
    /// nearly every record passes (twice: header, then data) is inlined into the readers.
    #[inline(never)]
    fn fill_more(&mut self, need: usize) -> std::io::Result<usize> {
        if let Input::Ahead(_) = self.reader {
            return self.fill_ahead(need);
        }
        let buf = self.buf.own_mut();
        if self.pos > 0 {
            buf.copy_within(self.pos..self.len, 0);
            self.len -= self.pos;
            self.pos = 0;
        }
        while self.len < need {
            if self.len == buf.len() {
                // Grow by doubling as bytes actually arrive, never straight to the declared
                // length: a record claiming the whole `--max-record` in a short file (or a
                // pipe that ends early) then costs about what was read, not what was claimed.
                // `target >= need > self.len == buf.len()`, so this always grows.
                let target = need.checked_next_power_of_two().unwrap_or(need);
                let grown = buf.len().saturating_mul(2).max(1).min(target);
                grow_to(buf, self.len, grown);
            }
            match self.reader.read(&mut buf[self.len..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.len += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.len - self.pos)
    }

    /// [`Buffer::fill`] from the read-ahead thread's windows and blocks.
    ///
    /// A window (a mapped range of the file) that holds the unread bytes simply replaces
    /// the buffer: windows overlap by the headroom, so the unread tail (part of one record)
    /// is already in the next one. A block swaps buffers: the tail is copied into the new
    /// block's headroom, just before its bytes, and the old buffer goes back to the thread;
    /// so file bytes are copied once, by the kernel, on the other core. A tail longer than
    /// the headroom (a record bigger than 64 KiB) falls back to appending, growing as
    /// bytes arrive.
    fn fill_ahead(&mut self, need: usize) -> std::io::Result<usize> {
        while self.len - self.pos < need {
            let tail = self.len - self.pos;
            if tail <= AHEAD_HEADROOM && matches!(self.buf, Storage::Shared(_)) {
                // Give the block back before waiting for the next one, keeping only its
                // unread tail: holding it meanwhile made one block more than the
                // read-ahead's depth exist at every swap, 1 MiB of peak memory that a
                // run used or not depending on thread timing.
                let mut kept = std::mem::take(&mut self.spare);
                kept.clear();
                kept.extend_from_slice(&self.buf[self.pos..self.len]);
                self.buf = Storage::Own(kept);
                self.pos = 0;
                self.len = tail;
            }
            let Input::Ahead(ahead) = &mut self.reader else {
                unreachable!("fill_ahead is called for Input::Ahead only");
            };
            let Some(chunk) = ahead.next_block()? else {
                self.eof = true;
                break;
            };
            let mut block = match chunk {
                Chunk::Window(w) => {
                    let start = w.start;
                    let shared = ahead.share_window(w);
                    self.take_window(shared, start)?;
                    continue;
                }
                Chunk::Block(b) => b,
            };
            if tail <= AHEAD_HEADROOM {
                let start = AHEAD_HEADROOM - tail;
                block.data[start..AHEAD_HEADROOM].copy_from_slice(&self.buf[self.pos..self.len]);
                // From here on the block is only read: share it, so the stream thread can
                // point into it rather than copy payloads out.
                let len = block.len;
                let new = Storage::Shared(ahead.share(block, start));
                self.replace_buf(new);
                self.pos = start;
                self.len = len;
            } else {
                self.append(&block.data[AHEAD_HEADROOM..block.len]);
                self.recycle(block.data);
            }
        }
        Ok(self.len - self.pos)
    }

    /// Moves on to a window (`w`, mapped from file offset `from`): it replaces the buffer
    /// when it holds every unread byte, else (a record longer than the windows' overlap)
    /// its bytes past the buffered ones are appended.
    fn take_window(&mut self, w: Arc<SharedBlock>, from: u64) -> std::io::Result<()> {
        let to = from + w.len() as u64;
        let end = self.offset + (self.len - self.pos) as u64;
        if from <= self.offset && end <= to {
            self.pos = (self.offset - from) as usize;
            self.len = w.len();
            self.replace_buf(Storage::Shared(w));
        } else if (from..=to).contains(&end) {
            self.append(&w[(end - from) as usize..]);
        } else {
            // The thread maps from where the buffered bytes end; anything else is a bug,
            // reported as a read error at this offset rather than wrong bytes.
            return Err(std::io::Error::other(format!(
                "read-ahead window at offset {from} does not continue the bytes read up to {end}"
            )));
        }
        Ok(())
    }

    /// Sets the buffer's storage, keeping the old one for reuse where it can be.
    fn replace_buf(&mut self, new: Storage) {
        if let Storage::Own(old) = std::mem::replace(&mut self.buf, new) {
            if old.capacity() <= AHEAD_HEADROOM {
                // A tail kept above (or the header buffer): reused for the next.
                self.spare = old;
            } else {
                self.recycle(old);
            }
        }
    }

    /// Gives a read-ahead buffer back to its thread (others are dropped).
    fn recycle(&mut self, buf: Vec<u8>) {
        if let Input::Ahead(ahead) = &mut self.reader {
            ahead.recycle(buf);
        }
    }

    /// Appends `bytes` after the unread ones, in a buffer of our own (moving the unread
    /// bytes to its start, growing it by doubling as needed).
    fn append(&mut self, bytes: &[u8]) {
        let buf = self.buf.own_mut();
        if self.pos > 0 {
            buf.copy_within(self.pos..self.len, 0);
            self.len -= self.pos;
            self.pos = 0;
        }
        if buf.len() < self.len + bytes.len() {
            let size = (self.len + bytes.len()).checked_next_power_of_two();
            grow_to(buf, self.len, size.unwrap_or(self.len + bytes.len()));
        }
        buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// Read-ahead blocks made so far (0 when the input is not read ahead).
    pub(super) fn blocks_made(&self) -> usize {
        match &self.reader {
            Input::Ahead(a) => a.blocks_made(),
            _ => 0,
        }
    }

    /// The shared read-ahead block the buffer's bytes are in, if they are in one.
    pub(super) fn shared(&self) -> Option<&Arc<SharedBlock>> {
        match &self.buf {
            Storage::Shared(b) => Some(b),
            Storage::Own(_) => None,
        }
    }

    pub(super) fn consume(&mut self, n: usize) {
        self.pos += n;
        self.offset += n as u64;
        // The next record's header and the packet headers after it, which the pipeline
        // reads next: the reader thread wrote this block on another core (see `cpu`).
        let next = &self.buf[..self.len];
        for line in [0, 64, 128] {
            crate::cpu::prefetch_at(next, self.pos + line);
        }
    }
}

/// Replaces `buf` by a larger one (`size >= len`) holding the same first `len` bytes. A
/// fresh zeroed allocation (calloc: pages are touched only when read into) rather than
/// `resize`, which writes every new byte.
fn grow_to(buf: &mut Vec<u8>, len: usize, size: usize) {
    let mut bigger = vec![0; size];
    bigger[..len].copy_from_slice(&buf[..len]);
    *buf = bigger;
}

impl Buffer {
    /// The input is being read: a regular file gets its read-ahead thread; anything else
    /// a buffer large enough for few, large reads.
    pub(super) fn start_reading(&mut self) {
        if matches!(self.reader, Input::File(_)) {
            if let Input::File(mut file) = std::mem::replace(&mut self.reader, Input::Closed) {
                // Mapped from the first unread byte: the buffered ones are mapped again.
                file.map = self.map_file;
                file.map_from = self.map_file.then_some(self.offset);
                self.reader = Input::Ahead(ReadAhead::start(file));
            }
        }
        if self.buf.len() < MIN_BUFFER && !matches!(self.reader, Input::Ahead(_)) {
            let len = self.len;
            grow_to(self.buf.own_mut(), len, MIN_BUFFER);
        }
    }

    /// The input ended: free the buffer and close the descriptor.
    pub(super) fn release(&mut self) {
        self.buf = Storage::Own(Vec::new());
        self.pos = 0;
        self.len = 0;
        self.reader = Input::Closed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A file that grows after its last window was mapped: the windows stop at the size
    /// they saw, and the reads that follow start where they stopped (not where the
    /// descriptor was left by the header read), so the appended bytes come next.
    #[test]
    fn reads_continue_where_the_windows_stopped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("growing");
        let first: Vec<u8> = (0..WINDOW + 5_000).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &first).expect("write");
        let mut r = Reopen {
            path: path.clone(),
            file: Some(Arc::new(File::open(&path).expect("open"))),
            pos: 0,
            map: true,
            map_from: Some(100),
        };
        // The header read went on past the first unread byte (100), where the first window
        // starts; and it moved the descriptor: the reads below must not start there.
        let mut head = [0u8; 4096];
        r.read_exact(&mut head).expect("header");
        let mut got = head[..100].to_vec();
        while let Some(w) = r.window() {
            let w = w.expect("maps");
            assert_eq!(w.start, got.len() as u64, "windows follow each other");
            assert!(w.map.len() <= w.own + AHEAD_HEADROOM);
            got.extend_from_slice(&w.map[..w.own]);
        }
        assert!(got == first, "the windows hold the file as it was");
        let more = b"appended after the last window";
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(more))
            .expect("append");
        assert!(r.window().is_none(), "no window once the reads took over");
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).expect("read");
        assert_eq!(rest, more);
    }
}
