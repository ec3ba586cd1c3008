//! Floods and absurd claims through the whole pipeline (issue 9, part 3): a SYN flood of a
//! million spoofed sources, one 4-tuple reused a thousand times, and length-prefix and
//! json-header streams announcing a 4 GB message. Inputs are generated as they are read
//! (`support::synth::GenPcap`), and a global allocator tracks live heap bytes, so each
//! test's peak is netlens's own: each must stay within what the caps allow, and the report
//! must say what happened, its counts exact.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use netlens::analyze::framing::{FramingConfig, FramingKind, FramingRule, DEFAULT_MAX_MESSAGE};
use netlens::capture::file::CaptureFile;
use netlens::report::{keyed_file, Report};
use netlens::{Config, Views};
use support::synth::{tcp_frame, Conversation, GenPcap, Seg, SYN};

struct Peak;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let now = CURRENT.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Peak {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Peak = Peak;

/// One test at a time: the counters are the process's, so a test running beside a
/// measurement would count in it. Each test holds this from start to end.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const MIB: usize = 1 << 20;

/// Runs `config` over the generated capture; returns the report and the peak of live
/// heap bytes above what was live before the run. Call it holding [`serial`].
fn measure<F>(config: &Config, frames: F) -> (Report, usize)
where
    F: FnMut(u64, &mut Vec<u8>) -> Option<i64> + Send + 'static,
{
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let file = CaptureFile::from_reader(
        Box::new(GenPcap::new(frames)),
        "synthetic".into(),
        0,
        1 << 16,
    )
    .expect("generated pcap opens");
    let (report, _) =
        netlens::pipeline::run_captures(config, vec![file], &mut io::sink(), &mut io::sink())
            .expect("run succeeds");
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    (report, peak)
}

fn config() -> Config {
    let mut c = Config::for_files(vec![PathBuf::from("synthetic")]);
    c.quiet = true;
    c
}

const T0: i64 = 1_700_000_000_000_000_000;
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const SERVER: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 2);

/// `n` SYNs to SERVER:80, each from its own spoofed address and port, 1 µs apart.
fn syn_flood(n: u64) -> impl FnMut(u64, &mut Vec<u8>) -> Option<i64> + Send + 'static {
    move |i, out| {
        if i >= n {
            return None;
        }
        let seg = Seg {
            src_mac: CLIENT_MAC,
            dst_mac: SERVER_MAC,
            src: (
                Ipv4Addr::from(0x0a00_0000 | (i as u32 & 0x00ff_ffff)),
                1024 + (i % 60_000) as u16,
            ),
            dst: (SERVER, 80),
            seq: (i as u32).wrapping_mul(2_654_435_761),
            ack: 0,
            flags: SYN,
        };
        tcp_frame(out, &seg, &[]);
        Some(T0 + i as i64 * 1_000)
    }
}

