//! `--write FILE.pcap`: saves the frames a run read (live or from files) as a classic pcap.
//!
//! A pcap has one link type: frames of another link type (a pcapng input with mixed
//! interfaces) are skipped and counted. An existing file is never overwritten unless the
//! caller allows it. The writer is flushed when the run ends, also after Ctrl-C.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, TsResolution};

use super::RawPacket;
use crate::error::{Error, Result};

pub struct PcapOut {
    path: PathBuf,
    writer: Option<PcapWriter<BufWriter<File>>>,
    file: Option<BufWriter<File>>,
    link_type: Option<u32>,
    pub written: u64,
    pub skipped_other_link: u64,
}

/// The I/O error inside a pcap-file error: its own text for one ("Error reading bytes",
/// also when writing) would hide the cause, a full disk say, and the hint that goes with it.
fn io_error(e: pcap_file::PcapError) -> std::io::Error {
    match e {
        pcap_file::PcapError::IoError(e) => e,
        other => std::io::Error::other(other),
    }
}

impl PcapOut {
    /// Creates `path` (refusing an existing file unless `force`).
    pub fn create(path: &Path, force: bool) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| Error::Write {
                path: path.to_path_buf(),
                source,
            })?;
        }
        let mut opts = OpenOptions::new();
        opts.write(true);
        if force {
            opts.create(true).truncate(true);
        } else {
            opts.create_new(true);
        }
        let f = opts.open(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                Error::Usage(format!(
                    "{} already exists; choose another name or add --force to overwrite it",
                    path.display()
                ))
            } else {
                Error::Write {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
        Ok(PcapOut {
            path: path.to_path_buf(),
            writer: None,
            file: Some(BufWriter::with_capacity(1 << 16, f)),
            link_type: None,
            written: 0,
            skipped_other_link: 0,
        })
    }

    fn err(&self, source: std::io::Error) -> Error {
        Error::Write {
            path: self.path.clone(),
            source,
        }
    }

    pub fn write(&mut self, p: &RawPacket<'_>) -> Result<()> {
        if self.writer.is_none() {
            let Some(file) = self.file.take() else {
                return Ok(());
            };
            let header = PcapHeader {
                datalink: DataLink::from(p.link_type),
                ts_resolution: TsResolution::NanoSecond,
                snaplen: 262_144,
                ..PcapHeader::default()
            };
            let w = PcapWriter::with_header(file, header).map_err(|e| self.err(io_error(e)))?;
            self.writer = Some(w);
            self.link_type = Some(p.link_type);
        }
        if self.link_type != Some(p.link_type) {
            self.skipped_other_link += 1;
            return Ok(());
        }
        let ts = Duration::new(
            p.ts_ns.max(0) as u64 / 1_000_000_000,
            (p.ts_ns.max(0) % 1_000_000_000) as u32,
        );
        let wire = p.wire_len.max(p.data.len() as u32);
        // pcap-file refuses records longer than the snap length written in the header.
        let data = &p.data[..p.data.len().min(262_144)];
        let pkt = PcapPacket::new(ts, wire, data);
        let res = match self.writer.as_mut() {
            Some(w) => w.write_packet(&pkt).map(|_| ()),
            None => Ok(()),
        };
        res.map_err(|e| self.err(io_error(e)))?;
        self.written += 1;
        Ok(())
    }

    /// Flushes everything to disk; also writes the file header when no frame came.
    pub fn finish(mut self, default_link_type: u32) -> Result<u64> {
        if let Some(file) = self.file.take() {
            let header = PcapHeader {
                datalink: DataLink::from(default_link_type),
                ts_resolution: TsResolution::NanoSecond,
                snaplen: 262_144,
                ..PcapHeader::default()
            };
            let w = PcapWriter::with_header(file, header).map_err(|e| self.err(io_error(e)))?;
            self.writer = Some(w);
        }
        if let Some(w) = self.writer.take() {
            let mut inner = w.into_writer();
            inner.flush().map_err(|e| self.err(e))?;
            inner.get_ref().sync_all().map_err(|e| self.err(e))?;
        }
        Ok(self.written)
    }
}
