//! Read-ahead: a thread that brings a capture file into memory a few MiB at a time while
//! the analysis thread works on the earlier bytes.
//!
//! The pipeline chooses how (`CaptureFile::map_file`):
//!
//! - **Mapped** ([`Window`]): the thread maps the next [`WINDOW`] bytes of the file and
//!   has the kernel fill in their page tables (`MAP_POPULATE`), so the analysis threads
//!   read the page cache in place and take no page faults; no byte is copied. Windows
//!   overlap by [`AHEAD_HEADROOM`] bytes, so a record that crosses a window's end is whole
//!   in that window, and the reader of the windows (`file::buffer::Buffer`) moves on to
//!   the next window at its unread offset. Spent windows go back to this thread to be
//!   unmapped here: unmapping costs a TLB shootdown on every core the process runs on.
//! - **Read** ([`Block`]): the thread reads 1 MiB blocks that are handed over whole and
//!   come back for reuse, so no byte is copied twice: the reader of the blocks swaps its
//!   buffer for the new block, keeping the unread tail of the old one in the headroom.
//!   Also the fallback of a mapped file: a file system that cannot map, or bytes appended
//!   after the size the last window saw.
//!
//! Why both: the kernel's copy into blocks was 11% of a 1 GB `--all --json` run's CPU time
//! on the project's two-core machine, on a third thread competing with the two analysis
//! threads; mapping removes it (0.82 s read, 0.69 s mapped with 4 MiB windows; 1 MiB
//! windows gave 0.76 s, 8 MiB no better than 4). But the bytes of a mapped window come to
//! the pipeline thread from memory, not from the cache the copy left them in, so where the
//! copy can run in time the analysis threads leave idle, reading is faster: the default
//! summary on two cores (0.43 s read, 0.48 s mapped), and `--streams` alone, whose stream
//! thread waits for the pipeline thread most of the time (0.50 to 0.52 s read, 0.54 to
//! 0.55 s mapped). The pipeline decides (`pipeline::run_source`).
//!
//! Invariants:
//! - Memory is bounded: at most [`DEPTH`] filled blocks or windows wait in the channel,
//!   plus the one being filled and the one being read ([`BLOCK`] or [`WINDOW`], and
//!   [`AHEAD_HEADROOM`] bytes each), plus the ones later stages still hold
//!   ([`SharedBlock`]; the stream thread's batches hold at most two each), plus spent
//!   windows not yet unmapped (they are unmapped before the next window is made).
//! - A mapped file that shrinks while it is read raises SIGBUS where its lost bytes are
//!   read; [`sigbus`](super::sigbus) turns that into a one-line error naming the file and
//!   exit status 1, never a silent crash. A window never passes the file's size when it
//!   is mapped, so a file that only grows (a capture still being written) is safe.
//! - Bytes arrive in file order; an I/O error is delivered after every byte read before
//!   it, and then the input ends. The end of input is an explicit message, so a thread
//!   that stopped without one (it cannot panic, but if it did) is an error, never a
//!   silently short file.
//! - Dropping the [`ReadAhead`] stops the thread at its next block (it is detached, not
//!   joined: a read blocked on a FIFO must not hang the analysis).

use std::fs::File;
use std::io::{self, ErrorKind, Read};
use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Arc;

use memmap2::Mmap;

/// Bytes read per block.
pub const BLOCK: usize = 1 << 20;
/// A mapped window's own bytes (it maps up to [`AHEAD_HEADROOM`] more). Each window
/// costs a map, a populate and an unmap with its TLB shootdown: 4 MiB windows made a 1 GB
/// `--all --json` run 9% faster than 1 MiB ones, for about 13 MB more peak memory.
pub const WINDOW: usize = 4 << 20;
/// Room before a block's bytes for the unread tail of the previous block (a record cut by
/// the block boundary): 64 KiB holds every record of a 64 KiB snapshot length.
pub const AHEAD_HEADROOM: usize = 64 << 10;
/// Filled blocks waiting for the analysis thread.
const DEPTH: usize = 2;

