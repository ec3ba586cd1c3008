//! A temporary file of JSON entries that complete out of key order and are read back in
//! key order: connection entries (completed when a connection closes or goes idle, listed
//! by id), stream directions, UDP flows.
//!
//! An external merge sort. Entries are staged in memory and written in chunks of about
//! [`CHUNK`] bytes, each sorted by key; a second temporary file gets one 20-byte record
//! (key, offset, length) per entry, chunk after chunk. Reading in key order merges the
//! chunks ([`Merge`]: one cursor per chunk over its records), and reads each chunk
//! forward through a window ([`Reader`]), so every byte is read from the files about
//! once, and memory holds neither the entries nor an index of them: the stage while
//! writing; one small cursor per chunk and [`WINDOWS`] windows while reading. (Written in
//! completion order with an index in memory, neighbours by key were rarely neighbours on
//! disk, reading them back cost a window refill per entry, twenty times the file's size,
//! and the index grew by 16 to 24 bytes per entry.) Entries that are neighbours both by
//! key and on disk form runs, which the JSON writer copies in one piece, by the kernel
//! when the destination is a file ([`copy_runs`]).
//!
//! Invariants: entries are at most 4 GiB; every entry is followed by [`SEP`] in the data
//! file; within a chunk, entries of equal keys keep their push order, and chunks are in
//! push order, so merging by (key, chunk) yields equal keys in push order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

use serde::Serialize;

use super::entry_file::{EntryFile, SEP};
use super::json_out::{JsonOut, WriteJson};

/// The stage's capacity. A chunk is written once the stage holds `CHUNK - LARGE` bytes,
/// and an entry that would pass [`LARGE`] goes to the file instead, so the stage never
/// grows.
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

/// A large entry written by [`KeyedFile::push_json`] reaches the file in pieces of about
/// this size.
const FLUSH: usize = 64 << 10;

/// Bytes of one index record: key (u64), offset (u64), length (u32), little-endian.
const RECORD: usize = 20;
/// Index records a merge cursor reads at a time.
const CURSOR_RECORDS: usize = 32;

/// See the module docs.
pub struct KeyedFile {
    file: EntryFile,
    /// The index records, created with the first chunk.
    index: Option<io::BufWriter<File>>,
    /// Records written.
    records: u64,
    stage: Vec<u8>,
    /// (key, start in `stage`, length) of each staged entry, in push order.
    staged: Vec<(u64, usize, usize)>,
    /// Data offset where each chunk starts, ascending.
    starts: Vec<u64>,
    /// (first record, records) of each chunk.
    chunks: Vec<(u64, u64)>,
}

impl KeyedFile {
    pub fn new() -> io::Result<Self> {
        Ok(KeyedFile {
            file: EntryFile::new()?,
            index: None,
            records: 0,
            stage: Vec::new(),
            staged: Vec::new(),
            starts: Vec::new(),
            chunks: Vec::new(),
        })
    }

    /// The file itself, for entries written in their final order (no staging, no chunks).
    pub fn plain(&mut self) -> &mut EntryFile {
        &mut self.file
    }

