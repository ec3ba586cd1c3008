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
//! writing; one small cursor per chunk and [`WINDOWS`](read::WINDOWS) windows while
//! reading. (Written in completion order with an index in memory, neighbours by key were
//! rarely neighbours on disk, reading them back cost a window refill per entry, twenty
//! times the file's size, and the index grew by 16 to 24 bytes per entry.) Entries that
//! are neighbours both by key and on disk form runs, which the JSON writer copies in one
//! piece, by the kernel when the destination is a file ([`copy_runs`]).
//!
//! This file holds the writing side; `read` the merge and the reading back; `tests` both.
//!
//! Invariants: entries are at most 4 GiB; every entry is followed by [`SEP`] in the data
//! file; within a chunk, entries of equal keys keep their push order, and chunks are in
//! push order, so merging by (key, chunk) yields equal keys in push order.

use std::fs::File;
use std::io::{self, Write};

use serde::Serialize;

use super::entry_file::{EntryFile, SEP};
use super::json_out::{JsonOut, WriteJson};

/// The stage's capacity. A chunk is written once the stage holds `CHUNK - LARGE` bytes,
/// and an entry that would pass [`LARGE`] goes to the file instead, so the stage never
/// grows.
pub const CHUNK: usize = 1 << 20;

/// An entry that grows past this while being staged is written to the file instead, as a
/// chunk of its own: the stage never grows past [`CHUNK`], and a stream direction
/// listing a million segments never sits in memory whole.
const LARGE: usize = CHUNK / 4;

/// A large entry written by [`KeyedFile::push_json`] reaches the file in pieces of about
/// this size.
const FLUSH: usize = 64 << 10;

/// Bytes of one index record: key (u64), offset (u64), length (u32), little-endian.
const RECORD: usize = 20;

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

mod read;

use read::{copy_range, copy_runs, Merge, Reader};
#[cfg(test)]
mod tests;
