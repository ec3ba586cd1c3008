//! The default summary allocates nothing per packet in the steady state: proven with a
//! counting global allocator. A real capture (one TCP connection, 172 frames) is read as it
//! is and with every data segment (payload, no SYN/FIN/RST) repeated 11 times: the copies are
//! retransmissions to the analyzers (same connection, no new state), so the extra frames
//! must cost (almost) no allocation. One allocation per packet would show as one per frame.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use pcap_file::pcap::{PcapReader, PcapWriter};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// True for a TCP segment with payload and none of SYN, FIN, RST.
fn is_data_segment(frame: &[u8]) -> bool {
    match etherparse::SlicedPacket::from_ethernet(frame) {
        Ok(s) => match s.transport {
            Some(etherparse::TransportSlice::Tcp(t)) => {
                !t.payload().is_empty() && !t.syn() && !t.fin() && !t.rst()
            }
            _ => false,
        },
        Err(_) => false,
    }
}

/// Writes `src` with every data segment repeated `times` times.
fn repeated(src: &Path, dst: &Path, times: usize) {
    let mut r = PcapReader::new(std::fs::File::open(src).expect("open")).expect("pcap");
    let header = r.header();
    let mut w = PcapWriter::with_header(std::fs::File::create(dst).expect("create"), header)
        .expect("writer");
    while let Some(p) = r.next_packet() {
        let p = p.expect("packet");
        let n = if is_data_segment(&p.data) { times } else { 1 };
        for _ in 0..n {
            w.write_packet(&p).expect("write");
        }
    }
}

fn allocations_for(file: &Path) -> (u64, u64) {
    let config = netlens::Config::for_files(vec![file.to_path_buf()]);
    let mut out = Vec::with_capacity(1 << 20);
    let mut err = Vec::new();
    let before = ALLOCS.load(Ordering::Relaxed);
    let (report, _) = netlens::run(&config, &mut out, &mut err).expect("run");
    let after = ALLOCS.load(Ordering::Relaxed);
    (after - before, report.stats.packets)
}

#[test]
fn default_summary_allocates_nothing_per_packet() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/frame_len32le_nagle.pcap");
    let dir = tempfile::tempdir().expect("tempdir");
    let once = dir.path().join("once.pcap");
    let six = dir.path().join("six.pcap");
    repeated(&src, &once, 1);
    repeated(&src, &six, 11);
    let (a1, p1) = allocations_for(&once);
    let (a6, p6) = allocations_for(&six);
    let extra = a6.saturating_sub(a1);
    eprintln!(
        "allocations: {p1} frames {a1}, {p6} frames {a6}: {extra} more for {} more frames",
        p6 - p1
    );
    assert!(p6 - p1 >= 900, "fixture too small to tell");
    assert!(
        extra * 20 < p6 - p1,
        "{extra} allocations for {} more frames: something allocates per packet",
        p6 - p1
    );
}
