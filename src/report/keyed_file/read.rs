//! Reading a [`KeyedFile`](super::KeyedFile)'s entries back in key order: the merge of
//! its chunks' index records ([`Merge`]), the windows the chunks are read through
//! ([`Reader`]), and the copy of the entries into the report ([`copy_runs`]).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

use super::RECORD;
use crate::report::entry_file::SEP;

/// The read window of a chunk.
pub(super) const WINDOW: usize = 16 << 10;
/// Windows kept while reading. Chunks hold the entries that completed around the same
/// time, so reading by key draws on a few neighbouring chunks at once; the least recently
/// used window goes to the next chunk asked for.
pub(super) const WINDOWS: usize = 64;
/// Runs shorter than this are read and written by this process: below it the system calls
/// that set up a kernel copy cost more than copying the bytes.
const DIRECT_MIN: u64 = 64 << 10;
/// Index records a merge cursor reads at a time.
const CURSOR_RECORDS: usize = 32;

/// Merges the chunks' index records by (key, chunk).
pub(super) struct Merge<'a> {
    index: &'a File,
    cursors: Vec<Cursor>,
    /// The next record of every chunk with records left: (key, chunk, offset, length).
    heads: BinaryHeap<Reverse<(u64, usize, u64, u64)>>,
}

/// A chunk's records not yet merged: `buf[at..filled]` read, then records `next..end`.
struct Cursor {
    next: u64,
    end: u64,
    buf: Vec<u8>,
    at: usize,
    filled: usize,
}

impl<'a> Merge<'a> {
    pub(super) fn new(index: &'a File, chunks: &[(u64, u64)]) -> io::Result<Self> {
        let mut m = Merge {
            index,
            cursors: chunks
                .iter()
                .map(|&(first, n)| Cursor {
                    next: first,
                    end: first + n,
                    buf: Vec::new(),
                    at: 0,
                    filled: 0,
                })
                .collect(),
            heads: BinaryHeap::with_capacity(chunks.len()),
        };
        for c in 0..m.cursors.len() {
            m.advance(c)?;
        }
        Ok(m)
    }

    /// Moves chunk `c`'s next record into `heads`.
    fn advance(&mut self, c: usize) -> io::Result<()> {
        let cur = &mut self.cursors[c];
        if cur.at == cur.filled {
            if cur.next == cur.end {
                cur.buf = Vec::new();
                return Ok(());
            }
            let n = (cur.end - cur.next).min(CURSOR_RECORDS as u64) as usize;
            cur.buf.resize(n * RECORD, 0);
            self.index
                .read_exact_at(&mut cur.buf, cur.next * RECORD as u64)?;
            cur.next += n as u64;
            cur.at = 0;
            cur.filled = n * RECORD;
        }
        let r = &cur.buf[cur.at..cur.at + RECORD];
        cur.at += RECORD;
        let num = |b: &[u8]| b.iter().rev().fold(0u64, |v, &x| v << 8 | u64::from(x));
        self.heads
            .push(Reverse((num(&r[..8]), c, num(&r[8..16]), num(&r[16..]))));
        Ok(())
    }

    /// The next entry in key order: (key, offset, length).
    pub(super) fn next_entry(&mut self) -> io::Result<Option<(u64, u64, u64)>> {
        let Some(Reverse((key, c, off, len))) = self.heads.pop() else {
            return Ok(None);
        };
        self.advance(c)?;
        Ok(Some((key, off, len)))
    }
}

/// Reads entries of a chunked file in key order: a chunk is read forward through a window
/// refilled from the entry asked for (the next entries of that chunk follow it); the
/// [`WINDOWS`] most recently used chunks keep theirs.
pub(super) struct Reader<'a> {
    file: &'a File,
    chunks: &'a [u64],
    end: u64,
    windows: Vec<Window>,
    /// Requests served, as a clock for least-recently-used.
    tick: u64,
    scratch: Vec<u8>,
}

struct Window {
    chunk: usize,
    buf: Vec<u8>,
    /// File offset of `buf[0]`, bytes held.
    start: u64,
    filled: usize,
    used: u64,
}

impl<'a> Reader<'a> {
    /// `chunks`: ascending chunk starts (empty: the whole file is one chunk).
    pub(super) fn new(file: &'a File, chunks: &'a [u64], end: u64) -> Self {
        Reader {
            file,
            chunks,
            end,
            windows: Vec::new(),
            tick: 0,
            scratch: Vec::new(),
        }
    }

    /// Chunk index of `off` and where that chunk ends.
    pub(super) fn chunk_of(&self, off: u64) -> (usize, u64) {
        let c = self.chunks.partition_point(|&s| s <= off).saturating_sub(1);
        let chunk_end = self.chunks.get(c + 1).copied().unwrap_or(self.end);
        (c, chunk_end)
    }

