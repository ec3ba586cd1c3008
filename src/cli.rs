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
        views.mac_table |= opts.mac_table;
        views.arp |= opts.arp;
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
            l2: netlens::L2Options {
                aging_s: opts.aging,
                mac_table_size: opts.mac_table_size,
                ..netlens::L2Options::default()
            },
        }
    }
}
