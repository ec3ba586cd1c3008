//! The run loop: source → dissect → every enabled analyzer → finish → report.
//!
//! One pass, frame order, bounded memory: frames are borrowed from the reader's buffer,
//! dissected without allocation, shown to each analyzer, and (for `--packets`) written out
//! at once. Damage in an input ends that input with a warning; the run goes on with the
//! next input and the report covers every frame read.
//!
//! At the end the terminal tables are written, then the HTML and JSON reports; the
//! streams view, the one table that costs much to build, is rendered on a thread of its
//! own while the reports are written (when its text is bounded by `--limit`) and written
//! after them.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use crate::analyze::arp::ArpAnalyzer;
use crate::analyze::conns::ConnTracker;
use crate::analyze::mac_table::MacTableAnalyzer;
use crate::analyze::stats::StatsAnalyzer;
use crate::analyze::streams::thread::StreamThread;
use crate::analyze::streams::{StreamAnalyzer, StreamSink};
use crate::analyze::{Analyzer, Ctx};
use crate::capture::file::CaptureFile;
use crate::capture::filter::{Filter, FilterError};
use crate::capture::live::LiveOptions;
use crate::capture::source::{FileSet, Source};
use crate::capture::writer::PcapOut;
use crate::capture::{linktype, InterfaceInfo, Next};
use crate::config::{Config, Input};
use crate::dissect::{DissectOptions, Dissector};
use crate::error::{Error, Result};
use crate::report::live::LiveDisplay;
use crate::report::progress::Progress;
use crate::report::sinks::Sinks;
use crate::report::{self, json::Spill, InterfaceEntry, Report, Source as SourceEntry, Warning};

/// What a finished run tells its caller beyond what it wrote.
#[derive(Debug, Default)]
pub struct Outcome {
    pub packets: u64,
    pub warnings: Vec<Warning>,
}

/// Largest `--limit` at which the streams view is rendered into memory beside the report
/// writer (its text grows with the square of the limit: about 150 bytes a row).
const VIEW_ASIDE_LIMIT: usize = 100;

fn output_error(e: io::Error) -> Error {
    Error::Output(e)
}

/// Runs `config`, writing tables and per-frame lines to `out` and warnings to `err`.
///
/// Returns the report as built (the JSON document, if asked for, is already written).
pub fn run(config: &Config, out: &mut dyn Write, err: &mut dyn Write) -> Result<(Report, Outcome)> {
    let source = match &config.input {
        Input::Files(paths) => {
            if paths.is_empty() {
                return Err(Error::Usage(
                    "no input file given; usage: netlens read FILE...".into(),
                ));
            }
            if paths.len() > usize::from(u16::MAX) {
                return Err(Error::Usage("too many input files (at most 65535)".into()));
            }
            // Opens everything first: a typo in the third path fails before any output.
            Source::open_files(paths, config.max_record)?
        }
        Input::Live(l) => Source::open_live(&LiveOptions {
            interface: l.interface.clone(),
            stop: config.stop.clone(),
            duration: l.duration,
            queue: l.queue,
            promiscuous: l.promiscuous,
        })?,
    };
    run_source(config, source, out, err)
}

