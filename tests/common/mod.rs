//! Test helpers for the streams tests: a driver that runs the real connection tracker
//! (which fills `Ctx::conn`) and the `StreamAnalyzer` over capture files, and collects the
//! entries and the delivered bytes through an in-memory sink; and the list of every
//! capture (fixtures and the shared corpus) for tests that compare whole reports.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use netlens::analyze::conns::ConnTracker;
use netlens::analyze::streams::{StreamAnalyzer, StreamKey, StreamOptions, StreamSink};
use netlens::analyze::{Analyzer, Ctx, Dir};
use netlens::capture::file::{CaptureFile, DEFAULT_MAX_RECORD};
use netlens::capture::Next;
use netlens::config::ConnOptions;
use netlens::dissect::{DissectOptions, Dissector};
use netlens::report::streams::{StreamEntry, UdpFlowEntry};
use netlens::report::Report;

/// The real connection tracker, as the pipeline runs it (first, so `ctx.conn` is set).
fn tracker() -> ConnTracker {
    ConnTracker::new(&ConnOptions::default(), 50, false, false).expect("tracker")
}

/// Delivered bytes per (conn, dir), and message bytes per (conn, dir, index).
#[derive(Default, Clone)]
pub struct Collected {
    /// Delivered bytes, gaps left out.
    pub data: HashMap<(u64, Dir), Vec<u8>>,
    pub ends: HashMap<(u64, Dir), (SocketAddr, SocketAddr)>,
    /// Deliveries in the order they happened: (conn, dir, stream offset, length, position
    /// in `data`).
    pub order: Vec<(u64, Dir, u64, usize, usize)>,
    pub messages: HashMap<(u64, Dir, u64), Vec<u8>>,
}

impl Collected {
    /// A direction's bytes at their stream offsets, gaps as zeros.
    pub fn padded(&self, conn: u64, dir: Dir) -> Vec<u8> {
        let mut out = Vec::new();
        for &(c, d, off, len, at) in &self.order {
            if c == conn && d == dir {
                out.resize(off as usize, 0);
                out.extend_from_slice(&self.data[&(c, d)][at..at + len]);
            }
        }
        out
    }

    /// A connection's bytes, both directions, in delivery order.
    pub fn interleaved(&self, conn: u64) -> Vec<u8> {
        let mut out = Vec::new();
        for &(c, d, _, len, at) in &self.order {
            if c == conn {
                out.extend_from_slice(&self.data[&(c, d)][at..at + len]);
            }
        }
        out
    }
}

/// An in-memory [`StreamSink`] for tests (the bytes are small).
pub struct MemSink {
    pub out: std::sync::Arc<std::sync::Mutex<Collected>>,
    pub messages: bool,
}

