//! What a run should do: the library's view of the command line.
//!
//! `cli.rs` (clap) builds a [`Config`]; tests and other programs build one directly.

use std::path::PathBuf;

/// Which analysis views to show. None set = the default summary set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Views {
    pub summary: bool,
    pub packets: bool,
    pub handshakes: bool,
    pub teardowns: bool,
    pub conns: bool,
    pub mac_table: bool,
    pub arp: bool,
    pub streams: bool,
}

impl Views {
    /// Every analysis view (`--all`): everything but the per-frame `packets` mode.
    pub fn all() -> Self {
        Views {
            summary: true,
            packets: false,
            handshakes: true,
            teardowns: true,
            conns: true,
            mac_table: true,
            arp: true,
            streams: true,
        }
    }

    /// True when no view was asked for.
    pub fn is_empty(&self) -> bool {
        *self == Views::default()
    }

    /// The default set: the summary (connection overview and ARP table join it as those
    /// analyzers land).
    pub fn resolved(&self) -> Views {
        if self.is_empty() {
            Views {
                summary: true,
                ..Views::default()
            }
        } else {
            self.clone()
        }
    }
}

/// Where frames come from.
#[derive(Debug, Clone)]
pub enum Input {
    /// Capture files read in order as one input; `-` is standard input.
    Files(Vec<PathBuf>),
}

/// A whole run.
#[derive(Debug, Clone)]
pub struct Config {
    pub input: Input,
    pub views: Views,
    /// `--json PATH`; `-` = standard output (which then carries only the JSON).
    pub json: Option<PathBuf>,
    /// Rows per terminal table (0 = all).
    pub limit: usize,
    /// Stop after this many frames.
    pub count: Option<u64>,
    /// Largest record accepted from a capture file, in bytes.
    pub max_record: usize,
    /// Verify TCP/UDP checksums (implied by `--packets`).
    pub checksums: bool,
    /// No warnings on stderr.
    pub quiet: bool,
    pub color: bool,
    /// `--conn ID`: restrict views to one connection (shown in full).
    pub conn: Option<u64>,
    /// `--streams` settings: framing, reassembly caps, `--extract`.
    pub streams: crate::analyze::streams::StreamOptions,
}

impl Config {
    /// A config reading `files` with the default views and options.
    pub fn for_files(files: Vec<PathBuf>) -> Self {
        Config {
            input: Input::Files(files),
            views: Views::default(),
            json: None,
            limit: 50,
            count: None,
            max_record: crate::capture::file::DEFAULT_MAX_RECORD,
            checksums: false,
            quiet: false,
            color: false,
            conn: None,
            streams: Default::default(),
        }
    }

    /// True when the JSON document goes to standard output (no tables then).
    pub fn json_to_stdout(&self) -> bool {
        self.json.as_deref() == Some(std::path::Path::new("-"))
    }
}
