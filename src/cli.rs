//! The command line (clap derive only): turns arguments into a library [`netlens::Config`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use netlens::analyze::framing::{FramingConfig, FramingRule};
use netlens::analyze::streams::StreamOptions;
use netlens::{Config, Input, LiveInput, Views};

#[derive(Parser, Debug)]
#[command(
    name = "netlens",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("NETLENS_GIT_COMMIT"), ")"),
    about = "See what TCP/IP did: handshakes, teardowns, MAC/ARP tables and stream reassembly from pcap/pcapng captures",
    after_help = "Exit codes: 0 success (also when a damaged capture was read up to the damage), 1 runtime error (unreadable file, no permission), 2 usage error."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Read .pcap / .pcapng files (format detected by magic bytes; `-` = standard input).
    Read {
        /// Capture files, read in order as one input (frame numbers run on as `mergecap -a`).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        #[command(flatten)]
        opts: Opts,
    },
    /// Capture live from a network interface (needs root or CAP_NET_RAW); Ctrl-C ends it
    /// and prints the report.
    Live {
        /// The interface, e.g. eth0 (see `netlens interfaces`).
        #[arg(value_name = "IFACE")]
        interface: String,
        /// Stop after this many seconds.
        #[arg(long, value_name = "SECS")]
        duration: Option<f64>,
        /// Do not put the interface into promiscuous mode.
        #[arg(long)]
        no_promiscuous: bool,
        #[command(flatten)]
        opts: Opts,
    },
    /// List capture interfaces with their MACs, addresses, state and whether capture is
    /// permitted.
    Interfaces {
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) generated from these definitions.
    Man,
}

