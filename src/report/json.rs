//! The JSON renderer.
//!
//! Report parts that grow with the input (today: `packets`) are not kept in memory: each
//! entry is serialised as it completes into a [`Spill`] (an anonymous temporary file) and
//! spliced into the one JSON document at the end. So peak memory follows concurrent state,
//! never the capture's length. The document is compact JSON with one array entry per line,
//! which keeps huge reports greppable and diffable.

use std::fs::File;
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};

use serde::Serialize;

use super::entry_file::EntryFile;
use super::Report;

/// An array of JSON entries written to a temporary file as they complete.
///
/// Entries are either pushed in order ([`Spill::push`]) or keyed ([`Spill::push_keyed`]:
/// entries completing out of order, copied out sorted by key; 16 bytes of index per
/// entry stay in memory). One spill uses one mode.
pub struct Spill {
    file: EntryFile,
    count: u64,
    /// Keyed mode: (offset, length) of entry `key` at `index[key - 1]`.
    index: Vec<(u64, u64)>,
}

/// Index slot of a key never pushed.
const NO_ENTRY: (u64, u64) = (u64::MAX, 0);

impl Spill {
    pub fn new() -> io::Result<Self> {
        Ok(Spill {
            file: EntryFile::new()?,
            count: 0,
            index: Vec::new(),
        })
    }

    /// Writes the entry with `key` (from 1; keys should be dense, as the index has one
    /// slot per key up to the largest); the array is emitted sorted by key.
    pub fn push_keyed<T: Serialize>(&mut self, key: u64, value: &T) -> io::Result<()> {
        let slot = usize::try_from(key.saturating_sub(1)).map_err(io::Error::other)?;
        let at = self.file.push(value)?;
        if self.index.len() <= slot {
            self.index.resize(slot + 1, NO_ENTRY);
        }
        self.index[slot] = at;
        self.count += 1;
        Ok(())
    }

    /// A keyed spill over entries already in `file`: `index` gives each entry's (offset,
    /// length) in the order the array has them. Used to hand another store's file over
    /// without copying it.
    pub(crate) fn from_indexed(file: EntryFile, index: Vec<(u64, u64)>) -> Self {
        Spill {
            count: index.len() as u64,
            file,
            index,
        }
    }

    pub fn push<T: Serialize>(&mut self, value: &T) -> io::Result<()> {
        if self.count > 0 {
            self.file.write_all(b",\n")?;
        }
        self.file.push(value)?;
        self.count += 1;
        Ok(())
    }

    /// Appends one already-serialised JSON entry.
    pub fn push_raw(&mut self, json: &[u8]) -> io::Result<()> {
        if self.count > 0 {
            self.file.write_all(b",\n")?;
        }
        self.file.write_all(json)?;
        self.count += 1;
        Ok(())
    }

    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Reads the entries back one at a time, in the order the JSON array has them
    /// (sorted by key in keyed mode), and calls `f` with each entry's JSON text. The spill
    /// stays usable: it can be read again, pushed to, or copied into the JSON document.
    /// Memory: one entry at a time (other renderers, e.g. the HTML page, use this).
    pub fn for_each_entry(&mut self, f: &mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        self.file.file.flush()?;
        let file = self.file.file.get_mut();
        let result = read_entries(file, &self.index, f);
        // Back to the end, where the next push writes.
        file.seek(SeekFrom::End(0))?;
        result
    }

    /// Copies the entries (without brackets) to `w`.
    fn copy_into(self, w: &mut dyn Write) -> io::Result<()> {
        let mut file = self.file.file.into_inner().map_err(|e| e.into_error())?;
        if !self.index.is_empty() {
            let mut first = true;
            let entries = self.index.iter().filter(|&&e| e != NO_ENTRY).copied();
            return read_indexed(&mut file, entries, &mut |entry| {
                if !first {
                    w.write_all(b",\n")?;
                }
                first = false;
                w.write_all(entry).map(|_| true)
            });
        }
        file.seek(SeekFrom::Start(0))?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            w.write_all(&buf[..n])?;
        }
    }
}

/// The reading half of [`Spill::for_each_entry`].
fn read_entries(
    file: &mut File,
    index: &[(u64, u64)],
    f: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    if !index.is_empty() {
        let entries = index.iter().filter(|&&e| e != NO_ENTRY).copied();
        return read_indexed(file, entries, &mut |e| f(e).map(|_| true));
    }
    let mut buf = Vec::new();
    // In-order mode: entries are compact JSON (no raw newline inside), separated by ",\n".
    file.seek(SeekFrom::Start(0))?;
    let mut r = io::BufReader::with_capacity(1 << 16, file);
    loop {
        buf.clear();
        if r.read_until(b'\n', &mut buf)? == 0 {
            return Ok(());
        }
        while matches!(buf.last(), Some(b'\n' | b',')) {
            buf.pop();
        }
        if !buf.is_empty() {
            f(&buf)?;
        }
    }
}

