//! The run loop: source → dissect → every enabled analyzer → finish → report.
//!
//! One pass, frame order, bounded memory: frames are borrowed from the reader's buffer,
//! dissected without allocation, shown to each analyzer, and (for `--packets`) written out
//! at once. Damage in an input ends that input with a warning; the run goes on with the
//! next input and the report covers every frame read.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::analyze::stats::StatsAnalyzer;
use crate::analyze::{Analyzer, Ctx};
use crate::capture::file::CaptureFile;
use crate::capture::{linktype, InterfaceInfo, Next};
use crate::config::{Config, Input};
use crate::dissect::{DissectOptions, Dissector};
use crate::error::{Error, Result};
use crate::report::{self, json::Spill, InterfaceEntry, Report, Source, Warning};

/// What a finished run tells its caller beyond what it wrote.
#[derive(Debug, Default)]
pub struct Outcome {
    pub packets: u64,
    pub warnings: Vec<Warning>,
}

fn output_error(e: io::Error) -> Error {
    Error::Output(e)
}

/// Runs `config`, writing tables and per-frame lines to `out` and warnings to `err`.
///
/// Returns the report as built (the JSON document, if asked for, is already written).
pub fn run(config: &Config, out: &mut dyn Write, err: &mut dyn Write) -> Result<(Report, Outcome)> {
    let Input::Files(paths) = &config.input;
    if paths.is_empty() {
        return Err(Error::Usage(
            "no input file given; usage: netlens read FILE...".into(),
        ));
    }
    if paths.len() > usize::from(u16::MAX) {
        return Err(Error::Usage("too many input files (at most 65535)".into()));
    }
    // Open everything first: a typo in the third path fails before any output.
    let mut files = Vec::with_capacity(paths.len());
    for (i, p) in paths.iter().enumerate() {
        files.push(CaptureFile::open(p, i as u16, config.max_record)?);
    }
    run_captures(config, files, out, err)
}

/// Runs `config` over captures already opened, one per path of `config.input` (the paths
/// only name the inputs in the report). Tests and fuzz targets use this to read bytes from
/// memory ([`CaptureFile::from_reader`]) through the whole pipeline without temporary files.
pub fn run_captures(
    config: &Config,
    mut files: Vec<CaptureFile>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(Report, Outcome)> {
    let Input::Files(paths) = &config.input;
    let views = config.views.resolved();
    let json_stdout = config.json_to_stdout();
    let show_tables = !json_stdout;

    // The JSON file is created before reading so a bad path fails fast.
    let mut json_file = match &config.json {
        Some(p) if !json_stdout => Some(create_output(p)?),
        _ => None,
    };
    let mut packet_spill = if config.json.is_some() && views.packets {
        Some(Spill::new().map_err(output_error)?)
    } else {
        None
    };

    let mut dissector = Dissector::new(DissectOptions {
        verify_checksums: config.checksums || views.packets,
        ..DissectOptions::default()
    });
    let mut analyzers: Vec<Box<dyn Analyzer>> = vec![Box::<StatsAnalyzer>::default()];
    let mut ctx = Ctx::default();

    let mut warnings = Vec::new();
    let mut interfaces: Vec<InterfaceInfo> = Vec::new();
    let mut formats = Vec::new();
    let mut skipped_blocks = 0;
    let mut records_without_packet = 0;
    let mut frame: u64 = 1;
    let mut next_port = 0u32;
    let mut t0: Option<i64> = None;
    let limit = config.count.unwrap_or(u64::MAX);
    let packet_lines = views.packets && show_tables;

    'files: for file in files.iter_mut() {
        formats.push(file.format().name().to_string());
        file.begin(next_port);
        loop {
            if frame > limit {
                break 'files;
            }
            match file.next_packet(frame) {
                Next::Packet(raw) => {
                    let pkt = dissector.dissect(&raw);
                    ctx.reset();
                    for a in analyzers.iter_mut() {
                        a.on_packet(&pkt, &mut ctx);
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
                    frame += 1;
                }
                Next::Record { .. } => {
                    records_without_packet += 1;
                    frame += 1;
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
                    if !config.quiet {
                        let _ = writeln!(err, "warning: {}", w.message);
                    }
                    warnings.push(w);
                    break;
                }
            }
        }
        skipped_blocks += file.skipped_blocks;
        next_port = file.next_port();
        interfaces.extend(file.interfaces.iter().cloned());
    }

    let mut report = Report {
        schema: report::SCHEMA.into(),
        netlens: env!("CARGO_PKG_VERSION").into(),
        source: source(paths, &formats, &interfaces),
        ..Report::default()
    };
    for a in analyzers.iter_mut() {
        a.finish(&mut report);
    }
    report.stats.ipv4_defrag = dissector.defrag_stats();
    report.stats.skipped_blocks = skipped_blocks;
    report.stats.records_without_packet = records_without_packet;
    report.stats.checksums.verified = config.checksums || views.packets;
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
            if !config.quiet {
                let _ = writeln!(err, "warning: {}", w.message);
            }
            warnings.push(w);
        }
    }
    report.warnings = warnings.clone();

    if show_tables && (views.summary || !views.packets) {
        report::table::write_summary(out, &report, config.limit).map_err(output_error)?;
    }
    out.flush().map_err(output_error)?;

    let spills: Vec<(&'static str, Spill)> =
        packet_spill.map(|s| ("packets", s)).into_iter().collect();
    if json_stdout {
        report::json::write(out, &report, spills).map_err(output_error)?;
    } else if let Some(f) = json_file.as_mut() {
        let path = config.json.clone().unwrap_or_default();
        report::json::write(f, &report, spills).map_err(|source| Error::Write { path, source })?;
    }
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

fn source(paths: &[PathBuf], formats: &[String], interfaces: &[InterfaceInfo]) -> Source {
    let mut link_types: Vec<String> = Vec::new();
    for i in interfaces {
        if !link_types.contains(&i.link_type_name) {
            link_types.push(i.link_type_name.clone());
        }
    }
    let format = match formats.first() {
        Some(f) if formats.iter().all(|x| x == f) => f.clone(),
        Some(_) => "mixed".into(),
        None => "pcap".into(),
    };
    Source {
        kind: "file".into(),
        path: paths.iter().map(|p| p.display().to_string()).collect(),
        interface: None,
        format,
        formats: formats.to_vec(),
        link_types,
        interfaces: interfaces.iter().map(InterfaceEntry::from).collect(),
    }
}