/// What the read-ahead thread reads: any reader; a regular file also says where its next
/// byte lies, so the blocks can say where theirs came from, and can be mapped.
pub trait Source: Read + Send + 'static {
    /// The file the next byte read comes from and its offset there (None: not a file
    /// that can be read again).
    fn origin(&mut self) -> Option<(Arc<File>, u64)> {
        None
    }

    /// The next window of the file, mapped, and the read position moved past its own
    /// bytes; None when the source cannot be mapped (any more): the thread then reads.
    fn window(&mut self) -> Option<io::Result<Window>> {
        None
    }
}

/// A memory-mapped range of a file: `map` holds the file's bytes from offset `start`;
/// its first `own` bytes are this window's, the rest (at most [`AHEAD_HEADROOM`]) are the
/// next window's first bytes, there so that a record crossing `start + own` is whole here.
pub struct Window {
    pub map: Mmap,
    pub file: Arc<File>,
    pub start: u64,
    pub own: usize,
}

impl Window {
    /// Maps `len` bytes of `file` from `start`, page tables filled (so the reader takes no
    /// page faults); `own` of them belong to this window. `len` must not pass the end of the
    /// file as it is now (pages past the end raise SIGBUS when read).
    pub fn map(file: &Arc<File>, start: u64, own: usize, len: usize) -> io::Result<Window> {
        debug_assert!(own <= len && len <= own + AHEAD_HEADROOM);
        // SAFETY: the map is only read. Another process may change the file meanwhile:
        // bytes that change are read as they are (a capture is untrusted data anyway), and
        // bytes cut off by truncation raise SIGBUS, which `capture::sigbus` reports.
        let map = unsafe {
            memmap2::MmapOptions::new()
                .offset(start)
                .len(len)
                .populate()
                .map(&**file)?
        };
        Ok(Window {
            map,
            file: Arc::clone(file),
            start,
            own,
        })
    }
}

/// A block being read, shared with later stages (the stream thread's batches point into it
/// instead of copying payloads): its memory goes back to the reading thread's pool when
/// the last holder drops it.
pub struct SharedBlock {
    data: Memory,
    /// Where `data` goes when dropped: back to the reading thread.
    back: Sender<Spent>,
    /// The file and the offset of `data[valid.0]` in it, when read from a file.
    origin: Option<(Arc<File>, u64)>,
    /// `data[valid.0..valid.1]` are file bytes (the headroom before `valid.0` holds stale
    /// bytes of an earlier block).
    valid: (usize, usize),
}

/// A shared block's bytes: a pooled buffer or a mapped window.
enum Memory {
    Pooled(Vec<u8>),
    Mapped(Mmap),
}

/// Memory going back to the reading thread: a buffer to reuse, or a window to unmap
/// there (unmapping changes the process's page tables: it is done off the analysis
/// threads, which measured 10% slower in a default run when they unmapped).
pub enum Spent {
    Buffer(Vec<u8>),
    Window(Mmap),
}

impl SharedBlock {
    /// The file the block was read from, if it was read from a regular file.
    pub fn file(&self) -> Option<&Arc<File>> {
        self.origin.as_ref().map(|(f, _)| f)
    }

    /// Where `bytes` start in the block, if they lie in it (compared by address: a copy
    /// elsewhere does not).
    pub fn index_of(&self, bytes: &[u8]) -> Option<usize> {
        let data: &[u8] = self;
        let at = (bytes.as_ptr() as usize).checked_sub(data.as_ptr() as usize)?;
        (at.checked_add(bytes.len())? <= data.len()).then_some(at)
    }