    /// Stages `value` under `key`.
    pub fn push<T: Serialize>(&mut self, key: u64, value: &T) -> io::Result<()> {
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
            return self.push_large(key, |file| file.push(value));
        }
        self.staged_entry(key, start)
    }

    /// [`push`](Self::push) for the entries with a hand-written JSON writer (the same
    /// bytes, written faster: see `json_out`).
    pub fn push_json<T: WriteJson>(&mut self, key: u64, value: &T) -> io::Result<()> {
        if self.stage.capacity() == 0 {
            self.stage.reserve_exact(CHUNK);
        }
        let start = self.stage.len();
        let limit = start + LARGE;
        // The writer checks the size between list items, so the stage passes `limit` by
        // at most one item before the entry is refused.
        let mut refuse = |b: &mut Vec<u8>| {
            if b.len() > limit {
                Err(io::Error::from(io::ErrorKind::WriteZero))
            } else {
                Ok(())
            }
        };
        let result = value.write_json(&mut JsonOut {
            buf: &mut self.stage,
            check: &mut refuse,
        });
        let over = self.stage.len() > limit;
        if result.is_err() || over {
            self.stage.truncate(start);
            if !over {
                return result;
            }
            // A large entry, as in `push`: again, straight into the file, through a small
            // buffer that the checkpoints empty into it.
            return self.push_large(key, |file| {
                let at = file.pos;
                let mut buf = Vec::with_capacity(2 * FLUSH);
                let mut flush = |b: &mut Vec<u8>| {
                    if b.len() >= FLUSH {
                        file.write_all(b)?;
                        b.clear();
                    }
                    Ok(())
                };
                value.write_json(&mut JsonOut {
                    buf: &mut buf,
                    check: &mut flush,
                })?;
                file.write_all(&buf)?;
                Ok((at, file.pos - at))
            });
        }
        self.staged_entry(key, start)
    }

    /// Stages `json`, an entry's JSON written already (by [`WriteJson`] into a buffer of
    /// its own, on another thread: see `streams::thread`), under `key`: the same bytes
    /// [`push_json`](Self::push_json) would have staged.
    pub fn push_bytes(&mut self, key: u64, json: &[u8]) -> io::Result<()> {
        if json.len() > LARGE {
            return self.push_large(key, |file| {
                let at = file.pos;
                file.write_all(json)?;
                Ok((at, json.len() as u64))
            });
        }
        if self.stage.capacity() == 0 {
            self.stage.reserve_exact(CHUNK);
        }
        // Below `CHUNK - LARGE` before (`staged_entry` writes the chunk there), so the
        // stage never passes CHUNK.
        let start = self.stage.len();
        self.stage.extend_from_slice(json);
        self.staged_entry(key, start)
    }

    /// Writes the chunk staged so far, then a large entry (written by `write`, which
    /// returns its offset and length) as a chunk of its own.
    fn push_large(
        &mut self,
        key: u64,
        write: impl FnOnce(&mut EntryFile) -> io::Result<(u64, u64)>,
    ) -> io::Result<()> {
        self.write_chunk()?;
        self.starts.push(self.file.pos);
        let first = self.records;
        let (at, len) = write(&mut self.file)?;
        self.file.write_all(SEP)?;
        self.record(key, at, len)?;
        self.chunks.push((first, 1));
        Ok(())
    }

    /// The entry staged at `stage[start..]` under `key` is complete.
    fn staged_entry(&mut self, key: u64, start: usize) -> io::Result<()> {
        self.staged.push((key, start, self.stage.len() - start));
        if self.stage.len() >= CHUNK - LARGE {
            self.write_chunk()?;
        }
        Ok(())
    }

    /// Appends the index record of an entry written at `at`.
    fn record(&mut self, key: u64, at: u64, len: u64) -> io::Result<()> {
        let len = u32::try_from(len).map_err(|_| io::Error::other("report entry over 4 GiB"))?;
        let index = match &mut self.index {
            Some(i) => i,
            None => self
                .index
                .insert(io::BufWriter::with_capacity(1 << 16, tempfile::tempfile()?)),
        };
        let mut rec = [0u8; RECORD];
        rec[..8].copy_from_slice(&key.to_le_bytes());
        rec[8..16].copy_from_slice(&at.to_le_bytes());
        rec[16..].copy_from_slice(&len.to_le_bytes());
        index.write_all(&rec)?;
        self.records += 1;
        Ok(())
    }

    fn write_chunk(&mut self) -> io::Result<()> {
        if self.staged.is_empty() {
            return Ok(());
        }
        self.starts.push(self.file.pos);
        let first = self.records;
        // Stable: equal keys keep their push order.
        self.staged.sort_by_key(|&(key, _, _)| key);
        let staged = std::mem::take(&mut self.staged);
        for &(key, start, len) in &staged {
            let at = self.file.pos;
            self.file.write_all(&self.stage[start..start + len])?;
            self.file.write_all(SEP)?;
            self.record(key, at, len as u64)?;
        }
        self.chunks.push((first, staged.len() as u64));
        self.staged = staged;
        self.staged.clear();
        self.stage.clear();
        if self.stage.capacity() > CHUNK {
            // A large entry grew it: give that memory back.
            self.stage = Vec::new();
        }
        Ok(())
    }

    /// Writes what is staged (as one sorted chunk) and flushes both files, so every entry
    /// pushed so far is readable.
    fn flush(&mut self) -> io::Result<()> {
        self.write_chunk()?;
        if let Some(i) = &mut self.index {
            i.flush()?;
        }
        self.file.file.flush()
    }

    /// Calls `f` with each keyed entry's JSON in key order (push order among equal keys)
    /// until it returns `false`. Pushes may follow.
    pub fn for_each(&mut self, f: &mut dyn FnMut(&[u8]) -> io::Result<bool>) -> io::Result<()> {
        self.flush()?;
        // Reads are by offset: the data file's position stays at its end for more pushes.
        each_in_order(
            self.index.as_ref().map(|i| i.get_ref()),
            &self.chunks,
            self.file.file.get_ref(),
            &self.starts,
            self.file.pos,
            f,
        )
    }

    /// A reader of the entries pushed so far, of its own: it holds duplicates of the two
    /// files' descriptors and reads by offset, so it can go to another thread and read
    /// while this file is copied into the report ([`copy_keyed`](Self::copy_keyed) reads
    /// by offset or through the data file's position, which the reader never uses).
    pub fn reader(&mut self) -> io::Result<KeyedReader> {
        self.flush()?;
        Ok(KeyedReader {
            file: self.file.file.get_ref().try_clone()?,
            index: match &self.index {
                Some(i) => Some(i.get_ref().try_clone()?),
                None => None,
            },
            starts: self.starts.clone(),
            chunks: self.chunks.clone(),
            end: self.file.pos,
        })
    }

    /// Copies the keyed entries, in key order, to `w` as the body of a JSON array; with
    /// `direct` (the file under `w`), long runs are copied by the kernel.
    pub fn copy_keyed(&mut self, w: &mut dyn Write, direct: Option<&File>) -> io::Result<()> {
        self.flush()?;
        let Some(index) = &self.index else {
            return Ok(());
        };
        let mut merge = Merge::new(index.get_ref(), &self.chunks)?;
        let mut reader = Reader::new(self.file.file.get_ref(), &self.starts, self.file.pos);
        copy_runs(&mut reader, &mut merge, w, direct)
    }

    /// Copies the file as it is (entries pushed in their final order, with separators)
    /// to `w`.
    pub fn copy_plain(&mut self, w: &mut dyn Write, direct: Option<&File>) -> io::Result<()> {
        self.file.file.flush()?;
        let total = self.file.pos;
        let mut reader = Reader::new(self.file.file.get_ref(), &[], total);
        copy_range(&mut reader, 0, total, w, direct)
    }
}

