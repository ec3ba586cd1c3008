//! Hostile input, in process: every fixture and every corpus capture cut at every byte
//! offset of its first 4 KiB and at 200 evenly spaced offsets beyond, and with single bits
//! flipped at 1,000 positions (fixed-seed xorshift), read through the library API.
//!
//! For every case:
//! - nothing panics (`catch_unwind` around the capture reader and around the whole pipeline
//!   with every view, `--packets`, and the JSON or the table renderers), and no case takes
//!   more than a few seconds (a watchdog aborts the run, naming the case, on a hang);
//! - cuts: the frames read are exactly the uncut file's frames whose records end at or
//!   before the cut (frame number, timestamp, lengths, link type, interface, bytes hash);
//!   a cut strictly inside a record gives a `damaged-file` warning naming that record's
//!   byte offset, a cut on a record boundary gives none, a cut inside the file header is
//!   the "not a capture" error;
//! - flips: the frames whose records end at or before the flipped byte are unchanged.
//!
//! Record boundaries come from the independent walker in tests/common. Cut inputs are
//! served by a reader that also varies how many bytes each `read` returns (all, 1, 7 or
//! 4096), so the reader's buffering is exercised too.
//!
//! In debug builds (`cargo test`) the cut offsets beyond the first 512 bytes and the flips
//! are thinned out to keep the edit-test loop fast (100 flips per file, 10 above 256 KiB);
//! `cargo test --release` (CI) runs every case. `NETLENS_TRUNCATION=full` forces every case
//! in any build (a debug build adds overflow checks: worth a run after reader changes).

mod support;

use std::cell::RefCell;
use std::io::Read;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use netlens::capture::file::{CaptureFile, DEFAULT_MAX_RECORD};
use netlens::capture::{Damage, Next};
use support::{file_name, walk, Layout};

/// Longest any single case may take: 5 s in release builds (the slowest case measured is
/// about 0.1 s); debug builds run 10-20 times slower, more so on a loaded machine.
const CASE_LIMIT: Duration = Duration::from_secs(if cfg!(debug_assertions) { 60 } else { 5 });
/// The watchdog aborts the whole test after this long in one case (a hang).
const HANG: Duration = Duration::from_secs(120);
const FLIPS: usize = 1000;
const SPREAD_CUTS: u64 = 200;
const HEAD: u64 = 4096;

/// The bytes of one case: a prefix of the file, maybe with one bit flipped, served in
/// chunks of at most `chunk` bytes per `read`.
struct Src {
    data: Arc<Vec<u8>>,
    pos: usize,
    end: usize,
    flip: Option<(usize, u8)>,
    chunk: usize,
}

impl Read for Src {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.end - self.pos).min(self.chunk);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        if let Some((at, bit)) = self.flip {
            if (self.pos..self.pos + n).contains(&at) {
                buf[at - self.pos] ^= 1 << bit;
            }
        }
        self.pos += n;
        Ok(n)
    }
}

fn src(data: &Arc<Vec<u8>>, end: usize, flip: Option<(usize, u8)>, case: u64) -> Src {
    Src {
        data: Arc::clone(data),
        pos: 0,
        end,
        flip,
        chunk: [usize::MAX, 1, 7, 4096][(case % 4) as usize],
    }
}

/// One frame as delivered, with a hash of its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Frame {
    frame: u64,
    ts_ns: i64,
    wire_len: u32,
    caplen: usize,
    link_type: u32,
    port: u32,
    hash: u64,
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// What the capture reader made of one input.
#[derive(Debug)]
enum Read1 {
    NotACapture(String),
    Frames(Vec<Frame>, Option<Damage>),
}

fn read_frames(s: Src) -> Read1 {
    let mut f = match CaptureFile::from_reader(Box::new(s), "case".into(), 0, DEFAULT_MAX_RECORD) {
        Ok(f) => f,
        Err(e) => return Read1::NotACapture(e.to_string()),
    };
    f.begin(0);
    let mut frames = Vec::new();
    let mut frame = 1;
    loop {
        match f.next_packet(frame) {
            Next::Packet(r) => frames.push(Frame {
                frame: r.frame,
                ts_ns: r.ts_ns,
                wire_len: r.wire_len,
                caplen: r.data.len(),
                link_type: r.link_type,
                port: r.port,
                hash: fnv(r.data),
            }),
            Next::Record { .. } => {}
            Next::Idle => continue,
            Next::End => return Read1::Frames(frames, None),
            Next::Damaged(d) => return Read1::Frames(frames, Some(d)),
        }
        frame += 1;
    }
}

