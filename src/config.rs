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

    /// The default set: the summary and the ARP table (the connection overview joins it
    /// when that analyzer lands).
    pub fn resolved(&self) -> Views {
        if self.is_empty() {
            Views {
                summary: true,
                arp: true,
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
    /// Limits of the MAC-table and ARP analyzers.
    pub l2: L2Options,
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
            l2: L2Options::default(),
        }
    }

    /// True when the JSON document goes to standard output (no tables then).
    pub fn json_to_stdout(&self) -> bool {
        self.json.as_deref() == Some(std::path::Path::new("-"))
    }
}

/// Options and caps of the layer-2 analyzers (`mac_table`, `arp`). Every cap is counted
/// and reported when it is hit.
#[derive(Debug, Clone, PartialEq)]
pub struct L2Options {
    /// MAC table aging time in capture seconds (`--aging`).
    pub aging_s: u64,
    /// Most entries the simulated switch table holds at once (`--mac-table-size`).
    pub mac_table_size: usize,
    /// Most MAC addresses tracked per run (rows of the report, destinations apart).
    pub max_macs: usize,
    /// A reply later than this does not answer an ARP request.
    pub arp_reply_timeout_s: f64,
    /// Most (VLAN, IP, MAC) bindings in the ARP table.
    pub arp_max_bindings: usize,
    /// Most ARP requests waiting for a reply at once.
    pub arp_max_pending: usize,
    /// Most entries in each ARP list (exchanges, gratuitous, probes, conflicts, ...).
    pub arp_max_list: usize,
}

impl Default for L2Options {
    fn default() -> Self {
        L2Options {
            aging_s: 300,
            mac_table_size: 16_384,
            max_macs: 65_536,
            arp_reply_timeout_s: 10.0,
            arp_max_bindings: 65_536,
            arp_max_pending: 4_096,
            arp_max_list: 100_000,
        }
    }
}
