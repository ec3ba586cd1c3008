//! A temporary file of JSON entries that complete out of key order and are read back in
//! key order: connection entries (completed when a connection closes or goes idle, listed
//! by id), stream directions, UDP flows.
//!
//! Entries are staged in memory and written in chunks of about [`CHUNK`] bytes, each
//! sorted by key (the runs of an external merge sort). Reading in key order then moves
//! forward through every chunk, so each chunk is read sequentially through a window of
//! its own ([`Reader`]): every byte is read from the file about once. (Written in
//! completion order, neighbours by key were rarely neighbours on disk, and reading them
//! back cost a window refill per entry: twenty times the file's size in reads.) Entries
//! that are neighbours both by key and on disk form runs, which the JSON writer copies in
//! one piece, by the kernel when the destination is a file ([`copy_runs`]).
//!
//! Invariants: every entry is followed by [`SEP`] in the file; an entry's placement
//! (offset, length) is reported once, when its chunk is written; within a chunk, entries
//! of equal keys keep their push order, and chunks are in push order, so ordering by
//! (key, offset) is ordering by (key, push order). Memory: the stage (one chunk) while
//! writing; [`WINDOWS`] windows while reading.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

use serde::Serialize;

use super::entry_file::{EntryFile, SEP};

/// The stage's capacity: a chunk is written once it is three quarters full, so entries
/// rarely make it grow (one that does is written and the stage shrinks back).
pub const CHUNK: usize = 1 << 20;
/// The read window of a chunk.
const WINDOW: usize = 16 << 10;
/// Windows kept while reading. Chunks hold the entries that completed around the same
/// time, so reading by key draws on a few neighbouring chunks at once; the least recently
/// used window goes to the next chunk asked for.
const WINDOWS: usize = 64;
/// Runs shorter than this are read and written by this process: below it the system calls
/// that set up a kernel copy cost more than copying the bytes.
const DIRECT_MIN: u64 = 64 << 10;

/// An entry that grows past this while being staged is written to the file instead, as a
/// chunk of its own: the stage never grows past [`CHUNK`], and a stream direction
/// listing a million segments never sits in memory whole.
const LARGE: usize = CHUNK / 4;

/// Where an entry landed: key, offset, length (separator excluded).
pub type Placed = (u64, u64, u64);

/// See the module docs.
pub struct KeyedFile {
    file: EntryFile,
    stage: Vec<u8>,
    /// (key, start in `stage`, length) of each staged entry, in push order.
    staged: Vec<(u64, usize, usize)>,
    /// File offset where each chunk starts, ascending.
    chunks: Vec<u64>,
}

impl KeyedFile {
    pub fn new() -> io::Result<Self> {
        Ok(KeyedFile {
            file: EntryFile::new()?,
            stage: Vec::new(),
            staged: Vec::new(),
            chunks: Vec::new(),
        })
    }

    /// The file itself, for entries written in their final order (no staging, no chunks).
    pub fn plain(&mut self) -> &mut EntryFile {
        &mut self.file
    }

    /// Bytes in the file (staged entries not included).
    pub fn written(&self) -> u64 {
        self.file.pos
    }

    /// Stages `value` under `key`; `place` hears of every entry written meanwhile.
    pub fn push<T: Serialize>(
        &mut self,
        key: u64,
        value: &T,
        place: &mut dyn FnMut(Placed),
    ) -> io::Result<()> {
        if self.stage.capacity() == 0 {
            self.stage.reserve_exact(CHUNK);
        }
        let start = self.stage.len();
        let mut w = Capped {
            limit: start + LARGE,
            stage: &mut self.stage,
            over: false,
        };
        let result = serde_json::to_writer(&mut w, value);
        let over = w.over;
        if let Err(e) = result {
            self.stage.truncate(start);
            if !over {
                return Err(io::Error::other(e));
            }
            // A large entry: write the chunk staged so far, then the entry again, straight
            // into the file as a chunk of its own (large entries are rare; serialising
            // them twice keeps the common path a bare copy into the stage).
            self.write_chunk(place)?;
            self.chunks.push(self.file.pos);
            let (at, len) = self.file.push(value)?;
            self.file.write_all(SEP)?;
            if len > u64::from(u32::MAX) {
                return Err(io::Error::other("report entry over 4 GiB"));
            }
            place((key, at, len));
            return Ok(());
        }
        self.staged.push((key, start, self.stage.len() - start));
        if self.stage.len() >= CHUNK - LARGE {
            self.write_chunk(place)?;
        }
        Ok(())
    }

    /// Writes what is staged (as one sorted chunk) and flushes the file, so every entry
    /// pushed so far is placed and readable.
    pub fn flush(&mut self, place: &mut dyn FnMut(Placed)) -> io::Result<()> {
        self.write_chunk(place)?;
        self.file.file.flush()
    }

