//! The JSON renderer.
//!
//! Report parts that grow with the input (today: `packets`) are not kept in memory: each
//! entry is serialised as it completes into a [`Spill`] (an anonymous temporary file) and
//! spliced into the one JSON document at the end. So peak memory follows concurrent state,
//! never the capture's length. The document is compact JSON with one array entry per line,
//! which keeps huge reports greppable and diffable.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};

use serde::Serialize;

use super::Report;

/// An array of JSON entries written to a temporary file as they complete.
pub struct Spill {
    file: BufWriter<File>,
    count: u64,
}

impl Spill {
    pub fn new() -> io::Result<Self> {
        Ok(Spill {
            file: BufWriter::with_capacity(1 << 16, tempfile::tempfile()?),
            count: 0,
        })
    }

    pub fn push<T: Serialize>(&mut self, value: &T) -> io::Result<()> {
        if self.count > 0 {
            self.file.write_all(b",\n")?;
        }
        serde_json::to_writer(&mut self.file, value).map_err(io::Error::other)?;
        self.count += 1;
        Ok(())
    }

    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Copies the entries (without brackets) to `w`.
    fn copy_into(self, w: &mut dyn Write) -> io::Result<()> {
        let mut file = self.file.into_inner().map_err(|e| e.into_error())?;
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

/// Writes the whole report: the in-memory sections of `report`, then each spilled array
/// under its key.
pub fn write(
    w: &mut dyn Write,
    report: &Report,
    spills: Vec<(&'static str, Spill)>,
) -> io::Result<()> {
    // Serialise the in-memory part as an object, then splice the spilled arrays in before
    // its closing brace: field order stays that of the schema types.
    let head = serde_json::to_value(report).map_err(io::Error::other)?;
    let serde_json::Value::Object(map) = head else {
        return Err(io::Error::other("report did not serialise to an object"));
    };
    w.write_all(b"{")?;
    let mut first = true;
    for (k, v) in &map {
        if !first {
            w.write_all(b",\n")?;
        }
        first = false;
        serde_json::to_writer(&mut *w, k).map_err(io::Error::other)?;
        w.write_all(b":")?;
        write_value(w, v)?;
    }
    for (key, spill) in spills {
        if !first {
            w.write_all(b",\n")?;
        }
        first = false;
        serde_json::to_writer(&mut *w, key).map_err(io::Error::other)?;
        w.write_all(b":[\n")?;
        spill.copy_into(w)?;
        w.write_all(b"\n]")?;
    }
    w.write_all(b"}\n")?;
    w.flush()
}

/// Arrays of objects get one entry per line; everything else is compact.
fn write_value(w: &mut dyn Write, v: &serde_json::Value) -> io::Result<()> {
    match v {
        serde_json::Value::Array(items) if items.iter().any(|i| i.is_object()) => {
            w.write_all(b"[")?;
            for (i, item) in items.iter().enumerate() {
                w.write_all(if i == 0 { b"\n" } else { b",\n" })?;
                serde_json::to_writer(&mut *w, item).map_err(io::Error::other)?;
            }
            w.write_all(if items.is_empty() { b"]" } else { b"\n]" })
        }
        _ => serde_json::to_writer(&mut *w, v).map_err(io::Error::other),
    }
}
