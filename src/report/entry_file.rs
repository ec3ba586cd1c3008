//! A temporary file of JSON entries that remembers where each one starts: the storage
//! under the JSON spills ([`super::json::Spill`]) and, through
//! [`super::keyed_file::KeyedFile`], the stream entry stores
//! ([`super::streams::EntryStore`]).
//!
//! Entries are serialised straight into the file's buffer (no intermediate `Vec` per
//! entry). Serialising on a thread of its own was tried and measured slower on two cores:
//! the entries' memory then was freed on the other thread, and the serialising thread
//! used more CPU than the analysis thread saved.

use std::fs::File;
use std::io::{self, BufWriter, Write};

use serde::Serialize;

/// What separates entries in a JSON array here, and follows every entry of a keyed file
/// (see `keyed_file`).
pub const SEP: &[u8] = b",\n";

/// The file and how many bytes it holds.
pub struct EntryFile {
    pub file: BufWriter<File>,
    pub pos: u64,
}

impl EntryFile {
    pub fn new() -> io::Result<Self> {
        Ok(EntryFile {
            file: BufWriter::with_capacity(1 << 16, tempfile::tempfile()?),
            pos: 0,
        })
    }

    /// Appends `value` as JSON; returns its (offset, length).
    pub fn push<T: Serialize>(&mut self, value: &T) -> io::Result<(u64, u64)> {
        let len = write_counted(&mut self.file, value)?;
        let at = self.pos;
        self.pos += len;
        Ok((at, len))
    }

    /// Appends bytes that are not an entry (separators, raw entries).
    pub fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.pos += bytes.len() as u64;
        Ok(())
    }
}

/// Serialises `value` straight into `w` and returns how many bytes it took.
pub fn write_counted<T: Serialize>(w: &mut impl Write, value: &T) -> io::Result<u64> {
    struct Counting<'a, W> {
        inner: &'a mut W,
        n: u64,
    }
    impl<W: Write> Write for Counting<'_, W> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = self.inner.write(buf)?;
            self.n += n as u64;
            Ok(n)
        }
        fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
            self.inner.write_all(buf)?;
            self.n += buf.len() as u64;
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            self.inner.flush()
        }
    }
    let mut c = Counting { inner: w, n: 0 };
    serde_json::to_writer(&mut c, value).map_err(io::Error::other)?;
    Ok(c.n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, SeekFrom};

    #[test]
    fn offsets_point_at_each_entry() {
        let mut f = EntryFile::new().unwrap();
        let mut rows = Vec::new();
        for k in 0..100u64 {
            rows.push(f.push(&vec![k; (k % 5) as usize]).unwrap());
            f.write_all(b",\n").unwrap();
        }
        f.file.flush().unwrap();
        let file = f.file.get_mut();
        file.seek(SeekFrom::Start(0)).unwrap();
        let mut all = String::new();
        file.read_to_string(&mut all).unwrap();
        assert_eq!(all.len() as u64, f.pos);
        for (k, &(at, len)) in rows.iter().enumerate() {
            let want = serde_json::to_string(&vec![k as u64; k % 5]).unwrap();
            assert_eq!(&all[at as usize..(at + len) as usize], want);
        }
    }
}