    /// The offset in [`file`](Self::file) of `bytes`, when they are file bytes of this
    /// block.
    pub fn file_offset(&self, bytes: &[u8]) -> Option<u64> {
        let (_, start) = self.origin.as_ref()?;
        let at = self.index_of(bytes)?;
        if at < self.valid.0 || at + bytes.len() > self.valid.1 {
            return None;
        }
        Some(start + (at - self.valid.0) as u64)
    }
}

impl std::fmt::Debug for SharedBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedBlock({} bytes)", self.len())
    }
}

impl Deref for SharedBlock {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        match &self.data {
            Memory::Pooled(v) => v,
            Memory::Mapped(m) => m,
        }
    }
}

impl Drop for SharedBlock {
    fn drop(&mut self) {
        let spent = match std::mem::replace(&mut self.data, Memory::Pooled(Vec::new())) {
            Memory::Pooled(v) => Spent::Buffer(v),
            Memory::Mapped(m) => Spent::Window(m),
        };
        // The reading thread may have ended: then the memory is simply freed here.
        let _ = self.back.send(spent);
    }
}

/// One block: `data[AHEAD_HEADROOM..len]` holds the bytes read.
pub struct Block {
    pub data: Vec<u8>,
    pub len: usize,
    /// The file and the offset of `data[AHEAD_HEADROOM]` in it, when read from a file.
    pub origin: Option<(Arc<File>, u64)>,
}

/// What the analysis thread gets next: bytes read into a block, or a mapped window.
pub enum Chunk {
    Block(Block),
    Window(Window),
}

#[cfg(test)]
impl Chunk {
    /// The chunk's own bytes (a window's overlap belongs to the next window).
    fn own(&self) -> &[u8] {
        match self {
            Chunk::Block(b) => &b.data[AHEAD_HEADROOM..b.len],
            Chunk::Window(w) => &w.map[..w.own],
        }
    }
}

enum Msg {
    Data(Chunk),
    Error(io::Error),
    End,
}

/// The analysis thread's end of a read-ahead thread.
pub struct ReadAhead {
    rx: Receiver<Msg>,
    back: Sender<Spent>,
    /// The input ended (cleanly or with an error already delivered).
    done: bool,
    /// A block being consumed through the plain [`Read`] path, and how much of it is.
    pending: Option<(Block, usize)>,
    /// Blocks the thread has made (not reused ones).
    made: Arc<AtomicUsize>,
}