/// The entries of a [`KeyedFile`] as they were when [`KeyedFile::reader`] made it.
pub struct KeyedReader {
    file: File,
    index: Option<File>,
    starts: Vec<u64>,
    chunks: Vec<(u64, u64)>,
    end: u64,
}

impl KeyedReader {
    /// [`KeyedFile::for_each`], over the entries this reader covers.
    pub fn for_each(&self, f: &mut dyn FnMut(&[u8]) -> io::Result<bool>) -> io::Result<()> {
        let index = self.index.as_ref();
        each_in_order(index, &self.chunks, &self.file, &self.starts, self.end, f)
    }
}

/// Calls `f` with each entry's JSON in key order until it returns `false`: the merge of
/// `chunks` (records in `index`; none before the first chunk is written), the bytes read
/// from `file` (chunks at `starts`, data up to `end`), by offset only.
fn each_in_order(
    index: Option<&File>,
    chunks: &[(u64, u64)],
    file: &File,
    starts: &[u64],
    end: u64,
    f: &mut dyn FnMut(&[u8]) -> io::Result<bool>,
) -> io::Result<()> {
    let Some(index) = index else {
        return Ok(());
    };
    let mut merge = Merge::new(index, chunks)?;
    let mut reader = Reader::new(file, starts, end);
    while let Some((_, off, len)) = merge.next_entry()? {
        if !f(reader.get(off, len as usize)?)? {
            break;
        }
    }
    Ok(())
}

