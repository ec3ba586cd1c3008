//! Benchmark (not a test; `#[ignore]`): the streams analysis over a large capture, with the
//! test-side tracker standing in for the connection tracker, writing the JSON sections to
//! nowhere. Run:
//!
//! ```text
//! NETLENS_BENCH_FILE=../bench-data/netlens-1g.pcap \
//!   cargo test --release --test streams_bench -- --ignored --nocapture
//! ```
//!
//! Prints the time, packets, streams and the process's peak resident memory.

mod common;

use std::time::Instant;

use netlens::analyze::streams::{StreamAnalyzer, StreamOptions};

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[test]
#[ignore]
fn bench_streams() {
    let Some(path) = std::env::var_os("NETLENS_BENCH_FILE") else {
        eprintln!("set NETLENS_BENCH_FILE");
        return;
    };
    let framing: Vec<String> = std::env::var("NETLENS_BENCH_FRAMING")
        .map(|s| s.split(',').map(String::from).collect())
        .unwrap_or_default();
    let opts = StreamOptions {
        framing: netlens::analyze::framing::FramingConfig::parse(&framing).unwrap(),
        max_list: std::env::var("NETLENS_BENCH_MAX_LIST")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(StreamOptions::default().max_list),
        ..StreamOptions::default()
    };
    let t = Instant::now();
    let mut a = StreamAnalyzer::new(opts, None).unwrap();
    let Ok(o) = common::drive(std::path::Path::new(&path), &mut a) else {
        panic!("analysis failed");
    };
    let analysed = t.elapsed();
    let n = o.streams.len();
    let spills = vec![
        ("streams", o.streams.into_spill().unwrap()),
        ("udp_flows", o.udp_flows.into_spill().unwrap()),
    ];
    netlens::report::json::write(
        &mut std::io::sink(),
        &netlens::report::Report::default(),
        spills,
    )
    .unwrap();
    eprintln!(
        "streams bench: {} stream directions; analysis {:.2} s, with JSON {:.2} s; peak RSS {} MiB",
        n,
        analysed.as_secs_f64(),
        t.elapsed().as_secs_f64(),
        peak_rss_kib() / 1024
    );
}