impl StreamSink for MemSink {
    fn data(&mut self, key: &StreamKey, offset: u64, data: &[u8]) {
        let mut c = self.out.lock().expect("sink lock");
        c.ends.insert((key.conn, key.dir), (key.src, key.dst));
        let at = c.data.get(&(key.conn, key.dir)).map_or(0, |v| v.len());
        if let Some(&(_, _, off, len, _)) = c
            .order
            .iter()
            .rev()
            .find(|o| o.0 == key.conn && o.1 == key.dir)
        {
            assert!(
                offset >= off + len as u64,
                "bytes delivered twice or out of order"
            );
        }
        c.order.push((key.conn, key.dir, offset, data.len(), at));
        c.data
            .entry((key.conn, key.dir))
            .or_default()
            .extend_from_slice(data);
    }
    fn message_data(&mut self, key: &StreamKey, index: u64, data: &[u8]) {
        self.out
            .lock()
            .expect("sink lock")
            .messages
            .entry((key.conn, key.dir, index))
            .or_default()
            .extend_from_slice(data);
    }
    fn message_end(&mut self, _key: &StreamKey, _index: u64) {}
    fn end(&mut self, _key: &StreamKey) {}
    fn wants_messages(&self) -> bool {
        self.messages
    }
    fn close(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What a run produced.
pub struct Run {
    pub streams: Vec<StreamEntry>,
    pub udp: Vec<UdpFlowEntry>,
    pub bytes: Collected,
    /// The `--streams` terminal view (limit 40 rows, no colour).
    pub view: String,
    pub warnings: Vec<netlens::report::Warning>,
}

impl Run {
    pub fn stream(&self, conn: u64, dir: &str) -> &StreamEntry {
        self.streams
            .iter()
            .find(|s| s.conn == conn && s.dir == dir)
            .unwrap_or_else(|| panic!("no stream {conn}/{dir}"))
    }
}

/// Runs the mini tracker and the stream analyzer over `path`.
pub fn run(path: &Path, opts: StreamOptions) -> Run {
    let out = std::sync::Arc::new(std::sync::Mutex::new(Collected::default()));
    let sink = MemSink {
        out: out.clone(),
        messages: true,
    };
    let mut tracker = tracker();
    let mut streams = StreamAnalyzer::new(opts, Some(Box::new(sink))).expect("temp files");
    let mut file = CaptureFile::open(path, 0, DEFAULT_MAX_RECORD).expect("open capture");
    file.begin(0);
    let mut dissector = Dissector::new(DissectOptions::default());
    let mut ctx = Ctx::default();
    let mut frame = 1;
    loop {
        match file.next_packet(frame) {
            Next::Packet(raw) => {
                let pkt = dissector.dissect(&raw);
                ctx.reset();
                tracker.on_packet(&pkt, &mut ctx);
                streams.on_packet(&pkt, &mut ctx);
                frame += 1;
            }
            Next::Record { .. } => frame += 1,
            Next::Idle => {}
            Next::End | Next::Damaged(_) => break,
        }
    }
    let mut report = Report::default();
    tracker.finish(&mut report);
    streams.finish(&mut report);
    let mut o = streams.take_output().expect("output after finish");
    assert!(o.error.is_none(), "{:?}", o.error);
    let mut view = Vec::new();
    netlens::report::streams_view::write(
        &mut view,
        &o.streams.reader().expect("streams reader"),
        &o.udp_flows.reader().expect("udp reader"),
        netlens::report::streams_view::ViewOptions {
            limit: 40,
            conn: None,
            color: false,
        },
    )
    .expect("view");
    let mut s = Vec::new();
    o.streams
        .for_each(|e: StreamEntry| {
            s.push(e);
            Ok(())
        })
        .expect("read entries");
    let mut u = Vec::new();
    o.udp_flows
        .for_each(|e: UdpFlowEntry| {
            u.push(e);
            Ok(())
        })
        .expect("read entries");
    let bytes = out.lock().expect("sink lock").clone();
    Run {
        streams: s,
        udp: u,
        bytes,
        view: String::from_utf8(view).expect("utf-8 view"),
        warnings: o.warnings,
    }
}

/// Runs the mini tracker and `a` over `path`; returns the analysis output, or its error.
pub fn drive(
    path: &Path,
    a: &mut StreamAnalyzer,
) -> std::io::Result<netlens::analyze::streams::StreamsOutput> {
    let mut tracker = tracker();
    let mut file = CaptureFile::open(path, 0, DEFAULT_MAX_RECORD).expect("open capture");
    file.begin(0);
    let mut dissector = Dissector::new(DissectOptions::default());
    let mut ctx = Ctx::default();
    let mut frame = 1;
    loop {
        match file.next_packet(frame) {
            Next::Packet(raw) => {
                let pkt = dissector.dissect(&raw);
                ctx.reset();
                tracker.on_packet(&pkt, &mut ctx);
                a.on_packet(&pkt, &mut ctx);
                frame += 1;
            }
            Next::Record { .. } => frame += 1,
            Next::Idle => {}
            Next::End | Next::Damaged(_) => break,
        }
    }
    tracker.finish(&mut Report::default());
    a.finish(&mut Report::default());
    let mut o = a.take_output().expect("output after finish");
    match o.error.take() {
        Some(e) => Err(e),
        None => Ok(o),
    }
}

pub fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

/// Every capture in fixtures/ and, where present, the shared corpus.
pub fn all_captures() -> Vec<PathBuf> {
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")];
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/captures");
    if corpus.is_dir() {
        dirs.push(corpus);
    }
    let mut files: Vec<PathBuf> = dirs
        .iter()
        .flat_map(|d| std::fs::read_dir(d).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.to_string_lossy();
            name.ends_with(".pcap") || name.ends_with(".pcapng") || name.ends_with(".cap")
        })
        .collect();
    files.sort();
    files
}
