//! The JSON renderer.
//!
//! Report parts that grow with the input (today: `packets`) are not kept in memory: each
//! entry is serialised as it completes into a [`Spill`] (an anonymous temporary file) and
//! spliced into the one JSON document at the end. So peak memory follows concurrent state,
//! never the capture's length. The document is compact JSON with one array entry per line,
//! which keeps huge reports greppable and diffable.

use std::fs::File;
use std::io::{self, BufRead, BufWriter, Read, Seek, SeekFrom, Write};

use serde::Serialize;

use super::Report;

/// An array of JSON entries written to a temporary file as they complete.
///
/// Entries are either pushed in order ([`Spill::push`]) or keyed ([`Spill::push_keyed`]:
/// entries completing out of order, copied out sorted by key; 16 bytes of index per
/// entry stay in memory). One spill uses one mode.
pub struct Spill {
    file: BufWriter<File>,
    count: u64,
    /// Keyed mode: (offset, length) of entry `key` at `index[key - 1]`.
    index: Vec<(u64, u64)>,
    /// Bytes written so far (keyed mode).
    pos: u64,
    scratch: Vec<u8>,
}

/// Index slot of a key never pushed.
const NO_ENTRY: (u64, u64) = (u64::MAX, 0);

impl Spill {
    pub fn new() -> io::Result<Self> {
        Ok(Spill {
            file: BufWriter::with_capacity(1 << 16, tempfile::tempfile()?),
            count: 0,
            index: Vec::new(),
            pos: 0,
            scratch: Vec::new(),
        })
    }

    /// Writes the entry with `key` (from 1; keys should be dense, as the index has one
    /// slot per key up to the largest); the array is emitted sorted by key.
    pub fn push_keyed<T: Serialize>(&mut self, key: u64, value: &T) -> io::Result<()> {
        let slot = usize::try_from(key.saturating_sub(1)).map_err(io::Error::other)?;
        self.scratch.clear();
        serde_json::to_writer(&mut self.scratch, value).map_err(io::Error::other)?;
        self.file.write_all(&self.scratch)?;
        if self.index.len() <= slot {
            self.index.resize(slot + 1, NO_ENTRY);
        }
        self.index[slot] = (self.pos, self.scratch.len() as u64);
        self.pos += self.scratch.len() as u64;
        self.count += 1;
        Ok(())
    }

    pub fn push<T: Serialize>(&mut self, value: &T) -> io::Result<()> {
        if self.count > 0 {
            self.file.write_all(b",\n")?;
        }
        serde_json::to_writer(&mut self.file, value).map_err(io::Error::other)?;
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
        self.file.flush()?;
        let file = self.file.get_mut();
        let result = read_entries(file, &self.index, f);
        // Back to the end, where the next push writes.
        file.seek(SeekFrom::End(0))?;
        result
    }

    /// Copies the entries (without brackets) to `w`.
    fn copy_into(self, w: &mut dyn Write) -> io::Result<()> {
        let mut file = self.file.into_inner().map_err(|e| e.into_error())?;
        if !self.index.is_empty() {
            let mut buf = Vec::new();
            let mut first = true;
            for &(off, len) in self.index.iter().filter(|&&e| e != NO_ENTRY) {
                buf.resize(usize::try_from(len).map_err(io::Error::other)?, 0);
                file.seek(SeekFrom::Start(off))?;
                file.read_exact(&mut buf)?;
                if !first {
                    w.write_all(b",\n")?;
                }
                first = false;
                w.write_all(&buf)?;
            }
            return Ok(());
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
    let mut buf = Vec::new();
    if !index.is_empty() {
        for &(off, len) in index.iter().filter(|&&e| e != NO_ENTRY) {
            buf.resize(usize::try_from(len).map_err(io::Error::other)?, 0);
            file.seek(SeekFrom::Start(off))?;
            file.read_exact(&mut buf)?;
            f(&buf)?;
        }
        return Ok(());
    }
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