    /// The `n` bytes at `off`.
    pub(super) fn get(&mut self, off: u64, n: usize) -> io::Result<&[u8]> {
        let end = off
            .checked_add(n as u64)
            .ok_or_else(|| io::Error::other("bad index"))?;
        let (c, chunk_end) = self.chunk_of(off);
        if n > WINDOW || end > chunk_end {
            self.scratch.resize(n, 0);
            self.file.read_exact_at(&mut self.scratch, off)?;
            return Ok(&self.scratch);
        }
        self.tick += 1;
        let slot = match self.windows.iter().position(|w| w.chunk == c) {
            Some(i) => i,
            None if self.windows.len() < WINDOWS => {
                self.windows.push(Window {
                    chunk: c,
                    buf: vec![0u8; WINDOW],
                    start: 0,
                    filled: 0,
                    used: 0,
                });
                self.windows.len() - 1
            }
            None => {
                let (i, _) = self
                    .windows
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, w)| w.used)
                    .unwrap_or((0, &self.windows[0]));
                let w = &mut self.windows[i];
                w.chunk = c;
                w.filled = 0;
                i
            }
        };
        let w = &mut self.windows[slot];
        w.used = self.tick;
        if !(off >= w.start && end <= w.start + w.filled as u64) {
            let want = (chunk_end - off).min(WINDOW as u64) as usize;
            w.filled = read_up_to(self.file, &mut w.buf[..want], off)?;
            w.start = off;
            if end > w.start + w.filled as u64 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "a report spill file is shorter than its index",
                ));
            }
        }
        let at = (off - w.start) as usize;
        Ok(&w.buf[at..at + n])
    }
}

/// Positioned read of up to `buf.len()` bytes at `off` (fewer only at the end of file).
fn read_up_to(file: &File, buf: &mut [u8], off: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], off + got as u64) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Copies entries (each followed by [`SEP`] in the file) to `w` as the body of a JSON
/// array, in the order given.
///
/// Entries that are neighbours both in the file and in that order form a run, copied as
/// one range with the separators between them. A run of at least [`DIRECT_MIN`] bytes is
/// copied by the kernel when `direct` (the file under `w`) is given: std's `io::copy`
/// uses `copy_file_range`, or `sendfile` where the destination is not a regular file
/// (`/dev/null`), so those bytes never enter this process.
pub(super) fn copy_runs(
    reader: &mut Reader<'_>,
    entries: &mut Merge<'_>,
    w: &mut dyn Write,
    direct: Option<&File>,
) -> io::Result<()> {
    let mut run: Option<(u64, u64)> = None;
    let mut first = true;
    let mut emit = |run: (u64, u64), reader: &mut Reader<'_>| -> io::Result<()> {
        if !first {
            w.write_all(SEP)?;
        }
        first = false;
        copy_range(reader, run.0, run.1 - run.0, w, direct)
    };
    while let Some((_, off, len)) = entries.next_entry()? {
        let end = off
            .checked_add(len)
            .ok_or_else(|| io::Error::other("bad index"))?;
        run = match run {
            Some((start, last_end)) if off == last_end + SEP.len() as u64 => Some((start, end)),
            Some(done) => {
                emit(done, reader)?;
                Some((off, end))
            }
            None => Some((off, end)),
        };
    }
    if let Some(done) = run {
        emit(done, reader)?;
    }
    Ok(())
}

/// Copies `len` bytes at `off` to `w`: by the kernel into `direct` when given and the
/// range is long enough, otherwise through the reader's windows.
pub(super) fn copy_range(
    reader: &mut Reader<'_>,
    off: u64,
    len: u64,
    w: &mut dyn Write,
    direct: Option<&File>,
) -> io::Result<()> {
    if let Some(mut dst) = direct.filter(|_| len >= DIRECT_MIN) {
        // What `w` buffered goes first: `w` writes through the same file position.
        w.flush()?;
        let mut src = reader.file;
        src.seek(SeekFrom::Start(off))?;
        let copied = io::copy(&mut Read::take(src, len), &mut dst)?;
        return if copied == len {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "a report spill file is shorter than its index",
            ))
        };
    }
    let mut at = off;
    let end = off + len;
    while at < end {
        // Pieces that stay inside one chunk and one window.
        let (_, chunk_end) = reader.chunk_of(at);
        let piece = (end - at)
            .min(WINDOW as u64)
            .min(chunk_end.max(at + 1) - at);
        w.write_all(reader.get(at, piece as usize)?)?;
        at += piece;
    }
    Ok(())
}
