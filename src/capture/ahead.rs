//! Read-ahead: a thread that reads a capture file in 1 MiB blocks while the analysis
//! thread works on the previous ones.
//!
//! On two cores this takes the kernel's page-cache copy (a sixth of a default run) off the
//! analysis thread. Blocks are handed over whole and come back for reuse, so no byte is
//! copied twice: the reader of the blocks (`file::buffer::Buffer`) swaps its buffer for the new
//! block, keeping the unread tail of the old one in the block's headroom.
//!
//! Invariants:
//! - Memory is bounded: at most [`DEPTH`] filled blocks wait in the channel, plus the one
//!   being filled and the one being read ([`BLOCK`] + [`AHEAD_HEADROOM`] bytes each), plus
//!   the blocks later stages still hold ([`SharedBlock`]; the stream thread's batches hold
//!   at most two each).
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
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError};
use std::sync::Arc;

/// Bytes read per block.
pub const BLOCK: usize = 1 << 20;
/// Room before a block's bytes for the unread tail of the previous block (a record cut by
/// the block boundary): 64 KiB holds every record of a 64 KiB snapshot length.
pub const AHEAD_HEADROOM: usize = 64 << 10;
/// Filled blocks waiting for the analysis thread.
const DEPTH: usize = 2;

/// What the read-ahead thread reads: any reader; a regular file also says where its next
/// byte lies, so the blocks can say where theirs came from.
pub trait Source: Read + Send + 'static {
    /// The file the next byte read comes from and its offset there (None: not a file
    /// that can be read again).
    fn origin(&mut self) -> Option<(Arc<File>, u64)> {
        None
    }
}

/// A block being read, shared with later stages (the stream thread's batches point into it
/// instead of copying payloads): its memory goes back to the reading thread's pool when
/// the last holder drops it.
pub struct SharedBlock {
    data: Vec<u8>,
    back: Sender<Vec<u8>>,
    /// The file and the offset of `data[AHEAD_HEADROOM]` in it, when read from a file.
    origin: Option<(Arc<File>, u64)>,
    /// `data[valid.0..valid.1]` are file bytes (the headroom before `valid.0` holds stale
    /// bytes of an earlier block).
    valid: (usize, usize),
}

impl SharedBlock {
    /// The file the block was read from, if it was read from a regular file.
    pub fn file(&self) -> Option<&Arc<File>> {
        self.origin.as_ref().map(|(f, _)| f)
    }

    /// Where `bytes` start in the block, if they lie in it (compared by address: a copy
    /// elsewhere does not).
    pub fn index_of(&self, bytes: &[u8]) -> Option<usize> {
        let at = (bytes.as_ptr() as usize).checked_sub(self.data.as_ptr() as usize)?;
        (at.checked_add(bytes.len())? <= self.data.len()).then_some(at)
    }

    /// The offset in [`file`](Self::file) of `bytes`, when they are file bytes of this
    /// block.
    pub fn file_offset(&self, bytes: &[u8]) -> Option<u64> {
        let (_, start) = self.origin.as_ref()?;
        let at = self.index_of(bytes)?;
        if at < self.valid.0 || at + bytes.len() > self.valid.1 {
            return None;
        }
        // The headroom holds the bytes just before `start` (the previous block's tail).
        (start + at as u64).checked_sub(AHEAD_HEADROOM as u64)
    }
}

impl std::fmt::Debug for SharedBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedBlock({} bytes)", self.data.len())
    }
}

impl Deref for SharedBlock {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for SharedBlock {
    fn drop(&mut self) {
        // The reading thread may have ended: then the buffer is simply freed.
        let _ = self.back.send(std::mem::take(&mut self.data));
    }
}

/// One block: `data[AHEAD_HEADROOM..len]` holds the bytes read.
pub struct Block {
    pub data: Vec<u8>,
    pub len: usize,
    /// The file and the offset of `data[AHEAD_HEADROOM]` in it, when read from a file.
    pub origin: Option<(Arc<File>, u64)>,
}

enum Msg {
    Data(Block),
    Error(io::Error),
    End,
}

/// The analysis thread's end of a read-ahead thread.
pub struct ReadAhead {
    rx: Receiver<Msg>,
    back: Sender<Vec<u8>>,
    /// The input ended (cleanly or with an error already delivered).
    done: bool,
    /// A block being consumed through the plain [`Read`] path.
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

    /// The next block, `None` at the end of input.
    pub fn next_block(&mut self) -> io::Result<Option<Block>> {
        if let Some((block, used)) = self.pending.take() {
            // Left over from `read`: hand on the unread part (it stays in place).
            let mut block = block;
            let unread = block.len - AHEAD_HEADROOM - used;
            block
                .data
                .copy_within(AHEAD_HEADROOM + used..block.len, AHEAD_HEADROOM);
            block.len = AHEAD_HEADROOM + unread;
            if let Some((_, start)) = &mut block.origin {
                *start += used as u64;
            }
            return Ok(Some(block));
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
        Arc::new(SharedBlock {
            valid: (valid_from.min(AHEAD_HEADROOM), block.len),
            data: block.data,
            back: self.back.clone(),
            origin: block.origin,
        })
    }

    /// Gives a buffer back for reuse (buffers of another size are dropped).
    pub fn recycle(&mut self, buf: Vec<u8>) {
        if buf.len() == AHEAD_HEADROOM + BLOCK {
            let _ = self.back.send(buf);
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
                Some(b) => self.pending = Some((b, 0)),
                None => return Ok(0),
            }
        }
    }
}

/// The thread: read blocks until the end, an error, or the analysis side is gone.
fn run<R: Source>(
    mut reader: R,
    tx: &SyncSender<Msg>,
    back: &Receiver<Vec<u8>>,
    made: &AtomicUsize,
) {
    loop {
        let mut data = match back.try_recv() {
            Ok(b) => b,
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => {
                made.fetch_add(1, Ordering::Relaxed);
                vec![0; AHEAD_HEADROOM + BLOCK]
            }
        };
        let msg = loop {
            let origin = reader.origin();
            match reader.read(&mut data[AHEAD_HEADROOM..]) {
                Ok(0) => break Msg::End,
                Ok(n) => {
                    break Msg::Data(Block {
                        data,
                        len: AHEAD_HEADROOM + n,
                        origin,
                    })
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
            got.extend_from_slice(&b.data[AHEAD_HEADROOM..b.len]);
            a.recycle(b.data);
        }
        assert_eq!(got.len(), want.len());
        assert!(got == want);
        assert!(a.next_block().unwrap().is_none());
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
                Ok(Some(b)) => got.extend_from_slice(&b.data[AHEAD_HEADROOM..b.len]),
                Ok(None) => panic!("the error was lost"),
                Err(e) => break e,
            }
        };
        assert!(got == want);
        assert!(err.to_string().contains("disk on fire"), "{err}");
        assert!(a.next_block().unwrap().is_none());
    }
}
