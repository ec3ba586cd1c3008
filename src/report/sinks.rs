//! The event sinks of a run: `--ndjson` lines, `--zeek-logs` rows and `--parquet` tables
//! (cargo feature `parquet`), fed by the events analyzers push into
//! [`crate::analyze::Ctx::events`] as they complete (and, for the Parquet packets table,
//! by every frame).
//!
//! The pipeline hands each packet's events over right after the analyzers saw it (and the
//! end-of-input events in bounded batches), so what a sink holds is one buffer per output
//! file, never the run's history: `netlens live --ndjson -` runs indefinitely in bounded
//! memory. With no sink active, the analyzers are told not to build events at all
//! ([`Sinks::active`] sets `Ctx::want_events`), so the default run pays nothing.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::ndjson::{Event, NdjsonWriter, SummaryEvent, FLUSH_EVERY};
use super::zeek::ZeekLogs;
use super::Report;
use crate::error::{Error, Result};

/// Where the NDJSON goes, for error messages.
enum NdjsonDest {
    Stdout,
    File(PathBuf),
}

/// The active event outputs.
pub struct Sinks {
    ndjson: Option<(NdjsonWriter, NdjsonDest)>,
    zeek: Option<ZeekLogs>,
    #[cfg(feature = "parquet")]
    parquet: Option<super::parquet::ParquetOut>,
    /// Flush after every packet that completed events (input from a pipe or an interface,
    /// where the next frame may be long in coming), not just every [`FLUSH_EVERY`].
    eager: bool,
    /// Something was written since the last flush, which was at `last_flush`.
    dirty: bool,
    last_flush: Instant,
}

/// Creates a file (and its directory if missing) for buffered writing.
fn create(p: &Path) -> Result<BufWriter<File>> {
    let err = |source| Error::Write {
        path: p.to_path_buf(),
        source,
    };
    if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    Ok(BufWriter::with_capacity(
        1 << 16,
        File::create(p).map_err(err)?,
    ))
}

fn is_stdout(p: &Path) -> bool {
    p == Path::new("-")
}

impl Sinks {
    /// Opens the outputs asked for (a bad path fails before any frame is read).
    /// `ndjson` = `-` writes to the `out` of each call.
    pub fn create(
        ndjson: Option<&Path>,
        zeek_logs: Option<&Path>,
        parquet: Option<&Path>,
    ) -> Result<Sinks> {
        let ndjson = match ndjson {
            Some(p) if is_stdout(p) => Some((NdjsonWriter::new(None), NdjsonDest::Stdout)),
            Some(p) => {
                let f = create(p)?;
                Some((
                    NdjsonWriter::new(Some(f)),
                    NdjsonDest::File(p.to_path_buf()),
                ))
            }
            None => None,
        };
        let zeek = match zeek_logs {
            Some(d) => Some(ZeekLogs::create(d)?),
            None => None,
        };
        #[cfg(feature = "parquet")]
        let parquet = match parquet {
            Some(d) => Some(super::parquet::ParquetOut::create(d)?),
            None => None,
        };
        #[cfg(not(feature = "parquet"))]
        if parquet.is_some() {
            return Err(Error::Usage(
                "--parquet needs a netlens built with the parquet feature: cargo build --release --features parquet".into(),
            ));
        }
        Ok(Sinks {
            ndjson,
            zeek,
            #[cfg(feature = "parquet")]
            parquet,
            eager: false,
            dirty: false,
            last_flush: Instant::now(),
        })
    }

    /// The stream analysis runs (streams.log rows need their connection's uid).
    pub fn expect_streams(&mut self, on: bool) {
        if let Some(z) = self.zeek.as_mut() {
            z.expect_streams(on);
        }
    }

    /// The input ended: the end-of-input event batches follow.
    pub fn input_ended(&mut self) {
        if let Some(z) = self.zeek.as_mut() {
            z.input_ended();
        }
    }

    /// Flush after every packet that completed events (see the field).
    pub fn set_eager(&mut self, eager: bool) {
        self.eager = eager;
    }