#[test]
fn syn_flood_of_a_million_spoofed_sources_stays_within_the_connection_cap() {
    let _serial = serial();
    // A debug build runs a tenth of the flood (same checks) to keep its time reasonable.
    let n: u64 = if cfg!(debug_assertions) {
        100_000
    } else {
        1_000_000
    };
    let cap = 10_000usize;
    let mut c = config();
    c.views = Views::all();
    c.conns.max_connections = cap;

    // A first run pays for one-time set-up (lazy tables, thread-locals) that stays live.
    let _ = measure(&c, syn_flood(cap as u64));
    let (small, small_peak) = measure(&c, syn_flood(n / 5));
    let (r, peak) = measure(&c, syn_flood(n));
    eprintln!(
        "SYN flood, cap {cap}: {} SYNs peak {:.1} MiB, {n} SYNs peak {:.1} MiB",
        n / 5,
        small_peak as f64 / MIB as f64,
        peak as f64 / MIB as f64
    );

    assert_eq!(r.stats.packets, n);
    let s = r.connection_stats.as_ref().expect("connection stats");
    assert_eq!((s.connections, s.tcp, s.udp), (n, n, 0));
    assert_eq!(s.max_connections, cap as u64);
    assert_eq!(s.peak_tracked, cap as u64);
    let evicted = n - cap as u64;
    assert_eq!(s.evicted, evicted);
    assert_eq!(s.finalized_by.get("evicted"), Some(&evicted));
    assert_eq!(s.finalized_by.values().sum::<u64>(), n);
    let w = r
        .warnings
        .iter()
        .find(|w| w.kind == "conn-table-full")
        .expect("a warning says the table was full");
    assert!(w.message.contains(&evicted.to_string()), "{}", w.message);
    assert!(w.message.contains("--max-conns"), "{}", w.message);
    assert_eq!(
        small.connection_stats.as_ref().map(|s| s.evicted),
        Some(n / 5 - cap as u64)
    );

    // Bounded by the cap, not by the flood. A tracked connection costs about 2 KiB in the
    // tracker (config.rs) and as much in the stream reassembler, which keeps state from
    // the SYN on; hash tables add their slack. Five times the SYNs cost no more memory.
    assert!(
        peak < cap * 6 * 1024 + 8 * MIB,
        "peak {peak} B over the cap's budget"
    );
    assert!(
        peak <= small_peak + MIB,
        "peak grew with the flood: {small_peak} B for {} SYNs, {peak} B for {n}",
        n / 5
    );
}

/// A conversation on 10.0.0.1:40000 → 10.0.0.2:80, number `k` of a series: its own ISNs,
/// a 300-byte request and a 700-byte response that name `k`.
fn conversation(k: u64) -> Conversation {
    let tag = |what: &str, len: usize| -> Vec<u8> {
        format!("{what} {k:05};")
            .bytes()
            .cycle()
            .take(len)
            .collect()
    };
    Conversation {
        a: Seg {
            src_mac: CLIENT_MAC,
            dst_mac: SERVER_MAC,
            src: (Ipv4Addr::new(10, 0, 0, 1), 40_000),
            dst: (Ipv4Addr::new(10, 0, 0, 2), 80),
            seq: 0,
            ack: 0,
            flags: 0,
        },
        isn: (k as u32).wrapping_mul(0x9e37_79b9),
        risn: (k as u32).wrapping_mul(0x85eb_ca6b) ^ 0x5555_5555,
        request: tag("request", 300),
        response: tag("response", 700),
        mss: 536,
    }
}

/// `n` conversations on the one 4-tuple, 100 ms apart, frames 1 ms apart.
fn reused_tuple(n: u64) -> impl FnMut(u64, &mut Vec<u8>) -> Option<i64> + Send + 'static {
    let per = conversation(0).frames();
    let mut current: Option<(u64, Conversation)> = None;
    move |i, out| {
        let (k, j) = (i / per, i % per);
        if k >= n {
            return None;
        }
        if current.as_ref().is_none_or(|(ck, _)| *ck != k) {
            current = Some((k, conversation(k)));
        }
        let (_, conv) = current.as_ref().expect("set above");
        conv.frame(j, out);
        Some(T0 + k as i64 * 100_000_000 + j as i64 * 1_000_000)
    }
}

fn read_report(path: &Path) -> Report {
    serde_json::from_slice(&std::fs::read(path).expect("JSON report written"))
        .expect("JSON report parses")
}

