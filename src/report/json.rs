//! The JSON renderer.
//!
//! Report parts that grow with the input (packets, connections, stream directions, UDP
//! flows) are not kept in memory: each entry is serialised as it completes into a
//! [`Spill`] (anonymous temporary files; entries completing out of order go through a
//! `KeyedFile`, an external merge sort) and spliced into the one JSON document at the end. So peak memory follows concurrent state,
//! never the capture's length. The document is compact JSON with one array entry per line,
//! which keeps huge reports greppable and diffable.

use std::fs::File;
use std::io::{self, BufRead, Seek, SeekFrom, Write};

use serde::Serialize;

use super::entry_file::SEP;
use super::json_out::WriteJson;
use super::keyed_file::KeyedFile;
use super::Report;

/// An array of JSON entries written to a temporary file as they complete.
///
/// Entries are either pushed in order ([`Spill::push`]) or keyed ([`Spill::push_keyed`]:
/// entries completing out of order, copied out sorted by key through a [`KeyedFile`],
/// with nothing per entry in memory). One spill uses one mode.
pub struct Spill {
    file: KeyedFile,
    count: u64,
    keyed: bool,
}

impl Spill {
    pub fn new() -> io::Result<Self> {
        Ok(Spill {
            file: KeyedFile::new()?,
            count: 0,
            keyed: false,
        })
    }

    /// Writes the entry with `key`; the array is emitted sorted by key (entries with
    /// equal keys in push order).
    pub fn push_keyed<T: Serialize>(&mut self, key: u64, value: &T) -> io::Result<()> {
        self.file.push(key, value)?;
        self.pushed_keyed();
        Ok(())
    }

    /// [`push_keyed`](Self::push_keyed) through the entry's hand-written JSON writer (same
    /// bytes, see `json_out`).
    pub fn push_keyed_json<T: WriteJson>(&mut self, key: u64, value: &T) -> io::Result<()> {
        self.file.push_json(key, value)?;
        self.pushed_keyed();
        Ok(())
    }

    /// [`push_keyed_json`](Self::push_keyed_json) of an entry whose JSON was written
    /// already (`json`: exactly the bytes its [`WriteJson`] writes).
    pub fn push_keyed_bytes(&mut self, key: u64, json: &[u8]) -> io::Result<()> {
        self.file.push_bytes(key, json)?;
        self.pushed_keyed();
        Ok(())
    }

    fn pushed_keyed(&mut self) {
        self.count += 1;
        self.keyed = true;
    }

    /// A keyed spill over another store's file of `count` entries, handed over without
    /// copying it.
    pub(crate) fn from_keyed(file: KeyedFile, count: u64) -> Self {
        Spill {
            file,
            count,
            keyed: true,
        }
    }

    pub fn push<T: Serialize>(&mut self, value: &T) -> io::Result<()> {
        let file = self.file.plain();
        if self.count > 0 {
            file.write_all(SEP)?;
        }
        file.push(value)?;
        self.count += 1;
        Ok(())
    }