/// Runs `config` over captures already opened, one per path of `config.input` (the paths
/// only name the inputs in the report). Tests and fuzz targets use this to read bytes from
/// memory ([`CaptureFile::from_reader`]) through the whole pipeline without temporary files.
pub fn run_captures(
    config: &Config,
    files: Vec<CaptureFile>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(Report, Outcome)> {
    run_source(config, Source::Files(FileSet::from_files(files)), out, err)
}

/// Runs `config` over an open source: the one loop of netlens.
pub fn run_source(
    config: &Config,
    mut source: Source,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(Report, Outcome)> {
    if config.json_to_stdout() && config.ndjson_to_stdout() {
        return Err(Error::Usage(
            "--json - and --ndjson - cannot both write to standard output; give one a file".into(),
        ));
    }
    let mut filter = match &config.filter {
        Some(expr) => {
            let first = source
                .interfaces()
                .first()
                .map_or(linktype::ETHERNET, |i| i.link_type);
            Some(Filter::new(expr, first).map_err(|e| match e {
                FilterError::Invalid(m) => Error::Usage(m),
                FilterError::NoLibpcap(m) => Error::Environment(m),
            })?)
        }
        None => None,
    };
    let mut filtered_out = 0u64;
    let views = config.views.resolved();
    let json_stdout = config.json_to_stdout();
    let show_tables = !json_stdout && !config.ndjson_to_stdout();

    // Output files are created before reading so a bad path fails fast.
    let mut json_file = match &config.json {
        Some(p) if !json_stdout => Some(create_output(p)?),
        _ => None,
    };
    let mut html_file =
        match &config.html {
            Some(p) if p.as_os_str() == "-" => return Err(Error::Usage(
                "--html needs a file path: the page cannot share standard output with the tables"
                    .into(),
            )),
            Some(p) => Some(create_output(p)?),
            None => None,
        };
    let mut pcap_out = match &config.write {
        Some(p) => Some(PcapOut::create(p, config.force)?),
        None => None,
    };
    let mut sinks = Sinks::create(
        config.ndjson.as_deref(),
        config.zeek_logs.as_deref(),
        config.parquet.as_deref(),
    )?;
    let mut packet_spill = if config.json.is_some() && views.packets {
        Some(Spill::new().map_err(output_error)?)
    } else {
        None
    };

    let mut dissector = Dissector::new(DissectOptions {
        verify_checksums: config.checksums || views.packets,
        defrag: config.defrag.clone(),
    });
    let mut analyzers: Vec<Box<dyn Analyzer>> = vec![Box::<StatsAnalyzer>::default()];
    // The connection tracker runs first: later analyzers read `ctx.conn`.
    let want_streams = views.streams || config.streams.extract.is_some();
    // conn.log, connections.parquet and the HTML page need the tracker whatever the views.
    let html = config.html.is_some();
    if views.summary
        || views.handshakes
        || views.teardowns
        || views.conns
        || want_streams
        || config.zeek_logs.is_some()
        || config.parquet.is_some()
        || html
    {
        let mut tracker = ConnTracker::new(
            &config.conns,
            config.limit,
            config.json.is_some() || html,
            show_tables,
        )
        .map_err(output_error)?;
        if let Input::Files(paths) = &config.input {
            tracker.name_files(paths.iter().map(|p| p.display().to_string()).collect());
        }
        analyzers.insert(0, Box::new(tracker));
    }
    // The MAC table may run on the stream thread (below); `mac_at` keeps its place in
    // the order analyzers finish in (which orders their warnings).
    let mut mac = (views.mac_table || html).then(|| MacTableAnalyzer::new(&config.l2));
    let mac_at = analyzers.len();
    if views.arp || html {
        analyzers.push(Box::new(ArpAnalyzer::new(&config.l2)));
    }
    let mut ctx = Ctx {
        want_events: sinks.active(),
        ..Ctx::default()
    };
    // A pipe or an interface may pause for long: its events go out at once.
    sinks.set_eager(match &config.input {
        Input::Live(_) => true,
        Input::Files(paths) => paths
            .iter()
            .any(|p| std::fs::metadata(p).map_or(true, |m| !m.is_file())),
    });
    // Streams run after every other analyzer (the connection tracker first assigns
    // `ctx.conn`); kept typed so the pipeline can take its spilled entries at the end.
    let mut streams = stream_analyzer(config, views.streams || html)?;
    sinks.expect_streams(streams.is_some());
    // Events are written per packet in analyzer order, so they keep the streams inline.
    // The MAC table goes with it: it reads neither transport nor `ctx`, and the pipeline
    // thread is the busier one.
    // So does the JSON of finished connections (the tracker lends its spill).
    let mut lent_by = None;
    // A stream thread runs and carries more than the reassembly (see the mapping below).
    let mut stream_thread_loaded = false;
    let mut stream_thread = match streams.take() {
        Some(s) if config.threads > 1 && !ctx.want_events => {
            let mut spill = None;
            for (i, a) in analyzers.iter_mut().enumerate() {
                if let Some(sp) = a.lend_spill() {
                    spill = Some(sp);
                    lent_by = Some(i);
                    break;
                }
            }
            stream_thread_loaded = mac.is_some() || spill.is_some();
            Some(StreamThread::spawn(s, mac.take(), spill).map_err(output_error)?)
        }
        s => {
            streams = s;
            None
        }
    };
    if let Some(m) = mac.take() {
        analyzers.insert(mac_at, Box::new(m));
    }
    if let Source::Files(f) = &mut source {
        // A mapped file saves the reader thread its copy of every byte but costs the
        // pipeline thread more per byte: it reads the bytes from memory, not from the
        // cache the copy left them in (see `capture::ahead`). So map only when the
        // analysis threads keep every core busy, so that the copy would take time from
        // them: the pipeline thread, and the stream thread when it carries the MAC table
        // or the connections' JSON too. A stream thread that only reassembles waits for
        // the pipeline thread most of the time, and the copy runs in that slack. (1 GB,
        // 2 cores, perf stat -r 6, twice each: `--all --json` 0.72 to 0.73 s mapped,
        // 0.85 to 0.86 s read; `--streams` 0.54 to 0.55 s mapped, 0.50 to 0.52 s read.)
        let busy = 1 + usize::from(stream_thread_loaded);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        f.map_files(config.mmap && busy >= cores);
    }
    let mut live = LiveDisplay::new(config.status_line && !config.quiet);
    let mut progress = match &source {
        Source::Files(f) if config.progress && !config.quiet && !json_stdout => {
            Progress::new(true, f.progress().1)
        }
        _ => Progress::new(false, None),
    };

    let mut warnings = Vec::new();
    let mut records_without_packet = 0;
    let mut frame: u64 = 1;
    let mut t0: Option<i64> = None;
    let limit = config.count.unwrap_or(u64::MAX);
    let packet_lines = views.packets && show_tables;
    let events = config.events && show_tables;

    while frame <= limit {
        match source.next_packet(frame) {
            Next::Packet(raw) => {
                if let Some(f) = filter.as_mut() {
                    if !f.matches(&raw) {
                        // Frame numbers stay those of the unfiltered input, as in Wireshark.
                        filtered_out += 1;
                        frame += 1;
                        continue;
                    }
                }
                if let Some(w) = pcap_out.as_mut() {
                    w.write(&raw)?;
                }
                let pkt = dissector.dissect(&raw);
                ctx.reset();
                if ctx.want_events {
                    sinks.saw_frame(pkt.ts_ns);
                }
                for a in analyzers.iter_mut() {
                    a.on_packet(&pkt, &mut ctx);
                }
                if let Some(s) = streams.as_mut() {
                    s.on_packet(&pkt, &mut ctx);
                }
                if let Some(t) = stream_thread.as_mut() {
                    t.on_packet(&pkt, &mut ctx, raw.block);
                }
                if ctx.want_events {
                    sinks.packet(&pkt, &ctx)?;
                    sinks.write(&mut ctx.events, out)?;
                }
                if packet_lines {
                    let start = *t0.get_or_insert(pkt.ts_ns);
                    report::packets::write_line(out, &pkt, start).map_err(output_error)?;
                }
                if let Some(spill) = packet_spill.as_mut() {
                    spill
                        .push(&report::packets::entry(&pkt))
                        .map_err(output_error)?;
                }
                if events {
                    report::events::write_ctx_events(out, &pkt, &ctx).map_err(output_error)?;
                }
                live.on_packet(&pkt, &ctx, err);
                frame += 1;
                if frame.is_multiple_of(16_384) {
                    if let Source::Files(f) = &source {
                        progress.update(f.progress().0, frame - 1);
                    }
                }
            }
            Next::Record { .. } => {
                records_without_packet += 1;
                frame += 1;
            }
            Next::Idle => {
                live.tick(err);
                if ctx.want_events {
                    sinks.flush(out)?;
                }
                if events {
                    out.flush().map_err(output_error)?;
                }
            }
            Next::End => break,
            Next::Damaged(d) => {
                let w = Warning {
                    kind: "damaged-file".into(),
                    message: d.to_string(),
                    path: Some(d.path.clone()),
                    offset: Some(d.offset),
                    frame: Some(d.after_frame),
                };
                warn(&mut warnings, w, config.quiet, err);
            }
        }
    }
    live.clear(err);
    progress.finish();
    // The stream thread finalizes its open directions while this one finishes the
    // analyses before the MAC table (the connection tracker's own end of input).
    if let Some(t) = stream_thread.as_mut() {
        t.close();
    }

    let interfaces = source.interfaces();
    let mut report = Report {
        schema: report::SCHEMA.into(),
        netlens: env!("CARGO_PKG_VERSION").into(),
        source: describe_source(config, &source, &interfaces),
        ..Report::default()
    };
    if ctx.want_events {
        sinks.input_ended();
        // Open state is finalized in bounded batches so its events stream out.
        let all = analyzers
            .iter_mut()
            .map(|a| &mut **a)
            .chain(streams.as_mut().map(|s| s as &mut dyn Analyzer));
        for a in all {
            loop {
                ctx.reset();
                let more = a.end_events(&mut ctx);
                sinks.write(&mut ctx.events, out)?;
                if !more {
                    break;
                }
            }
        }
    }
    for a in analyzers.iter_mut().take(mac_at) {
        a.finish(&mut report);
    }
    if let Some(t) = stream_thread.take() {
        let joined = t.join();
        streams = Some(joined.streams);
        if let (Some(i), Some(spill)) = (lent_by, joined.conn_spill) {
            analyzers[i].return_spill(spill, &mut report);
        }
        if let Some(m) = joined.mac {
            analyzers.insert(mac_at, Box::new(m));
        }
    }
    for a in analyzers.iter_mut().skip(mac_at) {
        a.finish(&mut report);
    }
    let mut streams_out = match streams.as_mut() {
        Some(s) => {
            s.finish(&mut report);
            s.take_output()
        }
        None => None,
    };
    if let Some(o) = streams_out.as_mut() {
        if let Some(e) = o.error.take() {
            return Err(match &config.streams.extract {
                Some(dir) => Error::Write {
                    path: dir.clone(),
                    source: e,
                },
                None => Error::Output(e),
            });
        }
        for w in o.warnings.drain(..) {
            warn(&mut warnings, w, config.quiet, err);
        }
    }
    report.stats.ipv4_defrag = dissector.defrag_stats();
    if report.stats.ipv4_defrag.dropped_over_limit > 0 {
        // With the analyzers' cap warnings, which are said on stderr below.
        let l = &config.defrag;
        report.warnings.push(Warning {
            kind: "ipv4-defrag-cap".into(),
            message: format!(
                "{} IPv4 fragment(s) were dropped by the reassembly caps ({} datagrams pending, {} fragments per datagram, {} bytes; --frag-datagrams, --frag-per-datagram, --frag-memory)",
                report.stats.ipv4_defrag.dropped_over_limit, l.max_datagrams, l.max_fragments, l.max_bytes
            ),
            path: None,
            offset: None,
            frame: None,
        });
    }
    if let Source::Files(f) = &source {
        report.stats.skipped_blocks = f.skipped_blocks;
    }
    report.stats.records_without_packet = records_without_packet;
    report.stats.filtered_out = filtered_out;
    if let Some(f) = &filter {
        for (lt, msg) in &f.failed {
            let w = Warning {
                kind: "filter-not-compiled".into(),
                message: format!(
                    "the filter does not compile for link type {} ({msg}); its frames were left out",
                    linktype::name(*lt)
                ),
                path: None,
                offset: None,
                frame: None,
            };
            warn(&mut warnings, w, config.quiet, err);
        }
    }
    report.stats.checksums.verified = config.checksums || views.packets;
    report.stats.live = source.live_stats();
    if let Some(ls) = report.stats.live {
        if ls.dropped_queue_full > 0 {
            let w = Warning {
                kind: "live-frames-dropped".into(),
                message: format!(
                    "{} captured frame(s) were dropped because analysis fell behind (queue full)",
                    ls.dropped_queue_full
                ),
                path: None,
                offset: None,
                frame: None,
            };
            warn(&mut warnings, w, config.quiet, err);
        }
    }
    for (name, n) in &report.stats.by_link_type {
        let supported = interfaces
            .iter()
            .any(|i| linktype::name(i.link_type) == *name && linktype::supported(i.link_type));
        if !supported {
            let w = Warning {
                kind: "unsupported-link-type".into(),
                message: format!("{n} frame(s) of link type {name} were counted but not dissected"),
                path: None,
                offset: None,
                frame: None,
            };
            warn(&mut warnings, w, config.quiet, err);
        }
    }
    if let Some(w) = pcap_out.take() {
        let default_lt = interfaces
            .first()
            .map_or(linktype::ETHERNET, |i| i.link_type);
        let skipped = w.skipped_other_link;
        w.finish(default_lt)?;
        if skipped > 0 {
            let w = Warning {
                kind: "write-skipped-frames".into(),
                message: format!("{skipped} frame(s) of a second link type were not written to the pcap (a pcap holds one link type)"),
                path: config.write.as_ref().map(|p| p.display().to_string()),
                offset: None,
                frame: None,
            };
            warn(&mut warnings, w, config.quiet, err);
        }
    }
    // Analyzers' own warnings (caps hit, spill failures) follow the reader's.
    let analyzer_warnings = std::mem::take(&mut report.warnings);
    if !config.quiet {
        for w in &analyzer_warnings {
            let _ = writeln!(err, "warning: {}", w.message);
        }
    }
    warnings.extend(analyzer_warnings);
    report.warnings = warnings.clone();
    sinks.finish(&report, out)?;

    if show_tables && (views.summary || !views.packets) {
        report::table::write_summary(out, &report, config.limit).map_err(output_error)?;
    }
    if show_tables {
        report::conns_view::write_views(out, &report, &views, config).map_err(output_error)?;
    }
    if show_tables && views.mac_table {
        report::l2_view::write_mac_table(out, &report, config.limit).map_err(output_error)?;
    }
    if show_tables && views.arp {
        // In the default set (no view asked for) the summary shows the ARP table only.
        let full = !config.views.is_empty();
        report::l2_view::write_arp(out, &report, config.limit, full).map_err(output_error)?;
    }
    let vo = report::streams_view::ViewOptions {
        limit: config.limit,
        conn: config.conns.conn,
        color: config.color,
    };
    // The streams view decodes and lays out tables, the JSON writer copies entries: when
    // both run they run at once, the view on a thread of its own into memory. Only when
    // that text is bounded by `--limit` (the first `limit` directions, `limit` rows each);
    // otherwise the view is written first, straight to `out`.
    let mut view_readers = None;
    if let Some(o) = streams_out
        .as_mut()
        .filter(|_| show_tables && views.streams)
    {
        let readers = (
            o.streams.reader().map_err(output_error)?,
            o.udp_flows.reader().map_err(output_error)?,
        );
        let concurrent = (config.json.is_some() || html)
            && vo.conn.is_none()
            && (1..=VIEW_ASIDE_LIMIT).contains(&vo.limit);
        if concurrent {
            view_readers = Some(readers);
        } else {
            report::streams_view::write(out, &readers.0, &readers.1, vo).map_err(output_error)?;
        }
    }
    out.flush().map_err(output_error)?;

    let mut spills: Vec<(&'static str, Spill)> =
        packet_spill.map(|s| ("packets", s)).into_iter().collect();
    for a in analyzers.iter_mut() {
        spills.extend(a.take_spills());
    }
    if let Some(o) = streams_out.filter(|_| config.json.is_some() || html) {
        spills.push(("streams", o.streams.into_spill().map_err(output_error)?));
        spills.push(("udp_flows", o.udp_flows.into_spill().map_err(output_error)?));
    }
    let (written, view) = std::thread::scope(|scope| {
        let view = view_readers.map(|(tcp, udp)| {
            scope.spawn(move || {
                let mut text = Vec::new();
                report::streams_view::write(&mut text, &tcp, &udp, vo).map(|()| text)
            })
        });
        let written = (|| -> Result<()> {
            if let Some(f) = html_file.as_mut() {
                let path = config.html.clone().unwrap_or_default();
                report::html::write(f, &report, &mut spills, &config.html_options)
                    .map_err(|source| Error::Write { path, source })?;
            }
            if json_stdout {
                report::json::write(out, &report, spills).map_err(output_error)?;
            } else if let Some(f) = json_file.as_mut() {
                let path = config.json.clone().unwrap_or_default();
                report::json::write_file(f, &report, spills)
                    .map_err(|source| Error::Write { path, source })?;
            }
            Ok(())
        })();
        (written, view.map(|h| h.join()))
    });
    // The view is shown even when writing a report failed, as it was when it came first.
    match view {
        Some(Ok(text)) => {
            out.write_all(&text.map_err(output_error)?)
                .and_then(|()| out.flush())
                .map_err(output_error)?;
        }
        Some(Err(panic)) => std::panic::resume_unwind(panic),
        None => {}
    }
    written?;
    Ok((
        report,
        Outcome {
            packets: frame - 1,
            warnings,
        },
    ))
}

fn create_output(p: &Path) -> Result<BufWriter<File>> {
    if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| Error::Write {
            path: p.to_path_buf(),
            source,
        })?;
    }
    let f = File::create(p).map_err(|source| Error::Write {
        path: p.to_path_buf(),
        source,
    })?;
    Ok(BufWriter::with_capacity(1 << 16, f))
}

fn describe_source(config: &Config, source: &Source, interfaces: &[InterfaceInfo]) -> SourceEntry {
    let mut link_types: Vec<String> = Vec::new();
    for i in interfaces {
        if !link_types.contains(&i.link_type_name) {
            link_types.push(i.link_type_name.clone());
        }
    }
    let (kind, path, interface, formats) = match (&config.input, source) {
        (Input::Files(paths), Source::Files(f)) => (
            "file",
            paths.iter().map(|p| p.display().to_string()).collect(),
            None,
            f.formats
                .iter()
                .map(|f| f.name().to_string())
                .collect::<Vec<_>>(),
        ),
        (Input::Live(l), _) => (
            "live",
            Vec::new(),
            Some(l.interface.clone()),
            vec!["live".to_string()],
        ),
        _ => ("file", Vec::new(), None, Vec::new()),
    };
    let format = match formats.first() {
        Some(f) if formats.iter().all(|x| x == f) => f.clone(),
        Some(_) => "mixed".into(),
        None => "pcap".into(),
    };
    SourceEntry {
        kind: kind.into(),
        path,
        interface,
        format,
        formats,
        link_types,
        interfaces: interfaces.iter().map(InterfaceEntry::from).collect(),
    }
}

/// Records a warning for the report and says it on stderr, unless `--quiet`.
fn warn(warnings: &mut Vec<Warning>, w: Warning, quiet: bool, err: &mut dyn Write) {
    if !quiet {
        let _ = writeln!(err, "warning: {}", w.message);
    }
    warnings.push(w);
}

/// The streams analysis when `--streams` (or `--extract`) asks for it, with its extract
/// sink.
fn stream_analyzer(config: &Config, view: bool) -> Result<Option<StreamAnalyzer>> {
    let o = &config.streams;
    if !view && o.extract.is_none() {
        return Ok(None);
    }
    let sink: Option<Box<dyn StreamSink>> = match &o.extract {
        Some(dir) => Some(Box::new(
            report::extract::Extractor::new(dir, o.extract_messages, o.force).map_err(
                |source| Error::Write {
                    path: dir.clone(),
                    source,
                },
            )?,
        )),
        None => None,
    };
    let mut o = o.clone();
    // The terminal view alone reads the entries: it details the first `--limit` stream
    // directions (all of them with --limit 0 or --conn). JSON and the page need them all.
    if config.json.is_none() && config.html.is_none() && config.conns.conn.is_none() {
        o.lists_for_first = config.limit;
    }
    StreamAnalyzer::new(o, sink).map(Some).map_err(output_error)
}