#[derive(Args, Debug)]
pub struct Opts {
    /// One line per frame, layer by layer (its own mode: not part of --all).
    #[arg(long)]
    pub packets: bool,
    /// Every analysis view (everything except --packets).
    #[arg(long)]
    pub all: bool,
    /// TCP handshakes: a table, and the ladder (SYN/SYN-ACK/ACK with x, y and checks) of the first few.
    #[arg(long)]
    pub handshakes: bool,
    /// TCP closes: kind, initiator, the FIN/ACK/RST steps with frame numbers.
    #[arg(long)]
    pub teardowns: bool,
    /// TCP and UDP connections like Zeek's conn.log (conn_state, history, bytes, anomalies).
    #[arg(long)]
    pub conns: bool,
    /// Show connection ID (the `id` of --conns / the JSON report) in full.
    #[arg(long, value_name = "ID")]
    pub conn: Option<u64>,
    /// Restrict the connection views to connections with this address at either end.
    #[arg(long, value_name = "IP")]
    pub host: Option<std::net::IpAddr>,
    /// Restrict the connection views to connections with this port at either end.
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,
    /// Most connections tracked at once (at most 67,108,862); beyond it the one due soonest is closed out (counted).
    #[arg(long, default_value_t = netlens::config::ConnOptions::default().max_connections, value_name = "N")]
    pub max_conns: usize,
    /// Seconds without a packet after which a TCP connection is closed out (capture time).
    #[arg(long, default_value_t = netlens::config::ConnOptions::default().tcp_idle_timeout_s, value_name = "SECS")]
    pub idle_timeout: f64,
    /// Seconds without a packet after which a UDP flow is closed out (capture time).
    #[arg(long, default_value_t = netlens::config::ConnOptions::default().udp_idle_timeout_s, value_name = "SECS")]
    pub udp_timeout: f64,
    /// Seconds without a packet after which a UDP flow is kept packed in memory (results
    /// do not change; 0 packs at every packet, for tests).
    #[arg(long, hide = true, default_value_t = netlens::config::ConnOptions::default().cold_after_s, value_name = "SECS")]
    pub cold_after: f64,
    /// Seconds a closed TCP connection lingers so late ACKs and retransmitted FINs join it.
    #[arg(long, default_value_t = netlens::config::ConnOptions::default().linger_s, value_name = "SECS")]
    pub linger: f64,
    /// Write the JSON report to PATH (`-` = stdout, which then carries only the JSON).
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Rows per terminal table (0 = all); a line says how many were left out.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub limit: usize,
    /// Stop after N frames.
    #[arg(short = 'c', long, value_name = "N")]
    pub count: Option<u64>,
    /// Largest capture record accepted, in bytes (longer records are damage).
    #[arg(long, default_value_t = netlens::capture::file::DEFAULT_MAX_RECORD, value_name = "BYTES")]
    pub max_record: usize,
    /// IPv4 datagrams waiting for fragments at once; fragments of more are dropped.
    #[arg(long, default_value_t = netlens::DefragLimits::default().max_datagrams, value_name = "N")]
    pub frag_datagrams: usize,
    /// Fragments one IPv4 datagram may have before it is dropped (a teardrop).
    #[arg(long, default_value_t = netlens::DefragLimits::default().max_fragments, value_name = "N")]
    pub frag_per_datagram: usize,
    /// Bytes held for IPv4 reassembly over all datagrams.
    #[arg(long, default_value_t = netlens::DefragLimits::default().max_bytes, value_name = "BYTES")]
    pub frag_memory: usize,
    /// Capture seconds an IPv4 datagram waits for its missing fragments.
    #[arg(long, default_value_t = netlens::DefragLimits::default().timeout_ns as f64 / 1e9, value_name = "SECS")]
    pub frag_timeout: f64,
    /// Verify TCP and UDP checksums (always on with --packets).
    #[arg(long)]
    pub checksums: bool,
    /// No warnings on stderr (they stay in the report).
    #[arg(short, long)]
    pub quiet: bool,
    /// Analysis threads: 1 keeps everything on one thread; 2 (the default with two or
    /// more cores) runs stream reassembly on its own thread.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    /// Read capture files, never memory-map them (for a file another program may shorten while netlens reads it).
    #[arg(long)]
    pub no_mmap: bool,
    /// No colour (also when NO_COLOR is set or output is not a terminal).
    #[arg(long)]
    pub no_color: bool,
    /// Save every frame read to FILE as a pcap (live: what was captured).
    #[arg(short = 'w', long, value_name = "FILE")]
    pub write: Option<PathBuf>,
    /// Overwrite existing output files.
    #[arg(long)]
    pub force: bool,
    /// A libpcap filter expression, exactly as tcpdump takes it (`tcp port 80 and host
    /// 10.0.0.1`); needs libpcap installed at run time. Frame numbers stay those of the
    /// unfiltered input.
    #[arg(short = 'f', long, value_name = "EXPR")]
    pub filter: Option<String>,
    /// The switch MAC learning table and the flood/forward statistics.
    #[arg(long)]
    pub mac_table: bool,
    /// ARP table, exchanges, unanswered requests, gratuitous ARP, probes, conflicts.
    #[arg(long)]
    pub arp: bool,
    /// MAC table aging time in capture seconds (0 = entries never age).
    #[arg(long, value_name = "SECS", default_value_t = netlens::L2Options::default().aging_s)]
    pub aging: u64,
    /// Most entries the simulated switch table holds (a full table stops learning).
    #[arg(long, value_name = "N", default_value_t = netlens::L2Options::default().mac_table_size)]
    pub mac_table_size: usize,
    /// Most MAC addresses tracked per run as sources (and as many destination-only ones);
    /// beyond it frames are counted, not tracked, and a warning says so.
    #[arg(long, value_name = "N", default_value_t = netlens::L2Options::default().max_macs)]
    pub max_macs: usize,
    /// Most (VLAN, IP, MAC) bindings the ARP table holds; beyond it new bindings are
    /// counted, not recorded, and a warning says so.
    #[arg(long, value_name = "N", default_value_t = netlens::L2Options::default().arp_max_bindings)]
    pub arp_table_size: usize,
    /// Most entries kept in each ARP list (exchanges, gratuitous, probes, conflicts,
    /// unsolicited replies); the totals stay exact and a warning says what was left out.
    #[arg(long, value_name = "N", default_value_t = netlens::L2Options::default().arp_max_list)]
    pub arp_max_list: usize,
    /// Write the visual report to PATH at the end of the run: one self-contained HTML page
    /// (ladder diagrams, MAC and ARP tables; no network needed to view it). Runs every
    /// analysis the page draws, whatever views are asked for.
    #[arg(long, value_name = "PATH")]
    pub html: Option<PathBuf>,
    /// HTML: draw the ladder of at most N TCP connections (later ones get a card without).
    #[arg(long, value_name = "N", default_value_t = netlens::HtmlOptions::default().max_ladders)]
    pub html_max_ladders: usize,
    /// HTML: at most N rows in each long table (UDP flows, MAC entries, ARP lists).
    #[arg(long, value_name = "N", default_value_t = netlens::HtmlOptions::default().max_rows)]
    pub html_max_rows: usize,
    /// HTML: draw the segment/message map of at most N stream directions (later ones get
    /// a card without).
    #[arg(long, value_name = "N", default_value_t = netlens::HtmlOptions::default().max_maps)]
    pub html_max_maps: usize,
    /// HTML: at most N segments drawn in each segment/message map.
    #[arg(long, value_name = "N", default_value_t = netlens::HtmlOptions::default().max_map_segments)]
    pub html_map_segments: usize,
    /// Reassembled TCP streams: messages vs segments (coalesced / split), gaps, UDP datagrams.
    #[arg(long)]
    pub streams: bool,
    /// Message framing for --streams: KIND for every stream, or PORT=KIND for connections
    /// with that port at either end (repeatable). KIND: len:OFF:WIDTH:ENDIAN[:ADJ],
    /// len32le, len32be, len16be, delim:HEX, json-header, line, http, tls, dns, auto
    /// (default), none.
    #[arg(long, value_name = "SPEC")]
    pub framing: Vec<FramingRule>,
    /// Write each TCP stream direction's reassembled bytes to files under DIR (created if
    /// missing; named from the 4-tuple; existing files are kept unless --force).
    #[arg(long, value_name = "DIR")]
    pub extract: Option<PathBuf>,
    /// With --extract: also write each framed message to its own file.
    #[arg(long, requires = "extract")]
    pub extract_messages: bool,
    /// Largest message length a framer accepts; longer lengths count as garbage.
    #[arg(long, value_name = "BYTES", default_value_t = StreamOptions::default().max_message)]
    pub max_message: u64,
    /// Out-of-order bytes buffered per TCP connection before a hole is given up as a gap.
    #[arg(long, value_name = "BYTES", default_value_t = StreamOptions::default().conn_buffer)]
    pub stream_buffer: usize,
    /// Reassembly memory over all connections (out-of-order buffers and history windows).
    #[arg(long, value_name = "BYTES", default_value_t = StreamOptions::default().total_buffer)]
    pub stream_memory: usize,
    /// Segments, messages, gaps and datagrams kept per stream in the report (counts stay exact).
    #[arg(long, value_name = "N", default_value_t = StreamOptions::default().max_list)]
    pub max_list: usize,
    /// One JSON object per line as events complete (connection, handshake, arp, stream,
    /// udp_flow, then a summary); `-` = stdout, which then carries only these lines.
    #[arg(long, value_name = "PATH")]
    pub ndjson: Option<PathBuf>,
    /// Write conn.log, handshakes.log and streams.log in Zeek's TSV format into DIR
    /// (created if missing).
    #[arg(long, value_name = "DIR")]
    pub zeek_logs: Option<PathBuf>,
    /// Write connections.parquet, streams.parquet and packets.parquet into DIR (needs a
    /// build with `--features parquet`).
    #[arg(long, value_name = "DIR")]
    pub parquet: Option<PathBuf>,
}

