//! The library's error type.
//!
//! Every variant names the file or interface it is about and says what the user can do
//! next, because the binary prints `Display` as the one-sentence error on stderr.
//! Damage inside a capture is *not* an error: it is a [`crate::capture::Damage`] warning and
//! the run goes on with everything read before it.

use std::path::PathBuf;

/// Errors that end a run (exit code 1), or reject its configuration (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open {path}: {source}; check the path and that you may read it")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a capture file ({detail}); netlens reads pcap and pcapng files")]
    NotACapture { path: PathBuf, detail: String },
    #[error("{path}: {detail}")]
    Unsupported { path: PathBuf, detail: String },
    #[error("error reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}; {}", write_hint(.source))]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Writing the terminal output or the JSON to stdout failed. A closed pipe
    /// (`netlens read f --packets | head`) is this with `BrokenPipe`: the binary exits quietly.
    #[error("cannot write output: {0}")]
    Output(#[source] std::io::Error),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Live(String),
    /// A needed run-time library (libpcap for --filter) is missing.
    #[error("{0}")]
    Environment(String),
}

/// What the user can do about a failed write: the usual cause differs by error kind.
fn write_hint(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
            "free some space or write elsewhere"
        }
        _ => "check that the directory exists and is writable",
    }
}

impl Error {
    /// True when the error is the user's command line rather than the input (exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::Usage(_))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
