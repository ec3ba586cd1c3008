//! The command line (clap derive only): turns arguments into a library [`netlens::Config`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use netlens::{Config, Input, Views};

#[derive(Parser, Debug)]
#[command(
    name = "netlens",
    version,
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
    /// Most connections tracked at once; beyond it the one due soonest is closed out (counted).
    #[arg(long, default_value_t = netlens::config::ConnOptions::default().max_connections, value_name = "N")]
    pub max_conns: usize,
    /// Seconds without a packet after which a TCP connection is closed out (capture time).
    #[arg(long, default_value_t = netlens::config::ConnOptions::default().tcp_idle_timeout_s, value_name = "SECS")]
    pub idle_timeout: f64,
    /// Seconds without a packet after which a UDP flow is closed out (capture time).
    #[arg(long, default_value_t = netlens::config::ConnOptions::default().udp_idle_timeout_s, value_name = "SECS")]
    pub udp_timeout: f64,
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
    /// Verify TCP and UDP checksums (always on with --packets).
    #[arg(long)]
    pub checksums: bool,
    /// No warnings on stderr (they stay in the report).
    #[arg(short, long)]
    pub quiet: bool,
    /// No colour (also when NO_COLOR is set or output is not a terminal).
    #[arg(long)]
    pub no_color: bool,
}

impl Cli {
    /// The library configuration for these arguments.
    pub fn into_config(self) -> Config {
        let Command::Read { files, opts } = self.command;
        let mut views = if opts.all {
            Views::all()
        } else {
            Views::default()
        };
        views.packets = opts.packets;
        views.handshakes |= opts.handshakes;
        views.teardowns |= opts.teardowns;
        views.conns |= opts.conns;
        let color = !opts.no_color && std::env::var_os("NO_COLOR").is_none();
        Config {
            input: Input::Files(files),
            views,
            json: opts.json,
            limit: opts.limit,
            count: opts.count,
            max_record: opts.max_record,
            checksums: opts.checksums,
            quiet: opts.quiet,
            color,
            conns: netlens::config::ConnOptions {
                max_connections: opts.max_conns,
                tcp_idle_timeout_s: opts.idle_timeout,
                udp_idle_timeout_s: opts.udp_timeout,
                linger_s: opts.linger,
                host: opts.host,
                port: opts.port,
                conn: opts.conn,
            },
        }
    }
}