impl ReadAhead {
    /// Starts the thread reading `reader`.
    pub fn start<R: Source>(reader: R) -> Self {
        let (tx, rx) = mpsc::sync_channel(DEPTH);
        let (back, back_rx) = mpsc::channel();
        let thread_tx = tx.clone();
        let made = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&made);
        let spawned = std::thread::Builder::new()
            .name("netlens-read".into())
            .spawn(move || run(reader, &thread_tx, &back_rx, &counted));
        if let Err(e) = spawned {
            // The file then reads as an I/O error at its first byte, with the reason.
            let _ = tx.send(Msg::Error(io::Error::new(
                e.kind(),
                format!("could not start the reading thread: {e}"),
            )));
        }
        ReadAhead {
            rx,
            back,
            done: false,
            pending: None,
            made,
        }
    }

    /// Blocks the thread has made so far (memory: each is [`BLOCK`] + [`AHEAD_HEADROOM`]).
    pub fn blocks_made(&self) -> usize {
        self.made.load(Ordering::Relaxed)
    }

    /// The next block or window, `None` at the end of input.
    pub fn next_block(&mut self) -> io::Result<Option<Chunk>> {
        if let Some((mut block, used)) = self.pending.take() {
            // Left over from `read`: hand on the unread part (it stays in place).
            let unread = block.len - AHEAD_HEADROOM - used;
            block
                .data
                .copy_within(AHEAD_HEADROOM + used..block.len, AHEAD_HEADROOM);
            block.len = AHEAD_HEADROOM + unread;
            if let Some((_, start)) = &mut block.origin {
                *start += used as u64;
            }
            return Ok(Some(Chunk::Block(block)));
        }
        if self.done {
            return Ok(None);
        }
        match self.rx.recv() {
            Ok(Msg::Data(b)) => Ok(Some(b)),
            Ok(Msg::End) => {
                self.done = true;
                Ok(None)
            }
            Ok(Msg::Error(e)) => {
                self.done = true;
                Err(e)
            }
            Err(_) => {
                self.done = true;
                Err(io::Error::other(
                    "the read-ahead thread stopped unexpectedly",
                ))
            }
        }
    }

    /// Wraps a block for sharing; its buffer returns to the pool when no longer held.
    /// `valid_from`: where its file bytes start (the headroom may hold the previous
    /// block's tail just before `AHEAD_HEADROOM`).
    pub fn share(&self, block: Block, valid_from: usize) -> Arc<SharedBlock> {
        let valid_from = valid_from.min(AHEAD_HEADROOM);
        // The headroom holds the bytes just before the block's own (the previous tail).
        let origin = block.origin.and_then(|(f, start)| {
            Some((f, start.checked_sub((AHEAD_HEADROOM - valid_from) as u64)?))
        });
        Arc::new(SharedBlock {
            valid: (valid_from, block.len),
            data: Memory::Pooled(block.data),
            back: self.back.clone(),
            origin,
        })
    }

    /// Wraps a window for sharing; it is unmapped (by the reading thread, if it still
    /// runs) when no longer held.
    pub fn share_window(&self, w: Window) -> Arc<SharedBlock> {
        Arc::new(SharedBlock {
            valid: (0, w.map.len()),
            origin: Some((w.file, w.start)),
            data: Memory::Mapped(w.map),
            back: self.back.clone(),
        })
    }

    /// Gives a buffer back for reuse (buffers of another size are dropped).
    pub fn recycle(&mut self, buf: Vec<u8>) {
        if buf.len() == AHEAD_HEADROOM + BLOCK {
            let _ = self.back.send(Spent::Buffer(buf));
        }
    }
}

/// The plain byte path (used while file headers are read, before blocks are swapped in).
impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some((block, used)) = &mut self.pending {
                let avail = &block.data[AHEAD_HEADROOM + *used..block.len];
                let n = avail.len().min(out.len());
                out[..n].copy_from_slice(&avail[..n]);
                *used += n;
                if AHEAD_HEADROOM + *used == block.len {
                    if let Some((b, _)) = self.pending.take() {
                        self.recycle(b.data);
                    }
                }
                return Ok(n);
            }
            match self.next_block()? {
                Some(Chunk::Block(b)) => self.pending = Some((b, 0)),
                // This path copies anyway: a window's own bytes are copied into a block.
                Some(Chunk::Window(w)) => {
                    let mut data = vec![0; AHEAD_HEADROOM + w.own];
                    data[AHEAD_HEADROOM..].copy_from_slice(&w.map[..w.own]);
                    let block = Block {
                        data,
                        len: AHEAD_HEADROOM + w.own,
                        origin: Some((w.file, w.start)),
                    };
                    self.pending = Some((block, 0));
                }
                None => return Ok(0),
            }
        }
    }
}