    /// True when some output consumes events.
    pub fn active(&self) -> bool {
        #[cfg(feature = "parquet")]
        if self.parquet.is_some() {
            return true;
        }
        self.ndjson.is_some() || self.zeek.is_some()
    }

    /// A frame every analyzer has seen (the Parquet packets table).
    pub fn packet(
        &mut self,
        _p: &crate::dissect::Packet<'_>,
        _ctx: &crate::analyze::Ctx,
    ) -> Result<()> {
        #[cfg(feature = "parquet")]
        if let Some(pq) = self.parquet.as_mut() {
            pq.packet(_p, _ctx)?;
        }
        Ok(())
    }

    fn ndjson_err(dest: &NdjsonDest, e: std::io::Error) -> Error {
        match dest {
            NdjsonDest::Stdout => Error::Output(e),
            NdjsonDest::File(p) => Error::Write {
                path: p.clone(),
                source: e,
            },
        }
    }

    /// A frame was read (its capture time stamps the Zeek logs' `#open`/`#close`).
    pub fn saw_frame(&mut self, ts_ns: i64) {
        if let Some(z) = self.zeek.as_mut() {
            z.saw_frame(ts_ns);
        }
    }

    /// Writes and drains `events`; flushes when written lines have waited longer than
    /// [`FLUSH_EVERY`] (the wall clock paces the output only, never the analysis).
    pub fn write(&mut self, events: &mut Vec<Event>, out: &mut dyn Write) -> Result<()> {
        if events.is_empty() && !self.dirty {
            return Ok(());
        }
        for ev in events.drain(..) {
            self.dirty = true;
            if let Some((w, dest)) = self.ndjson.as_mut() {
                w.write(&ev, out).map_err(|e| Self::ndjson_err(dest, e))?;
            }
            #[cfg(feature = "parquet")]
            if let Some(pq) = self.parquet.as_mut() {
                match &ev {
                    Event::Connection(c) => pq.connection(c)?,
                    Event::Stream(s) => pq.stream(s)?,
                    _ => {}
                }
            }
            if let Some(z) = self.zeek.as_mut() {
                match &ev {
                    Event::Connection(c) => z.connection(c)?,
                    Event::Handshake(h) => z.handshake(h)?,
                    Event::Stream(s) => z.stream(s)?,
                    Event::Arp(_) | Event::UdpFlow(_) | Event::Summary(_) => {}
                }
            }
        }
        if let Some(z) = self.zeek.as_mut() {
            z.batch_done();
        }
        if self.dirty && (self.eager || self.last_flush.elapsed() >= FLUSH_EVERY) {
            self.flush(out)?;
        }
        Ok(())
    }

    /// Pushes buffered lines out (a live capture with nothing to read, a progress tick).
    pub fn flush(&mut self, out: &mut dyn Write) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        self.dirty = false;
        self.last_flush = Instant::now();
        if let Some((w, dest)) = self.ndjson.as_mut() {
            w.flush(out).map_err(|e| Self::ndjson_err(dest, e))?;
        }
        if let Some(z) = self.zeek.as_mut() {
            z.flush()?;
        }
        Ok(())
    }

    /// The run ended: the `summary` line, the Zeek logs' `#close`, everything flushed.
    pub fn finish(&mut self, report: &Report, out: &mut dyn Write) -> Result<()> {
        if let Some((w, dest)) = self.ndjson.as_mut() {
            let summary = Event::Summary(Box::new(SummaryEvent {
                schema: report.schema.clone(),
                netlens: report.netlens.clone(),
                source: report.source.clone(),
                stats: report.stats.clone(),
                connection_stats: report.connection_stats.clone(),
                warnings: report.warnings.clone(),
                events: w.counts().clone(),
            }));
            w.write(&summary, out)
                .and_then(|()| w.flush(out))
                .map_err(|e| Self::ndjson_err(dest, e))?;
        }
        if let Some(z) = self.zeek.as_mut() {
            z.finish()?;
        }
        #[cfg(feature = "parquet")]
        if let Some(pq) = self.parquet.as_mut() {
            pq.finish()?;
        }
        Ok(())
    }
}