/// Merges the chunks' index records by (key, chunk).
struct Merge<'a> {
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
    fn new(index: &'a File, chunks: &[(u64, u64)]) -> io::Result<Self> {
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
    fn next_entry(&mut self) -> io::Result<Option<(u64, u64, u64)>> {
        let Some(Reverse((key, c, off, len))) = self.heads.pop() else {
            return Ok(None);
        };
        self.advance(c)?;
        Ok(Some((key, off, len)))
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

/// Reads entries of a chunked file in key order: a chunk is read forward through a window
/// refilled from the entry asked for (the next entries of that chunk follow it); the
/// [`WINDOWS`] most recently used chunks keep theirs.
struct Reader<'a> {
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
    fn new(file: &'a File, chunks: &'a [u64], end: u64) -> Self {
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
    fn get(&mut self, off: u64, n: usize) -> io::Result<&[u8]> {
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
fn copy_runs(
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
fn copy_range(
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

    /// JSON written elsewhere and pushed as bytes reads back as the same entries pushed
    /// as values, small ones staged and large ones written as chunks of their own.
    #[test]
    fn pushed_bytes_read_back_like_pushed_values() {
        let (mut bytes, mut values) = (KeyedFile::new().unwrap(), KeyedFile::new().unwrap());
        for (i, len) in [10usize, LARGE + 10, 3, 2 * LARGE, 7]
            .into_iter()
            .enumerate()
        {
            let key = 9 - i as u64;
            let v = format!("{i}:{}", "z".repeat(len));
            bytes
                .push_bytes(key, &serde_json::to_vec(&v).unwrap())
                .unwrap();
            values.push(key, &v).unwrap();
            assert!(bytes.stage.capacity() <= CHUNK, "the stage grew");
        }
        let read = |f: &mut KeyedFile| {
            let mut all = Vec::new();
            f.for_each(&mut |e| {
                all.push(e.to_vec());
                Ok(true)
            })
            .unwrap();
            all
        };
        let got = read(&mut bytes);
        assert_eq!(got.len(), 5);
        assert!(got[0].starts_with(b"\"4:"), "key order");
        assert_eq!(got, read(&mut values));
    }

    /// Entries pushed in a scrambled key order, some larger than a window or than LARGE,
    /// across many chunks, come back by key (push order among equal keys).
    #[test]
    fn chunks_are_sorted_and_read_back_by_key() {
        let mut f = KeyedFile::new().unwrap();
        let n = 3_000u64;
        let mut want = Vec::new();
        for i in 0..n {
            // Keys scrambled, each pushed twice (the second copy later): equal keys come
            // back in push order.
            let key = (i * 7919) % (n / 2);
            let len = [3usize, 200, 5_000, 40_000][(i % 4) as usize];
            // Every 500th entry is larger than LARGE: it goes to the file directly.
            let len = if i % 500 == 7 { 300_000 } else { len };
            let v = format!("{key}:{i}:{}", "y".repeat(len));
            f.push(key, &v).unwrap();
            assert!(f.stage.capacity() <= CHUNK, "the stage grew");
            want.push((key, i, v));
        }
        want.sort_by_key(|&(key, i, _)| (key, i));
        let mut got = Vec::new();
        f.for_each(&mut |e| {
            got.push(serde_json::from_slice::<String>(e).map_err(io::Error::other)?);
            Ok(true)
        })
        .unwrap();
        assert!(f.chunks.len() > 5, "{} chunks", f.chunks.len());
        assert_eq!(got.len(), want.len());
        for (g, (_, i, w)) in got.iter().zip(&want) {
            assert!(g == w, "entry pushed {i}");
        }
        // Pushes go on after reading; stopping early stops.
        f.push(0, &"late".to_string()).unwrap();
        let mut first = Vec::new();
        f.for_each(&mut |e| {
            first.push(e.to_vec());
            Ok(first.len() < 3)
        })
        .unwrap();
        assert_eq!(first.len(), 3);
        assert_eq!(first[2], b"\"late\"");
    }

    /// A reader made from the file lists the same entries as the file, also after the file
    /// itself was copied into a report (which moves its data file's position) and dropped.
    #[test]
    fn a_reader_reads_on_after_its_file_was_copied() {
        let mut f = KeyedFile::new().unwrap();
        for i in 0..2_000u64 {
            let key = (i * 7919) % 1_000;
            f.push(
                key,
                &format!("{key}:{i}:{}", "z".repeat((i % 7 * 3_000) as usize)),
            )
            .unwrap();
        }
        let reader = f.reader().unwrap();
        let mut listed = Vec::new();
        f.for_each(&mut |e| {
            listed.push(e.to_vec());
            Ok(true)
        })
        .unwrap();
        let mut copied = Vec::new();
        let sink = tempfile::tempfile().unwrap();
        let mut w = io::BufWriter::new(sink.try_clone().unwrap());
        f.copy_keyed(&mut w, Some(&sink)).unwrap();
        drop(w);
        let mut again = Vec::new();
        reader
            .for_each(&mut |e| {
                again.push(e.to_vec());
                Ok(true)
            })
            .unwrap();
        assert_eq!(listed.len(), 2_000);
        assert!(again == listed);
        (&sink).seek(SeekFrom::Start(0)).unwrap();
        (&sink).read_to_end(&mut copied).unwrap();
        assert_eq!(copied, listed.join(SEP));
    }

    /// Entries pushed through their hand-written writer come back byte for byte as the
    /// serde path writes them, small ones through the stage and ones larger than LARGE
    /// straight into the file, and the stage never grows.
    #[test]
    fn hand_written_entries_match_serde_ones() {
        use crate::report::streams::{SegmentEntry, StreamEntry};
        let (mut fast, mut slow) = (KeyedFile::new().unwrap(), KeyedFile::new().unwrap());
        for i in 0..400u64 {
            let key = (i * 37) % 101;
            // Every 50th entry lists enough segments to pass LARGE (about 60 bytes each).
            let n = if i % 50 == 3 { 6_000 } else { i % 20 };
            let e = StreamEntry {
                conn: i,
                dir: "orig".into(),
                segments: (0..n)
                    .map(|k| SegmentEntry {
                        frame: k,
                        offset: k * 1448,
                        len: 1448,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            };
            fast.push_json(key, &e).unwrap();
            slow.push(key, &e).unwrap();
            assert!(fast.stage.capacity() <= CHUNK, "the stage grew");
        }
        let (mut a, mut b) = (Vec::new(), Vec::new());
        fast.copy_keyed(&mut a, None).unwrap();
        slow.copy_keyed(&mut b, None).unwrap();
        assert!(a.len() > 8 * LARGE);
        assert!(a == b);
    }
}