/// The thread: read blocks until the end, an error, or the analysis side is gone.
fn run<R: Source>(mut reader: R, tx: &SyncSender<Msg>, back: &Receiver<Spent>, made: &AtomicUsize) {
    let mut pool = Vec::new();
    loop {
        // Spent windows are unmapped here; spent buffers (at most the blocks made) wait
        // for reuse.
        while let Ok(spent) = back.try_recv() {
            match spent {
                Spent::Buffer(b) => pool.push(b),
                Spent::Window(w) => drop(w),
            }
        }
        if let Some(w) = reader.window() {
            let msg = match w {
                Ok(w) => Msg::Data(Chunk::Window(w)),
                Err(e) => Msg::Error(e),
            };
            let last = matches!(msg, Msg::Error(_));
            if tx.send(msg).is_err() || last {
                return;
            }
            continue;
        }
        let mut data = pool.pop().unwrap_or_else(|| {
            made.fetch_add(1, Ordering::Relaxed);
            vec![0; AHEAD_HEADROOM + BLOCK]
        });
        let msg = loop {
            let origin = reader.origin();
            match reader.read(&mut data[AHEAD_HEADROOM..]) {
                Ok(0) => break Msg::End,
                Ok(n) => {
                    break Msg::Data(Chunk::Block(Block {
                        data,
                        len: AHEAD_HEADROOM + n,
                        origin,
                    }))
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => break Msg::Error(e),
            }
        };
        let last = !matches!(msg, Msg::Data(_));
        if tx.send(msg).is_err() || last {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader returning `data` in odd-sized pieces, then `err` if any.
    struct Pieces {
        data: Vec<u8>,
        at: usize,
        err: bool,
    }

    impl Source for Pieces {}

    impl Read for Pieces {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.at == self.data.len() {
                return if self.err {
                    Err(io::Error::other("disk on fire"))
                } else {
                    Ok(0)
                };
            }
            let n = (self.data.len() - self.at).min(out.len()).min(777_777);
            out[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn bytes(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn blocks_and_reads_deliver_every_byte_in_order() {
        let want = bytes(5 * BLOCK + 12_345);
        let mut a = ReadAhead::start(Pieces {
            data: want.clone(),
            at: 0,
            err: false,
        });
        let mut got = vec![0u8; 100];
        let n = a.read(&mut got).unwrap();
        got.truncate(n);
        while let Some(b) = a.next_block().unwrap() {
            got.extend_from_slice(b.own());
            if let Chunk::Block(b) = b {
                a.recycle(b.data);
            }
        }
        assert_eq!(got.len(), want.len());
        assert!(got == want);
        assert!(a.next_block().unwrap().is_none());
    }

    /// A file handed out as mapped windows of 300,000 bytes (each with the next 1,000
    /// bytes as overlap), then read to its end.
    struct Windows {
        file: Arc<File>,
        size: u64,
        at: u64,
    }

    impl Source for Windows {
        fn window(&mut self) -> Option<io::Result<Window>> {
            let left = self.size - self.at;
            if left == 0 {
                return None;
            }
            let own = left.min(300_000) as usize;
            let len = left.min(own as u64 + 1_000) as usize;
            let w = Window::map(&self.file, self.at, own, len);
            self.at += own as u64;
            Some(w)
        }
    }

    impl Read for Windows {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Ok(0)
        }
    }

    #[test]
    fn reads_and_blocks_deliver_every_byte_of_mapped_windows() {
        let want = bytes(1_000_000);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mapped");
        std::fs::write(&path, &want).expect("write");
        let file = Arc::new(File::open(&path).expect("open"));
        let mut a = ReadAhead::start(Windows {
            file,
            size: want.len() as u64,
            at: 0,
        });
        // Through `read` (a window's own bytes copied into a block), then as chunks.
        let mut got = vec![0u8; 100];
        let n = a.read(&mut got).unwrap();
        got.truncate(n);
        while let Some(b) = a.next_block().unwrap() {
            got.extend_from_slice(b.own());
        }
        assert_eq!(got.len(), want.len());
        assert!(got == want);
    }

    #[test]
    fn an_error_comes_after_the_bytes_before_it() {
        let want = bytes(BLOCK + 10);
        let mut a = ReadAhead::start(Pieces {
            data: want.clone(),
            at: 0,
            err: true,
        });
        let mut got = Vec::new();
        let err = loop {
            match a.next_block() {
                Ok(Some(b)) => got.extend_from_slice(b.own()),
                Ok(None) => panic!("the error was lost"),
                Err(e) => break e,
            }
        };
        assert!(got == want);
        assert!(err.to_string().contains("disk on fire"), "{err}");
        assert!(a.next_block().unwrap().is_none());
    }
}
