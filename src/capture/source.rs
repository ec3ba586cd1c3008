//! The one frame source a run reads: capture files in order, or a live interface.
//!
//! Files are opened up front (a bad path fails before any output) and read in order as one
//! input: frame numbers run on, each file's interfaces get their own global port numbers,
//! and damage in one file ends that file with a warning while the next file is still read.

use std::path::PathBuf;

use super::file::{CaptureFile, Format};
use super::live::{LiveCapture, LiveOptions, LiveStats};
use super::{InterfaceInfo, Next};
use crate::error::Result;

/// Capture files read in order as one input.
pub struct FileSet {
    files: Vec<CaptureFile>,
    cur: usize,
    started: bool,
    next_port: u32,
    /// Formats of the files begun so far, in order.
    pub formats: Vec<Format>,
    /// Interfaces of the files read so far.
    pub interfaces: Vec<InterfaceInfo>,
    pub skipped_blocks: u64,
    /// Sizes of the regular files (None for standard input), for progress.
    sizes: Vec<Option<u64>>,
    done_bytes: u64,
}

impl FileSet {
    pub fn open(paths: &[PathBuf], max_record: usize) -> Result<Self> {
        let mut files = Vec::with_capacity(paths.len());
        let mut sizes = Vec::with_capacity(paths.len());
        for (i, p) in paths.iter().enumerate() {
            files.push(CaptureFile::open(p, i as u16, max_record)?);
            sizes.push(
                std::fs::metadata(p)
                    .ok()
                    .filter(|m| m.is_file())
                    .map(|m| m.len()),
            );
        }
        Ok(FileSet {
            files,
            cur: 0,
            started: false,
            next_port: 0,
            formats: Vec::new(),
            interfaces: Vec::new(),
            skipped_blocks: 0,
            sizes,
            done_bytes: 0,
        })
    }

    /// Whether regular files are memory-mapped (see `ahead`) rather than read into
    /// buffers; set before the first packet is read.
    pub fn map_files(&mut self, on: bool) {
        for f in &mut self.files {
            f.map_file(on);
        }
    }

    /// (bytes read, total bytes) over all files; the total is None when an input is
    /// standard input or a pipe.
    pub fn progress(&self) -> (u64, Option<u64>) {
        let cur = self.files.get(self.cur).map_or(0, |f| f.offset());
        let total = self.sizes.iter().copied().sum::<Option<u64>>();
        (self.done_bytes + cur, total)
    }

    /// Files already opened (from memory, in tests and fuzzing); their sizes are unknown.
    pub fn from_files(files: Vec<CaptureFile>) -> Self {
        let sizes = vec![None; files.len()];
        FileSet {
            files,
            cur: 0,
            started: false,
            next_port: 0,
            formats: Vec::new(),
            interfaces: Vec::new(),
            skipped_blocks: 0,
            sizes,
            done_bytes: 0,
        }
    }

    fn close_current(&mut self) {
        if let Some(f) = self.files.get(self.cur) {
            self.done_bytes += f.offset();
            self.skipped_blocks += f.skipped_blocks;
            self.next_port = f.next_port();
            self.interfaces.extend(f.interfaces.iter().cloned());
        }
        self.cur += 1;
        self.started = false;
    }

    #[inline]
    pub fn next_packet(&mut self, frame: u64) -> Next<'_> {
        loop {
            if self.cur >= self.files.len() {
                return Next::End;
            }
            if self.files[self.cur].is_done() {
                self.close_current();
                continue;
            }
            if !self.started {
                self.started = true;
                let port = self.next_port;
                let f = &mut self.files[self.cur];
                self.formats.push(f.format());
                f.begin(port);
            }
            // A file's end or damage marks it done; the next call moves on to the next file
            // (returning `Idle` here keeps the borrow checker happy about the loop).
            return match self.files[self.cur].next_packet(frame) {
                Next::End => Next::Idle,
                other => other,
            };
        }
    }

    /// Interfaces read so far plus those of the file being read.
    pub fn all_interfaces(&self) -> Vec<InterfaceInfo> {
        let mut v = self.interfaces.clone();
        if self.started {
            if let Some(f) = self.files.get(self.cur) {
                v.extend(f.interfaces.iter().cloned());
            }
        }
        v
    }
}

/// Where frames come from.
pub enum Source {
    Files(FileSet),
    Live(Box<LiveCapture>),
}

impl Source {
    pub fn open_files(paths: &[PathBuf], max_record: usize) -> Result<Self> {
        Ok(Source::Files(FileSet::open(paths, max_record)?))
    }

    pub fn open_live(opts: &LiveOptions) -> Result<Self> {
        Ok(Source::Live(Box::new(LiveCapture::open(opts)?)))
    }

    #[inline]
    pub fn next_packet(&mut self, frame: u64) -> Next<'_> {
        match self {
            Source::Files(f) => f.next_packet(frame),
            Source::Live(l) => l.next_packet(frame),
        }
    }

    pub fn interfaces(&self) -> Vec<InterfaceInfo> {
        match self {
            Source::Files(f) => f.all_interfaces(),
            Source::Live(l) => vec![l.info.clone()],
        }
    }

    pub fn live_stats(&self) -> Option<LiveStats> {
        match self {
            Source::Live(l) => Some(l.stats()),
            Source::Files(_) => None,
        }
    }
}
