//! Regression tests for hostile input: hand-made captures that once made netlens panic,
//! hang or misbehave, each run through the whole pipeline with every view, `--packets`,
//! and both renderers. Findings of the fuzz targets (fuzz/) are replayed here too: every
//! file under tests/regressions/ goes through the same pipeline on the stable toolchain.

mod support;

use std::io::Cursor;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;

use netlens::capture::file::{CaptureFile, DEFAULT_MAX_RECORD};
use support::ng;

/// Runs `bytes` through the whole pipeline (every view and `--packets`), once with the
/// JSON report and once with the tables and per-frame lines. Returns the JSON report.
fn pipeline(name: &str, bytes: &[u8]) -> Option<serde_json::Value> {
    let mut json = None;
    for to_json in [true, false] {
        let file = match CaptureFile::from_reader(
            Box::new(Cursor::new(bytes.to_vec())),
            name.into(),
            0,
            DEFAULT_MAX_RECORD,
        ) {
            Ok(f) => f,
            Err(_) => return None,
        };
        let mut config = netlens::Config::for_files(vec![PathBuf::from(name)]);
        config.views = netlens::Views::all();
        config.views.packets = true;
        config.quiet = true;
        if to_json {
            config.json = Some(PathBuf::from("-"));
        }
        let mut out = Vec::new();
        let mut err = Vec::new();
        let r = panic::catch_unwind(AssertUnwindSafe(|| {
            netlens::pipeline::run_captures(&config, vec![file], &mut out, &mut err)
        }));
        match r {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("{name}: unexpected error {e}"),
            Err(_) => panic!("{name}: PANIC (see the message above)"),
        }
        if to_json {
            json = Some(serde_json::from_slice(&out).expect("JSON output parses"));
        }
    }
    json
}

/// Replays a finding of the `pipeline` fuzz target exactly as the target ran it
/// (tests/support/fuzz_input.rs: the framing its last bytes pick, `--extract` into a
/// temporary directory, the 64 KiB record cap), with the JSON report and with the tables.
fn replay_pipeline(name: &str, bytes: &[u8]) {
    for to_json in [true, false] {
        let Ok(file) = CaptureFile::from_reader(
            Box::new(Cursor::new(bytes.to_vec())),
            name.into(),
            0,
            1 << 16,
        ) else {
            return;
        };
        let dir = tempfile::tempdir().expect("temporary directory");
        let config = support::fuzz_input::config(bytes, &dir.path().join("x"), to_json);
        let mut out = Vec::new();
        let mut err = Vec::new();
        let r = panic::catch_unwind(AssertUnwindSafe(|| {
            netlens::pipeline::run_captures(&config, vec![file], &mut out, &mut err)
        }));
        assert!(r.is_ok(), "{name}: PANIC (see the message above)");
        if to_json && !out.is_empty() {
            serde_json::from_slice::<serde_json::Value>(&out)
                .unwrap_or_else(|e| panic!("{name}: JSON output does not parse: {e}"));
        }
        for e in std::fs::read_dir(dir.path()).expect("temporary directory") {
            let n = e.expect("entry").file_name();
            assert_eq!(n, "x", "{name}: --extract wrote outside its directory");
        }
    }
}

/// Timestamps at the ends of the range a pcapng can express (a 64-bit tick count in
/// seconds, an offset of i64::MIN seconds): the per-frame view subtracted them and the
/// stats took their difference, which overflowed (a panic in debug builds, garbage in
/// release). The reader now clamps timestamps to ±(2^62 - 1) ns so any difference fits.
#[test]
fn extreme_pcapng_timestamps_do_not_overflow() {
    let frame = [0u8; 14];
    for offset in [0, i64::MAX, i64::MIN] {
        let mut v = ng::shb();
        // if_tsresol 0: one tick per second; if_tsoffset: seconds added to every tick.
        let off = offset.to_le_bytes();
        v.extend(ng::idb_with_options(1, 0, &[(9, &[0]), (14, &off)]));
        v.extend(ng::epb(0, 0, &frame));
        v.extend(ng::epb(0, u64::MAX, &frame));
        v.extend(ng::epb(0, 1 << 63, &frame));
        v.extend(ng::epb(0, 1, &frame));
        let json = pipeline("extreme-ts.pcapng", &v).expect("reads");
        let packets = json["packets"].as_array().expect("packets");
        assert_eq!(packets.len(), 4);
        let ts: Vec<i64> = packets
            .iter()
            .map(|p| p["ts_ns"].as_i64().expect("ts_ns"))
            .collect();
        for t in &ts {
            assert!(t.unsigned_abs() < 1 << 62, "{t} outside ±(2^62 - 1)");
        }
        // Order is kept where the clamp allows it: tick 0 is not after tick u64::MAX.
        assert!(ts[0] <= ts[1]);
        assert!(json["stats"]["duration_s"].as_f64().expect("duration") >= 0.0);
    }
}