/// The whole pipeline, every view and `--packets`; JSON (even cases) or tables and
/// per-frame lines (odd cases) to a sink. Returns the damage warnings' offsets and the
/// number of packets in the report, or the error's message.
fn run_pipeline(s: Src, case: u64) -> Result<(Vec<u64>, u64), String> {
    let file = CaptureFile::from_reader(Box::new(s), "case".into(), 0, DEFAULT_MAX_RECORD)
        .map_err(|e| e.to_string())?;
    let mut config = netlens::Config::for_files(vec![PathBuf::from("case")]);
    config.views = netlens::Views::all();
    config.views.packets = true;
    config.quiet = true;
    if case.is_multiple_of(2) {
        config.json = Some(PathBuf::from("-"));
    }
    let mut out = Vec::new();
    let mut err = Vec::new();
    let (report, outcome) =
        netlens::pipeline::run_captures(&config, vec![file], &mut out, &mut err)
            .map_err(|e| e.to_string())?;
    if case.is_multiple_of(2) {
        // The JSON written must be one valid document.
        serde_json::from_slice::<serde::de::IgnoredAny>(&out)
            .map_err(|e| format!("JSON output does not parse: {e}"))?;
    }
    let damage = outcome
        .warnings
        .iter()
        .filter(|w| w.kind == "damaged-file")
        .map(|w| {
            let off = w.offset.unwrap_or(u64::MAX);
            if w.message.contains(&format!("byte offset {off}")) {
                off
            } else {
                u64::MAX - 1 // the message does not name the offset
            }
        })
        .collect();
    Ok((damage, report.stats.packets))
}

thread_local! {
    static PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Panics inside cases are caught; the hook keeps their message for the failure report
/// instead of printing thousands of backtraces.
fn quiet_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let in_case = PANIC.with(|p| p.borrow().is_some());
            if in_case {
                let msg = info.to_string();
                PANIC.with(|p| *p.borrow_mut() = Some(msg));
            } else {
                default(info);
            }
        }));
    });
}

/// Runs `f`, turning a panic into Err(message).
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    PANIC.with(|p| *p.borrow_mut() = Some(String::new()));
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    let msg = PANIC.with(|p| p.borrow_mut().take()).unwrap_or_default();
    r.map_err(|_| msg)
}

/// A hang detector: each case registers itself; a thread aborts the process when one runs
/// longer than HANG, naming it (a hang must fail CI, not stall it).
struct Watchdog {
    current: Arc<Mutex<Option<(Instant, String)>>>,
}

impl Watchdog {
    fn new() -> Self {
        let current: Arc<Mutex<Option<(Instant, String)>>> = Arc::new(Mutex::new(None));
        let c = Arc::clone(&current);
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_secs(1));
            let Ok(guard) = c.lock() else { return };
            if let Some((start, what)) = guard.as_ref() {
                if start.elapsed() > HANG {
                    eprintln!("HANG: {what} ran for more than {HANG:?}");
                    std::process::abort();
                }
            }
        });
        Watchdog { current }
    }

    fn start(&self, what: impl Fn() -> String) {
        if let Ok(mut g) = self.current.lock() {
            *g = Some((Instant::now(), what()));
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // The set is done: nothing is running any more (the thread idles until exit).
        if let Ok(mut g) = self.current.lock() {
            *g = None;
        }
    }
}

/// A tiny xorshift64 generator: fixed seeds, no dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

fn full_mode() -> bool {
    !cfg!(debug_assertions) || std::env::var("NETLENS_TRUNCATION").is_ok_and(|v| v == "full")
}

/// Cut offsets for a file of `len` bytes: every byte of the first 4 KiB and 200 evenly
/// spaced beyond (thinned out in quick mode).
fn cut_offsets(len: u64, full: bool) -> Vec<u64> {
    let mut v: Vec<u64> = (0..=len.min(HEAD))
        .filter(|&c| full || c < 512 || c % 61 == 0 || c == len)
        .collect();
    if len > HEAD {
        let n = if full { SPREAD_CUTS } else { 20 };
        for i in 1..=n {
            v.push(HEAD + (len - HEAD) * i / n);
        }
    }
    v.dedup();
    v
}

#[derive(Default)]
struct Tally {
    files: usize,
    cuts: u64,
    flips: u64,
    damage_warnings: u64,
    slowest: Duration,
    slowest_case: String,
    /// Time per file, for the summary line.
    per_file: Vec<(Duration, String)>,
    failures: Vec<String>,
}

impl Tally {
    fn fail(&mut self, msg: String) {
        if self.failures.len() < 40 {
            self.failures.push(msg);
        }
    }

    fn time(&mut self, took: Duration, what: impl Fn() -> String) {
        if took > self.slowest {
            self.slowest = took;
            self.slowest_case = what();
        }
        if took > CASE_LIMIT {
            let w = what();
            self.fail(format!("{w}: took {took:?}"));
        }
    }
}

