//! The default summary allocates nothing per packet in the steady state: proven with a
//! counting global allocator. The same capture is read as 2 and as 10 input files; the
//! extra 8 copies may cost a constant per file and per connection (a buffer, a table
//! entry), but an allocation per packet would cost at least one per frame of each copy.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

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

fn allocations_for(copies: usize, file: &std::path::Path) -> (u64, u64) {
    let config = netlens::Config::for_files(vec![file.to_path_buf(); copies]);
    let mut out = Vec::with_capacity(1 << 20);
    let mut err = Vec::new();
    let before = ALLOCS.load(Ordering::Relaxed);
    let (report, _) = netlens::run(&config, &mut out, &mut err).expect("run");
    let after = ALLOCS.load(Ordering::Relaxed);
    (after - before, report.stats.packets)
}

#[test]
fn default_summary_allocates_nothing_per_packet() {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/frame_len32le_nagle.pcap");
    let (a2, p2) = allocations_for(2, &file);
    let (a10, p10) = allocations_for(10, &file);
    let per_copy_frames = (p10 - p2) / 8;
    let extra = a10.saturating_sub(a2);
    eprintln!(
        "allocations: 2 copies {a2}, 10 copies {a10}; {extra} more for {} more frames ({per_copy_frames} per copy)",
        p10 - p2
    );
    assert!(per_copy_frames > 100, "fixture too small to tell");
    // At most 60 allocations per extra copy (file open, per-connection state), far below
    // one per frame.
    assert!(
        extra <= 8 * 60,
        "{extra} allocations for 8 more copies of {per_copy_frames} frames: something allocates per packet"
    );
}