/// What the binary should do.
pub enum Action {
    Run(Box<Config>),
    ListInterfaces { json: bool },
    Completions(clap_complete::Shell),
    Man,
}

impl Opts {
    fn into_config(self, input: Input) -> Config {
        let mut views = if self.all {
            Views::all()
        } else {
            Views::default()
        };
        views.packets = self.packets;
        views.handshakes |= self.handshakes;
        views.teardowns |= self.teardowns;
        views.conns |= self.conns;
        views.mac_table |= self.mac_table;
        views.arp |= self.arp;
        views.streams |= self.streams;
        let color = !self.no_color && std::env::var_os("NO_COLOR").is_none();
        let mut c = Config::for_files(Vec::new());
        c.input = input;
        c.views = views;
        c.json = self.json;
        c.limit = self.limit;
        c.count = self.count;
        c.max_record = self.max_record;
        c.defrag = netlens::DefragLimits {
            max_datagrams: self.frag_datagrams,
            max_fragments: self.frag_per_datagram,
            max_bytes: self.frag_memory,
            timeout_ns: if self.frag_timeout.is_finite() && self.frag_timeout > 0.0 {
                (self.frag_timeout.min(1e9) * 1e9) as i64
            } else {
                0
            },
        };
        c.checksums = self.checksums;
        c.quiet = self.quiet;
        c.mmap = !self.no_mmap;
        if let Some(n) = self.threads {
            c.threads = usize::from(n);
        }
        c.color = color;
        c.write = self.write;
        c.force = self.force;
        c.filter = self.filter;
        c.conns = netlens::config::ConnOptions {
            max_connections: self.max_conns,
            tcp_idle_timeout_s: self.idle_timeout,
            udp_idle_timeout_s: self.udp_timeout,
            linger_s: self.linger,
            host: self.host,
            port: self.port,
            conn: self.conn,
            cold_after_s: self.cold_after,
        };
        c.streams = StreamOptions {
            framing: FramingConfig {
                rules: self.framing,
            },
            max_message: self.max_message,
            conn_buffer: self.stream_buffer,
            total_buffer: self.stream_memory,
            max_list: self.max_list,
            extract: self.extract,
            extract_messages: self.extract_messages,
            force: self.force,
            ..StreamOptions::default()
        };
        c.l2 = netlens::L2Options {
            aging_s: self.aging,
            mac_table_size: self.mac_table_size,
            max_macs: self.max_macs,
            arp_max_bindings: self.arp_table_size,
            arp_max_list: self.arp_max_list,
            ..netlens::L2Options::default()
        };
        c.ndjson = self.ndjson;
        c.zeek_logs = self.zeek_logs;
        c.parquet = self.parquet;
        c.html = self.html;
        c.html_options = netlens::HtmlOptions {
            max_ladders: self.html_max_ladders,
            max_rows: self.html_max_rows,
            max_maps: self.html_max_maps,
            max_map_segments: self.html_map_segments,
        };
        c
    }
}

impl Cli {
    /// The action for these arguments; usage problems clap cannot see are `Err`.
    pub fn into_action(self) -> Result<Action, String> {
        match self.command {
            Command::Read { files, opts } => {
                Ok(Action::Run(Box::new(opts.into_config(Input::Files(files)))))
            }
            Command::Live {
                interface,
                duration,
                no_promiscuous,
                opts,
            } => {
                let duration = match duration {
                    Some(d) if !(d.is_finite() && d > 0.0) => {
                        return Err(format!(
                            "--duration must be a positive number of seconds, not {d}"
                        ))
                    }
                    Some(d) => Some(std::time::Duration::from_secs_f64(d)),
                    None => None,
                };
                Ok(Action::Run(Box::new(opts.into_config(Input::Live(
                    LiveInput {
                        interface,
                        duration,
                        promiscuous: !no_promiscuous,
                        queue: 65_536,
                    },
                )))))
            }
            Command::Interfaces { json } => Ok(Action::ListInterfaces { json }),
            Command::Completions { shell } => Ok(Action::Completions(shell)),
            Command::Man => Ok(Action::Man),
        }
    }
}