/// Saves a failing input under target/truncation-failures/ for a regression test.
fn save_case(name: &str, tag: &str, data: &[u8], end: usize, flip: Option<(usize, u8)>) {
    let dir = support::root().join("target/truncation-failures");
    let _ = std::fs::create_dir_all(&dir);
    let mut bytes = data[..end].to_vec();
    if let Some((at, bit)) = flip {
        bytes[at] ^= 1 << bit;
    }
    let _ = std::fs::write(dir.join(format!("{name}.{tag}")), bytes);
}

fn check_file(path: &Path, full: bool, dog: &Watchdog, t: &mut Tally) {
    let name = file_name(path);
    let data = Arc::new(std::fs::read(path).expect("capture readable"));
    let len = data.len() as u64;
    t.files += 1;

    // The uncut file: the reference.
    let reference = match guarded(|| read_frames(src(&data, data.len(), None, 0))) {
        Ok(r) => r,
        Err(msg) => {
            t.fail(format!("{name} uncut: PANIC {msg}"));
            return;
        }
    };
    let layout = walk(&data, DEFAULT_MAX_RECORD as u64);
    let (ref_frames, ref_damage) = match (&reference, &layout) {
        (Read1::Frames(f, d), Some(_)) => (f.clone(), d.clone()),
        // Not a capture netlens or the walker can read: only "never panic" applies.
        _ => (Vec::new(), None),
    };
    // Where the uncut file stops making sense for netlens: cuts beyond behave as uncut.
    let limit = ref_damage.as_ref().map_or(len, |d| d.offset);
    if let (Read1::Frames(..), Some(l)) = (&reference, &layout) {
        // The independent walker and the reader agree on the uncut file.
        let walked = l
            .recs
            .iter()
            .filter(|r| r.kind == support::Kind::Packet && r.end <= limit)
            .count();
        if walked != ref_frames.len() {
            t.fail(format!(
                "{name}: walker finds {walked} packets before byte {limit}, reader {}",
                ref_frames.len()
            ));
            return;
        }
    }

    let mut case = 0u64;
    for cut in cut_offsets(len, full) {
        case += 1;
        t.cuts += 1;
        let what = || format!("{name} cut at {cut}");
        dog.start(what);
        let start = Instant::now();
        let got = guarded(|| read_frames(src(&data, cut as usize, None, case)));
        let piped = guarded(|| run_pipeline(src(&data, cut as usize, None, case), case));
        t.time(start.elapsed(), what);
        let (got, piped) = match (got, piped) {
            (Ok(g), Ok(p)) => (g, p),
            (Err(m), _) | (_, Err(m)) => {
                save_case(&name, &format!("cut{cut}"), &data, cut as usize, None);
                t.fail(format!("{} : PANIC {m}", what()));
                continue;
            }
        };
        let Some(l) = &layout else { continue };
        if !matches!(reference, Read1::Frames(..)) {
            continue;
        }
        check_cut(
            &name,
            cut,
            l,
            limit,
            &ref_frames,
            ref_damage.as_ref(),
            got,
            piped,
            t,
        );
    }

    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ fnv(name.as_bytes()));
    let flips = match (full, len) {
        (true, _) => FLIPS,
        (false, 0..=262_144) => 100,
        (false, _) => 10,
    };
    for _ in 0..flips {
        if len == 0 {
            break;
        }
        let r = rng.next();
        let at = (r % len) as usize;
        let bit = ((r >> 32) % 8) as u8;
        case += 1;
        t.flips += 1;
        let what = || format!("{name} bit {bit} of byte {at} flipped");
        dog.start(what);
        let start = Instant::now();
        // Whole-file reads (chunk selector 0): the cuts already vary the read sizes, and
        // byte-at-a-time reads of a megabyte file a thousand times would only cost time.
        let got = guarded(|| read_frames(src(&data, data.len(), Some((at, bit)), 0)));
        let piped = guarded(|| run_pipeline(src(&data, data.len(), Some((at, bit)), 0), case));
        t.time(start.elapsed(), what);
        let got = match (got, piped) {
            (Ok(g), Ok(_)) => g,
            (Err(m), _) | (_, Err(m)) => {
                save_case(
                    &name,
                    &format!("flip{at}.{bit}"),
                    &data,
                    data.len(),
                    Some((at, bit)),
                );
                t.fail(format!("{}: PANIC {m}", what()));
                continue;
            }
        };
        // Parsing is sequential: every frame whose record ends before the flipped byte is
        // read before that byte is looked at, so it is unchanged.
        let Some(l) = &layout else { continue };
        if (at as u64) < l.header_end || at as u64 >= limit {
            continue;
        }
        let before = l.packets_before(at as u64);
        let Read1::Frames(frames, _) = got else {
            t.fail(format!(
                "{}: file header unreadable after a flip past it",
                what()
            ));
            continue;
        };
        if frames.len() < before || frames[..before] != ref_frames[..before] {
            t.fail(format!(
                "{}: the {before} frames before it changed ({} read)",
                what(),
                frames.len()
            ));
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn check_cut(
    name: &str,
    cut: u64,
    l: &Layout,
    limit: u64,
    ref_frames: &[Frame],
    ref_damage: Option<&Damage>,
    got: Read1,
    piped: Result<(Vec<u64>, u64), String>,
    t: &mut Tally,
) {
    let what = format!("{name} cut at {cut}");
    if cut < l.header_end {
        // Inside the file header: not a capture (exit 1), in the reader and the pipeline.
        match (&got, &piped) {
            // The error names the input (it is "case" here).
            (Read1::NotACapture(m), Err(p)) if m.contains("case") && p.contains("case") => {}
            _ => t.fail(format!(
                "{what}: inside the file header, expected 'not a capture' naming the file, got {got:?} / {piped:?}"
            )),
        }
        return;
    }
    let Read1::Frames(frames, damage) = got else {
        t.fail(format!("{what}: file header whole but unreadable: {got:?}"));
        return;
    };
    let (expect_frames, expect_damage) = if cut > limit {
        // Beyond the uncut file's own damage: exactly as uncut.
        (ref_frames.len(), ref_damage.map(|d| d.offset))
    } else {
        let kept = l.packets_before(cut);
        let inside = l.record_cut_by(cut).map(|r| r.start);
        (kept, inside)
    };
    if frames.len() != expect_frames || frames[..] != ref_frames[..expect_frames] {
        t.fail(format!(
            "{what}: read {} frames, expected the uncut file's first {expect_frames}",
            frames.len()
        ));
    }
    let got_damage = damage.as_ref().map(|d| d.offset);
    if got_damage != expect_damage {
        t.fail(format!(
            "{what}: damage at {got_damage:?}, expected {expect_damage:?} ({damage:?})"
        ));
    }
    match piped {
        Ok((warned, packets)) => {
            if warned.first().copied() != expect_damage || warned.len() > 1 {
                t.fail(format!(
                    "{what}: pipeline warned at {warned:?}, expected {expect_damage:?} named in the message"
                ));
            }
            if expect_damage.is_some() {
                t.damage_warnings += 1;
            }
            if packets != expect_frames as u64 {
                t.fail(format!(
                    "{what}: report has {packets} packets, expected {expect_frames}"
                ));
            }
        }
        Err(e) => t.fail(format!("{what}: pipeline error {e}")),
    }
}

fn run_set(label: &str, files: &[PathBuf]) {
    quiet_panics();
    let full = full_mode();
    let dog = Watchdog::new();
    let mut t = Tally::default();
    let start = Instant::now();
    for f in files {
        let s = Instant::now();
        check_file(f, full, &dog, &mut t);
        t.per_file.push((s.elapsed(), file_name(f)));
    }
    t.per_file.sort();
    let top: Vec<String> = t
        .per_file
        .iter()
        .rev()
        .take(3)
        .map(|(d, n)| format!("{n} {:.1}s", d.as_secs_f64()))
        .collect();
    eprintln!(
        "truncation [{label}, {}]: {} files, {} cut cases ({} with a damage warning checked), {} bit-flip cases, {} failures, slowest case {:?} ({}), {:?} in all; longest files: {}",
        if full { "full" } else { "quick: debug build" },
        t.files,
        t.cuts,
        t.damage_warnings,
        t.flips,
        t.failures.len(),
        t.slowest,
        t.slowest_case,
        start.elapsed(),
        top.join(", ")
    );
    assert!(t.failures.is_empty(), "{}", t.failures.join("\n"));
}

#[test]
fn fixtures_survive_truncation_and_bit_flips() {
    run_set("fixtures", &support::fixtures());
}

/// The corpus in two halves (alternate files), so the test harness runs them on two cores.
fn corpus_half(half: usize) {
    let Some(captures) = support::corpus_captures() else {
        eprintln!("note: ../shared/corpus not found; corpus truncation test skipped");
        return;
    };
    let mine: Vec<PathBuf> = captures.into_iter().skip(half).step_by(2).collect();
    run_set(&format!("corpus half {}", half + 1), &mine);
}

#[test]
fn corpus_first_half_survives_truncation_and_bit_flips() {
    corpus_half(0);
}

#[test]
fn corpus_second_half_survives_truncation_and_bit_flips() {
    corpus_half(1);
}