/// Calls `f` with the bytes of each (offset, length) entry of `file`, in the order given,
/// until it returns `false`.
///
/// Entries were written in completion order and are read in key order: runs of neighbours
/// with jumps between them (a long connection's entry was written long after its
/// neighbours by id; a UDP flow's when it went idle). A run is read through a 64 KiB
/// window, one system call per window; a jump reads just that entry with one positioned
/// read. (Seeking and reading per entry cost two calls each; refilling a large buffer at
/// every jump cost more than building the report.)
pub(crate) fn read_indexed(
    file: &mut File,
    entries: impl Iterator<Item = (u64, u64)>,
    f: &mut dyn FnMut(&[u8]) -> io::Result<bool>,
) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    const WINDOW: usize = 64 << 10;
    let mut window = vec![0u8; WINDOW];
    // window[..filled] holds the file's bytes from `start`.
    let (mut start, mut filled) = (0u64, 0usize);
    // Where the previous entry ended: an entry starting there continues a run.
    let mut run_end = 0u64;
    let mut scratch = Vec::new();
    for (off, len) in entries {
        let n = usize::try_from(len).map_err(io::Error::other)?;
        let end = off
            .checked_add(len)
            .ok_or_else(|| io::Error::other("bad index"))?;
        let in_window = off >= start && end <= start + filled as u64;
        if !in_window && off == run_end && n <= WINDOW {
            // Continue the run: refill the window from here.
            filled = read_up_to(file, &mut window, off)?;
            start = off;
        }
        if off >= start && end <= start + filled as u64 {
            let at = (off - start) as usize;
            if !f(&window[at..at + n])? {
                break;
            }
        } else {
            scratch.resize(n, 0);
            file.read_exact_at(&mut scratch, off)?;
            if !f(&scratch)? {
                break;
            }
        }
        run_end = end;
    }
    Ok(())
}

/// Positioned read of up to `buf.len()` bytes at `off` (fewer only at the end of file).
fn read_up_to(file: &File, buf: &mut [u8], off: u64) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
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

/// Writes the whole report: the in-memory sections of `report`, then each spilled array
/// under its key.
///
/// The in-memory part is serialised straight to `w` (never as a `serde_json::Value` tree,
/// which would cost several times the report's size); the writer holds back the object's
/// closing brace so the spilled arrays can be spliced in before it.
pub fn write(
    w: &mut dyn Write,
    report: &Report,
    spills: Vec<(&'static str, Spill)>,
) -> io::Result<()> {
    let mut held = HoldLast {
        inner: &mut *w,
        last: None,
    };
    serde_json::to_writer(&mut held, report).map_err(io::Error::other)?;
    if held.last != Some(b'}') {
        return Err(io::Error::other("report did not serialise to an object"));
    }
    for (key, spill) in spills {
        w.write_all(b",\n")?;
        serde_json::to_writer(&mut *w, key).map_err(io::Error::other)?;
        w.write_all(b":[\n")?;
        spill.copy_into(w)?;
        w.write_all(b"\n]")?;
    }
    w.write_all(b"}\n")?;
    w.flush()
}

/// Passes bytes through but keeps the last one back (the closing brace of the object).
struct HoldLast<'a> {
    inner: &'a mut dyn Write,
    last: Option<u8>,
}

impl Write for HoldLast<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some((&tail, head)) = buf.split_last() else {
            return Ok(0);
        };
        if let Some(prev) = self.last.take() {
            self.inner.write_all(&[prev])?;
        }
        self.inner.write_all(head)?;
        self.last = Some(tail);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_back_in_order_and_spill_stays_usable() {
        for keyed in [false, true] {
            let mut s = Spill::new().unwrap();
            for k in [2u64, 1, 3] {
                let v = serde_json::json!({"id": k, "s": "a\nb,"});
                if keyed {
                    s.push_keyed(k, &v).unwrap();
                } else {
                    s.push(&v).unwrap();
                }
            }
            let mut seen = Vec::new();
            s.for_each_entry(&mut |e| {
                let v: serde_json::Value = serde_json::from_slice(e).map_err(io::Error::other)?;
                seen.push(v["id"].as_u64().unwrap());
                Ok(())
            })
            .unwrap();
            assert_eq!(seen, if keyed { vec![1, 2, 3] } else { vec![2, 1, 3] });
            // Still usable afterwards: the JSON copy has every entry.
            let mut out = Vec::new();
            s.copy_into(&mut out).unwrap();
            assert_eq!(String::from_utf8(out).unwrap().matches("\"id\"").count(), 3);
        }
    }

    #[test]
    fn indexed_reads_follow_runs_jumps_and_stop_early() {
        use std::io::Write as _;
        // Entries of 1 byte to 100 KiB (bigger than the window), read in an order made of
        // forward runs, backward jumps and repeats.
        let mut file = tempfile::tempfile().unwrap();
        let mut index = Vec::new();
        let mut pos = 0u64;
        for i in 0..300u64 {
            let len = [1, 700, 5_000, 70_000, 100_000][(i % 5) as usize] + i as usize;
            file.write_all(&vec![(i % 251) as u8; len]).unwrap();
            index.push((pos, len as u64));
            pos += len as u64;
        }
        let order: Vec<usize> = (0..300)
            .map(|k| (k * 7 + k / 13) % 300)
            .chain([5, 5, 4])
            .collect();
        let mut seen = Vec::new();
        read_indexed(&mut file, order.iter().map(|&k| index[k]), &mut |e| {
            seen.push((e.len(), e[0], e.iter().all(|&b| b == e[0])));
            Ok(true)
        })
        .unwrap();
        let want: Vec<_> = order
            .iter()
            .map(|&k| (index[k].1 as usize, (k % 251) as u8, true))
            .collect();
        assert!(seen == want);
        let mut n = 0;
        read_indexed(&mut file, index.iter().copied(), &mut |_| {
            n += 1;
            Ok(n < 10)
        })
        .unwrap();
        assert_eq!(n, 10);
    }

    #[test]
    fn keyed_spill_comes_out_sorted() {
        let mut s = Spill::new().unwrap();
        for k in [3u64, 1, 4, 2] {
            s.push_keyed(k, &serde_json::json!({"id": k})).unwrap();
        }
        let mut out = Vec::new();
        s.copy_into(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"id\":1},\n{\"id\":2},\n{\"id\":3},\n{\"id\":4}"
        );
    }
}