#[test]
fn one_four_tuple_reused_a_thousand_times_is_a_thousand_connections() {
    let _serial = serial();
    let n = 1_000u64;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = config();
    c.views.conns = true;
    c.views.streams = true;
    c.json = Some(dir.path().join("report.json"));
    c.streams.extract = Some(dir.path().join("extract"));
    let (_, _) = measure(&c, reused_tuple(n));
    let r = read_report(&dir.path().join("report.json"));

    let s = r.connection_stats.as_ref().expect("connection stats");
    assert_eq!((s.connections, s.tcp), (n, n));
    // A closed connection lingers until the next SYN on its tuple takes over: never more
    // than the old and the new one are tracked.
    assert!(s.peak_tracked <= 2, "peak_tracked {}", s.peak_tracked);
    let conns = r.connections.as_ref().expect("connections listed");
    assert_eq!(conns.len() as u64, n);
    for (k, e) in conns.iter().enumerate() {
        assert_eq!(e.id, k as u64 + 1);
        assert_eq!(
            (e.orig.as_str(), e.resp.as_str()),
            ("10.0.0.1:40000", "10.0.0.2:80"),
            "connection {}",
            e.id
        );
        assert_eq!(
            (e.conn_state.as_str(), e.orig_bytes, e.resp_bytes),
            ("SF", 300, 700),
            "connection {}",
            e.id
        );
        assert_eq!(e.orig_pkts + e.resp_pkts, conversation(0).frames());
    }
    let streams = r.streams.as_ref().expect("streams listed");
    assert_eq!(streams.len() as u64, 2 * n);
    for st in streams {
        let k = st.conn - 1;
        let (want, orig) = match st.dir.as_str() {
            "orig" => (conversation(k).request, true),
            _ => (conversation(k).response, false),
        };
        assert_eq!(st.bytes, want.len() as u64, "conn {} {}", st.conn, st.dir);
        assert_eq!(
            st.isn,
            Some(if orig {
                conversation(k).isn
            } else {
                conversation(k).risn
            })
        );
        assert!(
            st.gaps.is_empty() && st.conflicts.is_empty(),
            "conn {}",
            st.conn
        );
        // The extracted bytes are the ones that conversation sent: no mixing of the copies.
        let name = if orig {
            format!("c{:06}-10.0.0.1.40000-10.0.0.2.80.orig.bin", st.conn)
        } else {
            format!("c{:06}-10.0.0.2.80-10.0.0.1.40000.resp.bin", st.conn)
        };
        let got = std::fs::read(dir.path().join("extract").join(&name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(got == want, "{name} holds other bytes");
    }

    // Memory stays flat: ten times the reuses cost no more than the stream store's index
    // rows (24 bytes per direction in a Vec that grows by doubling) and one more keyed
    // file's stage (a fixed `CHUNK` once a store has entries to sort, whatever their
    // number), where one retained connection would cost kilobytes.
    let mut c = config();
    c.views.conns = true;
    c.views.streams = true;
    let _ = measure(&c, reused_tuple(n / 10));
    let (r100, peak100) = measure(&c, reused_tuple(n / 10));
    let (r1000, peak1000) = measure(&c, reused_tuple(n));
    eprintln!(
        "reused tuple: {} connections peak {} KiB, {n} connections peak {} KiB",
        n / 10,
        peak100 / 1024,
        peak1000 / 1024
    );
    assert_eq!(r100.connection_stats.map(|s| s.connections), Some(n / 10));
    assert_eq!(r1000.connection_stats.map(|s| s.connections), Some(n));
    assert!(
        peak1000 <= peak100 + (n - n / 10) as usize * 2 * 64 + 64 * 1024 + keyed_file::CHUNK,
        "memory grew with reuse: {peak100} B for {} connections, {peak1000} B for {n}",
        n / 10
    );
}

/// A connection whose client sends `head` then `body_len` bytes of body, then closes.
fn announcing(head: Vec<u8>, body_len: usize) -> Conversation {
    let mut request = head;
    request.extend((0..body_len).map(|i| (i % 251) as u8));
    Conversation {
        a: Seg {
            src_mac: CLIENT_MAC,
            dst_mac: SERVER_MAC,
            src: (Ipv4Addr::new(10, 0, 0, 1), 50_000),
            dst: (Ipv4Addr::new(10, 0, 0, 2), 9_000),
            seq: 0,
            ack: 0,
            flags: 0,
        },
        isn: 1_000,
        risn: 2_000_000,
        request,
        response: Vec::new(),
        mss: 1_460,
    }
}

fn frames_of(conv: Conversation) -> impl FnMut(u64, &mut Vec<u8>) -> Option<i64> + Send + 'static {
    let n = conv.frames();
    move |i, out| {
        if i >= n {
            return None;
        }
        conv.frame(i, out);
        Some(T0 + i as i64 * 100_000)
    }
}

#[test]
fn a_stream_announcing_a_4_gb_message_allocates_none_of_it() {
    let _serial = serial();
    const BODY: usize = 1 << 20;
    const FOUR_GB: u64 = 4 << 30;
    let json_head = |size: u64| {
        let h = format!(r#"{{"file_name":"huge.bin","file_size":{size}}}"#);
        let mut v = (h.len() as u32).to_le_bytes().to_vec();
        v.extend_from_slice(h.as_bytes());
        v
    };
    let cases = [
        (
            "len32le",
            FramingKind::Len32Le,
            (u32::MAX - 3).to_le_bytes().to_vec(),
        ),
        ("json-header", FramingKind::JsonHeader, json_head(FOUR_GB)),
    ];
    for (name, kind, head) in cases {
        let head_len = head.len() as u64;
        let sent = head_len + BODY as u64;
        // With the default --max-message the announced length is refused; raised above
        // it, the message is taken as a message that never completes.
        for max_message in [DEFAULT_MAX_MESSAGE, u64::MAX] {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut c = config();
            c.views.streams = true;
            c.json = Some(dir.path().join("report.json"));
            c.streams.framing = FramingConfig {
                rules: vec![FramingRule {
                    port: None,
                    kind: kind.clone(),
                }],
            };
            c.streams.max_message = max_message;
            c.streams.extract = Some(dir.path().join("x"));
            c.streams.extract_messages = true;
            let (_, peak) = measure(&c, frames_of(announcing(head.clone(), BODY)));
            let case = format!("{name}, --max-message {max_message}");
            eprintln!("{case}: peak {:.1} MiB", peak as f64 / MIB as f64);
            // Far below the announced size, and below the default cap's 256 MiB too: no
            // buffer is sized by the claim.
            assert!(peak < 32 * MIB, "{case}: peak {peak} B");

            let r = read_report(&dir.path().join("report.json"));
            let streams = r.streams.as_ref().expect("streams");
            let orig = streams
                .iter()
                .find(|s| s.dir == "orig")
                .unwrap_or_else(|| panic!("{case}: no orig stream"));
            assert_eq!(orig.bytes, sent, "{case}");
            let stream_file = dir
                .path()
                .join("x")
                .join("c000001-10.0.0.1.50000-10.0.0.2.9000.orig.bin");
            let on_disk = std::fs::metadata(&stream_file)
                .expect("stream extracted")
                .len();
            assert_eq!(on_disk, sent, "{case}");
            let message_files: Vec<PathBuf> = std::fs::read_dir(dir.path().join("x"))
                .expect("extract dir")
                .map(|e| e.expect("entry").path())
                .filter(|p| p.to_string_lossy().contains(".orig.m"))
                .collect();
            if max_message == DEFAULT_MAX_MESSAGE {
                let e = orig
                    .framing_error
                    .as_ref()
                    .unwrap_or_else(|| panic!("{case}: no framing error"));
                assert_eq!(e.offset, 0, "{case}");
                assert!(e.reason.contains("cap"), "{case}: {}", e.reason);
                assert_eq!(orig.stats.messages, 0, "{case}");
                assert_eq!(orig.unframed_bytes, sent, "{case}");
                assert!(message_files.is_empty(), "{case}: {message_files:?}");
            } else {
                assert!(orig.framing_error.is_none(), "{case}");
                // One message, never completed (`messages` counts complete ones).
                assert_eq!(
                    (orig.stats.messages, orig.stats.incomplete_messages),
                    (0, 1),
                    "{case}"
                );
                assert_eq!(orig.messages.len(), 1, "{case}");
                let m = &orig.messages[0];
                assert!(!m.complete, "{case}");
                assert_eq!(m.offset, 0, "{case}");
                // The message file holds what arrived, not the announced size.
                assert_eq!(message_files.len(), 1, "{case}: {message_files:?}");
                let len = std::fs::metadata(&message_files[0])
                    .expect("message file")
                    .len();
                assert_eq!(len, sent, "{case}");
            }
        }
    }
}