    fn write_chunk(&mut self, place: &mut dyn FnMut(Placed)) -> io::Result<()> {
        if self.staged.is_empty() {
            return Ok(());
        }
        self.chunks.push(self.file.pos);
        // Stable: equal keys keep their push order.
        self.staged.sort_by_key(|&(key, _, _)| key);
        for &(key, start, len) in &self.staged {
            let at = self.file.pos;
            self.file.write_all(&self.stage[start..start + len])?;
            self.file.write_all(SEP)?;
            place((key, at, len as u64));
        }
        self.staged.clear();
        self.stage.clear();
        if self.stage.capacity() > CHUNK {
            // A large entry grew it: give that memory back.
            self.stage = Vec::new();
        }
        Ok(())
    }

    /// A reader over the entries written so far (call [`KeyedFile::flush`] first for all
    /// of them). Reading moves the file position: [`KeyedFile::rewind_end`] before the next
    /// push.
    pub fn reader(&mut self) -> Reader<'_> {
        Reader::new(self.file.file.get_ref(), &self.chunks, self.file.pos)
    }

    /// Puts the file position back at the end, where the next chunk is written.
    pub fn rewind_end(&mut self) -> io::Result<()> {
        self.file.file.get_mut().seek(SeekFrom::End(0)).map(|_| ())
    }

    /// The file (flushed first), its chunk starts and its length.
    pub fn into_parts(mut self, place: &mut dyn FnMut(Placed)) -> io::Result<Parts> {
        self.flush(place)?;
        let total = self.file.pos;
        let file = self.file.file.into_inner().map_err(|e| e.into_error())?;
        Ok(Parts {
            file,
            chunks: self.chunks,
            total,
        })
    }
}

/// The writer an entry is staged through: it refuses to take the stage past `limit`.
struct Capped<'a> {
    stage: &'a mut Vec<u8>,
    limit: usize,
    /// The limit was hit.
    over: bool,
}

impl Write for Capped<'_> {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf).map(|_| buf.len())
    }

    #[inline]
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.stage.len() + buf.len() > self.limit {
            self.over = true;
            return Err(io::ErrorKind::WriteZero.into());
        }
        self.stage.extend_from_slice(buf);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A finished [`KeyedFile`].
pub struct Parts {
    pub file: File,
    pub chunks: Vec<u64>,
    pub total: u64,
}

/// Reads entries of a chunked file in key order: a chunk is read forward through a window
/// refilled from the entry asked for (the next entries of that chunk follow it); the
/// [`WINDOWS`] most recently used chunks keep theirs.
pub struct Reader<'a> {
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
    pub fn new(file: &'a File, chunks: &'a [u64], end: u64) -> Self {
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
    fn chunk_of(&self, off: u64) -> (usize, u64) {
        let c = self.chunks.partition_point(|&s| s <= off).saturating_sub(1);
        let chunk_end = self.chunks.get(c + 1).copied().unwrap_or(self.end);
        (c, chunk_end)
    }

    /// The `n` bytes at `off`.
    pub fn get(&mut self, off: u64, n: usize) -> io::Result<&[u8]> {
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
pub fn copy_runs(
    reader: &mut Reader<'_>,
    entries: impl Iterator<Item = (u64, u64)>,
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
    for (off, len) in entries {
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
pub fn copy_range(
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Entries pushed in a scrambled key order, some larger than a window, across many
    /// chunks: placements cover every entry once, and reading them in key order through
    /// the chunk windows gives back each entry's bytes.
    #[test]
    fn chunks_are_sorted_and_read_back_by_key() {
        let mut f = KeyedFile::new().unwrap();
        let mut placed = Vec::new();
        let n = 3_000u64;
        let mut want = vec![String::new(); n as usize];
        for i in 0..n {
            let key = (i * 7919) % n;
            let len = [3usize, 200, 5_000, 40_000][(i % 4) as usize];
            // Every 500th entry is larger than LARGE: it goes to the file directly.
            let len = if i % 500 == 7 { 300_000 } else { len };
            let v = format!("{key}:{}", "y".repeat(len));
            f.push(key, &v, &mut |p| placed.push(p)).unwrap();
            assert!(f.stage.capacity() <= CHUNK, "the stage grew");
            want[key as usize] = v;
        }
        f.flush(&mut |p| placed.push(p)).unwrap();
        assert!(f.chunks.len() > 5, "{} chunks", f.chunks.len());
        placed.sort();
        assert_eq!(placed.len() as u64, n);
        let mut r = f.reader();
        for (k, &(key, off, len)) in placed.iter().enumerate() {
            assert_eq!(key, k as u64);
            let s: String = serde_json::from_slice(r.get(off, len as usize).unwrap()).unwrap();
            assert!(s == want[k], "entry {k}");
        }
    }
}
