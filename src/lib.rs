//! netlens: a packet-capture protocol analyzer.
//!
//! Data flows one way:
//!
//! ```text
//! capture ──► dissect ──► analyze ──► report
//! (frames)    (Packet)    (analyzers)  (JSON, tables)
//! ```
//!
//! - [`capture`] yields raw frames from pcap/pcapng files (and live interfaces);
//! - [`dissect`] turns each into netlens's own [`dissect::Packet`] (the only user of
//!   etherparse) and never fails;
//! - [`analyze`] holds the analyzers, which see every packet once and fill a section of the
//!   [`report::Report`];
//! - [`report`] is the JSON schema and the renderers (JSON, terminal tables, per-frame lines).
//!
//! [`cpu`] holds hints to the processor (prefetches) that any stage may use; they change
//! no result.
//!
//! [`pipeline::run`] wires them together for a [`config::Config`]. The binary (`main.rs`,
//! `cli.rs`) is a thin layer over it.

pub mod analyze;
pub mod capture;
pub mod config;
pub mod cpu;
pub mod dissect;
pub mod error;
pub mod pipeline;
pub mod report;

pub use config::HtmlOptions;
pub use config::{Config, Input, L2Options, LiveInput, Views};
pub use dissect::defrag::DefragLimits;
pub use error::{Error, Result};
pub use pipeline::run;
