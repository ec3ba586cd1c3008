//! What a run should do: the library's view of the command line.
//!
//! `cli.rs` (clap) builds a [`Config`]; tests and other programs build one directly.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

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

/// Connection tracking: caps, timeouts and the view filters (`--max-conns`,
/// `--idle-timeout`, `--udp-timeout`, `--linger`, `--host`, `--port`, `--conn`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConnOptions {
    /// Most connections tracked at once; beyond it the one due soonest is evicted.
    pub max_connections: usize,
    /// A TCP connection with no packet for this long is finalized (Zeek: 5 min).
    pub tcp_idle_timeout_s: f64,
    /// A UDP flow with no packet for this long is finalized (Zeek: 1 min).
    pub udp_idle_timeout_s: f64,
    /// A closed TCP connection stays this long (capture time) so late ACKs and
    /// retransmitted FINs join it (Zeek's tcp_close_delay: 5 s).
    pub linger_s: f64,
    /// Views show only connections with this address at either end.
    pub host: Option<std::net::IpAddr>,
    /// Views show only connections with this port at either end.
    pub port: Option<u16>,
    /// Show this connection in full.
    pub conn: Option<u64>,
    /// A UDP flow with no packet for this long is kept packed (memory only: results do
    /// not change; 0 packs at every packet, which tests use to exercise the packed form).
    pub cold_after_s: f64,
}

impl Default for ConnOptions {
    fn default() -> Self {
        ConnOptions {
            // About 2 KiB per TCP connection: a worst case near 500 MiB.
            max_connections: 250_000,
            tcp_idle_timeout_s: 300.0,
            udp_idle_timeout_s: 60.0,
            linger_s: 5.0,
            host: None,
            port: None,
            conn: None,
            cold_after_s: 0.1,
        }
    }
}

/// Where frames come from.
#[derive(Debug, Clone)]
pub enum Input {
    /// Capture files read in order as one input; `-` is standard input.
    Files(Vec<PathBuf>),
    /// A live interface.
    Live(LiveInput),
}

/// A live capture's settings.
#[derive(Debug, Clone)]
pub struct LiveInput {
    pub interface: String,
    /// Stop after this long.
    pub duration: Option<std::time::Duration>,
    pub promiscuous: bool,
    /// Frames the capture→analysis queue holds before dropping (and counting) frames.
    pub queue: usize,
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
    /// IPv4 reassembly caps (`--frag-*`).
    pub defrag: crate::dissect::defrag::DefragLimits,
    /// Verify TCP/UDP checksums (implied by `--packets`).
    pub checksums: bool,
    /// No warnings on stderr.
    pub quiet: bool,
    pub color: bool,
    /// `--write FILE.pcap`: save every frame read.
    pub write: Option<PathBuf>,
    /// Overwrite existing output files (`--write`).
    pub force: bool,
    /// Set to end a live capture (the binary sets it on SIGINT/SIGTERM).
    pub stop: Arc<AtomicBool>,
    /// Refresh a one-line live status on the error stream about once a second (the binary
    /// sets this when stderr is a terminal).
    pub status_line: bool,
    /// Write one line per event (connection opened / finalized) to the output as it
    /// happens: live captures whose output is not a terminal.
    pub events: bool,
    /// Show a progress bar on the error stream while reading files (the binary sets this
    /// when stderr is a terminal).
    pub progress: bool,
    /// `-f/--filter`: a libpcap filter expression.
    pub filter: Option<String>,
    /// `--threads`: analysis threads. 1 runs every analysis on the pipeline thread; more
    /// (the default, when the machine has two cores or more) moves stream reassembly to
    /// a thread of its own when no event output needs it inline. Reading a file ahead
    /// has its own thread either way.
    pub threads: usize,
    /// `--no-mmap` clears it: regular files are never memory-mapped, always read (the
    /// pipeline maps them when both analysis threads are busy, see `capture::ahead`; a
    /// mapped file that another process truncates ends the run, see `capture::sigbus`).
    pub mmap: bool,
    /// Connection tracking caps, timeouts and view filters.
    pub conns: ConnOptions,
    /// Limits of the MAC-table and ARP analyzers.
    pub l2: L2Options,
    /// `--html PATH`: the visual report, written at the end of the run.
    pub html: Option<PathBuf>,
    /// Limits of the HTML page.
    pub html_options: HtmlOptions,
    /// `--streams` settings: framing, reassembly caps, `--extract`.
    pub streams: crate::analyze::streams::StreamOptions,
    /// `--ndjson PATH`: one JSON line per event as it completes; `-` = standard output
    /// (which then carries only the NDJSON).
    pub ndjson: Option<PathBuf>,
    /// `--zeek-logs DIR`: conn.log, handshakes.log and streams.log in Zeek's TSV format.
    pub zeek_logs: Option<PathBuf>,
    /// `--parquet DIR`: connections, streams and packets tables (cargo feature `parquet`;
    /// without it, asking for them is a usage error).
    pub parquet: Option<PathBuf>,
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
            defrag: Default::default(),
            checksums: false,
            quiet: false,
            color: false,
            write: None,
            force: false,
            stop: Arc::new(AtomicBool::new(false)),
            status_line: false,
            events: false,
            progress: false,
            filter: None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(2)),
            mmap: true,
            conns: ConnOptions::default(),
            l2: L2Options::default(),
            html: None,
            html_options: HtmlOptions::default(),
            streams: Default::default(),
            ndjson: None,
            zeek_logs: None,
            parquet: None,
        }
    }

    /// True when the NDJSON lines go to standard output (no tables then).
    pub fn ndjson_to_stdout(&self) -> bool {
        self.ndjson.as_deref() == Some(std::path::Path::new("-"))
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

/// Limits of the HTML page (`--html`): what a browser can show at once. What a limit
/// leaves out is said on the page; the JSON report is never cut by them.
#[derive(Debug, Clone, PartialEq)]
pub struct HtmlOptions {
    /// TCP connections whose ladder is drawn (`--html-max-ladders`); later connections get
    /// a card with their facts only.
    pub max_ladders: usize,
    /// Rows of each long table: UDP flows, MAC entries and events, ARP lists
    /// (`--html-max-rows`).
    pub max_rows: usize,
    /// Stream directions whose segment/message map is drawn (`--html-max-maps`); later
    /// ones get a one-line card. Each map draws at most `max_map_segments` segments.
    pub max_maps: usize,
    pub max_map_segments: usize,
}

impl Default for HtmlOptions {
    fn default() -> Self {
        HtmlOptions {
            max_ladders: 2_000,
            max_rows: 2_000,
            max_maps: 300,
            max_map_segments: 300,
        }
    }
}