    /// Appends one already-serialised JSON entry.
    pub fn push_raw(&mut self, json: &[u8]) -> io::Result<()> {
        let file = self.file.plain();
        if self.count > 0 {
            file.write_all(SEP)?;
        }
        file.write_all(json)?;
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
    /// Memory: a few windows (other renderers, e.g. the HTML page, use this).
    pub fn for_each_entry(&mut self, f: &mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        if self.keyed {
            return self.file.for_each(&mut |e| f(e).map(|_| true));
        }
        let file = &mut self.file.plain().file;
        file.flush()?;
        let result = read_in_order(file.get_mut(), f);
        // Back to the end, where the next push writes.
        file.get_mut().seek(SeekFrom::End(0))?;
        result
    }

    /// Copies the entries (without brackets) to `w`; with `direct` (the file under `w`),
    /// long runs go from the spill to that file inside the kernel.
    fn copy_into(&mut self, w: &mut dyn Write, direct: Option<&File>) -> io::Result<()> {
        if self.keyed {
            self.file.copy_keyed(w, direct)
        } else {
            self.file.copy_plain(w, direct)
        }
    }
}

/// Calls `f` with each entry of an in-order spill file: compact JSON entries (no raw
/// newline inside) separated by ",\n".
fn read_in_order(file: &mut File, f: &mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
    let mut buf = Vec::new();
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
    write_to(w, None, report, spills)
}

/// [`write`] to a file: the spilled arrays are copied into it by the kernel (see
/// [`copy_runs`]).
pub fn write_file(
    f: &mut io::BufWriter<File>,
    report: &Report,
    spills: Vec<(&'static str, Spill)>,
) -> io::Result<()> {
    f.flush()?;
    let file: &File = f.get_ref();
    let mut w = io::BufWriter::with_capacity(1 << 16, file);
    write_to(&mut w, Some(file), report, spills)
}

fn write_to(
    w: &mut dyn Write,
    direct: Option<&File>,
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
    // A copied spill is closed on a thread of its own: closing its temporary files is
    // when the kernel frees their pages, about 50 ms for the 230 MB of a 1 GB capture's
    // `--all` run, which then overlaps copying the next array instead of following it.
    std::thread::scope(|scope| {
        let (done, copied) = std::sync::mpsc::channel::<Spill>();
        scope.spawn(move || copied.into_iter().for_each(drop));
        for (key, mut spill) in spills {
            w.write_all(b",\n")?;
            serde_json::to_writer(&mut *w, key).map_err(io::Error::other)?;
            w.write_all(b":[\n")?;
            spill.copy_into(w, direct)?;
            w.write_all(b"\n]")?;
            // A send fails only when the closer is gone, then the spill is dropped here.
            let _ = done.send(spill);
        }
        w.write_all(b"}\n")?;
        w.flush()
    })
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
            // Still usable afterwards: pushes go on, and the JSON copy has every entry.
            let v = serde_json::json!({"id": 0});
            if keyed {
                s.push_keyed(4, &v).unwrap();
            } else {
                s.push(&v).unwrap();
            }
            let mut out = Vec::new();
            s.copy_into(&mut out, None).unwrap();
            let text = String::from_utf8(out).unwrap();
            assert_eq!(text.matches("\"id\"").count(), 4);
            serde_json::from_str::<serde_json::Value>(&format!("[{text}]")).unwrap();
        }
    }

    #[test]
    fn keyed_spill_comes_out_sorted() {
        let mut s = Spill::new().unwrap();
        for k in [3u64, 1, 4, 2] {
            s.push_keyed(k, &serde_json::json!({"id": k})).unwrap();
        }
        let mut out = Vec::new();
        s.copy_into(&mut out, None).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"id\":1},\n{\"id\":2},\n{\"id\":3},\n{\"id\":4}"
        );
    }

    /// The kernel-copy path writes the same bytes as the buffered one: keyed entries of
    /// mixed sizes (runs above and below `DIRECT_MIN`), pushed out of key order, and an
    /// in-order spill, written into a file between in-memory text.
    #[test]
    fn direct_copies_match_buffered_copies() {
        let make = || {
            let mut keyed = Spill::new().unwrap();
            let mut plain = Spill::new().unwrap();
            for i in 0..400u64 {
                // Keys 1..=400 in an order of short forward runs and jumps.
                let k = (i * 173) % 400 + 1;
                let len = [10usize, 900, 40_000, 70_000][(i % 4) as usize];
                let v = serde_json::json!({"k": k, "pad": "x".repeat(len)});
                keyed.push_keyed(k, &v).unwrap();
                if i < 50 {
                    plain.push(&v).unwrap();
                }
            }
            vec![("plain", plain), ("keyed", keyed)]
        };
        let report = Report::default();
        let mut want = Vec::new();
        write(&mut want, &report, make()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        let mut f = io::BufWriter::new(File::create(&path).unwrap());
        write_file(&mut f, &report, make()).unwrap();
        drop(f);
        let got = std::fs::read(&path).unwrap();
        assert_eq!(got.len(), want.len());
        assert!(got == want);
        let v: serde_json::Value = serde_json::from_slice(&got).unwrap();
        let keys: Vec<u64> = v["keyed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["k"].as_u64().unwrap())
            .collect();
        assert_eq!(keys, (1..=400).collect::<Vec<u64>>());
    }
}