/// Every saved finding under tests/regressions/: `dissect-*` files in the dissect target's
/// format, everything else as a capture through the whole pipeline, also with the
/// `pipeline` target's framing and `--extract` options.
#[test]
fn saved_findings_replay_without_panic() {
    let dir = support::root().join("tests/regressions");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut n = 0;
    for e in entries.flatten() {
        let path = e.path();
        let name = support::file_name(&path);
        if name.ends_with(".md") {
            continue;
        }
        let bytes = std::fs::read(&path).expect("readable");
        let start = std::time::Instant::now();
        if name.starts_with("dissect-") {
            support::fuzz_dissect::run(&bytes).expect("renders");
        } else {
            // Hand-made captures and older findings as the fixed pipeline run, then as
            // the fuzz target runs it now (framing kinds, --extract).
            pipeline(&name, &bytes);
            replay_pipeline(&name, &bytes);
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "{name} took {:?}",
            start.elapsed()
        );
        n += 1;
    }
    eprintln!("replayed {n} saved findings");
}

/// A file that fails mid-read (a vanished network share, an I/O error): the frames before
/// are kept and the read error is a damage warning with the offset, not a failed run.
#[test]
fn read_error_mid_file_keeps_earlier_frames() {
    struct Failing {
        data: Vec<u8>,
        pos: usize,
        fail_at: usize,
    }
    impl std::io::Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.pos >= self.fail_at {
                return Err(std::io::Error::other("device went away"));
            }
            let n = buf.len().min(self.fail_at - self.pos).min(100);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }
    let data = std::fs::read(support::fixture("tcp_graceful.pcap")).expect("fixture");
    let recs = support::pcap_records(&data);
    let fail_at = recs[4].start as usize + 30;
    let file = CaptureFile::from_reader(
        Box::new(Failing {
            data,
            pos: 0,
            fail_at,
        }),
        "vanishing.pcap".into(),
        0,
        DEFAULT_MAX_RECORD,
    )
    .expect("header reads");
    let mut config = netlens::Config::for_files(vec![PathBuf::from("vanishing.pcap")]);
    config.views.packets = true;
    config.json = Some(PathBuf::from("-"));
    let mut out = Vec::new();
    let mut err = Vec::new();
    let (report, _) = netlens::pipeline::run_captures(&config, vec![file], &mut out, &mut err)
        .expect("a read error is damage, not a failed run");
    assert_eq!(report.stats.packets, 4);
    let w = &report.warnings[0];
    assert_eq!(w.kind, "damaged-file");
    assert_eq!(w.offset, Some(recs[4].start));
    assert!(w.message.contains("device went away"), "{}", w.message);
    assert!(w.message.contains("vanishing.pcap"), "{}", w.message);
}

/// A pcapng of nothing but interface blocks: every interface is kept for the report, so
/// without a cap memory grew with the file's length. Past `MAX_INTERFACES` the file is
/// damaged from that block on; the frames before are kept.
#[test]
fn interface_flood_is_capped() {
    use netlens::capture::file::MAX_INTERFACES;
    let frame = [0u8; 14];
    let mut v = ng::shb();
    v.extend(ng::idb(1, 0));
    v.extend(ng::epb(0, 1, &frame));
    let idb = ng::idb(1, 0);
    let first_idb_at = v.len();
    for _ in 1..MAX_INTERFACES + 10 {
        v.extend_from_slice(&idb);
    }
    v.extend(ng::epb(0, 2, &frame));
    let start = std::time::Instant::now();
    let json = pipeline("idb-flood.pcapng", &v).expect("reads");
    assert_eq!(json["stats"]["packets"], 1);
    let w = &json["warnings"][0];
    assert_eq!(w["kind"], "damaged-file");
    // The block after the last interface allowed: MAX_INTERFACES - 1 more after the first.
    let expect = first_idb_at + (MAX_INTERFACES - 1) * idb.len();
    assert_eq!(w["offset"], expect as u64);
    assert!(
        w["message"].as_str().unwrap_or("").contains("interfaces"),
        "{w}"
    );
    assert_eq!(
        json["source"]["interfaces"].as_array().map(Vec::len),
        Some(MAX_INTERFACES)
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(30));
}

/// The fuzz target's options on the framing fixtures: each fixture with three bytes
/// appended that pick each framing kind in turn (as the whole rule and as a port rule).
/// The appended bytes are a cut record to the reader, which warns and keeps every frame.
#[test]
fn every_fuzz_framing_choice_runs_on_the_framing_fixtures() {
    let mut runs = 0;
    for path in support::fixtures() {
        let name = support::file_name(&path);
        if !name.starts_with("frame_") {
            continue;
        }
        let bytes = std::fs::read(&path).expect("fixture");
        for sel in (0u8..13).chain(0x80..0x80 + 13) {
            let mut b = bytes.clone();
            b.extend_from_slice(&[4, 0x0a, sel]);
            replay_pipeline(&format!("{name}+{sel}"), &b);
            runs += 1;
        }
    }
    assert!(runs >= 26 * 4, "framing fixtures missing: {runs} runs");
}
