//! The command line (clap derive only): turns arguments into a library [`netlens::Config`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use netlens::analyze::framing::{FramingConfig, FramingRule};
use netlens::analyze::streams::StreamOptions;
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
    /// Reassembled TCP streams: messages vs segments (coalesced / split), gaps, UDP datagrams.
    #[arg(long)]
    pub streams: bool,
    /// Message framing for --streams: KIND for every stream, or PORT=KIND for connections
    /// with that port at either end (repeatable). KIND: len:OFF:WIDTH:ENDIAN[:ADJ],
    /// len32le, len32be, len16be, delim:HEX, json-header, line, http, tls, dns, auto
    /// (default), none.
    #[arg(long, value_name = "SPEC")]
    pub framing: Vec<FramingRule>,
    /// Show one connection in full (its id in the report).
    #[arg(long, value_name = "ID")]
    pub conn: Option<u64>,
    /// Write each TCP stream direction's reassembled bytes to files under DIR (created if
    /// missing; named from the 4-tuple; existing files are kept unless --force).
    #[arg(long, value_name = "DIR")]
    pub extract: Option<PathBuf>,
    /// With --extract: also write each framed message to its own file.
    #[arg(long, requires = "extract")]
    pub extract_messages: bool,
    /// With --extract: overwrite existing files.
    #[arg(long, requires = "extract")]
    pub force: bool,
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
        views.streams |= opts.streams;
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
            conn: opts.conn,
            streams: StreamOptions {
                framing: FramingConfig {
                    rules: opts.framing,
                },
                max_message: opts.max_message,
                conn_buffer: opts.stream_buffer,
                total_buffer: opts.stream_memory,
                max_list: opts.max_list,
                extract: opts.extract,
                extract_messages: opts.extract_messages,
                force: opts.force,
                ..StreamOptions::default()
            },
        }
    }
}
